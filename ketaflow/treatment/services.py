"""Treatment-day writes. Each is one transaction with one audit event; the session row is
locked (SELECT ... FOR NO KEY UPDATE OF the session only: see "Lock order" in ARCHITECTURE.md)
so concurrent writers serialise; the state machine lives here.

A signed session is read-only: every write except co-signing, addenda and the REMS form
raises :class:`SignedRecordError` (403 in the API, with the reason)."""

import contextlib
import contextvars
import datetime
import inspect
import logging
from decimal import Decimal, InvalidOperation

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.http import Http404

from ketaflow.accounts.permissions import can, require_permission, roles_can
from ketaflow.audit import services as audit
from ketaflow.clinical import dosing
from ketaflow.clinical import vitals as rules
from ketaflow.tenancy.models import Membership
from ketaflow.treatment import rems
from ketaflow.treatment.models import (
    Addendum,
    AdministrationRecord,
    DoseEvent,
    RemsForm,
    SessionAlert,
    SessionEvent,
    SessionMeasure,
    SessionNote,
    StateChange,
    TreatmentSession,
    TreatmentSettings,
    VitalSign,
    Waste,
)

log = logging.getLogger(__name__)
S = TreatmentSession.State
SYSTEM = "system:treatment"

SIDE_EFFECTS = [
    "dissociation",
    "dizziness",
    "nausea",
    "vomiting",
    "sedation",
    "vertigo",
    "numbness",
    "anxiety",
    "headache",
    "blurred vision",
    "feeling drunk",
    "euphoria",
    "raised blood pressure",
    "raised heart rate",
    "other",
]
SEVERITIES = ["mild", "moderate", "severe"]
OUTCOMES = ["resolved", "resolving", "ongoing", "transferred", "unknown"]

#: Allowed moves (target -> allowed sources). Cancel and stop-early are separate services.
TRANSITIONS = {
    S.PRE_ASSESSMENT: {S.CHECKED_IN, S.PRE_ASSESSMENT},
    S.DOSING: {S.PRE_ASSESSMENT},
    S.MONITORING: {S.DOSING},
    S.RECOVERY: {S.MONITORING},
    S.READY: {S.MONITORING, S.RECOVERY, S.READY},
    S.DISCHARGED: {S.READY},
    S.SIGNED: {S.DISCHARGED, S.STOPPED},
    S.CANCELLED: {S.CHECKED_IN, S.PRE_ASSESSMENT},
    S.STOPPED: {S.DOSING, S.MONITORING, S.RECOVERY, S.READY},
}


class SignedRecordError(PermissionDenied):
    pass


class AlreadyDone(ValidationError):
    """A second submit of something done once (check-in, discharge, acknowledgement): API 409."""


class AlreadyAcknowledged(AlreadyDone):
    pass


_AS_OF: contextvars.ContextVar[datetime.datetime | None] = contextvars.ContextVar(
    "treatment_as_of", default=None
)


def now() -> datetime.datetime:
    return _AS_OF.get() or datetime.datetime.now(datetime.UTC)


@contextlib.contextmanager
def charted_as_of(at: datetime.datetime):
    """Chart as if it were ``at`` (synthetic demo histories only: a past KAP cycle is
    charted through the same services, with their rules, as a live one)."""
    token = _AS_OF.set(at)
    try:
        yield
    finally:
        _AS_OF.reset(token)


def settings_for(clinic) -> TreatmentSettings:
    row = TreatmentSettings.objects.filter(clinic=clinic).first()
    return row or TreatmentSettings(clinic=clinic)


def _locked(session) -> TreatmentSession:
    return (
        TreatmentSession.objects.select_for_update(no_key=True, of=("self",))
        .select_related("clinic", "patient")
        .get(pk=session.pk)
    )


def _writable(session) -> TreatmentSession:
    s = _locked(session)
    if s.state == S.SIGNED:
        raise SignedRecordError(
            f"Session {s.pk} is signed: its record is read-only. Add a signed addendum to the "
            "note instead."
        )
    return s


def _move(s: TreatmentSession, to: str, actor, reason: str = "", at=None) -> None:
    if s.state not in TRANSITIONS[to]:
        raise ValidationError(
            {
                "state": [
                    f"A session that is {s.get_state_display().lower()} cannot become "
                    f"{S(to).label.lower()}."
                ]
            }
        )
    at = now()  # when the change was recorded (clinical times such as dose start are separate)
    if s.state != to:
        StateChange.objects.create(
            clinic=s.clinic,
            session=s,
            from_state=s.state,
            to_state=to,
            reason=reason,
            actor=actor,
            at=at,
        )
    s.state = to
    s.state_changed_at = at
    if reason:
        s.state_reason = reason


def _reason(text, field="reason", minimum=5) -> str:
    text = (text or "").strip()
    if len(text) < minimum:
        raise ValidationError({field: [f"Give the reason (at least {minimum} characters)."]})
    return text[:4000]


def _when(value, field="at", session=None) -> datetime.datetime:
    """A charted time: now when not given; never in the future (beyond the clock skew) and,
    for a session, not earlier than a day before its check-in (bounds.VISIT_LOOKBACK: readings
    taken in the waiting room may be entered after check-in, a visit lasts hours) nor before
    2000-01-01. A year-1 time stored here would break the session page for good."""
    from django.utils import timezone

    from ketaflow.web import bounds

    if value in (None, ""):
        return now()
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError({field: ["Enter a date and time."]}) from None
    if not isinstance(value, datetime.datetime):
        raise ValidationError({field: ["Enter a date and time."]})
    if timezone.is_naive(value):
        tz = session.clinic.tz if session is not None else datetime.UTC
        value = value.replace(tzinfo=tz)
    floor = bounds.clinical_floor()
    if session is not None and session.opened_at is not None:
        floor = max(floor, session.opened_at - bounds.VISIT_LOOKBACK)
    try:
        bounds.check_past_datetime(value, not_before=floor, what="The time")
    except ValueError as exc:
        raise ValidationError({field: [f"{exc}."]}) from None
    return value


# ---------------------------------------------------------------------------- opening


def _lock_chair(appointment):
    """The visit's chair (as it is now in the database), locked; None for a visit without
    one."""
    from ketaflow.scheduling.models import Appointment
    from ketaflow.tenancy.models import Chair

    chair_id = (
        Appointment.objects.filter(pk=appointment.pk).values_list("chair_id", flat=True).first()
    )
    if chair_id is None:
        return None
    return Chair.objects.select_for_update(no_key=True, of=("self",)).get(pk=chair_id)


def _refuse_occupied(chair, appointment) -> None:
    """Refuse checking a patient into a chair another active session holds, naming the
    chair and the patient there."""
    there = (
        TreatmentSession.objects.filter(chair=chair, state__in=TreatmentSession.ACTIVE)
        .select_related("patient")
        .order_by("opened_at", "id")
        .first()
    )
    if there is None:
        return
    who = there.patient
    raise ValidationError(
        {
            "chair": [
                f"{chair.name} is occupied: {who.display_name} (MRN {who.mrn}, born "
                f"{who.date_of_birth:%Y-%m-%d}) is there, session {there.pk}, "
                f"{there.get_state_display().lower()}. Discharge, cancel or stop that session, "
                f"or move this visit to another chair, before checking "
                f"{appointment.patient.display_name} in."
            ]
        }
    )


