"""Writes for the calendar: one function, one transaction, one audit event each.

No overlapping bookings: every booking (a single visit, a move, a whole course) first locks
the rows of what it books (:func:`_lock_resources`: the patient, the chairs or rooms, the
staff member's membership, in that order), then reads the calendar and checks for conflicts
inside the same transaction. Two bookings that share any of them wait for each other, and the
second one's check sees the first one's visit. See "Lock order" in ARCHITECTURE.md.
"""

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
from ketaflow.scheduling.models import (
    WEEKDAYS,
    Appointment,
    AppointmentType,
    Closure,
    FeedToken,
    ScheduleSettings,
    WorkingHours,
)
from ketaflow.scheduling.planner import Planner, min_interval_hours

UTC = datetime.UTC


class ConflictError(Exception):
    """A booking refused because of conflicts (API: 409 with the list)."""

    def __init__(self, conflicts, index=None):
        super().__init__("; ".join(c.message for c in conflicts))
        self.conflicts = conflicts
        self.index = index


def _aware(value) -> datetime.datetime:
    """An aware start time within the clinic's planning window (bounds.check_planning_date:
    2000-01-01 to today + 5 years); a year-1 or year-9999 time overflows in the calendar."""
    from ketaflow.web import bounds

    if not isinstance(value, datetime.datetime) or value.tzinfo is None:
        raise ValidationError({"start": ["Give a date and time with its time zone."]})
    try:
        bounds.check_planning_date(value)
    except ValueError as exc:
        raise ValidationError({"start": [f"The {exc}."]}) from None
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
    from ketaflow.scheduling.defaults import MAX_MINUTES

    try:
        minutes = int(minutes or type.minutes)
    except (TypeError, ValueError):
        raise ValidationError({"minutes": ["Give the duration in whole minutes."]}) from None
    if minutes > MAX_MINUTES:
        raise ValidationError({"minutes": [f"At most {MAX_MINUTES} min (a visit within a day)."]})
    if minutes < type.minimum_minutes:
        raise ValidationError(
            {"minutes": [f"{type.name} lasts at least {type.minimum_minutes} min ({type.source})."]}
        )
    return minutes


def _lock_resources(*, clinic, patient, chairs=(), staff=None) -> None:
    """Lock what a booking books, in the documented order: the patient, then the chairs and
    rooms by id, then the staff member's membership (SELECT ... FOR NO KEY UPDATE OF self,
    held until the booking's transaction ends). Call it before the calendar is read.

    On SQLite the transaction already holds the database's write lock (BEGIN IMMEDIATE,
    ketaflow.config), so bookings are serialised there whatever these statements do."""
    from ketaflow.patients.models import Patient
    from ketaflow.tenancy.models import Chair, Membership

    def lock(qs):
        list(qs.select_for_update(no_key=True, of=("self",)).order_by("pk").values_list("pk"))

    lock(Patient.objects.filter(pk=patient.pk))
    chair_ids = sorted({c.pk for c in chairs if c is not None})
    if chair_ids:
        lock(Chair.objects.filter(pk__in=chair_ids))
    if staff is not None:
        lock(Membership.objects.filter(clinic=clinic, user=staff))


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
    _lock_resources(clinic=clinic, patient=patient, chairs=[chair], staff=staff)
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
    return Appointment.objects.select_for_update(no_key=True, of=("self",)).get(pk=appointment.pk)


@transaction.atomic
def reschedule(*, appointment, actor, start, reason, chair=None, staff=None) -> Appointment:
    """The old appointment is kept (status rescheduled, with the reason); a new one replaces it."""
    require_permission(actor, "schedule.book", appointment.clinic)
    reason = _reason(reason, "reschedule")
    chair = chair if chair is not None else appointment.chair
    staff = staff if staff is not None else appointment.staff
    # The booking's resources before the appointment itself (ARCHITECTURE.md, lock order).
    _lock_resources(
        clinic=appointment.clinic, patient=appointment.patient, chairs=[chair], staff=staff
    )
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
        chair=chair,
        staff=staff,
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


def _set_status(appointment, actor, status, reason, what, extra=None):
    require_permission(actor, "schedule.book", appointment.clinic)
    a = _locked(appointment)
    if a.status != Appointment.Status.BOOKED:
        raise ValidationError({"status": [f"Only a booked visit can be marked {what}."]})
    a.status = status
    a.status_reason = reason
    a.save(update_fields=["status", "status_reason"])
    detail = {"fields": ["status"], "to": status}
    if extra is not None:
        step = extra(a)
        if step:
            detail["plan_step"] = step
    audit.record(
        action="update",
        clinic=a.clinic,
        actor=actor,
        patient=a.patient,
        obj=a,
        detail=detail,
    )
    return a


