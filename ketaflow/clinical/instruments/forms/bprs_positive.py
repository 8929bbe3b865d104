"""BPRS positive symptoms — four items of the Brief Psychiatric Rating Scale.

Reference: clinical reference §3 "Dissociation": psychotomimetic effects measured
with four BPRS positive-symptom items (suspiciousness, hallucinations, unusual
thought content, conceptual disorganization).

Scoring convention used here: 0-6 per item (0 = not present), as in one ketamine
trial cited by the reference; total 0-24. The original BPRS rates each item 1-7;
a 1-7 rating converts to this convention by subtracting 1. No bands are documented.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..model import Instrument, Item, numeric_options
from ..validation import ScoreResult, sum_scored

OPTIONS = numeric_options(0, 6)
CONVENTION = "0-6 per item (0 = not present); the 1-7 convention minus 1"

_NAMES = (
    "Suspiciousness",
    "Hallucinations",
    "Unusual thought content",
    "Conceptual disorganization",
)

INSTRUMENT = Instrument(
    code="bprs-positive",
    short_name="BPRS positive",
    name="Brief Psychiatric Rating Scale, positive symptoms (4 items)",
    version="1",
    respondent="clinician",
    recall_period=None,
    stem=None,
    items=tuple(Item(str(n), name, OPTIONS) for n, name in enumerate(_NAMES, start=1)),
    wording="item-names",
    score_range=(0, 24),
    bands=(),
    direction="lower_is_better",
    licence_note="BPRS wording is not reproduced: item names and clinician-entered scores.",
    source=(
        "Clinical reference §3 (BPRS positive symptoms). Original BPRS: Overall JE, "
        "Gorham DR, Psychol Rep 1962."
    ),
    local_total_code="ketaflow-bprs-positive-total",
    notes=(f"Scoring convention: {CONVENTION}.",),
)


def interpret(items: Mapping[str, int | str], settings: Mapping[str, int]) -> ScoreResult:
    total = sum_scored(INSTRUMENT, items)
    return ScoreResult(
        instrument=INSTRUMENT.code,
        total=total,
        severity=None,
        flags=(),
        items=dict(items),
    )
