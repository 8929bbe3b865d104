"""Pharmacokinetics benchmark (run on demand, not a test).

    .venv/bin/python -m benchmarks.pk_bench      (or: .venv/bin/python benchmarks/pk_bench.py)
    .venv/bin/python -m benchmarks.pk_bench --quick     (fewer repeats)

Prints medians (and the best run) of: one 24-hour curve at one-minute resolution
(target < 5 ms), a population of 10,000 virtual patients (target < 1 s), and the speed
ratio against opentiva for the same Domino regimen (target >= 10x) with the agreement
between the two (target: within 1e-3 relative).

The opentiva comparison is like for like: the same Domino 0.5 mg/kg/40 min regimen for
70 kg, the same 1,441 one-minute output times, and the same work - opentiva's timed
call builds its model and pump (``Pump`` set-up, ``generate_infusions``) and computes
the concentration at every output time (``calculate_cp``); ketaflow's like-for-like call
(``fast.concentrations``) builds the model, decomposes it (cache cleared before every
call) and computes the same concentrations.  ``simulate`` does more work (exact Cmax and
tmax, analytic AUC): its ratio is reported separately and labelled as such.  Both sides
are timed in their own process, in alternating rounds, so that load from other users of
the machine hits both alike.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from ketaflow.clinical.pk import Regimen, fast, population, simulate
from ketaflow.clinical.pk.opentiva import (
    GRID_24H,
    SCRIPT,
    Case,
    OpentivaUnavailable,
    _infusion,
    opentiva_python,
    run_opentiva,
)

GRID_1MIN = np.arange(0, 24 * 60 + 1, 1.0)
TARGET_CURVE_S = 0.005
TARGET_POPULATION_S = 1.0
TARGET_RATIO = 10.0
TARGET_AGREEMENT = 1e-3

# Runs inside the opentiva venv (Python 3.10): times scripts/opentiva_compare.py's own
# _pump (model + Pump set-up + generate_infusions) and _curve (calculate_cp per point).
OPENTIVA_TIMER = """
import json, sys, time
sys.path.insert(0, {scripts!r})
from opentiva_compare import _curve, _pump
case = json.loads(sys.stdin.read())
pump, _ = _pump(case)
_curve(pump, case["times_s"])  # warm up
times = []
for _ in range({repeat}):
    t0 = time.perf_counter()
    pump, _ = _pump(case)
    _curve(pump, case["times_s"])
    times.append(time.perf_counter() - t0)
