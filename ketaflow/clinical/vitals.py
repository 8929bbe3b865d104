"""Vital signs on treatment day: plausibility limits, alert rules, reading schedule, discharge.

Pure Python (no Django). Every threshold lives in :class:`VitalsSettings`, whose defaults come
from the clinical reference (sections 3 and 6, citing the Spravato prescribing information,
published IV ketamine series and an emergency-department ketamine trial) or, where the reference gives no value, are
ketaflow's documented operational defaults (see ``SOURCES``). A clinic stores its own copy.

    errors = plausibility_errors({"systolic": 400})         # {"systolic": "..."}
    findings = evaluate(reading, earlier, baseline, settings)  # alerts and recheck prompts
    due = next_due(route=..., dose_start=..., dose_end=..., readings=[...], now=..., settings=...)
    unmet = discharge_unmet(DischargeFacts(...), settings)  # [] when discharge is allowed
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from decimal import Decimal

IV = "iv-ketamine"
ESKETAMINE = "esketamine-nasal"

# ---------------------------------------------------------------------------- codes and limits

MEASURES = ("systolic", "diastolic", "heart_rate", "resp_rate", "spo2", "temperature")

#: field -> (LOINC code, UCUM unit, display). Reference section 6.
CODES: dict[str, tuple[str, str, str]] = {
    "systolic": ("8480-6", "mm[Hg]", "Systolic blood pressure"),
    "diastolic": ("8462-4", "mm[Hg]", "Diastolic blood pressure"),
    "heart_rate": ("8867-4", "/min", "Heart rate"),
    "resp_rate": ("9279-1", "/min", "Respiratory rate"),
    "spo2": ("59408-5", "%", "Oxygen saturation by pulse oximetry"),
    "temperature": ("8310-5", "Cel", "Body temperature"),
}
BP_PANEL = "85354-9"
VITALS_PANEL = "85353-1"

#: Input accepted (plausibility limits for data entry, not clinical limits). Reference section 6.
PLAUSIBLE: dict[str, tuple[int, int]] = {
    "systolic": (50, 300),
    "diastolic": (20, 200),
    "heart_rate": (20, 250),
    "resp_rate": (4, 60),
    "spo2": (50, 100),
    "temperature": (30, 43),
}
PLAUSIBLE_SOURCE = (
    "Clinical reference section 6: input ranges are plausibility limits chosen for data "
    "entry; values outside them are almost surely typing errors."
)
LABELS = {
    "systolic": "Systolic BP",
    "diastolic": "Diastolic BP",
    "heart_rate": "Heart rate",
    "resp_rate": "Respiratory rate",
    "spo2": "SpO2",
    "temperature": "Temperature",
}
UNITS = {
    "systolic": "mmHg",
    "diastolic": "mmHg",
    "heart_rate": "/min",
    "resp_rate": "/min",
    "spo2": "%",
    "temperature": "°C",
}


def plausibility_errors(values: dict) -> dict[str, str]:
    """Field -> message for every value outside its plausibility limits (None means not taken).

    Systolic must be above diastolic. At least one measure must be given.
    """
    errors: dict[str, str] = {}
    present = {k: v for k, v in values.items() if k in PLAUSIBLE and v is not None}
    if not present:
        return {"__all__": "Enter at least one measurement."}
    for name, value in present.items():
        low, high = PLAUSIBLE[name]
        if not low <= Decimal(str(value)) <= high:
            errors[name] = (
                f"{LABELS[name]} {value} {UNITS[name]} is outside {low}-{high} {UNITS[name]}: "
                "almost surely a typing error (plausibility limits, reference section 6)."
            )
    sys_, dia = present.get("systolic"), present.get("diastolic")
    if (sys_ is None) != (dia is None):
        errors.setdefault(
            "systolic" if sys_ is None else "diastolic",
            "Enter both systolic and diastolic blood pressure.",
        )
    elif (
        sys_ is not None and "systolic" not in errors and "diastolic" not in errors and sys_ <= dia
    ):
        errors["systolic"] = f"Systolic {sys_} must be above diastolic {dia} (reference section 6)."
    return errors


# ---------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class VitalsSettings:
    # Alert rules (reference section 3, "default alert rules").
    systolic_max: int = 180
    diastolic_max: int = 110
    bp_confirm_minutes: int = 5
    heart_rate_max: int = 120
    heart_rate_sustained_readings: int = 2
    spo2_min: int = 92
    resp_rate_min: int = 10
    # The emergency-department ketamine trial's exclusion limits (reference section 3).
    systolic_min: int = 90
    heart_rate_min: int = 50
    resp_rate_max: int = 30
    systolic_rise: int = 40
    diastolic_rise: int = 25
    # Pre-dose limit (reference section 3: label example above 140/90).
    predose_systolic_max: int = 140
    predose_diastolic_max: int = 90
    # Reading schedule.
    dosing_interval_minutes: int = 10
    esketamine_bp_minutes: int = 40
    after_interval_minutes: int = 15
    # Discharge.
    discharge_systolic_margin: int = 20
    discharge_diastolic_margin: int = 10
    discharge_heart_rate_margin: int = 20
    esketamine_monitoring_minutes: int = 120
    # Escalation and REMS.
    escalation_minutes: int = 5
    rems_deadline_days: int = 7

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{f.name} must be a whole number of at least 0")
        if self.esketamine_monitoring_minutes < 120:
            raise ValueError(
                "esketamine_monitoring_minutes cannot be below 120 (Spravato label and REMS)"
            )
        if self.heart_rate_sustained_readings < 1:
            raise ValueError("heart_rate_sustained_readings must be at least 1")
        if self.dosing_interval_minutes < 1 or self.after_interval_minutes < 1:
            raise ValueError("reading intervals must be at least 1 minute")


DEFAULTS = VitalsSettings()

_SEC3 = "Clinical reference section 3 (monitoring)"
SOURCES: dict[str, str] = {
    "systolic_max": f"{_SEC3}: default alert rule systolic > 180 (hypertension protocols call "
    "> 180/110 severe), confirmed with a repeat within 5 min.",
    "diastolic_max": f"{_SEC3}: default alert rule diastolic > 110, confirmed with a repeat.",
    "bp_confirm_minutes": f"{_SEC3}: confirm with a repeat reading within 5 min (also the "
    "recheck window of an unconfirmed heart-rate alert).",
    "heart_rate_max": f"{_SEC3}: default alert rule HR > 120 sustained (an emergency-department "
    "ketamine trial excluded HR > 120).",
    "heart_rate_sustained_readings": "Clinic default, set by the medical director (no "
    "published definition of 'sustained'): two consecutive readings above the limit.",
    "spo2_min": f"{_SEC3}: default alert rule SpO2 < 92%.",
    "resp_rate_min": f"{_SEC3}: default alert rule RR < 10.",
    "systolic_min": f"{_SEC3}: an emergency-department ketamine trial excluded systolic < 90.",
    "heart_rate_min": f"{_SEC3}: the emergency-department ketamine trial excluded HR < 50.",
    "resp_rate_max": f"{_SEC3}: the emergency-department ketamine trial excluded RR > 30.",
    "systolic_rise": "Clinic default, set by the medical director (no published value): a "
    "rise from the patient's baseline of 40 mmHg systolic or more (published IV series report "
    "mean rises of +3 to +16 mmHg).",
    "diastolic_rise": "Clinic default, set by the medical director (no published value): a "
    "rise from baseline of 25 mmHg diastolic or more.",
    "predose_systolic_max": f"{_SEC3}: the Spravato label's example, baseline above 140 "
    "systolic needs the prescriber to weigh the rise against the benefit.",
    "predose_diastolic_max": f"{_SEC3}: the label's example, above 90 diastolic.",
    "dosing_interval_minutes": f"{_SEC3}: one IV series measured BP every 10 min during the "
    "infusion (issue 7: every 10-15 min).",
    "esketamine_bp_minutes": f"{_SEC3}: Spravato, blood pressure about 40 min after dosing.",
    "after_interval_minutes": f"{_SEC3}: every 15 min after the infusion until discharge.",
    "discharge_systolic_margin": "Clinic default, set by the medical director (no published "
    "value; the Spravato label says 'until stable'): systolic within 20 mmHg above baseline.",
    "discharge_diastolic_margin": "Clinic default, set by the medical director (no published "
    "value): diastolic within 10 mmHg above baseline.",
    "discharge_heart_rate_margin": "Clinic default, set by the medical director (no published "
    "value): heart rate within 20 /min above baseline.",
    "esketamine_monitoring_minutes": f"{_SEC3}: Spravato label and REMS, monitor at least 2 "
    "hours (120 min) after dosing; cannot be set lower.",
    "escalation_minutes": "Clinic default, set by the medical director (no "
    "published value): an unacknowledged alert is escalated to the prescriber on duty after 5 min.",
    "rems_deadline_days": f"{_SEC3}: the REMS Patient Monitoring Form is due within 7 days.",
}


# ---------------------------------------------------------------------------- readings


@dataclass(frozen=True)
class Reading:
    at: datetime.datetime
    systolic: int | None = None
    diastolic: int | None = None
    heart_rate: int | None = None
    resp_rate: int | None = None
    spo2: int | None = None
    temperature: Decimal | None = None

    @property
    def has_bp(self) -> bool:
        return self.systolic is not None and self.diastolic is not None


@dataclass(frozen=True)
class Finding:
    """One finding on one reading.

    ``kind`` (the ``level``) is "alert" (raises or upgrades an alert), "recheck" (asks for a
    repeat reading) or "info" (e.g. a normal recheck that resolves an unconfirmed alert).
    An alert with ``confirmed`` False is raised at once and marked "unconfirmed: recheck within
    N minutes"; ``recheck_by`` is when the recheck is due. ``resolves`` is True on the "info"
    finding of a normal recheck of an unconfirmed alert of the same rule.
    """

    rule: str
    kind: str
    message: str
    recheck_by: datetime.datetime | None = None
    confirmed: bool = True
    resolves: bool = False

    @property
    def code(self) -> str:
        return self.rule

    @property
    def level(self) -> str:
        return self.kind

    def as_json(self) -> dict:
        out = {"code": self.rule, "level": self.kind, "message": self.message}
        if self.kind == "alert":
            out["confirmed"] = self.confirmed
        if self.recheck_by is not None:
            out["recheck_by"] = self.recheck_by.isoformat()
        if self.resolves:
            out["resolves"] = True
        return out


RULES = {
    "bp_high": "Blood pressure above the alert limit (unconfirmed until a repeat within the "
    "recheck window)",
    "hr_high": "Heart rate above the limit (unconfirmed until sustained)",
    "spo2_low": "SpO2 below the limit",
    "rr_low": "Respiratory rate below the limit",
    "rr_high": "Respiratory rate above the limit",
    "sbp_low": "Systolic blood pressure below the limit",
    "hr_low": "Heart rate below the limit",
    "bp_rise": "Blood pressure risen from the patient's baseline",
}

#: Rules raised unconfirmed at once and settled by a recheck.
RECHECKED = ("bp_high", "hr_high")


def _bp_high(r: Reading, s: VitalsSettings) -> bool:
    return r.has_bp and (r.systolic > s.systolic_max or r.diastolic > s.diastolic_max)


def _hr_high(r: Reading, s: VitalsSettings) -> bool:
    return r.heart_rate is not None and r.heart_rate > s.heart_rate_max


def _hhmm(t: datetime.datetime) -> str:
    return t.strftime("%H:%M")


def _hr_confirmed(reading: Reading, prior: Sequence[Reading], s: VitalsSettings) -> bool:
    """This and the previous (N-1) heart-rate readings all above the limit."""
    need = s.heart_rate_sustained_readings
    hr_prior = [e.heart_rate for e in prior if e.heart_rate is not None]
    run = [reading.heart_rate, *reversed(hr_prior)][:need]
    return len(run) == need and all(v > s.heart_rate_max for v in run)


def _bp_confirmed(reading: Reading, prior: Sequence[Reading], s: VitalsSettings) -> Reading | None:
    """The latest earlier high BP within the confirmation window, if any."""
    window = datetime.timedelta(minutes=s.bp_confirm_minutes)
    hits = [e for e in prior if reading.at - e.at <= window and _bp_high(e, s)]
    return hits[-1] if hits else None


def evaluate(
    reading: Reading,
    earlier: Sequence[Reading],
    baseline: Reading | None,
    settings: VitalsSettings = DEFAULTS,
) -> list[Finding]:
    """Findings for ``reading`` given the session's ``earlier`` readings (any order).

    - BP above systolic_max or diastolic_max: an alert at once. Confirmed when an earlier
      reading within ``bp_confirm_minutes`` before it was also above; otherwise unconfirmed,
      with a recheck due ``bp_confirm_minutes`` later.
    - HR above heart_rate_max: an alert at once, confirmed when this and the previous (N-1)
      heart-rate readings are all above; otherwise unconfirmed with the same recheck window.
    - A BP (or HR) within limits right after an unconfirmed high one: "info", resolving it.
    - SpO2 below spo2_min, RR below resp_rate_min or above resp_rate_max, systolic below
      systolic_min, HR below heart_rate_min: a confirmed alert at once.
    - Rise from baseline of at least systolic_rise or diastolic_rise: at once.
    """
    s = settings
    out: list[Finding] = []
    prior = sorted(
        (e for e in earlier if e.at <= reading.at and e is not reading), key=lambda e: e.at
    )
    recheck_in = datetime.timedelta(minutes=s.bp_confirm_minutes)
    recheck_by = reading.at + recheck_in
    unconfirmed = f"unconfirmed: recheck within {s.bp_confirm_minutes} minutes"
    limit = f"{s.systolic_max}/{s.diastolic_max}"
    bp_prior = [e for e in prior if e.has_bp]
    if _bp_high(reading, s):
        first = _bp_confirmed(reading, prior, s)
        if first is not None:
            out.append(
                Finding(
                    "bp_high",
                    "alert",
                    f"BP {reading.systolic}/{reading.diastolic} mmHg above {limit}, confirmed "
                    f"(previous {first.systolic}/{first.diastolic} at {_hhmm(first.at)}, within "
                    f"{s.bp_confirm_minutes} min).",
                )
            )
        else:
            out.append(
                Finding(
                    "bp_high",
                    "alert",
                    f"BP {reading.systolic}/{reading.diastolic} mmHg above {limit}: {unconfirmed} "
                    f"(by {_hhmm(recheck_by)}).",
                    recheck_by=recheck_by,
                    confirmed=False,
                )
            )
    elif reading.has_bp and bp_prior and _bp_high(bp_prior[-1], s):
        high = bp_prior[-1]
        if _bp_confirmed(high, bp_prior[:-1], s) is None:
            late = reading.at - high.at > recheck_in
            out.append(
                Finding(
                    "bp_high",
                    "info",
                    f"Recheck BP {reading.systolic}/{reading.diastolic} mmHg within {limit}: "
                    f"resolves the unconfirmed alert on BP {high.systolic}/{high.diastolic} at "
                    f"{_hhmm(high.at)}"
                    + (f" (recheck late, due by {_hhmm(high.at + recheck_in)})." if late else "."),
                    resolves=True,
                )
            )
    hr_prior = [e for e in prior if e.heart_rate is not None]
    if _hr_high(reading, s):
        need = s.heart_rate_sustained_readings
        if _hr_confirmed(reading, prior, s):
            out.append(
                Finding(
                    "hr_high",
                    "alert",
                    f"Heart rate {reading.heart_rate}/min above {s.heart_rate_max}, sustained "
                    f"over {need} consecutive readings.",
                )
            )
        else:
            out.append(
                Finding(
                    "hr_high",
                    "alert",
                    f"Heart rate {reading.heart_rate}/min above {s.heart_rate_max}: "
                    f"{unconfirmed} (by {_hhmm(recheck_by)}; sustained means {need} "
                    "consecutive readings).",
                    recheck_by=recheck_by,
                    confirmed=False,
                )
            )
    elif (
        reading.heart_rate is not None
        and hr_prior
        and _hr_high(hr_prior[-1], s)
        and not _hr_confirmed(hr_prior[-1], hr_prior[:-1], s)
    ):
        high = hr_prior[-1]
        out.append(
            Finding(
                "hr_high",
                "info",
                f"Recheck heart rate {reading.heart_rate}/min within {s.heart_rate_max}: resolves "
                f"the unconfirmed alert on {high.heart_rate}/min at {_hhmm(high.at)}.",
                resolves=True,
            )
        )
    if reading.heart_rate is not None and reading.heart_rate < s.heart_rate_min:
        out.append(
            Finding(
                "hr_low",
                "alert",
                f"Heart rate {reading.heart_rate}/min below {s.heart_rate_min}/min.",
            )
        )
    if reading.systolic is not None and reading.systolic < s.systolic_min:
        out.append(
            Finding("sbp_low", "alert", f"Systolic {reading.systolic} mmHg below {s.systolic_min}.")
        )
    if reading.spo2 is not None and reading.spo2 < s.spo2_min:
        out.append(Finding("spo2_low", "alert", f"SpO2 {reading.spo2}% below {s.spo2_min}%."))
    if reading.resp_rate is not None and reading.resp_rate < s.resp_rate_min:
        out.append(
            Finding(
                "rr_low",
                "alert",
                f"Respiratory rate {reading.resp_rate}/min below {s.resp_rate_min}/min.",
            )
        )
    if reading.resp_rate is not None and reading.resp_rate > s.resp_rate_max:
        out.append(
            Finding(
                "rr_high",
                "alert",
                f"Respiratory rate {reading.resp_rate}/min above {s.resp_rate_max}/min.",
            )
        )
    if baseline is not None and baseline.has_bp and reading.has_bp and reading is not baseline:
        d_sys = reading.systolic - baseline.systolic
        d_dia = reading.diastolic - baseline.diastolic
        if d_sys >= s.systolic_rise or d_dia >= s.diastolic_rise:
            out.append(
                Finding(
                    "bp_rise",
                    "alert",
                    f"BP {reading.systolic}/{reading.diastolic} mmHg is +{d_sys}/+{d_dia} from "
                    f"baseline {baseline.systolic}/{baseline.diastolic} (limit "
                    f"+{s.systolic_rise} systolic or +{s.diastolic_rise} diastolic).",
                )
            )
    return out


def predose_block(baseline: Reading | None, settings: VitalsSettings = DEFAULTS) -> str | None:
    """Why dosing is blocked pending a prescriber decision, or None."""
    if baseline is None or not baseline.has_bp:
        return None
    s = settings
    if baseline.systolic > s.predose_systolic_max or baseline.diastolic > s.predose_diastolic_max:
        return (
            f"Baseline BP {baseline.systolic}/{baseline.diastolic} mmHg is above the pre-dose "
            f"limit {s.predose_systolic_max}/{s.predose_diastolic_max}: prescriber review "
            "needed (record a proceed decision with a reason, or cancel)."
        )
    return None


# ---------------------------------------------------------------------------- schedule


@dataclass(frozen=True)
class Due:
    at: datetime.datetime
    reason: str

    def as_json(self) -> dict:
        return {"due_at": self.at.isoformat(), "reason": self.reason}

    def status(self, now: datetime.datetime) -> str:
        if now > self.at:
            return "overdue"
        if now >= self.at - datetime.timedelta(minutes=5):
            return "due"
        return "upcoming"


def next_due(
    *,
    route: str,
    readings: Sequence[datetime.datetime],
    dose_start: datetime.datetime | None,
    dose_end: datetime.datetime | None,
    now: datetime.datetime,
    settings: VitalsSettings = DEFAULTS,
    recheck_by: datetime.datetime | None = None,
    recheck_reason: str = "",
) -> Due | None:
    """The next expected reading time (before dosing: the baseline, due now).

    IV: every ``dosing_interval_minutes`` during the infusion, then every
    ``after_interval_minutes``. Esketamine: at ``esketamine_bp_minutes`` after the first
    device, then every ``after_interval_minutes``. Other routes: every
    ``after_interval_minutes`` after the dose. A pending recheck of an unconfirmed alert
    (``recheck_by``) comes first whenever it is earlier than the regular reading.
    """
    due = _regular_due(
        route=route,
        readings=readings,
        dose_start=dose_start,
        dose_end=dose_end,
        now=now,
        settings=settings,
    )
    if recheck_by is not None and (due is None or recheck_by < due.at):
        return Due(recheck_by, recheck_reason or "Recheck of an unconfirmed alert")
    return due


def _regular_due(*, route, readings, dose_start, dose_end, now, settings) -> Due | None:
    s = settings
    times = sorted(readings)
    last = times[-1] if times else None
    if dose_start is None:
        if last is None:
            return Due(now, "Baseline vital signs before dosing")
        return None
    after = [t for t in times if t >= dose_start]
    last_after = after[-1] if after else None
    minutes = datetime.timedelta
    if route == IV and (dose_end is None or now < dose_end):
        base = last_after or dose_start
        return Due(base + minutes(minutes=s.dosing_interval_minutes), "During the infusion")
    if route == ESKETAMINE:
        mark = dose_start + minutes(minutes=s.esketamine_bp_minutes)
        tolerance = minutes(minutes=5)
        if not any(t >= mark - tolerance for t in after):
            return Due(mark, f"Blood pressure at {s.esketamine_bp_minutes} min (label)")
        return Due(last_after + minutes(minutes=s.after_interval_minutes), "Until discharge")
    end = dose_end or dose_start
    base = last_after if last_after is not None and last_after >= end else end
    return Due(base + minutes(minutes=s.after_interval_minutes), "After dosing, until discharge")


# ---------------------------------------------------------------------------- a timed series


@dataclass(frozen=True)
class ReadingResult:
    reading: Reading
    findings: tuple[Finding, ...]
    due: Due | None


@dataclass(frozen=True)
class SeriesResult:
    readings: tuple[ReadingResult, ...]
    #: rule -> recheck time of every unconfirmed alert still waiting for its recheck.
    pending: dict[str, datetime.datetime]
    #: The next reading due at ``now`` (or after the last reading when ``now`` is not given).
    due: Due | None

    def as_json(self) -> dict:
        return {
            "readings": [
                {
                    "at": r.reading.at.isoformat(),
                    "findings": [f.as_json() for f in r.findings],
                    "next_due": r.due.as_json() if r.due else None,
                }
                for r in self.readings
            ],
            "pending_rechecks": {k: v.isoformat() for k, v in sorted(self.pending.items())},
            "next_due": self.due.as_json() if self.due else None,
        }


def _recheck(pending: dict[str, datetime.datetime], s: VitalsSettings):
    if not pending:
        return None, ""
    rule, at = min(pending.items(), key=lambda kv: kv[1])
    what = {"bp_high": "blood pressure", "hr_high": "heart rate"}.get(rule, rule)
    return at, f"Recheck {what} within {s.bp_confirm_minutes} min (unconfirmed alert)"


def evaluate_series(
    *,
    route: str,
    dose_start: datetime.datetime | None,
    dose_end: datetime.datetime | None,
    baseline: Reading | None,
    readings: Sequence[Reading],
    settings: VitalsSettings = DEFAULTS,
    now: datetime.datetime | None = None,
) -> SeriesResult:
    """The findings of every reading of a session, in time order, and the next due reading
    after each: the one function behind the flowsheet, the API and ``ketaflow vitals``.

    ``baseline`` (which may be one of ``readings``) is the pre-dose reading a rise is measured
    from; it counts as an earlier reading when it is not in ``readings``. A reading is compared
    with the baseline only when taken after it and at or after ``dose_start``. An unconfirmed
    alert makes its recheck the next due reading until a reading settles it (confirms or
    resolves it)."""
    s = settings
    ordered = sorted(readings, key=lambda r: r.at)
    in_series = baseline is not None and any(r is baseline for r in ordered)
    context = [] if baseline is None or in_series else [baseline]
    pending: dict[str, datetime.datetime] = {}
    results: list[ReadingResult] = []
    for i, r in enumerate(ordered):
        earlier = [*(c for c in context if c.at <= r.at), *ordered[:i]]
        compare = (
            baseline is not None
            and r is not baseline
            and r.at > baseline.at
            and dose_start is not None
            and r.at >= dose_start
        )
        findings = evaluate(r, earlier, baseline if compare else None, s)
        for f in findings:
            if f.rule not in RECHECKED:
                continue
            if f.kind == "alert" and not f.confirmed:
                pending[f.rule] = f.recheck_by
            elif f.kind == "alert" or f.resolves:
                pending.pop(f.rule, None)
        recheck_by, reason = _recheck(pending, s)
        due = next_due(
            route=route,
            readings=[e.at for e in ordered[: i + 1]],
            dose_start=dose_start,
            dose_end=dose_end,
            now=r.at,
            settings=s,
            recheck_by=recheck_by,
            recheck_reason=reason,
        )
        results.append(ReadingResult(r, tuple(findings), due))
    if now is None:
        final = results[-1].due if results else None
        if not results:
            final = next_due(
                route=route,
                readings=[],
                dose_start=dose_start,
                dose_end=dose_end,
                now=dose_start or datetime.datetime.now(datetime.UTC),
                settings=s,
            )
    else:
        recheck_by, reason = _recheck(pending, s)
        final = next_due(
            route=route,
            readings=[e.at for e in ordered],
            dose_start=dose_start,
            dose_end=dose_end,
            now=now,
            settings=s,
            recheck_by=recheck_by,
            recheck_reason=reason,
        )
    return SeriesResult(tuple(results), dict(pending), final)


# ---------------------------------------------------------------------------- discharge


@dataclass(frozen=True)
class DischargeFacts:
    route: str
    now: datetime.datetime
    baseline: Reading | None
    latest: Reading | None
    moaas_latest: int | None
    walks_steadily: bool
    responsible_adult: bool
    dosing_ended: bool
    first_device_at: datetime.datetime | None = None
    open_alerts: int = 0
    extra: tuple[str, ...] = field(default_factory=tuple)


def discharge_unmet(facts: DischargeFacts, settings: VitalsSettings = DEFAULTS) -> list[str]:
    """Every unmet discharge criterion, as a sentence; empty when discharge is allowed."""
    s = settings
    unmet: list[str] = []
    if not facts.dosing_ended:
        unmet.append("Dosing has not ended.")
    b, r = facts.baseline, facts.latest
    if b is None or not b.has_bp:
        unmet.append("No baseline blood pressure to compare with.")
    elif r is None or not r.has_bp or r is b or r.at <= b.at:
        unmet.append("No blood pressure recorded after dosing.")
    else:
        if r.systolic > b.systolic + s.discharge_systolic_margin:
            unmet.append(
                f"Systolic {r.systolic} is more than {s.discharge_systolic_margin} mmHg above "
                f"baseline {b.systolic}."
            )
        if r.diastolic > b.diastolic + s.discharge_diastolic_margin:
            unmet.append(
                f"Diastolic {r.diastolic} is more than {s.discharge_diastolic_margin} mmHg above "
                f"baseline {b.diastolic}."
            )
        if (
            r.heart_rate is not None
            and b.heart_rate is not None
            and r.heart_rate > b.heart_rate + s.discharge_heart_rate_margin
        ):
            unmet.append(
                f"Heart rate {r.heart_rate} is more than {s.discharge_heart_rate_margin}/min "
                f"above baseline {b.heart_rate}."
            )
        if r.spo2 is not None and r.spo2 < s.spo2_min:
            unmet.append(f"SpO2 {r.spo2}% is below {s.spo2_min}%.")
    if facts.moaas_latest != 5:
        unmet.append(
            "MOAA/S is not 5 (responds readily to name in normal tone)"
            + ("." if facts.moaas_latest is None else f": latest {facts.moaas_latest}.")
        )
    if not facts.walks_steadily:
        unmet.append("Walking steadily not confirmed.")
    if not facts.responsible_adult:
        unmet.append("Responsible adult present not confirmed.")
    if facts.open_alerts:
        unmet.append(f"{facts.open_alerts} alert(s) not acknowledged.")
    if facts.route == ESKETAMINE:
        if facts.first_device_at is None:
            unmet.append("No first nasal device recorded.")
        else:
            elapsed = (facts.now - facts.first_device_at).total_seconds() / 60
            if elapsed < s.esketamine_monitoring_minutes:
                unmet.append(
                    f"{int(elapsed)} of at least {s.esketamine_monitoring_minutes} min since the "
                    "first device (Spravato label and REMS)."
                )
    unmet.extend(facts.extra)
    return unmet


# ---------------------------------------------------------------------------- command line

#: Routes ``ketaflow vitals evaluate`` accepts (the treatment routes of clinical.dosing).
ROUTES = (IV, "im-ketamine", "sc-ketamine", "oral-ketamine", ESKETAMINE)
_SERIES_KEYS = {"route", "dose_start", "dose_end", "baseline", "readings", "settings"}
_READING_KEYS = {"at", *MEASURES}


class SeriesError(ValueError):
    """Bad ``ketaflow vitals evaluate`` input: ``field`` names where."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


