"""Which answer of which instrument alerts a clinician, at which urgency (pure Python).

One table, ``RULES``, drives every suicidality alert in ketaflow: the ``suicidality`` flag
of a score, the safety alert and the patient's risk flag. Every item of every instrument
marked ``Item.suicidality`` has a rule here, and every endorsed answer of such an item
(a number above 0, or "yes") has an urgency; an answer of 0 / "no" never alerts. The
tests iterate all instruments so a new one cannot be forgotten.

Urgencies, least to most urgent (every one reaches a clinician: there is no "no alert"
level for an endorsed answer):

* ``same_day``: a clinician reviews the answer and contacts the patient the same day.
  PHQ-9 guidance: "item 9 above 0 always needs same-day clinician follow-up" (Kroenke,
  Spitzer & Williams, J Gen Intern Med 2001; the PHQ-9 instructions for use).
* ``urgent``: a prompt clinician risk assessment with safety precautions (the C-SSRS
  screener's moderate-risk triage: behavioural-health consultation and safety
  precautions; Posner et al., Am J Psychiatry 2011; Columbia Lighthouse Project,
  C-SSRS screener with triage points).
* ``immediate``: act now, do not leave the patient without a plan for their safety (the
  C-SSRS screener's high-risk triage: immediate action).

Each level says where its urgency comes from. ``published`` levels copy an instrument's
own triage (C-SSRS items 3-6b) or floor (PHQ-9 item 9: at least same day) and cannot be
changed. ``clinic`` levels are where the literature sets no urgency: they are clinic
settings (``validate_overrides``), shipped with the defaults below and labelled
"clinic default, set by the medical director".
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from .model import YES, Instrument

SAME_DAY = "same_day"
URGENT = "urgent"
IMMEDIATE = "immediate"
URGENCIES: tuple[str, ...] = (SAME_DAY, URGENT, IMMEDIATE)  # least to most urgent
URGENCY_LABELS: Mapping[str, str] = MappingProxyType(
    {
        SAME_DAY: "Same day",
        URGENT: "Urgent",
        IMMEDIATE: "Immediate",
    }
)
URGENCY_ACTIONS: Mapping[str, str] = MappingProxyType(
    {
        SAME_DAY: "a clinician reviews the answer and contacts the patient the same day",
        URGENT: "a clinician assesses the patient's risk promptly, with safety precautions",
        IMMEDIATE: "act now: assess the patient's safety at once",
    }
)

Basis = Literal["published", "clinic"]
CLINIC_DEFAULT = "clinic default, set by the medical director"

PHQ9_GUIDANCE = (
    "PHQ-9 instructions (Kroenke, Spitzer & Williams, J Gen Intern Med 2001): item 9 above 0 "
    "always needs same-day clinician follow-up"
)
PHQ9_GRADIENT = (
    "Simon GE et al., Psychiatr Serv 2013: the risk of a suicide attempt or death rose with "
    "each higher item 9 answer"
)
CSSRS_TRIAGE = (
    "C-SSRS screener triage (Posner et al., Am J Psychiatry 2011; Columbia Lighthouse "
    "Project): yes to 4 or 5, or behaviour in the past 3 months, high risk (immediate "
    "action); yes to 3, or lifetime behaviour only, moderate; yes to 1 or 2 only, low"
)
CSSRS_LOW = (
    "C-SSRS screener triage gives yes to 1 or 2 only the low risk band and no time limit; "
    "ketaflow still sends it to a clinician"
)
QIDS_ANCHORS = (
    "QIDS-SR16 item 12 answer statements (Rush et al., Biol Psychiatry 2003): 1 wonders if "
    "life is worth living, 2 thinks of suicide or death several times a week, 3 several "
    "times a day in some detail, or has made specific plans or tried"
)
MADRS_ANCHORS = (
    "MADRS item 10 anchors (Montgomery & Åsberg, Br J Psychiatry 1979): 2 fleeting "
    "suicidal thoughts, 4 suicide considered a possible solution without plans, 6 "
    "explicit plans and active preparation"
)


class OverrideError(ValueError):
    """A clinic's urgency override was refused. ``.key`` names the rule ("phq9:9")."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}")


