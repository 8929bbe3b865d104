"""Protocol library: treatment courses as data.

Pure Python (no Django). Section numbers refer to ``/work/shared/clinical-reference.md``
("the reference"). Every shipped protocol, dose rule and phase cites its source; a value the
reference does not give is left empty (``None``) and set by the clinic, never guessed.

A clinic may store an edited copy: ``to_dict()`` gives JSON-ready data and ``from_dict()``
validates it back, naming the offending field (e.g. ``phases[1].per_week.max``).

Decisions taken where the reference is silent:

* Minimum interval between doses: not fixed by the reference. Every protocol carries
  ``min_interval_hours`` = the dosing clinic setting (default 24 h, source "clinic setting").
  ``propose_schedule`` refuses a schedule that puts two visits closer than that.
* Spacing inside a week: *n* visits a week fall on days ``floor(i × 7 / n)`` of each week
  (three a week → days 0, 2, 4 — Mon/Wed/Fri style; twice a week → days 0, 3).
* Where the reference gives a range (e.g. 2-3 visits a week), ``propose_schedule`` does not
  choose for the clinician: the caller must pass the value. The visit count defaults to the
  upper end of the phase's range (the full course as written; stopping early is always allowed).
* "Monthly" is taken as every 4 weeks (IV taper maintenance), so visits keep their weekday.
* Schedules that the reference does not give (IM ketamine, Cusin 2017 step-up, KAP dosing
  sessions) have no spacing: the caller supplies it.
* Monitoring time after dosing is given only where the reference fixes it (esketamine: at least
  2 h); otherwise ``None`` (clinic setting).
* The 65-and-over 28 mg day-1 esketamine dose is attached to the TRD protocol, where the
  reference states it; the suicidal-ideation protocol carries a note to check the local label.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from ketaflow.clinical import dosing

ROUTES = dosing.ROUTES
DOSE_UNITS = ("mg/kg", "mg")
PHASE_KINDS = ("induction", "taper", "maintenance")
COMPANION_KINDS = ("consultation", "kap_preparation", "integration", "follow_up")
COMPANION_TIMINGS = ("before_course", "after_each_dose", "after_course")

DEFAULT_MIN_INTERVAL_HOURS = dosing.DEFAULTS.min_interval_hours
SRC_MIN_INTERVAL = "clinic setting: " + dosing.setting_sources()["min_interval_hours"]

_CODE_RE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")


class ProtocolError(ValueError):
    """Invalid protocol data or schedule request. ``field`` names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _prefixed(prefix: str, exc: ProtocolError) -> ProtocolError:
    return ProtocolError(f"{prefix}.{exc.field}" if prefix else exc.field, exc.message)


# ---------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------