def _time(raw, name: str, *, required: bool) -> datetime.datetime | None:
    if raw is None and not required:
        return None
    if not isinstance(raw, str):
        raise SeriesError(name, "enter an ISO 8601 date-time with its UTC offset")
    try:
        value = datetime.datetime.fromisoformat(raw)
    except ValueError:
        raise SeriesError(name, f"not an ISO 8601 date-time: {raw!r}") from None
    if value.tzinfo is None:
        raise SeriesError(name, f"{raw!r} has no UTC offset (add Z or +01:00)")
    return value


def _reading(raw, name: str, *, default_at=None) -> Reading:
    if not isinstance(raw, dict):
        raise SeriesError(name, "expected an object of measurements")
    unknown = sorted(set(raw) - _READING_KEYS)
    if unknown:
        raise SeriesError(f"{name}.{unknown[0]}", f"unknown field; use {', '.join(MEASURES)}")
    values = {}
    for key in MEASURES:
        value = raw.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SeriesError(f"{name}.{key}", "enter a number")
        if key != "temperature" and value != int(value):
            raise SeriesError(f"{name}.{key}", "enter a whole number")
        values[key] = Decimal(str(value)) if key == "temperature" else int(value)
    errors = plausibility_errors(values)
    if errors:
        key, message = sorted(errors.items())[0]
        raise SeriesError(name if key == "__all__" else f"{name}.{key}", message)
    if "at" in raw or default_at is None:
        at = _time(raw.get("at"), f"{name}.at", required=True)
    else:
        at = default_at
    return Reading(at=at, **values)


