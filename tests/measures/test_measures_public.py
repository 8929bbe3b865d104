"""The patient's secure link: works without an account, reveals nothing when refused."""

import datetime

import pytest
from django.test import Client

from ketaflow.measures import services
from ketaflow.measures.models import Administration, PatientLink, RiskFlag, SafetyAlert

NEUTRAL = "This link is not valid any more"


@pytest.fixture
def link(staff, patient):
    return services.create_link(patient=patient, actor=staff["nurse"], instruments=["phq9", "gad7"])


def url(raw):
    return f"/measures/r/{raw}/"


def answers(code, value, **extra):
    keys = {"phq9": range(1, 10), "gad7": range(1, 8)}[code]
    data = {"instrument": code, "go": "next", **{f"item_{k}": str(value) for k in keys}}
    data.update({f"item_{k}": str(v) for k, v in extra.items()})
    return data


def test_anonymous_phone_opens_the_page_with_privacy_headers_and_no_name(link, patient, clinic):
    _link, raw = link
    response = Client().get(url(raw))
    body = response.content.decode()
    assert response.status_code == 200
    assert response["Referrer-Policy"] == "no-referrer"
    assert "no-store" in response["Cache-Control"]
    assert patient.legal_family_name not in body and patient.legal_given_name not in body
    assert patient.mrn not in body
    assert "Over the last 2 weeks, how often have you been bothered" in body
    assert "Questionnaire 1 of 2" in body
    assert clinic.name in body


def test_answer_both_resume_and_submit_once(link, patient):
    lnk, raw = link
    client = Client()
    # Partial PHQ-9, saved for later.
    partial = {"instrument": "phq9", "go": "save", "item_1": "2", "item_2": "1"}
    saved = client.post(url(raw), partial)
    assert "Your answers are saved" in saved.content.decode()
    # A new visit (another device) resumes with the saved answers.
    again = Client().get(url(raw)).content.decode()
    assert (
        'name="item_1" value="2" checked' in again
        and "<span data-answered>2</span> of 10 questions answered" in again
    )
    # Missing answers are named next to the question.
    missing = client.post(url(raw), {"instrument": "phq9", "go": "next", "item_1": "2"})
    text = missing.content.decode()
    assert missing.status_code == 200 and "Question 2" not in text
    assert 'id="err-2"' in text and "Please answer the questions marked below" in text
    # Complete PHQ-9 moves to GAD-7; then submit.
    page = client.post(url(raw), answers("phq9", 1, **{"9": 0}))
    assert "Questionnaire 2 of 2" in page.content.decode()
    done = client.post(url(raw), answers("gad7", 0))
    text = done.content.decode()
    assert done.status_code == 200 and "Your answers were sent" in text
    assert "Help is available right now" not in text
    adms = Administration.objects.filter(link=lnk).order_by("instrument")
    assert [(a.instrument, a.total, a.source) for a in adms] == [
        ("gad7", 0, "self_report"),
        ("phq9", 8, "self_report"),
    ]
    # Single use: the same link now shows the neutral refusal.
    reused = Client().get(url(raw))
    assert reused.status_code == 404 and NEUTRAL in reused.content.decode()
    assert client.post(url(raw), answers("gad7", 0)).status_code == 404
    assert Administration.objects.count() == 2


def test_item9_shows_crisis_resources_and_raises_alert(staff, patient, clinic, mailoutbox):
    clinic.emergency_phone = "911"
    clinic.crisis_line = "988 Suicide & Crisis Lifeline: call or text 988"
    clinic.save()
    patient.prescriber = staff["prescriber"]
    patient.save()
    _lnk, raw = services.create_link(patient=patient, actor=staff["nurse"], instruments=["phq9"])
    done = Client().post(url(raw), answers("phq9", 0, **{"9": 1}))
    text = done.content.decode()
    assert "Help is available right now" in text and 'role="alert"' in text
    assert 'href="tel:911"' in text and "988 Suicide &amp; Crisis Lifeline" in text
    alert = SafetyAlert.objects.get()
    assert alert.patient == patient and alert.kind == "suicidality"
    assert RiskFlag.objects.get().patient == patient
    assert staff["prescriber"].email in mailoutbox[0].to


def _refusal(response):
    return response.status_code, response.content.decode()


def test_expired_used_revoked_tampered_and_unknown_links_are_refused_alike(staff, patient):
    refusals = []
    lnk, raw = services.create_link(patient=patient, actor=staff["nurse"], instruments=["phq9"])
    PatientLink.objects.filter(pk=lnk.pk).update(
        expires_at=services.now() - datetime.timedelta(seconds=1)
    )
    refusals.append(_refusal(Client().get(url(raw))))
    lnk, raw = services.create_link(patient=patient, actor=staff["nurse"], instruments=["phq9"])
    services.revoke_link(link=lnk, actor=staff["nurse"])
    refusals.append(_refusal(Client().get(url(raw))))
    lnk, raw = services.create_link(patient=patient, actor=staff["nurse"], instruments=["phq9"])
    tampered = raw[:-2] + ("xy" if raw[-2:] != "xy" else "zz")
    refusals.append(_refusal(Client().get(url(tampered))))
    refusals.append(_refusal(Client().get(url("not-a-token"))))
    refusals.append(_refusal(Client().get(url("x" * 300))))
    refusals.append(_refusal(Client().post(url(tampered), answers("phq9", 0))))
    statuses = {status for status, _ in refusals}
    bodies = {body for _, body in refusals}
    assert statuses == {404} and len(bodies) == 1
    body = bodies.pop()
    assert NEUTRAL in body
    assert patient.legal_given_name not in body and patient.mrn not in body
    assert "Harbor" not in body  # not even the clinic
    # The untampered link still works: refusals are about the token, nothing else.
    assert Client().get(url(raw)).status_code == 200


def test_a_link_answers_only_its_own_patient_and_instruments(staff, clinic, patient, make_patient):
    other = make_patient(clinic, legal_given_name="Morgan")
    _lnk, raw = services.create_link(patient=patient, actor=staff["nurse"], instruments=["gad7"])
    # Posting another questionnaire or another patient's id is refused without detail.
    wrong = Client().post(url(raw), {**answers("phq9", 0), "patient": other.pk})
    assert wrong.status_code == 404 and NEUTRAL in wrong.content.decode()
    done = Client().post(url(raw), {**answers("gad7", 1), "patient": other.pk})
    assert done.status_code == 200
    assert list(Administration.objects.values_list("patient_id", "instrument")) == [
        (patient.pk, "gad7")
    ]
    # Another patient's link cannot be used to reach this one's.
    _olnk, oraw = services.create_link(patient=other, actor=staff["nurse"], instruments=["phq9"])
    page = Client().get(url(oraw)).content.decode()
    assert "Morgan" not in page and patient.legal_given_name not in page


def test_signed_in_staff_session_is_not_needed_and_not_used(staff, patient, client_for):
    _lnk, raw = services.create_link(patient=patient, actor=staff["nurse"], instruments=["gad7"])
    client = client_for(staff["nurse"])
    response = client.post(url(raw), answers("gad7", 1))
    assert response.status_code == 200
    adm = Administration.objects.get()
    assert adm.entered_by is None and adm.source == "self_report"
