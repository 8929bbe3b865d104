"""MOAA/S — Modified Observer's Assessment of Alertness/Sedation (clinician, in-session).

Reference: clinical reference §3 "Sedation". A single observation, 0-5; the level
descriptions below are copied from the reference. There are no bands: the level is
the result. Any fall from the pre-dose score counts as sedation (Spravato label):
see `sedation(pre, post)`.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..model import Instrument, Item, Option
from ..validation import ScoreResult

OPTIONS = (
    Option("responds readily to name in normal tone", 5),
    Option("lethargic response to name in normal tone", 4),
    Option("responds only after name is called loudly and/or repeatedly", 3),
    Option("responds only after mild prodding or shaking", 2),
    Option("responds only after painful trapezius squeeze", 1),
    Option("no response to painful trapezius squeeze", 0),
)

INSTRUMENT = Instrument(
    code="moaas",
    short_name="MOAA/S",
    name="Modified Observer's Assessment of Alertness/Sedation (MOAA/S)",
    version="1",
    respondent="clinician",
    recall_period=None,
    stem=None,
    items=(Item("1", "Responsiveness", OPTIONS),),
    wording="item-names",
    score_range=(0, 5),
    bands=(),
    direction="higher_is_better",
    licence_note=(
        "Level descriptions as given in the clinical reference §3; not checked against the "
        "original publication's exact wording."
    ),
    source="Clinical reference §3 (Sedation; Spravato label).",
    local_total_code="ketaflow-moaas-level",
    notes=("Any fall from the pre-dose score counts as sedation (Spravato label).",),
)

LEVELS = tuple(o.value for o in OPTIONS)


def _check_level(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in LEVELS:
        raise ValueError(f"{name} MOAA/S level must be a whole number from 0 to 5, got {value!r}")
    return value


def sedation(pre: int, post: int) -> bool:
    """True when the MOAA/S level has fallen from the pre-dose level (any fall)."""
    return _check_level("post", post) < _check_level("pre", pre)


def interpret(items: Mapping[str, int | str], settings: Mapping[str, int]) -> ScoreResult:
    level = items["1"]
    assert isinstance(level, int)
    return ScoreResult(
        instrument=INSTRUMENT.code,
        total=level,
        severity=None,
        flags=(),
        items=dict(items),
    )
