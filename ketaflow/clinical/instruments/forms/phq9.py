"""PHQ-9 — Patient Health Questionnaire-9.

Reference: clinical reference §5 "PHQ-9". Wording copied character for character.
"""

from __future__ import annotations

from collections.abc import Mapping

from .. import suicidality
from ..model import Band, ChangeThreshold, Cutoff, Instrument, Item, Option
from ..validation import ScoreResult, sum_scored

OPTIONS = (
    Option("Not at all", 0),
    Option("Several days", 1),
    Option("More than half the days", 2),
    Option("Nearly every day", 3),
)

DIFFICULTY_TEXT = (
    "If you checked off any problems, how difficult have these problems made it for you "
    "to do your work, take care of things at home, or get along with other people?"
)
# The reference lists the four difficulty answers without numbers; they are stored
# as 0-3 in the order printed. The question is optional and never scored.
DIFFICULTY_OPTIONS = (
    Option("Not difficult at all", 0),
    Option("Somewhat difficult", 1),
    Option("Very difficult", 2),
    Option("Extremely difficult", 3),
)

INSTRUMENT = Instrument(
    code="phq9",
    short_name="PHQ-9",
    name="Patient Health Questionnaire-9 (PHQ-9)",
    version="1",
    respondent="patient",
    recall_period="last 2 weeks",
    stem="Over the last 2 weeks, how often have you been bothered by any of the following problems?",
    items=(
        Item("1", "Little interest or pleasure in doing things", OPTIONS),
        Item("2", "Feeling down, depressed, or hopeless", OPTIONS),
        Item("3", "Trouble falling or staying asleep, or sleeping too much", OPTIONS),
        Item("4", "Feeling tired or having little energy", OPTIONS),
        Item("5", "Poor appetite or overeating", OPTIONS),
        Item(
            "6",
            "Feeling bad about yourself — or that you are a failure or have let yourself "
            "or your family down",
            OPTIONS,
        ),
        Item(
            "7",
            "Trouble concentrating on things, such as reading the newspaper or watching television",
            OPTIONS,
        ),
        Item(
            "8",
            "Moving or speaking so slowly that other people could have noticed? Or the "
            "opposite — being so fidgety or restless that you have been moving around a lot "
            "more than usual",
            OPTIONS,
        ),
        Item(
            "9",
            "Thoughts that you would be better off dead or of hurting yourself in some way",
            OPTIONS,
            loinc="44260-8",
            suicidality=True,
        ),
        Item("difficulty", DIFFICULTY_TEXT, DIFFICULTY_OPTIONS, required=False, scored=False),
    ),
    wording="published",
    score_range=(0, 27),
    bands=(
        Band(0, 4, "minimal"),
        Band(5, 9, "mild"),
        Band(10, 14, "moderate"),
        Band(15, 19, "moderately severe"),
        Band(20, 27, "severe"),
    ),
    direction="lower_is_better",
    licence_note="PHQ-9 needs no permission to reproduce (clinical reference §5).",
    source=(
        "Clinical reference §5 (PHQ-9). Original: Kroenke K, Spitzer RL, Williams JB, "
        "J Gen Intern Med 2001."
    ),
    loinc_panel="44249-1",
    loinc_total="44261-6",
    response_fall_pct=50,
    partial_response_fall_pct=(25, 50),
    remission=Cutoff(5, inclusive=False, text="total below 5"),
    reliable_change=ChangeThreshold(
        6, 6, "points", "6 points (the threshold used by England's talking-therapies programme)"
    ),
    notes=("Item 9 above 0 always needs same-day clinician follow-up.",),
)


def interpret(items: Mapping[str, int | str], settings: Mapping[str, int]) -> ScoreResult:
    total = sum_scored(INSTRUMENT, items)
    # Item 9 above 0: at least same-day clinician follow-up (suicidality.RULES).
    flags = suicidality.flags(INSTRUMENT.code, items)
    return ScoreResult(
        instrument=INSTRUMENT.code,
        total=total,
        severity=INSTRUMENT.band_for(total),
        flags=tuple(flags),
        items=dict(items),
    )
