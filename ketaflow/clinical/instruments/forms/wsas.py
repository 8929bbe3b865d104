"""WSAS — Work and Social Adjustment Scale (functioning), a patient self-report.

Reference: clinical reference §5 "Others"; Mundt JC, Marks IM, Shear MK, Greist JH,
Br J Psychiatry 2002;180:461-464. The WSAS is a self-report measure (Mundt et al. 2002;
the NHS Data Dictionary, "Work and Social Adjustment Scale": "a simple 5-item self
report measure"). The reference allows the published item wording only if it can be
reproduced exactly from a public source; it is not reproduced here, so items are the
reference's item names and answers are the 0-8 number the patient chose on the form
(0 not at all impaired, 8 very severely impaired).

Item 1 (work) has a "not applicable" answer: the published form asks people who are
retired or choose not to have a job for reasons unrelated to their problem to tick a box
instead of rating item 1. Scoring with it (Mundt et al. 2002 define the total as the sum
of the item ratings): the total is the sum of the answered items, so item 1 "not
applicable" adds nothing and the total then runs 0-32 over four items. The NHS Data
Dictionary allows, instead, substituting the mean of the other items for a "not
applicable" work item; ketaflow does not prorate (it would invent an answer) but says on
the result that item 1 was not applicable, so the band (set on the five-item 0-40 total)
is read knowing it covers four items.

Total 0-40. Bands: below 10 subclinical; 10-20 significant impairment;
above 20 moderately severe or worse.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..model import Band, Instrument, Item, Option, numeric_options
from ..validation import ScoreResult

NOT_APPLICABLE = "na"
OPTIONS = numeric_options(0, 8)
WORK_OPTIONS = (
    *OPTIONS,
    Option(
        "Not applicable: retired, or chose not to have a job for reasons unrelated to the problem",
        NOT_APPLICABLE,
    ),
)

_NAMES = ("Work", "Home management", "Social leisure", "Private leisure", "Close relationships")

INSTRUMENT = Instrument(
    code="wsas",
    short_name="WSAS",
    name="Work and Social Adjustment Scale (WSAS)",
    version="2",
    respondent="patient",
    recall_period=None,
    stem=None,
    items=tuple(
        Item(str(n), name, WORK_OPTIONS if n == 1 else OPTIONS)
        for n, name in enumerate(_NAMES, start=1)
    ),
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
        "reproducible from a public source): item names; the patient answers 0-8 per item."
    ),
    source="Clinical reference §5 (WSAS). Original: Mundt JC et al., Br J Psychiatry 2002.",
    local_total_code="ketaflow-wsas-total",
    notes=(
        "Self-report: the patient rates each area 0 (not at all impaired) to 8 (very "
        "severely impaired).",
        "Item 1 (work): 'not applicable' for people retired or not working for reasons "
        "unrelated to their problem; the total is then the sum of items 2-5 (0-32).",
    ),
)


def interpret(items: Mapping[str, int | str], settings: Mapping[str, int]) -> ScoreResult:
    answered = [v for v in items.values() if isinstance(v, int)]
    total = sum(answered)
    notes: tuple[str, ...] = ()
    if items.get("1") == NOT_APPLICABLE:
        notes = (
            "Item 1 (work) not applicable: the total is the sum of the four answered items "
            "(0-32), read against bands set for five items.",
        )
    return ScoreResult(
        instrument=INSTRUMENT.code,
        total=total,
        severity=INSTRUMENT.band_for(total),
        flags=(),
        items=dict(items),
        notes=notes,
    )