def _advance_plan(a, actor):
    """A completed dosing visit of a plan advances the plan's step (plans app hook)."""
    if a.plan_id is None or not a.type.is_dose:
        return None
    from ketaflow.plans.services import advance_after_visit

    return advance_after_visit(plan=a.plan, appointment=a, actor=actor)


@transaction.atomic
def complete(*, appointment, actor) -> Appointment:
    """Mark a visit completed. A dosing visit of a plan's current phase advances the plan's
    step (``plans.services.advance_after_visit``); the one audit event carries the step change.
    """
    return _set_status(
        appointment,
        actor,
        Appointment.Status.COMPLETED,
        "",
        "completed",
        lambda a: _advance_plan(a, actor),
    )


# ---------------------------------------------------------------------------
# Whole courses
# ---------------------------------------------------------------------------


def course_type(clinic, plan):
    from ketaflow.scheduling.defaults import ROUTE_TYPE, ensure_types

    return ensure_types(clinic)[ROUTE_TYPE[plan.current.route]]


def _companion_window(companion, settings) -> int:
    """Days in which a companion visit is proposed: the protocol's window, else the clinic's."""
    if companion.within_days is not None:
        return int(companion.within_days.max)
    return int(settings.companion_window_days)


def _find_slot(planner, days, *, type, patient_id, staff_id=None, prefer=None):
    for day in days:
        found = planner.slots_on(
            day, type=type, patient_id=patient_id, staff_id=staff_id, prefer=prefer, limit=1
        )
        if found:
            return found[0]
    return None


