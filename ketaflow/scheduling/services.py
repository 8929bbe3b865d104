"""Writes for the calendar: one function, one transaction, one audit event each."""

import datetime
import hashlib
import secrets

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ketaflow.accounts.permissions import require_permission
from ketaflow.audit import services as audit
from ketaflow.clinical import protocols
from ketaflow.scheduling import selectors
from ketaflow.scheduling.models import Appointment, Closure, FeedToken, ScheduleSettings
from ketaflow.scheduling.planner import Planner, min_interval_hours

UTC = datetime.UTC


class ConflictError(Exception):
    """A booking refused because of conflicts (API: 409 with the list)."""

    def __init__(self, conflicts, index=None):
        super().__init__("; ".join(c.message for c in conflicts))
        self.conflicts = conflicts
        self.index = index


def _aware(value) -> datetime.datetime:
    if not isinstance(value, datetime.datetime) or value.tzinfo is None:
        raise ValidationError({"start": ["Give a date and time with its time zone."]})
    return value.astimezone(UTC)


def _planner(clinic, *, location, start, end, patient, staff, plan=None, exclude=()):
    return Planner(
        clinic=clinic,
        location=location,
        start=start,
        end=end,
        patient=patient,
        staff=staff,
        exclude_ids=tuple(exclude),
        interval_hours=min_interval_hours(clinic, plan),
    )


def _check_plan(plan, patient):
    if plan is not None and plan.patient_id != patient.pk:
        raise ValidationError({"plan": ["This plan belongs to another patient."]})


def _duration(type, minutes):
    minutes = int(minutes or type.minutes)
    if minutes < type.minimum_minutes:
        raise ValidationError(
            {"minutes": [f"{type.name} lasts at least {type.minimum_minutes} min ({type.source})."]}
        )
    return minutes


def _remind_on_commit(appointment):
    from ketaflow.scheduling import tasks

    transaction.on_commit(lambda: tasks.schedule_reminder(appointment.pk))


@transaction.atomic
def book(
    *,
    clinic,
    actor,
    patient,
    type,
    location,
    start,
    chair=None,
    staff=None,
    minutes=None,
    plan=None,
    notes="",
    visit_number=None,
    rescheduled_from=None,
) -> Appointment:
    require_permission(actor, "schedule.book", clinic)
    _check_plan(plan, patient)
    start = _aware(start)
    end = start + datetime.timedelta(minutes=_duration(type, minutes))
    exclude = (rescheduled_from.pk,) if rescheduled_from else ()
    planner = _planner(
        clinic,
        location=location,
        start=start,
        end=end,
        patient=patient,
        staff=staff,
        plan=plan,
        exclude=exclude,
    )
    conflicts = planner.check(
        start=start,
        end=end,
        chair=chair,
        type=type,
        patient_id=patient.pk,
        staff_id=staff.pk if staff else None,
    )
    if conflicts:
        raise ConflictError(conflicts)
    appointment = Appointment.objects.create(
        clinic=clinic,
        patient=patient,
        type=type,
        location=location,
        chair=chair,
        staff=staff,
        start=start,
        end=end,
        plan=plan,
        phase=plan.phase if plan else "",
        visit_number=visit_number,
        notes=notes[:300],
        booked_by=actor,
        rescheduled_from=rescheduled_from,
    )
    if rescheduled_from is None:
        audit.record(
            action="create",
            clinic=clinic,
            actor=actor,
            patient=patient,
            obj=appointment,
            detail={"type": type.code},
        )
    _remind_on_commit(appointment)
    return appointment


