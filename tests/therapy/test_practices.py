"""Goals with measured targets, practices between sessions, and the patient's practice link
(only the token's SHA-256 stored, expiry, withdrawal, shown once)."""

import datetime
import hashlib

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from ketaflow.audit.models import AuditEvent
from ketaflow.therapy import selectors, services
from ketaflow.therapy.models import PracticeEntry, PracticeLink


@pytest.fixture
def walk(staff, patient):
    return services.save_practice(
        patient=patient,
        actor=staff["therapist"],
        data={"kind": "exercise", "title": "Walk 20 minutes", "days_per_week": "5", "active": "on"},
    )


@pytest.fixture
def journal(staff, patient):
    return services.save_practice(
        patient=patient,
        actor=staff["therapist"],
        data={
            "kind": "journaling",
            "title": "Write three lines",
            "days_per_week": "7",
            "active": "on",
        },
    )


def test_link_stores_only_the_hash_and_is_shown_once(clinic, staff, patient, walk, client_for):
    c = client_for(staff["therapist"])
    r = c.post(f"/therapy/patients/{patient.pk}/practice-link/")
    assert r.status_code == 200 and "no-store" in r["Cache-Control"]
    link = PracticeLink.objects.get()
    html = r.content.decode()
    start = html.index("/therapy/r/") + len("/therapy/r/")
    raw = html[start : html.index("/", start)]
    assert link.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str(PracticeLink.objects.values_list())
    assert raw not in c.get(f"/therapy/patients/{patient.pk}/plan/").content.decode()


def test_patient_ticks_practices_through_the_link(clinic, staff, patient, walk, journal):
    _link, raw = services.create_practice_link(patient=patient, actor=staff["therapist"])
    today = clinic.today()
    yesterday = today - datetime.timedelta(days=1)
    anon = Client(enforce_csrf_checks=True)  # no session, no CSRF token: the token is the key
    page = anon.get(f"/therapy/r/{raw}/")
    assert page.status_code == 200 and "Walk 20 minutes" in page.content.decode()
    assert page["Referrer-Policy"] == "no-referrer"
    r = anon.post(
        f"/therapy/r/{raw}/",
        {"done": [f"{walk.pk}:{today}", f"{walk.pk}:{yesterday}", f"{journal.pk}:{today}"]},
    )
    assert r.status_code == 200 and "Saved" in r.content.decode()
    done = set(PracticeEntry.objects.filter(done=True).values_list("practice_id", "day"))
    assert done == {(walk.pk, today), (walk.pk, yesterday), (journal.pk, today)}
    assert all(e.source == "link" for e in PracticeEntry.objects.all())
    ev = AuditEvent.objects.filter(clinic=clinic).latest("seq")
    assert (
        ev.actor is None and ev.actor_label == "patient (practice link)" and ev.patient == patient
    )
    # Unticking a day stores it as not done.
    anon.post(f"/therapy/r/{raw}/", {"done": [f"{walk.pk}:{today}"]})
    assert set(PracticeEntry.objects.filter(done=True).values_list("practice_id", "day")) == {
        (walk.pk, today)
    }
    # The weekly grid shows it.
    weeks = selectors.practice_weeks(patient, weeks=1)
    row = next(r for r in weeks[-1].rows if r[0] == walk)
    assert row[1][today.weekday()].state == "done" and row[2] == 1


def test_ticks_outside_the_link_are_refused(clinic, staff, patient, make_patient, walk):
    other = make_patient(clinic)
    theirs = services.save_practice(
        patient=other,
        actor=staff["therapist"],
        data={"kind": "sleep", "title": "Bed by 23:00", "days_per_week": "7", "active": "on"},
    )
    link, raw = services.create_practice_link(patient=patient, actor=staff["therapist"])
    today = clinic.today()
    with pytest.raises(ValidationError):
        services.submit_practices(link=link, ticks={(theirs.pk, today.isoformat())})
    future = today + datetime.timedelta(days=1)
    with pytest.raises(ValidationError):
        services.submit_practices(link=link, ticks={(walk.pk, future.isoformat())})
    r = Client().post(f"/therapy/r/{raw}/", {"done": [f"{theirs.pk}:{today}"]})
    assert r.status_code == 404 and not PracticeEntry.objects.exists()


@pytest.mark.parametrize("state", ["unknown", "expired", "revoked"])
def test_invalid_links_get_one_neutral_page(clinic, staff, patient, walk, state):
    link, raw = services.create_practice_link(patient=patient, actor=staff["therapist"])
    if state == "unknown":
        raw = raw[:-2] + ("AA" if not raw.endswith("AA") else "BB")
    elif state == "expired":
        PracticeLink.objects.filter(pk=link.pk).update(expires_at="2000-01-01T00:00:00Z")
    else:
        services.revoke_practice_link(link=link, actor=staff["therapist"])
    r = Client().get(f"/therapy/r/{raw}/")
    assert r.status_code == 404 and "not valid any more" in r.content.decode()


