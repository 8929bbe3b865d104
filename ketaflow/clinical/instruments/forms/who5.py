"""WHO-5 Well-Being Index.

Reference: clinical reference §5 "WHO-5 well-being index". Wording copied character
for character. Higher is better. The total reported is the percentage (raw × 4);
the raw score (0-25) is kept in subscores["raw"].

Flags (reference thresholds, on the percentage):
- 50% or below: "poor-wellbeing" (screen for depression);
- 28% or below: "likely-depression" (also poor well-being, so both flags are set).
A change of 10 percentage points is meaningful. The reference defines no response
or remission rule for WHO-5.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..model import ChangeThreshold, Instrument, Item, Option
from ..validation import ScoreResult, sum_scored

OPTIONS = (
    Option("All of the time", 5),
    Option("Most of the time", 4),
    Option("More than half of the time", 3),
    Option("Less than half of the time", 2),
    Option("Some of the time", 1),
    Option("At no time", 0),
)

POOR_WELLBEING_AT_OR_BELOW = 50  # percent
LIKELY_DEPRESSION_AT_OR_BELOW = 28  # percent

INSTRUMENT = Instrument(
    code="who5",
    short_name="WHO-5",
    name="WHO-5 Well-Being Index",
    version="1",
    respondent="patient",
    recall_period="last two weeks",
    stem=(
        "Please indicate for each of the five statements which is closest to how you have "
        "been feeling over the last two weeks."
    ),
    items=(
        Item("1", "I have felt cheerful and in good spirits", OPTIONS),
        Item("2", "I have felt calm and relaxed", OPTIONS),
        Item("3", "I have felt active and vigorous", OPTIONS),
        Item("4", "I woke up feeling fresh and rested", OPTIONS),
        Item("5", "My daily life has been filled with things that interest me", OPTIONS),
    ),
    wording="published",
    score_range=(0, 100),  # percentage = raw (0-25) × 4
    bands=(),
    direction="higher_is_better",
    licence_note="WHO-5 is free to use (clinical reference §5).",
    source="Clinical reference §5 (WHO-5 well-being index). Original: WHO Regional Office for Europe, 1998.",
    reliable_change=ChangeThreshold(
        10, 10, "percentage points", "a change of 10 percentage points is meaningful"
    ),
    notes=(
        "Total is the percentage score (raw × 4); raw 0-25 is in subscores.",
        "50% or below: poor well-being (screen for depression); 28% or below: likely depression.",
    ),
)


def interpret(items: Mapping[str, int | str], settings: Mapping[str, int]) -> ScoreResult:
    raw = sum_scored(INSTRUMENT, items)
    percent = raw * 4
    flags: list[str] = []
    if percent <= POOR_WELLBEING_AT_OR_BELOW:
        flags.append("poor-wellbeing")
    if percent <= LIKELY_DEPRESSION_AT_OR_BELOW:
        flags.append("likely-depression")
    return ScoreResult(
        instrument=INSTRUMENT.code,
        total=percent,
        severity=None,
        flags=tuple(flags),
        subscores={"raw": raw},
        items=dict(items),
    )
