"""Therapy notes: drafts, signing, read-only after signing, addenda, structure by type."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from ketaflow.audit.models import AuditEvent
from ketaflow.therapy import note_types as nt
from ketaflow.therapy import services
from ketaflow.therapy.models import TherapyNote, TherapySettings

PREP = {
    "history": "Two failed SSRIs; long history of low mood (synthetic).",
    "intentions": "To understand the grief (synthetic).",
    "set_setting": "Quiet room, eyeshade, music (synthetic).",
    "expectations": "Explained the experience (synthetic).",
    "frame_consent": "Agreed: no touch except a hand on the shoulder if asked (synthetic).",
}


def _events(clinic):
    return AuditEvent.objects.filter(clinic=clinic).count()


def test_draft_then_sign_then_read_only(clinic, staff, patient):
    therapist = staff["therapist"]
    before = _events(clinic)
    note = services.create_note(
        patient=patient, actor=therapist, kind=nt.PREPARATION, content={"history": "Draft"}
    )
    assert note.status == "draft" and _events(clinic) == before + 1
    note = services.update_note(note=note, actor=therapist, content=PREP)
    assert note.content["intentions"].startswith("To understand")
    assert _events(clinic) == before + 2
    ev = AuditEvent.objects.filter(clinic=clinic).latest("seq")
    assert ev.action == "update" and "intentions" in ev.detail["fields"]
    assert "grief" not in str(ev.detail)  # field names only, never content
    note = services.sign_note(note=note, actor=therapist)
    assert note.is_signed and note.signed_at is not None
    assert AuditEvent.objects.filter(clinic=clinic).latest("seq").action == "sign"
    with pytest.raises(ValidationError) as exc:
        services.update_note(note=note, actor=therapist, content={"history": "changed"})
    assert "addendum" in str(exc.value)
    with pytest.raises(ValidationError):
        services.sign_note(note=note, actor=therapist)
    note.refresh_from_db()
    assert note.content["history"] == PREP["history"]


def test_signing_needs_the_required_sections(clinic, staff, patient):
    note = services.create_note(
        patient=patient, actor=staff["therapist"], kind=nt.PREPARATION, content={"history": "x"}
    )
    with pytest.raises(ValidationError) as exc:
        services.sign_note(note=note, actor=staff["therapist"])
    assert "frame_consent" in exc.value.message_dict
    note.refresh_from_db()
    assert note.status == "draft"


def test_only_the_author_edits_or_signs_a_draft(clinic, staff, patient):
    note = services.create_note(
        patient=patient, actor=staff["therapist"], kind=nt.PREPARATION, content=PREP
    )
    with pytest.raises(PermissionDenied):
        services.update_note(note=note, actor=staff["prescriber"], content=PREP)
    with pytest.raises(PermissionDenied):
        services.sign_note(note=note, actor=staff["prescriber"])


@pytest.mark.parametrize("role", ["owner", "nurse", "front_desk"])
def test_roles_without_therapy_write_cannot_write(staff, patient, role):
    with pytest.raises(PermissionDenied):
        services.create_note(patient=patient, actor=staff[role], kind=nt.PROGRESS, content={})


def test_addenda_only_on_signed_notes_and_signed_on_creation(clinic, staff, patient, note_factory):
    draft = note_factory(patient, staff["therapist"], sign=False)
    with pytest.raises(ValidationError):
        services.add_addendum(note=draft, actor=staff["therapist"], text="Too early")
    note = note_factory(patient, staff["therapist"])
    a = services.add_addendum(note=note, actor=staff["prescriber"], text="Seen by prescriber.")
    assert a.author == staff["prescriber"] and a.signed_at is not None
    ev = AuditEvent.objects.filter(clinic=clinic).latest("seq")
    assert ev.action == "sign" and ev.object_type == "therapy.noteaddendum"
    with pytest.raises(ValidationError):
        services.add_addendum(note=note, actor=staff["therapist"], text="  ")


def test_dosing_note_takes_route_and_dose_from_the_session(clinic, staff, patient, kap):
    with pytest.raises(ValidationError) as exc:
        services.create_note(patient=patient, actor=staff["therapist"], kind=nt.DOSING)
    assert "session" in exc.value.message_dict
    note = services.create_note(
        patient=patient,
        actor=staff["therapist"],
        kind=nt.DOSING,
        session=kap["session"].pk,
        content={"presence": "Therapist present throughout", "course": "Calm journey"},
    )
    assert note.plan == kap["plan"] and note.appointment == kap["dose"]
    assert note.record_facts == []
    note = services.sign_note(note=note, actor=staff["therapist"])
    facts = " ".join(note.record_facts)
    dose = kap["session"].administration.dose_mg.normalize()
    assert "Oral / sublingual ketamine (KAP)" in facts and f"{dose:f} mg" in facts


def test_dosing_note_refuses_another_patients_session(clinic, staff, make_patient, kap):
    other = make_patient(clinic)
    with pytest.raises(ValidationError) as exc:
        services.create_note(
            patient=other, actor=staff["therapist"], kind=nt.DOSING, session=kap["session"].pk
        )
    assert "session" in exc.value.message_dict


def test_progress_note_structure_is_the_clinic_setting(clinic, staff, patient):
    soap = services.create_note(patient=patient, actor=staff["therapist"], kind=nt.PROGRESS)
    assert soap.structure == "soap" and next(s.key for s in soap.sections) == "subjective"
    TherapySettings.objects.create(clinic=clinic, progress_note_format="dap")
    dap = services.create_note(patient=patient, actor=staff["therapist"], kind=nt.PROGRESS)
    assert dap.structure == "dap" and [s.key for s in dap.sections] == [
        "data",
        "assessment",
        "plan",
    ]
    soap.refresh_from_db()
    assert soap.structure == "soap"  # notes keep the structure they were written in


def test_web_write_sign_and_addendum(clinic, staff, patient, client_for):
    c = client_for(staff["therapist"])
    r = c.post(
        f"/therapy/patients/{patient.pk}/notes/new/",
        {"kind": "integration", "themes": "Reconnection", "plan": "", "go": "sign"},
    )
    # Missing required "plan" section: saved as a draft, the edit page says why.
    note = TherapyNote.objects.get(patient=patient)
    assert r.status_code == 302 and r["Location"] == f"/therapy/notes/{note.pk}/edit/"
    page = c.get(r["Location"])
    assert "Plan: required before signing" in page.content.decode()
    r = c.post(
        f"/therapy/notes/{note.pk}/edit/",
        {"themes": "Reconnection", "plan": "Weekly walks with a friend", "go": "sign"},
    )
    assert r.status_code == 302
    note.refresh_from_db()
    assert note.is_signed
    # Read-only: the edit page sends back to the note; a forged POST changes nothing.
    assert c.get(f"/therapy/notes/{note.pk}/edit/").status_code == 302
    c.post(f"/therapy/notes/{note.pk}/edit/", {"themes": "Changed", "plan": "x", "go": "save"})
    note.refresh_from_db()
    assert note.content["themes"] == "Reconnection"
    c.post(f"/therapy/notes/{note.pk}/addendum/", {"text": "Patient called: walks started."})
    page = c.get(f"/therapy/notes/{note.pk}/").content.decode()
    assert "Patient called: walks started." in page and "Reconnection" in page
    tab = c.get(f"/patients/{patient.pk}/notes/").content.decode()
    assert "KAP integration note" in tab


def test_api_signed_note_is_read_only(clinic, staff, patient, client_for):
    c = client_for(staff["therapist"])
    r = c.post(
        f"/api/v1/therapy/patients/{patient.pk}/notes",
        {
            "kind": "progress",
            "content": {"subjective": "s", "assessment": "a", "plan": "p"},
            "sign": True,
        },
        content_type="application/json",
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["status"] == "signed" and body["structure"] == "soap"
    patch = c.patch(
        f"/api/v1/therapy/notes/{body['id']}",
        {"content": {"subjective": "changed"}},
        content_type="application/json",
    )
    assert patch.status_code == 422 and "addendum" in patch.json()["detail"]
    add = c.post(
        f"/api/v1/therapy/notes/{body['id']}/addenda",
        {"text": "Later note"},
        content_type="application/json",
    )
    assert add.status_code == 201
    detail = c.get(f"/api/v1/therapy/notes/{body['id']}").json()
    assert detail["content"]["subjective"] == "s" and detail["addenda"][0]["text"] == "Later note"


def test_section_keys_never_collide_with_the_forms_controls():
    keys = {
        s.key for kind in nt.KIND_LABELS for fmt in ("soap", "dap") for s in nt.sections(kind, fmt)
    }
    assert keys and not keys & nt.CONTROL_NAMES


def test_fhir_export_carries_addenda(staff, patient, note_factory, client_for):
    import base64

    note = note_factory(patient, staff["therapist"])
    services.add_addendum(note=note, actor=staff["prescriber"], text="ADDENDUM-Synth")
    bundle = (
        client_for(staff["prescriber"]).get(f"/api/v1/therapy/patients/{patient.pk}/fhir").json()
    )
    (entry,) = bundle["entry"]
    text = base64.b64decode(entry["resource"]["content"][0]["attachment"]["data"]).decode()
    assert "ADDENDUM-Synth" in text and entry["resource"]["docStatus"] == "final"
