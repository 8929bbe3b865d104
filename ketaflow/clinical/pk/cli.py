"""``ketaflow pk ...`` command line: simulate, population, validate.

``main(argv)`` receives the arguments after ``pk`` and returns the exit code:
0 success, 1 validation failures, 2 bad input (message on stderr).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence

from .models import MODELS, get_model
from .population import population
from .reference import forecast
from .regimen import Regimen
from .simulate import simulate
from .validation import DEFAULT_OUT, validate

WEIGHT_MIN_KG, WEIGHT_MAX_KG = 25.0, 350.0
# Simulator plausibility limit for IV racemic ketamine.  The prescribing hard limit
# elsewhere in ketaflow is 1.0 mg/kg (the top of the trial range, reference s.1).  The
# simulator accepts up to twice that so a clinician can see what an accidental double
# dose would do, while rejecting values that are almost certainly unit errors (a
# total in mg typed as mg/kg, e.g. "35").
IV_MAX_MG_PER_KG = 2.0
# Reported sessions last 2-100 min (reference s.1); 240 min leaves room for slowed or
# paused pumps while rejecting hours typed as minutes.
INFUSION_MAX_MIN = 240.0
NASAL_DOSES_MG = (28.0, 56.0, 84.0)  # label doses: 1, 2 or 3 devices of 28 mg
AGE_MIN, AGE_MAX = 18.0, 100.0
HOURS_MAX = 168.0
POP_N_MAX = 100_000


class InputError(ValueError):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would sys.exit(2); raise instead
        raise InputError(message)


def _finite(name: str, value: float) -> float:
    if not math.isfinite(value):
        raise InputError(f"{name} must be a finite number")
    return value


def _times(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        out = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"--at must be comma-separated minutes, got {text!r}") from None
    if not out:
        raise InputError("--at needs at least one time")
    for t in out:
        if not math.isfinite(t) or t < 0 or t > HOURS_MAX * 60:
            raise InputError(f"--at times must be between 0 and {HOURS_MAX * 60:g} minutes")
    return out


def _dose_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help=f"one of: {', '.join(MODELS)}")
    p.add_argument("--infusion-mg-per-kg", type=float)
    p.add_argument("--infusion-mg", type=float)
    p.add_argument("--infusion-min", type=float)
    p.add_argument("--nasal-mg", type=float)
    p.add_argument("--device-interval-min", type=float, default=5.0)
    p.add_argument("--age", type=float)
    p.add_argument("--scaling", help="weight scaling (kamp-2020: allometric or linear)")
    p.add_argument("--hours", type=float, default=24.0)
    p.add_argument("--step-min", type=float, default=5.0, help="output grid step")


def _regimen(args, weight_kg: float | None) -> Regimen:
    try:
        model = get_model(args.model)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if args.scaling is not None and args.scaling not in model.scalings:
        raise InputError(f"--scaling for {model.code} must be one of {', '.join(model.scalings)}")
    if not (0 < _finite("--hours", args.hours) <= HOURS_MAX):
        raise InputError(f"--hours must be > 0 and <= {HOURS_MAX:g}")
    if not (0 < _finite("--step-min", args.step_min) <= 24 * 60):
        raise InputError("--step-min must be > 0 and <= 1440")
    if args.age is not None:
        if "nasal" not in model.accepts:
            raise InputError("--age is used only by the perez-ruixo-2021 model")
        if not (AGE_MIN <= _finite("--age", args.age) <= AGE_MAX):
            raise InputError(f"--age must be between {AGE_MIN:g} and {AGE_MAX:g} years")
    iv_given = args.infusion_mg_per_kg is not None or args.infusion_mg is not None
    if "nasal" in model.accepts:
        if iv_given or args.infusion_min is not None:
            raise InputError(f"{model.code} simulates nasal esketamine: use --nasal-mg")
        if args.nasal_mg is None:
            raise InputError("--nasal-mg is required (28, 56 or 84)")
        mg = _finite("--nasal-mg", args.nasal_mg)
        if mg <= 0 or abs(mg / 28.0 - round(mg / 28.0)) > 1e-9:
            raise InputError(f"--nasal-mg must be a multiple of 28 mg (one device), got {mg:g}")
        if mg not in NASAL_DOSES_MG:
            raise InputError(f"--nasal-mg must be one of the label doses 28, 56 or 84, got {mg:g}")
        interval = _finite("--device-interval-min", args.device_interval_min)
        if not (0 <= interval <= 60):
            raise InputError("--device-interval-min must be between 0 and 60")
        return Regimen.nasal_session(mg, interval_min=interval)
    if args.nasal_mg is not None:
        raise InputError(f"{model.code} is an IV model: nasal doses need perez-ruixo-2021")
    if args.infusion_mg_per_kg is not None and args.infusion_mg is not None:
        raise InputError("give --infusion-mg-per-kg or --infusion-mg, not both")
    if not iv_given:
        raise InputError("give --infusion-mg-per-kg or --infusion-mg with --infusion-min")
    if args.infusion_min is None:
        raise InputError("--infusion-min is required")
    minutes = _finite("--infusion-min", args.infusion_min)
    if not (0 < minutes <= INFUSION_MAX_MIN):
        raise InputError(f"--infusion-min must be > 0 and <= {INFUSION_MAX_MIN:g}")
    if args.infusion_mg_per_kg is not None:
        d = _finite("--infusion-mg-per-kg", args.infusion_mg_per_kg)
        if not (0 < d <= IV_MAX_MG_PER_KG):
            raise InputError(
                f"--infusion-mg-per-kg must be > 0 and <= {IV_MAX_MG_PER_KG:g} mg/kg "
                "(simulator plausibility limit; the prescribing limit is 1.0 mg/kg)"
            )
        return Regimen.infusion(mg_per_kg=d, minutes=minutes)
    mg = _finite("--infusion-mg", args.infusion_mg)
    if mg <= 0:
        raise InputError("--infusion-mg must be > 0")
    if weight_kg is not None and mg > IV_MAX_MG_PER_KG * weight_kg:
        raise InputError(
            f"--infusion-mg {mg:g} mg is {mg / weight_kg:.2f} mg/kg, above the simulator "
            f"plausibility limit of {IV_MAX_MG_PER_KG:g} mg/kg"
        )
    return Regimen.infusion(mg=mg, minutes=minutes)


def _weight(value: float | None, required: bool) -> float:
    if value is None:
        if required:
            raise InputError("--weight-kg is required for IV models")
        return 70.0
    v = _finite("--weight-kg", value)
    if not (WEIGHT_MIN_KG <= v <= WEIGHT_MAX_KG):
        raise InputError(f"weight must be between {WEIGHT_MIN_KG:g} and {WEIGHT_MAX_KG:g} kg")
    return v


def _grid(hours: float, step: float) -> list[float]:
    n = math.floor(hours * 60 / step + 1e-9)
    return [k * step for k in range(n + 1)]


def _cmd_simulate(args) -> dict:
    model_known = args.model in MODELS
    needs_weight = (
        model_known
        and "iv" in get_model(args.model).accepts
        and ("nasal" not in get_model(args.model).accepts)
    )
    weight = _weight(args.weight_kg, needs_weight) if model_known else None
    regimen = _regimen(args, weight)
    at = _times(args.at)
    times = at if at is not None else _grid(args.hours, args.step_min)
    pred = simulate(
        args.model,
        regimen,
        weight or 70.0,
        age=args.age,
        times_min=times,
        hours=args.hours,
        scaling=args.scaling,
    )
    out = pred.to_dict()
    if "nasal" in pred.model.accepts:
        out.pop("weight_kg", None)
        out["note"] += " Body weight is not a covariate of this model."
        last = regimen.last_nasal_device_min or 0.0
        out["tmax_after_last_device_min"] = round(pred.tmax_min - last, 3)
    # The band and the time below it exactly as the plan and session pages show them:
    # for racemic ketamine the range across every shipped model (this model's own
    # figure is one row of it), for esketamine no measured range.
    fc = forecast(regimen, weight_kg=weight or 70.0, age=args.age, hours=max(args.hours, 12.0))
    shown = fc.to_dict()
    out["reference_band"] = shown["reference_band"]
    out["time_below"] = shown["time_below"]
    out["prediction_note"] = shown["note"]
    out["horizon_hours"] = args.hours
    return out


def _cmd_population(args) -> dict:
    lo = _weight(args.weight_min, True)
    hi = _weight(args.weight_max, True)
    if lo > hi:
        raise InputError("--weight-min must not exceed --weight-max")
    if not (1 <= args.n <= POP_N_MAX):
        raise InputError(f"--n must be between 1 and {POP_N_MAX}")
    regimen = None
    given = any(
        x is not None
        for x in (args.infusion_mg_per_kg, args.infusion_mg, args.infusion_min, args.nasal_mg)
    )
    if given:
        regimen = _regimen(args, lo)
    else:
        _regimen_defaults_check(args)
    res = population(
        args.model,
        regimen,
        n=args.n,
        weight_kg=(lo, hi),
        seed=args.seed,
        age=args.age,
        hours=args.hours,
        step_min=args.step_min,
        scaling=args.scaling,
        iiv=not args.no_iiv,
    )
    out = res.to_dict()
    from .population import default_regimen

    out["regimen"] = (regimen or default_regimen(res.model)).describe()
    return out


def _regimen_defaults_check(args) -> None:
    try:
        model = get_model(args.model)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if args.age is not None:
        if "nasal" not in model.accepts:
            raise InputError("--age is used only by the perez-ruixo-2021 model")
        if not (AGE_MIN <= args.age <= AGE_MAX):
            raise InputError(f"--age must be between {AGE_MIN:g} and {AGE_MAX:g} years")
    if args.scaling is not None and args.scaling not in model.scalings:
        raise InputError(f"--scaling for {model.code} must be one of {', '.join(model.scalings)}")
    if not (0 < args.hours <= HOURS_MAX):
        raise InputError(f"--hours must be > 0 and <= {HOURS_MAX:g}")
    if not (0 < args.step_min <= 24 * 60):
        raise InputError("--step-min must be > 0 and <= 1440")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ketaflow pk", description="Pharmacokinetic simulations")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    s = sub.add_parser("simulate", help="simulate one typical patient")
    _dose_args(s)
    s.add_argument("--weight-kg", type=float)
    s.add_argument("--at", help="comma-separated minutes from the first dose")
    p = sub.add_parser("population", help="median and 5th-95th percentile curves")
    _dose_args(p)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--weight-min", type=float, default=50.0)
    p.add_argument("--weight-max", type=float, default=100.0)
    p.add_argument("--seed", type=int)
    p.add_argument("--no-iiv", action="store_true", help="no inter-individual variability")
    v = sub.add_parser("validate", help="rerun the validation checks and write the report")
    v.add_argument("--out", default=str(DEFAULT_OUT))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        if args.command == "validate":
            ok = validate(args.out)
            print(
                f"pk validation {'passed' if ok else 'FAILED'}; report in {args.out}/report.md "
                f"and {args.out}/report.html"
            )
            return 0 if ok else 1
        out = _cmd_simulate(args) if args.command == "simulate" else _cmd_population(args)
    except InputError as exc:
        print(f"ketaflow pk: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # raised by the API for inconsistent input
        print(f"ketaflow pk: error: {exc}", file=sys.stderr)
        return 2
    json.dump(out, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
