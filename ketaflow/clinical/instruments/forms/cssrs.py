"""C-SSRS screener (recent: past month) — Columbia-Suicide Severity Rating Scale.

Reference: clinical reference §5 "C-SSRS screener". Wording copied character for
character. No total: the result is a triage risk level.

Branching (from the reference): "If yes to 2, ask 3, 4 and 5; if no, go to 6."
Item 6 asks about behaviour ever; "If yes: was this within the past 3 months?" is
stored as item "6b" and asked only if 6 is yes.

Triage (from the reference):
- yes to 4 or 5, or behaviour within the past 3 months (6b yes): high risk
  (immediate action);
- yes to 3, or lifetime behaviour only (6 yes, 6b no): moderate;
- yes to 1 or 2 only: low;
- no to everything: none.
"""

from __future__ import annotations

from collections.abc import Mapping

from .. import suicidality
from ..model import NO, YES, YES_NO, Instrument, Item
from ..validation import ScoreResult

INSTRUMENT = Instrument(
    code="cssrs",
    short_name="C-SSRS screener",
    name="Columbia-Suicide Severity Rating Scale screener, recent (C-SSRS)",
    version="1",
    respondent="patient",
    recall_period="past month",
    stem=None,
    items=(
        Item(
            "1",
            "Have you wished you were dead or wished you could go to sleep and not wake up?",
            YES_NO,
            scored=False,
            suicidality=True,
        ),
        Item(
            "2",
            "Have you actually had any thoughts of killing yourself?",
            YES_NO,
            scored=False,
            suicidality=True,
        ),
        Item(
            "3",
            "Have you been thinking about how you might do this?",
            YES_NO,
            scored=False,
            suicidality=True,
            asked_if=("2", YES),
        ),
        Item(
            "4",
            "Have you had these thoughts and had some intention of acting on them?",
            YES_NO,
            scored=False,
            suicidality=True,
            asked_if=("2", YES),
        ),
        Item(
            "5",
            "Have you started to work out or worked out the details of how to kill yourself? "
            "Do you intend to carry out this plan?",
            YES_NO,
            scored=False,
            suicidality=True,
            asked_if=("2", YES),
        ),
        Item(
            "6",
            "Have you ever done anything, started to do anything, or prepared to do anything "
            "to end your life?",
            YES_NO,
            scored=False,
            suicidality=True,
        ),
        Item(
            "6b",
            "If yes: was this within the past 3 months?",
            YES_NO,
            scored=False,
            suicidality=True,
            asked_if=("6", YES),
        ),
    ),
    wording="published",
    score_range=None,
    bands=(),
    direction="lower_is_better",
    licence_note="The C-SSRS screener may be embedded at no cost (clinical reference §5).",
    source=(
        "Clinical reference §5 (C-SSRS screener). Original: Posner K et al., Am J Psychiatry 2011."
    ),
    notes=("Risk levels: none, low, moderate, high. High risk means immediate action.",),
)

RISK_LEVELS = ("none", "low", "moderate", "high")


def triage(items: Mapping[str, int | str]) -> str:
    """Risk level from validated answers (skipped items are absent)."""

    def yes(key: str) -> bool:
        return items.get(key) == YES

    if yes("4") or yes("5") or yes("6b"):
        return "high"
    if yes("3") or (yes("6") and items.get("6b") == NO):
        return "moderate"
    if yes("1") or yes("2"):
        return "low"
    return "none"


def interpret(items: Mapping[str, int | str], settings: Mapping[str, int]) -> ScoreResult:
    # Any yes, item 1 included: its risk band stays "low" but it reaches a clinician
    # (suicidality.RULES gives each yes its urgency).
    flags = suicidality.flags(INSTRUMENT.code, items)
    return ScoreResult(
        instrument=INSTRUMENT.code,
        total=None,
        severity=None,
        flags=tuple(flags),
        risk=triage(items),
        items=dict(items),
    )