@transaction.atomic
def open_session(*, appointment, actor) -> TreatmentSession:
    """Check the patient in from the day's dosing appointment."""
    from ketaflow.scheduling.models import Appointment

    require_permission(actor, "vitals.chart", appointment.clinic)
    if not appointment.type.route:
        raise ValidationError({"appointment": ["Only a dosing visit opens a treatment session."]})
    # One patient per chair at a time. The chair row is locked first (lock order: chairs
    # before the session and the appointment, ARCHITECTURE.md "Lock order"): a second
    # check-in into the same chair waits here, then sees the first one's active session.
    chair = _lock_chair(appointment)
    # The appointment is locked before its session exists: a second check-in of the same
    # visit waits here, then finds the first one's session.
    appointment = Appointment.objects.select_for_update(no_key=True, of=("self",)).get(
        pk=appointment.pk
    )
    if appointment.chair_id != (chair.pk if chair else None):
        raise ValidationError(
            {"chair": ["The visit's chair changed while checking in: open the day list again."]}
        )
    opened = TreatmentSession.objects.filter(appointment=appointment).first()
    if opened is not None:
        raise AlreadyDone(
            {
                "appointment": [
                    f"This visit already has a session ({opened.pk}): checked in by "
                    f"{_fmt(opened.opened_by, opened.opened_at, appointment.clinic)}."
                ]
            }
        )
    if appointment.status != "booked":
        raise ValidationError({"appointment": ["Only a booked visit can be checked in."]})
    if chair is not None:
        _refuse_occupied(chair, appointment)
    version = appointment.plan.current if appointment.plan_id else None
    at = now()
    s = TreatmentSession.objects.create(
        clinic=appointment.clinic,
        appointment=appointment,
        patient=appointment.patient,
        plan_version=version,
        route=version.route if version else appointment.type.route,
        location=appointment.location,
        chair=appointment.chair,
        state=S.CHECKED_IN,
        opened_by=actor,
        opened_at=at,
        state_changed_at=at,
    )
    StateChange.objects.create(
        clinic=s.clinic, session=s, from_state="", to_state=S.CHECKED_IN, actor=actor, at=at
    )
    audit.record(
        action="create",
        clinic=s.clinic,
        actor=actor,
        patient=s.patient,
        obj=s,
        detail={"appointment": appointment.pk, "route": s.route},
    )
    return s


# ---------------------------------------------------------------------------- pre-assessment

CHECKLIST = {
    "food_hours": "Hours since food",
    "liquid_minutes": "Minutes since liquids",
    "ride_home": "Ride home arranged",
    "medication_changes": "Medication changes since last visit",
    "new_symptoms": "New symptoms",
    "pregnancy": "Pregnancy status",
}
PREGNANCY = ["not applicable", "not pregnant", "pregnant", "unknown"]


def consent_valid_for(patient, route: str) -> bool | None:
    """True/False from the intake app (signed, not withdrawn consent for the route); None
    when the intake app is not installed."""
    from django.apps import apps

    if not apps.is_installed("ketaflow.intake"):
        return None
    from ketaflow.intake import selectors as intake

    return intake.signed_consent(patient, route) is not None


def consent_valid(session) -> bool | None:
    return consent_valid_for(session.patient, session.route)


def todays_dose(session, weight_kg) -> dosing.DoseCalculation:
    version = session.plan_version
    if version is None:
        raise ValidationError({"plan": ["The visit has no signed treatment plan to dose from."]})
    from ketaflow.plans import services as plans

    minutes = (version.protocol_data or {}).get("infusion_minutes")
    if version.route == dosing.ESKETAMINE:
        return plans.calculate(
            clinic=session.clinic, route=version.route, dose_value=version.dose_mg
        )
    return plans.calculate(
        clinic=session.clinic,
        route=version.route,
        dose_value=version.dose_value,
        weight_kg=weight_kg,
        minutes=minutes,
        override_reason=version.override_reason,
    )


@transaction.atomic
def save_pre_assessment(*, session, actor, data: dict) -> TreatmentSession:
    require_permission(actor, "vitals.chart", session.clinic)
    s = _writable(session)
    if s.state not in (S.CHECKED_IN, S.PRE_ASSESSMENT):
        raise ValidationError({"state": ["The pre-assessment is closed once dosing starts."]})
    errors: dict[str, list[str]] = {}
    checklist = {}
    for key in ("food_hours", "liquid_minutes"):
        raw = str(data.get(key, "") or "").strip()
        if raw == "":
            errors[key] = [f"{CHECKLIST[key]}: enter a number."]
            continue
        try:
            value = _decimal(raw, key, f"{CHECKLIST[key]}: enter a number")
        except ValidationError as exc:
            errors.update(exc.message_dict)
            continue
        if value < 0 or value > 10000:
            errors[key] = [f"{CHECKLIST[key]}: enter a value from 0."]
        checklist[key] = str(value)
    ride = str(data.get("ride_home", "")).lower() in ("1", "true", "on", "yes")
    checklist["ride_home"] = ride
    if not ride:
        errors["ride_home"] = ["A ride home must be arranged (no driving until the next day)."]
    for key in ("medication_changes", "new_symptoms"):
        checklist[key] = str(data.get(key, "") or "").strip()[:2000]
    pregnancy = data.get("pregnancy") or ""
    if pregnancy not in PREGNANCY:
        errors["pregnancy"] = [f"Choose one of: {', '.join(PREGNANCY)}."]
    checklist["pregnancy"] = pregnancy
    weight_raw = str(data.get("weight_kg", "") or "").strip()
    weight = None
    if s.route != dosing.ESKETAMINE:
        try:
            weight = _decimal(weight_raw, "weight_kg", "Enter today's weight in kg (25-350)")
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    calc = todays_dose(s, weight)
    if s.route == dosing.ESKETAMINE:
        food = Decimal(checklist["food_hours"])
        liquid = Decimal(checklist["liquid_minutes"])
        checklist["fasting_ok"] = food >= 2 and liquid >= 30
    checklist["consent_valid"] = consent_valid(s)
    if checklist["consent_valid"] is False:
        raise ValidationError(
            {"consent": ["No signed, valid consent for this route: collect consent first."]}
        )
    s.checklist = checklist
    s.weight_kg = weight
    s.calculation = calc.as_dict()
    _move(s, S.PRE_ASSESSMENT, actor)
    s.save()
    audit.record(
        action="update",
        clinic=s.clinic,
        actor=actor,
        patient=s.patient,
        obj=s,
        detail={"pre_assessment": True, "dose_mg": s.calculation.get("dose_mg")},
    )
    return s


@transaction.atomic
def decide_proceed(*, session, actor, reason) -> TreatmentSession:
    """The prescriber proceeds despite a pre-dose block, with a reason."""
    require_permission(actor, "treatment.prescriber_decision", session.clinic)
    s = _writable(session)
    if s.state not in (S.CHECKED_IN, S.PRE_ASSESSMENT):
        raise ValidationError({"state": ["A proceed decision is made before dosing."]})
    s.proceed_reason = _reason(reason)
    s.proceed_by = actor
    s.proceed_at = now()
    s.save(update_fields=["proceed_reason", "proceed_by", "proceed_at"])
    audit.record(
        action="update",
        clinic=s.clinic,
        actor=actor,
        patient=s.patient,
        obj=s,
        detail={"proceed_decision": True},
    )
    return s


