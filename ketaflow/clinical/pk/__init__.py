"""Pharmacokinetics of ketamine and esketamine (pure Python + NumPy/SciPy, no Django).

Public API::

    from ketaflow.clinical.pk import Regimen, simulate, time_below, svg_curve, population

    reg = Regimen.infusion(mg_per_kg=0.5, minutes=40)
    pred = simulate("kamp-2020", reg, weight_kg=80)
    pred.cmax, pred.tmax_min, pred.auc_0_24h
    time_below(pred, 100)              # minutes after time 0
    svg = svg_curve(pred, shade_range=(100, 250), markers=[(40, "BP")])

    fast.concentrations("domino", reg, 70)   # the curve only, nothing else

Times are minutes from time 0 (normally the first dose); concentrations ng/mL.
"""

from . import fast
from .cli import main
from .models import MODELS, PKModel, build_system, get_model
from .population import PopulationResult, population
from .regimen import Bolus, Infusion, NasalSession, Regimen
from .simulate import Prediction, simulate, time_below
from .svg import svg_curve
from .validation import validate

__all__ = [
    "MODELS",
    "Bolus",
    "Infusion",
    "NasalSession",
    "PKModel",
    "PopulationResult",
    "Prediction",
    "Regimen",
    "build_system",
    "fast",
    "get_model",
    "main",
    "population",
    "simulate",
    "svg_curve",
    "time_below",
    "validate",
]
