import datetime
import itertools
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from ketaflow.clinical import protocols
from ketaflow.plans.models import PlanVersion, TreatmentPlan
from ketaflow.scheduling import services
from ketaflow.scheduling.defaults import ensure_types
from ketaflow.scheduling.models import Appointment, Closure

UTC = datetime.UTC


def local(clinic, y, m, d, h, mi=0):
    return datetime.datetime(y, m, d, h, mi, tzinfo=clinic.tz)


def make_plan(clinic, patient, prescriber, code="esketamine-trd", phase="induction"):
    protocol = protocols.get(code)
    plan = TreatmentPlan.objects.create(
        clinic=clinic, patient=patient, phase=phase, status="active"
    )
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
        dose_value=Decimal(56),
        dose_unit="mg",
        dose_mg=Decimal(56),
        weight_kg=Decimal(70),
        calculation={},
        start_date=datetime.date(2025, 10, 27),
        goals="g",
        signed_by=prescriber,
        signed_at=datetime.datetime(2025, 10, 1, tzinfo=UTC),
    )
    plan.current = v
    plan.save()
    return plan


@pytest.fixture
def cal(clinic, staff, patient, make_patient):
    types = ensure_types(clinic)
    north = clinic.locations.get(name="North")
    chair = north.chairs.get()
    from ketaflow.tenancy.models import Chair

    room = Chair.objects.create(clinic=clinic, location=north, name="Room 1", kind="room")
    return {
        "types": types,
        "north": north,
        "chair": chair,
        "room": room,
        "actor": staff["front_desk"],
        "patient": patient,
        "other": make_patient(clinic),
        "nurse": staff["nurse"],
    }


def book(
    clinic, cal, *, patient=None, start, type="consultation", chair="default", staff=None, plan=None
):
    return services.book(
        clinic=clinic,
        actor=cal["actor"],
        patient=patient or cal["patient"],
        type=cal["types"][type],
        location=cal["north"],
        start=start,
        chair=(cal["room"] if cal["types"][type].resource == "room" else cal["chair"])
        if chair == "default"
        else chair,
        staff=staff,
        plan=plan,
    )


def kinds(exc):
    return {c.kind for c in exc.value.conflicts}


def test_chair_double_booking(clinic, cal):
    book(clinic, cal, start=local(clinic, 2030, 1, 7, 9))
    with pytest.raises(services.ConflictError) as exc:
        book(clinic, cal, patient=cal["other"], start=local(clinic, 2030, 1, 7, 9, 30))
    assert kinds(exc) == {"room"}


def test_staff_and_patient_double_booking(clinic, cal):
    book(
        clinic,
        cal,
        start=local(clinic, 2030, 1, 7, 9),
        type="telehealth",
        chair=None,
        staff=cal["nurse"],
    )
    with pytest.raises(services.ConflictError) as exc:
        book(
            clinic,
            cal,
            patient=cal["other"],
            start=local(clinic, 2030, 1, 7, 9, 15),
            type="telehealth",
            chair=None,
            staff=cal["nurse"],
        )
    assert kinds(exc) == {"staff"}
    with pytest.raises(services.ConflictError) as exc:
        book(clinic, cal, start=local(clinic, 2030, 1, 7, 9, 15), type="telehealth", chair=None)
    assert kinds(exc) == {"patient"}


def test_doses_closer_than_the_minimum_interval(clinic, cal, staff):
    plan = make_plan(clinic, cal["patient"], staff["prescriber"])
    book(clinic, cal, start=local(clinic, 2030, 1, 7, 10), type="esketamine-session", plan=plan)
    with pytest.raises(services.ConflictError) as exc:
        book(clinic, cal, start=local(clinic, 2030, 1, 8, 9), type="esketamine-session", plan=plan)
    assert kinds(exc) == {"min_interval"}
    assert "24 h" in str(exc.value)
    book(clinic, cal, start=local(clinic, 2030, 1, 8, 10), type="esketamine-session", plan=plan)


def test_outside_hours_closures_and_weekends(clinic, cal, staff):
    Closure.objects.create(clinic=clinic, date=datetime.date(2030, 1, 9), reason="Staff training")
    for start, kind in [
        (local(clinic, 2030, 1, 7, 17, 30), "hours"),
        (local(clinic, 2030, 1, 12, 10), "hours"),  # Saturday
        (local(clinic, 2030, 1, 9, 10), "closure"),
    ]:
        with pytest.raises(services.ConflictError) as exc:
            book(clinic, cal, start=start)
        assert kind in kinds(exc)


