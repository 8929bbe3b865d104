"""Progress letters: content generated from the record, review, sign (PDF fixed), and
sending only with the patient's valid consent to share; audited."""

import datetime
import hashlib
import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from ketaflow.audit.models import AuditEvent
from ketaflow.measures import services as measures
from ketaflow.therapy import services
from ketaflow.therapy.models import OutsideClinician


def _phq9(patient, actor, plan, each, taken_at):
    answers = {str(i): each for i in range(1, 10)} | {"9": 0}
    return measures.record_administration(
        patient=patient,
        actor=actor,
        instrument="phq9",
        answers=answers,
        taken_at=taken_at,
        plan=plan.pk,
    )


@pytest.fixture
def history(staff, patient, kap):
    """PHQ-9 16 two days before the dose (baseline), then 8 two hours after it."""
    plan, start = kap["plan"], kap["session"].dose_started_at
    baseline = _phq9(patient, staff["nurse"], plan, 2, start - datetime.timedelta(days=2))
    later = _phq9(patient, staff["nurse"], plan, 1, start + datetime.timedelta(hours=2))
    return baseline, later


def _clinician(patient, staff, **kw):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "th_matrix_letters", Path(__file__).with_name("access_matrix.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_clinician(patient, staff["front_desk"], **kw)


def test_letter_content_matches_the_record(clinic, staff, patient, kap, history, note_factory):
    note_factory(
        patient, staff["therapist"], kind="psychotherapy", content={"process": "PRIVATE-Synth"}
    )
    note_factory(
        patient,
        staff["therapist"],
        kind="integration",
        content={"themes": "THEMES-Synth", "plan": "p"},
    )
    r = _clinician(patient, staff)
    letter = services.create_letter(
        patient=patient, actor=staff["therapist"], recipient=r, plan=kap["plan"]
    )
    f = letter.facts
    s = kap["session"]
    assert f["treatments"] == [
        {
            "date": s.dose_started_at.astimezone(clinic.tz).date().isoformat(),
            "route": "Oral / sublingual ketamine (KAP)",
            "dose_mg": f"{s.administration.dose_mg.normalize():f}",
            "state": "Signed",
        }
    ]
    baseline, later = history
    (phq9,) = f["measures"]
    assert [v for _d, v in phq9["scores"]] == [baseline.total, later.total] == [16, 8]
    assert phq9["baseline"] == 16 and phq9["latest"] == 8 and phq9["percent_change"] == -50
    assert phq9["response"] == "yes" and phq9["remission"] == "no"
    assert "response yes" in f["response_status"][0] and "remission no" in f["response_status"][0]
    assert f["course"]["protocol"].startswith("Ketamine-assisted psychotherapy")
    text = json.dumps(f)
    assert "PRIVATE-Synth" not in text and "THEMES-Synth" not in text  # notes stay out
    assert f["patient"]["mrn"] == patient.mrn


def test_review_sign_and_pdf_is_fixed(clinic, staff, patient, kap, history):
    r = _clinician(patient, staff)
    t = staff["therapist"]
    letter = services.create_letter(patient=patient, actor=t, recipient=r)
    with pytest.raises(ValidationError) as exc:
        services.sign_letter(letter=letter, actor=t)
    assert "plan_text" in exc.value.message_dict
    with pytest.raises(PermissionDenied):
        services.update_letter(letter=letter, actor=staff["prescriber"], plan_text="Not mine")
    services.update_letter(
        letter=letter, actor=t, plan_text="Two more dosing sessions, then review."
    )
    letter = services.sign_letter(letter=letter, actor=t)
    data = bytes(letter.pdf)
    assert data.startswith(b"%PDF") and hashlib.sha256(data).hexdigest() == letter.pdf_sha256
    ev = AuditEvent.objects.filter(clinic=clinic).latest("seq")
    assert ev.action == "sign" and ev.detail["pdf_sha256"] == letter.pdf_sha256
    with pytest.raises(ValidationError):
        services.update_letter(letter=letter, actor=t, plan_text="Changed after signing")


@pytest.mark.parametrize(
    ("consent", "word"),
    [
        ({"consent_given_on": ""}, "no consent"),
        ({"consent_expires_on": "2000-01-02", "consent_given_on": "2000-01-01"}, "expired"),
        ({"consent_withdrawn_on": "2001-01-01", "consent_given_on": "2000-01-01"}, "withdrawn"),
    ],
)
def test_sending_refused_without_valid_consent(
    clinic, staff, patient, kap, mailoutbox, consent, word
):
    r = _clinician(patient, staff, **consent)
    letter = services.create_letter(patient=patient, actor=staff["therapist"], recipient=r)
    services.update_letter(letter=letter, actor=staff["therapist"], plan_text="Continue.")
    letter = services.sign_letter(letter=letter, actor=staff["therapist"])
    with pytest.raises(ValidationError) as exc:
        services.send_letter(letter=letter, actor=staff["therapist"])
    assert word in str(exc.value.message_dict["consent"]) and mailoutbox == []
    assert not AuditEvent.objects.filter(action="export", object_id=str(letter.pk)).exists()


def test_send_with_consent_emails_the_signed_pdf_and_is_audited(
    clinic, staff, patient, kap, mailoutbox
):
    r = _clinician(patient, staff)
    letter = services.create_letter(patient=patient, actor=staff["therapist"], recipient=r)
    with pytest.raises(ValidationError):  # drafts are never sent
        services.send_letter(letter=letter, actor=staff["therapist"])
    services.update_letter(letter=letter, actor=staff["therapist"], plan_text="Continue.")
    letter = services.sign_letter(letter=letter, actor=staff["therapist"])
    send = services.send_letter(letter=letter, actor=staff["prescriber"])
    (mail,) = mailoutbox
    assert mail.to == [r.email] and send.to_email == r.email
    _name, content, mime = mail.attachments[0]
    assert mime == "application/pdf" and content == bytes(letter.pdf)
    ev = AuditEvent.objects.get(action="export", object_id=str(letter.pk))
    assert ev.actor == staff["prescriber"] and ev.detail["sent_to_clinician"] == r.pk


def test_consent_is_recorded_with_who_recorded_it(staff, patient):
    r = _clinician(patient, staff)
    assert r.consent_recorded_by == staff["front_desk"]
    assert r.consent_status(datetime.date.today()) == "valid"
    with pytest.raises(ValidationError) as exc:
        services.save_clinician(
            patient=patient,
            actor=staff["nurse"],
            clinician=r,
            data={
                "role": "psychiatrist",
                "name": r.name,
                "consent_given_on": "2026-01-10",
                "consent_expires_on": "2025-01-01",
                "active": "on",
            },
        )
    assert "consent_expires_on" in exc.value.message_dict
    assert OutsideClinician.objects.get(pk=r.pk).consent_expires_on is None


def test_consent_dates_cannot_lie_after_the_clinics_today(staff, patient):
    r = _clinician(patient, staff)
    before = OutsideClinician.objects.get(pk=r.pk).consent_given_on
    today = patient.clinic.today()
    tomorrow = (today + datetime.timedelta(days=1)).isoformat()
    for field in ("consent_given_on", "consent_withdrawn_on"):
        data = {"role": "psychiatrist", "name": r.name, "active": "on"}
        data |= {"consent_given_on": before.isoformat(), field: tomorrow}
        with pytest.raises(ValidationError) as exc:
            services.save_clinician(patient=patient, actor=staff["nurse"], clinician=r, data=data)
        assert exc.value.message_dict[field] == [
            f"Cannot be after today ({today:%Y-%m-%d} at the clinic)."
        ]
    assert OutsideClinician.objects.get(pk=r.pk).consent_given_on == before
    data = {"role": "psychiatrist", "name": r.name, "active": "on"}
    data["consent_given_on"] = today.isoformat()
    saved = services.save_clinician(patient=patient, actor=staff["nurse"], clinician=r, data=data)
    assert saved.consent_status(today) == "valid"


def test_web_letter_flow(clinic, staff, patient, kap, history, client_for, mailoutbox):
    r = _clinician(patient, staff)
    c = client_for(staff["therapist"])
    resp = c.post(
        f"/therapy/patients/{patient.pk}/letters/new/", {"recipient": r.pk, "plan": kap["plan"].pk}
    )
    assert resp.status_code == 302
    url = resp["Location"]
    page = c.get(url).content.decode()
    assert "PHQ-9" in page and "<svg" in page and "160 mg" in page
    pk = url.rstrip("/").split("/")[-1]
    c.post(f"/therapy/letters/{pk}/edit/", {"plan_text": "Continue weekly integration."})
    c.post(f"/therapy/letters/{pk}/sign/")
    c.post(f"/therapy/letters/{pk}/send/")
    assert len(mailoutbox) == 1
    pdf = c.get(f"/therapy/letters/{pk}/pdf/")
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")


def test_completed_visits_without_a_session_are_listed_without_a_dose(
    clinic, staff, patient, kap, visit
):
    earlier = visit(
        kap["plan"], "kap-dosing", kap["dose"].start - datetime.timedelta(days=3), "completed"
    )
    visit(
        kap["plan"], "kap-dosing", kap["dose"].start + datetime.timedelta(days=3)
    )  # booked: not given
    r = _clinician(patient, staff)
    letter = services.create_letter(
        patient=patient, actor=staff["therapist"], recipient=r, plan=kap["plan"]
    )
    first, second = letter.facts["treatments"]
    assert first["date"] == earlier.start.astimezone(clinic.tz).date().isoformat()
    assert first["dose_mg"] == "" and "no session record" in first["state"]
    assert second["dose_mg"] == f"{kap['session'].administration.dose_mg.normalize():f}"


def test_front_desk_sees_other_clinicians_on_the_overview(staff, patient, client_for):
    _clinician(patient, staff)
    page = client_for(staff["front_desk"]).get(f"/patients/{patient.pk}/").content.decode()
    assert "Dr. Rhea Referrer-Synth" in page and "consent to share valid" in page
    owner = client_for(staff["owner"]).get(f"/patients/{patient.pk}/").content.decode()
    assert "Dr. Rhea Referrer-Synth" not in owner  # owner has no care_team.manage


def test_mail_server_down_leaves_the_letter_signed_not_sent_and_says_so(
    clinic, staff, patient, kap, mailoutbox, monkeypatch, client_for
):
    """Issue 16: sending while SMTP was down answered 500. Now: a field error, nothing
    recorded as sent, the letter still signed, the page and API say so."""
    from django.core.mail import EmailMessage

    from ketaflow.therapy.models import LetterSend

    def refuse(self, fail_silently=False):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(EmailMessage, "send", refuse)
    r = _clinician(patient, staff)
    letter = services.create_letter(patient=patient, actor=staff["therapist"], recipient=r)
    services.update_letter(letter=letter, actor=staff["therapist"], plan_text="Continue.")
    letter = services.sign_letter(letter=letter, actor=staff["therapist"])
    with pytest.raises(ValidationError) as exc:
        services.send_letter(letter=letter, actor=staff["therapist"])
    assert "signed but was not sent" in exc.value.message_dict["email"][0]
    letter.refresh_from_db()
    assert letter.is_signed and not LetterSend.objects.filter(letter=letter).exists()
    assert not AuditEvent.objects.filter(action="export", object_id=str(letter.pk)).exists()
    api = client_for(staff["therapist"]).post(
        f"/api/v1/therapy/letters/{letter.pk}/send", content_type="application/json"
    )
    assert api.status_code == 422 and api.json()["errors"][0]["field"] == "email"
    page = client_for(staff["therapist"]).post(f"/therapy/letters/{letter.pk}/send/", follow=True)
    assert page.status_code == 200 and "signed but was not sent" in page.content.decode()