# ---------------------------------------------------------------------------- vitals


def _readings(s) -> list[VitalSign]:
    return list(VitalSign.objects.filter(session=s).order_by("at", "id"))


def baseline_of(vitals: list[VitalSign]) -> VitalSign | None:
    flagged = [v for v in vitals if v.is_baseline and v.systolic is not None]
    return flagged[-1] if flagged else None


def _decimal(raw, field: str, message: str) -> Decimal:
    """A finite decimal within the shared digit bounds (bounds.check_decimal), or a field error
    naming the rule: NaN, infinities and ``1E+999999999`` never reach a comparison or a column."""
    from ketaflow.web import bounds

    try:
        return bounds.check_decimal(Decimal(str(raw).strip()), what=field)
    except InvalidOperation:
        raise ValidationError({field: [message]}) from None
    except ValueError as exc:
        raise ValidationError({field: [f"{message} ({exc})."]}) from None


def _int(value, field):
    if value in (None, ""):
        return None
    return int(_decimal(value, field, "Enter a whole number"))


def _clean_vitals(values: dict) -> dict:
    out = {k: _int(values.get(k), k) for k in rules.MEASURES if k != "temperature"}
    t = values.get("temperature")
    if t in (None, ""):
        out["temperature"] = None
    else:
        t = _decimal(t, "temperature", "Enter a temperature like 36.8")
        out["temperature"] = t.quantize(Decimal("0.1"))
    errors = rules.plausibility_errors(out)
    if errors:
        raise ValidationError({k: [v] for k, v in errors.items()})
    return out


def _vitals_when(value, s) -> datetime.datetime:
    """A reading's time: not before the check-in (a reading taken earlier, in the waiting room,
    is charted at the check-in) and not in the future (the shared bounds of ``_when``)."""
    at = _when(value, session=s)
    if s.opened_at is not None and at < s.opened_at:
        raise ValidationError(
            {
                "at": [
                    "A reading cannot be timed before the check-in at "
                    f"{s.opened_at.astimezone(s.clinic.tz):%Y-%m-%d %H:%M}."
                ]
            }
        )
    return at


def _series_findings(s, cfg, vitals, entry) -> list:
    """The findings of ``entry`` by the one series function (clinical.vitals.evaluate_series)
    over the session's readings up to it."""
    readings = {v.pk: v.as_reading() for v in vitals if v.at <= entry.at}
    readings[entry.pk] = entry.as_reading()
    base = baseline_of([v for v in vitals if v.pk != entry.pk]) if not entry.is_baseline else None
    result = rules.evaluate_series(
        route=s.route,
        dose_start=s.dose_started_at,
        dose_end=s.dose_ended_at,
        baseline=readings.get(base.pk) if base is not None else None,
        readings=list(readings.values()),
        settings=cfg,
    )
    mine = readings[entry.pk]
    return next(list(r.findings) for r in result.readings if r.reading is mine)


def _store_reading(s, actor, values, at, cfg, vitals, open_alerts) -> tuple[VitalSign, list]:
    """Store one reading and apply its findings to the session's alerts: an alert at once
    (unconfirmed ones with their recheck time), a confirming recheck upgrades the open
    unconfirmed alert, a normal recheck resolves it with both readings on record."""
    at = _vitals_when(at, s)
    clean = _clean_vitals(values)
    is_baseline = s.dose_started_at is None and clean["systolic"] is not None
    entry = VitalSign.objects.create(
        clinic=s.clinic, session=s, at=at, recorded_by=actor, is_baseline=is_baseline, **clean
    )
    findings = _series_findings(s, cfg, vitals, entry)
    raised, changed = [], []
    t = now()
    St = SessionAlert.Status
    for f in findings:
        current = open_alerts.get(f.rule)
        if f.kind == "info" and f.resolves:
            if current is not None and current.status == St.UNCONFIRMED:
                current.status = St.RESOLVED
                current.recheck_reading = entry
                current.acknowledged_at = t
                current.acknowledged_by = actor
                current.action = SessionAlert.Action.OBSERVE
                current.note = f.message
                changed.append(current)
                del open_alerts[f.rule]
            continue
        if f.kind != "alert":
            continue
        if current is not None:
            if f.confirmed and current.status == St.UNCONFIRMED:
                current.status = St.CONFIRMED
                current.recheck_reading = entry
                current.message = f.message
                changed.append(current)
            continue
        alert = SessionAlert(
            clinic=s.clinic,
            session=s,
            patient=s.patient,
            reading=entry,
            rule=f.rule,
            message=f.message,
            created_at=t,
            status=St.CONFIRMED if f.confirmed else St.UNCONFIRMED,
            recheck_by=f.recheck_by,
        )
        raised.append(alert)
        open_alerts[f.rule] = alert
    if raised:
        SessionAlert.objects.bulk_create(raised)
    for alert in changed:
        alert.save(
            update_fields=[
                "status",
                "recheck_reading",
                "message",
                "acknowledged_at",
                "acknowledged_by",
                "action",
                "note",
            ]
        )
    vitals.append(entry)
    vitals.sort(key=lambda v: (v.at, v.pk))
    entry.findings = findings
    entry.changed = changed
    return entry, raised


def _vitals_context(s):
    cfg = settings_for(s.clinic).as_rules()
    vitals = _readings(s)
    open_alerts = {
        a.rule: a
        for a in SessionAlert.objects.filter(session=s, acknowledged_at__isnull=True)
        .select_for_update(no_key=True, of=("self",))
        .order_by("pk")  # lock order: a record's rows by id (ARCHITECTURE.md)
    }
    return cfg, vitals, open_alerts


def _check_charting_state(s):
    if s.state in (S.CANCELLED, S.DISCHARGED):
        raise ValidationError({"state": ["This session is closed: no more vitals."]})


@transaction.atomic
def record_vitals(*, session, actor, values: dict, at=None) -> VitalSign:
    """Store one reading and check it against the clinic's alert rules and the baseline."""
    require_permission(actor, "vitals.chart", session.clinic)
    s = _writable(session)
    _check_charting_state(s)
    cfg, vitals, open_alerts = _vitals_context(s)
    entry, raised = _store_reading(s, actor, values, at, cfg, vitals, open_alerts)
    _after_vitals(s, vitals)
    audit.record(
        action="create",
        clinic=s.clinic,
        actor=actor,
        patient=s.patient,
        obj=entry,
        detail={
            "session": s.pk,
            "alerts": [a.rule for a in raised],
            "alerts_settled": [{"alert": a.pk, "status": a.status} for a in entry.changed],
        },
    )
    entry.raised = raised
    return entry


