"""MADRS — Montgomery-Åsberg Depression Rating Scale (clinician-rated).

Reference: clinical reference §5 "Others". MADRS wording licensing is unverified,
so only item names and clinician-entered scores (0-6) are stored.

Total 0-60. Bands: 0-6 normal, 7-19 mild, 20-34 moderate, 35-60 severe.
Response: at least 50% fall. Remission: 10 or less by default; esketamine trials
used 12 or less, so the remission cut-off is a clinic setting.
No LOINC code: the total uses the local code "ketaflow-madrs-total".
Item 10 (suicidal thoughts) above 0 raises the suicidality flag (urgency: suicidality.RULES).
"""

from __future__ import annotations

from collections.abc import Mapping

from .. import suicidality
from ..model import Band, Cutoff, Instrument, Item, numeric_options
from ..validation import ScoreResult, sum_scored

OPTIONS = numeric_options(0, 6)

_NAMES = (
    "Apparent sadness",
    "Reported sadness",
    "Inner tension",
    "Reduced sleep",
    "Reduced appetite",
    "Concentration difficulties",
    "Lassitude",
    "Inability to feel",
    "Pessimistic thoughts",
    "Suicidal thoughts",
)

INSTRUMENT = Instrument(
    code="madrs",
    short_name="MADRS",
    name="Montgomery-Åsberg Depression Rating Scale (MADRS)",
    version="1",
    respondent="clinician",
    recall_period=None,
    stem=None,
    items=tuple(
        Item(str(n), name, OPTIONS, suicidality=n == 10) for n, name in enumerate(_NAMES, start=1)
    ),
    wording="item-names",
    score_range=(0, 60),
    bands=(
        Band(0, 6, "normal"),
        Band(7, 19, "mild"),
        Band(20, 34, "moderate"),
        Band(35, 60, "severe"),
    ),
    direction="lower_is_better",
    licence_note=(
        "MADRS wording licensing is unverified (clinical reference §5): item names and "
        "clinician-entered scores only."
    ),
    source=(
        "Clinical reference §5 (MADRS). Original: Montgomery SA, Åsberg M, Br J Psychiatry 1979."
    ),
    local_total_code="ketaflow-madrs-total",
    response_fall_pct=50,
    partial_response_fall_pct=(25, 50),
    remission=Cutoff(
        10,
        inclusive=True,
        text="total 10 or less",
        setting=True,
        documented=(10, 12),
        note="Default 10 or less; esketamine trials used 12 or less (clinic setting).",
    ),
    notes=("MADRS has no LOINC code; the total uses a local ketaflow code.",),
)


def interpret(items: Mapping[str, int | str], settings: Mapping[str, int]) -> ScoreResult:
    total = sum_scored(INSTRUMENT, items)
    flags = suicidality.flags(INSTRUMENT.code, items)  # item 10 above 0
    return ScoreResult(
        instrument=INSTRUMENT.code,
        total=total,
        severity=INSTRUMENT.band_for(total),
        flags=tuple(flags),
        items=dict(items),
    )
