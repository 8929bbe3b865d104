import datetime

from ninja import Router, Schema, Status

from ketaflow.api import ERRORS, WRITE_ERRORS, ErrorOut, api_require
from ketaflow.audit import services as audit
from ketaflow.patients import selectors as patient_selectors
from ketaflow.scheduling import selectors, services
from ketaflow.scheduling.defaults import MAX_MINUTES
from ketaflow.scheduling.planner import Planner, min_interval_hours
from ketaflow.web import bounds

router = Router(tags=["scheduling"])
UTC = datetime.UTC


class ConflictItem(Schema):
    kind: str
    message: str
    appointment_id: int | None


class ConflictOut(Schema):
    detail: str
    conflicts: list[ConflictItem]


BOOK_ERRORS = {**WRITE_ERRORS, 409: ConflictOut}


class AppointmentOut(Schema):
    id: int
    patient_id: int
    type_id: int
    type_code: str
    location_id: int
    chair_id: int | None
    staff_id: int | None
    start: datetime.datetime
    end: datetime.datetime
    status: str
    status_reason: str
    plan_id: int | None
    visit_number: int | None

    @staticmethod
    def resolve_type_code(obj):
        return obj.type.code


class AppointmentPage(Schema):
    items: list[AppointmentOut]
    limit: int
    offset: int
    has_more: bool


class AppointmentIn(Schema):
    patient_id: bounds.Id
    type_id: bounds.Id
    location_id: bounds.Id
    start: datetime.datetime
    chair_id: bounds.Id | None = None
    staff_id: bounds.Id | None = None
    minutes: bounds.bounded_int(ge=1, le=MAX_MINUTES) | None = None
    plan_id: bounds.Id | None = None
    notes: str = ""


class RescheduleIn(Schema):
    start: datetime.datetime
    reason: str
    chair_id: bounds.Id | None = None


class AppointmentReasonIn(Schema):
    reason: str


class SlotOut(Schema):
    start: datetime.datetime
    end: datetime.datetime
    chair_id: int | None
    chair: str | None


class TypeOut(Schema):
    id: int
    code: str
    name: str
    minutes: int
    minimum_minutes: int
    resource: str
    route: str
    source: str


def _conflict(exc):
    return Status(
        409,
        {"detail": str(exc), "conflicts": [c.as_dict() for c in exc.conflicts]},
    )


@router.get("/types", response={200: list[TypeOut], **ERRORS}, summary="Appointment types")
def list_types(request):
    clinic = api_require(request, "schedule.view")
    return selectors.types(clinic)


@router.get("/appointments", response={200: AppointmentPage, **ERRORS}, summary="List appointments")
def list_appointments(
    request,
    day: bounds.ClinicDate | None = None,
    days: int = 1,
    location_id: bounds.Id | None = None,
    staff_id: bounds.Id | None = None,
    limit: int = 100,
    offset: bounds.Offset = 0,
):
    """Appointments from ``day`` (clinic time zone, default today) for ``days`` days."""
    clinic = api_require(request, "schedule.view")
    limit, offset, days = max(1, min(limit, 500)), max(0, offset), max(1, min(days, 31))
    day = day or clinic.today()
    location = selectors.get_location(clinic, location_id) if location_id else None
    qs = selectors.in_range(clinic, day, days, location=location)
    if staff_id:
        qs = qs.filter(staff_id=staff_id)
    rows = list(qs[offset : offset + limit + 1])
    audit.record_list_read(
        request,
        patient_ids=[a.patient_id for a in rows[:limit]],
        object_ids=[a.pk for a in rows[:limit]],
        object_type="scheduling.appointment",
        detail={
            "filters": {
                "day": str(day),
                "days": days,
                "location_id": location_id,
                "staff_id": staff_id,
                "limit": limit,
                "offset": offset,
            }
        },
    )
    return {"items": rows[:limit], "limit": limit, "offset": offset, "has_more": len(rows) > limit}


@router.get(
    "/appointments/{appointment_id}",
    response={200: AppointmentOut, **ERRORS},
    summary="One appointment",
)
def get_appointment(request, appointment_id: bounds.Id):
    clinic = api_require(request, "schedule.view")
    a = selectors.get_appointment(clinic, appointment_id)
    audit.record_read(request, patient=a.patient, obj=a)
    return a