print(json.dumps(times))
"""


def timings(fn, repeat: int) -> list[float]:
    fn()  # warm up
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def fmt(ts: list[float]) -> str:
    return f"median {statistics.median(ts) * 1e3:8.3f} ms (best {min(ts) * 1e3:8.3f})"


def opentiva_timings(case: Case, repeat: int) -> list[float]:
    code = OPENTIVA_TIMER.format(scripts=str(SCRIPT.parent), repeat=int(repeat))
    proc = subprocess.run(
        [str(opentiva_python()), "-c", code],
        input=json.dumps(case.request()),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise OpentivaUnavailable(proc.stderr.strip()[-800:])
    return json.loads(proc.stdout)


def like_for_like(case: Case, times_min: np.ndarray):
    """ketaflow's equivalent of opentiva's timed work: model set-up, decomposition
    (cache cleared) and the concentrations at the output times - nothing else."""
    fast.clear_cache()
    return fast.concentrations(case.model, case.regimen(), case.weight_kg, times_min)


def full_simulate(case: Case, times_min: np.ndarray):
    """``simulate`` with the summary (exact Cmax/tmax, analytic AUC), cache cleared."""
    fast.clear_cache()
    return simulate(case.model, case.regimen(), case.weight_kg, times_min=times_min)


def max_rel(ours: np.ndarray, theirs: np.ndarray, upto_s: int | None = None) -> float:
    mask = theirs > 1e-9 * theirs.max()
    if upto_s is not None:
        mask &= np.asarray(GRID_24H) <= upto_s
    return float(np.max(np.abs(ours[mask] - theirs[mask]) / theirs[mask]))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    quick = "--quick" in argv
    n_curve = 30 if quick else 200
    n_pop = 3 if quick else 7
    std = Regimen.infusion(mg_per_kg=0.5, minutes=40)
    print("ketaflow pk benchmark: medians over repeated runs (best run in brackets).")
    print("The machine may be shared (2 cores here): compare ratios, not absolute times.\n")

    def cold(fn):
        def run():
            fast.clear_cache()
            return fn()

        return run

    rows = [
        (
            "24 h curve, 1-min grid, domino 0.5 mg/kg/40 min (simulate: curve, Cmax, AUC)",
            cold(lambda: simulate("domino", std, 70, times_min=GRID_1MIN)),
            TARGET_CURVE_S,
            n_curve,
        ),
        (
            "24 h curve, 1-min grid, kamp-2020 (simulate)",
            cold(lambda: simulate("kamp-2020", std, 70, times_min=GRID_1MIN)),
            TARGET_CURVE_S,
            n_curve,
        ),
        (
            "24 h curve, 1-min grid, perez-ruixo-2021 84 mg (+ noresketamine, simulate)",
            cold(
                lambda: simulate("perez-ruixo-2021", Regimen.nasal_session(84), times_min=GRID_1MIN)
            ),
            TARGET_CURVE_S,
            n_curve,
        ),
        (
            "  reference path (solver='modal'), domino, same call",
            lambda: simulate("domino", std, 70, times_min=GRID_1MIN, solver="modal"),
            TARGET_CURVE_S,
            max(10, n_curve // 4),
        ),
        (
            "population 10,000, domino, 5-min grid 24 h",
            lambda: population("domino", std, n=10_000, weight_kg=(50, 150), seed=1),
            TARGET_POPULATION_S,
            n_pop,
        ),
        (
            "population 10,000, kamp-2020, 5-min grid 24 h",
            lambda: population("kamp-2020", std, n=10_000, weight_kg=(50, 150), seed=1),
            TARGET_POPULATION_S,
            n_pop,
        ),
        (
            "population 10,000, perez-ruixo-2021 56 mg with IIV, 5-min grid 24 h",
            lambda: population("perez-ruixo-2021", n=10_000, seed=1),
            TARGET_POPULATION_S,
            n_pop,
        ),
        (
            "population 10,000, kamp-2020, 1-min grid 24 h",
            lambda: population(
                "kamp-2020", std, n=10_000, weight_kg=(50, 150), seed=1, step_min=1.0
            ),
            TARGET_POPULATION_S,
            n_pop,
        ),
    ]
    for label, fn, target, repeat in rows:
        ts = timings(fn, repeat)
        flag = "ok" if statistics.median(ts) < target else "SLOWER THAN TARGET"
        print(f"{label:80s} {fmt(ts)}  target < {target * 1e3:g} ms: {flag}")

    # opentiva: same Domino regimen, same 1441 one-minute output times, 70 kg.
    case = Case("domino-bench", "domino", 70.0, (_infusion(70.0, 0.5, 40),), GRID_24H)
    same = Case(
        "domino-bench-same", "domino", 70.0, case.infusions_s, GRID_24H, same_parameters=True
    )
    t_min = np.asarray(GRID_24H, dtype=float) / 60.0
    try:
        out = run_opentiva({"cases": [case.request(), same.request()]})
        ot, lfl, full = [], [], []
        for _ in range(3):  # alternating rounds
            ot += opentiva_timings(case, 20 if quick else 100)
            lfl += timings(lambda: like_for_like(case, t_min), n_curve)
            full += timings(lambda: full_simulate(case, t_min), n_curve)
    except OpentivaUnavailable as exc:
        print(f"\nopentiva comparison skipped: {exc}")
        return 0
    warm = timings(lambda: fast.concentrations("domino", case.regimen(), 70.0, t_min), n_curve)
    theirs = np.asarray(out["results"][case.id]["ng_ml"])
    theirs_same = np.asarray(out["results"][same.id]["ng_ml"])
    ours = like_for_like(case, t_min)
    assert np.array_equal(ours, full_simulate(case, t_min).concentrations)
    m_ot, m_lfl, m_full = (statistics.median(x) for x in (ot, lfl, full))
    ratio = m_ot / m_lfl
    print(f"\nopentiva {out.get('opentiva_version')} vs ketaflow, Domino 0.5 mg/kg/40 min, 70 kg,")
    print(f"1441 one-minute points over 24 h ({len(ot)} and {len(lfl)} timed runs, 3 rounds):")
    print(f"  opentiva  model + Pump set-up + calculate_cp per point        {fmt(ot)}")
    print(f"  ketaflow  fast.concentrations, model + decomposition + curve   {fmt(lfl)}")
    print(f"  ketaflow  simulate: the curve + exact Cmax/tmax + AUC          {fmt(full)}")
    print(f"  ketaflow  fast.concentrations, decomposition cached           {fmt(warm)}")
    print(
        f"  speed ratio like for like (concentrations only): {ratio:5.1f}x "
        f"(target >= {TARGET_RATIO:g}x: {'ok' if ratio >= TARGET_RATIO else 'BELOW TARGET'})"
    )
    print(
        f"  speed ratio full simulate (ketaflow also computes Cmax/tmax and AUC): "
        f"{m_ot / m_full:5.1f}x"
    )
    agree_same = max_rel(ours, theirs_same)
    own_6h = max_rel(ours, theirs, 6 * 3600)
    own_24h = max_rel(ours, theirs)
    ok = "ok" if agree_same <= TARGET_AGREEMENT and own_6h <= TARGET_AGREEMENT else "FAILS"
    print(f"  agreement (max relative difference, target <= {TARGET_AGREEMENT:g}): {ok}")
    print(
        f"    same parameters (opentiva given the reference's constants), 0-24 h: {agree_same:.1e}"
    )
    print("    opentiva's own constants (k10 0.4381, k12 0.5921 vs 0.438, 0.592):")
    print(f"      0-6 h {own_6h:.1e}; 0-24 h {own_24h:.1e} (the constants differ, not the solvers)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
