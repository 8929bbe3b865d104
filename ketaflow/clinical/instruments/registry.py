"""Registry of instruments by code."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from .forms import (
    bprs_positive,
    cadss,
    cssrs,
    gad7,
    madrs,
    moaas,
    pcl5,
    phq9,
    qids_sr16,
    who5,
    wsas,
)
from .model import Instrument
from .validation import ScoreResult, UnknownInstrumentError

Interpreter = Callable[[Mapping[str, int | str], Mapping[str, int]], ScoreResult]

_MODULES = (phq9, gad7, cssrs, who5, qids_sr16, pcl5, madrs, wsas, moaas, cadss, bprs_positive)

INSTRUMENTS: Mapping[str, Instrument] = MappingProxyType(
    {m.INSTRUMENT.code: m.INSTRUMENT for m in _MODULES}
)
INTERPRETERS: Mapping[str, Interpreter] = MappingProxyType(
    {m.INSTRUMENT.code: m.interpret for m in _MODULES}
)
# Settings (name -> documented default) that change how an instrument is scored.
SCORING_SETTINGS: Mapping[str, Mapping[str, int]] = MappingProxyType(
    {pcl5.INSTRUMENT.code: {pcl5.SETTING_CUTOFF: pcl5.PROVISIONAL_PTSD.value}}
)


def codes() -> tuple[str, ...]:
    return tuple(INSTRUMENTS)


def get(code: str) -> Instrument:
    """The instrument with this code; UnknownInstrumentError if there is none."""
    try:
        return INSTRUMENTS[code]
    except (KeyError, TypeError):
        raise UnknownInstrumentError(str(code), codes()) from None


def all_instruments() -> tuple[Instrument, ...]:
    return tuple(INSTRUMENTS.values())
