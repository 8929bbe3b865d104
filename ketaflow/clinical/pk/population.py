"""Vectorised population simulation: median and 5th-95th percentile curves."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from .models import PKModel, build_system, get_model
from .regimen import Regimen
from .simulate import UNIT, default_times, round_sig
from .solver import ModalSolution, compile_inputs, solve_expm

WeightSpec = tuple[float, float] | Sequence[float] | np.ndarray | Callable
PERCENTILES = (5.0, 50.0, 95.0)


@dataclass(frozen=True)
class Band:
    name: str
    p05: np.ndarray
    median: np.ndarray
    p95: np.ndarray
    cmax_p05: float
    cmax_median: float
    cmax_p95: float

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "unit": UNIT,
            "median": [round_sig(v) for v in self.median],
            "p05": [round_sig(v) for v in self.p05],
            "p95": [round_sig(v) for v in self.p95],
            "grid_cmax": {
                "p05": round_sig(self.cmax_p05),
                "median": round_sig(self.cmax_median),
                "p95": round_sig(self.cmax_p95),
            },
        }


@dataclass(frozen=True)
class PopulationResult:
    model: PKModel
    n: int
    seed: int | None
    times_min: np.ndarray
    weights_kg: np.ndarray
    ages_years: np.ndarray | None
    analyte: Band
    metabolite: Band | None
    variability: list[str]
    notes: list[str]

    @property
    def median(self) -> np.ndarray:
        return self.analyte.median

    @property
    def p05(self) -> np.ndarray:
        return self.analyte.p05

    @property
    def p95(self) -> np.ndarray:
        return self.analyte.p95

    def to_dict(self) -> dict:
        d = {
            "model": self.model.code,
            "analyte": self.model.analyte,
            "unit": UNIT,
            "n": self.n,
            "seed": self.seed,
            "weight_kg": {
                "min": round_sig(self.weights_kg.min()),
                "median": round_sig(np.median(self.weights_kg)),
                "max": round_sig(self.weights_kg.max()),
            },
            "times_min": [round(float(t), 6) for t in self.times_min],
            **{k: v for k, v in self.analyte.to_dict().items() if k != "name"},
            "variability": self.variability,
            "notes": self.notes,
            "caption": "Population estimate, not a measurement.",
        }
        if self.metabolite is not None:
            d["metabolite"] = self.metabolite.to_dict()
        return d


def _weights(rng: np.random.Generator, n: int, spec: WeightSpec) -> np.ndarray:
    if callable(spec):
        w = np.asarray(spec(rng, n), dtype=float)
    elif isinstance(spec, tuple) and len(spec) == 2:
        lo, hi = float(spec[0]), float(spec[1])
        if not (0 < lo <= hi):
            raise ValueError("weight range must satisfy 0 < min <= max")
        w = rng.uniform(lo, hi, n)
    else:
        w = np.asarray(spec, dtype=float)
        if w.ndim == 0:
            w = np.full(n, float(w))
    if w.shape != (n,):
        raise ValueError(f"expected {n} weights, got shape {w.shape}")
    if np.any(~np.isfinite(w)) or np.any(w <= 0):
        raise ValueError("weights must be positive")
    return w


def _ages(rng: np.random.Generator, n: int, spec) -> np.ndarray | None:
    if spec is None:
        return None
    if isinstance(spec, tuple) and len(spec) == 2:
        return rng.uniform(float(spec[0]), float(spec[1]), n)
    a = np.asarray(spec, dtype=float)
    return np.full(n, float(a)) if a.ndim == 0 else a


def _sample_iiv(model: PKModel, rng: np.random.Generator, n: int):
    overrides: dict[str, np.ndarray] = {}
    used: list[str] = []
    for name, var in (model.variability or {}).items():
        omega = var.omega
        if omega is None:
            continue
        eta = rng.normal(0.0, omega, n)
        typical = model.value(name)
        if var.kind == "log-normal":
            overrides[name] = typical * np.exp(eta)
        else:
            logit = np.log(typical / (1.0 - typical)) + eta
            overrides[name] = 1.0 / (1.0 + np.exp(-logit))
        used.append(f"{name}: {var.kind} {var.value:g} ({var.source})")
    return overrides, used


def population(
    model_code: str | PKModel,
    regimen: Regimen | None = None,
    n: int = 1000,
    weight_kg: WeightSpec = (50.0, 100.0),
    seed: int | None = None,
    age=None,
    times_min: Sequence[float] | np.ndarray | None = None,
    hours: float = 24.0,
    step_min: float = 5.0,
    scaling: str | None = None,
    iiv: bool = True,
) -> PopulationResult:
    """Simulate ``n`` virtual patients and return 5th/50th/95th percentile curves.

    ``weight_kg``: a ``(min, max)`` tuple (uniform), an array of ``n`` weights, or a
    callable ``f(rng, n)``.  ``age``: ``None``, a number, a ``(min, max)`` tuple or an
    array (used by the esketamine model only).  ``iiv``: sample the model's shipped
    inter-individual variability (only the esketamine model has any).  All patients
    share ``regimen`` (mg/kg doses scale with each patient's weight).
    """
    model = get_model(model_code) if isinstance(model_code, str) else model_code
    if regimen is None:
        regimen = default_regimen(model)
    if not isinstance(n, int | np.integer) or n < 1:
        raise ValueError("n must be a positive integer")
    rng = np.random.default_rng(seed)
    w = _weights(rng, int(n), weight_kg)
    ages = _ages(rng, int(n), age)
    overrides, used = _sample_iiv(model, rng, int(n)) if iiv else ({}, [])
    system = build_system(model, w, ages, scaling, overrides=overrides or None)
    system = _broadcast(system, int(n))
    inputs = compile_inputs(model, system, regimen, w, n_subjects=int(n))
    times = default_times(hours, step_min) if times_min is None else np.asarray(times_min, float)
    modal = ModalSolution(system, inputs)
    names = [model.analyte] + ([model.metabolite] if model.metabolite else [])
    curves = modal.sweep(names, times)
    bad = np.nonzero(~modal.well_conditioned)[0]
    for i in bad:  # rare near-defective subjects: exact matrix-exponential path
        res = solve_expm(system, inputs, times, names, subject=int(i))[0]
        for nm in names:
            curves[nm][i] = res[nm]

    def band(nm: str) -> Band:
        c = np.maximum(curves[nm], 0.0, out=curves[nm])  # 1e-14 rounding residue below 0
        q = np.percentile(c, PERCENTILES, axis=0)
        cm = np.percentile(c.max(axis=1), PERCENTILES)
        return Band(nm, q[0], q[1], q[2], float(cm[0]), float(cm[1]), float(cm[2]))

    notes = []
    if not used:
        notes.append(
            "No inter-individual variability is given for this model in ketaflow's "
            "reference: the bands reflect body weight only."
        )
        if model.weight_scaling.startswith("linear") and any(
            i.per_kg for i in regimen.infusions
        ) | any(b.per_kg for b in regimen.boluses):
            notes.append(
                "This model scales linearly with weight, so a mg/kg dose gives every "
                "patient the same curve: the band has zero width."
            )
    else:
        notes.append(model.variability_note)
    if model.code == "perez-ruixo-2021":
        notes.append("Body weight is not a covariate of this model; only age (above 60) is.")
    notes.append(f"cmax percentiles are over the {len(times)}-point output grid.")
    return PopulationResult(
        model=model,
        n=int(n),
        seed=seed,
        times_min=times,
        weights_kg=w,
        ages_years=ages,
        analyte=band(model.analyte),
        metabolite=band(model.metabolite) if model.metabolite else None,
        variability=used,
        notes=notes,
    )


def _broadcast(system, n: int):
    """Give every subject its own copy of K and outputs (models without covariates)."""
    if system.K.ndim == 3 and system.K.shape[0] == n:
        return system
    return replace(
        system,
        K=np.broadcast_to(system.K, (n, *system.K.shape[-2:])),
        outputs={k: np.broadcast_to(v, (n, v.shape[-1])) for k, v in system.outputs.items()},
    )


def default_regimen(model: PKModel) -> Regimen:
    """Reference standard doses: 0.5 mg/kg over 40 min IV; 56 mg nasal (2 devices)."""
    if "nasal" in model.accepts:
        return Regimen.nasal_session(56.0)
    return Regimen.infusion(mg_per_kg=0.5, minutes=40.0)