@dataclass(frozen=True)
class Level:
    """The urgency of one endorsed answer and where it comes from."""

    answer: int | str
    urgency: str
    basis: Basis
    source: str


@dataclass(frozen=True)
class Rule:
    """One suicidality item: ``levels`` gives the urgency of each endorsed answer."""

    instrument: str
    item: str
    topic: str
    levels: tuple[Level, ...]

    @property
    def key(self) -> str:
        return f"{self.instrument}:{self.item}"

    def level(self, answer: int | str) -> Level | None:
        for level in self.levels:
            if level.answer == answer:
                return level
        return None

    @property
    def settable_answers(self) -> tuple[int | str, ...]:
        return tuple(level.answer for level in self.levels if level.basis == "clinic")


def _numeric(
    instrument: str, item: str, topic: str, defaults: Mapping[int, str], floor: str, source: str
) -> Rule:
    """A rule for an item scored 0..n: every answer above 0 alerts; the urgencies are clinic
    settings whose default rises with the answer (``floor`` is the published minimum)."""
    assert all(URGENCIES.index(u) >= URGENCIES.index(floor) for u in defaults.values())
    return Rule(
        instrument,
        item,
        topic,
        tuple(
            Level(answer, urgency, "clinic", f"{source}; {CLINIC_DEFAULT}")
            for answer, urgency in sorted(defaults.items())
        ),
    )


RULES: tuple[Rule, ...] = (
    _numeric(
        "phq9",
        "9",
        "thoughts that you would be better off dead or of hurting yourself",
        {1: SAME_DAY, 2: URGENT, 3: IMMEDIATE},
        SAME_DAY,
        f"{PHQ9_GUIDANCE}; {PHQ9_GRADIENT}",
    ),
    _numeric(
        "qids-sr16",
        "12",
        "thoughts of death or suicide",
        {1: SAME_DAY, 2: URGENT, 3: IMMEDIATE},
        SAME_DAY,
        f"{QIDS_ANCHORS}; any answer above 0 is a suicidality signal",
    ),
    _numeric(
        "madrs",
        "10",
        "suicidal thoughts",
        {1: SAME_DAY, 2: SAME_DAY, 3: URGENT, 4: URGENT, 5: IMMEDIATE, 6: IMMEDIATE},
        SAME_DAY,
        f"{MADRS_ANCHORS}; any score above 0 is a suicidality signal",
    ),
    Rule(
        "cssrs",
        "1",
        "wish to be dead",
        (Level(YES, SAME_DAY, "clinic", f"{CSSRS_LOW}; {CLINIC_DEFAULT}"),),
    ),
    Rule(
        "cssrs",
        "2",
        "non-specific active suicidal thoughts",
        (Level(YES, SAME_DAY, "clinic", f"{CSSRS_LOW}; {CLINIC_DEFAULT}"),),
    ),
    Rule(
        "cssrs",
        "3",
        "active suicidal ideation with any methods, without intent to act",
        (Level(YES, URGENT, "published", CSSRS_TRIAGE),),
    ),
    Rule(
        "cssrs",
        "4",
        "active suicidal ideation with some intent to act",
        (Level(YES, IMMEDIATE, "published", CSSRS_TRIAGE),),
    ),
    Rule(
        "cssrs",
        "5",
        "active suicidal ideation with specific plan and intent",
        (Level(YES, IMMEDIATE, "published", CSSRS_TRIAGE),),
    ),
    Rule(
        "cssrs",
        "6",
        "suicidal behaviour (lifetime)",
        (Level(YES, URGENT, "published", CSSRS_TRIAGE),),
    ),
    Rule(
        "cssrs",
        "6b",
        "suicidal behaviour within the past 3 months",
        (Level(YES, IMMEDIATE, "published", CSSRS_TRIAGE),),
    ),
)

RULES_BY_KEY: Mapping[str, Rule] = MappingProxyType({r.key: r for r in RULES})

# The C-SSRS screener's own risk band for the worst urgency of its answers (used to check
# that the table and the screener's triage agree on every answer path).
CSSRS_BAND_OF_URGENCY: Mapping[str, str] = MappingProxyType(
    {SAME_DAY: "low", URGENT: "moderate", IMMEDIATE: "high"}
)


