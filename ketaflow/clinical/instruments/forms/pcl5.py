"""PCL-5 — PTSD Checklist for DSM-5 (past-month version).

Structure and scoring: clinical reference §5 "Others".
Wording: the PCL-5 is public domain (National Center for PTSD, U.S. Department of
Veterans Affairs). The item text, stem and answer labels below are those of the
standard PCL-5 form (Weathers et al., 2013, https://www.ptsd.va.gov), as reproduced
identically by several public copies; check against the VA PDF when revising.

Scoring (reference):
- 20 items 0-4, total 0-80.
- Clusters: B = items 1-5, C = 6-7, D = 8-14, E = 15-20.
- Provisional PTSD when the total reaches the cut-off: the reference gives 31-33
  and says it is a setting. Default 33; a clinic may choose 31, 32 or 33
  (setting key "provisional_ptsd_cutoff").
- Provisional DSM-5 diagnosis when the items rated 2 or more include at least
  1 B, 1 C, 2 D and 2 E items.
- Reliable change 5-10 points; clinically meaningful change 10-20 points. These
  are ranges, so no single threshold is applied unless a clinic chooses one.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..model import ChangeThreshold, Cutoff, Instrument, Item, Option
from ..validation import ScoreResult, sum_scored

OPTIONS = (
    Option("Not at all", 0),
    Option("A little bit", 1),
    Option("Moderately", 2),
    Option("Quite a bit", 3),
    Option("Extremely", 4),
)

CLUSTERS: dict[str, tuple[str, ...]] = {
    "B": ("1", "2", "3", "4", "5"),
    "C": ("6", "7"),
    "D": ("8", "9", "10", "11", "12", "13", "14"),
    "E": ("15", "16", "17", "18", "19", "20"),
}
# DSM-5 rule: an item counts as a symptom when rated 2 or more; need this many per cluster.
SYMPTOM_AT_OR_ABOVE = 2
DSM5_MINIMUM: dict[str, int] = {"B": 1, "C": 1, "D": 2, "E": 2}

PROVISIONAL_PTSD = Cutoff(
    33,
    inclusive=True,
    text="total at or above the provisional PTSD cut-off",
    setting=True,
    documented=(31, 32, 33),
    note="The reference gives a provisional PTSD cut-off of 31-33 (a setting); default 33.",
)
SETTING_CUTOFF = "provisional_ptsd_cutoff"

_TEXTS = (
    "Repeated, disturbing, and unwanted memories of the stressful experience?",
    "Repeated, disturbing dreams of the stressful experience?",
    "Suddenly feeling or acting as if the stressful experience were actually happening "
    "again (as if you were actually back there reliving it)?",
    "Feeling very upset when something reminded you of the stressful experience?",
    "Having strong physical reactions when something reminded you of the stressful "
    "experience (for example, heart pounding, trouble breathing, sweating)?",
    "Avoiding memories, thoughts, or feelings related to the stressful experience?",
    "Avoiding external reminders of the stressful experience (for example, people, places, "
    "conversations, activities, objects, or situations)?",
    "Trouble remembering important parts of the stressful experience?",
    "Having strong negative beliefs about yourself, other people, or the world (for example, "
    "having thoughts such as: I am bad, there is something seriously wrong with me, no one "
    "can be trusted, the world is completely dangerous)?",
    "Blaming yourself or someone else for the stressful experience or what happened after it?",
    "Having strong negative feelings such as fear, horror, anger, guilt, or shame?",
    "Loss of interest in activities that you used to enjoy?",
    "Feeling distant or cut off from other people?",
    "Trouble experiencing positive feelings (for example, being unable to feel happiness or "
    "have loving feelings for people close to you)?",
    "Irritable behavior, angry outbursts, or acting aggressively?",
    "Taking too many risks or doing things that could cause you harm?",
    "Being “superalert” or watchful or on guard?",
    "Feeling jumpy or easily startled?",
    "Having difficulty concentrating?",
    "Trouble falling or staying asleep?",
)

INSTRUMENT = Instrument(
    code="pcl5",
    short_name="PCL-5",
    name="PTSD Checklist for DSM-5 (PCL-5)",
    version="1",
    respondent="patient",
    recall_period="past month",
    stem="In the past month, how much were you bothered by:",
    items=tuple(Item(str(n), text, OPTIONS) for n, text in enumerate(_TEXTS, start=1)),
    wording="published",
    score_range=(0, 80),
    bands=(),
    direction="lower_is_better",
    licence_note=(
        "PCL-5 is public domain (clinical reference §5; National Center for PTSD). Wording "
        "from the standard PCL-5 form."
    ),
    source=(
        "Clinical reference §5 (PCL-5). Form: Weathers FW, Litz BT, Keane TM, Palmieri PA, "
        "Marx BP, Schnurr PP (2013), The PTSD Checklist for DSM-5 (PCL-5), www.ptsd.va.gov."
    ),
    local_total_code="ketaflow-pcl5-total",
    reliable_change=ChangeThreshold(
        5, 10, "points", "reliable change 5-10 points (a range; a clinic must choose a value)"
    ),
    notes=(
        "Provisional PTSD cut-off 31-33 is a clinic setting (default 33).",
        "Clinically meaningful change: 10-20 points.",
    ),
)


def cutoff_from(settings: Mapping[str, int]) -> int:
    value = settings.get(SETTING_CUTOFF, PROVISIONAL_PTSD.value)
    if isinstance(value, bool) or value not in PROVISIONAL_PTSD.documented:
        raise ValueError(
            f"{SETTING_CUTOFF} must be one of {PROVISIONAL_PTSD.documented} "
            f"(the documented 31-33 range), got {value!r}"
        )
    return value


def cluster_scores(items: Mapping[str, int | str]) -> dict[str, int]:
    return {name: sum(int(items[k]) for k in keys) for name, keys in CLUSTERS.items()}


def dsm5_rule_met(items: Mapping[str, int | str]) -> bool:
    for name, keys in CLUSTERS.items():
        symptoms = sum(1 for k in keys if int(items[k]) >= SYMPTOM_AT_OR_ABOVE)
        if symptoms < DSM5_MINIMUM[name]:
            return False
    return True


def interpret(items: Mapping[str, int | str], settings: Mapping[str, int]) -> ScoreResult:
    cutoff = cutoff_from(settings)
    total = sum_scored(INSTRUMENT, items)
    flags: list[str] = []
    if total >= cutoff:
        flags.append("provisional-ptsd")
    if dsm5_rule_met(items):
        flags.append("provisional-ptsd-dsm5-criteria")
    return ScoreResult(
        instrument=INSTRUMENT.code,
        total=total,
        severity=None,
        flags=tuple(flags),
        subscores=cluster_scores(items),
        items=dict(items),
        notes=(f"Provisional PTSD cut-off {cutoff} (clinic setting; documented range 31-33).",),
    )
