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
    assert r.status_code == 200 and r["Cache-Control"] == "no-store"
    link = PracticeLink.objects.get()
    html = r.content.decode()
    start = html.index("/therapy/r/") + len("/therapy/r/")
    raw = html[start : html.index("/", start)]
    assert link.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str(PracticeLink.objects.values_list())
    assert raw not in c.get(f"/therapy/patients/{patient.pk}/plan/").content.decode()


def test_patient_ticks_practices_through_the_link(clinic, staff, patient, walk, journal):
    _link, raw = services.create_practice_link(patient=patient, actor=staff["therapist"])
    today = selectors.today(clinic)
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
    assert row[1][today.weekday()] == "done" and row[2] == 1


def test_ticks_outside_the_link_are_refused(clinic, staff, patient, make_patient, walk):
    other = make_patient(clinic)
    theirs = services.save_practice(
        patient=other,
        actor=staff["therapist"],
        data={"kind": "sleep", "title": "Bed by 23:00", "days_per_week": "7", "active": "on"},
    )
    link, raw = services.create_practice_link(patient=patient, actor=staff["therapist"])
    today = selectors.today(clinic)
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
            day=selectors.today(clinic),
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
