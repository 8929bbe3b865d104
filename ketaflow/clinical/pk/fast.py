"""Single-pass closed-form path for one subject (the production path of ``simulate``).

A linear model with piecewise-constant inputs has, between consecutive dose or
rate-change times ("segments"), the exact solution

    C(t) = sum_i  y_i(e_k) exp(l_i tau) + (r_i / l_i) expm1(l_i tau),   tau = t - e_k

where ``l_i`` are the eigenvalues of ``K`` and ``y_i``/``r_i`` the input projected on
mode ``i``.  This module

* decomposes ``K`` once per model and parameter set: the closed-form mammillary
  exponentials (roots of the characteristic cubic or quadratic, polished by Newton,
  and the classical coefficient formula) for the racemic models, the eigen-
  decomposition for the esketamine model; decompositions are cached per parameter
  set (:func:`decompose`, LRU);
* steps the per-mode state once through the segments (no matrix exponentials);
* evaluates every requested time (and every analyte) in one vectorised pass;
* finds Cmax/tmax exactly: candidates are the window ends, every breakpoint and every
  root of dC/dt.  A sum of exponentials whose coefficients, ordered by rate, do not
  change sign has no root (Descartes' rule for exponential sums), so such segments
  are skipped; the others are bracketed on the same 1-minute grid as the reference
  solver and solved with Brent's method on the scalar closed form;
* integrates the closed form analytically for the AUC.

The reference paths (:class:`.solver.ModalSolution`, :func:`.solver.solve_expm`,
:func:`.solver.solve_ode`) are kept and the tests hold this path to them to 1e-9.
Times in minutes, amounts in mg, outputs in ng/mL.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Mapping, Sequence
from functools import cached_property, lru_cache
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
from scipy.optimize import brentq

from .models import (
    MODELS,
    NG_PER_ML_PER_MG_PER_L,
    PKModel,
    build_system,
    check_scaling,
    get_model,
    is_mammillary,
    mammillary_rates,
)
from .regimen import Regimen
from .solver import MAX_EIGEN_CONDITION, dose_events

# Grid spacing (min) used to bracket roots of dC/dt before Brent refinement (the
# reference solver in simulate.py uses the same value).
PEAK_BRACKET_MIN = 1.0
# Closed-form mammillary roots closer than this (relative) are left to the eigen-
# decomposition / matrix-exponential paths.
MIN_ROOT_SEPARATION = 1e-6
CACHE_SIZE = 256
# exp(x) for x below this is under 3.3e-308 (and slow to compute as a subnormal);
# exponents are floored here, which changes results by less than 1e-300 ng/mL.
EXP_FLOOR = -708.0


# Below this many points in a segment the exponentials are computed directly.
UNIFORM_MIN_POINTS = 16


def _uniform_step(t: np.ndarray) -> float | None:
    """The spacing of ``t`` if it is an exactly uniform increasing grid, else None.
    (Such a grid is sorted and finite: its differences all equal one finite step.)"""
    if t.size <= UNIFORM_MIN_POINTS:
        return None
    d = t[1:] - t[:-1]
    h = float(d[0])
    return h if 0 < h < math.inf and bool((d == h).all()) else None


@lru_cache(maxsize=64)
def _grid_steps(q_len: int, r_len: int) -> np.ndarray:
    """``[0, R, 2R, ..., (Q-1) R, 0, 1, ..., R-1]`` (read-only)."""
    steps = np.concatenate([np.arange(q_len) * float(r_len), np.arange(r_len, dtype=float)])
    steps.flags.writeable = False
    return steps


class _UniformGrid:
    """Sums of decaying exponentials on a uniform grid from about 2 sqrt(m) exponentials
    per mode instead of m.

    Point ``j = q R + r`` (``j < m``) factors as ``exp(lam h R q) * exp(lam h r)``, so
    ``sum_i c_i exp(lam_i (tau0 + h j))`` is the small matrix product of
    ``c_i exp(lam_i tau0) A[i, q]`` with ``B[i, r]``, laid out row by row.  Each factor is
    floored at ``exp(EXP_FLOOR / 3)`` (4e-103): products stay normal numbers (no slow
    subnormal arithmetic), and a term whose exact value is below that floor may read up
    to 4e-103 times its coefficient.  A few roundings per term; the tests hold whole
    curves to the direct formula.
    """

    def __init__(self, lam: list[float], h: float, m: int):
        self.lam = lam
        self.r_len = math.isqrt(m - 1) + 1  # r_len**2 >= m
        self.q_len = -(-m // self.r_len)
        x = np.multiply.outer([li * h for li in lam], _grid_steps(self.q_len, self.r_len))
        x = np.exp(np.maximum(x, EXP_FLOOR / 3, out=x), out=x)
        self.a, self.b = x[:, : self.q_len], x[:, self.q_len :]

    def sums(self, coef: list[list[float]], tau0: float, m: int) -> np.ndarray:
        """``coef @ exp(outer(lam, tau0 + h * arange(m)))``: shape ``(n_out, m)``."""
        start = [math.exp(max(li * tau0, EXP_FLOOR)) for li in self.lam]
        w = np.array([[c * s for c, s in zip(row, start, strict=True)] for row in coef])
        q = -(-m // self.r_len)
        rows = w[:, :, None] * self.a[:, :q]  # (n_out, n, q)
        return (rows.transpose(0, 2, 1) @ self.b).reshape(len(coef), -1)[:, :m]


class Modes(NamedTuple):
    """Modal decomposition of one subject's system.

    ``lam``: eigenvalues (1/min, all negative), shape ``(n,)``.  ``coef[name][j, i]``:
    ng/mL of output ``name`` per mg put into compartment ``j``, carried by mode ``i``
    (only the compartments that take input have rows).  ``inputs``/``extra`` are the
    route map and dosing constants :func:`.solver.dose_events` needs.
    """

    lam: np.ndarray
    coef: Mapping[str, np.ndarray]
    inputs: Mapping[str, int]
    extra: Mapping[str, object] = MappingProxyType({})
    method: str = "eigen-decomposition"


# A mammillary model takes its doses into, and is measured in, the central compartment.
_CENTRAL_INPUT = MappingProxyType({"iv": 0})


def _frozen(a) -> np.ndarray:
    a = np.array(a, dtype=float)
    a.setflags(write=False)
    return a


def _cubic_coefficients(k10, k12, k21, k13, k31) -> tuple[float, float, float]:
    """``(a2, a1, a0)`` of a three-compartment mammillary model's characteristic
    polynomial x^3 - a2 x^2 + a1 x - a0, whose roots are the exponents' rates."""
    a2 = k10 + k12 + k13 + k21 + k31
    a1 = k10 * k21 + k10 * k31 + k21 * k31 + k21 * k13 + k31 * k12
    return a2, a1, k10 * k21 * k31


