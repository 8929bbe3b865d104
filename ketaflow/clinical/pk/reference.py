"""Measured reference ranges and what a prediction may honestly say about them.

Two rules (issue 17, "misread prediction"):

* A measured range is drawn only on curves of the drug and analyte it was measured in,
  and always with its source and sampling site.  The only range ketaflow ships is the
  racemic ketamine level measured in venous blood during 0.5 mg/kg/40 min infusions; no
  measured esketamine range is published in ketaflow's sources, so esketamine curves get
  none (none is invented).
* "Falls below X ng/mL at ..." is never one model's point for racemic IV ketamine: the four
  shipped racemic models disagree by tens of minutes for the same infusion, so the time is
  the range across them, each end naming its model(s).

Every place that shows a prediction (plan page, session page, API, CLI, patient education)
builds it through :func:`forecast`, so they all show the same figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .models import MODELS, RACEMIC_MODELS, PKModel, get_model
from .regimen import Regimen
from .simulate import Prediction, round_sig, simulate, time_below
from .svg import line_chart

CAPTION = "Population estimate, not a measurement"


@dataclass(frozen=True)
class ReferenceBand:
    """A range of concentrations measured in people, with where and how it was measured."""

    code: str
    low: float
    high: float
    drug: str
    analyte: str
    site: str
    regimen: str
    source: str
    unit: str = "ng/mL"

    @property
    def short_label(self) -> str:
        return f"{self.low:g}-{self.high:g} {self.unit} measured ({self.site})"

    @property
    def label(self) -> str:
        return (
            f"{self.low:g}-{self.high:g} {self.unit}: {self.drug} measured in {self.site} "
            f"{self.regimen} ({self.source})"
        )

    def applies_to(self, model: PKModel) -> bool:
        """Only curves of the same drug and analyte may carry this band."""
        return model.drug == self.drug and model.analyte == self.analyte

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "low": self.low,
            "high": self.high,
            "unit": self.unit,
            "drug": self.drug,
            "analyte": self.analyte,
            "site": self.site,
            "regimen": self.regimen,
            "source": self.source,
        }


RACEMIC_VENOUS_BAND = ReferenceBand(
    code="krystal-1994-venous",
    low=100.0,
    high=250.0,
    drug="racemic ketamine",
    analyte="ketamine",
    site="venous blood",
    regimen="during 0.5 mg/kg IV infusions over 40 min",
    source="Krystal et al., Arch Gen Psychiatry 1994, as quoted in Zanos et al., "
    "Pharmacol Rev 2018, Table 1",
)
BANDS: tuple[ReferenceBand, ...] = (RACEMIC_VENOUS_BAND,)

# What each model's curve is a concentration *of* (its sampling site), so that a
# reader can compare it with a measured band honestly.
SITE_NOTE = {
    "racemic ketamine": (
        "The model curves are central-compartment (arterial-like) estimates, which read "
        "higher than venous samples while the infusion runs."
    ),
    "esketamine": "",
}
NO_BAND_NOTE = {
    "esketamine": (
        "No measured esketamine range is given in ketaflow's sources, so none is drawn: the "
        "100-250 ng/mL range was measured for racemic ketamine in venous blood and does not "
        "apply to esketamine."
    ),
}


def bands_for(model: PKModel | str) -> tuple[ReferenceBand, ...]:
    """The measured ranges that may be drawn on ``model``'s curve (possibly none)."""
    model = get_model(model) if isinstance(model, str) else model
    return tuple(b for b in BANDS if b.applies_to(model))


def check_band(band: ReferenceBand | None, model: PKModel) -> None:
    if band is not None and not band.applies_to(model):
        raise ValueError(
            f"the {band.low:g}-{band.high:g} {band.unit} range was measured for {band.drug} "
            f"({band.analyte}); it cannot be drawn on a {model.drug} ({model.analyte}) curve"
        )


# --------------------------------------------------------------------------- time below


@dataclass(frozen=True)
class ModelTime:
    model: str
    minutes: float | None  # None: never reaches the threshold, or does not fall below it
    peak: float
    reaches: bool