@transaction.atomic
def record_vitals_batch(*, session, actor, readings: list[dict]) -> list[VitalSign]:
    """Several readings (e.g. from a monitor) in one transaction; all or none."""
    require_permission(actor, "vitals.chart", session.clinic)
    s = _writable(session)
    _check_charting_state(s)
    if not readings or len(readings) > 100:
        raise ValidationError({"readings": ["Send 1 to 100 readings."]})
    cfg, vitals, open_alerts = _vitals_context(s)
    stored = []
    for index, item in enumerate(sorted(readings, key=lambda r: r.get("at") or now())):
        values = {k: item.get(k) for k in rules.MEASURES}
        try:
            entry, raised = _store_reading(
                s, actor, values, item.get("at"), cfg, vitals, open_alerts
            )
        except ValidationError as exc:
            raise ValidationError(
                {f"readings[{index}].{k}": v for k, v in exc.message_dict.items()}
            ) from None
        entry.raised = raised
        stored.append(entry)
    _after_vitals(s, vitals)
    audit.record(
        action="create",
        clinic=s.clinic,
        actor=actor,
        patient=s.patient,
        obj=s,
        detail={
            "vitals": [e.pk for e in stored],
            "alerts": sum(len(e.raised) for e in stored),
            "alerts_settled": [
                {"alert": a.pk, "status": a.status} for e in stored for a in e.changed
            ],
        },
    )
    return stored


def _after_vitals(s, vitals):
    last = max(v.at for v in vitals)
    if s.last_vitals_at != last:
        s.last_vitals_at = last
        s.save(update_fields=["last_vitals_at"])


# ---------------------------------------------------------------------------- alerts


def _fmt(user, at, clinic) -> str:
    who = user.get_full_name() if user else "someone"
    return f"{who} at {at.astimezone(clinic.tz):%H:%M}"


@transaction.atomic
def acknowledge_alert(*, alert_id, clinic, actor, action: str, note: str = "") -> SessionAlert:
    """Acknowledge with the action taken. Exactly one acknowledgement per alert."""
    require_permission(actor, "alerts.respond", clinic)
    alert = (
        SessionAlert.objects.for_clinic(clinic)
        .select_for_update(no_key=True, of=("self",))
        .select_related("session", "patient")
        .filter(pk=alert_id)
        .first()
    )
    if alert is None:
        raise Http404("No such alert in this clinic.")
    if alert.acknowledged_at is not None:
        raise AlreadyAcknowledged(
            {
                "alert": [
                    "Already acknowledged by "
                    f"{_fmt(alert.acknowledged_by, alert.acknowledged_at, clinic)} "
                    f"({alert.get_action_display().lower()})."
                ]
            }
        )
    if action not in SessionAlert.Action.values:
        raise ValidationError(
            {"action": ["Choose the action taken: " + ", ".join(SessionAlert.Action.labels) + "."]}
        )
    alert.acknowledged_by = actor
    alert.acknowledged_at = now()
    alert.action = action
    alert.note = (note or "").strip()[:2000]
    alert.save(update_fields=["acknowledged_by", "acknowledged_at", "action", "note"])
    audit.record(
        action="update",
        clinic=clinic,
        actor=actor,
        patient=alert.patient,
        obj=alert,
        detail={"acknowledged": True, "rule": alert.rule, "action": action},
    )
    return alert


def prescribers_on_duty(clinic) -> list[str]:
    """Emails of active members who may make prescriber decisions (the prescriber on duty)."""
    members = Membership.objects.filter(clinic=clinic, is_active=True).select_related("user")
    return sorted(
        m.user.email for m in members if roles_can(m.roles, "treatment.prescriber_decision")
    )


@transaction.atomic
def escalate_alert(*, alert_id, missed_recheck: bool = False) -> SessionAlert | None:
    """Escalate an open alert to the prescriber on duty (email and audit), once. With
    ``missed_recheck`` the alert is unconfirmed and its recheck was not taken in time: that is
    escalated once too, even when the alert was acknowledged or escalated before."""
    alert = (
        SessionAlert.objects.select_for_update(no_key=True, of=("self",))
        .select_related("clinic", "patient", "session__chair")
        .get(pk=alert_id)
    )
    if missed_recheck:
        if alert.status != SessionAlert.Status.UNCONFIRMED or alert.recheck_missed_at is not None:
            return None
    elif alert.acknowledged_at is not None or alert.escalated_at is not None:
        return None
    recipients = prescribers_on_duty(alert.clinic)
    t = now()
    fields = []
    if missed_recheck:
        alert.recheck_missed_at = t
        fields.append("recheck_missed_at")
    if alert.escalated_at is None:
        alert.escalated_at = t
        alert.escalated_to = recipients
        fields += ["escalated_at", "escalated_to"]
    alert.save(update_fields=fields)
    if recipients:
        chair = alert.session.chair.name if alert.session.chair_id else "no chair"
        if missed_recheck:
            subject = f"[ketaflow] Recheck not taken: patient {alert.patient.mrn}"
            why = (
                "The recheck of an unconfirmed alert was due by "
                f"{alert.recheck_by.astimezone(alert.clinic.tz):%H:%M} and was not taken"
            )
        else:
            subject = f"[ketaflow] Unacknowledged treatment alert: patient {alert.patient.mrn}"
            why = "Not acknowledged after the clinic's delay"
        try:
            send_mail(
                subject=subject,
                message=(
                    f"{why} at {alert.clinic.name}.\n"
                    f"Patient MRN {alert.patient.mrn}, {chair}: {alert.message}\n"
                    "Open the chair board and acknowledge with the action taken.\n"
                ),
                from_email=None,
                recipient_list=recipients,
            )
        except Exception:  # the alert stays open and visible; mail failure is logged
            log.exception("could not email escalation of treatment alert %s", alert.pk)
    audit.record(
        action="update",
        clinic=alert.clinic,
        actor_label=SYSTEM,
        patient=alert.patient,
        obj=alert,
        detail={
            "escalated": True,
            "recipients": len(recipients),
            **({"missed_recheck": True} if missed_recheck else {}),
        },
    )
    return alert


def escalate_due(at=None) -> int:
    """Escalate every open alert older than its clinic's delay, and every unconfirmed alert
    whose recheck was not taken by its time (run every minute: ``treatment_tick``)."""
    at = at or now()
    done = 0
    # Missed rechecks first: their one message says why (and counts as the escalation).
    missed = SessionAlert.objects.filter(
        status=SessionAlert.Status.UNCONFIRMED,
        recheck_missed_at__isnull=True,
        recheck_by__lt=at,
    ).values_list("pk", flat=True)
    for pk in list(missed):
        done += escalate_alert(alert_id=pk, missed_recheck=True) is not None
    rows = list(
        SessionAlert.objects.filter(
            acknowledged_at__isnull=True, escalated_at__isnull=True
        ).values_list("pk", "clinic_id", "created_at")
    )
    delays = {
        t.clinic_id: t.escalation_minutes
        for t in TreatmentSettings.objects.filter(clinic_id__in={c for _, c, _ in rows})
    }
    for pk, cid, created in rows:
        delay = delays.get(cid, rules.DEFAULTS.escalation_minutes)
        if at - created >= datetime.timedelta(minutes=delay):
            done += escalate_alert(alert_id=pk) is not None
    return done


# ---------------------------------------------------------------------------- measures


