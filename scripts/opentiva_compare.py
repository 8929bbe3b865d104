"""Run opentiva (an independent implementation) and print concentrations as JSON.

Runs under the separate Python 3.10 virtual environment that can build opentiva
1.1.2 (``make opentiva``; see ketaflow/clinical/pk/opentiva.py).  Reads a JSON
request on stdin and prints one JSON object on stdout::

    {"cases": [{"id": "domino-70", "model": "Domino", "weight_kg": 70,
                "infusions": [[start_s, dose_mg_per_s, duration_s], ...],
                "times_s": [0, 60, ...],
                "override": {"k10": 0.438}}],          # optional
     "bench": {"case": "domino-70", "repeat": 5}}        # optional

opentiva's ``Pump.add_infusion(start_s, dose_per_s, duration_s)`` works in whole
seconds and its concentrations are in mg/L; they are returned in ng/mL (x 1000).
``override`` replaces opentiva's model constants (rate constants per minute, v1 in L)
before the pump is built, to compare solvers on identical parameters.
"""

import json
import sys
import time

import opentiva
from opentiva import ketamine

PARAMS = ("v1", "k10", "k12", "k21", "k13", "k31")


def _pump(case):
    cls = getattr(ketamine, case["model"])
    # sex, age and height are required by opentiva but unused by its ketamine models.
    model = cls(0, 40, float(case["weight_kg"]), 170)
    for name, value in case.get("override", {}).items():
        setattr(model, name, float(value))
    end_s = int(max(case["times_s"])) + 1
    pump = opentiva.Pump(model, 10, end_s)
    for start_s, dose_per_s, duration_s in case["infusions"]:
        pump.add_infusion(int(start_s), float(dose_per_s), int(duration_s))
    pump.generate_infusions()
    params = {p: getattr(model, p) for p in PARAMS if hasattr(model, p)}
    return pump, params


def _curve(pump, times_s):
    return [pump.pkpd_model.calculate_cp(pump.infusion_list, int(t)) * 1000.0 for t in times_s]


def main():
    request = json.load(sys.stdin)
    results = {}
    for case in request["cases"]:
        pump, params = _pump(case)
        results[case["id"]] = {
            "times_s": [int(t) for t in case["times_s"]],
            "ng_ml": _curve(pump, case["times_s"]),
            "params": params,
        }
    out = {"opentiva_version": getattr(opentiva, "__version__", "1.1.2"), "results": results}
    bench = request.get("bench")
    if bench:
        case = next(c for c in request["cases"] if c["id"] == bench["case"])
        repeat = int(bench.get("repeat", 5))
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            pump, _ = _pump(case)
            _curve(pump, case["times_s"])
            best = min(best, time.perf_counter() - t0)
        out["bench"] = {
            "case": case["id"],
            "seconds_per_curve": best,
            "points": len(case["times_s"]),
        }
        if bench.get("pump_run"):
            # opentiva's own API: Pump.run() over the whole case at 1-second resolution
            pump, _ = _pump(case)
            t0 = time.perf_counter()
            pump.run()
            out["bench"]["pump_run_seconds"] = time.perf_counter() - t0
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