def _require_int(value: Any, name: str, minimum: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(name, "must be a whole number")
    if value < minimum:
        raise ProtocolError(name, f"must be at least {minimum}")


def _require_text(value: Any, name: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ProtocolError(name, "must be non-empty text")


def _require_decimal(value: Any, name: str) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        raise ProtocolError(name, "must be a positive number")


@dataclass(frozen=True)
class IntRange:
    """Inclusive whole-number range; ``min == max`` for a fixed value."""

    min: int
    max: int

    def __post_init__(self) -> None:
        _require_int(self.min, "min", 1)
        _require_int(self.max, "max", 1)
        if self.max < self.min:
            raise ProtocolError("max", f"must be ≥ min ({self.min})")

    @classmethod
    def fixed(cls, value: int) -> IntRange:
        return cls(value, value)

    @property
    def is_fixed(self) -> bool:
        return self.min == self.max

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and self.min <= value <= self.max

    def text(self) -> str:
        return str(self.min) if self.is_fixed else f"{self.min}-{self.max}"


@dataclass(frozen=True)
class SpecialStart:
    """A different first dose for a group, e.g. esketamine age ≥ 65: 28 mg on day 1."""

    min_age: int
    dose: Decimal
    source: str

    def __post_init__(self) -> None:
        _require_int(self.min_age, "min_age", 0)
        _require_decimal(self.dose, "dose")
        _require_text(self.source, "source")


@dataclass(frozen=True)
class VisitDose:
    """A fixed dose for a block of visits, e.g. visits 1-3 at 0.5 mg/kg."""

    first_visit: int
    last_visit: int
    dose: Decimal

    def __post_init__(self) -> None:
        _require_int(self.first_visit, "first_visit", 1)
        _require_int(self.last_visit, "last_visit", 1)
        if self.last_visit < self.first_visit:
            raise ProtocolError("last_visit", "must be ≥ first_visit")
        _require_decimal(self.dose, "dose")


@dataclass(frozen=True)
class DoseRule:
    """How the dose is chosen.

    ``start_dose`` is the first dose (``None``: the prescriber chooses, the reference gives none);
    ``allowed_doses`` lists the doses allowed after the start (empty: any dose from ``minimum``
    to ``maximum``); ``step`` is the size of dose changes (esketamine: 28 mg); ``by_visit`` fixes
    doses for blocks of visits (step-up protocols).
    """

    unit: str
    start_dose: Decimal | None
    maximum: Decimal | None
    source: str
    minimum: Decimal | None = None
    allowed_doses: tuple[Decimal, ...] = ()
    step: Decimal | None = None
    by_visit: tuple[VisitDose, ...] = ()
    special_starts: tuple[SpecialStart, ...] = ()
    note: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_doses", tuple(self.allowed_doses))
        object.__setattr__(self, "by_visit", tuple(self.by_visit))
        object.__setattr__(self, "special_starts", tuple(self.special_starts))
        if self.unit not in DOSE_UNITS:
            raise ProtocolError("unit", f"must be one of {list(DOSE_UNITS)}")
        _require_text(self.source, "source")
        for name in ("start_dose", "maximum", "minimum", "step"):
            if getattr(self, name) is not None:
                _require_decimal(getattr(self, name), name)
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ProtocolError("minimum", "must not exceed maximum")
        doses: list[tuple[str, Decimal]] = []
        if self.start_dose is not None:
            doses.append(("start_dose", self.start_dose))
        doses += [(f"allowed_doses[{i}]", d) for i, d in enumerate(self.allowed_doses)]
        doses += [(f"by_visit[{i}].dose", v.dose) for i, v in enumerate(self.by_visit)]
        doses += [(f"special_starts[{i}].dose", s.dose) for i, s in enumerate(self.special_starts)]
        for name, dose in doses:
            _require_decimal(dose, name)
            if self.maximum is not None and dose > self.maximum:
                raise ProtocolError(name, f"{dose} {self.unit} is above the maximum {self.maximum}")
            if self.minimum is not None and dose < self.minimum:
                raise ProtocolError(name, f"{dose} {self.unit} is below the minimum {self.minimum}")
            if self.step is not None and dose % self.step != 0:
                raise ProtocolError(name, f"must be a multiple of the {self.step} {self.unit} step")
        previous_last = 0
        for i, block in enumerate(self.by_visit):
            if block.first_visit != previous_last + 1:
                raise ProtocolError(
                    f"by_visit[{i}].first_visit", "visit blocks must follow on without gaps"
                )
            previous_last = block.last_visit

    def planned_dose(self, visit_number: int, age: int | None = None) -> Decimal | None:
        """The dose the protocol plans for visit ``visit_number`` (1-based).

        A ``by_visit`` block wins; visit 1 uses a matching special start (by age) or the start
        dose; later visits return the start dose (the prescriber may titrate within the rule).
        """
        _require_int(visit_number, "visit_number", 1)
        for block in self.by_visit:
            if block.first_visit <= visit_number <= block.last_visit:
                return block.dose
        if visit_number == 1 and age is not None:
            for special in self.special_starts:
                if age >= special.min_age:
                    return special.dose
        return self.start_dose


@dataclass(frozen=True)
class Phase:
    """A part of a course. Spacing is given by exactly one of ``per_week`` (visits a week),
    ``interval_weeks`` (weeks between visits) or ``weekly_visits`` (a count per week, week by
    week); with none of them the reference gives no spacing and the caller must supply it.
    ``visits`` is the number of visits in the phase (``None``: open-ended, continue while
    indicated)."""

    code: str
    kind: str
    description: str
    source: str
    visits: IntRange | None = None
    per_week: IntRange | None = None
    interval_weeks: IntRange | None = None
    weekly_visits: tuple[IntRange, ...] = ()
    weeks: IntRange | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "weekly_visits", tuple(self.weekly_visits))
        if not isinstance(self.code, str) or not _CODE_RE.match(self.code):
            raise ProtocolError("code", "must be a lower-case code like 'induction'")
        if self.kind not in PHASE_KINDS:
            raise ProtocolError("kind", f"must be one of {list(PHASE_KINDS)}")
        _require_text(self.description, "description")
        _require_text(self.source, "source")
        given = [n for n in ("per_week", "interval_weeks") if getattr(self, n) is not None]
        if self.weekly_visits:
            given.append("weekly_visits")
        if len(given) > 1:
            raise ProtocolError(
                given[1],
                f"give only one of per_week, interval_weeks, weekly_visits (also {given[0]})",
            )
        if self.per_week is not None and self.per_week.max > 7:
            raise ProtocolError("per_week.max", "cannot exceed 7 visits a week")
        for i, week in enumerate(self.weekly_visits):
            if week.max > 7:
                raise ProtocolError(f"weekly_visits[{i}].max", "cannot exceed 7 visits a week")
        if self.weekly_visits:
            total = IntRange(
                sum(w.min for w in self.weekly_visits), sum(w.max for w in self.weekly_visits)
            )
            if self.visits is not None and self.visits != total:
                raise ProtocolError("visits", f"must match the weekly counts ({total.text()})")
            weeks = len(self.weekly_visits)
            if self.weeks is not None and self.weeks != IntRange.fixed(weeks):
                raise ProtocolError("weeks", f"must be {weeks}, the number of weekly counts")
        if self.per_week is not None and self.visits is not None and self.weeks is not None:
            shortest = math.ceil(self.visits.min / self.per_week.max)
            longest = math.ceil(self.visits.max / self.per_week.min)
            if longest < self.weeks.min or shortest > self.weeks.max:
                raise ProtocolError(
                    "weeks", "cannot be reached with these visits and visits a week"
                )

    @property
    def open_ended(self) -> bool:
        return self.visits is None and not self.weekly_visits


@dataclass(frozen=True)
class CompanionVisit:
    """A non-dosing visit tied to the course (consultation, KAP preparation, integration...)."""

    kind: str
    timing: str
    description: str
    source: str
    within_days: IntRange | None = None

    def __post_init__(self) -> None:
        if self.kind not in COMPANION_KINDS:
            raise ProtocolError("kind", f"must be one of {list(COMPANION_KINDS)}")
        if self.timing not in COMPANION_TIMINGS:
            raise ProtocolError("timing", f"must be one of {list(COMPANION_TIMINGS)}")
        _require_text(self.description, "description")
        _require_text(self.source, "source")


@dataclass(frozen=True)
class Protocol:
    code: str
    name: str
    route: str
    drug: str
    dose: DoseRule
    phases: tuple[Phase, ...]
    source: str
    infusion_minutes: int | None = None
    monitoring_minutes: int | None = None
    min_interval_hours: Decimal = DEFAULT_MIN_INTERVAL_HOURS
    min_interval_source: str = SRC_MIN_INTERVAL
    companion_visits: tuple[CompanionVisit, ...] = ()
    notes: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "phases", tuple(self.phases))
        object.__setattr__(self, "companion_visits", tuple(self.companion_visits))
        if not isinstance(self.code, str) or not _CODE_RE.match(self.code):
            raise ProtocolError("code", "must be a lower-case code like 'esketamine-trd'")
        _require_text(self.name, "name")
        _require_text(self.drug, "drug")
        _require_text(self.source, "source")
        _require_text(self.min_interval_source, "min_interval_source")
        if self.route not in ROUTES:
            raise ProtocolError("route", f"must be one of {list(ROUTES)}")
        if not isinstance(self.dose, DoseRule):
            raise ProtocolError("dose", "must be a dose rule")
        if self.route == dosing.ESKETAMINE:
            if self.dose.unit != "mg":
                raise ProtocolError("dose.unit", "esketamine is dosed in mg")
            if self.dose.maximum is None or self.dose.maximum > dosing.ESKETAMINE_LABEL_MAX_MG:
                raise ProtocolError(
                    "dose.maximum", "esketamine needs a maximum of at most 84 mg (label)"
                )
            if self.dose.step is None or self.dose.step != dosing.ESKETAMINE_DEVICE_MG:
                raise ProtocolError(
                    "dose.step", "esketamine doses change in 28 mg steps (one device)"
                )
        elif self.route != dosing.ORAL and self.dose.unit != "mg/kg":
            raise ProtocolError("dose.unit", f"{self.route} is dosed in mg/kg")
        if self.infusion_minutes is not None:
            if self.route != dosing.IV:
                raise ProtocolError("infusion_minutes", "applies to iv-ketamine only")
            _require_int(self.infusion_minutes, "infusion_minutes", 1)
        if self.monitoring_minutes is not None:
            _require_int(self.monitoring_minutes, "monitoring_minutes", 1)
        if (
            not isinstance(self.min_interval_hours, Decimal)
            or not self.min_interval_hours.is_finite()
            or self.min_interval_hours < 0
        ):
            raise ProtocolError("min_interval_hours", "must be a number of hours ≥ 0")
        if not self.phases:
            raise ProtocolError("phases", "a protocol needs at least one phase")
        seen: set[str] = set()
        for i, phase in enumerate(self.phases):
            if not isinstance(phase, Phase):
                raise ProtocolError(f"phases[{i}]", "must be a phase")
            if phase.code in seen:
                raise ProtocolError(f"phases[{i}].code", f"duplicate phase code {phase.code!r}")
            seen.add(phase.code)

    def phase(self, code: str) -> Phase:
        for phase in self.phases:
            if phase.code == code:
                return phase
        raise ProtocolError("phase", f"protocol {self.code!r} has no phase {code!r}")

    def to_dict(self) -> dict[str, Any]:
        return _to_data(self)

    @classmethod
    def from_dict(cls, data: Any) -> Protocol:
        return from_dict(data)


