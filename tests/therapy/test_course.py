"""The KAP course view: preparation, each dosing session with its integration, notes,
measures between sessions, what is still to be scheduled, and the education link."""

import datetime

from django.db import connection
from django.test.utils import CaptureQueriesContext


def ago(**kw):
    return datetime.datetime.now(datetime.UTC) - datetime.timedelta(**kw)


def test_course_page_shows_the_cycle(clinic, staff, patient, kap, note_factory, client_for):
    from ketaflow.measures import services as measures

    t = staff["therapist"]
    prep = note_factory(
        patient, t, kind="preparation", plan=kap["plan"].pk, appointment=kap["prep"].pk
    )
    dosing = note_factory(
        patient,
        t,
        kind="dosing",
        session=kap["session"].pk,
        content={"presence": "Present 3 h", "course": "Tearful then calm"},
    )
    integ = note_factory(
        patient,
        t,
        kind="integration",
        appointment=kap["integration"].pk,
        content={"themes": "Grief", "plan": "Journal daily"},
    )
    private = note_factory(
        patient,
        t,
        kind="psychotherapy",
        appointment=kap["integration"].pk,
        content={"process": "PRIVATE-COURSE-Synth"},
    )
    measures.record_administration(
        patient=patient,
        actor=staff["nurse"],
        instrument="phq9",
        answers={str(i): 1 for i in range(1, 10)} | {"9": 0},
        taken_at=kap["session"].dose_started_at + datetime.timedelta(hours=1),
        plan=kap["plan"].pk,
    )
    url = f"/therapy/courses/{kap['plan'].pk}/"
    page = client_for(t).get(url).content.decode()
    assert "Preparation" in page and f"/therapy/notes/{prep.pk}/" in page
    assert "Dosing session 1" in page and f"/therapy/notes/{dosing.pk}/" in page
    assert f"/therapy/notes/{integ.pk}/" in page and "Integration therapy" in page
    assert f"/therapy/notes/{private.pk}/" in page  # the author sees their private note
    assert "PHQ-9 8" in page  # the score between this dosing session and the next
    assert "160 mg" in page and "/education/oral-ketamine/" in page
    assert "Next dosing session: none booked" in page
    other = client_for(staff["prescriber"]).get(url).content.decode()
    assert f"/therapy/notes/{private.pk}/" not in other and f"/therapy/notes/{integ.pk}/" in other


def test_missing_integration_is_listed_to_schedule(clinic, staff, patient, kap, visit, client_for):
    # Dose 1 (4 h ago) has its integration tomorrow; dose 2 after it has none; dose 3 booked.
    visit(kap["plan"], "kap-dosing", ago(hours=-30), status="completed")
    visit(kap["plan"], "kap-dosing", ago(hours=-72), status="booked")
    page = (
        client_for(staff["therapist"]).get(f"/therapy/courses/{kap['plan'].pk}/").content.decode()
    )
    assert "Integration session after dosing session 2" in page
    assert "Next dosing session: none booked" not in page


def test_course_queries_are_constant(clinic, staff, patient, kap, visit, note_factory, client_for):
    c = client_for(staff["therapist"])
    url = f"/therapy/courses/{kap['plan'].pk}/"
    c.get(url)
    with CaptureQueriesContext(connection) as few:
        c.get(url)
    for n in range(3):
        d = visit(kap["plan"], "kap-dosing", ago(days=-(3 * n + 2)), status="completed")
        i = visit(kap["plan"], "integration", ago(days=-(3 * n + 3)))
        note_factory(patient, staff["therapist"], kind="integration", appointment=i.pk)
        assert d
    with CaptureQueriesContext(connection) as many:
        c.get(url)
    assert len(many) == len(few)


def test_notes_tab_queries_are_constant(clinic, staff, patient, note_factory, client_for):
    c = client_for(staff["therapist"])
    url = f"/patients/{patient.pk}/notes/"
    note_factory(patient, staff["therapist"])
    c.get(url)
    with CaptureQueriesContext(connection) as few:
        c.get(url)
    for kind in ("preparation", "progress", "psychotherapy", "integration"):
        note_factory(patient, staff["therapist"], kind=kind)
    with CaptureQueriesContext(connection) as many:
        c.get(url)
    assert len(many) == len(few)