def parse_series(data) -> dict:
    """Keyword arguments of :func:`evaluate_series` from the JSON input, or SeriesError."""
    if not isinstance(data, dict):
        raise SeriesError("(input)", "expected a JSON object")
    unknown = sorted(set(data) - _SERIES_KEYS)
    if unknown:
        raise SeriesError(unknown[0], f"unknown field; use {', '.join(sorted(_SERIES_KEYS))}")
    route = data.get("route")
    if route not in ROUTES:
        raise SeriesError("route", f"choose one of {', '.join(ROUTES)}")
    dose_start = _time(data.get("dose_start"), "dose_start", required=False)
    dose_end = _time(data.get("dose_end"), "dose_end", required=False)
    if dose_end is not None and (dose_start is None or dose_end < dose_start):
        raise SeriesError("dose_end", "must be at or after dose_start")
    baseline = None
    if data.get("baseline") is not None:
        baseline = _reading(data["baseline"], "baseline", default_at=dose_start)
    raw = data.get("readings")
    if not isinstance(raw, list) or not raw:
        raise SeriesError("readings", "expected a non-empty list of readings")
    if len(raw) > 1000:
        raise SeriesError("readings", "at most 1000 readings")
    readings = [_reading(item, f"readings[{i}]") for i, item in enumerate(raw)]
    overrides = data.get("settings") or {}
    if not isinstance(overrides, dict):
        raise SeriesError("settings", "expected an object of setting overrides")
    names = {f.name for f in fields(VitalsSettings)}
    for key, value in overrides.items():
        if key not in names:
            raise SeriesError(f"settings.{key}", "unknown setting")
        if isinstance(value, bool) or not isinstance(value, int):
            raise SeriesError(f"settings.{key}", "enter a whole number")
    try:
        settings = VitalsSettings(
            **{**{f.name: getattr(DEFAULTS, f.name) for f in fields(VitalsSettings)}, **overrides}
        )
    except ValueError as exc:
        first = str(exc).split(" ")[0]
        raise SeriesError(f"settings.{first}" if first in names else "settings", str(exc)) from None
    return {
        "route": route,
        "dose_start": dose_start,
        "dose_end": dose_end,
        "baseline": baseline,
        "readings": readings,
        "settings": settings,
    }


