"""Comparison with opentiva 1.1.2, an independent implementation (run as a subprocess).

opentiva cannot be built on Python >= 3.11, so it lives in its own Python 3.10
virtual environment, created by ``make opentiva``::

    /root/.pyenv/versions/3.10.13/bin/python3.10 -m venv .venv-opentiva
    .venv-opentiva/bin/pip install opentiva==1.1.2

The interpreter is found at ``$KETAFLOW_OPENTIVA_PYTHON`` or
``<repo>/.venv-opentiva/bin/python``.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .models import get_model
from .regimen import Regimen
from .simulate import simulate

REPO_ROOT = Path(__file__).resolve().parents[3]
SCRIPT = REPO_ROOT / "scripts" / "opentiva_compare.py"
OPENTIVA_CLASS = {
    "domino": "Domino",
    "kamp-2020": "Klamp",
    "clements-250": "Clements250",
    "hijazi-2003": "Hijazi",
}
MISSING = (
    "opentiva environment not found: run `make opentiva` (creates .venv-opentiva with "
    "Python 3.10 and opentiva==1.1.2) or set KETAFLOW_OPENTIVA_PYTHON"
)


class OpentivaUnavailable(RuntimeError):
    pass


def opentiva_python() -> Path:
    env = os.environ.get("KETAFLOW_OPENTIVA_PYTHON")
    path = Path(env) if env else REPO_ROOT / ".venv-opentiva" / "bin" / "python"
    if not path.exists():
        raise OpentivaUnavailable(f"{MISSING} (looked for {path})")
    return path


def run_opentiva(request: dict, timeout: float = 300.0) -> dict:
    """Send ``request`` to scripts/opentiva_compare.py under the opentiva venv."""
    py = opentiva_python()
    proc = subprocess.run(  # noqa: S603 - fixed interpreter and script, JSON on stdin
        [str(py), str(SCRIPT)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise OpentivaUnavailable(
            f"opentiva comparison script failed ({proc.returncode}): {proc.stderr.strip()[-800:]}"
        )
    return json.loads(proc.stdout)


@dataclass(frozen=True)
class Case:
    """A comparison case: whole-second infusions (opentiva works in seconds)."""

    id: str
    model: str
    weight_kg: float
    infusions_s: tuple[tuple[int, float, int], ...]  # (start_s, mg_per_s, duration_s)
    times_s: tuple[int, ...]
    scaling: str | None = None
    same_parameters: bool = False

    def regimen(self) -> Regimen:
        r = Regimen()
        for start, dose_per_s, dur in self.infusions_s:
            r = r.add_infusion(
                minutes=dur / 60.0, mg_per_min=dose_per_s * 60.0, start_min=start / 60.0
            )
        return r

    def request(self) -> dict:
        d = {
            "id": self.id,
            "model": OPENTIVA_CLASS[self.model],
            "weight_kg": self.weight_kg,
            "infusions": [list(i) for i in self.infusions_s],
            "times_s": list(self.times_s),
        }
        if self.same_parameters:
            m = get_model(self.model)
            if self.model == "kamp-2020":
                raise ValueError("use scaling='linear' for Kamp instead of overriding")
            d["override"] = {
                "v1": m.value("v1_per_kg") * self.weight_kg,
                **{k: m.value(k) for k in ("k10", "k12", "k21", "k13", "k31") if k in m.parameters},
            }
        return d

    def ketaflow(self) -> np.ndarray:
        t = np.asarray(self.times_s, float) / 60.0
        p = simulate(
            self.model, self.regimen(), self.weight_kg, times_min=t, hours=24, scaling=self.scaling
        )
        return p.concentrations


def _infusion(weight_kg: float, mg_per_kg: float, minutes: float, start_s: int = 0):
    dur = round(minutes * 60)
    return (start_s, weight_kg * mg_per_kg / dur, dur)


GRID_24H = tuple(range(0, 24 * 3600 + 1, 60))


def standard_cases() -> list[Case]:
    """Domino and Kamp regimens compared with opentiva (Kamp with linear scaling,
    which is what opentiva's Klamp implements)."""
    w = 70.0
    std = (_infusion(w, 0.5, 40),)
    complex_ = (  # 0.5 mg/kg started, paused 10 min at 15 min, then faster, plus a bolus
        (0, 95 * 0.5 / 2400, 900),
        (1500, 95 * 0.5 / 2400 * 1.5, 1200),
        (4000, 10.0, 2),
    )
    return [
        Case("domino-70kg-0.5mgkg-40min", "domino", w, std, GRID_24H),
        Case("domino-70kg-same-parameters", "domino", w, std, GRID_24H, same_parameters=True),
        Case("domino-95kg-pause-rate-bolus", "domino", 95.0, complex_, GRID_24H),
        Case("kamp-70kg-0.5mgkg-40min", "kamp-2020", w, std, GRID_24H, scaling="linear"),
        Case(
            "kamp-110kg-linear-scaling",
            "kamp-2020",
            110.0,
            (_infusion(110.0, 0.5, 40),),
            GRID_24H,
            scaling="linear",
        ),
    ]


def compare(cases: list[Case] | None = None, bench_case: str | None = None) -> dict:
    """Run every case in opentiva and ketaflow; returns per-case max relative error."""
    cases = standard_cases() if cases is None else cases
    request = {"cases": [c.request() for c in cases]}
    if bench_case:
        request["bench"] = {"case": bench_case, "repeat": 3}
    out = run_opentiva(request)
    rows = {}
    for c in cases:
        theirs = np.asarray(out["results"][c.id]["ng_ml"])
        t0 = time.perf_counter()
        ours = c.ketaflow()
        elapsed = time.perf_counter() - t0
        mask = theirs > 1e-9 * theirs.max()
        rel = np.abs(ours[mask] - theirs[mask]) / theirs[mask]
        rows[c.id] = {
            "model": c.model,
            "scaling": c.scaling or get_model(c.model).default_scaling,
            "weight_kg": c.weight_kg,
            "points": int(mask.sum()),
            "max_rel_diff": float(rel.max()),
            "max_rel_diff_first_6h": float(rel[np.asarray(c.times_s)[mask] <= 6 * 3600].max()),
            "opentiva_params": out["results"][c.id]["params"],
            "ketaflow_seconds": elapsed,
        }
    result = {"cases": rows, "opentiva_version": out.get("opentiva_version")}
    if "bench" in out:
        result["bench"] = out["bench"]
    return result
