"""Psychotherapy-note privacy: only the author and the clinicians the author named read a
psychotherapy note. Every role, shared and unshared, another clinic, emergency access, and
every way out (Notes tab, note page, API list, detail and search, Activity tab, exports)."""

import base64
import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from ketaflow.accounts import services as access_services
from ketaflow.audit.models import AuditEvent
from ketaflow.therapy import selectors, services
from ketaflow.therapy.models import TherapyNote

SECRET = "SECRET-PROCESS-TEXT-Synth"
ROLES = ["owner", "prescriber", "nurse", "therapist", "front_desk"]


@pytest.fixture
def author(clinic, make_user):
    return make_user(clinic, "therapist")


@pytest.fixture
def private(patient, author, note_factory):
    return note_factory(patient, author, kind="psychotherapy", content={"process": SECRET})


@pytest.fixture
def record_note(patient, author, note_factory):
    return note_factory(
        patient, author, kind="integration", content={"themes": "RECORD-Synth", "plan": "p"}
    )


def test_default_manager_never_returns_psychotherapy_notes(private, record_note):
    assert list(TherapyNote.objects.all()) == [record_note]
    assert TherapyNote.all_kinds.count() == 2


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("role", ROLES)
def test_access_matrix_every_role(
    clinic, staff, patient, author, private, record_note, client_for, role, shared
):
    reader = staff[role]
    if shared:
        if role == "front_desk":
            with pytest.raises(ValidationError):  # not a clinician who may open charts
                services.share_note(note=private, actor=author, user_id=reader.pk)
        else:
            services.share_note(note=private, actor=author, user_id=reader.pk)
    expected = shared and role != "front_desk"
    chart_role = role != "front_desk"
    assert selectors.may_read_note(reader, clinic, private) is expected
    c = client_for(reader)
    page = c.get(f"/therapy/notes/{private.pk}/")
    assert page.status_code == (200 if expected else (404 if chart_role else 403))
    assert (SECRET in page.content.decode()) is expected
    api = c.get(f"/api/v1/therapy/notes/{private.pk}")
    assert api.status_code == (200 if expected else (404 if chart_role else 403))
    if chart_role:
        # The record note follows the chart's role matrix.
        assert c.get(f"/therapy/notes/{record_note.pk}/").status_code == 200
        tab = c.get(f"/patients/{patient.pk}/notes/").content.decode()
        assert (SECRET in tab) is False  # the list never shows content
        assert (f"/therapy/notes/{private.pk}/" in tab) is expected
        listed = c.get(f"/api/v1/therapy/patients/{patient.pk}/notes").json()["items"]
        assert (private.pk in [n["id"] for n in listed]) is expected
        assert record_note.pk in [n["id"] for n in listed]
        found = c.get(f"/api/v1/therapy/patients/{patient.pk}/notes?q=SECRET-PROCESS").json()
        assert bool(found["items"]) is expected
        activity = c.get(f"/patients/{patient.pk}/activity/").content.decode()
        assert SECRET not in activity and "process" not in activity
    else:
        assert c.get(f"/patients/{patient.pk}/notes/").status_code == 403
        assert c.get(f"/api/v1/therapy/patients/{patient.pk}/notes").status_code == 403
    if role in ("owner", "prescriber"):  # the export role: never unreleased process notes
        fhir = c.get(f"/api/v1/therapy/patients/{patient.pk}/fhir").json()
        ids = [e["resource"]["id"] for e in fhir["entry"]]
        assert ids == [f"therapy-note-{record_note.pk}"]
        export = c.get(f"/therapy/patients/{patient.pk}/export/").content.decode()
        assert SECRET not in export and "RECORD-Synth" not in export  # base64 in attachments
        texts = [
            base64.b64decode(e["resource"]["content"][0]["attachment"]["data"]).decode()
            for e in json.loads(export)["entry"]
        ]
        assert any("RECORD-Synth" in t for t in texts) and not any(SECRET in t for t in texts)


