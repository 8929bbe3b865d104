"""Derived quantities used by the validation checks (half-lives, F, Vss, mass balance)."""

from __future__ import annotations

import numpy as np

from .models import (
    CENTRAL,
    LIVER,
    PEREZ_RUIXO_2021,
    build_system,
    get_model,
    perez_ruixo_qh,
)
from .regimen import Regimen
from .solver import ModalSolution, compile_inputs


def _modal(code: str, regimen: Regimen, weight_kg=70.0, age=None, scaling=None):
    model = get_model(code)
    system = build_system(model, weight_kg, age, scaling)
    inputs = compile_inputs(model, system, regimen, weight_kg)
    return model, system, inputs, ModalSolution(system, inputs)


def terminal_half_life_h(code: str, weight_kg=70.0, age=None, scaling=None) -> float:
    """Half-life of the slowest mode seen in plasma after an IV bolus (hours)."""
    model, _system, _inputs, modal = _modal(code, Regimen.bolus(mg=1.0), weight_kg, age, scaling)
    coef = modal.coef[model.analyte][0, _system.inputs["iv"]]
    lam = modal.lam[0]
    visible = np.abs(coef) > 1e-9 * np.max(np.abs(coef))
    slowest = np.max(lam[visible])  # least negative
    return float(np.log(2) / -slowest / 60.0)


def clearance_ml_min_kg(code: str, weight_kg=70.0, age=None, scaling=None) -> float:
    system = build_system(code, weight_kg, age, scaling)
    return float(np.asarray(system.clearance_l_per_min)) * 1000.0 / weight_kg


def auc_inf(code: str, regimen: Regimen, weight_kg=70.0, age=None, scaling=None, analyte=None):
    """Exact AUC 0-inf in ng·min/mL."""
    model, _s, _i, modal = _modal(code, regimen, weight_kg, age, scaling)
    return float(modal.auc(analyte or model.analyte, np.inf)[0])


def mass_balance_ratio(code: str, regimen: Regimen, weight_kg=70.0, age=None, scaling=None):
    """(AUC 0-inf x CL) / amount reaching plasma; exactly 1 for a correct solver.

    For IV doses the amount reaching plasma is the dose.  For esketamine nasal
    doses it is the absorbed amount derived from the model structure
    (:func:`esketamine_absorbed_mg`).
    """
    model, system, _inputs, modal = _modal(code, regimen, weight_kg, age, scaling)
    auc_mg_min_l = float(modal.auc(model.analyte, np.inf)[0]) / 1000.0
    cl = float(np.asarray(system.clearance_l_per_min))
    if regimen.nasal:
        amount = esketamine_absorbed_mg(regimen, age) + regimen.iv_dose_mg(weight_kg)
    else:
        amount = regimen.iv_dose_mg(weight_kg)
    return auc_mg_min_l * cl / amount


def hepatic_availability(age=None) -> float:
    """Fraction of drug entering the liver compartment that reaches the central one.

    From the liver a molecule leaves to central at Qh/Vh or is removed at kel + kmet,
    so it escapes with probability (Qh/Vh) / (Qh/Vh + kel + kmet) = 1 - E, where
    E = CLint / (Qh + CLint), CLint = Vh (kel + kmet) (well-stirred liver).
    """
    m = PEREZ_RUIXO_2021
    qh = float(perez_ruixo_qh(age))
    k_out = qh / m.value("vh")
    return k_out / (k_out + m.value("kel") + m.value("kmet"))


def esketamine_absorbed_mg(regimen: Regimen, age=None) -> float:
    """Amount of esketamine reaching the central compartment from nasal sessions.

    Per device: nasal part FRn_k (absorbed completely) plus swallowed part
    (1 - FRn_k) x Fgut x hepatic availability.
    """
    m = PEREZ_RUIXO_2021
    frn, later, fgut = m.value("frn"), m.value("frn_later_device"), m.value("fgut")
    fh = hepatic_availability(age)
    total = 0.0
    for session in regimen.nasal:
        for k in range(session.devices):
            f = frn * (1.0 if k == 0 else later)
            total += 28.0 * (f + (1.0 - f) * fgut * fh)
    return total


