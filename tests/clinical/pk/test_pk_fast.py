"""The single-pass closed-form path (ketaflow.clinical.pk.fast) against the reference
solvers (modal, matrix exponential, ODE) on every model and regimen of the existing
tests, to 1e-9 relative."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketaflow.clinical.pk import MODELS, Regimen, analysis, build_system, fast, get_model, simulate
from ketaflow.clinical.pk.models import RACEMIC_MODELS, mammillary_rates
from ketaflow.clinical.pk.solver import ModalSolution, compile_inputs, solve_expm, solve_ode
from ketaflow.clinical.pk.validation import solver_regimens

RTOL = 1e-9
STD = Regimen.infusion(mg_per_kg=0.5, minutes=40)


def extra_regimens(code: str) -> dict[str, Regimen]:
    """solver_regimens plus the other regimens the PK tests use."""
    regs = dict(solver_regimens(code))
    if code == "perez-ruixo-2021":
        regs["84 mg, devices 0 min apart"] = Regimen.nasal_session(84, interval_min=0)
        regs["IV bolus only"] = Regimen.bolus(mg=28)
    else:
        regs["bolus 10 mg at 3 min"] = Regimen.bolus(mg=10, at_min=3)
        regs["zero-dose bolus then infusion"] = Regimen.bolus(mg=0).add_infusion(
            mg=20, minutes=30, start_min=10
        )
    return regs


CASES = [(code, label) for code in MODELS for label in extra_regimens(code)]


def _rel(a, ref):
    """Max relative difference where ref >= 1e-9 of its peak; below, |diff| / peak."""
    peak = float(np.max(np.abs(ref)))
    big = np.abs(ref) >= 1e-9 * peak
    rel = np.abs(a[big] - ref[big]) / np.abs(ref[big])
    near = np.abs(a[~big] - ref[~big]) / peak
    return (float(rel.max()) if rel.size else 0.0), (float(near.max()) if near.size else 0.0)


def _setup(code, reg, weight=70.0):
    model = get_model(code)
    system = build_system(model, weight)
    inputs = compile_inputs(model, system, reg, weight)
    names = [model.analyte] + ([model.metabolite] if model.metabolite else [])
    t = np.arange(0.0, 24 * 60 + 1, 7.5)
    t = np.unique(np.concatenate([t, inputs.breakpoints[inputs.breakpoints <= t.max()]]))
    curve = fast.solve(model, reg, weight)
    assert curve is not None
    return model, system, inputs, names, t, curve


@pytest.mark.parametrize(("code", "label"), CASES)
def test_fast_matches_modal_expm_and_ode(code, label):
    reg = extra_regimens(code)[label]
    _model, system, inputs, names, t, curve = _setup(code, reg)
    modal = ModalSolution(system, inputs)
    e_c, e_a = solve_expm(system, inputs, t, names)
    o_c, o_a = solve_ode(system, inputs, t, names)
    values = curve.evaluate(t)
    for o, nm in enumerate(names):
        ours = values[o]
        exact = modal.evaluate(nm, t)[0]
        rel, near = _rel(ours, exact)
        assert rel <= RTOL and near <= 1e-12, (nm, rel, near)
        # The matrix-exponential and ODE references are themselves only ~1e-9 from
        # the modal solution on Domino (stiff: rates 1.7 and 0.006 /min), and that
        # last digit depends on the machine's floating point: the fast path must be
        # within RTOL of each reference plus that reference's own distance from modal.
        for ref in (e_c[nm], o_c[nm]):
            tol = RTOL + _rel(exact, ref)[0]
            rel, near = _rel(ours, ref)
            assert rel <= tol, (nm, rel, tol)
            assert near <= 1e-12, (nm, near)
        # derivative and areas
        d_ref = modal.evaluate(nm, t, derivative=True)[0]
        scale = float(np.max(np.abs(d_ref)))
        assert np.max(np.abs(curve.evaluate(t, derivative=True)[o] - d_ref)) <= 1e-9 * scale
        for t_end in (t.max(), 90.0, 333.3):
            a_ref = float(modal.auc(nm, t_end)[0])
            assert curve.auc(nm, t_end) == pytest.approx(a_ref, rel=RTOL)
        assert curve.auc(nm, t.max()) == pytest.approx(e_a[nm][-1], rel=RTOL)
        assert curve.auc(nm, t.max()) == pytest.approx(o_a[nm][-1], rel=RTOL)
        assert curve.auc(nm, np.inf) == pytest.approx(float(modal.auc(nm, np.inf)[0]), rel=RTOL)


@pytest.mark.parametrize(("code", "label"), CASES)
def test_simulate_summary_unchanged(code, label):
    """simulate (fast path) gives the reference path's curve, Cmax, tmax and AUC."""
    reg = extra_regimens(code)[label]
    for kw in ({}, {"hours": 6}, {"times_min": np.linspace(0, 1500, 301)}):
        new = simulate(code, reg, **kw)
        ref = simulate(code, reg, solver="modal", **kw)
        rel, near = _rel(new.concentrations, ref.concentrations)
        assert rel <= RTOL and near <= 1e-12
        assert new.cmax == pytest.approx(ref.cmax, rel=RTOL)
        assert new.tmax_min == pytest.approx(ref.tmax_min, rel=RTOL, abs=1e-9)
        assert new.auc_0_24h == pytest.approx(ref.auc_0_24h, rel=RTOL)
        if ref.metabolite is not None:
            m, r = new.metabolite, ref.metabolite
            assert _rel(m.concentrations, r.concentrations)[0] <= RTOL
            assert m.cmax == pytest.approx(r.cmax, rel=RTOL)
            assert m.tmax_min == pytest.approx(r.tmax_min, rel=RTOL)
            assert m.auc_0_24h == pytest.approx(r.auc_0_24h, rel=RTOL)