def test_esketamine_sessions_keep_at_least_two_hours_of_monitoring(clinic, cal):
    with pytest.raises(ValidationError):
        services.book(
            clinic=clinic,
            actor=cal["actor"],
            patient=cal["patient"],
            type=cal["types"]["esketamine-session"],
            location=cal["north"],
            start=local(clinic, 2030, 1, 7, 9),
            chair=cal["chair"],
            minutes=90,
        )


def test_course_across_closure_and_weekend(clinic, cal, staff):
    plan = make_plan(clinic, cal["patient"], staff["prescriber"])
    Closure.objects.create(clinic=clinic, date=datetime.date(2030, 1, 10), reason="Holiday")
    proposals = services.propose_course(
        clinic=clinic,
        plan=plan,
        location=cal["north"],
        start_date=datetime.date(2030, 1, 7),
    )
    assert len(proposals) == 8
    days = [p["slot"].start.astimezone(clinic.tz) for p in proposals]
    assert all(d.weekday() < 5 for d in days)
    assert datetime.date(2030, 1, 10) not in {d.date() for d in days}
    assert days[1].date() == datetime.date(2030, 1, 11) and proposals[1]["moved"]
    gaps = [(b - a).total_seconds() / 3600 for a, b in itertools.pairwise(days)]
    assert min(gaps) >= 24
    booked = services.book_course(
        clinic=clinic,
        actor=cal["actor"],
        plan=plan,
        location=cal["north"],
        visits=[
            {"start": p["slot"].start, "chair": p["slot"].chair, "visit": p["visit"]}
            for p in proposals
        ],
    )
    assert len(booked) == 8 and Appointment.objects.filter(plan=plan).count() == 8


def test_course_booking_is_all_or_nothing(clinic, cal, staff):
    plan = make_plan(clinic, cal["patient"], staff["prescriber"])
    taken = book(
        clinic,
        cal,
        patient=cal["other"],
        start=local(clinic, 2030, 1, 10, 9),
        type="esketamine-session",
    )
    visits = [
        {"start": local(clinic, 2030, 1, 7, 9), "chair": cal["chair"], "visit": 1},
        {"start": local(clinic, 2030, 1, 10, 9), "chair": cal["chair"], "visit": 2},
    ]
    with pytest.raises(services.ConflictError) as exc:
        services.book_course(
            clinic=clinic, actor=cal["actor"], plan=plan, location=cal["north"], visits=visits
        )
    assert exc.value.index == 1 and exc.value.conflicts[0].appointment_id == taken.pk
    assert not Appointment.objects.filter(plan=plan).exists()


@pytest.mark.parametrize(
    ("start", "before", "after"),
    [(datetime.date(2025, 10, 27), 13, 14), (datetime.date(2026, 3, 2), 14, 13)],
)
def test_course_across_daylight_saving_change_keeps_local_time(
    clinic, cal, staff, start, before, after
):
    assert clinic.timezone == "America/New_York"
    plan = make_plan(clinic, cal["patient"], staff["prescriber"])
    proposals = services.propose_course(
        clinic=clinic,
        plan=plan,
        location=cal["north"],
        start_date=start,
        prefer=datetime.time(9, 0),
    )
    slots = [p["slot"] for p in proposals]
    assert {s.start.astimezone(clinic.tz).time() for s in slots} == {datetime.time(9, 0)}
    utc_hours = [s.start.astimezone(UTC).hour for s in slots]
    assert utc_hours[0] == before and utc_hours[-1] == after
    booked = services.book_course(
        clinic=clinic,
        actor=cal["actor"],
        plan=plan,
        location=cal["north"],
        visits=[{"start": s.start, "chair": s.chair, "visit": i + 1} for i, s in enumerate(slots)],
    )
    assert [a.start.astimezone(clinic.tz).hour for a in booked] == [9] * len(booked)


def test_reschedule_into_conflict_is_refused_and_history_kept(clinic, cal):
    a = book(clinic, cal, start=local(clinic, 2030, 1, 7, 9))
    book(clinic, cal, patient=cal["other"], start=local(clinic, 2030, 1, 7, 11))
    with pytest.raises(services.ConflictError):
        services.reschedule(
            appointment=a, actor=cal["actor"], start=local(clinic, 2030, 1, 7, 11), reason="Asked"
        )
    new = services.reschedule(
        appointment=a, actor=cal["actor"], start=local(clinic, 2030, 1, 7, 13), reason="Asked"
    )
    a.refresh_from_db()
    assert a.status == "rescheduled" and a.status_reason == "Asked" and new.rescheduled_from == a
    with pytest.raises(ValidationError):
        services.cancel(appointment=new, actor=cal["actor"], reason="")
    services.no_show(appointment=new, actor=cal["actor"], reason="Did not come")


