"""QIDS-SR16 — Quick Inventory of Depressive Symptomatology, self-report, 16 items.

Reference: clinical reference §5 "Others". The reference gives structure and
scoring but not the item wording, and each QIDS item has its own four printed
answer statements. Those statements are not reproduced here: items carry short
item names (the form's item headings) and answers are entered as the 0-3 number
of the statement the patient chose on the paper form.

Scoring (reference): nine domains, total = sum of the domain scores (0-27):
  sleep = highest of items 1-4; sad mood = item 5;
  appetite/weight = highest of items 6-9; concentration = 10; view of self = 11;
  thoughts of death or suicide = 12; interest = 13; energy = 14;
  psychomotor = highest of items 15-16.
Bands: 0-5 none, 6-10 mild, 11-15 moderate, 16-20 severe, 21-27 very severe.
Remission: 5 or less. Response: at least 50% fall. Item 12 above 0 is a
suicidality signal.

The published form asks for one answer of each pair: "Please complete either 6 or 7
(not both)" (decreased or increased appetite) and "either 8 or 9 (not both)" (decreased
or increased weight) (Rush et al. 2003, the QIDS-SR16 form). Items 6-9 are therefore
each optional, and an answer set must hold exactly one of 6/7 and exactly one of 8/9:
both of a pair, or neither, is refused naming the pair. The appetite/weight domain is
still the highest of the answered items 6-9 (published scoring).
"""

from __future__ import annotations

from collections.abc import Mapping

from .. import suicidality
from ..model import Band, Cutoff, Instrument, Item, numeric_options
from ..validation import ScoreResult, ScoringError

OPTIONS = numeric_options(0, 3)

APPETITE_WEIGHT_ITEMS = ("6", "7", "8", "9")
# (first, second, what the pair asks about): answer exactly one of each pair.
PAIRS: tuple[tuple[str, str, str], ...] = (
    ("6", "7", "decreased or increased appetite"),
    ("8", "9", "decreased or increased weight"),
)

# domain name -> items whose highest value is the domain score
DOMAINS: dict[str, tuple[str, ...]] = {
    "sleep": ("1", "2", "3", "4"),
    "sad_mood": ("5",),
    "appetite_weight": APPETITE_WEIGHT_ITEMS,
    "concentration": ("10",),
    "view_of_self": ("11",),
    "thoughts_of_death_or_suicide": ("12",),
    "interest": ("13",),
    "energy": ("14",),
    "psychomotor": ("15", "16"),
}

_NAMES = {
    "1": "Falling asleep",
    "2": "Sleep during the night",
    "3": "Waking up too early",
    "4": "Sleeping too much",
    "5": "Feeling sad",
    "6": "Decreased appetite",
    "7": "Increased appetite",
    "8": "Decreased weight (within the last two weeks)",
    "9": "Increased weight (within the last two weeks)",
    "10": "Concentration / decision making",
    "11": "View of myself",
    "12": "Thoughts of death or suicide",
    "13": "General interest",
    "14": "Energy level",
    "15": "Feeling slowed down",
    "16": "Feeling restless",
}

INSTRUMENT = Instrument(
    code="qids-sr16",
    short_name="QIDS-SR16",
    name="Quick Inventory of Depressive Symptomatology, Self-Report, 16 items (QIDS-SR16)",
    version="1",
    respondent="patient",
    recall_period="past 7 days",
    stem=None,
    items=tuple(
        Item(
            key,
            name,
            OPTIONS,
            required=key not in APPETITE_WEIGHT_ITEMS,
            suicidality=key == "12",
        )
        for key, name in _NAMES.items()
    ),
    wording="item-names",
    score_range=(0, 27),
    bands=(
        Band(0, 5, "none"),
        Band(6, 10, "mild"),
        Band(11, 15, "moderate"),
        Band(16, 20, "severe"),
        Band(21, 27, "very severe"),
    ),
    direction="lower_is_better",
    licence_note=(
        "QIDS-SR16 paper form is free for clinicians (clinical reference §5). Its item and "
        "answer wording is not reproduced here: item names only; use the paper form."
    ),
    source=("Clinical reference §5 (QIDS-SR16). Original: Rush AJ et al., Biol Psychiatry 2003."),
    local_total_code="ketaflow-qids-sr16-total",
    response_fall_pct=50,
    partial_response_fall_pct=(25, 50),
    remission=Cutoff(5, inclusive=True, text="total 5 or less"),
    notes=(
        "Answer each item with the number (0-3) of the statement chosen on the paper form.",
        "Items 6-9 (appetite/weight): answer either 6 or 7 (not both) and either 8 or 9 "
        "(not both); the domain is the highest answered.",
    ),
)


def domain_scores(items: Mapping[str, int | str]) -> dict[str, int]:
    scores: dict[str, int] = {}
    for domain, keys in DOMAINS.items():
        values = [v for k in keys if isinstance(v := items.get(k), int)]
        scores[domain] = max(values)
    return scores


def interpret(items: Mapping[str, int | str], settings: Mapping[str, int]) -> ScoreResult:
    for first, second, what in PAIRS:
        if first in items and second in items:
            raise ScoringError(
                second,
                f"answer either item {first} or item {second} ({what}), not both: the form "
                f"asks for one answer of the pair {first}/{second}",
            )
        if first not in items and second not in items:
            raise ScoringError(
                first,
                f"missing: answer either item {first} or item {second} ({what}), one of the "
                f"pair {first}/{second}",
            )
    domains = domain_scores(items)
    total = sum(domains.values())
    flags = suicidality.flags(INSTRUMENT.code, items)  # item 12 above 0
    return ScoreResult(
        instrument=INSTRUMENT.code,
        total=total,
        severity=INSTRUMENT.band_for(total),
        flags=tuple(flags),
        subscores=domains,
        items=dict(items),
    )