def esketamine_bioavailability(mg: float, interval_min: float = 5.0, age=None) -> dict:
    """Absolute bioavailability of a nasal session, two ways.

    ``auc_ratio``: AUC0-inf(nasal) / AUC0-inf(IV bolus of the same mg) from the exact
    solver.  ``structural``: FRn_eff + (1 - FRn_eff) x Fgut x (1 - E) from the model
    constants.  They must agree (the AUC ratio is the independent computation).
    """
    nasal = Regimen.nasal_session(mg, interval_min=interval_min)
    iv = Regimen.bolus(mg=mg)
    a_n = auc_inf("perez-ruixo-2021", nasal, age=age)
    a_iv = auc_inf("perez-ruixo-2021", iv, age=age)
    m = PEREZ_RUIXO_2021
    n = round(mg / 28.0)
    frn_eff = m.value("frn") * (1 + (n - 1) * m.value("frn_later_device")) / n
    structural = frn_eff + (1 - frn_eff) * m.value("fgut") * hepatic_availability(age)
    return {
        "auc_ratio": a_n / a_iv,
        "structural": structural,
        "frn_eff": frn_eff,
        "hepatic_availability": hepatic_availability(age),
    }


def esketamine_vss(age=None) -> dict:
    """Volume of distribution at steady state, two definitions (litres).

    ``disposition_sum``: Vc + Vp1 + Vp2, the liver compartment counted as part of the
    clearing organ (the convention that gives the paper's 752 L).
    ``steady_state``: amount of esketamine in the body at steady state of an IV
    infusion divided by the plasma concentration, from the model's exact steady
    state: Vc + Vp1 + Vp2 + Vh x (1 - E), because at steady state the liver
    concentration is (1 - E) times the plasma concentration.
    """
    m = PEREZ_RUIXO_2021
    system = build_system(m, 70.0, age)
    K = system.K[:6, :6]  # parent compartments only (nasal, gut, central, p1, p2, liver)
    u = np.zeros(6)
    u[CENTRAL] = 1.0
    x = np.linalg.solve(K, -u)
    c_plasma = x[CENTRAL] / m.value("vc")
    body = x[CENTRAL : LIVER + 1].sum()
    return {
        "disposition_sum": m.value("vc") + m.value("vp1") + m.value("vp2"),
        "steady_state": float(body / c_plasma),
        "liver_weighting": float(x[LIVER] / m.value("vh") / c_plasma),
        "with_full_liver": m.value("vc") + m.value("vp1") + m.value("vp2") + m.value("vh"),
    }


def esketamine_clearance_l_h(age=None) -> float:
    return float(np.asarray(build_system("perez-ruixo-2021", 70.0, age).clearance_l_per_min)) * 60


def noresketamine_mass_balance(regimen: Regimen, age=None) -> float:
    """AUC_nor x CLn / amount formed (kmet x integral of the liver amount); exactly 1."""
    _model, system, inputs, modal = _modal("perez-ruixo-2021", regimen, 70.0, age)
    m = PEREZ_RUIXO_2021
    auc_nor = float(modal.auc("noresketamine", np.inf)[0]) / 1000.0  # mg·min/L
    cln = m.value("cln") / 60.0
    # integral of the liver amount: reuse the modal machinery with a liver "output".
    c_liver = np.zeros(system.n)
    c_liver[LIVER] = 1.0
    liver_system = type(system)(
        K=system.K,
        compartments=system.compartments,
        outputs={"liver": c_liver},
        inputs=system.inputs,
        clearance_l_per_min=system.clearance_l_per_min,
        extra=system.extra,
    )
    liver_modal = ModalSolution(liver_system, inputs)
    formed = m.value("kmet") / 60.0 * float(liver_modal.auc("liver", np.inf)[0])
    return auc_nor * cln / formed
