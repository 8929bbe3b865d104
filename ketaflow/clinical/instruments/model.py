"""Data model for questionnaire instruments (plain Python, no Django).

Every clinical fact in the instrument files comes from the project's clinical
reference (/work/shared/clinical-reference.md, sections 3 and 5). Nothing here is
computed or guessed: bands, cut-offs and thresholds are copied as data so a
clinician can check each instrument file against the published form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

Respondent = Literal["patient", "clinician"]
Wording = Literal["published", "item-names"]
Direction = Literal["lower_is_better", "higher_is_better"]

LOINC_SYSTEM = "http://loinc.org"
# Code system for ketaflow's own codes, used only where no LOINC code is documented.
LOCAL_SYSTEM = "urn:ketaflow:instrument"

YES = "yes"
NO = "no"


@dataclass(frozen=True)
class Option:
    """One answer option: the label shown and the value stored/scored."""

    label: str
    value: int | str


@dataclass(frozen=True)
class Item:
    """One question.

    key: the published item number as a string ("1", "2", ...), or a named key for
        an extra question ("difficulty" for PHQ-9/GAD-7, "6b" for C-SSRS).
    asked_if: branching; (other item key, answer) that must have been given for this
        item to be asked. None means always asked. An answer to an item that is not
        asked is refused.
    required: must be answered whenever it is asked.
    scored: counts towards the total.
    suicidality: the item asks about suicidal thoughts or behaviour; its endorsed answers
        alert a clinician per ``suicidality.RULES`` (every such item must have a rule).
    """

    key: str
    text: str
    options: tuple[Option, ...]
    required: bool = True
    scored: bool = True
    loinc: str | None = None
    asked_if: tuple[str, int | str] | None = None
    suicidality: bool = False

    # Derived lookups are computed once per (immutable) item: scoring runs them for every
    # answer of every stored questionnaire.
    @cached_property
    def values(self) -> tuple[int | str, ...]:
        return tuple(o.value for o in self.options)

    @cached_property
    def value_set(self) -> frozenset[int | str]:
        return frozenset(self.values)

    @cached_property
    def is_yes_no(self) -> bool:
        return set(self.values) == {YES, NO}


@dataclass(frozen=True)
class Band:
    """Severity band: low <= total <= high (both inclusive) gives `label`."""

    low: int
    high: int
    label: str


@dataclass(frozen=True)
class Cutoff:
    """A threshold on the total.

    inclusive=True means total <= value (or >= for `at_least`); False means strictly
    below. `setting` marks a value the medical director may change; `documented`
    lists the values the reference names, `note` says where they come from.
    """

    value: int
    inclusive: bool
    text: str
    setting: bool = False
    documented: tuple[int, ...] = ()
    note: str = ""

    def met_below(self, total: int, value: int | None = None) -> bool:
        """True when `total` is under the cut-off (remission-style)."""
        v = self.value if value is None else value
        return total <= v if self.inclusive else total < v


@dataclass(frozen=True)
class ChangeThreshold:
    """A change in the total that counts as reliable/meaningful.

    low == high for a single documented value; low < high when the reference
    gives only a range (then a clinic must choose a value within it).
    """

    low: int
    high: int
    unit: str
    text: str

    @property
    def is_range(self) -> bool:
        return self.low != self.high


@dataclass(frozen=True)
class Instrument:
    code: str
    short_name: str
    name: str
    version: str
    respondent: Respondent
    recall_period: str | None
    stem: str | None
    items: tuple[Item, ...]
    wording: Wording
    score_range: tuple[int, int] | None
    bands: tuple[Band, ...]
    direction: Direction
    licence_note: str
    source: str
    loinc_panel: str | None = None
    loinc_total: str | None = None
    local_total_code: str | None = None
    # Outcome rules; None where the reference documents no rule for this instrument.
    response_fall_pct: int | None = None
    partial_response_fall_pct: tuple[int, int] | None = None
    remission: Cutoff | None = None
    reliable_change: ChangeThreshold | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def item(self, key: str) -> Item:
        for it in self.items:
            if it.key == key:
                return it
        raise KeyError(key)

    @cached_property
    def item_keys(self) -> tuple[str, ...]:
        return tuple(it.key for it in self.items)

    @cached_property
    def item_key_set(self) -> frozenset[str]:
        return frozenset(self.item_keys)

    @cached_property
    def scored_items(self) -> tuple[Item, ...]:
        return tuple(it for it in self.items if it.scored)

    @property
    def total_coding(self) -> tuple[str, str] | None:
        """(system, code) for the total: LOINC when documented, else the local code."""
        if self.loinc_total:
            return (LOINC_SYSTEM, self.loinc_total)
        if self.local_total_code:
            return (LOCAL_SYSTEM, self.local_total_code)
        return None

    def band_for(self, total: int) -> str | None:
        for band in self.bands:
            if band.low <= total <= band.high:
                return band.label
        return None


def numeric_options(low: int, high: int) -> tuple[Option, ...]:
    """Options labelled only by their number (for forms whose anchor wording is not
    reproduced here)."""
    return tuple(Option(str(v), v) for v in range(low, high + 1))


YES_NO: tuple[Option, ...] = (Option("Yes", YES), Option("No", NO))
