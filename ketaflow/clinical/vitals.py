"""Vital signs on treatment day: plausibility limits, alert rules, reading schedule, discharge.

Pure Python (no Django). Every threshold lives in :class:`VitalsSettings`, whose defaults come
from ``clinical-reference.md`` (sections 3 and 6) or, where the reference gives no value, are
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
    "clinical-reference.md section 6: input ranges are plausibility limits chosen for data "
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

_SEC3 = "clinical-reference.md section 3"
SOURCES: dict[str, str] = {
    "systolic_max": f"{_SEC3}: default alert rule systolic > 180 (hypertension protocols call "
    "> 180/110 severe), confirmed with a repeat within 5 min.",
    "diastolic_max": f"{_SEC3}: default alert rule diastolic > 110, confirmed with a repeat.",
    "bp_confirm_minutes": f"{_SEC3}: confirm with a repeat reading within 5 min.",
    "heart_rate_max": f"{_SEC3}: default alert rule HR > 120 sustained (an emergency-department "
    "ketamine trial excluded HR > 120).",
    "heart_rate_sustained_readings": "ketaflow default (the reference does not define "
    "'sustained'): two consecutive readings above the limit.",
    "spo2_min": f"{_SEC3}: default alert rule SpO2 < 92%.",
    "resp_rate_min": f"{_SEC3}: default alert rule RR < 10.",
    "systolic_rise": "Issue 7 default: a rise from the patient's baseline of 40 mmHg systolic "
    "or more (the reference reports mean rises of +3 to +16 mmHg).",
    "diastolic_rise": "Issue 7 default: a rise from baseline of 25 mmHg diastolic or more.",
    "predose_systolic_max": f"{_SEC3}: the Spravato label's example, baseline above 140 "
    "systolic needs the prescriber to weigh the rise against the benefit.",
    "predose_diastolic_max": f"{_SEC3}: the label's example, above 90 diastolic.",
    "dosing_interval_minutes": f"{_SEC3}: one IV series measured BP every 10 min during the "
    "infusion (issue 7: every 10-15 min).",
    "esketamine_bp_minutes": f"{_SEC3}: Spravato, blood pressure about 40 min after dosing.",
    "after_interval_minutes": f"{_SEC3}: every 15 min after the infusion until discharge.",
    "discharge_systolic_margin": "ketaflow default (the reference gives no margin): systolic "
    "within 20 mmHg above baseline.",
    "discharge_diastolic_margin": "ketaflow default (no reference value): diastolic within "
    "10 mmHg above baseline.",
    "discharge_heart_rate_margin": "ketaflow default (no reference value): heart rate within "
    "20 /min above baseline.",
    "esketamine_monitoring_minutes": f"{_SEC3}: Spravato label and REMS, monitor at least 2 "
    "hours (120 min) after dosing; cannot be set lower.",
    "escalation_minutes": "ketaflow default (no reference value): an unacknowledged alert is "
    "escalated to the prescriber on duty after 5 min.",
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
    """``kind`` "alert" raises an alert; "recheck" asks for a repeat reading (not yet an alert)."""

    rule: str
    kind: str
    message: str
    recheck_by: datetime.datetime | None = None


RULES = {
    "bp_high": "Blood pressure above the alert limit, confirmed by a repeat",
    "hr_high": "Heart rate above the limit, sustained",
    "spo2_low": "SpO2 below the limit",
    "rr_low": "Respiratory rate below the limit",
    "bp_rise": "Blood pressure risen from the patient's baseline",
}


def _bp_high(r: Reading, s: VitalsSettings) -> bool:
    return r.has_bp and (r.systolic > s.systolic_max or r.diastolic > s.diastolic_max)


def evaluate(
    reading: Reading,
    earlier: Sequence[Reading],
    baseline: Reading | None,
    settings: VitalsSettings = DEFAULTS,
) -> list[Finding]:
    """Findings for ``reading`` given the session's ``earlier`` readings (any order).

    - BP above systolic_max or diastolic_max: an alert when an earlier reading within
      ``bp_confirm_minutes`` before it was also above; otherwise a recheck prompt.
    - HR above heart_rate_max in this and the previous (N-1) readings that have a heart rate.
    - SpO2 below spo2_min, RR below resp_rate_min: at once.
    - Rise from baseline of at least systolic_rise or diastolic_rise: at once.
    """
    s = settings
    out: list[Finding] = []
    prior = sorted(
        (e for e in earlier if e.at <= reading.at and e is not reading), key=lambda e: e.at
    )
    if _bp_high(reading, s):
        window = datetime.timedelta(minutes=s.bp_confirm_minutes)
        confirmed = [e for e in prior if reading.at - e.at <= window and _bp_high(e, s)]
        limit = f"{s.systolic_max}/{s.diastolic_max}"
        if confirmed:
            first = confirmed[-1]
            out.append(
                Finding(
                    "bp_high",
                    "alert",
                    f"BP {reading.systolic}/{reading.diastolic} mmHg above {limit}, confirmed "
                    f"(previous {first.systolic}/{first.diastolic} within "
                    f"{s.bp_confirm_minutes} min).",
                )
            )
        else:
            out.append(
                Finding(
                    "bp_high",
                    "recheck",
                    f"BP {reading.systolic}/{reading.diastolic} mmHg above {limit}: repeat "
                    f"within {s.bp_confirm_minutes} min to confirm.",
                    recheck_by=reading.at + window,
                )
            )
    if reading.heart_rate is not None and reading.heart_rate > s.heart_rate_max:
        need = s.heart_rate_sustained_readings
        hr_prior = [e.heart_rate for e in prior if e.heart_rate is not None]
        run = [reading.heart_rate, *reversed(hr_prior)][:need]
        if len(run) == need and all(v > s.heart_rate_max for v in run):
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
                    "recheck",
                    f"Heart rate {reading.heart_rate}/min above {s.heart_rate_max}: repeat to "
                    f"see whether it is sustained ({need} consecutive readings).",
                )
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
) -> Due | None:
    """The next expected reading time (before dosing: the baseline, due now).

    IV: every ``dosing_interval_minutes`` during the infusion, then every
    ``after_interval_minutes``. Esketamine: at ``esketamine_bp_minutes`` after the first
    device, then every ``after_interval_minutes``. Other routes: every
    ``after_interval_minutes`` after the dose.
    """
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
