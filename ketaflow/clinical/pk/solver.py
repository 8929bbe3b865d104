"""Solvers for linear compartment models with piecewise-constant inputs.

Three independent paths, all on the same compiled :class:`Inputs`:

* :class:`ModalSolution` - closed-form sums of exponentials from the eigen-
  decomposition of ``K`` (the STANPUMP approach generalised to any diagonalisable
  linear system, including the esketamine liver/metabolite structure).  Exact,
  vectorised over times and over virtual patients; the production path.
* :func:`solve_expm` - matrix exponential of the augmented system
  ``[[K, u], [0, 0]]`` segment by segment.  Exact and robust even when ``K`` is
  defective; used as a fallback and as a cross-check.
* :func:`solve_ode` - ``scipy.integrate.solve_ivp`` restarted at every infusion
  start/stop and every dose; used by the tests and the validation report only.

Times in minutes, amounts in mg, outputs in ng/mL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp
from scipy.linalg import expm

from .models import LinearSystem, PKModel
from .regimen import DEVICE_MG, Regimen

# Eigenvector matrices worse conditioned than this use the expm path instead.
MAX_EIGEN_CONDITION = 1e8


@dataclass(frozen=True)
class Inputs:
    """Piecewise-constant inputs: boluses and constant rates into compartments.

    Amounts and rates have shape ``(N, B)`` / ``(N, R)`` (N = number of subjects).
    """

    bolus_cmp: np.ndarray
    bolus_t: np.ndarray
    bolus_amt: np.ndarray
    rate_cmp: np.ndarray
    rate_start: np.ndarray
    rate_end: np.ndarray
    rate_val: np.ndarray

    @property
    def breakpoints(self) -> np.ndarray:
        return np.unique(np.concatenate([self.bolus_t, self.rate_start, self.rate_end]))

    def total_into(self, cmp: int) -> np.ndarray:
        """Total amount (mg) delivered into compartment ``cmp``, shape ``(N,)``."""
        b = (self.bolus_amt * (self.bolus_cmp == cmp)).sum(axis=-1)
        dur = self.rate_end - self.rate_start
        r = (self.rate_val * dur * (self.rate_cmp == cmp)).sum(axis=-1)
        return b + r

    def subject(self, i: int) -> Inputs:
        return Inputs(
            self.bolus_cmp,
            self.bolus_t,
            self.bolus_amt[i : i + 1],
            self.rate_cmp,
            self.rate_start,
            self.rate_end,
            self.rate_val[i : i + 1],
        )


def dose_events(
    model: PKModel, system, regimen: Regimen, weight_kg, n_subjects: int | None = None
) -> tuple[list[tuple], list[tuple]]:
    """The regimen as ``(boluses, rates)``: ``(compartment, time, mg)`` and
    ``(compartment, start, end, mg/min)`` tuples, in a fixed order (IV, then nasal).

    ``system`` needs only ``inputs`` (route -> compartment) and ``extra`` (dosing
    constants).  With ``n_subjects=None`` amounts are floats for a float ``weight_kg``
    (the single-subject fast path); otherwise arrays of shape ``(N,)`` (see
    :func:`compile_inputs`).  Both paths do the same arithmetic.
    """
    if (regimen.boluses or regimen.infusions) and "iv" not in model.accepts:
        raise ValueError(f"model {model.code} does not accept IV doses")
    if regimen.nasal and "nasal" not in model.accepts:
        raise ValueError(f"model {model.code} is an IV model; nasal doses need perez-ruixo-2021")
    w = weight_kg
    one = 1.0 if n_subjects is None else np.ones(n_subjects)
    iv = system.inputs["iv"]
    boluses = [(iv, b.time_min, b.amount * (w if b.per_kg else one)) for b in regimen.boluses]
    rates = [
        (iv, inf.start_min, inf.end_min, inf.rate * (w if inf.per_kg else one))
        for inf in regimen.infusions
        if not (inf.end_min <= inf.start_min or inf.rate == 0)
    ]
    if regimen.nasal:
        ex = system.extra
        if n_subjects is None:
            frn = float(ex["frn"])
        else:
            frn = np.broadcast_to(np.asarray(ex["frn"], dtype=float), (n_subjects,))
        later = float(ex["frn_later_device"])
        fgut = float(ex["fgut"])
        dsw = float(ex["dsw_min"])
        nasal, gut = system.inputs["nasal"], system.inputs["gut"]
        for session in regimen.nasal:
            for k, t in enumerate(session.device_times):
                f = frn * (1.0 if k == 0 else later)
                boluses.append((nasal, t, DEVICE_MG * f))
                rates.append((gut, t, t + dsw, DEVICE_MG * (1.0 - f) * fgut / dsw))
    return boluses, rates


def compile_inputs(
    model: PKModel, system: LinearSystem, regimen: Regimen, weight_kg, n_subjects: int = 1
) -> Inputs:
    """Turn a :class:`Regimen` into compartment inputs for ``system``.

    ``weight_kg`` (scalar or shape ``(N,)``) resolves mg/kg doses.  For the
    esketamine model each device k (0-based) of a session puts
    ``28 mg x FRn_k`` in the nasal depot (FRn_0 = FRn, later devices FRn x 0.62) and
    ``28 mg x (1 - FRn_k) x Fgut`` into the gut depot at a constant rate over Dsw.
    Summed over a session of N devices this is exactly the reference's
    ``FRn_eff = FRn (1 + (N - 1) 0.62) / N``.
    """
    w = np.broadcast_to(np.asarray(weight_kg, dtype=float), (n_subjects,))
    boluses, rates = dose_events(model, system, regimen, w, n_subjects)
    bc, bt, ba = (list(x) for x in zip(*boluses, strict=True)) if boluses else ([], [], [])
    rc, rs, re, rv = (list(x) for x in zip(*rates, strict=True)) if rates else ([], [], [], [])

    def arr(x, dtype=float):
        return np.asarray(x, dtype=dtype)

    def mat(x):
        return np.stack(x, axis=-1) if x else np.zeros((n_subjects, 0))

    return Inputs(arr(bc, int), arr(bt), mat(ba), arr(rc, int), arr(rs), arr(re), mat(rv))


def _as_batch(system: LinearSystem) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    K = system.K
    if K.ndim == 2:
        K = K[None]
    outs = {k: (v[None] if v.ndim == 1 else v) for k, v in system.outputs.items()}
    return K, outs


class ModalSolution:
    """Closed-form solution ``C(t) = sum over inputs and modes of exponentials``.

    Works on a batch of N subjects sharing one dosing schedule.
    """

    def __init__(self, system: LinearSystem, inputs: Inputs):
        K, outs = _as_batch(system)
        self.system = system
        self.inputs = inputs
        lam, P = np.linalg.eig(K)
        if np.iscomplexobj(lam):
            if np.max(np.abs(lam.imag)) > 1e-12 * np.max(np.abs(lam.real)):
                raise np.linalg.LinAlgError("complex eigenvalues: use the expm solver")
            lam, P = lam.real, P.real
        if np.any(lam >= 0):
            raise np.linalg.LinAlgError("system without elimination from every compartment")
        Pinv = np.linalg.inv(P)
        self.condition = np.linalg.norm(P, axis=(-2, -1)) * np.linalg.norm(Pinv, axis=(-2, -1))
        self.lam = lam  # (N, n)
        self._seg_cache: dict[str, tuple] = {}
        # coef[name][N, j, i]: contribution of a unit input into compartment j via mode i.
        self.coef = {
            name: np.einsum("ni,nij->nji", np.einsum("nk,nki->ni", c, P), Pinv)
            for name, c in outs.items()
        }

    @property
    def well_conditioned(self) -> np.ndarray:
        return self.condition < MAX_EIGEN_CONDITION

    def _pieces(self, name: str):
        inp = self.inputs
        coef = self.coef[name]
        # (N, B, n) and (N, R, n)
        cb = coef[:, inp.bolus_cmp, :] * inp.bolus_amt[..., None]
        cr = coef[:, inp.rate_cmp, :] * inp.rate_val[..., None]
        return cb, cr

    def _segment_states(self, name: str):
        """Per-mode output contributions at each breakpoint.

        Between consecutive breakpoints every mode ``i`` obeys the scalar ODE
        ``dy_i/dt = lambda_i y_i + r_i`` (``r_i`` = projected constant input), so
        ``y_i(e_k + tau) = y_i(e_k) exp(lambda_i tau) + r_i expm1(lambda_i tau) / lambda_i``.
        Returns edges ``(S,)``, ``y0`` and ``r`` of shape ``(N, S, n)``.
        """
        cached = self._seg_cache.get(name)
        if cached is not None:
            return cached
        inp = self.inputs
        cb, cr = self._pieces(name)
        edges = inp.breakpoints
        N, n = self.lam.shape
        S = len(edges)
        y0 = np.zeros((N, S, n))
        r = np.zeros((N, S, n))
        y = np.zeros((N, n))
        for k, e in enumerate(edges):
            if k > 0:
                d = e - edges[k - 1]
                em1 = np.expm1(self.lam * d)
                y = y0[:, k - 1] * (em1 + 1.0) + r[:, k - 1] * em1 / self.lam
            hit = inp.bolus_t == e
            if np.any(hit):
                y = y + cb[:, hit].sum(axis=1)
            active = (inp.rate_start <= e) & (inp.rate_end > e)
            if np.any(active):
                r[:, k] = cr[:, active].sum(axis=1)
            y0[:, k] = y
        out = (edges, y0, r)
        self._seg_cache[name] = out
        return out

    def evaluate(self, name: str, times, derivative: bool = False, chunk: int = 4_000_000):
        """Concentration (or its time derivative) at ``times``: shape ``(N, T)``."""
        t = np.atleast_1d(np.asarray(times, dtype=float))
        edges, y0, r = self._segment_states(name)
        N, n = self.lam.shape
        out = np.zeros((N, t.size))
        if edges.size == 0:
            return out
        idx = np.searchsorted(edges, t, side="right") - 1
        live = idx >= 0
        if not np.any(live):
            return out
        ti = t[live]
        ii = idx[live]
        tau = ti - edges[ii]  # (T',)
        step = max(1, chunk // max(1, n * ti.size))
        for lo in range(0, N, step):
            lam = self.lam[lo : lo + step, :, None]  # (m, n, 1)
            ys = np.swapaxes(y0[lo : lo + step][:, ii, :], 1, 2)  # (m, n, T')
            rs = np.swapaxes(r[lo : lo + step][:, ii, :], 1, 2)
            em1 = np.expm1(lam * tau)
            if derivative:
                val = (lam * ys + rs) * (em1 + 1.0)
            else:
                val = ys * (em1 + 1.0) + rs * (em1 / lam)
            out[lo : lo + step, live] = val.sum(axis=1)
        return out

    def sweep(self, names: Sequence[str], times) -> dict[str, np.ndarray]:
        """Outputs at ``times`` for many subjects by exact stepping in time.

        Walks through the sorted output times and breakpoints, advancing every mode
        with ``y <- y exp(lambda d) + r expm1(lambda d) / lambda``; the step factors
        are computed once per distinct step length and input segment, so a regular
        grid costs one exponential per mode instead of one per mode and time.  Same
        result as :meth:`evaluate` (to rounding), much faster for large populations.
        Returns ``{name: (N, T)}`` (views in column-major order: each time's N values
        are contiguous, for per-time percentiles).
        """
        t = np.asarray(times, dtype=float)
        order = np.argsort(t, kind="stable")
        N, n = self.lam.shape
        n_out = len(names)
        inp = self.inputs
        pieces = [self._pieces(nm) for nm in names]
        # Layout (n, O, N): summing over modes adds contiguous blocks.
        cb = np.stack([p[0] for p in pieces], axis=0).transpose(3, 0, 2, 1)  # (n, O, B, N)
        cr = np.stack([p[1] for p in pieces], axis=0).transpose(3, 0, 2, 1)  # (n, O, R, N)
        lam = self.lam.T[:, None, :]  # (n, 1, N)
        y = np.zeros((n, n_out, N))
        r: np.ndarray | None = None
        out = np.zeros((n_out, t.size, N))  # one contiguous row per time
        bp = inp.breakpoints
        factors: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        forced: dict[float, np.ndarray] = {}

        def advance(d: float) -> None:
            f = factors.get(d)
            if f is None:
                em1 = np.expm1(lam * d)
                f = (em1 + 1.0, em1 / lam)
                if len(factors) < 16:
                    factors[d] = f
            np.multiply(y, f[0], out=y)
            if r is not None:
                g = forced.get(d)
                if g is None:
                    g = r * f[1]
                    if len(forced) < 16:
                        forced[d] = g
                np.add(y, g, out=y)

        now = float(bp[0]) if bp.size else 0.0
        bi = 0
        started = False
        for j in order:
            tj = t[j]
            while bi < bp.size and bp[bi] <= tj:
                e = float(bp[bi])
                if started and e > now:
                    advance(e - now)
                now = e
                started = True
                hit = inp.bolus_t == e
                if np.any(hit):
                    y += cb[:, :, hit].sum(axis=2)
                active = (inp.rate_start <= e) & (inp.rate_end > e)
                r = cr[:, :, active].sum(axis=2) if np.any(active) else None
                forced.clear()
                bi += 1
            if started and tj > now:
                advance(tj - now)
                now = tj
            if started:
                np.sum(y, axis=0, out=out[:, j])
        return {nm: out[k].T for k, nm in enumerate(names)}

    def auc(self, name: str, t_end: float = np.inf) -> np.ndarray:
        """Exact integral of the output from 0 to ``t_end`` (ng.min/mL), shape ``(N,)``."""
        inp = self.inputs
        cb, cr = self._pieces(name)
        lam = self.lam[:, None, :]  # (N, 1, n)
        total = np.zeros(self.lam.shape[0])
        if len(inp.bolus_t):
            if np.isinf(t_end):
                g = -1.0 / lam * np.ones_like(inp.bolus_t)[None, :, None]
            else:
                d = np.maximum(t_end - inp.bolus_t, 0.0)[None, :, None]
                g = np.expm1(lam * d) / lam
            total += np.einsum("nbi,nbi->n", cb, np.broadcast_to(g, cb.shape))
        if len(inp.rate_start):
            s = inp.rate_start[None, :, None]
            if np.isinf(t_end):
                g = -(inp.rate_end - inp.rate_start)[None, :, None] / lam
            else:
                m = np.minimum(t_end, inp.rate_end)[None, :, None]
                width = np.maximum(m - s, 0.0)
                g = (
                    np.exp(lam * np.maximum(t_end - m, 0.0)) * np.expm1(lam * width) / lam - width
                ) / lam
            total += np.einsum("nri,nri->n", cr, np.broadcast_to(g, cr.shape))
        return total


def _segments(inputs: Inputs, t_max: float) -> np.ndarray:
    bp = inputs.breakpoints
    edges = np.unique(np.concatenate([[0.0], bp[bp > 0]]))
    return np.concatenate([edges, [max(t_max, edges[-1]) + 1.0]])


def _rate_vector(inputs: Inputs, n: int, t: float, subject: int = 0) -> np.ndarray:
    u = np.zeros(n)
    active = (inputs.rate_start <= t) & (inputs.rate_end > t)
    for j in np.nonzero(active)[0]:
        u[inputs.rate_cmp[j]] += inputs.rate_val[subject, j]
    return u


def _apply_boluses(x: np.ndarray, inputs: Inputs, t: float, subject: int = 0) -> None:
    for j in np.nonzero(inputs.bolus_t == t)[0]:
        x[inputs.bolus_cmp[j]] += inputs.bolus_amt[subject, j]


def _augmented_outputs(system: LinearSystem, names: Sequence[str], subject: int):
    K, outs = _as_batch(system)
    Ks = K[min(subject, K.shape[0] - 1)]
    C = np.stack([outs[nm][min(subject, outs[nm].shape[0] - 1)] for nm in names])
    return Ks, C


def solve_expm(
    system: LinearSystem, inputs: Inputs, times, names: Sequence[str], subject: int = 0
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Exact solution by the matrix exponential of the augmented system.

    The augmented state is ``[x, integral of outputs, 1]``, so the same exponential
    also gives the exact area under each output curve from 0 to each time.
    Returns ``(concentrations, cumulative AUC)`` per output name, each ``(T,)``.
    """
    t = np.asarray(times, dtype=float)
    Ks, C = _augmented_outputs(system, names, subject)
    n, m = Ks.shape[0], C.shape[0]
    edges = _segments(inputs, float(t.max()) if t.size else 0.0)
    size = n + m + 1
    x = np.zeros(n + m + 1)
    x[-1] = 1.0
    res = np.full((m, t.size), np.nan)
    area = np.full((m, t.size), np.nan)
    for k in range(len(edges) - 1):
        t0, t1 = edges[k], edges[k + 1]
        _apply_boluses(x, inputs, t0, subject)
        M = np.zeros((size, size))
        M[:n, :n] = Ks
        M[n : n + m, :n] = C
        M[:n, -1] = _rate_vector(inputs, n, t0, subject)
        last = k == len(edges) - 2
        sel = (t >= t0) & ((t < t1) | last)
        if np.any(sel):
            dt = t[sel] - t0
            E = expm(M[None] * dt[:, None, None])
            xs = E @ x
            res[:, sel] = (C @ xs[:, :n].T).reshape(m, -1)
            area[:, sel] = xs[:, n : n + m].T
        if not last:
            x = expm(M * (t1 - t0)) @ x
    return (
        {nm: res[i] for i, nm in enumerate(names)},
        {nm: area[i] for i, nm in enumerate(names)},
    )