@transaction.atomic
def record_measure(*, session, actor, instrument: str, answers: dict, timing: str):
    """MOAA/S, CADSS, BPRS positive or a pre-treatment questionnaire, through the measures
    app (its audit event is this write's one event)."""
    from ketaflow.measures import services as measures

    require_permission(actor, "vitals.chart", session.clinic)
    s = _writable(session)
    if timing not in ("pre", "post"):
        raise ValidationError({"timing": ["Choose pre or post dose."]})
    if s.state in (S.CANCELLED, S.DISCHARGED):
        raise ValidationError({"state": ["This session is closed."]})
    extra = {}
    if "plan" in inspect.signature(measures.record_administration).parameters:
        extra["plan"] = s.plan_version.plan_id if s.plan_version_id else None
    adm = measures.record_administration(
        patient=s.patient, actor=actor, instrument=instrument, answers=answers, **extra
    )
    SessionMeasure.objects.create(
        clinic=s.clinic,
        session=s,
        administration=adm,
        instrument=adm.instrument,
        timing=timing,
        total=adm.total,
        at=adm.taken_at,
    )
    return adm


# ---------------------------------------------------------------------------- dosing


def predose_problems(s, vitals=None, measures=None) -> list[str]:
    """What still stands between this session and dosing (empty: dosing may start)."""
    vitals = _readings(s) if vitals is None else vitals
    measures = list(s.measures.all()) if measures is None else measures
    problems = []
    if s.state != S.PRE_ASSESSMENT:
        problems.append("Complete the pre-assessment checklist.")
    if s.route == dosing.ESKETAMINE and s.checklist and s.checklist.get("fasting_ok") is False:
        problems.append(
            "Fasting: no food for 2 h and no liquids for 30 min before esketamine (label)."
        )
    base = baseline_of(vitals)
    if base is None:
        problems.append("Record baseline vital signs (blood pressure).")
    if not any(m.instrument == "moaas" and m.timing == "pre" for m in measures):
        problems.append("Record the pre-dose MOAA/S.")
    wanted = _pre_questionnaires(s)
    for code in wanted:
        if not any(m.instrument == code and m.timing == "pre" for m in measures):
            problems.append(f"The plan asks for a pre-treatment {code.upper()}.")
    if base is not None and not s.proceed_at:
        block = rules.predose_block(base.as_reading(), settings_for(s.clinic).as_rules())
        if block:
            problems.append(block)
    return problems


def _pre_questionnaires(s) -> list[str]:
    data = (s.plan_version.protocol_data or {}) if s.plan_version_id else {}
    return [c for c in data.get("pre_treatment_measures", []) if isinstance(c, str)]


@transaction.atomic
def start_dosing(*, session, actor, data: dict) -> AdministrationRecord:
    require_permission(actor, "vitals.chart", session.clinic)
    s = _writable(session)
    problems = predose_problems(s)
    if problems:
        raise ValidationError({"state": problems})
    errors = {}
    for key in ("product", "concentration", "lot_number"):
        if not str(data.get(key, "")).strip():
            errors[key] = ["Required."]
    expiry = data.get("expiry")
    if isinstance(expiry, str):
        try:
            expiry = datetime.date.fromisoformat(expiry)
        except ValueError:
            expiry = None
    if not isinstance(expiry, datetime.date):
        errors["expiry"] = ["Enter the expiry date (YYYY-MM-DD)."]
    elif expiry < now().astimezone(s.clinic.tz).date():
        errors["expiry"] = ["This lot has expired: do not use it."]
    if errors:
        raise ValidationError(errors)
    at = _when(data.get("at"), session=s)
    calc = s.calculation
    record = AdministrationRecord.objects.create(
        clinic=s.clinic,
        session=s,
        drug="esketamine" if s.route == dosing.ESKETAMINE else "ketamine (racemic)",
        product=str(data["product"]).strip()[:120],
        concentration=str(data["concentration"]).strip()[:60],
        lot_number=str(data["lot_number"]).strip()[:40],
        expiry=expiry,
        route=s.route,
        dose_mg=Decimal(str(calc["dose_mg"])),
        rate_ml_per_h=calc.get("rate_ml_per_h"),
        administered_by=actor,
    )
    kind = {dosing.IV: DoseEvent.Kind.START, dosing.ESKETAMINE: DoseEvent.Kind.DEVICE}.get(
        s.route, DoseEvent.Kind.GIVEN
    )
    DoseEvent.objects.create(
        clinic=s.clinic,
        session=s,
        kind=kind,
        at=at,
        actor=actor,
        rate_mg_per_min=calc.get("rate_mg_per_min") if s.route == dosing.IV else None,
        device_number=1 if s.route == dosing.ESKETAMINE else None,
    )
    s.dose_started_at = at
    _move(s, S.DOSING, actor, at=at)
    if kind == DoseEvent.Kind.GIVEN or (
        kind == DoseEvent.Kind.DEVICE and int(calc.get("devices") or 1) == 1
    ):
        s.dose_ended_at = at
        _move(s, S.MONITORING, actor, at=at)
        _reconcile_given(s, record)
    s.save()
    detail = {"session": s.pk, "dose_mg": str(record.dose_mg), "lot": record.lot_number}
    if record.given_mg is not None:
        detail["given_mg"] = str(record.given_mg)
    audit.record(
        action="create",
        clinic=s.clinic,
        actor=actor,
        patient=s.patient,
        obj=record,
        detail=detail,
    )
    return record


def _dosing_settings(clinic) -> dosing.DosingSettings:
    from ketaflow.plans import selectors as plans

    return plans.dosing_settings(clinic)


def _reconcile_given(s, record=None, end=None) -> AdministrationRecord | None:
    """Store the amount actually given, computed from the session's dose events (an
    infusion's start, rate changes, pauses and stop; the devices given), when the dose ends.
    Runs inside the caller's transaction; the caller's audit event names the result."""
    record = record or AdministrationRecord.objects.filter(session=s).first()
    if record is None:
        return None
    events = [
        dosing.DoseEventIn(e.kind, e.at, e.rate_mg_per_min)
        for e in DoseEvent.objects.filter(session=s).order_by("at", "id")
    ]
    given = dosing.administered_mg(s.route, record.dose_mg, events, end=end)
    record.given_mg = given.given_mg
    record.given_arithmetic = list(given.arithmetic)
    record.save(update_fields=["given_mg", "given_arithmetic"])
    return record


def waste_due(s) -> dict | None:
    """The drug drawn but not given and not yet recorded as waste, or None when nothing is
    outstanding (no administration, dose not ended, or waste recorded)."""
    record = AdministrationRecord.objects.filter(session=s).first()
    if record is None or record.given_mg is None:
        return None
    wasted = sum((w.amount_mg for w in Waste.objects.filter(session=s)), Decimal(0))
    outstanding = record.unused_mg - wasted
    if outstanding <= 0:
        return None
    return {
        "drawn_mg": record.dose_mg,
        "given_mg": record.given_mg,
        "unused_mg": record.unused_mg,
        "wasted_mg": wasted,
        "outstanding_mg": outstanding,
        "outstanding_text": dosing.fmt(outstanding),
    }