def _body_refs(clinic, body) -> dict:
    """Ids in a request body that are not in this clinic are field errors (422)."""
    from django.core.exceptions import ValidationError
    from django.http import Http404

    out, errors = {}, {}
    for field, name, lookup in (
        ("patient_id", "patient", patient_selectors.get_patient),
        ("type_id", "type", selectors.get_type),
        ("location_id", "location", selectors.get_location),
        ("chair_id", "chair", selectors.get_chair),
    ):
        try:
            out[name] = lookup(clinic, getattr(body, field))
        except Http404:
            errors[field] = [f"No such {name} in this clinic."]
    if errors:
        raise ValidationError(errors)
    return out


@router.post("/appointments", response={201: AppointmentOut, **BOOK_ERRORS}, summary="Book a visit")
def create_appointment(request, body: AppointmentIn):
    """409 with every conflict (chair, room, staff, patient, minimum interval, hours, closure)."""
    clinic = api_require(request, "schedule.book", writes=True)
    from ketaflow.scheduling.views import _staff

    plan = None
    if body.plan_id:
        from ketaflow.plans.selectors import get_plan

        plan = get_plan(clinic, body.plan_id)
    refs = _body_refs(clinic, body)
    try:
        a = services.book(
            clinic=clinic,
            actor=request.user,
            start=body.start,
            staff=_staff(clinic, body.staff_id),
            **refs,
            minutes=body.minutes,
            plan=plan,
            notes=body.notes,
        )
    except services.ConflictError as exc:
        return _conflict(exc)
    return Status(201, selectors.get_appointment(clinic, a.pk))


@router.post(
    "/appointments/{appointment_id}/reschedule",
    response={201: AppointmentOut, **BOOK_ERRORS},
    summary="Move a visit (the old one is kept as rescheduled)",
)
def reschedule_appointment(request, appointment_id: bounds.Id, body: RescheduleIn):
    clinic = api_require(request, "schedule.book", writes=True)
    a = selectors.get_appointment(clinic, appointment_id)
    try:
        new = services.reschedule(
            appointment=a,
            actor=request.user,
            start=body.start,
            reason=body.reason,
            chair=selectors.get_chair(clinic, body.chair_id),
        )
    except services.ConflictError as exc:
        return _conflict(exc)
    return Status(201, selectors.get_appointment(clinic, new.pk))


@router.post(
    "/appointments/{appointment_id}/cancel",
    response={200: AppointmentOut, **WRITE_ERRORS},
    summary="Cancel a visit",
)
def cancel_appointment(request, appointment_id: bounds.Id, body: AppointmentReasonIn):
    clinic = api_require(request, "schedule.book", writes=True)
    a = selectors.get_appointment(clinic, appointment_id)
    services.cancel(appointment=a, actor=request.user, reason=body.reason)
    return selectors.get_appointment(clinic, a.pk)


@router.post(
    "/appointments/{appointment_id}/no-show",
    response={200: AppointmentOut, **WRITE_ERRORS},
    summary="Record a no-show",
)
def no_show_appointment(request, appointment_id: bounds.Id, body: AppointmentReasonIn):
    clinic = api_require(request, "schedule.book", writes=True)
    a = selectors.get_appointment(clinic, appointment_id)
    services.no_show(appointment=a, actor=request.user, reason=body.reason)
    return selectors.get_appointment(clinic, a.pk)


@router.get(
    "/free-slots", response={200: list[SlotOut], 400: ErrorOut, **ERRORS}, summary="Free slots"
)
def free_slots(
    request,
    patient_id: bounds.Id,
    type_id: bounds.Id,
    location_id: bounds.Id,
    day: bounds.ClinicDate,
    days: int = 1,
    staff_id: bounds.Id | None = None,
    plan_id: bounds.Id | None = None,
):
    """Free (start, chair) pairs for a visit over ``days`` days from ``day``."""
    clinic = api_require(request, "schedule.view")
    from ketaflow.scheduling.views import _staff

    patient = patient_selectors.get_patient(clinic, patient_id)
    type = selectors.get_type(clinic, type_id)
    location = selectors.get_location(clinic, location_id)
    staff = _staff(clinic, staff_id)
    plan = None
    if plan_id:
        from ketaflow.plans.selectors import get_plan

        plan = get_plan(clinic, plan_id)
    days = max(1, min(days, 31))
    start, end = selectors.local_bounds(clinic, day, days)
    planner = Planner(
        clinic=clinic,
        location=location,
        start=start,
        end=end,
        patient=patient,
        staff=staff,
        interval_hours=min_interval_hours(clinic, plan),
    )
    out = []
    for i in range(days):
        out += planner.slots_on(
            day + datetime.timedelta(days=i),
            type=type,
            patient_id=patient.pk,
            staff_id=staff.pk if staff else None,
            limit=50,
        )
    return [s.as_dict() for s in out]
