"""Single-subject simulation API used by the product pages and the CLI."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq

from . import fast
from .models import PKModel, build_system, get_model
from .regimen import Regimen
from .solver import Inputs, ModalSolution, compile_inputs, solve_expm, solve_ode

UNIT = "ng/mL"
AUC_UNIT = "ng·h/mL"
SOLVERS = ("exact", "modal", "expm", "ode")
# Grid spacing (min) used to bracket roots of dC/dt before Brent refinement.
PEAK_BRACKET_MIN = 1.0
NORESKETAMINE_AUC_NOTE = (
    "The published model (Perez-Ruixo 2021, Table 3) gives a noresketamine AUC0-24 41-46% "
    "above the paper's own Table 4 (its Cmax matches Table 4 within 1%); treat this area as "
    "indicative only (docs/pk.md)."
)


@dataclass(frozen=True)
class CurveSummary:
    name: str
    times_min: np.ndarray
    concentrations: np.ndarray
    cmax: float
    tmax_min: float
    auc_0_24h: float

    def to_dict(self, include_curve: bool = False) -> dict:
        d = {
            "name": self.name,
            "unit": UNIT,
            "cmax": round_sig(self.cmax),
            "tmax_min": round(float(self.tmax_min), 3),
            "auc_0_24h": round_sig(self.auc_0_24h),
        }
        if include_curve:
            d["concentrations"] = [round_sig(c) for c in self.concentrations]
        return d


@dataclass(frozen=True)
class Prediction:
    """Predicted concentrations for one typical subject.

    ``concentrations`` are at ``times_min`` (minutes from time 0, normally the first
    dose).  ``cmax``/``tmax_min`` are the exact peak over ``0..horizon_min``;
    ``auc_0_24h`` is the exact area over the first 24 h in ng·h/mL.
    """

    model: PKModel
    analyte: str
    weight_kg: float
    age_years: float | None
    scaling: str
    regimen: Regimen
    times_min: np.ndarray
    concentrations: np.ndarray
    cmax: float
    tmax_min: float
    auc_0_24h: float
    horizon_min: float
    metabolite: CurveSummary | None = None
    _evaluate: Callable[[str, np.ndarray, bool], np.ndarray] | None = field(
        default=None, repr=False, compare=False
    )

    unit: str = UNIT

    def concentration_at(self, times_min, analyte: str | None = None) -> np.ndarray:
        """Concentration in ng/mL at any times (exact, not interpolated)."""
        if self._evaluate is None:
            raise RuntimeError("this prediction has no evaluator")
        return self._evaluate(analyte or self.analyte, np.asarray(times_min, float), False)

    def to_dict(self) -> dict:
        d = {
            "model": self.model.code,
            "analyte": self.analyte,
            "unit": UNIT,
            "weight_kg": self.weight_kg,
            "scaling": self.scaling,
            "times_min": [round(float(t), 6) for t in self.times_min],
            "concentrations": [round_sig(c) for c in self.concentrations],
            "cmax": round_sig(self.cmax),
            "tmax_min": round(float(self.tmax_min), 3),
            "auc_0_24h": round_sig(self.auc_0_24h),
            "auc_unit": AUC_UNIT,
        }
        if self.age_years is not None:
            d["age_years"] = self.age_years
        if self.metabolite is not None:
            d["metabolite"] = self.metabolite.to_dict()
            if self.metabolite.name == "noresketamine":
                d["metabolite"]["auc_0_24h_note"] = NORESKETAMINE_AUC_NOTE
        d["regimen"] = self.regimen.describe()
        d["citation"] = self.model.citation
        d["note"] = "Population estimate for a typical patient, not a measurement."
        return d


def round_sig(x: float, sig: int = 6) -> float:
    x = float(x)
    if x == 0 or not np.isfinite(x):
        return x
    return float(f"{x:.{sig}g}")


class _Solved:
    """A solved single-subject system, exposing exact evaluation helpers."""

    def __init__(self, model: PKModel, weight_kg, age_years, scaling, regimen: Regimen):
        self.model = model
        self.system = build_system(model, weight_kg, age_years, scaling)
        self.inputs: Inputs = compile_inputs(model, self.system, regimen, weight_kg)
        self.modal: ModalSolution | None = None
        try:
            modal = ModalSolution(self.system, self.inputs)
            if bool(modal.well_conditioned[0]):
                self.modal = modal
        except np.linalg.LinAlgError:
            self.modal = None

    def evaluate(self, name: str, t: np.ndarray, derivative: bool = False, solver="exact"):
        t = np.atleast_1d(np.asarray(t, dtype=float))
        if solver in ("exact", "modal") and self.modal is not None:
            out = self.modal.evaluate(name, t, derivative=derivative)[0]
            # Inputs are non-negative, so concentrations are too; the closed form can
            # leave rounding residue of order 1e-14 ng/mL where the level is exactly 0.
            return out if derivative else np.maximum(out, 0.0)
        if solver == "modal":
            raise np.linalg.LinAlgError("modal solver unavailable (ill-conditioned eigenvectors)")
        if derivative:
            # Central difference on the exact expm solution (fallback path only).
            h = 1e-4
            hi = solve_expm(self.system, self.inputs, t + h, [name])[0][name]
            lo = solve_expm(self.system, self.inputs, np.maximum(t - h, 0), [name])[0][name]
            return (hi - lo) / (2 * h)
        if solver == "ode":
            return solve_ode(self.system, self.inputs, t, [name])[0][name]
        return solve_expm(self.system, self.inputs, t, [name])[0][name]

    def auc(self, name: str, t_end: float) -> float:
        if self.modal is not None:
            return float(self.modal.auc(name, t_end)[0])
        if np.isinf(t_end):
            raise ValueError("AUC to infinity needs the modal solver")
        return float(solve_expm(self.system, self.inputs, [t_end], [name])[1][name][0])

    def peak(self, name: str, t_end: float, t_start: float = 0.0) -> tuple[float, float]:
        """Exact maximum over ``[t_start, t_end]``: candidates are the window ends,
        every dose/infusion breakpoint, and every root of dC/dt (bracketed on a fine
        grid between breakpoints, then solved with Brent's method)."""
        bp = self.inputs.breakpoints
        edges = np.unique(np.concatenate([[t_start, t_end], bp[(bp > t_start) & (bp < t_end)]]))
        cands = [edges]
        for a, b in itertools.pairwise(edges):
            grid = np.linspace(a, b, max(16, int(np.ceil((b - a) / PEAK_BRACKET_MIN)) + 1))
            inner = grid[1:-1]
            if inner.size < 2:
                continue
            d = self.evaluate(name, inner, derivative=True)
            idx = np.nonzero((d[:-1] > 0) & (d[1:] <= 0))[0]
            for i in idx:
                lo, hi = inner[i], inner[i + 1]

                def f(x):
                    return float(self.evaluate(name, [x], derivative=True)[0])

                cands.append(np.array([brentq(f, lo, hi, xtol=1e-10, rtol=1e-14)]))
        tc = np.concatenate(cands)
        c = self.evaluate(name, tc)
        i = int(np.argmax(c))
        return float(c[i]), float(tc[i])


def _resolve(model_code: str | PKModel) -> PKModel:
    return get_model(model_code) if isinstance(model_code, str) else model_code


def default_times(hours: float = 24.0, step_min: float = 1.0) -> np.ndarray:
    n = int(np.floor(hours * 60.0 / step_min + 1e-9))
    return np.arange(n + 1) * step_min


def simulate(
    model_code: str | PKModel,
    regimen: Regimen,
    weight_kg: float = 70.0,
    age: float | None = None,
    times_min: Sequence[float] | np.ndarray | None = None,
    hours: float = 24.0,
    scaling: str | None = None,
    solver: str = "exact",
) -> Prediction:
    """Simulate ``regimen`` for one typical subject.

    ``times_min`` defaults to a 1-minute grid over ``hours``.  ``cmax``/``tmax`` are
    searched over ``0..max(hours, last requested time)``.  ``solver`` selects the
    evaluation of the reported concentrations: ``"exact"`` (closed-form sum of
    exponentials, falling back to the matrix exponential if the eigenvectors are
    ill-conditioned), ``"modal"``, ``"expm"`` or ``"ode"`` (numerical integration).
    """
    model = _resolve(model_code)
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}")
    if regimen.is_empty:
        raise ValueError("the regimen has no doses")
    if not np.isfinite(hours) or hours <= 0:
        raise ValueError("hours must be > 0")
    scaling = model.default_scaling if scaling is None else scaling
    weight_kg = float(weight_kg)
    times = default_times(hours) if times_min is None else np.asarray(times_min, dtype=float)
    if times.ndim != 1 or np.any(~np.isfinite(times)) or np.any(times < 0):
        raise ValueError("times must be finite minutes >= 0")
    horizon = max(hours * 60.0, float(times.max()) if times.size else 0.0)
    curve = fast.solve(model, regimen, weight_kg, age, scaling) if solver == "exact" else None
    if curve is not None:
        # Single pass: every output at every requested time at once, exact peak and
        # analytic AUC from the same decomposition.
        n_out = len(curve.names)
        every = curve.concentrations(times) if times.size else np.zeros((n_out, 0))

        def summary(name: str) -> tuple[np.ndarray, float, float, float]:
            cmax, tmax = curve.peak(name, horizon)
            return every[curve.index(name)], cmax, tmax, curve.auc(name, 24 * 60.0) / 60.0

        def _eval(name: str, t: np.ndarray, derivative: bool = False) -> np.ndarray:
            out = curve.evaluate(t, derivative=derivative)[curve.index(name)]
            return out if derivative else np.maximum(out, 0.0)

    else:
        solved = _Solved(model, weight_kg, age, scaling, regimen)

        def summary(name: str) -> tuple[np.ndarray, float, float, float]:
            conc = solved.evaluate(name, times, solver=solver) if times.size else np.zeros(0)
            cmax, tmax = solved.peak(name, horizon)
            return conc, cmax, tmax, solved.auc(name, 24 * 60.0) / 60.0

        def _eval(name: str, t: np.ndarray, derivative: bool = False) -> np.ndarray:
            return solved.evaluate(name, t, derivative=derivative)

    conc, cmax, tmax, auc = summary(model.analyte)
    met = None
    if model.metabolite:
        mc, mcmax, mtmax, mauc = summary(model.metabolite)
        met = CurveSummary(model.metabolite, times, mc, mcmax, mtmax, mauc)
    return Prediction(
        model=model,
        analyte=model.analyte,
        weight_kg=weight_kg,
        age_years=None if age is None else float(age),
        scaling=scaling,
        regimen=regimen,
        times_min=times,
        concentrations=conc,
        cmax=cmax,
        tmax_min=tmax,
        auc_0_24h=auc,
        horizon_min=horizon,
        metabolite=met,
        _evaluate=_eval,
    )