def _cubic_roots(a2: float, a1: float, a0: float) -> list[float] | None:
    """Roots of x^3 - a2 x^2 + a1 x - a0 (three real positive roots for a
    mammillary model): the trigonometric form, each root polished by a Newton step
    (the small root loses digits to cancellation in the trigonometric form).  ``None``
    for a triple root (p = 0); the caller's separation check catches roots that are
    merely close."""
    p = a1 - a2 * a2 / 3.0
    if not p < 0.0:
        return None
    q = 2.0 * a2**3 / 27.0 - a1 * a2 / 3.0 + a0
    r = math.sqrt(-p / 3.0)
    theta = math.acos(max(-1.0, min(1.0, q / (2.0 * r**3)))) / 3.0
    roots = []
    for k in range(3):
        x = a2 / 3.0 + 2.0 * r * math.cos(theta - 2.0 * math.pi * k / 3.0)
        d = (3.0 * x - 2.0 * a2) * x + a1
        if d != 0.0:
            x -= (((x - a2) * x + a1) * x - a0) / d
        roots.append(x)
    return roots


def _mammillary_modes(v1, k10, k12, k21, k13=None, k31=None) -> Modes | None:
    """Closed-form exponentials of a mammillary model (central input and output).

    Unit bolus into the central compartment: C(t) = sum_i A_i exp(-alpha_i t) with
    A_i = (1/V1) prod_j (k_j1 - alpha_i) / prod_{m != i} (alpha_m - alpha_i), the
    alpha_i being the roots of the characteristic polynomial.
    """
    if k13 is None:
        s1 = k10 + k12 + k21
        disc = s1 * s1 - 4.0 * k10 * k21
        big = 0.5 * (s1 + math.sqrt(disc))
        alphas = [big, k10 * k21 / big]
        backs = (k21,)
    else:
        alphas = _cubic_roots(*_cubic_coefficients(k10, k12, k21, k13, k31))
        backs = (k21, k31)
    if alphas is None or not min(alphas) > 0:
        return None
    scale = NG_PER_ML_PER_MG_PER_L / v1
    coef = []
    for i, ai in enumerate(alphas):
        num, den = scale, 1.0
        for k in backs:
            num *= k - ai
        for m, am in enumerate(alphas):
            if m != i:
                if not abs(am - ai) > MIN_ROOT_SEPARATION * max(am, ai):  # (False for NaN)
                    return None
                den *= am - ai
        coef.append(num / den)
    both = _frozen([[-a for a in alphas], coef])  # one array: rates, then coefficients
    return Modes(both[0], {"ketamine": both[1:]}, _CENTRAL_INPUT, method="closed-form mammillary")