@transaction.atomic
def record_dose_event(*, session, actor, kind: str, at=None, rate_mg_per_min=None, reason=""):
    """Rate change, pause, resume, end of infusion, or the next nasal device."""
    require_permission(actor, "vitals.chart", session.clinic)
    s = _writable(session)
    if s.state != S.DOSING:
        raise ValidationError({"state": ["Dose events are recorded while dosing."]})
    at = _when(at, session=s)
    events = list(DoseEvent.objects.filter(session=s))
    last = events[-1] if events else None
    if last and at < last.at:
        raise ValidationError({"at": ["Earlier than the previous dose event."]})
    K = DoseEvent.Kind
    rate = None
    if s.route == dosing.ESKETAMINE:
        if kind != K.DEVICE:
            raise ValidationError({"kind": ["Esketamine is recorded device by device."]})
        devices = [e for e in events if e.kind == K.DEVICE]
        planned = int(s.calculation.get("devices") or 1)
        gap = (at - devices[-1].at).total_seconds() / 60
        if gap < dosing.ESKETAMINE_DEVICE_INTERVAL_MIN:
            raise ValidationError(
                {
                    "at": [
                        f"Devices are given 5 min apart (label): only {gap:.0f} min since the last."
                    ]
                }
            )
        number = len(devices) + 1
        ev = DoseEvent.objects.create(
            clinic=s.clinic, session=s, kind=K.DEVICE, at=at, device_number=number, actor=actor
        )
        if number >= planned:
            s.dose_ended_at = at
            _move(s, S.MONITORING, actor, at=at)
            _reconcile_given(s)
    else:
        if s.route != dosing.IV or kind not in (K.RATE, K.PAUSE, K.RESUME, K.STOP):
            raise ValidationError({"kind": ["Choose rate change, pause, resume or end."]})
        paused = last is not None and last.kind == K.PAUSE
        if kind == K.RESUME and not paused:
            raise ValidationError({"kind": ["The infusion is not paused."]})
        if kind in (K.PAUSE, K.RATE) and paused:
            raise ValidationError({"kind": ["The infusion is paused: resume it first."]})
        if kind in (K.RATE, K.PAUSE):
            reason = _reason(reason)
        if kind in (K.RATE, K.RESUME):
            if rate_mg_per_min in (None, ""):
                raise ValidationError({"rate_mg_per_min": ["Enter the new rate in mg/min."]})
            rate = _decimal(rate_mg_per_min, "rate_mg_per_min", "Enter the new rate in mg/min")
            if rate <= 0 or rate > 50:
                raise ValidationError({"rate_mg_per_min": ["Enter a rate above 0 mg/min."]})
        ev = DoseEvent.objects.create(
            clinic=s.clinic,
            session=s,
            kind=kind,
            at=at,
            rate_mg_per_min=rate,
            reason=(reason or "").strip()[:2000],
            actor=actor,
        )
        if kind == K.STOP:
            s.dose_ended_at = at
            _move(s, S.MONITORING, actor, at=at)
            _reconcile_given(s)
    s.save()
    detail = {"session": s.pk, "kind": ev.kind}
    if s.dose_ended_at is not None:
        record = AdministrationRecord.objects.filter(session=s).first()
        if record is not None and record.given_mg is not None:
            detail["given_mg"] = str(record.given_mg)
    audit.record(
        action="create",
        clinic=s.clinic,
        actor=actor,
        patient=s.patient,
        obj=ev,
        detail=detail,
    )
    return ev


@transaction.atomic
def record_waste(*, session, actor, amount_mg, reason, witness) -> Waste:
    require_permission(actor, "vitals.chart", session.clinic)
    s = _writable(session)
    errors = {}
    try:
        amount = Decimal(str(amount_mg))
        if amount <= 0:
            raise InvalidOperation
    except (InvalidOperation, TypeError):
        errors["amount_mg"] = ["Enter the amount wasted in mg."]
    if witness is None or witness == actor:
        errors["witness"] = ["A second person must witness controlled-substance waste."]
    elif not can(witness, "vitals.chart", s.clinic):
        errors["witness"] = ["The witness must be a nurse or prescriber of this clinic."]
    if errors:
        raise ValidationError(errors)
    w = Waste.objects.create(
        clinic=s.clinic,
        session=s,
        amount_mg=amount,
        reason=_reason(reason),
        wasted_by=actor,
        witness=witness,
        at=now(),
    )
    audit.record(
        action="create",
        clinic=s.clinic,
        actor=actor,
        patient=s.patient,
        obj=w,
        detail={"session": s.pk, "amount_mg": str(amount), "witness": witness.pk},
    )
    return w


@transaction.atomic
def record_event(*, session, actor, data: dict) -> SessionEvent:
    """A side effect (from the checklist) or an adverse event, with severity and outcome."""
    require_permission(actor, "vitals.chart", session.clinic)
    s = _writable(session)
    kind = data.get("kind") or SessionEvent.Kind.SIDE_EFFECT
    errors = {}
    if kind not in SessionEvent.Kind.values:
        errors["kind"] = ["Choose side effect or adverse event."]
    effect = str(data.get("effect") or "").strip()
    if kind == SessionEvent.Kind.SIDE_EFFECT and effect not in SIDE_EFFECTS:
        errors["effect"] = ["Choose an effect from the checklist."]
    if kind == SessionEvent.Kind.ADVERSE and len(effect) < 3:
        errors["effect"] = ["Describe the adverse event."]
    severity = data.get("severity")
    if severity not in SEVERITIES:
        errors["severity"] = ["Choose mild, moderate or severe."]
    outcome = data.get("outcome") or ""
    if kind == SessionEvent.Kind.ADVERSE and outcome not in OUTCOMES:
        errors["outcome"] = [f"Choose the outcome: {', '.join(OUTCOMES)}."]
    if errors:
        raise ValidationError(errors)
    ev = SessionEvent.objects.create(
        clinic=s.clinic,
        session=s,
        kind=kind,
        effect=effect[:60],
        severity=severity,
        intervention=str(data.get("intervention") or "").strip()[:2000],
        serious=str(data.get("serious", "")).lower() in ("1", "true", "on", "yes"),
        outcome=outcome,
        at=_when(data.get("at"), session=s),
        recorded_by=actor,
    )
    audit.record(
        action="create",
        clinic=s.clinic,
        actor=actor,
        patient=s.patient,
        obj=ev,
        detail={"session": s.pk, "kind": kind, "effect": ev.effect, "serious": ev.serious},
    )
    return ev


# ---------------------------------------------------------------------------- recovery


def discharge_facts(
    s, vitals=None, measures=None, open_alerts=None, at=None
) -> rules.DischargeFacts:
    vitals = _readings(s) if vitals is None else vitals
    measures = list(s.measures.all()) if measures is None else measures
    if open_alerts is None:
        open_alerts = SessionAlert.objects.filter(session=s, acknowledged_at__isnull=True).count()
    base = baseline_of(vitals)
    bp = [v for v in vitals if v.systolic is not None]
    moaas = [m for m in measures if m.instrument == "moaas" and m.timing == "post"]
    return rules.DischargeFacts(
        route=s.route,
        now=at or now(),
        baseline=base.as_reading() if base else None,
        latest=bp[-1].as_reading() if bp and bp[-1] is not base else None,
        moaas_latest=moaas[-1].total if moaas else None,
        walks_steadily=s.walks_steadily,
        responsible_adult=s.responsible_adult,
        dosing_ended=s.dose_ended_at is not None,
        first_device_at=s.dose_started_at if s.route == dosing.ESKETAMINE else None,
        open_alerts=open_alerts,
    )