@pytest.mark.parametrize("code", RACEMIC_MODELS)
def test_mass_balance_fast_path(code):
    cl = float(np.asarray(build_system(code, 83.0).clearance_l_per_min))
    for reg in (STD, solver_regimens(code)["rate change, pause, bolus"], Regimen.bolus(mg=35)):
        curve = fast.solve(code, reg, 83.0)
        auc = curve.auc("ketamine", np.inf) / 1000.0  # mg·min/L
        assert auc * cl / reg.iv_dose_mg(83.0) == pytest.approx(1.0, abs=1e-9)


def test_mass_balance_fast_path_esketamine():
    cl = float(np.asarray(build_system("perez-ruixo-2021").clearance_l_per_min))
    for mg in (28, 56, 84):
        reg = Regimen.nasal_session(mg)
        auc = fast.solve("perez-ruixo-2021", reg).auc("esketamine", np.inf) / 1000.0
        absorbed = analysis.esketamine_absorbed_mg(reg)
        assert auc * cl / absorbed == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("code", ["domino", "kamp-2020"])  # the three-compartment models
@pytest.mark.parametrize("weight", [25.0, 70.0, 350.0])
def test_cubic_roots_are_correctly_rounded_to_an_ulp_or_so(code, weight):
    """One Newton step after the trigonometric form: every root within 2.5e-16 relative
    (about one unit in the last place) of the root refined in 60-digit decimals."""
    from decimal import Decimal, localcontext

    model = get_model(code)
    rates = mammillary_rates(model, weight, model.default_scaling)[1:]
    a2, a1, a0 = fast._cubic_coefficients(*rates)
    roots = fast._cubic_roots(a2, a1, a0)
    with localcontext() as ctx:
        ctx.prec = 60
        c2, c1, c0 = Decimal(a2), Decimal(a1), Decimal(a0)
        for x0 in roots:
            x = Decimal(x0)
            for _ in range(8):
                x -= (((x - c2) * x + c1) * x - c0) / ((3 * x - 2 * c2) * x + c1)
            assert abs(x0 - float(x)) <= 2.5e-16 * float(x), (x0, float(x))


@pytest.mark.parametrize("code", RACEMIC_MODELS)
@pytest.mark.parametrize("weight", [25.0, 70.0, 350.0])
def test_closed_form_mammillary_modes_match_eigendecomposition(code, weight):
    model = get_model(code)
    for scaling in model.scalings:
        closed = fast._compute(model, weight, None, scaling)
        eig = fast._eigen_modes(model, weight, None, scaling)
        assert closed.method == "closed-form mammillary"
        o1, o2 = np.argsort(closed.lam), np.argsort(eig.lam)
        np.testing.assert_allclose(closed.lam[o1], eig.lam[o2], rtol=1e-12)
        np.testing.assert_allclose(
            closed.coef["ketamine"][0, o1], eig.coef["ketamine"][0, o2], rtol=1e-10
        )