def propose_course(
    *, clinic, plan, location, start_date, prefer=datetime.time(9, 0), staff=None, **spacing
) -> list:
    """Free slots for every visit of the plan's current phase, respecting the protocol's
    spacing and minimum interval, clinic hours, closures and what is already booked.

    ``spacing``: per_week, visits, interval_weeks, interval_days, weekly_counts (as in
    ``protocols.propose_schedule``). Returns dicts with the target date and the slot found
    (``slot`` None when nothing is free within 14 days).

    The protocol's companion visits are proposed too (``kind`` other than "dose"): one after
    each dosing session (``after_each_dose``, e.g. KAP integration), one before the first
    (``before_course``, only when the patient has no booked or completed visit of that type)
    (a consultation also not for an active or paused plan, whose activation needed the
    eligibility decision it produces) and one after the last (``after_course``), each within the protocol's window in days or,
    where it gives none, the clinic's ``companion_window_days``. Companion visits have no
    staff member (the therapist is chosen on the visit)."""
    from ketaflow.plans.selectors import protocol_of
    from ketaflow.scheduling.defaults import COMPANION_TYPE, ensure_types

    protocol = protocol_of(plan.current)
    try:
        dates = protocols.propose_schedule(protocol, plan.phase, start_date, **spacing)
    except protocols.ProtocolError as exc:
        raise ValidationError({exc.field: [exc.message]}) from exc
    type = course_type(clinic, plan)
    tz = clinic.tz
    companions = [c for c in protocol.companion_visits if c.kind in COMPANION_TYPE]
    types_by_code = ensure_types(clinic) if companions else {}
    settings = selectors.schedule_settings(clinic)
    longest = max((_companion_window(c, settings) for c in companions), default=0)
    window_start = datetime.datetime.combine(
        dates[0] - datetime.timedelta(days=longest), datetime.time(0), tzinfo=tz
    )
    window_end = datetime.datetime.combine(
        dates[-1] + datetime.timedelta(days=21 + longest), datetime.time(0), tzinfo=tz
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
    first_dose = datetime.datetime.combine(dates[0], datetime.time(0), tzinfo=tz)
    already = sum(
        1
        for b in planner.busy
        if b.patient_id == plan.patient_id and b.is_dose and b.start >= first_dose
    )
    staff_id = staff.pk if staff else None
    doses = []
    previous_day = None
    for i, target in enumerate(dates):
        day = (
            target
            if previous_day is None
            else max(target, previous_day + datetime.timedelta(days=1))
        )
        slot = _find_slot(
            planner,
            [day + datetime.timedelta(days=n) for n in range(14)],
            type=type,
            patient_id=plan.patient_id,
            staff_id=staff_id,
            prefer=prefer,
        )
        if slot is not None:
            planner.add(
                start=slot.start,
                end=slot.end,
                chair=slot.chair,
                patient_id=plan.patient_id,
                staff_id=staff_id,
                is_dose=True,
            )
            previous_day = slot.start.astimezone(tz).date()
        doses.append(
            {
                "kind": "dose",
                "type": type,
                "visit": already + i + 1,
                "target": target,
                "slot": slot,
                "moved": slot is not None and slot.start.astimezone(tz).date() != target,
                "basis": "",
            }
        )

    def companion(c, days, target, after=None):
        ctype = types_by_code[COMPANION_TYPE[c.kind]]
        slot = _find_slot(planner, days, type=ctype, patient_id=plan.patient_id, prefer=prefer)
        if slot is not None:
            planner.add(
                start=slot.start,
                end=slot.end,
                chair=slot.chair,
                patient_id=plan.patient_id,
                staff_id=None,
                is_dose=False,
            )
        return {
            "kind": c.kind,
            "type": ctype,
            "visit": None,
            "after": after,
            "target": target,
            "slot": slot,
            "moved": slot is not None and slot.start.astimezone(tz).date() != target,
            "basis": f"{c.description} ({c.source})",
        }

    def day_of(p):
        return p["slot"].start.astimezone(tz).date() if p["slot"] else p["target"]

    before, after_each, after_course = [], {}, []
    today = clinic.today()
    existing = set()
    if companions:
        from ketaflow.scheduling.models import Appointment as A

        existing = set(
            A.objects.for_clinic(clinic)
            .filter(patient=plan.patient, status__in=A.ACTIVE)
            .values_list("type__code", flat=True)
        )
    for c in companions:
        window = _companion_window(c, settings)
        code = COMPANION_TYPE[c.kind]
        if c.timing == "before_course":
            if code in existing or (c.kind == "consultation" and plan.status != "draft"):
                # Already held, or the plan is active: activation needed the eligibility
                # decision that the consultation produces.
                continue
            first = day_of(doses[0])
            days = [
                first - datetime.timedelta(days=n)
                for n in range(1, window + 1)
                if first - datetime.timedelta(days=n) >= today
            ]
            target = first - datetime.timedelta(days=1)
            before.append(companion(c, days, target))
        elif c.timing == "after_each_dose":
            for d in doses:
                base = day_of(d)
                days = [base + datetime.timedelta(days=n) for n in range(1, window + 1)]
                after_each.setdefault(id(d), []).append(
                    companion(c, days, base + datetime.timedelta(days=1), after=d["visit"])
                )
        else:  # after_course
            last = day_of(doses[-1])
            days = [last + datetime.timedelta(days=n) for n in range(1, window + 1)]
            after_course.append(
                companion(c, days, last + datetime.timedelta(days=1), after=doses[-1]["visit"])
            )
    proposals = list(before)
    for d in doses:
        proposals.append(d)
        proposals.extend(after_each.get(id(d), ()))
    return proposals + after_course


@transaction.atomic
def book_course(*, clinic, actor, plan, location, visits, staff=None) -> list:
    """Book every visit of a course in one step: all or nothing.

    ``visits``: dicts with ``start`` (aware datetime), ``chair`` (Chair or None), ``visit``
    (number) and optionally ``type`` (an AppointmentType of the clinic; default the plan's
    dosing type: companion visits such as integration sessions use their own type and have
    no staff member). Each visit is checked against the calendar *and* the visits before it.
    """
    require_permission(actor, "schedule.book", clinic)
    if plan.status in ("completed", "discontinued"):
        raise ValidationError({"plan": [f"A {plan.status} plan takes no new visits."]})
    if not visits:
        raise ValidationError({"visits": ["Propose at least one visit."]})
    dose_type = course_type(clinic, plan)
    types = [v.get("type") or dose_type for v in visits]
    for t in types:
        if t.clinic_id != clinic.pk:
            raise ValidationError({"type": ["No such appointment type in this clinic."]})
        if t.is_dose and t.pk != dose_type.pk:
            raise ValidationError({"type": [f"This plan's dosing visits are {dose_type.name}."]})
    starts = [_aware(v["start"]) for v in visits]
    ends = [s + datetime.timedelta(minutes=t.minutes) for s, t in zip(starts, types, strict=True)]
    _lock_resources(
        clinic=clinic,
        patient=plan.patient,
        chairs=[v.get("chair") for v in visits],
        staff=staff if any(t.is_dose for t in types) else None,
    )
    planner = _planner(
        clinic,
        location=location,
        start=min(starts),
        end=max(ends),
        patient=plan.patient,
        staff=staff,
        plan=plan,
    )
    created = []
    for index, (v, start, end, type) in enumerate(zip(visits, starts, ends, types, strict=True)):
        who = staff if type.is_dose else None
        conflicts = planner.check(
            start=start,
            end=end,
            chair=v.get("chair"),
            type=type,
            patient_id=plan.patient_id,
            staff_id=who.pk if who else None,
        )
        if conflicts:
            raise ConflictError(conflicts, index=index)
        planner.add(
            start=start,
            end=end,
            chair=v.get("chair"),
            patient_id=plan.patient_id,
            staff_id=who.pk if who else None,
            is_dose=type.is_dose,
        )
        created.append(
            Appointment(
                clinic=clinic,
                patient=plan.patient,
                type=type,
                location=location,
                chair=v.get("chair"),
                staff=who,
                start=start,
                end=end,
                plan=plan,
                phase=plan.phase,
                visit_number=v.get("visit") if type.is_dose else None,
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
        detail={
            "course": [a.pk for a in created],
            "visits": sum(1 for t in types if t.is_dose),
            "companions": sum(1 for t in types if not t.is_dose),
        },
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
def set_type_minutes(*, clinic, actor, type, minutes) -> "AppointmentType":
    """Change an appointment type's default duration. Never below its floor (the esketamine
    session: 120 min monitoring + up to 10 min dosing, label), never above 10 hours."""
    from ketaflow.scheduling.defaults import FLOOR_MINUTES, MAX_MINUTES

    require_permission(actor, "clinic.settings", clinic)
    if type.clinic_id != clinic.pk:
        raise ValidationError({"type": ["No such appointment type in this clinic."]})
    try:
        minutes = int(minutes)
    except (TypeError, ValueError):
        raise ValidationError({"minutes": ["Give the duration in whole minutes."]}) from None
    floor = max(type.minimum_minutes, FLOOR_MINUTES.get(type.code, 0))
    if minutes < floor:
        raise ValidationError(
            {"minutes": [f"{type.name} lasts at least {floor} min ({type.source})."]}
        )
    if minutes > MAX_MINUTES:
        raise ValidationError({"minutes": [f"At most {MAX_MINUTES} min (a visit within a day)."]})
    previous = type.minutes
    type.minutes = minutes
    type.save(update_fields=["minutes"])
    audit.record(
        action="update",
        clinic=clinic,
        actor=actor,
        obj=type,
        detail={"fields": ["minutes"], "from": previous, "to": minutes},
    )
    return type


@transaction.atomic
def set_working_hours(*, clinic, actor, user, hours) -> list:
    """Replace a staff member's weekly working hours. ``hours``: (weekday 0-6, start, end)
    tuples; an empty list means no hours recorded (the member is bookable in clinic hours)."""
    from ketaflow.tenancy.models import Membership

    require_permission(actor, "clinic.settings", clinic)
    if not Membership.objects.filter(clinic=clinic, user=user, is_active=True).exists():
        raise ValidationError({"user": ["This person is not an active member of the clinic."]})
    errors = {}
    rows = []
    for weekday, start, end in hours:
        if weekday not in range(7):
            errors.setdefault("weekday", []).append("Weekday 0 (Monday) to 6 (Sunday).")
        elif start is None or end is None or start >= end:
            errors.setdefault(f"end_{weekday}", []).append(
                f"{WEEKDAYS[weekday]}: the end must be after the start."
            )
        else:
            rows.append(
                WorkingHours(clinic=clinic, user=user, weekday=weekday, start=start, end=end)
            )
    by_day = {}
    for r in rows:
        for other in by_day.get(r.weekday, ()):
            if r.start < other.end and other.start < r.end:
                errors.setdefault(f"end_{r.weekday}", []).append(
                    f"{WEEKDAYS[r.weekday]}: the spans overlap."
                )
        by_day.setdefault(r.weekday, []).append(r)
    if errors:
        raise ValidationError(errors)
    WorkingHours.objects.filter(clinic=clinic, user=user).delete()
    created = WorkingHours.objects.bulk_create(rows)
    audit.record(
        action="update",
        clinic=clinic,
        actor=actor,
        object_type="scheduling.workinghours",
        object_id=str(user.pk),
        detail={
            "user": user.pk,
            "hours": [[r.weekday, f"{r.start:%H:%M}", f"{r.end:%H:%M}"] for r in rows],
        },
    )
    return created


@transaction.atomic
def remove_closure(*, clinic, actor, closure) -> None:
    require_permission(actor, "clinic.settings", clinic)
    if closure.clinic_id != clinic.pk:
        raise ValidationError({"closure": ["No such closure in this clinic."]})
    audit.record(
        action="delete",
        clinic=clinic,
        actor=actor,
        obj=closure,
        detail={"date": str(closure.date), "reason": closure.reason},
    )
    closure.delete()


@transaction.atomic
def add_closure(*, clinic, actor, date, reason, location=None) -> Closure:
    from ketaflow.web import bounds

    require_permission(actor, "clinic.settings", clinic)
    if not isinstance(date, datetime.date):
        raise ValidationError({"closure_date": ["Give the date of the closure (YYYY-MM-DD)."]})
    try:
        bounds.check_planning_date(date)
    except ValueError as exc:
        raise ValidationError({"closure_date": [f"The {exc}."]}) from None
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


def revoke_feed_tokens(sender=None, *, user, reason="", **kwargs) -> dict:
    """Revoke every calendar-feed token of ``user`` (answers accounts' credentials_revoked).

    Runs inside the caller's transaction; the caller's audit event carries the count.
    """
    count = FeedToken.objects.filter(user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    return {"feed_tokens": count}


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