def unmet_criteria(s, **kwargs) -> list[str]:
    unmet = rules.discharge_unmet(discharge_facts(s, **kwargs), settings_for(s.clinic).as_rules())
    if s.dose_ended_at is not None:
        # The route's minimum observation after the dose ended (clinic dosing settings).
        observation = dosing.observation_unmet(
            s.route, s.dose_ended_at, kwargs.get("at") or now(), _dosing_settings(s.clinic)
        )
        if observation:
            unmet.append(observation)
    return unmet


@transaction.atomic
def assess_recovery(
    *, session, actor, walks_steadily: bool, responsible_adult: bool, ready_without_rule_at=None
) -> list[str]:
    """Record the recovery checks; the session becomes ready for discharge when every
    criterion is met. Returns the unmet criteria."""
    require_permission(actor, "vitals.chart", session.clinic)
    s = _writable(session)
    if s.state not in (S.MONITORING, S.RECOVERY, S.READY):
        raise ValidationError({"state": ["Recovery is assessed after dosing."]})
    s.walks_steadily = bool(walks_steadily)
    s.responsible_adult = bool(responsible_adult)
    if ready_without_rule_at is not None:
        s.ready_without_rule_at = _when(ready_without_rule_at, "ready_without_rule_at", session=s)
    if s.state == S.MONITORING:
        _move(s, S.RECOVERY, actor)
    unmet = unmet_criteria(s)
    if not unmet:
        _move(s, S.READY, actor)
    elif s.state == S.READY and not s.override_reason:
        _move_back = StateChange(
            clinic=s.clinic,
            session=s,
            from_state=S.READY,
            to_state=S.RECOVERY,
            reason="criteria no longer met",
            actor=actor,
            at=now(),
        )
        _move_back.save()
        s.state = S.RECOVERY
    s.save()
    audit.record(
        action="update",
        clinic=s.clinic,
        actor=actor,
        patient=s.patient,
        obj=s,
        detail={"recovery": True, "unmet": len(unmet), "state": s.state},
    )
    return unmet


@transaction.atomic
def override_discharge(*, session, actor, reason) -> TreatmentSession:
    require_permission(actor, "treatment.prescriber_decision", session.clinic)
    s = _writable(session)
    if s.state not in (S.MONITORING, S.RECOVERY, S.READY):
        raise ValidationError({"state": ["Discharge can be overridden only after dosing."]})
    s.override_reason = _reason(reason)
    s.override_by = actor
    _move(s, S.READY, actor, reason=f"Prescriber override: {s.override_reason}")
    s.save()
    audit.record(
        action="update",
        clinic=s.clinic,
        actor=actor,
        patient=s.patient,
        obj=s,
        detail={"discharge_override": True},
    )
    return s


@transaction.atomic
def discharge(*, session, actor, email_instructions: bool = False) -> TreatmentSession:
    require_permission(actor, "vitals.chart", session.clinic)
    s = _writable(session)
    if s.state == S.DISCHARGED:
        raise AlreadyDone(
            {"state": [f"Already discharged at {s.discharged_at.astimezone(s.clinic.tz):%H:%M}."]}
        )
    if s.state != S.READY:
        raise ValidationError({"state": ["The session is not ready for discharge."]})
    if not s.override_reason:
        unmet = unmet_criteria(s)
        if unmet:
            raise ValidationError({"state": unmet})
    _move(s, S.DISCHARGED, actor)
    s.discharged_at = s.state_changed_at
    sent = False
    if email_instructions and s.patient.email:
        send_mail(
            subject="Your treatment today: going home",
            message=discharge_instructions(s),
            from_email=None,
            recipient_list=[s.patient.email],
        )
        s.instructions_sent_at = now()
        sent = True
    s.save()
    if s.route == dosing.ESKETAMINE:
        _ensure_rems(s)
    _complete_appointment(s, actor)
    audit.record(
        action="update",
        clinic=s.clinic,
        actor=actor,
        patient=s.patient,
        obj=s,
        detail={"discharged": True, "override": bool(s.override_reason), "emailed": sent},
    )
    return s


def _complete_appointment(s, actor):
    from ketaflow.scheduling import services as scheduling

    appt = s.appointment
    if appt.status == "booked":
        scheduling.complete(appointment=appt, actor=actor)


def discharge_instructions(s) -> str:
    lines = [
        f"{s.clinic.name}: after your treatment today.",
        "",
        "- Do not drive or operate machinery until the next day after a restful sleep.",
        "- Go home with the responsible adult who collected you.",
        "- Avoid alcohol and sedating medicines today unless your prescriber said otherwise.",
        "- Dizziness, nausea or feeling detached usually pass within hours.",
        f"- If you feel unwell or unsafe, call {s.clinic.crisis_line}; "
        f"in an emergency call {s.clinic.emergency_phone}.",
    ]
    if s.route == dosing.ESKETAMINE:
        lines.insert(3, "- Esketamine: no driving until the next day after restful sleep (label).")
    return "\n".join(lines)


@transaction.atomic
def cancel_session(*, session, actor, reason) -> TreatmentSession:
    require_permission(actor, "vitals.chart", session.clinic)
    s = _writable(session)
    _move(s, S.CANCELLED, actor, reason=_reason(reason))
    s.save()
    audit.record(
        action="update",
        clinic=s.clinic,
        actor=actor,
        patient=s.patient,
        obj=s,
        detail={"cancelled": True},
    )
    return s


@transaction.atomic
def stop_early(*, session, actor, reason) -> TreatmentSession:
    require_permission(actor, "vitals.chart", session.clinic)
    s = _writable(session)
    _move(s, S.STOPPED, actor, reason=_reason(reason))
    if s.dose_ended_at is None:
        s.dose_ended_at = s.state_changed_at
        # The dose was running: what was given is counted up to the stop.
        _reconcile_given(s, end=s.dose_ended_at)
    s.save()
    if s.route == dosing.ESKETAMINE and s.dose_started_at is not None:
        _ensure_rems(s)  # the REMS form is due for every session in which a device was used
    audit.record(
        action="update",
        clinic=s.clinic,
        actor=actor,
        patient=s.patient,
        obj=s,
        detail={"stopped_early": True},
    )
    return s


# ---------------------------------------------------------------------------- notes


def generate_note(s) -> str:
    from ketaflow.treatment import selectors

    return selectors.note_text(s)


@transaction.atomic
def save_note(*, session, actor, free_text: str) -> SessionNote:
    require_permission(actor, "notes.sign", session.clinic)
    s = _writable(session)
    note = SessionNote.objects.filter(session=s).first()
    if note is None:
        note = SessionNote(clinic=s.clinic, session=s)
    note.generated = generate_note(s)
    note.free_text = (free_text or "").strip()[:20000]
    note.save()
    audit.record(
        action="update",
        clinic=s.clinic,
        actor=actor,
        patient=s.patient,
        obj=note,
        detail={"session": s.pk},
    )
    return note