def _eigen_modes(model: PKModel, weight_kg: float, age, scaling: str) -> Modes | None:
    system = build_system(model, weight_kg, age, scaling)
    lam, P = np.linalg.eig(system.K)
    if np.iscomplexobj(lam):
        if np.max(np.abs(lam.imag)) > 1e-12 * np.max(np.abs(lam.real)):
            return None
        lam, P = lam.real, P.real
    if np.any(lam >= 0):
        return None
    Pinv = np.linalg.inv(P)
    if np.linalg.norm(P) * np.linalg.norm(Pinv) >= MAX_EIGEN_CONDITION:
        return None
    coef = {}
    for name, c in system.outputs.items():
        m = (c @ P)[:, None] * Pinv  # m[i, j]: mode i, input compartment j
        coef[name] = _frozen(m.T)
    return Modes(lam=_frozen(lam), coef=coef, inputs=system.inputs, extra=system.extra)


def _compute(model: PKModel, weight_kg: float, age, scaling: str) -> Modes | None:
    if is_mammillary(model):
        modes = _mammillary_modes(*mammillary_rates(model, weight_kg, scaling))
        if modes is not None:
            return modes
    return _eigen_modes(model, weight_kg, age, scaling)


@lru_cache(maxsize=CACHE_SIZE)
def _decompose(code: str, weight_kg: float, age, scaling: str) -> Modes | None:
    return _compute(MODELS[code], weight_kg, age, scaling)


def decompose(
    model: PKModel | str, weight_kg: float = 70.0, age=None, scaling: str | None = None
) -> Modes | None:
    """Modes of ``model`` for one subject, or ``None`` where the closed form is not
    trustworthy (near-repeated or complex eigenvalues, ill-conditioned eigenvectors):
    callers then use the matrix-exponential path.  Cached per parameter set for the
    registered models (a modified :class:`PKModel` is decomposed every time)."""
    model = get_model(model) if isinstance(model, str) else model
    scaling = model.default_scaling if scaling is None else check_scaling(model, scaling)
    w = float(weight_kg)
    if not math.isfinite(w) or w <= 0:
        raise ValueError("weight must be a positive number of kg")
    age = None if age is None else float(age)
    if MODELS.get(model.code) is model:
        return _decompose(model.code, w, age, scaling)
    return _compute(model, w, age, scaling)


clear_cache = _decompose.cache_clear