@dataclass(frozen=True)
class TimeBelowRange:
    """When the level falls below ``threshold`` after the peak, across several models."""

    threshold: float
    band: ReferenceBand
    by_model: tuple[ModelTime, ...]

    @property
    def falling(self) -> tuple[ModelTime, ...]:
        return tuple(m for m in self.by_model if m.reaches and m.minutes is not None)

    @property
    def not_reaching(self) -> tuple[str, ...]:
        return tuple(m.model for m in self.by_model if not m.reaches)

    @property
    def not_falling(self) -> tuple[str, ...]:
        return tuple(m.model for m in self.by_model if m.reaches and m.minutes is None)

    @property
    def low(self) -> float | None:
        return min((m.minutes for m in self.falling), default=None)

    @property
    def high(self) -> float | None:
        return max((m.minutes for m in self.falling), default=None)

    def _models_at(self, value: float | None) -> tuple[str, ...]:
        return tuple(m.model for m in self.falling if round(m.minutes) == round(value or -1))

    @property
    def low_models(self) -> tuple[str, ...]:
        return self._models_at(self.low)

    @property
    def high_models(self) -> tuple[str, ...]:
        return self._models_at(self.high)

    @property
    def peak_low(self) -> float:
        return min(m.peak for m in self.by_model)

    @property
    def peak_high(self) -> float:
        return max(m.peak for m in self.by_model)

    def sentence(self) -> str:
        """One plain sentence, the same wherever the figure is shown."""
        t = f"{self.threshold:g} {self.band.unit}"
        n = len(self.by_model)
        parts = []
        if self.falling:
            lo, hi = round(self.low), round(self.high)
            if lo == hi:
                parts.append(
                    f"Predicted to fall below {t} about {lo} min after the start in "
                    f"{_names(self.low_models)}"
                )
            else:
                parts.append(
                    f"Predicted to fall below {t} between {lo} min ({_names(self.low_models)}) "
                    f"and {hi} min ({_names(self.high_models)}) after the start"
                )
        if self.not_reaching:
            parts.append(f"the peak stays below {t} in {_names(self.not_reaching)}")
        if self.not_falling:
            parts.append(f"the level stays above {t} for 14 days in {_names(self.not_falling)}")
        return "; ".join(parts) + f" (range across the {n} shipped racemic ketamine models)."

    def to_dict(self) -> dict:
        return {
            "threshold_ng_ml": self.threshold,
            "basis": f"range across the {len(self.by_model)} shipped racemic ketamine models",
            "min_minutes": None if self.low is None else round(self.low, 1),
            "min_models": list(self.low_models),
            "max_minutes": None if self.high is None else round(self.high, 1),
            "max_models": list(self.high_models),
            "models_not_reaching": list(self.not_reaching),
            "models_not_falling": list(self.not_falling),
            "by_model": [
                {
                    "model": m.model,
                    "minutes": None if m.minutes is None else round(m.minutes, 1),
                    "peak_ng_ml": round_sig(m.peak, 4),
                }
                for m in self.by_model
            ],
            "threshold_source": self.band.to_dict(),
            "text": self.sentence(),
        }


def _names(codes: Iterable[str]) -> str:
    codes = list(codes)
    return codes[0] if len(codes) == 1 else ", ".join(codes[:-1]) + " and " + codes[-1]


def time_below_range(
    predictions: Mapping[str, Prediction], band: ReferenceBand = RACEMIC_VENOUS_BAND
) -> TimeBelowRange:
    """The band's lower edge crossing after the peak, for every prediction given."""
    rows = []
    for code, p in predictions.items():
        check_band(band, p.model)
        t = time_below(p, band.low)
        rows.append(ModelTime(code, t, float(p.cmax), bool(p.cmax >= band.low)))
    return TimeBelowRange(band.low, band, tuple(rows))


# --------------------------------------------------------------------------- forecast