def time_below(
    prediction: Prediction,
    threshold_ng_ml: float = 100.0,
    analyte: str | None = None,
    search_hours: float = 14 * 24.0,
) -> float | None:
    """Minutes (from time 0) at which the level first falls below ``threshold`` after
    the peak.  ``None`` if the peak never reaches the threshold, or if the level does
    not fall below it within ``search_hours`` after the peak.
    """
    name = analyte or prediction.analyte
    if name == prediction.analyte:
        cmax, tmax = prediction.cmax, prediction.tmax_min
    elif prediction.metabolite is not None and name == prediction.metabolite.name:
        cmax, tmax = prediction.metabolite.cmax, prediction.metabolite.tmax_min
    else:
        raise ValueError(f"unknown analyte {name!r}")
    if cmax < threshold_ng_ml:
        return None
    grid = tmax + np.arange(0.0, search_hours * 60.0 + 0.5, 0.5)
    c = prediction.concentration_at(grid, name) - threshold_ng_ml
    below = np.nonzero(c < 0)[0]
    if below.size == 0:
        return None
    i = int(below[0])
    if i == 0:
        return float(tmax)

    def f(x: float) -> float:
        return float(prediction.concentration_at([x], name)[0] - threshold_ng_ml)

    return float(brentq(f, grid[i - 1], grid[i], xtol=1e-9, rtol=1e-14))


def exposure_metrics(
    model_code: str | PKModel,
    regimen: Regimen,
    weight_kg: float = 70.0,
    age: float | None = None,
    scaling: str | None = None,
) -> dict[str, float]:
    """AUC 0-inf (ng·min/mL), delivered/absorbed amounts and plasma clearance.

    Used by the mass-balance checks: ``AUC_inf x CL = amount reaching plasma``.
    """
    model = _resolve(model_code)
    s = _Solved(model, weight_kg, age, scaling or model.default_scaling, regimen)
    if s.modal is None:
        raise np.linalg.LinAlgError("ill-conditioned system")
    cl = float(np.asarray(s.system.clearance_l_per_min).reshape(-1)[0])
    out = {
        "auc_inf_ng_min_ml": float(s.modal.auc(model.analyte, np.inf)[0]),
        "clearance_l_per_min": cl,
    }
    if model.metabolite:
        out["metabolite_auc_inf_ng_min_ml"] = float(s.modal.auc(model.metabolite, np.inf)[0])
    return out
