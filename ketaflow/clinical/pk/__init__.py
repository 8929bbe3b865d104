"""Pharmacokinetics of ketamine and esketamine (pure Python + NumPy/SciPy, no Django).

Public API::

    from ketaflow.clinical.pk import Regimen, simulate, time_below, svg_curve, population

    reg = Regimen.infusion(mg_per_kg=0.5, minutes=40)
    pred = simulate("kamp-2020", reg, weight_kg=80)
    pred.cmax, pred.tmax_min, pred.auc_0_24h
    time_below(pred, 100)              # one model's crossing (minutes after time 0)
    fc = forecast(reg, weight_kg=80)   # what pages, API and CLI show: all racemic models,
    fc.time_below.sentence()           # the venous band and the time below as a range
    svg = fc.svg(markers=[(40, "BP")])

    fast.concentrations("domino", reg, 70)   # the curve only, nothing else

Times are minutes from time 0 (normally the first dose); concentrations ng/mL.
"""

from . import fast
from .cli import main
from .models import MODELS, PKModel, build_system, get_model
from .population import PopulationResult, population
from .reference import BANDS, RACEMIC_VENOUS_BAND, Forecast, ReferenceBand, bands_for, forecast
from .regimen import Bolus, Infusion, NasalSession, Regimen
from .simulate import Prediction, simulate, time_below
from .svg import svg_curve
from .validation import validate

__all__ = [
    "BANDS",
    "MODELS",
    "RACEMIC_VENOUS_BAND",
    "Bolus",
    "Forecast",
    "Infusion",
    "NasalSession",
    "PKModel",
    "PopulationResult",
    "Prediction",
    "ReferenceBand",
    "Regimen",
    "bands_for",
    "build_system",
    "fast",
    "forecast",
    "get_model",
    "main",
    "population",
    "simulate",
    "svg_curve",
    "time_below",
    "validate",
]
