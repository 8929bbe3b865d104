"""Answer validation and the score result type, shared by every instrument."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .model import NO, YES, Instrument, Item

Answer = int | str | bool | None

_INT_RE = re.compile(r"[+-]?[0-9]+", re.ASCII)


class ScoringError(ValueError):
    """An answer set was refused. `.item` names the offending item key."""

    def __init__(self, item: str, message: str) -> None:
        self.item = item
        self.message = message
        super().__init__(f"item {item}: {message}")


class UnknownInstrumentError(ValueError):
    """No instrument has this code."""

    def __init__(self, code: str, known: tuple[str, ...]) -> None:
        self.code = code
        super().__init__(f"unknown instrument {code!r}; known: {', '.join(known)}")


@dataclass(frozen=True)
class ScoreResult:
    instrument: str
    total: int | None
    severity: str | None
    flags: tuple[str, ...]
    risk: str | None = None
    subscores: dict[str, int] = field(default_factory=dict)
    items: dict[str, int | str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "instrument": self.instrument,
            "total": self.total,
            "severity": self.severity,
            "flags": list(self.flags),
        }
        if self.instrument == "cssrs":
            out["risk"] = self.risk
        out["subscores"] = dict(self.subscores)
        return out


def _describe_values(item: Item) -> str:
    if item.is_yes_no:
        return "yes or no"
    values = [v for v in item.values if isinstance(v, int)]
    words = [f"{o.value!r} ({o.label})" for o in item.options if isinstance(o.value, str)]
    numbers = f"a whole number from {min(values)} to {max(values)}"
    return " or ".join([numbers, *words])


def normalise_value(item: Item, raw: Answer) -> int | str:
    """Turn one raw answer into the option value, or raise ScoringError."""
    if item.is_yes_no:
        if isinstance(raw, bool):
            return YES if raw else NO
        if isinstance(raw, str) and raw.strip().lower() in (YES, NO):
            return raw.strip().lower()
        raise ScoringError(item.key, f"answer must be yes or no, got {raw!r}")
    # A named option of a numeric item (WSAS item 1 "na", not applicable).
    if isinstance(raw, str) and raw.strip().lower() in item.value_set:
        return raw.strip().lower()
    # Numeric item.
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, str) and _INT_RE.fullmatch(raw.strip()):
        value = int(raw.strip())
    else:
        raise ScoringError(
            item.key, f"answer must be {_describe_values(item)} (not an integer: {raw!r})"
        )
    if value not in item.value_set:
        raise ScoringError(
            item.key, f"answer {value} is out of range; must be {_describe_values(item)}"
        )
    return value


def validate(instrument: Instrument, answers: Mapping[Any, Answer]) -> dict[str, int | str]:
    """Check an answer set against the instrument and return normalised answers.

    Order of checks (the first problem found is reported): unknown items in the
    order given; then, item by item in the instrument's order, an answer to an item
    the branching skips, a bad value, a missing required item. An answer of None
    counts as not answered.
    """
    if not isinstance(answers, Mapping):
        raise TypeError("answers must be a mapping of item key to answer")
    given: dict[str, Answer] = {}
    known = instrument.item_key_set
    for key, raw in answers.items():
        skey = str(key) if isinstance(key, int) and not isinstance(key, bool) else key
        if not isinstance(skey, str) or skey not in known:
            raise ScoringError(
                str(key),
                f"unknown item for {instrument.short_name} (items: {', '.join(instrument.item_keys)})",
            )
        if skey in given:
            raise ScoringError(skey, "answered more than once")
        given[skey] = raw

    out: dict[str, int | str] = {}
    for item in instrument.items:
        raw = given.get(item.key)
        answered = raw is not None
        asked = True
        if item.asked_if is not None:
            parent, wanted = item.asked_if
            asked = out.get(parent) == wanted
        if not asked:
            if answered:
                parent, wanted = item.asked_if  # type: ignore[misc]
                raise ScoringError(
                    item.key,
                    f"must not be answered: it is asked only if item {parent} is {wanted}",
                )
            continue
        if answered:
            out[item.key] = normalise_value(item, raw)
        elif item.required:
            raise ScoringError(item.key, "missing: this item is required")
    return out


def sum_scored(instrument: Instrument, items: Mapping[str, int | str]) -> int:
    total = 0
    for item in instrument.scored_items:
        value = items[item.key]
        assert isinstance(value, int)
        total += value
    return total
