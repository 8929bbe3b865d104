"""Owner settings (staff hours, type durations, closures), companion visits in a course,
read auditing of the calendar and appointments, and the reminder tick command."""

import datetime
import json
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ketaflow.audit.models import AuditEvent
from ketaflow.clinical import protocols
from ketaflow.plans.models import PlanVersion, TreatmentPlan
from ketaflow.scheduling import services
from ketaflow.scheduling.defaults import ensure_types
from ketaflow.scheduling.models import Appointment, Closure, WorkingHours
from ketaflow.tenancy.models import Chair

UTC = datetime.UTC
MONDAY = datetime.date(2030, 1, 7)


def at(clinic, day, hour, minute=0):
    return datetime.datetime.combine(day, datetime.time(hour, minute), tzinfo=clinic.tz)


def make_plan(clinic, patient, prescriber, code, phase, status="active", dose="56"):
    protocol = protocols.get(code)
    plan = TreatmentPlan.objects.create(clinic=clinic, patient=patient, phase=phase, status=status)
    v = PlanVersion.objects.create(
        clinic=clinic,
        plan=plan,
        number=1,
        protocol_code=code,
        protocol_name=protocol.name,
        protocol_source=protocol.source,
        protocol_data=protocols.to_dict(protocol),
        route=protocol.route,
        prescriber=prescriber,
        phase=phase,
        dose_value=Decimal(dose),
        dose_unit="mg" if protocol.route == "esketamine-nasal" else "mg/kg",
        dose_mg=Decimal(dose),
        weight_kg=Decimal(70),
        calculation={},
        start_date=MONDAY,
        goals="Synthetic goals",
        signed_by=prescriber,
        signed_at=datetime.datetime(2029, 12, 1, tzinfo=UTC),
    )
    plan.current = v
    plan.save()
    return plan


@pytest.fixture
def world(clinic, staff, patient):
    north = clinic.locations.get(name="North")
    Chair.objects.create(clinic=clinic, location=north, name="Room 1", kind="room")
    return {
        "types": ensure_types(clinic),
        "north": north,
        "chair": north.chairs.get(kind="chair"),
        "room": north.chairs.get(kind="room"),
        "patient": patient,
        "desk": staff["front_desk"],
        "nurse": staff["nurse"],
    }


def book_with_nurse(clinic, w, start, type="follow-up"):
    return services.book(
        clinic=clinic,
        actor=w["desk"],
        patient=w["patient"],
        type=w["types"][type],
        location=w["north"],
        start=start,
        chair=w["room"],
        staff=w["nurse"],
    )


# --- Staff working hours -----------------------------------------------------------------


def test_booking_outside_staff_hours_is_refused_with_a_clear_message(clinic, staff, world):
    services.set_working_hours(
        clinic=clinic,
        actor=staff["owner"],
        user=world["nurse"],
        hours=[(0, datetime.time(9), datetime.time(12))],
    )
    with pytest.raises(services.ConflictError) as exc:
        book_with_nurse(clinic, world, at(clinic, MONDAY, 13))
    (conflict,) = exc.value.conflicts
    name = str(world["nurse"])
    assert conflict.kind == "staff_hours"
    assert conflict.message == (
        f"Mon 2030-01-07 13:00-13:30 is outside {name}'s working hours (Monday: 09:00-12:00)."
    )
    with pytest.raises(services.ConflictError) as exc:
        book_with_nurse(clinic, world, at(clinic, MONDAY + datetime.timedelta(days=1), 10))
    assert f"{name} does not work on Tuesdays" in exc.value.conflicts[0].message
    # Ending after the span is outside it too; inside it is booked.
    with pytest.raises(services.ConflictError):
        book_with_nurse(clinic, world, at(clinic, MONDAY, 11, 45))
    assert book_with_nurse(clinic, world, at(clinic, MONDAY, 11, 30)).pk


