"""GAD-7 — Generalized Anxiety Disorder 7-item scale.

Reference: clinical reference §5 "GAD-7". Wording copied character for character.
The reference gives no response or remission rule for GAD-7, so none is defined.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..model import Band, ChangeThreshold, Instrument, Item
from ..validation import ScoreResult, sum_scored
from .phq9 import DIFFICULTY_OPTIONS, DIFFICULTY_TEXT
from .phq9 import OPTIONS as PHQ_OPTIONS

# "Same four options, 0-3" as PHQ-9.
OPTIONS = PHQ_OPTIONS

INSTRUMENT = Instrument(
    code="gad7",
    short_name="GAD-7",
    name="Generalized Anxiety Disorder 7-item scale (GAD-7)",
    version="1",
    respondent="patient",
    recall_period="last 2 weeks",
    stem="Over the last 2 weeks, how often have you been bothered by the following problems?",
    items=(
        Item("1", "Feeling nervous, anxious or on edge", OPTIONS),
        Item("2", "Not being able to stop or control worrying", OPTIONS),
        Item("3", "Worrying too much about different things", OPTIONS),
        Item("4", "Trouble relaxing", OPTIONS),
        Item("5", "Being so restless that it is hard to sit still", OPTIONS),
        Item("6", "Becoming easily annoyed or irritable", OPTIONS),
        Item("7", "Feeling afraid as if something awful might happen", OPTIONS),
        # "Same unscored difficulty question" as PHQ-9.
        Item("difficulty", DIFFICULTY_TEXT, DIFFICULTY_OPTIONS, required=False, scored=False),
    ),
    wording="published",
    score_range=(0, 21),
    bands=(
        Band(0, 4, "minimal"),
        Band(5, 9, "mild"),
        Band(10, 14, "moderate"),
        Band(15, 21, "severe"),
    ),
    direction="lower_is_better",
    licence_note="GAD-7 needs no permission to reproduce (clinical reference §5).",
    source=(
        "Clinical reference §5 (GAD-7). Original: Spitzer RL, Kroenke K, Williams JB, Löwe B, "
        "Arch Intern Med 2006."
    ),
    loinc_panel="69737-5",
    loinc_total="70274-6",
    reliable_change=ChangeThreshold(4, 4, "points", "4 points"),
)


def interpret(items: Mapping[str, int | str], settings: Mapping[str, int]) -> ScoreResult:
    total = sum_scored(INSTRUMENT, items)
    return ScoreResult(
        instrument=INSTRUMENT.code,
        total=total,
        severity=INSTRUMENT.band_for(total),
        flags=(),
        items=dict(items),
    )