def test_fast_path_is_accurate_where_the_reference_loses_digits():
    """Late in the terminal phase the reference modal path computes exp as
    expm1 + 1 and loses digits; the fast path stays within 1e-13 of an extended-
    precision evaluation of the same closed form (Domino, 0.5 mg/kg/40 min)."""
    L = np.longdouble
    k10, k12, k21, k13, k31 = map(L, ("0.438", "0.592", "0.247", "0.590", "0.0146"))
    v1 = L("0.063") * 70
    a2 = k10 + k12 + k13 + k21 + k31
    a1 = k10 * k21 + k10 * k31 + k21 * k31 + k21 * k13 + k31 * k12
    a0 = k10 * k21 * k31
    r = np.sort(np.roots([1.0, -float(a2), float(a1), -float(a0)]).real).astype(L)
    for _ in range(8):
        r = r - (((r - a2) * r + a1) * r - a0) / ((3 * r - 2 * a2) * r + a1)
    A = [1000 / v1 * (k21 - a) * (k31 - a) / np.prod([b - a for b in r if b != a]) for a in r]
    rate = L(35) / 40
    t = np.array([1.0, 20.0, 40.0, 200.0, 1000.0, 2000.0, 3000.0])
    ref = np.array(
        [
            sum(
                rate * Ai * (-np.expm1(-a * L(min(tt, 40)))) / a * np.exp(-a * L(max(tt - 40, 0)))
                for a, Ai in zip(r, A, strict=True)
            )
            for tt in t
        ]
    )
    ours = simulate("domino", STD, 70.0, times_min=t).concentrations.astype(L)
    assert float(np.max(np.abs(ours / ref - 1))) < 1e-13


def test_unsorted_and_pre_dose_times():
    reg = Regimen.infusion(mg=20, minutes=30, start_min=10).add_bolus(mg=5, at_min=60)
    curve = fast.solve("kamp-2020", reg)
    t = np.array([500.0, 0.0, 10.0, 5.0, 61.0, 60.0, 9.999, 1e4])
    order = np.argsort(t)
    a = curve.evaluate(t)[0]
    b = curve.evaluate(t[order])[0]
    np.testing.assert_allclose(a[order], b, rtol=1e-14, atol=0)
    assert a[1] == 0.0 and a[3] == 0.0 and a[6] == 0.0  # before the first dose
    for tt, v in zip(t, a, strict=True):
        assert curve.value("ketamine", tt) == pytest.approx(v, rel=1e-13, abs=1e-300)
    # gathered (unsorted) and segment-by-segment (sorted) evaluation agree for every
    # output and for the derivative, also on a model with a metabolite
    nasal = fast.solve("perez-ruixo-2021", Regimen.nasal_session(84))
    for c in (curve, nasal):
        for derivative in (False, True):
            a = c.evaluate(t, derivative=derivative)
            b = c.evaluate(t[order], derivative=derivative)
            np.testing.assert_allclose(a[:, order], b, rtol=1e-12, atol=1e-12)


def test_concentrations_equals_simulate_curve():
    t = np.arange(0, 1441.0)
    got = fast.concentrations("domino", STD, 70.0, t)
    assert np.array_equal(got, simulate("domino", STD, 70.0, times_min=t).concentrations)
    # Esketamine: ``concentrations`` leaves out the metabolite, and a matrix product
    # with one output row may round differently from one with two.
    reg = Regimen.nasal_session(56)
    got = fast.concentrations("perez-ruixo-2021", reg, 70.0, t)
    want = simulate("perez-ruixo-2021", reg, 70.0, times_min=t).concentrations
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
    with pytest.raises(ValueError, match="finite minutes"):
        fast.concentrations("domino", STD, 70.0, [0.0, np.nan])
    with pytest.raises(ValueError, match="finite minutes"):
        fast.concentrations("domino", STD, 70.0, [-1.0])
    with pytest.raises(ValueError, match="finite minutes"):  # a uniform grid from -5 min
        fast.concentrations("domino", STD, 70.0, np.arange(-5.0, 60.0))
    with pytest.raises(ValueError, match="finite minutes"):
        fast.concentrations("domino", STD, 70.0, [*range(30), np.inf])
    with pytest.raises(ValueError, match="finite minutes"):
        fast.concentrations("domino", STD, 70.0, np.zeros((2, 20)))
    assert fast.concentrations("domino", STD, 70.0, []).shape == (0,)
    with pytest.raises(ValueError, match="no doses"):
        fast.concentrations("domino", Regimen(), 70.0)