def test_api_answers_409_for_a_booking_outside_staff_hours(clinic, staff, world, client_for):
    services.set_working_hours(
        clinic=clinic,
        actor=staff["owner"],
        user=world["nurse"],
        hours=[(0, datetime.time(9), datetime.time(12))],
    )
    body = {
        "patient_id": world["patient"].pk,
        "type_id": world["types"]["follow-up"].pk,
        "location_id": world["north"].pk,
        "chair_id": world["room"].pk,
        "staff_id": world["nurse"].pk,
        "start": at(clinic, MONDAY, 14).isoformat(),
    }
    response = client_for(staff["front_desk"]).post(
        "/api/v1/scheduling/appointments", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 409
    conflicts = response.json()["conflicts"]
    assert [c["kind"] for c in conflicts] == ["staff_hours"]
    assert "working hours (Monday: 09:00-12:00)" in conflicts[0]["message"]
    assert not Appointment.objects.exists()


def test_staff_hours_page_saves_replaces_and_is_audited(clinic, staff, world, client_for):
    client = client_for(staff["owner"])
    url = f"/scheduling/settings/staff/{world['nurse'].pk}/"
    assert client.get(url).status_code == 200
    before = AuditEvent.objects.count()
    response = client.post(
        url, {"start_0": "09:00", "end_0": "17:00", "start_2": "08:00", "end_2": "12:00"}
    )
    assert response.status_code == 302
    rows = WorkingHours.objects.filter(user=world["nurse"]).order_by("weekday")
    assert [(r.weekday, r.start, r.end) for r in rows] == [
        (0, datetime.time(9), datetime.time(17)),
        (2, datetime.time(8), datetime.time(12)),
    ]
    event = AuditEvent.objects.latest("id")
    assert AuditEvent.objects.count() == before + 1 and event.action == "update"
    assert event.detail["hours"] == [[0, "09:00", "17:00"], [2, "08:00", "12:00"]]
    bad = client.post(url, {"start_1": "12:00", "end_1": "09:00"})
    assert (
        bad.status_code == 422
        and "Tuesday: the end must be after the start." in bad.content.decode()
    )
    assert WorkingHours.objects.filter(user=world["nurse"]).count() == 2  # unchanged
    half = client.post(url, {"start_3": "12:00"})
    assert half.status_code == 422 and "give both a start and an end" in half.content.decode()
    assert client.post(url, {}).status_code == 302
    assert not WorkingHours.objects.filter(user=world["nurse"]).exists()
    page = client.get("/scheduling/settings/").content.decode()
    assert "None recorded (clinic hours)" in page
    assert client_for(staff["nurse"]).get(url).status_code == 403


def test_only_owner_sets_hours(clinic, staff, world):
    with pytest.raises(PermissionDenied):
        services.set_working_hours(
            clinic=clinic, actor=staff["nurse"], user=staff["nurse"], hours=[]
        )


# --- Appointment type durations ------------------------------------------------------------


def test_esketamine_session_never_below_monitoring_plus_dosing(clinic, staff, world):
    esk = world["types"]["esketamine-session"]
    with pytest.raises(ValidationError) as err:
        services.set_type_minutes(clinic=clinic, actor=staff["owner"], type=esk, minutes=129)
    message = err.value.message_dict["minutes"][0]
    assert "at least 130 min" in message and "120 min monitoring" in message
    before = AuditEvent.objects.count()
    services.set_type_minutes(clinic=clinic, actor=staff["owner"], type=esk, minutes=150)
    esk.refresh_from_db()
    assert esk.minutes == 150
    assert AuditEvent.objects.count() == before + 1
    assert AuditEvent.objects.latest("id").detail == {"fields": ["minutes"], "from": 135, "to": 150}
    with pytest.raises(PermissionDenied):
        services.set_type_minutes(clinic=clinic, actor=staff["prescriber"], type=esk, minutes=140)


def test_a_lowered_stored_minimum_cannot_lower_the_floor(clinic, staff, world):
    esk = world["types"]["esketamine-session"]
    esk.minimum_minutes = 5
    esk.save()
    with pytest.raises(ValidationError):
        services.set_type_minutes(clinic=clinic, actor=staff["owner"], type=esk, minutes=100)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(minutes=st.integers(min_value=-5, max_value=700))
def test_duration_accepted_exactly_between_floor_and_ten_hours(clinic, staff, minutes):
    from ketaflow.scheduling.defaults import FLOOR_MINUTES

    esk = ensure_types(clinic)["esketamine-session"]
    ok = FLOOR_MINUTES["esketamine-session"] <= minutes <= 600
    try:
        services.set_type_minutes(clinic=clinic, actor=staff["owner"], type=esk, minutes=minutes)
    except ValidationError:
        assert not ok
    else:
        assert ok


def test_settings_page_shows_defaults_basis_and_saves_minutes(clinic, staff, world, client_for):
    client = client_for(staff["owner"])
    page = client.get("/scheduling/settings/").content.decode()
    assert "Never below" in page and "at least 2 h monitoring" in page.replace("&#x27;", "'")
    esk = world["types"]["esketamine-session"]
    response = client.post(f"/scheduling/settings/types/{esk.pk}/", {"minutes": "120"}, follow=True)
    assert "lasts at least 130 min" in response.content.decode()
    esk.refresh_from_db()
    assert esk.minutes == 135
    client.post(f"/scheduling/settings/types/{esk.pk}/", {"minutes": "140"})
    esk.refresh_from_db()
    assert esk.minutes == 140


# --- Closures ------------------------------------------------------------------------------


def test_closure_can_be_removed_and_the_day_is_bookable_again(clinic, staff, world, client_for):
    closure = services.add_closure(
        clinic=clinic, actor=staff["owner"], date=MONDAY, reason="Synthetic holiday"
    )
    with pytest.raises(services.ConflictError) as exc:
        book_with_nurse(clinic, world, at(clinic, MONDAY, 10))
    assert exc.value.conflicts[0].kind == "closure"
    client = client_for(staff["owner"])
    assert (
        client_for(staff["nurse"])
        .post(f"/scheduling/settings/closures/{closure.pk}/delete/")
        .status_code
        == 403
    )
    assert client.post(f"/scheduling/settings/closures/{closure.pk}/delete/").status_code == 302
    assert not Closure.objects.exists()
    event = AuditEvent.objects.latest("id")
    assert event.action == "delete" and event.detail["reason"] == "Synthetic holiday"
    assert book_with_nurse(clinic, world, at(clinic, MONDAY, 10)).pk
    assert client.post(f"/scheduling/settings/closures/{closure.pk}/delete/").status_code == 404


# --- Companion visits ----------------------------------------------------------------------


def test_kap_course_proposes_integration_after_each_dose_and_books_in_one_step(
    clinic, staff, world
):
    plan = make_plan(
        clinic,
        world["patient"],
        staff["prescriber"],
        "kap-sublingual-series",
        "dosing-sessions",
        dose="1",
    )
    proposals = services.propose_course(
        clinic=clinic,
        plan=plan,
        location=world["north"],
        start_date=MONDAY,
        visits=3,
        interval_days=7,
    )
    kinds = [p["kind"] for p in proposals]
    assert kinds == [
        "kap_preparation",
        "dose",
        "integration",
        "dose",
        "integration",
        "dose",
        "integration",
    ]
    tz = clinic.tz
    prep = proposals[0]["slot"].start.astimezone(tz).date()
    first_dose = proposals[1]["slot"].start.astimezone(tz).date()
    assert first_dose - datetime.timedelta(days=3) <= prep < first_dose
    for dose, integration in zip(proposals[1::2], proposals[2::2], strict=True):
        d = dose["slot"].start.astimezone(tz).date()
        i = integration["slot"].start.astimezone(tz).date()
        assert 1 <= (i - d).days <= 3  # the clinic's companion window (default 3 days)
        assert integration["after"] == dose["visit"] and integration["type"].code == "integration"
        assert "KAP practice" in integration["basis"]
    booked = services.book_course(
        clinic=clinic,
        actor=world["desk"],
        plan=plan,
        location=world["north"],
        visits=[
            {
                "start": p["slot"].start,
                "chair": p["slot"].chair,
                "visit": p["visit"],
                "type": p["type"],
            }
            for p in proposals
        ],
    )
    assert len(booked) == 7
    rows = Appointment.objects.filter(plan=plan).order_by("start")
    assert [a.type.code for a in rows] == [
        "kap-preparation",
        "kap-dosing",
        "integration",
        "kap-dosing",
        "integration",
        "kap-dosing",
        "integration",
    ]
    assert [a.visit_number for a in rows if a.type.is_dose] == [1, 2, 3]
    assert all(a.visit_number is None and a.staff is None for a in rows if not a.type.is_dose)
    event = AuditEvent.objects.latest("id")
    assert event.detail["visits"] == 3 and event.detail["companions"] == 4
    # Proposing again: the preparation session exists, so it is not proposed twice.
    again = services.propose_course(
        clinic=clinic,
        plan=plan,
        location=world["north"],
        start_date=MONDAY + datetime.timedelta(days=28),
        visits=1,
        interval_days=7,
    )
    assert [p["kind"] for p in again] == ["dose", "integration"]


def test_companion_window_setting_and_protocol_window(clinic, staff, world):
    from ketaflow.scheduling.selectors import schedule_settings

    row = schedule_settings(clinic)
    row.companion_window_days = 1
    row.save()
    plan = make_plan(
        clinic,
        world["patient"],
        staff["prescriber"],
        "kap-sublingual-series",
        "dosing-sessions",
        dose="1",
    )
    # Friday dose: the next day is Saturday (closed), so a one-day window finds no slot.
    friday = MONDAY + datetime.timedelta(days=4)
    proposals = services.propose_course(
        clinic=clinic,
        plan=plan,
        location=world["north"],
        start_date=friday,
        visits=1,
        interval_days=7,
    )
    integration = next(p for p in proposals if p["kind"] == "integration")
    assert integration["slot"] is None
    row.companion_window_days = 3
    row.save()
    proposals = services.propose_course(
        clinic=clinic,
        plan=plan,
        location=world["north"],
        start_date=friday,
        visits=1,
        interval_days=7,
    )
    integration = next(p for p in proposals if p["kind"] == "integration")
    assert integration["slot"].start.astimezone(clinic.tz).date() == friday + datetime.timedelta(
        days=3
    )


def test_course_with_a_conflicting_companion_books_nothing(clinic, staff, world, make_patient):
    plan = make_plan(
        clinic,
        world["patient"],
        staff["prescriber"],
        "kap-sublingual-series",
        "dosing-sessions",
        dose="1",
    )
    other = make_patient(clinic)
    services.book(
        clinic=clinic,
        actor=world["desk"],
        patient=other,
        type=world["types"]["follow-up"],
        location=world["north"],
        start=at(clinic, MONDAY + datetime.timedelta(days=1), 10),
        chair=world["room"],
    )
    visits = [
        {"start": at(clinic, MONDAY, 9), "chair": world["room"], "visit": 1},
        {
            "start": at(clinic, MONDAY + datetime.timedelta(days=1), 10),
            "chair": world["room"],
            "type": world["types"]["integration"],
        },
    ]
    with pytest.raises(services.ConflictError) as exc:
        services.book_course(
            clinic=clinic, actor=world["desk"], plan=plan, location=world["north"], visits=visits
        )
    assert exc.value.index == 1
    assert not Appointment.objects.filter(plan=plan).exists()


def test_consultation_before_course_only_for_a_draft_plan_without_one(clinic, staff, world):
    active = make_plan(clinic, world["patient"], staff["prescriber"], "esketamine-trd", "induction")
    kinds = {
        p["kind"]
        for p in services.propose_course(
            clinic=clinic, plan=active, location=world["north"], start_date=MONDAY
        )
    }
    assert kinds == {"dose"}
    draft = make_plan(
        clinic, world["patient"], staff["prescriber"], "esketamine-trd", "induction", status="draft"
    )
    proposals = services.propose_course(
        clinic=clinic,
        plan=draft,
        location=world["north"],
        start_date=MONDAY + datetime.timedelta(days=1),
    )
    assert proposals[0]["kind"] == "consultation" and proposals[0]["type"].code == "consultation"
    assert [p["kind"] for p in proposals[1:]] == ["dose"] * 8


def test_course_page_lists_companions_and_confirms_them(clinic, staff, world, client_for):
    plan = make_plan(
        clinic,
        world["patient"],
        staff["prescriber"],
        "kap-sublingual-series",
        "dosing-sessions",
        dose="1",
    )
    client = client_for(staff["front_desk"])
    url = f"/scheduling/plan/{plan.pk}/course/"
    params = {
        "start_date": "2030-01-07",
        "location": world["north"].pk,
        "visits": "2",
        "interval_days": "7",
        "propose": "1",
    }
    page = client.get(url, params).content.decode()
    assert "Integration therapy" in page and "After dose 1" in page and "Before the course" in page
    proposals = services.propose_course(
        clinic=clinic,
        plan=plan,
        location=world["north"],
        start_date=MONDAY,
        visits=2,
        interval_days=7,
    )
    data = {"confirm": "1", "count": str(len(proposals)), "location": world["north"].pk}
    for i, p in enumerate(proposals):
        data[f"start_{i}"] = p["slot"].start.astimezone(clinic.tz).strftime("%Y-%m-%dT%H:%M")
        data[f"chair_{i}"] = p["slot"].chair.pk
        data[f"visit_{i}"] = p["visit"] or ""
        data[f"type_{i}"] = p["type"].pk
    data["skip_0"] = "1"  # leave out the preparation session
    response = client.post(url, data)
    assert response.status_code == 302
    codes = sorted(Appointment.objects.filter(plan=plan).values_list("type__code", flat=True))
    assert codes == ["integration", "integration", "kap-dosing", "kap-dosing"]


# --- Read auditing -------------------------------------------------------------------------


def test_opening_an_appointment_and_a_calendar_with_names_is_audited(
    clinic, staff, world, client_for
):
    client = client_for(staff["nurse"])
    url = f"/scheduling/?location={world['north'].pk}&date=2030-01-07"
    client.get(url)
    # An empty calendar is a list read too (the query is part of the trail), naming nobody.
    empty = AuditEvent.objects.get(action="read")
    assert empty.detail["count"] == 0 and empty.detail["patients"] == []
    a = book_with_nurse(clinic, world, at(clinic, MONDAY, 10))
    client.get(url)
    event = AuditEvent.objects.filter(action="read").latest("id")
    assert event.patient is None and event.object_type == "scheduling.calendar"
    assert event.detail["appointments"] == 1
    assert event.detail["filters"]["location"] == world["north"].pk
    assert event.detail["patients"] == [world["patient"].pk]
    client.get(f"/scheduling/day/?location={world['north'].pk}&date=2030-01-07")
    assert AuditEvent.objects.filter(action="read", object_type="scheduling.calendar").count() == 3
    client.get(f"/scheduling/appointments/{a.pk}/")
    event = AuditEvent.objects.filter(action="read").latest("id")
    assert event.patient_id == world["patient"].pk and event.object_id == str(a.pk)
    assert AuditEvent.objects.filter(action="read", patient=world["patient"]).count() == 1
    client.get(f"/api/v1/scheduling/appointments/{a.pk}")
    assert AuditEvent.objects.filter(action="read", patient=world["patient"]).count() == 2


# --- Reminders tick ------------------------------------------------------------------------


def test_scheduling_tick_sends_due_reminders_once(clinic, staff, world, mailoutbox):
    from django.utils import timezone

    world["patient"].email = "patient@example.test"
    world["patient"].save()
    now = timezone.now().astimezone(clinic.tz)
    day = now.date() + datetime.timedelta(days=1)
    while day.weekday() >= 5:
        day += datetime.timedelta(days=1)
    a = Appointment.objects.create(
        clinic=clinic,
        patient=world["patient"],
        type=world["types"]["follow-up"],
        location=world["north"],
        chair=world["room"],
        start=now + datetime.timedelta(hours=2),
        end=now + datetime.timedelta(hours=3),
        booked_by=world["desk"],
    )
    call_command("scheduling_tick", "--now")
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["patient@example.test"]
    a.refresh_from_db()
    assert a.reminder_sent_at is not None
    call_command("scheduling_tick", "--now")
    assert len(mailoutbox) == 1