VITALS_USAGE = """usage: ketaflow vitals evaluate SERIES.json   (- reads standard input)

Evaluates a timed series of vital signs with the alert rules and reading schedule and prints
JSON: per reading its findings (code, level alert/recheck/info, message) and the next due
reading (due_at, reason). Exit 0; 2 on bad input, naming the field."""


def main(argv: Sequence[str] | None = None) -> int:
    """``ketaflow vitals evaluate SERIES.json`` (argv excludes "vitals")."""
    import json
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help", "help"):
        print(VITALS_USAGE)
        return 0
    if len(argv) != 2 or argv[0] != "evaluate":
        print(VITALS_USAGE, file=sys.stderr)
        return 2

    def fail(message: str) -> int:
        print(f"ketaflow vitals: error: {message}", file=sys.stderr)
        return 2

    try:
        if argv[1] == "-":
            text = sys.stdin.read()
        else:
            with open(argv[1], encoding="utf-8") as fh:
                text = fh.read()
    except OSError as exc:
        return fail(f"cannot read {argv[1]}: {exc.strerror or exc}")
    try:
        data = json.loads(text)
    except ValueError as exc:
        return fail(f"(input): not JSON ({exc})")
    try:
        kwargs = parse_series(data)
    except SeriesError as exc:
        return fail(str(exc))
    result = evaluate_series(**kwargs)
    out = {"route": kwargs["route"], **result.as_json()}
    print(json.dumps(out, indent=2))
    return 0