def test_link_needs_a_practice_and_expires_per_setting(clinic, staff, patient):
    with pytest.raises(ValidationError):
        services.create_practice_link(patient=patient, actor=staff["therapist"])
    services.save_practice(
        patient=patient,
        actor=staff["therapist"],
        data={
            "kind": "mindfulness",
            "title": "Breathing 10 min",
            "days_per_week": "3",
            "active": "on",
        },
    )
    link, _ = services.create_practice_link(patient=patient, actor=staff["therapist"])
    assert (link.expires_at - link.created_at).days in (6, 7)


def test_goal_progress_from_its_measure(clinic, staff, patient):
    from ketaflow.measures import services as measures

    goal = services.save_goal(
        patient=patient,
        actor=staff["therapist"],
        data={
            "title": "Mood lifts",
            "status": "active",
            "instrument": "phq9",
            "comparator": "lt",
            "threshold": "10",
            "target_date": "2027-01-31",
        },
    )
    assert goal.target_text() == "PHQ-9 below 10"
    (row,) = selectors.goal_rows(patient)
    assert row.met is None
    measures.record_administration(
        patient=patient,
        actor=staff["nurse"],
        instrument="phq9",
        answers={str(i): 1 for i in range(1, 10)} | {"9": 0},
    )
    (row,) = selectors.goal_rows(patient)
    assert row.latest.total == 8 and row.met is True
    with pytest.raises(ValidationError) as exc:
        services.save_goal(
            patient=patient,
            actor=staff["therapist"],
            data={
                "title": "x",
                "status": "active",
                "instrument": "phq9",
                "comparator": "lt",
                "threshold": "99",
            },
        )
    assert "threshold" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.save_goal(
            patient=patient,
            actor=staff["therapist"],
            data={"title": "x", "status": "active", "instrument": "wsas"},
        )
    assert {"comparator", "threshold"} <= set(exc.value.message_dict)


def test_plan_page_queries_are_constant(clinic, staff, patient, walk, client_for):
    c = client_for(staff["therapist"])
    url = f"/therapy/patients/{patient.pk}/plan/"
    c.get(url)
    with CaptureQueriesContext(connection) as few:
        c.get(url)
    for n in range(4):
        p = services.save_practice(
            patient=patient,
            actor=staff["therapist"],
            data={
                "kind": "social",
                "title": f"Call a friend {n}",
                "days_per_week": "2",
                "active": "on",
            },
        )
        PracticeEntry.objects.create(
            clinic=clinic,
            practice=p,
            patient=patient,
            day=clinic.today(),
            done=True,
            source="clinician",
            recorded_at=selectors.now(),
        )
        services.save_goal(
            patient=patient,
            actor=staff["therapist"],
            data={"title": f"Goal {n}", "status": "active"},
        )
    with CaptureQueriesContext(connection) as many:
        c.get(url)
    assert len(many) == len(few)


def test_clinician_records_a_day_the_patient_reported(clinic, staff, patient, walk):
    today = clinic.today()
    entry = services.record_practice_day(
        practice=walk, actor=staff["therapist"], day=today.isoformat(), done=True
    )
    assert (entry.done, entry.source, entry.link) == (True, "clinician", None)
    ev = AuditEvent.objects.filter(clinic=clinic).latest("seq")
    assert (ev.action, ev.actor, ev.patient) == ("create", staff["therapist"], patient)
    assert ev.detail == {"day": today.isoformat(), "done": True, "before": None}
    # Pressed again: not done; still one entry, and the change is on record.
    services.record_practice_day(practice=walk, actor=staff["prescriber"], day=today, done=False)
    (entry,) = PracticeEntry.objects.all()
    assert entry.done is False
    ev = AuditEvent.objects.filter(clinic=clinic).latest("seq")
    assert ev.action == "update" and ev.detail["before"] is True
    # The patient's link later replaces the clinician's entry.
    link, _raw = services.create_practice_link(patient=patient, actor=staff["therapist"])
    services.submit_practices(link=link, ticks={(walk.pk, today.isoformat())})
    (entry,) = PracticeEntry.objects.all()
    assert (entry.done, entry.source) == (True, "link")


@pytest.mark.parametrize(
    ("make_day", "message"),
    [
        (lambda today, first: "tomorrow", "YYYY-MM-DD"),
        (lambda today, first: "2026-02-30", "YYYY-MM-DD"),
        (lambda today, first: str(today + datetime.timedelta(days=1)), "after today"),
        (lambda today, first: str(first - datetime.timedelta(days=1)), "the practice was set"),
    ],
    ids=["words", "no such date", "future", "before the practice"],
)
def test_recording_a_day_refuses_bad_days(clinic, staff, walk, make_day, message):
    day = make_day(clinic.today(), services.practice_first_day(walk))
    with pytest.raises(ValidationError) as exc:
        services.record_practice_day(practice=walk, actor=staff["therapist"], day=day, done=True)
    assert message in " ".join(exc.value.message_dict["day"])
    assert not PracticeEntry.objects.exists()


