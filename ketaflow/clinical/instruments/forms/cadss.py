"""CADSS — Clinician-Administered Dissociative States Scale, 23-item form.

Reference: clinical reference §3 "Dissociation": the 23-item form used in ketamine
trials, each item 0-4, total 0-92. The item wording is not in the reference and is
not reproduced here: items are numbered, and the clinician enters the score (0-4)
from the administered form. No bands are documented.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..model import Instrument, Item, numeric_options
from ..validation import ScoreResult, sum_scored

OPTIONS = numeric_options(0, 4)
N_ITEMS = 23

INSTRUMENT = Instrument(
    code="cadss",
    short_name="CADSS",
    name="Clinician-Administered Dissociative States Scale, 23 items (CADSS)",
    version="1",
    respondent="clinician",
    recall_period=None,
    stem=None,
    items=tuple(Item(str(n), f"CADSS item {n}", OPTIONS) for n in range(1, N_ITEMS + 1)),
    wording="item-names",
    score_range=(0, 92),
    bands=(),
    direction="lower_is_better",
    licence_note=(
        "CADSS item wording is not reproduced (not in the clinical reference; licensing "
        "unverified): numbered items with clinician-entered scores."
    ),
    source=(
        "Clinical reference §3 (Dissociation). Original: Bremner JD et al., J Trauma Stress 1998."
    ),
    local_total_code="ketaflow-cadss-total",
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
