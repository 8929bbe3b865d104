"""Pharmacokinetics benchmark (run on demand, not a test).

    .venv/bin/python -m benchmarks.pk_bench      (or: .venv/bin/python benchmarks/pk_bench.py)
    .venv/bin/python -m benchmarks.pk_bench --quick     (fewer repeats)
    .venv/bin/python -m benchmarks.pk_bench --instructions   (also count instructions)

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
are timed in their own process, in paired rounds: each round times ketaflow just before
and just after a batch of opentiva runs and takes the ratio of the two medians, so that
load from other users of the machine hits both sides of a ratio alike; the reported
ratio is the median over the rounds (each round's ratio, the ratio of all runs pooled
and the ratio of the best runs are printed too).

Times on a shared machine move with its load.  ``--instructions`` also counts the machine
instructions of one like-for-like call on each side with valgrind's callgrind (the count of
a run with K calls minus that of a run with none, divided by K): a figure that does not
depend on what else the machine is doing.  It takes a few minutes.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
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


# Instruction counts (``--instructions``): each side runs its like-for-like call K times.
OURS_COUNTED = """
import json, sys
import numpy as np
from ketaflow.clinical.pk import fast
from ketaflow.clinical.pk.opentiva import Case
req = json.loads(sys.stdin.read())
case = Case(**req["case"])
t_min = np.asarray(case.times_s, dtype=float) / 60.0
for _ in range(req["k"] + 1):  # one call more than counted: the warm-up
    fast.clear_cache()
    fast.concentrations(case.model, case.regimen(), case.weight_kg, t_min)
"""
OPENTIVA_COUNTED = """
import json, sys
sys.path.insert(0, {scripts!r})
from opentiva_compare import _curve, _pump
req = json.loads(sys.stdin.read())
for _ in range(req["k"] + 1):
    pump, _ = _pump(req["request"])
    _curve(pump, req["request"]["times_s"])
"""
# Calls counted per side: enough that the few million instructions by which start-up
# (imports) varies from run to run stay below 1% of the per-call figure.
OURS_CALLS = 2000
OPENTIVA_CALLS = 200


def instructions(python: str, code: str, request: dict) -> int:
    """Instructions callgrind counts for ``python -c code`` reading ``request`` on stdin."""
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", python, "-c", code],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    found = [ln for ln in proc.stderr.splitlines() if "Collected :" in ln]
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"callgrind failed: {proc.stderr.strip()[-400:]}")
    return int(found[-1].split(":")[-1])


def per_call_instructions(python: str, code: str, request: dict, calls: int) -> float:
    zero = instructions(python, code, {**request, "k": 0})
    many = instructions(python, code, {**request, "k": calls})
    return (many - zero) / calls


def instruction_ratio(case: Case) -> None:
    if shutil.which("valgrind") is None:
        print("  instruction counts skipped: valgrind is not installed")
        return
    fields = {f.name: getattr(case, f.name) for f in dataclasses.fields(case)}
    ours = per_call_instructions(sys.executable, OURS_COUNTED, {"case": fields}, OURS_CALLS)
    theirs = per_call_instructions(
        str(opentiva_python()),
        OPENTIVA_COUNTED.format(scripts=str(SCRIPT.parent)),
        {"request": case.request()},
        OPENTIVA_CALLS,
    )
    print(
        f"  instructions per call (callgrind, load-independent; {OPENTIVA_CALLS} opentiva and "
        f"{OURS_CALLS} ketaflow calls counted):"
    )
    print(
        f"    opentiva {theirs / 1e6:6.2f} M   ketaflow {ours / 1e6:6.2f} M   ratio {theirs / ours:5.1f}x"
    )


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
    rounds = 3 if quick else 7
    half = max(1, n_curve // 2)
    try:
        out = run_opentiva({"cases": [case.request(), same.request()]})
        ot, lfl, full, paired = [], [], [], []
        for _ in range(rounds):
            # Each round times ketaflow just before and just after an opentiva batch, so
            # that the two sides of one round's ratio see the same load.
            mine = timings(lambda: like_for_like(case, t_min), half)
            theirs = opentiva_timings(case, 20 if quick else 100)
            mine += timings(lambda: like_for_like(case, t_min), half)
            full += timings(lambda: full_simulate(case, t_min), n_curve)
            paired.append(statistics.median(theirs) / statistics.median(mine))
            ot += theirs
            lfl += mine
    except OpentivaUnavailable as exc:
        print(f"\nopentiva comparison skipped: {exc}")
        return 0
    warm = timings(lambda: fast.concentrations("domino", case.regimen(), 70.0, t_min), n_curve)
    theirs = np.asarray(out["results"][case.id]["ng_ml"])
    theirs_same = np.asarray(out["results"][same.id]["ng_ml"])
    ours = like_for_like(case, t_min)
    assert np.array_equal(ours, full_simulate(case, t_min).concentrations)
    m_ot, m_lfl, m_full = (statistics.median(x) for x in (ot, lfl, full))
    ratio = statistics.median(paired)
    print(f"\nopentiva {out.get('opentiva_version')} vs ketaflow, Domino 0.5 mg/kg/40 min, 70 kg,")
    print(
        f"1441 one-minute points over 24 h ({len(ot)} and {len(lfl)} timed runs, "
        f"{rounds} paired rounds):"
    )
    print(f"  opentiva  model + Pump set-up + calculate_cp per point        {fmt(ot)}")
    print(f"  ketaflow  fast.concentrations, model + decomposition + curve   {fmt(lfl)}")
    print(f"  ketaflow  simulate: the curve + exact Cmax/tmax + AUC          {fmt(full)}")
    print(f"  ketaflow  fast.concentrations, decomposition cached           {fmt(warm)}")
    print(
        f"  speed ratio like for like (concentrations only), median of the rounds' ratios: "
        f"{ratio:5.1f}x (target >= {TARGET_RATIO:g}x: "
        f"{'ok' if ratio >= TARGET_RATIO else 'BELOW TARGET'})"
    )
    print(
        f"    per round {', '.join(f'{r:.1f}' for r in sorted(paired))}; "
        f"all runs pooled {m_ot / m_lfl:.1f}x; best runs {min(ot) / min(lfl):.1f}x"
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
    if "--instructions" in argv:
        instruction_ratio(case)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