def rank(urgency: str) -> int:
    """0 for the least urgent level; ValueError for an unknown one."""
    return URGENCIES.index(urgency)


def rules_for(code: str) -> tuple[Rule, ...]:
    return tuple(r for r in RULES if r.instrument == code)


def endorsed_answers(instrument: Instrument, item_key: str) -> tuple[int | str, ...]:
    """The answers of a suicidality item that count as an endorsement (above 0, or yes)."""
    item = instrument.item(item_key)
    if item.is_yes_no:
        return (YES,)
    return tuple(v for v in item.values if isinstance(v, int) and v > 0)


Overrides = Mapping[str, Mapping[str, str]]


def validate_overrides(overrides: Overrides | None) -> dict[str, dict[str, str]]:
    """Check a clinic's urgency settings: ``{"phq9:9": {"1": "same_day", ...}}``.

    Only ``clinic`` levels may be set; every value must be one of URGENCIES (so an endorsed
    answer always alerts, at least the same day); for a numbered item the urgency may not
    fall as the answer rises. Returns the normalised overrides; OverrideError otherwise.
    """
    out: dict[str, dict[str, str]] = {}
    for key, answers in (overrides or {}).items():
        rule = RULES_BY_KEY.get(key)
        if rule is None:
            raise OverrideError(str(key), "no suicidality rule has this key")
        if not isinstance(answers, Mapping):
            raise OverrideError(key, "give a mapping of answer to urgency")
        settable = {str(a): a for a in rule.settable_answers}
        clean: dict[str, str] = {}
        for raw_answer, urgency in answers.items():
            answer = str(raw_answer)
            if answer not in settable:
                raise OverrideError(
                    key,
                    f"answer {answer!r} is not a clinic setting (settable: "
                    f"{', '.join(settable) or 'none'}; the rest is the instrument's own triage)",
                )
            if urgency not in URGENCIES:
                raise OverrideError(
                    key, f"urgency {urgency!r} for answer {answer}: choose {', '.join(URGENCIES)}"
                )
            clean[answer] = urgency
        merged = [
            (level.answer, clean.get(str(level.answer), level.urgency)) for level in rule.levels
        ]
        if all(isinstance(a, int) for a, _ in merged):
            for (a1, u1), (a2, u2) in itertools.pairwise(merged):
                if rank(u2) < rank(u1):
                    raise OverrideError(
                        key,
                        f"answer {a2} would be less urgent ({u2}) than answer {a1} ({u1})",
                    )
        if clean:
            out[key] = clean
    return out


@dataclass(frozen=True)
class Endorsement:
    """One endorsed suicidality answer of a completed questionnaire."""

    instrument: str
    item: str
    answer: int | str
    urgency: str
    topic: str
    basis: Basis
    source: str

    @property
    def rank(self) -> int:
        return rank(self.urgency)

    @property
    def text(self) -> str:
        answer = "yes" if self.answer == YES else str(self.answer)
        return f"item {self.item} ({self.topic}) answered {answer}"


def evaluate(
    code: str, items: Mapping[str, int | str], overrides: Overrides | None = None
) -> tuple[Endorsement, ...]:
    """Every endorsed suicidality answer of a validated answer set, in item order, each at
    its urgency (the clinic's override where it set one, else the table's default)."""
    clean = validate_overrides(overrides)
    found = []
    for rule in rules_for(code):
        answer = items.get(rule.item)
        if answer is None:
            continue
        level = rule.level(answer)
        if level is None:
            continue
        urgency = clean.get(rule.key, {}).get(str(answer), level.urgency)
        found.append(
            Endorsement(
                instrument=code,
                item=rule.item,
                answer=answer,
                urgency=urgency,
                topic=rule.topic,
                basis=level.basis,
                source=level.source,
            )
        )
    return tuple(found)


def worst(endorsements) -> Endorsement | None:
    """The most urgent endorsement (the first of equals), or None."""
    best: Endorsement | None = None
    for e in endorsements:
        if best is None or e.rank > best.rank:
            best = e
    return best


def flags(code: str, items: Mapping[str, int | str]) -> tuple[str, ...]:
    """("suicidality",) when any answer is endorsed per the table, else ()."""
    return ("suicidality",) if evaluate(code, items) else ()
