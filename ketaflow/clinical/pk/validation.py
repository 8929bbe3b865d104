"""Validation checks and the Markdown/HTML report (``ketaflow pk validate``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np

from . import analysis
from .models import MODELS, RACEMIC_MODELS, build_system, get_model
from .opentiva import OpentivaUnavailable, compare
from .regimen import Regimen
from .simulate import simulate
from .solver import ModalSolution, compile_inputs, solve_expm, solve_ode
from .svg import line_chart

DEFAULT_OUT = Path("var/reports/pk-validation")
SOLVER_RTOL = 1e-6
OPENTIVA_RTOL = 1e-3
MEASURED_185 = "Zarate 2006 via Zanos et al., Pharmacol Rev 2018, Table 1 (clinical reference s.7)"
REF = "clinical reference s.7"
PR = "Perez-Ruixo 2021 as quoted in clinical reference s.7"
TABLE4 = (
    "Perez-Ruixo et al., Clin Pharmacokinet 2021, Table 4 (typical non-Asian adult 18-60 y, "
    "one nasal session), as transcribed in nlmixr2lib's PerezRuixo_2020_esketamine vignette"
)
# Table 4, non-Asian adults 18-60 y: (esketamine Cmax ng/mL, AUC0-24 ng·h/mL,
# noresketamine Cmax, AUC0-24) by session dose.
TABLE4_VALUES = {
    28: (43.8, 147.3, 59.1, 274.4),
    56: (72.5, 254.7, 119.7, 516.3),
    84: (101.0, 362.2, 180.0, 758.0),
}
# The published Table 3 model, implemented literally (and independently by nlmixr2lib),
# gives these multiples of Table 4's noresketamine AUC0-24; docs/pk.md explains why ketaflow
# does not rescale the model to hide it.
NORESKETAMINE_AUC_EXCESS = {28: 1.410, 56: 1.445, 84: 1.457}


def solver_regimens(code: str) -> dict[str, Regimen]:
    """Regimens on which the three solvers must agree (used by tests and report)."""
    if code == "perez-ruixo-2021":
        return {
            "28 mg nasal": Regimen.nasal_session(28),
            "56 mg nasal": Regimen.nasal_session(56),
            "84 mg nasal, devices 7 min apart": Regimen.nasal_session(84, interval_min=7),
            "56 mg then 84 mg 12 h later": Regimen.nasal_session(56).add_nasal(84, at_min=720),
            "28 mg IV over 40 min + 5 mg bolus": Regimen.infusion(mg=28, minutes=40).add_bolus(
                mg=5, at_min=90
            ),
        }
    return {
        "0.5 mg/kg over 40 min": Regimen.infusion(mg_per_kg=0.5, minutes=40),
        "bolus 0.1 mg/kg": Regimen.bolus(mg_per_kg=0.1),
        "rate change, pause, bolus": Regimen.infusion(mg=35, minutes=40)
        .change_rate(15.0, 1.2)
        .pause(25.0, 7.5)
        .add_bolus(mg=5, at_min=120.25),
        "step-up 0.75 mg/kg over 45 min, two sessions": Regimen.infusion(
            mg_per_kg=0.75, minutes=45
        ).add_infusion(mg_per_kg=0.75, minutes=45, start_min=600),
    }


def solver_agreement(code: str, regimen: Regimen, weight_kg=70.0, times=None) -> dict:
    """Max relative differences between modal, expm and ODE paths for each output."""
    model = get_model(code)
    system = build_system(model, weight_kg)
    inputs = compile_inputs(model, system, regimen, weight_kg)
    t = np.arange(0.0, 24 * 60 + 1, 7.5) if times is None else np.asarray(times, float)
    t = np.unique(np.concatenate([t, inputs.breakpoints[inputs.breakpoints <= t.max()]]))
    names = [model.analyte] + ([model.metabolite] if model.metabolite else [])
    modal = ModalSolution(system, inputs)
    e_c, e_a = solve_expm(system, inputs, t, names)
    o_c, o_a = solve_ode(system, inputs, t, names)
    sweep = modal.sweep(names, t)
    worst = {}
    for nm in names:
        m = modal.evaluate(nm, t)[0]
        ref = e_c[nm]
        # Relative differences where the level is at least 1e-9 of the peak; below that
        # (e.g. the instant of a nasal dose, when plasma is exactly 0) the absolute
        # difference, scaled by the peak, is reported instead.
        peak = float(np.max(np.abs(ref)))
        big = np.abs(ref) >= 1e-9 * peak

        def rel(a, b=ref, big=big, peak=peak):
            r = np.abs(a[big] - b[big]) / np.abs(b[big])
            z = np.abs(a[~big] - b[~big]) / peak
            return float(r.max()) if r.size else 0.0, float(z.max()) if z.size else 0.0

        res = {
            "modal_vs_expm": rel(m),
            "ode_vs_expm": rel(o_c[nm]),
            "sweep_vs_expm": rel(sweep[nm][0]),
        }
        worst[nm] = {k: v[0] for k, v in res.items()}
        worst[nm].update({f"{k}_near_zero_abs_over_peak": v[1] for k, v in res.items()})
        worst[nm]["auc_modal_vs_expm"] = abs(float(modal.auc(nm, t.max())[0]) / e_a[nm][-1] - 1)
        worst[nm]["auc_ode_vs_expm"] = abs(o_a[nm][-1] / e_a[nm][-1] - 1)
    return worst


@dataclass
class Check:
    group: str
    name: str
    expected: str
    source: str
    computed: str
    passed: bool
    detail: str = ""
    # Set when the check compares with a published figure that the published model itself
    # does not reproduce: ``passed`` then means "still exactly the documented deviation"
    # and the report says DEVIATES, never PASS.
    deviation: str = ""

    @property
    def result(self) -> str:
        if not self.passed:
            return "FAIL"
        return "DEVIATES (documented)" if self.deviation else "PASS"


def _run(checks: list[Check], group, name, expected, source, fn: Callable[[], tuple[str, bool]]):
    try:
        computed, ok = fn()
        checks.append(Check(group, name, expected, source, computed, bool(ok)))
    except Exception as exc:  # a crashing check is a failing check
        checks.append(Check(group, name, expected, source, f"error: {exc}", False))


def run_checks(include_opentiva: bool = True) -> list[Check]:
    checks: list[Check] = []
    # 1. solvers
    for code in MODELS:
        for label, reg in solver_regimens(code).items():

            def fn(code=code, reg=reg):
                w = solver_agreement(code, reg)
                rel = max(x for v in w.values() for k, x in v.items() if "near_zero" not in k)
                near = max(x for v in w.values() for k, x in v.items() if "near_zero" in k)
                return (
                    f"max relative difference {rel:.1e} (points at <1e-9 of peak: "
                    f"absolute difference {near:.0e} × peak)",
                    rel <= SOLVER_RTOL and near <= 1e-12,
                )

            _run(
                checks,
                "Solvers",
                f"{code}: {label}",
                f"closed-form, matrix exponential, time-stepping and ODE agree within {SOLVER_RTOL:g}",
                REF,
                fn,
            )
    # 2. mass balance
    for code in RACEMIC_MODELS:

        def mb(code=code):
            r1 = analysis.mass_balance_ratio(code, Regimen.infusion(mg_per_kg=0.5, minutes=40), 83)
            r2 = analysis.mass_balance_ratio(
                code, solver_regimens(code)["rate change, pause, bolus"]
            )
            a_inf = analysis.auc_inf(code, Regimen.infusion(mg=35, minutes=40))
            a_bol = analysis.auc_inf(code, Regimen.bolus(mg=35))
            worst = max(abs(r1 - 1), abs(r2 - 1), abs(a_inf / a_bol - 1))
            return (
                f"AUC×CL/dose = {r1:.12f} and {r2:.12f}; infusion/bolus AUC ratio "
                f"{a_inf / a_bol:.12f}",
                worst < 1e-9,
            )

        _run(checks, "Mass balance", code, "AUC0-∞ × CL = dose; infusion AUC = bolus AUC", REF, mb)

    def mb_esk():
        r = analysis.mass_balance_ratio("perez-ruixo-2021", Regimen.nasal_session(56))
        r84 = analysis.mass_balance_ratio("perez-ruixo-2021", Regimen.nasal_session(84))
        n = analysis.noresketamine_mass_balance(Regimen.nasal_session(56))
        worst = max(abs(r - 1), abs(r84 - 1), abs(n - 1))
        return (
            f"esketamine AUC×CL/absorbed = {r:.12f} (56 mg), {r84:.12f} (84 mg); "
            f"noresketamine AUC×CLn/formed = {n:.12f}",
            worst < 1e-9,
        )

    _run(
        checks,
        "Mass balance",
        "perez-ruixo-2021",
        "AUC0-∞ × CL = absorbed amount (CL = Qh·E, well-stirred liver)",
        REF,
        mb_esk,
    )

    # 3. Hijazi
    def hij_cl():
        v = analysis.clearance_ml_min_kg("hijazi-2003")
        return f"{v:.3f} mL/min/kg", round(v, 1) == 36.0

    def hij_t():
        v = analysis.terminal_half_life_h("hijazi-2003")
        return f"{v:.3f} h", abs(v - 4.9) <= 0.1

    _run(checks, "Hijazi 2003", "clearance", "36.0 mL/min/kg (to 0.1)", REF, hij_cl)
    _run(checks, "Hijazi 2003", "terminal half-life", "about 4.9 h (±0.1 h)", REF, hij_t)

    # 4. 185 ng/mL at end of 0.5 mg/kg/40 min
    for code in RACEMIC_MODELS:

        def c40(code=code):
            p = simulate(code, Regimen.infusion(mg_per_kg=0.5, minutes=40), 70.0, times_min=[40.0])
            c = float(p.concentrations[0])
            return f"{c:.1f} ng/mL ({(c / 185 - 1) * 100:+.0f}%)", abs(c / 185 - 1) <= 0.40

        _run(
            checks,
            "Measured level",
            f"{code} at 40 min, 0.5 mg/kg/40 min, 70 kg",
            "185 ng/mL ± 40%",
            MEASURED_185,
            c40,
        )

    # 5. esketamine
    for mg, target in ((56, 0.54), (84, 0.51)):

        def f_(mg=mg, target=target):
            b = analysis.esketamine_bioavailability(mg)
            return (
                f"{b['auc_ratio'] * 100:.2f}% (AUC ratio); {b['structural'] * 100:.2f}% "
                f"(FRn_eff {b['frn_eff']:.4f} + swallowed × Fgut × (1-E) {b['hepatic_availability']:.4f})",
                abs(b["auc_ratio"] - target) <= 0.02
                and abs(b["auc_ratio"] - b["structural"]) < 1e-9,
            )

        _run(
            checks,
            "Esketamine",
            f"bioavailability {mg} mg",
            f"{target * 100:.0f}% ± 2 points",
            PR,
            f_,
        )

    def vss():
        v = analysis.esketamine_vss()
        return (
            f"Vc+Vp1+Vp2 = {v['disposition_sum']:.1f} L; including the liver at its "
            f"steady-state concentration ratio (1-E = {v['liver_weighting']:.3f}): "
            f"{v['steady_state']:.1f} L",
            abs(v["disposition_sum"] - 752) <= 7.5,
        )

    _run(checks, "Esketamine", "Vss", "752 L (±1%)", PR, vss)

    def thalf():
        v = analysis.terminal_half_life_h("perez-ruixo-2021")
        return f"{v:.2f} h", 7 <= v <= 12

    _run(checks, "Esketamine", "terminal half-life", "7-12 h", PR + " (label)", thalf)
    for mg in (28, 56, 84):

        def peak(mg=mg):
            reg = Regimen.nasal_session(mg)
            p = simulate("perez-ruixo-2021", reg, hours=6)
            after = p.tmax_min - reg.last_nasal_device_min
            return (
                f"tmax {after:.1f} min after the last device (Cmax {p.cmax:.1f} ng/mL)",
                20 <= after <= 40,
            )

        _run(
            checks, "Esketamine", f"peak time {mg} mg", "20-40 min after the last device", PR, peak
        )

    # 5b. Table 4 of the paper: Cmax and AUC0-24 of esketamine and noresketamine
    for mg, (e_cmax, e_auc, n_cmax, n_auc) in TABLE4_VALUES.items():

        def table4(mg=mg):
            p = simulate("perez-ruixo-2021", Regimen.nasal_session(mg), hours=24)
            return p, p.metabolite

        for label, target, pick in (
            ("esketamine Cmax", e_cmax, lambda r: r[0].cmax),
            ("esketamine AUC0-24", e_auc, lambda r: r[0].auc_0_24h),
            ("noresketamine Cmax", n_cmax, lambda r: r[1].cmax),
        ):

            def within(target=target, pick=pick, mg=mg):
                v = pick(table4(mg))
                return f"{v:.1f} ({v / target * 100:.1f}% of Table 4)", abs(v / target - 1) <= 0.03

            _run(
                checks, "Esketamine Table 4", f"{label} {mg} mg", f"{target} (±3%)", TABLE4, within
            )

        def nor_auc(mg=mg, target=n_auc):
            v = table4(mg)[1].auc_0_24h
            ratio = v / target
            return (
                f"{v:.1f} ng·h/mL ({ratio * 100:.1f}% of Table 4)",
                abs(ratio - NORESKETAMINE_AUC_EXCESS[mg]) <= 0.01,
            )

        before = len(checks)
        _run(
            checks,
            "Esketamine Table 4",
            f"noresketamine AUC0-24 {mg} mg",
            f"{n_auc} ng·h/mL (±10%)",
            TABLE4,
            nor_auc,
        )
        if len(checks) > before and checks[-1].passed:
            checks[-1].deviation = (
                f"the published Table 3 model gives {NORESKETAMINE_AUC_EXCESS[mg] * 100:.1f}% "
                "of Table 4 (ketaflow and nlmixr2lib alike); no published unit, fraction "
                "metabolised or molar-mass reading reconciles it without breaking Cmax "
                "(docs/pk.md, 'Noresketamine')"
            )
            checks[-1].detail = checks[-1].deviation

    # 6. opentiva
    if include_opentiva:
        try:
            res = compare()
        except OpentivaUnavailable as exc:
            checks.append(
                Check(
                    "opentiva",
                    "independent implementation",
                    "available",
                    "opentiva 1.1.2",
                    str(exc),
                    False,
                )
            )
        else:
            for cid, row in res["cases"].items():
                own = "same-parameters" not in cid and row["model"] == "domino"
                value = row["max_rel_diff_first_6h"] if own else row["max_rel_diff"]
                window = "0-6 h" if own else "0-24 h"
                detail = ""
                if own:
                    detail = (
                        f"opentiva's own Domino constants (k10 {row['opentiva_params']['k10']}, "
                        f"k12 {row['opentiva_params']['k12']}) carry one more decimal than the "
                        f"reference (0.438, 0.592); over 0-24 h the difference is "
                        f"{row['max_rel_diff']:.1e}"
                    )
                checks.append(
                    Check(
                        "opentiva",
                        f"{cid} ({row['scaling']} scaling)",
                        f"relative difference ≤ {OPENTIVA_RTOL:g} ({window}, 1-min grid)",
                        f"opentiva {res.get('opentiva_version')}",
                        f"{value:.1e}",
                        value <= OPENTIVA_RTOL,
                        detail,
                    )
                )
    return checks


def informational() -> list[tuple[str, str]]:
    """Facts worth knowing that are not pass/fail checks."""
    fh = analysis.hepatic_availability()
    return [
        (
            "Esketamine plasma clearance implied by the model (Qh·E)",
            f"{analysis.esketamine_clearance_l_h():.1f} L/h (the paper's abstract reports 114 L/h; "
            "not in ketaflow's reference)",
        ),
        (
            "Fraction of the swallowed dose reaching plasma (Fgut × (1-E))",
            f"{0.64 * fh * 100:.1f}% (the paper's abstract reports 18.6%)",
        ),
        (
            "Terminal half-lives (h)",
            ", ".join(f"{c} {analysis.terminal_half_life_h(c):.2f}" for c in MODELS),
        ),
    ]


VENOUS_PARAGRAPH = (
    "Why the models read higher than the trials: the four racemic models describe the "
    "concentration in a central compartment that was fitted mostly to arterial samples or to "
    "samples taken at anaesthetic doses. During an infusion, arterial blood carries drug "
    "straight from the heart, while venous blood from the arm has passed through tissue that "
    "is still taking drug up, so venous levels lag and read lower until distribution "
    "equilibrates. The depression trials (Zarate 2006, Krystal 1994) sampled venous blood, "
    "so a central-compartment prediction above the measured 100-250 ng/mL range at the end "
    "of the infusion is expected and is not by itself a model error. Domino's small central "
    "volume (0.063 L/kg) makes it the most sensitive to this."
)


def _plots() -> dict[str, str]:
    reg = Regimen.infusion(mg_per_kg=0.5, minutes=40)
    t = np.linspace(0, 240, 481)
    series = [
        (c, t, simulate(c, reg, 70.0, times_min=t, hours=4).concentrations) for c in RACEMIC_MODELS
    ]
    racemic = line_chart(
        series,
        title="Racemic ketamine 0.5 mg/kg over 40 min, 70 kg: four models",
        desc=(
            "Predicted plasma ketamine for the Domino, Clements 250, Hijazi 2003 and Kamp 2020 "
            "models, with the 100-250 ng/mL range measured in venous blood during such "
            "infusions shaded. "
            + "; ".join(
                f"{c}: {s[2][t == 40][0]:.0f} ng/mL at 40 min"
                for c, _, s in [(x[0], x[1], x) for x in series]
            )
        ),
        shade_range=(100, 250),
        shade_label="Measured 100–250 ng/mL (venous, Krystal 1994)",
        markers=[(40.0, "end of infusion")],
    )
    te = np.linspace(0, 720, 721)
    esk = []
    for mg in (28, 56, 84):
        p = simulate("perez-ruixo-2021", Regimen.nasal_session(mg), times_min=te, hours=12)
        esk.append((f"{mg} mg esketamine", te, p.concentrations))
    esketamine = line_chart(
        esk,
        title="Esketamine nasal spray 28, 56 and 84 mg (Perez-Ruixo 2021)",
        desc="Predicted esketamine plasma concentration after one session of 1, 2 or 3 devices "
        "5 minutes apart, typical non-Asian adult aged 18-60.",
        shade_range=None,
    )
    return {"racemic-0.5mgkg-40min.svg": racemic, "esketamine-nasal.svg": esketamine}


def _markdown(checks: list[Check], info, stamp: str) -> str:
    n_pass = sum(c.passed for c in checks)
    lines = [
        "# ketaflow pharmacokinetics validation report",
        "",
        f"Generated {stamp}. **{n_pass} of {len(checks)} checks passed"
        f" ({sum(bool(c.deviation) for c in checks if c.passed)} of them a documented "
        "deviation from a published figure)"
        f"{'' if n_pass == len(checks) else ' - SEE FAILURES BELOW'}.**",
        "",
        "Every value below is recomputed by `ketaflow pk validate`; parameters come only from "
        "ketaflow's clinical reference (section 7).",
        "",
    ]
    group = None
    for c in checks:
        if c.group != group:
            group = c.group
            lines += [
                "",
                f"## {group}",
                "",
                "| Check | Expected | Source | Computed | Result |",
                "|---|---|---|---|---|",
            ]
        cell = c.computed + (f" — {c.detail}" if c.detail else "")
        lines.append(
            f"| {c.name} | {c.expected} | {c.source} | {cell.replace('|', '/')} | "
            f"{c.result if c.passed else '**FAIL**'} |"
        )
    lines += ["", "## Notes (not pass/fail)", ""]
    lines += [f"- **{k}**: {v}" for k, v in info]
    lines += [
        "- **Vss definition**: the paper's 752 L equals Vc + Vp1 + Vp2, i.e. the liver "
        "compartment counted as part of the clearing organ. Counting the liver compartment at "
        "its steady-state concentration (1 - E times plasma) gives the larger value shown.",
        "",
        "## Racemic models against measured levels",
        "",
        "![Four racemic models, 0.5 mg/kg over 40 min](racemic-0.5mgkg-40min.svg)",
        "",
        VENOUS_PARAGRAPH,
        "",
        "## Esketamine",
        "",
        "![Esketamine nasal sessions](esketamine-nasal.svg)",
        "",
        "*Population estimates, not measurements.*",
        "",
    ]
    return "\n".join(lines)


def _html(checks: list[Check], info, plots: dict[str, str], stamp: str) -> str:
    n_pass = sum(c.passed for c in checks)
    rows = []
    group = None
    for c in checks:
        if c.group != group:
            group = c.group
            rows.append(f'<tr><th colspan="5" scope="rowgroup">{escape(group)}</th></tr>')
        cls = ("deviates" if c.deviation else "pass") if c.passed else "fail"
        detail = f"<br><small>{escape(c.detail)}</small>" if c.detail else ""
        rows.append(
            f"<tr><td>{escape(c.name)}</td><td>{escape(c.expected)}</td>"
            f"<td>{escape(c.source)}</td><td>{escape(c.computed)}{detail}</td>"
            f'<td class="{cls}">{escape(c.result)}</td></tr>'
        )
    notes = "".join(f"<li><strong>{escape(k)}</strong>: {escape(v)}</li>" for k, v in info)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>ketaflow pharmacokinetics validation report</title>
<style>
body {{ font-family: sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; width: 100%; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 6px; text-align: left; vertical-align: top; }}
th[scope=rowgroup] {{ background: #f0f0f0; }}
td.pass {{ color: #1b5e20; font-weight: bold; }}
td.fail {{ color: #b00020; font-weight: bold; }}
figure {{ margin: 1.5em 0; }}
</style></head><body>
<h1>ketaflow pharmacokinetics validation report</h1>
<p>Generated {escape(stamp)}. <strong>{n_pass} of {len(checks)} checks passed.</strong>
Parameters come only from ketaflow's clinical reference (section 7).</p>
<table><thead><tr><th scope="col">Check</th><th scope="col">Expected</th>
<th scope="col">Source</th><th scope="col">Computed</th><th scope="col">Result</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<h2>Notes (not pass/fail)</h2><ul>{notes}
<li><strong>Vss definition</strong>: the paper's 752 L equals Vc + Vp1 + Vp2 (the liver
compartment counted as part of the clearing organ); counting the liver at its steady-state
concentration gives the larger value shown in the table.</li></ul>
<h2>Racemic models against measured levels</h2>
<figure>{plots["racemic-0.5mgkg-40min.svg"]}
<figcaption>Population estimate, not a measurement.</figcaption></figure>
<p>{escape(VENOUS_PARAGRAPH)}</p>
<h2>Esketamine</h2>
<figure>{plots["esketamine-nasal.svg"]}
<figcaption>Population estimate, not a measurement.</figcaption></figure>
</body></html>
"""


def validate(out_dir: str | Path = DEFAULT_OUT, include_opentiva: bool = True) -> bool:
    """Rerun every check and write report.md, report.html and SVG plots to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    checks = run_checks(include_opentiva=include_opentiva)
    info = informational()
    plots = _plots()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    for name, svg in plots.items():
        (out / name).write_text(svg, encoding="utf-8")
    (out / "report.md").write_text(_markdown(checks, info, stamp), encoding="utf-8")
    (out / "report.html").write_text(_html(checks, info, plots, stamp), encoding="utf-8")
    return all(c.passed for c in checks)