class Curve:
    """A solved single-subject regimen, all outputs at once.

    ``boluses``/``rates`` come from :func:`.solver.dose_events` (float amounts).
    Segments start at every dose time and infusion start/stop ("breakpoints").
    """

    def __init__(self, modes: Modes, boluses, rates, names: Sequence[str]):
        self.modes = modes
        self.names = tuple(names)
        # Plain Python floats: for a handful of modes and doses this is several
        # times faster than NumPy calls on tiny arrays.
        self._lam = lam = modes.lam.tolist()
        self._edges = edges = sorted(
            {b[1] for b in boluses} | {r[1] for r in rates} | {r[2] for r in rates}
        )
        self.rate_on = [any(a <= e < b for _, a, b, _ in rates) for e in edges]
        # Per output and segment: (start, y, rl, r), with y the amounts carried by the
        # modes at the start, r the constant inputs and rl = r / lambda.  The lists
        # have one entry per mode (so zip(strict=False) is safe); ``zero`` is shared.
        zero = [0.0] * len(lam)
        self._segs = []
        for nm in self.names:
            rows = modes.coef[nm].tolist()  # rows[j][i]: per mg into compartment j
            segs = []
            y = rl = zero
            prev = None
            for e, on in zip(edges, self.rate_on, strict=True):
                if prev is not None:
                    d = e - prev
                    if rl is zero:  # free decay
                        y = [yi * math.exp(li * d) for yi, li in zip(y, lam, strict=False)]
                    elif y is zero:  # the first infusion: nothing carried yet
                        y = [qi * math.expm1(li * d) for qi, li in zip(rl, lam, strict=False)]
                    else:
                        y = [
                            yi * math.exp(li * d) + qi * math.expm1(li * d)
                            for yi, qi, li in zip(y, rl, lam, strict=False)
                        ]
                for j, t, amt in boluses:
                    if t == e:
                        y = [yi + ci * amt for yi, ci in zip(y, rows[j], strict=False)]
                r = rl = zero
                if on:
                    for j, a, b, val in rates:
                        if a <= e < b:
                            r = [ri + ci * val for ri, ci in zip(r, rows[j], strict=False)]
                    rl = [ri / li for ri, li in zip(r, lam, strict=False)]
                segs.append((e, y, rl, r))
                prev = e
            self._segs.append(segs)

    @cached_property
    def _slopes(self) -> list[list[list[float]]]:
        """``_slopes[o][k][i]``: coefficient of mode ``i`` in dC/dt of output ``o`` on
        segment ``k`` (``l_i y_i + r_i``)."""
        return [
            [
                [li * yi + ri for li, yi, ri in zip(self._lam, y, r, strict=False)]
                for _, y, _, r in segs
            ]
            for segs in self._segs
        ]

    @cached_property
    def edges(self) -> np.ndarray:
        return np.array(self._edges, dtype=float)

    @cached_property
    def _arr(self) -> np.ndarray:
        """``_arr[o, k, 0, i]``: the part of output ``o`` carried by mode ``i`` at the
        start of segment ``k``; ``[o, k, 1, i]`` its constant input divided by the
        rate; ``[o, k, 2, i]`` its coefficient in dC/dt."""
        return np.array(
            [
                [(s[1], s[2], dc) for s, dc in zip(segs, slopes, strict=True)]
                for segs, slopes in zip(self._segs, self._slopes, strict=True)
            ],
            dtype=float,
        )

    @cached_property
    def _order(self) -> list[int]:
        """Modes from the fastest to the slowest."""
        return sorted(range(len(self._lam)), key=self._lam.__getitem__)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def evaluate(self, times, derivative: bool = False) -> np.ndarray:
        """Every output (or its time derivative) at ``times``: shape ``(n_out, T)``.

        Times before the first dose give exactly 0.  Sorted times (the usual case)
        are evaluated segment by segment, each segment as one matrix product of its
        mode coefficients with the exponentials; other times are gathered.
        """
        t = np.asarray(times, dtype=float).reshape(-1)
        return self._evaluate(t, _uniform_step(t), derivative)

    def _evaluate(self, t: np.ndarray, step: float | None, derivative: bool) -> np.ndarray:
        out = np.zeros((len(self.names), t.size))
        if not self._edges or t.size == 0:
            return out
        if step is None and t.size > 1 and not (t[1:] >= t[:-1]).all():
            return self._gathered(t, derivative, out)
        lam = self.modes.lam
        lam_min = min(self._lam)
        bounds = t.searchsorted(self._edges).tolist()
        bounds.append(t.size)
        grid = None
        for k, e in enumerate(self._edges):
            lo, hi = bounds[k], bounds[k + 1]
            if hi <= lo:
                continue
            # Rows (one per output) of exp coefficients: carried amounts or dC/dt.
            c = [s[k] for s in self._slopes] if derivative else [s[k][1] for s in self._segs]
            rate_on = not derivative and self.rate_on[k]
            if step is not None and hi - lo > UNIFORM_MIN_POINTS and not rate_on:
                # (Segments with a running rate keep the direct expm1 below: near the
                # rate change it is exact where a difference of exponentials cancels.)
                if grid is None:
                    grid = _UniformGrid(self._lam, step, t.size - lo)
                out[:, lo:hi] = grid.sums(c, float(t[lo]) - e, hi - lo)
                continue
            x = np.multiply.outer(lam, t[lo:hi] - e)
            if lam_min * (float(t[hi - 1]) - e) < EXP_FLOOR:
                np.maximum(x, EXP_FLOOR, out=x)
            if rate_on:
                out[:, lo:hi] = np.array([s[k][2] for s in self._segs]) @ np.expm1(x)
                if any(map(any, c)):  # amounts carried into the segment
                    out[:, lo:hi] += np.array(c) @ np.exp(x, out=x)
            else:
                out[:, lo:hi] = np.array(c) @ np.exp(x, out=x)
        return out

    def _gathered(self, t: np.ndarray, derivative: bool, out: np.ndarray) -> np.ndarray:
        """``evaluate`` for unsorted times: each time looks up its own segment."""
        lam = self.modes.lam
        which = 2 if derivative else 0  # _arr: exp coefficient of C or of dC/dt
        coef = self._arr.transpose(0, 2, 3, 1)  # (n_out, 3, n, S)
        idx = np.searchsorted(self.edges, t, side="right") - 1
        live = np.nonzero(idx >= 0)[0]
        ii = idx[live]
        x = np.maximum(np.multiply.outer(lam, t[live] - self.edges[ii]), EXP_FLOOR)
        forced = None
        if not derivative:
            sel = np.nonzero(np.asarray(self.rate_on)[ii])[0]
            if sel.size:
                forced = (sel, np.expm1(x[:, sel]))
        val = (np.take(coef[:, which], ii, axis=2) * np.exp(x, out=x)).sum(axis=1)
        if forced is not None:
            sel, m1 = forced
            val[:, sel] += (np.take(coef[:, 1], ii[sel], axis=2) * m1).sum(axis=1)
        out[:, live] = val
        return out

    def concentrations(self, times) -> np.ndarray:
        """Non-negative outputs at ``times`` (inputs are non-negative, so levels are;
        the closed form can leave rounding residue of order 1e-14 ng/mL at exact zeros)."""
        out = self.evaluate(times)
        return np.maximum(out, 0.0, out=out)

    def value(self, name: str, t: float) -> float:
        """Output ``name`` at one time (scalar closed form; same value as evaluate)."""
        return self._value(self.index(name), float(t))

    def _value(self, o: int, t: float) -> float:
        segs = self._segs[o]
        k = bisect.bisect_right(self._edges, t) - 1
        if k < 0:
            return 0.0
        e, y0, rl, _ = segs[k]
        tau = t - e
        v = 0.0
        for lm, y, q in zip(self._lam, y0, rl, strict=True):
            v += y * math.exp(lm * tau)
            if q:
                v += q * math.expm1(lm * tau)
        return v

    def auc(self, name: str, t_end: float = math.inf) -> float:
        """Exact integral of output ``name`` from 0 to ``t_end`` (ng·min/mL)."""
        segs = self._segs[self.index(name)]
        t_end = float(t_end)
        total = 0.0
        for k, (e, y0, rl, _) in enumerate(segs):
            end = segs[k + 1][0] if k + 1 < len(segs) else math.inf
            w = min(end, t_end) - e
            if w <= 0:
                break
            for lm, y, q in zip(self._lam, y0, rl, strict=True):
                g = math.expm1(lm * w) / lm if w != math.inf else -1.0 / lm
                total += y * g
                if q:  # integral of (r/l) expm1(l tau)
                    total += q * (g - w)
        return total

    def _dscalar(self, o: int, k: int):
        e, dc = self._segs[o][k][0], self._slopes[o][k]
        pairs = list(zip(dc, self._lam, strict=True))

        def f(x: float) -> float:
            tau = x - e
            return sum(d * math.exp(lm * tau) for d, lm in pairs)

        return f

    def _may_turn(self, o: int, k: int) -> bool:
        """False when dC/dt keeps one sign over segment ``k`` (no interior extremum)."""
        dc = self._slopes[o][k]
        signs = [dc[i] > 0 for i in self._order if dc[i] != 0]
        return any(s != signs[0] for s in signs[1:]) if signs else False

    def peak(self, name: str, t_end: float, t_start: float = 0.0) -> tuple[float, float]:
        """Exact maximum of output ``name`` over ``[t_start, t_end]``: ``(Cmax, tmax)``.

        Candidates: the window ends, every breakpoint inside, and every root of dC/dt
        where dC/dt goes from positive to non-positive on a 1-minute bracketing grid
        (refined by Brent's method); segments whose dC/dt cannot change sign are
        skipped.  Ties go to the earliest candidate in that order.
        """
        o = self.index(name)
        t_start, t_end = float(t_start), float(t_end)
        bp = self._edges
        edges = sorted({t_start, t_end, *(b for b in bp if t_start < b < t_end)})
        cands = list(edges)
        for a, b in itertools.pairwise(edges):
            k = bisect.bisect_right(bp, a) - 1
            if k < 0 or not self._may_turn(o, k):
                continue
            grid = np.linspace(a, b, max(16, int(np.ceil((b - a) / PEAK_BRACKET_MIN)) + 1))
            inner = grid[1:-1]
            if inner.size < 2:
                continue
            x = np.maximum(np.multiply.outer(inner - bp[k], self.modes.lam), EXP_FLOOR)
            d = np.exp(x) @ np.array(self._slopes[o][k])
            idx = np.nonzero((d[:-1] > 0) & (d[1:] <= 0))[0]
            if idx.size:
                f = self._dscalar(o, k)
                cands += [brentq(f, inner[i], inner[i + 1], xtol=1e-10, rtol=1e-14) for i in idx]
        best_c, best_t = -1.0, cands[0]
        for tc in cands:
            c = max(self._value(o, tc), 0.0)
            if c > best_c:
                best_c, best_t = c, tc
        return float(best_c), float(best_t)