@transaction.atomic
def sign_note(*, session, actor, free_text: str | None = None) -> SessionNote:
    """The nurse signs: the note text is fixed and the session becomes read-only."""
    require_permission(actor, "notes.sign", session.clinic)
    s = _writable(session)
    if s.state not in (S.DISCHARGED, S.STOPPED):
        raise ValidationError({"state": ["Sign the note after discharge (or an early stop)."]})
    due = waste_due(s)
    if due is not None:
        f = dosing.fmt
        raise ValidationError(
            {
                "waste": [
                    f"{f(due['drawn_mg'])} mg was drawn and {f(due['given_mg'])} mg given: record "
                    f"the {f(due['outstanding_mg'])} mg not given as waste (amount, reason, "
                    f"witness) before signing ({f(due['wasted_mg'])} mg recorded so far)."
                ]
            }
        )
    note = SessionNote.objects.filter(session=s).first() or SessionNote(clinic=s.clinic, session=s)
    note.generated = generate_note(s)
    if free_text is not None:
        note.free_text = free_text.strip()[:20000]
    note.signed_by = actor
    note.signed_at = now()
    note.save()
    _move(s, S.SIGNED, actor)
    s.save()
    audit.record(
        action="sign",
        clinic=s.clinic,
        actor=actor,
        patient=s.patient,
        obj=note,
        detail={"session": s.pk},
    )
    return note


def _signed_note(session, clinic) -> SessionNote:
    note = (
        SessionNote.objects.select_for_update(no_key=True, of=("self",))
        .filter(session=session)
        .first()
    )
    if note is None or note.signed_at is None:
        raise ValidationError({"note": ["The note has not been signed yet."]})
    return note


@transaction.atomic
def cosign_note(*, session, actor) -> SessionNote:
    require_permission(actor, "notes.cosign", session.clinic)
    note = _signed_note(session, session.clinic)
    if note.cosigned_at is not None:
        raise ValidationError(
            {
                "note": [
                    f"Already co-signed by {_fmt(note.cosigned_by, note.cosigned_at, session.clinic)}."
                ]
            }
        )
    if note.signed_by_id == actor.pk:
        raise ValidationError({"note": ["The co-signer must be someone other than the signer."]})
    note.cosigned_by = actor
    note.cosigned_at = now()
    note.save(update_fields=["cosigned_by", "cosigned_at"])
    audit.record(
        action="sign",
        clinic=session.clinic,
        actor=actor,
        patient=session.patient,
        obj=note,
        detail={"cosign": True},
    )
    return note


@transaction.atomic
def add_addendum(*, session, actor, text: str) -> Addendum:
    require_permission(actor, "notes.sign", session.clinic)
    note = _signed_note(session, session.clinic)
    a = Addendum.objects.create(
        clinic=session.clinic,
        note=note,
        text=_reason(text, "text", 3),
        signed_by=actor,
        signed_at=now(),
    )
    audit.record(
        action="sign",
        clinic=session.clinic,
        actor=actor,
        patient=session.patient,
        obj=a,
        detail={"addendum_to": note.pk},
    )
    return a


# ---------------------------------------------------------------------------- REMS


def _ensure_rems(s) -> RemsForm:
    from ketaflow.treatment import selectors

    form = RemsForm.objects.filter(session=s).first()
    if form is None:
        days = settings_for(s.clinic).rems_deadline_days
        date = (s.dose_started_at or s.opened_at).astimezone(s.clinic.tz).date()
        form = RemsForm.objects.create(
            clinic=s.clinic,
            session=s,
            form_version=rems.CURRENT,
            data=selectors.rems_prefill(s),
            due_by=date + datetime.timedelta(days=days),
        )
    return form


@transaction.atomic
def save_rems(*, session, actor, data: dict) -> RemsForm:
    require_permission(actor, "rems.sign", session.clinic)
    s = _locked(session)
    if s.route != dosing.ESKETAMINE:
        raise ValidationError({"route": ["The REMS form applies to esketamine sessions."]})
    form = _ensure_rems(s)
    form = RemsForm.objects.select_for_update(no_key=True, of=("self",)).get(pk=form.pk)
    if form.signed_at:
        raise SignedRecordError("This REMS form is signed: it cannot change.")
    # Every answer typed as the form's own version has it: "maybe" for a yes/no question,
    # a word for minutes or a blood pressure out of range is refused naming the field.
    cleaned, errors = rems.clean(data, form.form_version)
    if errors:
        raise ValidationError(errors)
    form.data = {**form.data, **cleaned}
    form.save(update_fields=["data"])
    audit.record(
        action="update",
        clinic=s.clinic,
        actor=actor,
        patient=s.patient,
        obj=form,
        detail={"fields": sorted(cleaned), "version": form.form_version},
    )
    return form


@transaction.atomic
def sign_rems(*, session, actor) -> RemsForm:
    require_permission(actor, "rems.sign", session.clinic)
    form = (
        RemsForm.objects.select_for_update(no_key=True, of=("self",))
        .filter(session=session)
        .first()
    )
    if form is None:
        raise ValidationError({"rems": ["No REMS form for this session."]})
    if form.signed_at:
        raise SignedRecordError("This REMS form is already signed.")
    missing = rems.missing(form.data, form.form_version)
    if missing:
        raise ValidationError({"rems": [f"Missing: {m}." for m in missing]})
    form.signed_by = actor
    form.signed_at = now()
    form.save(update_fields=["signed_by", "signed_at"])
    audit.record(
        action="sign",
        clinic=session.clinic,
        actor=actor,
        patient=session.patient,
        obj=form,
        detail={"version": form.form_version},
    )
    return form


# ---------------------------------------------------------------------------- settings


@transaction.atomic
def update_settings(*, clinic, actor, data: dict) -> TreatmentSettings:
    require_permission(actor, "clinic.settings", clinic)
    row = (
        TreatmentSettings.objects.select_for_update(no_key=True, of=("self",))
        .filter(clinic=clinic)
        .first()
    )
    row = row or TreatmentSettings(clinic=clinic)
    errors, values = {}, {}
    for name in TreatmentSettings.FIELDS:
        raw = data.get(name, getattr(row, name))
        try:
            # The column's own validators bound the value (a positive integer column holds at
            # most 2,147,483,647; a 20-digit number would overflow the database).
            field = TreatmentSettings._meta.get_field(name)
            values[name] = field.clean(int(str(raw).strip()), row)
        except (TypeError, ValueError):
            errors[name] = ["Enter a whole number."]
        except ValidationError as exc:
            errors[name] = exc.messages
    if not errors:
        try:
            rules.VitalsSettings(**values)
        except ValueError as exc:
            name = str(exc).split(" ")[0]
            errors[name if name in values else "__all__"] = [str(exc)]
    if errors:
        raise ValidationError(errors)
    for name, value in values.items():
        setattr(row, name, value)
    row.bprs_wanted = str(data.get("bprs_wanted", "")).lower() in ("1", "true", "on", "yes")
    row.updated_by = actor
    row.save()
    audit.record(action="update", clinic=clinic, actor=actor, obj=row, detail={"settings": True})
    return row