@dataclass(frozen=True)
class Forecast:
    """Everything a page, the API or the CLI shows about one predicted dose."""

    predictions: tuple[Prediction, ...]
    band: ReferenceBand | None
    time_below: TimeBelowRange | None
    note: str

    @property
    def drug(self) -> str:
        return self.predictions[0].model.drug

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(p.model.code for p in self.predictions)

    def peak_text(self) -> str:
        peaks = [p.cmax for p in self.predictions]
        lo, hi = min(peaks), max(peaks)
        if len(peaks) == 1:
            return f"Predicted peak {lo:.0f} ng/mL ({self.models[0]})."
        return (
            f"Predicted peak {lo:.0f}-{hi:.0f} ng/mL across the {len(peaks)} shipped "
            f"{self.drug} models."
        )

    def lines(self) -> list[str]:
        """The caption, sentence by sentence (plain text)."""
        out = [f"{CAPTION} ({', '.join(self.models)}).", self.peak_text()]
        if self.band is not None:
            out.append(f"Shaded: {self.band.label}.")
        if self.time_below is not None:
            out.append(self.time_below.sentence())
        if self.note:
            out.append(self.note)
        return out

    def svg(
        self,
        *,
        markers: Iterable[tuple[float, str]] = (),
        hours: float | None = None,
        width: int = 640,
        height: int = 320,
    ) -> str:
        horizon = (hours * 60.0) if hours is not None else self.predictions[0].horizon_min
        import numpy as np

        t = np.linspace(0.0, horizon, 481)
        series = [(p.model.code, t, p.concentration_at(t)) for p in self.predictions]
        first = self.predictions[0]
        title = f"Predicted {first.analyte} concentration ({', '.join(self.models)})"
        return line_chart(
            series,
            title=title,
            desc=" ".join(self.lines()),
            shade_range=None if self.band is None else (self.band.low, self.band.high),
            shade_label=None if self.band is None else self.band.short_label,
            markers=list(markers),
            width=width,
            height=height,
        )

    def to_dict(self) -> dict:
        first = self.predictions[0]
        return {
            "drug": first.model.drug,
            "analyte": first.analyte,
            "unit": first.unit,
            "models": [
                {
                    "model": p.model.code,
                    "citation": p.model.citation,
                    "cmax_ng_ml": round_sig(p.cmax, 4),
                    "tmax_min": round(float(p.tmax_min), 1),
                }
                for p in self.predictions
            ],
            "reference_band": None if self.band is None else self.band.to_dict(),
            "time_below": None if self.time_below is None else self.time_below.to_dict(),
            "note": self.note,
            "text": " ".join(self.lines()),
        }


def forecast(
    regimen: Regimen,
    *,
    weight_kg: float = 70.0,
    age: float | None = None,
    hours: float = 12.0,
    models: Iterable[str] | None = None,
) -> Forecast:
    """Predictions for ``regimen`` with the band and time-below figures that honestly apply.

    Racemic IV regimens are simulated with every shipped racemic model (or ``models``):
    the venous range is drawn and the time below its lower edge is the range across them.
    Nasal regimens use the esketamine model and get no band and no time-below figure.
    """
    if regimen.nasal:
        codes = tuple(models or ("perez-ruixo-2021",))
    else:
        codes = tuple(models or RACEMIC_MODELS)
    preds = {}
    for code in codes:
        model = MODELS[code] if code in MODELS else get_model(code)
        kwargs = {"age": age} if "nasal" in model.accepts else {}
        preds[code] = simulate(model, regimen, weight_kg=weight_kg, hours=hours, **kwargs)
    drugs = {p.model.drug for p in preds.values()}
    if len(drugs) != 1:
        raise ValueError("a forecast compares models of one drug only")
    drug = drugs.pop()
    first = next(iter(preds.values())).model
    applicable = bands_for(first)
    band = applicable[0] if applicable else None
    below = time_below_range(preds, band) if band is not None else None
    note = SITE_NOTE.get(drug, "") if band is not None else NO_BAND_NOTE.get(drug, "")
    return Forecast(tuple(preds.values()), band, below, note)