def _reason(reason: str, what: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": [f"Give the reason for the {what}."]})
    return reason


def _locked(appointment) -> Appointment:
    return Appointment.objects.select_for_update().get(pk=appointment.pk)


@transaction.atomic
def reschedule(*, appointment, actor, start, reason, chair=None, staff=None) -> Appointment:
    """The old appointment is kept (status rescheduled, with the reason); a new one replaces it."""
    require_permission(actor, "schedule.book", appointment.clinic)
    reason = _reason(reason, "reschedule")
    old = _locked(appointment)
    if old.status != Appointment.Status.BOOKED:
        raise ValidationError({"status": [f"A {old.get_status_display()} visit cannot be moved."]})
    new = book(
        clinic=old.clinic,
        actor=actor,
        patient=old.patient,
        type=old.type,
        location=old.location,
        start=start,
        chair=chair if chair is not None else old.chair,
        staff=staff if staff is not None else old.staff,
        minutes=int((old.end - old.start).total_seconds() // 60),
        plan=old.plan,
        notes=old.notes,
        visit_number=old.visit_number,
        rescheduled_from=old,
    )
    old.status = Appointment.Status.RESCHEDULED
    old.status_reason = reason
    old.save(update_fields=["status", "status_reason"])
    audit.record(
        action="update",
        clinic=old.clinic,
        actor=actor,
        patient=old.patient,
        obj=old,
        detail={"fields": ["start", "status"], "new": new.pk},
    )
    return new


def _set_status(appointment, actor, status, reason, what):
    require_permission(actor, "schedule.book", appointment.clinic)
    a = _locked(appointment)
    if a.status != Appointment.Status.BOOKED:
        raise ValidationError({"status": [f"Only a booked visit can be marked {what}."]})
    a.status = status
    a.status_reason = reason
    a.save(update_fields=["status", "status_reason"])
    audit.record(
        action="update",
        clinic=a.clinic,
        actor=actor,
        patient=a.patient,
        obj=a,
        detail={"fields": ["status"], "to": status},
    )
    return a


@transaction.atomic
def cancel(*, appointment, actor, reason) -> Appointment:
    return _set_status(
        appointment,
        actor,
        Appointment.Status.CANCELLED,
        _reason(reason, "cancellation"),
        "cancelled",
    )


@transaction.atomic
def no_show(*, appointment, actor, reason) -> Appointment:
    return _set_status(
        appointment, actor, Appointment.Status.NO_SHOW, _reason(reason, "no-show"), "no-show"
    )


@transaction.atomic
def complete(*, appointment, actor) -> Appointment:
    return _set_status(appointment, actor, Appointment.Status.COMPLETED, "", "completed")


# ---------------------------------------------------------------------------
# Whole courses
# ---------------------------------------------------------------------------


def course_type(clinic, plan):
    from ketaflow.scheduling.defaults import ROUTE_TYPE, ensure_types

    return ensure_types(clinic)[ROUTE_TYPE[plan.current.route]]


def propose_course(
    *, clinic, plan, location, start_date, prefer=datetime.time(9, 0), staff=None, **spacing
) -> list:
    """Free slots for every visit of the plan's current phase, respecting the protocol's
    spacing and minimum interval, clinic hours, closures and what is already booked.

    ``spacing``: per_week, visits, interval_weeks, interval_days, weekly_counts (as in
    ``protocols.propose_schedule``). Returns dicts with the target date and the slot found
    (``slot`` None when nothing is free within 14 days)."""
    from ketaflow.plans.selectors import protocol_of

    protocol = protocol_of(plan.current)
    try:
        dates = protocols.propose_schedule(protocol, plan.phase, start_date, **spacing)
    except protocols.ProtocolError as exc:
        raise ValidationError({exc.field: [exc.message]}) from exc
    type = course_type(clinic, plan)
    tz = clinic.tz
    window_start = datetime.datetime.combine(dates[0], datetime.time(0), tzinfo=tz)
    window_end = datetime.datetime.combine(
        dates[-1] + datetime.timedelta(days=21), datetime.time(0), tzinfo=tz
    )
    planner = _planner(
        clinic,
        location=location,
        start=window_start.astimezone(UTC),
        end=window_end.astimezone(UTC),
        patient=plan.patient,
        staff=staff,
        plan=plan,
    )
    already = sum(
        1
        for b in planner.busy
        if b.patient_id == plan.patient_id and b.is_dose and b.start >= window_start
    )
    proposals = []
    previous_day = None
    for i, target in enumerate(dates):
        day = (
            target
            if previous_day is None
            else max(target, previous_day + datetime.timedelta(days=1))
        )
        slot = None
        for _ in range(14):
            found = planner.slots_on(
                day,
                type=type,
                patient_id=plan.patient_id,
                staff_id=staff.pk if staff else None,
                prefer=prefer,
                limit=1,
            )
            if found:
                slot = found[0]
                break
            day += datetime.timedelta(days=1)
        if slot is not None:
            planner.add(
                start=slot.start,
                end=slot.end,
                chair=slot.chair,
                patient_id=plan.patient_id,
                staff_id=staff.pk if staff else None,
                is_dose=True,
            )
            previous_day = slot.start.astimezone(tz).date()
        proposals.append(
            {
                "visit": already + i + 1,
                "target": target,
                "slot": slot,
                "moved": slot is not None and slot.start.astimezone(tz).date() != target,
            }
        )
    return proposals


@transaction.atomic
def book_course(*, clinic, actor, plan, location, visits, staff=None) -> list:
    """Book every visit of a course in one step: all or nothing.

    ``visits``: dicts with ``start`` (aware datetime), ``chair`` (Chair or None) and
    ``visit`` (number). Each visit is checked against the calendar *and* the visits before it.
    """
    require_permission(actor, "schedule.book", clinic)
    if plan.status in ("completed", "discontinued"):
        raise ValidationError({"plan": [f"A {plan.status} plan takes no new visits."]})
    if not visits:
        raise ValidationError({"visits": ["Propose at least one visit."]})
    type = course_type(clinic, plan)
    starts = [_aware(v["start"]) for v in visits]
    planner = _planner(
        clinic,
        location=location,
        start=min(starts),
        end=max(starts) + datetime.timedelta(minutes=type.minutes),
        patient=plan.patient,
        staff=staff,
        plan=plan,
    )
    created = []
    for index, (v, start) in enumerate(zip(visits, starts, strict=True)):
        end = start + datetime.timedelta(minutes=type.minutes)
        conflicts = planner.check(
            start=start,
            end=end,
            chair=v.get("chair"),
            type=type,
            patient_id=plan.patient_id,
            staff_id=staff.pk if staff else None,
        )
        if conflicts:
            raise ConflictError(conflicts, index=index)
        planner.add(
            start=start,
            end=end,
            chair=v.get("chair"),
            patient_id=plan.patient_id,
            staff_id=staff.pk if staff else None,
            is_dose=True,
        )
        created.append(
            Appointment(
                clinic=clinic,
                patient=plan.patient,
                type=type,
                location=location,
                chair=v.get("chair"),
                staff=staff,
                start=start,
                end=end,
                plan=plan,
                phase=plan.phase,
                visit_number=v.get("visit"),
                booked_by=actor,
            )
        )
    created = Appointment.objects.bulk_create(created)
    audit.record(
        action="create",
        clinic=clinic,
        actor=actor,
        patient=plan.patient,
        obj=plan,
        detail={"course": [a.pk for a in created], "visits": len(created)},
    )
    for a in created:
        _remind_on_commit(a)
    return created


# ---------------------------------------------------------------------------
# Settings, closures, feed tokens
# ---------------------------------------------------------------------------


@transaction.atomic
def save_settings(*, clinic, actor, data) -> ScheduleSettings:
    from ketaflow.scheduling.forms import ScheduleSettingsForm

    require_permission(actor, "clinic.settings", clinic)
    row = selectors.schedule_settings(clinic)
    form = ScheduleSettingsForm(data, instance=row)
    if not form.is_valid():
        raise ValidationError(form.errors.as_data())
    row = form.save()
    audit.record(
        action="update",
        clinic=clinic,
        actor=actor,
        obj=row,
        detail={"fields": sorted(form.changed_data)},
    )
    return row


@transaction.atomic
def add_closure(*, clinic, actor, date, reason, location=None) -> Closure:
    require_permission(actor, "clinic.settings", clinic)
    if not (reason or "").strip():
        raise ValidationError({"reason": ["Give the reason for the closure."]})
    closure = Closure.objects.create(
        clinic=clinic, date=date, reason=reason.strip(), location=location
    )
    audit.record(
        action="create", clinic=clinic, actor=actor, obj=closure, detail={"date": str(date)}
    )
    return closure


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def new_feed_token(*, clinic, actor) -> str:
    """A new calendar-feed token for the actor (earlier ones are revoked). Shown once."""
    require_permission(actor, "schedule.view", clinic)
    now = timezone.now()
    FeedToken.objects.filter(clinic=clinic, user=actor, revoked_at__isnull=True).update(
        revoked_at=now
    )
    token = "kfcal_" + secrets.token_urlsafe(32)
    row = FeedToken.objects.create(
        clinic=clinic, user=actor, token_hash=hash_token(token), prefix=token[:12]
    )
    audit.record(action="create", clinic=clinic, actor=actor, obj=row)
    return token
