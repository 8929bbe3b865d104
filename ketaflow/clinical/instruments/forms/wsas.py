"""WSAS — Work and Social Adjustment Scale (functioning).

Reference: clinical reference §5 "Others". The reference allows the published
wording only if it can be reproduced exactly from a public source; it is not
reproduced here, so items are the reference's item names with clinician-entered
scores (0-8 each).

Total 0-40. Bands: below 10 subclinical; 10-20 significant impairment;
above 20 moderately severe or worse.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..model import Band, Instrument, Item, numeric_options
from ..validation import ScoreResult, sum_scored

OPTIONS = numeric_options(0, 8)

_NAMES = ("Work", "Home management", "Social leisure", "Private leisure", "Close relationships")

INSTRUMENT = Instrument(
    code="wsas",
    short_name="WSAS",
    name="Work and Social Adjustment Scale (WSAS)",
    version="1",
    respondent="clinician",
    recall_period=None,
    stem=None,
    items=tuple(Item(str(n), name, OPTIONS) for n, name in enumerate(_NAMES, start=1)),
    wording="item-names",
    score_range=(0, 40),
    bands=(
        Band(0, 9, "subclinical"),
        Band(10, 20, "significant impairment"),
        Band(21, 40, "moderately severe or worse"),
    ),
    direction="lower_is_better",
    licence_note=(
        "Published WSAS wording is not reproduced (the reference allows it only if exactly "
        "reproducible from a public source): item names and clinician-entered scores."
    ),
    source="Clinical reference §5 (WSAS). Original: Mundt JC et al., Br J Psychiatry 2002.",
    local_total_code="ketaflow-wsas-total",
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