def test_api_conflict_is_409_with_details(clinic, cal, client_for, staff):
    first = book(clinic, cal, start=local(clinic, 2030, 1, 7, 9))
    body = {
        "patient_id": cal["other"].pk,
        "type_id": cal["types"]["consultation"].pk,
        "location_id": cal["north"].pk,
        "chair_id": cal["room"].pk,
        "start": local(clinic, 2030, 1, 7, 9, 30).isoformat(),
    }
    r = client_for(staff["front_desk"]).post(
        "/api/v1/scheduling/appointments", body, content_type="application/json"
    )
    assert r.status_code == 409
    assert r.json()["conflicts"][0] == {
        "kind": "room",
        "message": r.json()["conflicts"][0]["message"],
        "appointment_id": first.pk,
    }
    slots = client_for(staff["front_desk"]).get(
        f"/api/v1/scheduling/free-slots?patient_id={cal['other'].pk}&type_id={cal['types']['consultation'].pk}"
        f"&location_id={cal['north'].pk}&day=2030-01-07"
    )
    assert slots.status_code == 200 and slots.json()[0]["start"].startswith("2030-01-07T13:00")


def test_reminder_email_has_route_preparation_and_ics(
    clinic, cal, staff, mailoutbox, django_capture_on_commit_callbacks
):
    cal["patient"].email = "riley@example.test"
    cal["patient"].save()
    start = (datetime.datetime.now(UTC) + datetime.timedelta(days=1)).astimezone(clinic.tz)
    start = start.replace(hour=10, minute=0, second=0, microsecond=0)
    while start.weekday() >= 5 or start <= datetime.datetime.now(UTC):
        start += datetime.timedelta(days=1)
    from ketaflow.scheduling.models import ScheduleSettings

    ScheduleSettings.objects.create(clinic=clinic, reminder_lead_hours=24 * 5)
    with django_capture_on_commit_callbacks(execute=True):
        book(clinic, cal, start=start, type="esketamine-session")
    assert len(mailoutbox) == 1
    body = mailoutbox[0].body
    assert "no food for 2 hours" in body and "no liquids for 30 minutes" in body and "ride" in body
    guide = f"/education/c/{clinic.slug}/esketamine-nasal/"
    assert guide in body
    from django.test import Client

    assert Client().get(guide).status_code == 200  # public, no sign-in
    _name, content, mime = mailoutbox[0].attachments[0]
    assert mime == "text/calendar" and "BEGIN:VEVENT" in content


def test_staff_feed_token_is_hashed_and_required(clinic, cal, staff, client_for):
    from django.test import Client

    from ketaflow.scheduling.models import FeedToken

    book(
        clinic,
        cal,
        start=datetime.datetime.now(UTC) + datetime.timedelta(days=400),
        type="telehealth",
        chair=None,
        staff=cal["nurse"],
    ) if False else None
    token = services.new_feed_token(clinic=clinic, actor=cal["nurse"])
    row = FeedToken.objects.get(user=cal["nurse"])
    assert token not in row.token_hash and len(row.token_hash) == 64
    r = Client().get(f"/scheduling/feed/{token}.ics")
    assert r.status_code == 200 and r.content.startswith(b"BEGIN:VCALENDAR")
    assert Client().get("/scheduling/feed/kfcal_wrong.ics").status_code == 404
    services.new_feed_token(clinic=clinic, actor=cal["nurse"])
    assert Client().get(f"/scheduling/feed/{token}.ics").status_code == 404


def test_week_view_query_count_is_constant(
    clinic, cal, client_for, staff, make_patient, django_assert_max_num_queries
):
    client = client_for(staff["owner"])
    url = f"/scheduling/?location={cal['north'].pk}&date=2030-01-07"
    # One visit already: the page then shows names and records its read event.
    book(clinic, cal, patient=make_patient(clinic), start=local(clinic, 2030, 1, 7, 16))
    client.get(url)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for day in range(7, 12):
        for hour in (8, 10, 12, 14):
            book(
                clinic,
                cal,
                patient=make_patient(clinic),
                start=local(clinic, 2030, 1, day, hour),
                type="follow-up",
            )
    with CaptureQueriesContext(connection) as many:
        page = client.get(url)
    assert page.content.decode().count('class="appt') == 21
    assert len(many) == len(few)