def solve_ode(
    system: LinearSystem,
    inputs: Inputs,
    times,
    names: Sequence[str],
    subject: int = 0,
    rtol: float = 1e-11,
    atol: float = 1e-16,
    method: str = "LSODA",
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Numerical integration, restarted at every dose and infusion start/stop.

    Integrates the amounts and the running integral of each output.  For tests and
    validation only (much slower than the exact solvers).
    """
    t = np.asarray(times, dtype=float)
    Ks, C = _augmented_outputs(system, names, subject)
    n, m = Ks.shape[0], C.shape[0]
    A = np.zeros((n + m, n + m))
    A[:n, :n] = Ks
    A[n:, :n] = C
    edges = _segments(inputs, float(t.max()) if t.size else 0.0)
    y = np.zeros(n + m)
    res = np.full((m, t.size), np.nan)
    area = np.full((m, t.size), np.nan)
    for k in range(len(edges) - 1):
        t0, t1 = edges[k], edges[k + 1]
        x = y.copy()
        _apply_boluses(x, inputs, t0, subject)
        y = x
        u = np.zeros(n + m)
        u[:n] = _rate_vector(inputs, n, t0, subject)
        last = k == len(edges) - 2
        sel = (t >= t0) & ((t < t1) | last)
        t_eval = np.unique(np.concatenate([t[sel], [t1]]))
        sol = solve_ivp(
            lambda _t, z, u=u: A @ z + u,
            (t0, t1),
            y,
            method=method,
            t_eval=t_eval,
            jac=lambda _t, _z: A,
            rtol=rtol,
            atol=atol,
        )
        if not sol.success:
            raise RuntimeError(f"ODE solver failed: {sol.message}")
        idx = np.searchsorted(sol.t, t[sel])
        ys = sol.y[:, idx]
        res[:, sel] = C @ ys[:n]
        area[:, sel] = ys[n:]
        y = sol.y[:, -1]
    return (
        {nm: res[i] for i, nm in enumerate(names)},
        {nm: area[i] for i, nm in enumerate(names)},
    )