def solve(
    model: PKModel | str,
    regimen: Regimen,
    weight_kg: float = 70.0,
    age=None,
    scaling: str | None = None,
    analyte_only: bool = False,
) -> Curve | None:
    """The single-pass solution for one subject (its analyte and, unless
    ``analyte_only``, its metabolite), or ``None`` if the model's modes are
    ill-conditioned (use the matrix-exponential path of :mod:`.simulate` then)."""
    model = get_model(model) if isinstance(model, str) else model
    modes = decompose(model, weight_kg, age, scaling)
    if modes is None:
        return None
    boluses, rates = dose_events(model, modes, regimen, float(weight_kg))
    names = [model.analyte] + ([model.metabolite] if model.metabolite and not analyte_only else [])
    return Curve(modes, boluses, rates, names)


def concentrations(
    model: PKModel | str,
    regimen: Regimen,
    weight_kg: float = 70.0,
    times_min=None,
    age=None,
    scaling: str | None = None,
    hours: float = 24.0,
) -> np.ndarray:
    """Concentrations (ng/mL) of the model's analyte at ``times_min`` and nothing else:
    no Cmax, tmax or AUC (compare :func:`.simulate.simulate`).  Default times: a
    1-minute grid over ``hours``."""
    model = get_model(model) if isinstance(model, str) else model
    if regimen.is_empty:
        raise ValueError("the regimen has no doses")
    if times_min is None:
        n = int(np.floor(hours * 60.0 + 1e-9))
        times = np.arange(n + 1, dtype=float)
    else:
        times = np.asarray(times_min, dtype=float)
    step = _uniform_step(times) if times.ndim == 1 else None
    if step is not None:  # a uniform grid is sorted and finite
        valid = times[0] >= 0
    else:
        valid = times.ndim == 1 and (times.size == 0 or (times.min() >= 0 and times.max() < np.inf))
    if not valid:
        raise ValueError("times must be finite minutes >= 0")
    curve = solve(model, regimen, weight_kg, age, scaling, analyte_only=True)
    if curve is None:
        from .simulate import simulate

        return simulate(model, regimen, weight_kg, age, times, hours, scaling).concentrations
    out = curve._evaluate(times, step, False)[0]
    return np.maximum(out, 0.0, out=out)