def test_cache_is_per_parameter_set_and_modified_models_are_not_cached():
    fast.clear_cache()
    a = fast.decompose("domino", 70)
    assert fast.decompose("domino", 70.0) is a
    assert fast.decompose("domino", 80.0) is not a
    base = get_model("clements-250")
    changed = dataclasses.replace(
        base,
        parameters={
            **base.parameters,
            "k10": dataclasses.replace(base.parameters["k10"], value=0.02),
        },
    )
    m = fast.decompose(changed, 70.0)
    assert m is not fast.decompose(base, 70.0)
    assert not np.allclose(np.sort(m.lam), np.sort(fast.decompose(base, 70.0).lam))
    with pytest.raises(ValueError, match="weight"):
        fast.decompose("domino", -1)
    with pytest.raises(ValueError, match="scaling"):
        fast.decompose("domino", 70, scaling="allometric")


def test_repeated_roots_fall_back_to_the_matrix_exponential():
    """k12 = 0 and k10 = k21: a double root; the closed form declines and simulate
    uses the exact matrix-exponential path."""
    base = get_model("clements-250")
    p = dict(base.parameters)
    p["k12"] = dataclasses.replace(p["k12"], value=0.0)
    p["k21"] = dataclasses.replace(p["k21"], value=p["k10"].value)
    model = dataclasses.replace(base, parameters=p)
    assert fast._mammillary_modes(1.0, 0.1, 0.0, 0.1) is None
    assert fast._cubic_roots(3.0, 3.0, 1.0) is None  # (x - 1)^3: a triple root
    assert fast.solve(model, STD, 70.0) is None or fast.solve(model, STD, 70.0).modes.method != (
        "closed-form mammillary"
    )
    pred = simulate(model, STD, 70.0)
    system = build_system(model, 70.0)
    inputs = compile_inputs(model, system, STD, 70.0)
    ref = solve_expm(system, inputs, pred.times_min, ["ketamine"])[0]["ketamine"]
    assert _rel(pred.concentrations, ref)[0] <= 1e-9


@settings(max_examples=25, deadline=None)
@given(
    code=st.sampled_from(list(RACEMIC_MODELS)),
    weight=st.floats(25, 350),
    mg=st.floats(1, 100),
    start=st.floats(0, 600),
    minutes=st.floats(0.5, 240),
    bolus_at=st.floats(0, 900),
)
def test_fast_matches_modal_for_random_regimens(code, weight, mg, start, minutes, bolus_at):
    reg = Regimen.infusion(mg=mg, minutes=minutes, start_min=start).add_bolus(
        mg=mg / 3, at_min=bolus_at
    )
    new = simulate(code, reg, weight, hours=24)
    ref = simulate(code, reg, weight, hours=24, solver="modal")
    rel, near = _rel(new.concentrations, ref.concentrations)
    assert rel <= RTOL and near <= 1e-12
    assert new.cmax == pytest.approx(ref.cmax, rel=RTOL)
    assert new.tmax_min == pytest.approx(ref.tmax_min, rel=RTOL)
    assert new.auc_0_24h == pytest.approx(ref.auc_0_24h, rel=RTOL)


@pytest.mark.parametrize("code,label", CASES)
def test_uniform_grid_blocks_match_direct_exponentials(code, label, monkeypatch):
    """Uniform grids take their exponentials from two short rows and an outer product
    instead of one exponential per point; the result must equal the direct formula to
    1e-10 (observed up to 6e-12 on the esketamine metabolite, whose modes cancel), also
    far into the terminal phase where factors sit at the underflow floor."""
    regimen = extra_regimens(code)[label]
    curve = fast.solve(code, regimen, 70.0)
    for grid in (np.arange(0.0, 1441.0), np.arange(0.0, 10_000.0, 2.5)):
        assert fast._uniform_step(grid) is not None
        quick = curve.evaluate(grid)
        slope = curve.evaluate(grid, derivative=True)
        monkeypatch.setattr(fast, "UNIFORM_MIN_POINTS", 10**9)
        direct = curve.evaluate(grid)
        direct_slope = curve.evaluate(grid, derivative=True)
        for o in range(len(curve.names)):
            assert max(_rel(quick[o], direct[o])) <= 1e-10, (label, o)
            assert max(_rel(slope[o], direct_slope[o])) <= 1e-10, (label, o)
        monkeypatch.undo()


def test_uniform_step_detection():
    assert fast._uniform_step(np.arange(0.0, 100.0)) == 1.0
    assert fast._uniform_step(np.array([0.0, 1.0, 2.0, 3.5, *range(4, 30)])) is None
    assert fast._uniform_step(np.arange(5.0)) is None  # too short to be worth it
    assert fast._uniform_step(np.zeros(40)) is None