def test_recording_needs_an_active_practice_and_the_write_permission(clinic, staff, walk):
    from django.core.exceptions import PermissionDenied

    today = clinic.today()
    for role in ("nurse", "front_desk"):
        with pytest.raises(PermissionDenied):
            services.record_practice_day(practice=walk, actor=staff[role], day=today, done=True)
    services.save_practice(
        patient=walk.patient,
        actor=staff["therapist"],
        data={"kind": "exercise", "title": walk.title, "days_per_week": "5"},
        practice=walk,
    )  # unchecked "active": stopped
    with pytest.raises(ValidationError) as exc:
        services.record_practice_day(practice=walk, actor=staff["therapist"], day=today, done=True)
    assert "stopped" in exc.value.message_dict["practice"][0]
    assert not PracticeEntry.objects.exists()


def test_grid_buttons_record_days_in_the_browser_and_the_api(
    clinic, staff, patient, walk, client_for
):
    today = clinic.today()
    c = client_for(staff["therapist"])
    page = c.get(f"/therapy/patients/{patient.pk}/plan/").content.decode()
    assert f'action="/therapy/practices/{walk.pk}/day/"' in page and "mark done" in page
    # htmx: the grid comes back with the day marked
    r = c.post(
        f"/therapy/practices/{walk.pk}/day/",
        {"day": today.isoformat(), "done": "1"},
        HTTP_HX_REQUEST="true",
    )
    grid = r.content.decode()
    assert r.status_code == 200 and grid.startswith('<div id="kf-practice-grid">')
    assert "1 of 5" in grid and "mark not done" in grid
    assert grid.count("<table") == 4  # the plan page's four weeks (the course view shows two)
    r = c.post(
        f"/therapy/practices/{walk.pk}/day/",
        {"day": today.isoformat(), "done": "1", "weeks": "2"},
        HTTP_HX_REQUEST="true",
    )
    assert r.content.decode().count("<table") == 2
    # bad input: the grid says why, nothing is stored
    r = c.post(
        f"/therapy/practices/{walk.pk}/day/",
        {"day": "not a day", "done": "1"},
        HTTP_HX_REQUEST="true",
    )
    assert 'role="alert"' in r.content.decode() and "YYYY-MM-DD" in r.content.decode()
    # without htmx: back to the page with a message
    r = c.post(f"/therapy/practices/{walk.pk}/day/", {"day": today.isoformat(), "done": "0"})
    assert r.status_code == 302 and r["Location"] == f"/therapy/patients/{patient.pk}/plan/"
    assert PracticeEntry.objects.get().done is False
    # a nurse sees the grid without buttons
    nurse_page = client_for(staff["nurse"]).get(f"/therapy/patients/{patient.pk}/plan/")
    assert "/day/" not in nurse_page.content.decode()
    # API
    yesterday = (today - datetime.timedelta(days=1)).isoformat()
    r = c.post(
        f"/api/v1/therapy/practices/{walk.pk}/days",
        {"day": yesterday, "done": True},
        content_type="application/json",
    )
    assert r.status_code == 200, r.content
    assert r.json() == {
        "practice_id": walk.pk,
        "day": yesterday,
        "done": True,
        "source": "clinician",
    }
    r = c.post(
        f"/api/v1/therapy/practices/{walk.pk}/days",
        {"day": "31/12/2026"},
        content_type="application/json",
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "day"


@pytest.mark.django_db(transaction=True)
def test_clinicians_and_the_link_recording_the_same_day_at_once(
    clinic, staff, patient, walk, monkeypatch
):
    import time

    from ketaflow.testing.concurrency import at_once

    def slowly(fn):  # every writer reaches "is there an entry?" at about the same moment
        def slow(*args, **kwargs):
            time.sleep(0.2)
            return fn(*args, **kwargs)

        return slow

    monkeypatch.setattr(services, "practice_first_day", slowly(services.practice_first_day))
    monkeypatch.setattr(services, "link_days", slowly(services.link_days))
    today = clinic.today()
    link, _raw = services.create_practice_link(patient=patient, actor=staff["therapist"])
    results = at_once(
        lambda: services.record_practice_day(
            practice=walk, actor=staff["therapist"], day=today, done=True
        ),
        lambda: services.record_practice_day(
            practice=walk, actor=staff["prescriber"], day=today, done=False
        ),
        lambda: services.submit_practices(link=link, ticks={(walk.pk, today.isoformat())}),
    )
    assert not any(isinstance(r, Exception) for r in results), results
    assert PracticeEntry.objects.filter(practice=walk, day=today).count() == 1
    assert AuditEvent.objects.filter(object_type="therapy.practiceentry").count() == 2