# ---------------------------------------------------------------------------
# Serialisation
# ---------------------------------------------------------------------------


def _to_data(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_data(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_to_data(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def to_dict(protocol: Protocol) -> dict[str, Any]:
    """JSON-ready dict (numbers as JSON numbers) that :func:`from_dict` reads back."""
    return _to_data(protocol)


class _Reader:
    """Reads one JSON object, naming fields by path in every error."""

    def __init__(self, data: Any, path: str, allowed: Sequence[str], required: Sequence[str]):
        if not isinstance(data, Mapping):
            raise ProtocolError(path or "protocol", "must be an object")
        for key in data:
            if key not in allowed:
                raise ProtocolError(
                    self._join(path, str(key)), f"unknown field; expected {list(allowed)}"
                )
        for key in required:
            if key not in data:
                raise ProtocolError(self._join(path, key), "is required")
        self.data = data
        self.path = path

    @staticmethod
    def _join(path: str, key: str) -> str:
        return f"{path}.{key}" if path else key

    def name(self, key: str) -> str:
        return self._join(self.path, key)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def text(self, key: str, default: str | None = None) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str):
            raise ProtocolError(self.name(key), "must be text")
        return value

    def int(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProtocolError(self.name(key), "must be a whole number")
        return value

    def decimal(self, key: str) -> Decimal | None:
        value = self.data.get(key)
        if value is None:
            return None
        return _as_decimal(value, self.name(key))

    def list(self, key: str) -> list[Any]:
        value = self.data.get(key, [])
        if value is None:
            return []
        if not isinstance(value, list):
            raise ProtocolError(self.name(key), "must be a list")
        return value

    def int_range(self, key: str) -> IntRange | None:
        value = self.data.get(key)
        return None if value is None else _read_range(value, self.name(key))


def _as_decimal(value: Any, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ProtocolError(name, "must be a number")
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise ProtocolError(name, "must be a number") from None
    if not result.is_finite():
        raise ProtocolError(name, "must be a finite number")
    return result


def _build(cls: type, path: str, **kwargs: Any) -> Any:
    try:
        return cls(**kwargs)
    except ProtocolError as exc:
        raise _prefixed(path, exc) from None


def _read_range(value: Any, path: str) -> IntRange:
    r = _Reader(value, path, ("min", "max"), ("min", "max"))
    return _build(IntRange, path, min=r.int("min"), max=r.int("max"))


def _read_dose(value: Any, path: str) -> DoseRule:
    keys = tuple(f.name for f in fields(DoseRule))
    r = _Reader(value, path, keys, ("unit", "start_dose", "maximum", "source"))
    by_visit = []
    for i, item in enumerate(r.list("by_visit")):
        p = f"{path}.by_visit[{i}]"
        v = _Reader(
            item, p, ("first_visit", "last_visit", "dose"), ("first_visit", "last_visit", "dose")
        )
        by_visit.append(
            _build(
                VisitDose,
                p,
                first_visit=v.int("first_visit"),
                last_visit=v.int("last_visit"),
                dose=v.decimal("dose"),
            )
        )
    specials = []
    for i, item in enumerate(r.list("special_starts")):
        p = f"{path}.special_starts[{i}]"
        s = _Reader(item, p, ("min_age", "dose", "source"), ("min_age", "dose", "source"))
        specials.append(
            _build(
                SpecialStart,
                p,
                min_age=s.int("min_age"),
                dose=s.decimal("dose"),
                source=s.text("source"),
            )
        )
    allowed = tuple(
        _as_decimal(d, f"{path}.allowed_doses[{i}]") for i, d in enumerate(r.list("allowed_doses"))
    )
    return _build(
        DoseRule,
        path,
        unit=r.text("unit"),
        start_dose=r.decimal("start_dose"),
        maximum=r.decimal("maximum"),
        source=r.text("source"),
        minimum=r.decimal("minimum"),
        allowed_doses=allowed,
        step=r.decimal("step"),
        by_visit=tuple(by_visit),
        special_starts=tuple(specials),
        note=r.text("note", ""),
    )


def _read_phase(value: Any, path: str) -> Phase:
    keys = tuple(f.name for f in fields(Phase))
    r = _Reader(value, path, keys, ("code", "kind", "description", "source"))
    weekly = tuple(
        _read_range(w, f"{path}.weekly_visits[{i}]") for i, w in enumerate(r.list("weekly_visits"))
    )
    return _build(
        Phase,
        path,
        code=r.text("code"),
        kind=r.text("kind"),
        description=r.text("description"),
        source=r.text("source"),
        visits=r.int_range("visits"),
        per_week=r.int_range("per_week"),
        interval_weeks=r.int_range("interval_weeks"),
        weekly_visits=weekly,
        weeks=r.int_range("weeks"),
    )


def _read_companion(value: Any, path: str) -> CompanionVisit:
    keys = tuple(f.name for f in fields(CompanionVisit))
    r = _Reader(value, path, keys, ("kind", "timing", "description", "source"))
    return _build(
        CompanionVisit,
        path,
        kind=r.text("kind"),
        timing=r.text("timing"),
        description=r.text("description"),
        source=r.text("source"),
        within_days=r.int_range("within_days"),
    )


def from_dict(data: Any) -> Protocol:
    """Validate a dict (e.g. a clinic's edited JSON copy) into a :class:`Protocol`.

    Raises :class:`ProtocolError` whose ``field`` is the path, e.g. ``phases[0].per_week.max``.
    """
    keys = tuple(f.name for f in fields(Protocol))
    r = _Reader(data, "", keys, ("code", "name", "route", "drug", "dose", "phases", "source"))
    dose = _read_dose(data["dose"], "dose")
    phases = tuple(_read_phase(p, f"phases[{i}]") for i, p in enumerate(r.list("phases")))
    companions = tuple(
        _read_companion(c, f"companion_visits[{i}]")
        for i, c in enumerate(r.list("companion_visits"))
    )
    min_interval = r.decimal("min_interval_hours")
    return _build(
        Protocol,
        "",
        code=r.text("code"),
        name=r.text("name"),
        route=r.text("route"),
        drug=r.text("drug"),
        dose=dose,
        phases=phases,
        source=r.text("source"),
        infusion_minutes=r.int("infusion_minutes"),
        monitoring_minutes=r.int("monitoring_minutes"),
        min_interval_hours=DEFAULT_MIN_INTERVAL_HOURS if min_interval is None else min_interval,
        min_interval_source=r.text("min_interval_source", SRC_MIN_INTERVAL),
        companion_visits=companions,
        notes=r.text("notes", ""),
    )


# ---------------------------------------------------------------------------
# Scheduling
# ---------------------------------------------------------------------------


def _week_offsets(n: int) -> list[int]:
    """Day offsets within a week for n visits: floor(i × 7 / n). 3 → [0, 2, 4]; 2 → [0, 3]."""
    return [i * 7 // n for i in range(n)]


def _choose(given: int | None, allowed: IntRange | None, name: str, what: str) -> int:
    if given is None:
        if allowed is None:
            raise ProtocolError(name, f"the reference gives no {what} for this phase: pass {name}")
        if not allowed.is_fixed:
            raise ProtocolError(
                name, f"this phase allows {allowed.text()} {what}: pass {name} to choose"
            )
        return allowed.min
    if isinstance(given, bool) or not isinstance(given, int) or given < 1:
        raise ProtocolError(name, "must be a whole number ≥ 1")
    if allowed is not None and given not in allowed:
        raise ProtocolError(name, f"{given} is outside this phase's {allowed.text()} {what}")
    return given


def propose_schedule(
    protocol: Protocol,
    phase: str | Phase,
    start_date: date,
    per_week: int | None = None,
    *,
    visits: int | None = None,
    interval_weeks: int | None = None,
    interval_days: int | None = None,
    weekly_counts: Sequence[int] | None = None,
) -> list[date]:
    """Target dates for the visits of one phase, starting on ``start_date`` (the first visit).

    No clinic hours or weekends here: just dates that respect the phase's counts and spacing and
    the protocol's minimum interval. Where the phase gives a range the caller chooses
    (``per_week``, ``interval_weeks``, ``weekly_counts``); ``visits`` defaults to the upper end of
    the phase's visit range and is required for open-ended phases. ``interval_days`` is accepted
    only for phases whose spacing the reference does not give.
    """
    if isinstance(phase, str):
        phase = protocol.phase(phase)
    if not isinstance(start_date, date):
        raise ProtocolError("start_date", "must be a date")
    if isinstance(start_date, datetime):
        start_date = start_date.date()
    dates: list[date]

    if phase.weekly_visits:
        for name, given in (
            ("per_week", per_week),
            ("interval_weeks", interval_weeks),
            ("interval_days", interval_days),
        ):
            if given is not None:
                raise ProtocolError(name, "this phase is spaced week by week: pass weekly_counts")
        if weekly_counts is None:
            if not all(w.is_fixed for w in phase.weekly_visits):
                raise ProtocolError(
                    "weekly_counts",
                    "this phase allows "
                    + ", ".join(
                        f"week {i + 1}: {w.text()}" for i, w in enumerate(phase.weekly_visits)
                    )
                    + " visits: pass weekly_counts to choose",
                )
            weekly_counts = [w.min for w in phase.weekly_visits]
        counts = list(weekly_counts)
        if len(counts) != len(phase.weekly_visits):
            raise ProtocolError(
                "weekly_counts", f"needs {len(phase.weekly_visits)} counts, one per week"
            )
        dates = []
        for week, (count, allowed) in enumerate(zip(counts, phase.weekly_visits, strict=True)):
            _choose(count, allowed, f"weekly_counts[{week}]", "visits that week")
            dates += [start_date + timedelta(days=7 * week + d) for d in _week_offsets(count)]
        if visits is not None and visits != len(dates):
            raise ProtocolError(
                "visits", f"the weekly counts give {len(dates)} visits, not {visits}"
            )
    else:
        if weekly_counts is not None:
            raise ProtocolError("weekly_counts", "this phase is not spaced week by week")
        if phase.visits is None and visits is None:
            raise ProtocolError(
                "visits", "this phase is open-ended: pass the number of visits to propose"
            )
        count = _choose(
            phase.visits.max if visits is None and phase.visits is not None else visits,
            phase.visits,
            "visits",
            "visits",
        )
        spacing_args = {
            "per_week": per_week,
            "interval_weeks": interval_weeks,
            "interval_days": interval_days,
        }
        if phase.per_week is not None:
            spacing = "per_week"
        elif phase.interval_weeks is not None:
            spacing = "interval_weeks"
        else:
            # The reference gives no spacing for this phase: the caller gives exactly one.
            chosen = [name for name, value in spacing_args.items() if value is not None]
            if len(chosen) != 1:
                raise ProtocolError(
                    "per_week",
                    "the reference gives no spacing for this phase: pass exactly one of "
                    "per_week, interval_weeks or interval_days",
                )
            spacing = chosen[0]
        for name, value in spacing_args.items():
            if name != spacing and value is not None:
                raise ProtocolError(name, f"this phase is spaced by {spacing}: pass {spacing}")
        if spacing == "per_week":
            n = _choose(per_week, phase.per_week, "per_week", "visits a week")
            if n > 7:
                raise ProtocolError("per_week", "cannot exceed 7 visits a week")
            weeks_needed = math.ceil(count / n)
            if phase.weeks is not None and weeks_needed not in phase.weeks:
                raise ProtocolError(
                    "per_week",
                    f"{count} visits at {n} a week take {weeks_needed} weeks; "
                    f"this phase lasts {phase.weeks.text()} weeks",
                )
            offsets = _week_offsets(n)
            dates = [
                start_date + timedelta(days=7 * (j // n) + offsets[j % n]) for j in range(count)
            ]
        elif spacing == "interval_weeks":
            w = _choose(
                interval_weeks, phase.interval_weeks, "interval_weeks", "weeks between visits"
            )
            dates = [start_date + timedelta(weeks=w * j) for j in range(count)]
        else:
            d = _choose(interval_days, None, "interval_days", "days between visits")
            dates = [start_date + timedelta(days=d * j) for j in range(count)]

    min_gap = protocol.min_interval_hours
    for previous, current in itertools.pairwise(dates):
        if Decimal((current - previous).days * 24) < min_gap:
            raise ProtocolError(
                "min_interval_hours",
                f"visits on {previous} and {current} are closer than the protocol's minimum "
                f"interval of {min_gap} h",
            )
    return dates


# ---------------------------------------------------------------------------
# The shipped library
# ---------------------------------------------------------------------------

D = Decimal

SRC_IV_STANDARD = (
    "IV racemic ketamine: standard 0.5 mg/kg infused over 40 min; trials span 0.1 to 1.0 mg/kg "
    "(Fava et al., Mol Psychiatry 2020; Murrough et al., Biol Psychiatry 2013; "
    "clinical-reference.md section 1)"
)
SRC_CONSULTATION = (
    "The prescriber records the eligibility decision, with its reasons, before treatment "
    "(clinical-reference.md section 4)"
)
SRC_ESK_DOSING = (
    "Spravato prescribing information and dosing pages (clinical-reference.md section 1)"
)
SRC_ESK_MONITORING = "Spravato label and REMS: monitor at least 2 hours after dosing (clinical-reference.md section 3)"

_CONSULTATION = CompanionVisit(
    kind="consultation",
    timing="before_course",
    description="Assessment and eligibility decision recorded by the prescriber.",
    source=SRC_CONSULTATION,
)

_IV_STANDARD_DOSE = DoseRule(
    unit="mg/kg",
    start_dose=D("0.5"),
    maximum=D("1.0"),
    source=SRC_IV_STANDARD,
    note="0.5 and 1.0 mg/kg beat active placebo; 0.1 and 0.2 mg/kg did not after correction. "
    "The clinic's hard maximum is the dosing setting.",
)

IV_CLINIC_SIX = Protocol(
    code="iv-ketamine-clinic-6",
    name="IV ketamine induction, clinic form: 6 infusions over 2-3 weeks",
    route="iv-ketamine",
    drug="racemic ketamine",
    dose=DoseRule(
        unit="mg/kg",
        start_dose=D("0.5"),
        maximum=D("1.0"),
        source=SRC_IV_STANDARD + "; clinic practice pages (clinical-reference.md section 2)",
        note="A higher dose is considered if there is no benefit after infusion 2-3.",
    ),
    phases=(
        Phase(
            code="induction",
            kind="induction",
            description="6 infusions over 2-3 weeks.",
            visits=IntRange.fixed(6),
            per_week=IntRange(2, 3),
            weeks=IntRange(2, 3),
            source="clinic practice pages (clinical-reference.md section 2)",
        ),
        Phase(
            code="boosters",
            kind="maintenance",
            description="Boosters every 2-6 weeks, individualized.",
            interval_weeks=IntRange(2, 6),
            source="clinic practice pages (clinical-reference.md section 2)",
        ),
    ),
    infusion_minutes=40,
    companion_visits=(_CONSULTATION,),
    source="clinic practice pages (clinical-reference.md section 2); dose: Fava 2020, Murrough 2013",
)

IV_MURROUGH_2013 = Protocol(
    code="iv-ketamine-murrough-2013",
    name="IV ketamine induction, trial form (Murrough 2013): up to 6 infusions over 12 days",
    route="iv-ketamine",
    drug="racemic ketamine",
    dose=_IV_STANDARD_DOSE,
    phases=(
        Phase(
            code="induction",
            kind="induction",
            description="Up to 6 infusions, three a week over 12 days. Response 70.8%; responders "
            "relapsed after a median of 18 days.",
            visits=IntRange(1, 6),
            per_week=IntRange.fixed(3),
            source="Murrough et al., Biol Psychiatry 2013 (clinical-reference.md section 2)",
        ),
    ),
    infusion_minutes=40,
    companion_visits=(_CONSULTATION,),
    source="Murrough et al., Biol Psychiatry 2013 (clinical-reference.md sections 1 and 2)",
)

IV_CLINIC_TAPER = Protocol(
    code="iv-ketamine-clinic-taper",
    name="IV ketamine with clinic taper: 3-4, 2-3, 1-2 infusions in weeks 1-3, then every 2-4 weeks",
    route="iv-ketamine",
    drug="racemic ketamine",
    dose=_IV_STANDARD_DOSE,
    phases=(
        Phase(
            code="taper",
            kind="taper",
            description="Week 1: 3-4 treatments; week 2: 2-3; week 3: 1-2.",
            weekly_visits=(IntRange(3, 4), IntRange(2, 3), IntRange(1, 2)),
            source="a clinic's patient information page (clinical-reference.md section 2)",
        ),
        Phase(
            code="maintenance",
            kind="maintenance",
            description="Then one every two weeks or monthly (monthly taken as every 4 weeks).",
            interval_weeks=IntRange(2, 4),
            source="a clinic's patient information page (clinical-reference.md section 2)",
        ),
    ),
    infusion_minutes=40,
    companion_visits=(_CONSULTATION,),
    notes="The taper source gives no dose; the standard IV dose (section 1) is used.",
    source="a clinic's patient information page (clinical-reference.md section 2); dose: "
    "Fava 2020, Murrough 2013",
)

IV_CUSIN_2017 = Protocol(
    code="iv-ketamine-cusin-2017-step-up",
    name="IV ketamine step-up (Cusin 2017): infusions 1-3 at 0.5, 4-6 at 0.75 mg/kg over 45 min",
    route="iv-ketamine",
    drug="racemic ketamine",
    dose=DoseRule(
        unit="mg/kg",
        start_dose=D("0.5"),
        maximum=D("0.75"),
        by_visit=(VisitDose(1, 3, D("0.5")), VisitDose(4, 6, D("0.75"))),
        source="Cusin et al., ANZJP 2017 (clinical-reference.md section 1)",
    ),
    phases=(
        Phase(
            code="induction",
            kind="induction",
            description="6 infusions: 1-3 at 0.5 mg/kg, 4-6 at 0.75 mg/kg, each over 45 min. The "
            "reference gives no spacing: the clinic sets it.",
            visits=IntRange.fixed(6),
            source="Cusin et al., ANZJP 2017 (clinical-reference.md section 1)",
        ),
    ),
    infusion_minutes=45,
    companion_visits=(_CONSULTATION,),
    source="Cusin et al., ANZJP 2017 (clinical-reference.md section 1)",
)

IM_KETAMINE = Protocol(
    code="im-ketamine",
    name="IM ketamine: start 0.5 mg/kg (0.25-0.5 mg/kg studied; rarely above 0.7 mg/kg)",
    route="im-ketamine",
    drug="racemic ketamine",
    dose=DoseRule(
        unit="mg/kg",
        start_dose=D("0.5"),
        minimum=D("0.25"),
        maximum=D("0.7"),
        source="Chilukuri et al., Indian J Psychol Med 2014 (clinical-reference.md section 1)",
        note="0.25-0.5 mg/kg IM gave HAM-D falls similar to 0.5 mg/kg IV at 2 h; clinics start "
        "near 0.5 mg/kg, rarely above 0.7 mg/kg (the maximum here).",
    ),
    phases=(
        Phase(
            code="course",
            kind="induction",
            description="The reference gives no IM schedule: the clinic sets the number and "
            "spacing of sessions.",
            source="Chilukuri et al. 2014 (clinical-reference.md section 1): no schedule given",
        ),
    ),
    companion_visits=(_CONSULTATION,),
    source="Chilukuri et al., Indian J Psychol Med 2014 (clinical-reference.md section 1)",
)

SC_KETAMINE_KADS = Protocol(
    code="sc-ketamine-kads",
    name="Subcutaneous ketamine (KADS): 0.5 mg/kg, flexible 0.5-0.9 mg/kg, twice weekly for 4 weeks",
    route="sc-ketamine",
    drug="racemic ketamine",
    dose=DoseRule(
        unit="mg/kg",
        start_dose=D("0.5"),
        minimum=D("0.5"),
        maximum=D("0.9"),
        source="Loo et al., Br J Psychiatry 2023 (KADS) (clinical-reference.md section 1)",
    ),
    phases=(
        Phase(
            code="induction",
            kind="induction",
            description="Twice weekly for 4 weeks.",
            visits=IntRange.fixed(8),
            per_week=IntRange.fixed(2),
            weeks=IntRange.fixed(4),
            source="Loo et al., Br J Psychiatry 2023 (KADS) (clinical-reference.md section 1)",
        ),
    ),
    companion_visits=(_CONSULTATION,),
    source="Loo et al., Br J Psychiatry 2023 (KADS) (clinical-reference.md section 1)",
)

ESKETAMINE_TRD = Protocol(
    code="esketamine-trd",
    name="Esketamine nasal spray for treatment-resistant depression",
    route="esketamine-nasal",
    drug="esketamine",
    dose=DoseRule(
        unit="mg",
        start_dose=D(56),
        maximum=D(84),
        allowed_doses=(D(56), D(84)),
        step=D(28),
        special_starts=(
            SpecialStart(
                min_age=65,
                dose=D(28),
                source="Age 65 and over: day 1 28 mg (stated in the Hong Kong label; check the local "
                "label) (clinical-reference.md section 1)",
            ),
        ),
        source="Spravato: day 1 56 mg, then 56 or 84 mg; dose changes in 28 mg steps "
        "(clinical-reference.md section 1)",
        note="Age 65 and over: later doses change in 28 mg steps; check the local label.",
    ),
    phases=(
        Phase(
            code="induction",
            kind="induction",
            description="Weeks 1-4: twice weekly.",
            visits=IntRange.fixed(8),
            per_week=IntRange.fixed(2),
            weeks=IntRange.fixed(4),
            source=SRC_ESK_DOSING,
        ),
        Phase(
            code="maintenance-weeks-5-8",
            kind="maintenance",
            description="Weeks 5-8: weekly.",
            visits=IntRange.fixed(4),
            per_week=IntRange.fixed(1),
            weeks=IntRange.fixed(4),
            source=SRC_ESK_DOSING,
        ),
        Phase(
            code="maintenance-week-9-on",
            kind="maintenance",
            description="Week 9 on: weekly or every 2 weeks, the least frequent schedule that keeps "
            "the response.",
            interval_weeks=IntRange(1, 2),
            source=SRC_ESK_DOSING,
        ),
    ),
    monitoring_minutes=dosing.ESKETAMINE_MONITORING_MIN,
    companion_visits=(_CONSULTATION,),
    notes="Before dosing: no food for 2 h, no liquids for 30 min. 5 min between devices. No "
    "driving until the next day after restful sleep.",
    source=SRC_ESK_DOSING + "; monitoring: " + SRC_ESK_MONITORING,
)

ESKETAMINE_SUICIDAL_IDEATION = Protocol(
    code="esketamine-mdd-suicidal-ideation",
    name="Esketamine nasal spray for depression with acute suicidal ideation",
    route="esketamine-nasal",
    drug="esketamine",
    dose=DoseRule(
        unit="mg",
        start_dose=D(84),
        maximum=D(84),
        allowed_doses=(D(56), D(84)),
        step=D(28),
        source="Spravato: 84 mg twice weekly for 4 weeks, may reduce to 56 mg "
        "(clinical-reference.md section 1)",
        note="The reference states the 65-and-over 28 mg day-1 dose for esketamine without tying "
        "it to this indication: check the local label.",
    ),
    phases=(
        Phase(
            code="induction",
            kind="induction",
            description="84 mg twice weekly for 4 weeks (may reduce to 56 mg).",
            visits=IntRange.fixed(8),
            per_week=IntRange.fixed(2),
            weeks=IntRange.fixed(4),
            source=SRC_ESK_DOSING,
        ),
    ),
    monitoring_minutes=dosing.ESKETAMINE_MONITORING_MIN,
    companion_visits=(_CONSULTATION,),
    notes="Before dosing: no food for 2 h, no liquids for 30 min. 5 min between devices.",
    source=SRC_ESK_DOSING + "; monitoring: " + SRC_ESK_MONITORING,
)

KAP_SUBLINGUAL = Protocol(
    code="kap-sublingual-series",
    name="Ketamine-assisted psychotherapy (KAP), sublingual series",
    route="oral-ketamine",
    drug="racemic ketamine, sublingual rapid-dissolve tablets (50 and 100 mg)",
    dose=DoseRule(
        unit="mg",
        start_dose=None,
        maximum=None,
        source="KAP training material; Andrade 2019; Lara et al. 2013 (clinical-reference.md section 1)",
        note="Rapid-dissolve tablets of 50 and 100 mg, commonly 100-400 mg; doses used 25-300 mg "
        "or 0.25-7 mg/kg per session. Sublingual bioavailability about 30%. The reference fixes "
        "no start dose or maximum: the prescriber sets them.",
    ),
    phases=(
        Phase(
            code="dosing-sessions",
            kind="induction",
            description="Dosing sessions, each followed within days by an integration session. The "
            "reference gives no number or spacing of sessions: the clinic sets them.",
            source="KAP practice (clinical-reference.md section 2)",
        ),
    ),
    companion_visits=(
        _CONSULTATION,
        CompanionVisit(
            kind="kap_preparation",
            timing="before_course",
            description="Preparation session before the first dosing session.",
            source="KAP practice (clinical-reference.md section 2)",
        ),
        CompanionVisit(
            kind="integration",
            timing="after_each_dose",
            description="Integration session within days of each dosing session (window set by the clinic).",
            source="KAP practice (clinical-reference.md section 2)",
        ),
    ),
    source="KAP practice (clinical-reference.md section 2); doses: clinical-reference.md section 1",
)

_LIBRARY: dict[str, Protocol] = {
    p.code: p
    for p in (
        IV_CLINIC_SIX,
        IV_MURROUGH_2013,
        IV_CLINIC_TAPER,
        IV_CUSIN_2017,
        IM_KETAMINE,
        SC_KETAMINE_KADS,
        ESKETAMINE_TRD,
        ESKETAMINE_SUICIDAL_IDEATION,
        KAP_SUBLINGUAL,
    )
}


def all_protocols() -> list[Protocol]:
    """Every shipped protocol, in library order."""
    return list(_LIBRARY.values())


def get(code: str) -> Protocol:
    """The shipped protocol with this code; ``KeyError`` naming the known codes otherwise."""
    try:
        return _LIBRARY[code]
    except KeyError:
        raise KeyError(f"unknown protocol {code!r}; known: {sorted(_LIBRARY)}") from None
