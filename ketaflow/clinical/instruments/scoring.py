"""score(code, answers) — validate an answer set and apply the instrument's rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .registry import INTERPRETERS, SCORING_SETTINGS, get
from .validation import Answer, ScoreResult, validate


def score(
    code: str, answers: Mapping[Any, Answer], *, settings: Mapping[str, int] | None = None
) -> ScoreResult:
    """Score one completed questionnaire.

    answers maps item keys ("1", "2", ..., "difficulty", "6b") to the option value:
    an int (or a string of digits) for numbered options, "yes"/"no" (any case) or a
    bool for C-SSRS. Raises UnknownInstrumentError for an unknown code, ScoringError
    (with `.item`) for a refused answer set, ValueError for an unknown or
    out-of-range setting.
    """
    instrument = get(code)
    settings = dict(settings or {})
    allowed = SCORING_SETTINGS.get(instrument.code, {})
    for name in settings:
        if name not in allowed:
            raise ValueError(f"unknown setting {name!r} for {instrument.short_name}")
    items = validate(instrument, answers)
    return INTERPRETERS[instrument.code](items, settings)