def test_author_reads_and_every_read_is_audited(clinic, author, private, client_for):
    c = client_for(author)
    for _ in range(2):
        assert SECRET in c.get(f"/therapy/notes/{private.pk}/").content.decode()
    c.get(f"/api/v1/therapy/notes/{private.pk}")
    reads = AuditEvent.objects.filter(
        action="read", object_type="therapy.therapynote", object_id=str(private.pk)
    )
    assert reads.count() == 3 and {e.actor_id for e in reads} == {author.pk}
    assert all(SECRET not in json.dumps(e.detail) for e in AuditEvent.objects.all())


def test_other_clinic_gets_404(other_clinic, make_user, private, record_note, client_for):
    outsider = make_user(other_clinic, *ROLES)
    c = client_for(outsider)
    for note in (private, record_note):
        assert c.get(f"/therapy/notes/{note.pk}/").status_code == 404
        assert c.get(f"/api/v1/therapy/notes/{note.pk}").status_code == 404
    assert selectors.may_read_note(outsider, other_clinic, private) is False


def test_cannot_share_with_another_clinics_user(other_clinic, make_user, author, private):
    outsider = make_user(other_clinic, "prescriber")
    with pytest.raises(ValidationError):
        services.share_note(note=private, actor=author, user_id=outsider.pk)


def test_only_the_author_shares_or_releases(staff, author, private):
    services.share_note(note=private, actor=author, user_id=staff["prescriber"].pk)
    with pytest.raises(PermissionDenied):  # a shared reader cannot pass it on
        services.share_note(note=private, actor=staff["prescriber"], user_id=staff["nurse"].pk)
    with pytest.raises(PermissionDenied):
        services.release_note(
            note=private, actor=staff["prescriber"], reason="Because I can read it"
        )


def test_unsharing_closes_access(clinic, staff, author, private):
    reader = staff["prescriber"]
    services.share_note(note=private, actor=author, user_id=reader.pk)
    assert selectors.may_read_note(reader, clinic, private)
    services.share_note(note=private, actor=author, user_id=reader.pk, share=False)
    assert not selectors.may_read_note(reader, clinic, private)
    assert (
        AuditEvent.objects.filter(action="permission-change", object_id=str(private.pk)).count()
        == 2
    )


def test_emergency_access_does_not_open_psychotherapy_notes(
    clinic, make_user, patient, author, private, record_note, client_for
):
    patient.preferred_location = clinic.locations.get(name="South")
    patient.save()
    nurse = make_user(clinic, "nurse", locations=["North"])
    c = client_for(nurse)
    assert c.get(f"/therapy/notes/{record_note.pk}/").status_code == 403  # outside scope
    access_services.grant_emergency_access(
        actor=nurse, clinic=clinic, patient=patient, reason="Patient collapsed in the waiting room"
    )
    assert c.get(f"/therapy/notes/{record_note.pk}/").status_code == 200
    assert c.get(f"/therapy/notes/{private.pk}/").status_code == 404
    assert c.get(f"/api/v1/therapy/notes/{private.pk}").status_code == 404
    assert SECRET not in c.get(f"/patients/{patient.pk}/notes/").content.decode()


def test_release_puts_the_note_in_exports(clinic, staff, patient, author, private, client_for):
    with pytest.raises(ValidationError):
        services.release_note(note=private, actor=author, reason="short")
    services.release_note(
        note=private, actor=author, reason="Patient's written authorization (synthetic)"
    )
    bundle = (
        client_for(staff["prescriber"]).get(f"/api/v1/therapy/patients/{patient.pk}/fhir").json()
    )
    texts = [
        base64.b64decode(e["resource"]["content"][0]["attachment"]["data"]).decode()
        for e in bundle["entry"]
    ]
    assert any(SECRET in t for t in texts)
    # Released for exports, still not readable in ketaflow by those it was not shared with.
    assert not selectors.may_read_note(staff["prescriber"], clinic, private)
