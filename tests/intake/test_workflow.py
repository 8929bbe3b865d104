"""Queue, assessment, eligibility decision and consent: services, pages and API."""

import datetime
import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ketaflow.audit.models import AuditEvent
from ketaflow.intake import selectors, services
from ketaflow.intake.models import (
    Assessment,
    ConsentLink,
    ConsentSignature,
    ConsultationRequest,
    EligibilityDecision,
)
from ketaflow.patients.models import Patient

from .conftest import DX, TRIALS


def _events(**kw):
    return AuditEvent.objects.filter(**kw).count()


def _request(clinic, **extra):
    data = {
        "clinic": clinic,
        "given_name": "Jo",
        "family_name": "Queue-Synth",
        "date_of_birth": datetime.date(1990, 2, 3),
        "phone": "555 010 4444",
        "email": "jo@example.test",
        "summary": "likely",
    }
    data.update(extra)
    return ConsultationRequest.objects.create(**data)


# --- Queue ---------------------------------------------------------------------------------


def test_status_changes_are_audited_and_decline_needs_reason(clinic, staff):
    item = _request(clinic)
    before = _events(action="update", object_type="intake.consultationrequest")
    services.set_request_status(item=item, actor=staff["front_desk"], status="contacted")
    services.set_request_status(item=item, actor=staff["front_desk"], status="booked")
    assert _events(action="update", object_type="intake.consultationrequest") == before + 2
    with pytest.raises(ValidationError) as exc:
        services.set_request_status(item=item, actor=staff["front_desk"], status="declined")
    assert "decline_reason" in exc.value.message_dict
    services.set_request_status(
        item=item,
        actor=staff["front_desk"],
        status="declined",
        decline_reason="Outside our service area",
    )
    item.refresh_from_db()
    assert item.status == "declined" and item.decline_reason == "Outside our service area"
    with pytest.raises(PermissionDenied):
        services.set_request_status(item=item, actor=staff["therapist"], status="new")


def test_convert_creates_prospective_patient_without_retyping(clinic, staff, client_for):
    item = _request(clinic, preferred_location=clinic.locations.first())
    client = client_for(staff["front_desk"])
    response = client.post(f"/intake/requests/{item.pk}/convert/")
    patient = Patient.objects.get(legal_family_name="Queue-Synth")
    assert response["Location"] == f"/patients/{patient.pk}/"
    assert (patient.legal_given_name, patient.date_of_birth, patient.phone, patient.email) == (
        "Jo",
        datetime.date(1990, 2, 3),
        "555 010 4444",
        "jo@example.test",
    )
    assert patient.status == "prospective" and patient.preferred_location == item.preferred_location
    item.refresh_from_db()
    assert item.status == "converted" and item.patient == patient
    again = client.post(f"/intake/requests/{item.pk}/convert/")
    assert (
        again.status_code == 302
        and Patient.objects.filter(legal_family_name="Queue-Synth").count() == 1
    )
    with pytest.raises(ValidationError):
        services.set_request_status(item=item, actor=staff["front_desk"], status="new")


def test_queue_filters_and_counts(clinic, staff, client_for):
    _request(clinic)
    _request(clinic, status="declined", given_name="Declan", decline_reason="No")
    page = client_for(staff["therapist"]).get("/intake/?status=declined").content.decode()
    assert (
        "Declan" in page
        and ">Jo Queue" not in page
        and "Declined (1)" in page
        and "New (1)" in page
    )


def test_status_form_error_shown_next_to_field(clinic, staff, client_for):
    item = _request(clinic)
    page = client_for(staff["nurse"]).post(
        f"/intake/requests/{item.pk}/status/", {"status": "declined"}
    )
    assert page.status_code == 200 and "Give the reason for declining" in page.content.decode()


# --- Assessment ----------------------------------------------------------------------------


def _post_assessment(client, patient, **extra):
    data = {
        "dx-TOTAL_FORMS": "2",
        "dx-INITIAL_FORMS": "0",
        "dx-0-code": "F33.2",
        "dx-0-description": "MDD recurrent severe",
        "trial-TOTAL_FORMS": "3",
        "trial-INITIAL_FORMS": "0",
        "trial-0-drug": "sertraline",
        "trial-0-dose": "150 mg",
        "trial-0-weeks": "8",
        "trial-0-adequate_dose": "yes",
        "trial-0-current_episode": "yes",
        "trial-0-outcome": "no_response",
        "trial-1-drug": "bupropion",
        "trial-1-weeks": "10",
        "trial-1-adequate_dose": "yes",
        "trial-1-current_episode": "yes",
        "trial-1-outcome": "partial_response",
        "med-TOTAL_FORMS": "2",
        "med-INITIAL_FORMS": "0",
        "med-0-name": "lorazepam",
        "med-0-dose": "1 mg",
        "med-0-med_class": "benzodiazepine",
        "suicide_attempts": "0",
        "hospitalisations": "0",
        "systolic": "150",
        "diastolic": "85",
        "heart_rate": "70",
        "weight_kg": "80",
        "height_cm": "180",
        "conditions": ["arrhythmia"],
    }
    data.update(extra)
    return client.post(f"/intake/patients/{patient.pk}/assessment/", data)


def test_assessment_page_saves_draft_then_shows_rules(patient, staff, client_for):
    client = client_for(staff["nurse"])
    assert client.get(f"/intake/patients/{patient.pk}/assessment/").status_code == 200
    bad = _post_assessment(client, patient, weight_kg="500", **{"dx-1-description": "no code"})
    html = bad.content.decode()
    assert (
        bad.status_code == 200 and "from 25 to 350 kg" in html and "Give the ICD-10-CM code" in html
    )
    assert 'value="sertraline"' in html  # input kept
    assert not Assessment.objects.exists()
    saved = _post_assessment(client, patient)
    assert saved["Location"] == f"/patients/{patient.pk}/assessment/"
    assessment = Assessment.objects.get()
    assert assessment.bmi == 24.7 and assessment.status == "draft"
    assert [t["drug"] for t in assessment.trials] == ["sertraline", "bupropion"]
    tab = client.get(saved["Location"]).content.decode()
    assert "Eligibility rules" in tab and "Meets the TRD definition" in tab
    assert "Takes a benzodiazepine" in tab and "Significant heart rhythm disorder" in tab
    assert "Baseline blood pressure 150/85" in tab
    assert selectors.current_medication_classes(patient) == {"benzodiazepine"}
    assert selectors.current_medications(patient)[0]["name"] == "lorazepam"


def test_signed_assessment_is_read_only_with_addenda(patient, staff, client_for):
    nurse = client_for(staff["nurse"])
    _post_assessment(nurse, patient)
    assessment = Assessment.objects.get()
    assert (
        nurse.post(f"/intake/assessments/{assessment.pk}/sign/").status_code == 403
    )  # nurse may not sign
    prescriber = client_for(staff["prescriber"])
    prescriber.post(f"/intake/assessments/{assessment.pk}/sign/")
    assessment.refresh_from_db()
    assert assessment.is_signed and assessment.signed_by == staff["prescriber"]
    with pytest.raises(ValidationError):
        services.sign_assessment(assessment=assessment, actor=staff["prescriber"])
    # The edit page no longer edits it; a save creates a new draft and leaves the signed one intact.
    assert nurse.get(f"/intake/patients/{patient.pk}/assessment/").status_code == 302
    _post_assessment(nurse, patient, systolic="120", diastolic="70")
    assessment.refresh_from_db()
    assert assessment.systolic == 150 and Assessment.objects.count() == 2
    nurse.post(
        f"/intake/assessments/{assessment.pk}/addendum/", {"text": "Heart rate rechecked: 68."}
    )
    assert assessment.addenda.get().text == "Heart rate rechecked: 68."
    draft = selectors.latest_assessment(patient)
    with pytest.raises(ValidationError):
        services.add_addendum(assessment=draft, actor=staff["nurse"], text="x")


def test_sign_refuses_incomplete_assessment(patient, staff):
    draft = services.save_assessment(patient=patient, actor=staff["nurse"], fields={})
    with pytest.raises(ValidationError) as exc:
        services.sign_assessment(assessment=draft, actor=staff["prescriber"])
    assert {"diagnoses", "systolic"} <= set(exc.value.message_dict)


def test_assessment_tab_queries_are_constant(clinic, staff, client_for, make_patient):
    client = client_for(staff["prescriber"])
    client.get("/today/")  # the session's first save happens here, not in the measured requests
    counts = []
    for n in (1, 4):
        patient = make_patient(clinic)
        for _ in range(n):
            a = services.save_assessment(
                patient=patient,
                actor=staff["nurse"],
                fields={"systolic": 120, "diastolic": 80},
                diagnoses=DX,
                trials=TRIALS,
            )
            a = services.sign_assessment(assessment=a, actor=staff["prescriber"])
            services.add_addendum(assessment=a, actor=staff["nurse"], text="note")
            services.record_decision(
                patient=patient, actor=staff["prescriber"], decision="defer", reason="wait"
            )
            services.ensure_default_documents(clinic=clinic)
            services.sign_consent(
                patient=patient,
                actor=staff["nurse"],
                route="iv-ketamine",
                typed_name=patient.legal_name,
                agreed=True,
            )
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(f"/patients/{patient.pk}/assessment/").status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]


# --- Eligibility decision ------------------------------------------------------------------


def test_eligibility_end_to_end_in_the_app(assessed, staff, client_for):
    patient = assessed
    client = client_for(staff["prescriber"])
    page = client.get(f"/intake/patients/{patient.pk}/decision/").content.decode()
    assert "IV ketamine" in page and "eligible" in page
    # Clean case: approving IV needs no justification.
    response = client.post(
        f"/intake/patients/{patient.pk}/decision/",
        {"decision": "approve", "routes": ["iv-ketamine"]},
    )
    assert response.status_code == 302
    assert selectors.approved_routes(patient) == {"iv-ketamine"}
    # Add a contraindication through a new signed assessment: approving needs a justification.
    a = services.save_assessment(
        patient=patient,
        actor=staff["nurse"],
        fields={"systolic": 122, "diastolic": 78, "conditions": ["aneurysmal_vascular_disease"]},
        diagnoses=DX,
        trials=TRIALS,
    )
    services.sign_assessment(assessment=a, actor=staff["prescriber"])
    page = client.post(
        f"/intake/patients/{patient.pk}/decision/",
        {"decision": "approve", "routes": ["esketamine-nasal"]},
    )
    html = page.content.decode()
    assert page.status_code == 200 and "needs a written justification" in html
    assert "Aneurysmal vascular disease" in html and "ABSOLUTE" in html
    justified = client.post(
        f"/intake/patients/{patient.pk}/decision/",
        {
            "decision": "approve",
            "routes": ["esketamine-nasal"],
            "justification": "Aneurysm repaired in 2019, vascular surgeon cleared (letter on file).",
        },
    )
    assert justified.status_code == 302
    decision = EligibilityDecision.objects.first()
    assert (
        decision.justification
        and decision.rule_results["esketamine-nasal"]["decision"] == "ineligible"
    )
    assert selectors.approved_routes(patient) == {"esketamine-nasal"}
    # A later defer supersedes the approval.
    services.record_decision(
        patient=patient,
        actor=staff["prescriber"],
        decision="defer",
        reason="Awaiting cardiology letter",
    )
    assert selectors.approved_routes(patient) == set()
    assert _events(action="sign", object_type="intake.eligibilitydecision") == 3


def test_decision_rules(patient, staff):
    with pytest.raises(ValidationError):  # no assessment yet
        services.record_decision(
            patient=patient, actor=staff["prescriber"], decision="defer", reason="x"
        )
    services.save_assessment(patient=patient, actor=staff["nurse"], fields={}, diagnoses=DX)
    with pytest.raises(ValidationError) as exc:
        services.record_decision(
            patient=patient,
            actor=staff["prescriber"],
            decision="approve",
            routes=["iv-ketamine"],
            justification="x" * 40,
        )
    assert "must be signed" in str(exc.value)
    with pytest.raises(ValidationError) as exc:
        services.record_decision(patient=patient, actor=staff["prescriber"], decision="decline")
    assert "reason" in exc.value.message_dict
    with pytest.raises(PermissionDenied):
        services.record_decision(
            patient=patient, actor=staff["nurse"], decision="defer", reason="x"
        )


# --- API -----------------------------------------------------------------------------------


def test_api_eligibility_check_matches_the_pure_rules(staff, client_for):
    from ketaflow.clinical import eligibility

    client = client_for(staff["nurse"])
    case = {
        "route": "esketamine-nasal",
        "age": 70,
        "antidepressant_trials": TRIALS
        and [
            {k: t[k] for k in ("drug", "adequate_dose", "weeks", "current_episode", "outcome")}
            for t in TRIALS
        ],
        "conditions": ["pregnancy"],
        "medication_classes": ["maoi"],
        "blood_pressure": {"systolic": 130, "diastolic": 80},
    }
    response = client.post(
        "/api/v1/eligibility/check", json.dumps(case), content_type="application/json"
    )
    assert response.status_code == 200
    assert response.json() == eligibility.evaluate(eligibility.parse_case(case)).as_dict()
    bad = client.post(
        "/api/v1/eligibility/check",
        json.dumps({**case, "conditions": ["nope"]}),
        content_type="application/json",
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "conditions[0]"


def test_api_decision_and_eligibility(assessed, staff, client_for):
    client = client_for(staff["prescriber"])
    url = f"/api/v1/intake/patients/{assessed.pk}/decisions"
    missing = client.post(
        url,
        json.dumps({"decision": "approve", "routes": ["im-ketamine"], "justification": ""}),
        content_type="application/json",
    )
    assert missing.status_code == 201  # clean case
    got = client.get(f"/api/v1/intake/patients/{assessed.pk}/eligibility").json()
    assert got["approved_routes"] == ["im-ketamine"] and got["assessment"]["bmi"] == 22.9
    assert {r["route"] for r in got["results"]} == {
        "iv-ketamine",
        "im-ketamine",
        "sc-ketamine",
        "oral-ketamine",
        "esketamine-nasal",
    }


# --- Consent -------------------------------------------------------------------------------


def test_tablet_consent_is_stored_immutably_and_withdrawable(clinic, patient, staff, client_for):
    client = client_for(staff["front_desk"])
    url = f"/intake/patients/{patient.pk}/consent/iv-ketamine/"
    page = client.get(url).content.decode()
    assert "no driving" in page.lower() or "do not drive" in page.lower()
    assert "right to stop" in page.lower()
    wrong = client.post(url, {"typed_name": "Somebody Else", "agreed": "on"}).content.decode()
    assert "full legal name" in wrong
    unticked = client.post(url, {"typed_name": patient.legal_name}).content.decode()
    assert "This field is required" in unticked
    assert not ConsentSignature.objects.exists()
    done = client.post(
        url,
        {"typed_name": patient.legal_name.upper(), "agreed": "on"},
        HTTP_USER_AGENT="tablet-test",
    )
    assert "your consent is signed" in done.content.decode()
    signature = ConsentSignature.objects.get()
    assert signature.user_agent == "tablet-test" and signature.client_address == "127.0.0.1"
    assert selectors.signed_consent(patient, "iv-ketamine") == signature
    assert selectors.signed_consent(patient, "esketamine-nasal") is None
    original = signature.body
    # A new version does not change what was signed.
    services.publish_document(
        clinic=clinic,
        actor=staff["owner"],
        route="iv-ketamine",
        title="IV consent v2",
        body="New text",
    )
    signature.refresh_from_db()
    assert signature.body == original and signature.version == 1
    assert selectors.current_document(clinic, "iv-ketamine").version == 2
    # PDF and view (clinical staff), audited as print.
    prescriber = client_for(staff["prescriber"])
    pdf = prescriber.get(f"/intake/consents/{signature.pk}/pdf/")
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert _events(action="print", object_type="intake.consentsignature") == 1
    # Withdrawal.
    client.post(
        f"/intake/consents/{signature.pk}/withdraw/", {"reason": "Patient changed their mind"}
    )
    signature.refresh_from_db()
    assert signature.withdrawn_at and signature.withdrawn_reason == "Patient changed their mind"
    assert selectors.signed_consent(patient, "iv-ketamine") is None
    with pytest.raises(ValidationError):
        services.withdraw_consent(signature=signature, actor=staff["front_desk"], reason="again")


def test_consent_link_is_hashed_single_use_and_expiring(clinic, patient, staff):
    services.ensure_default_documents(clinic=clinic)
    link, raw = services.create_consent_link(
        patient=patient, actor=staff["nurse"], route="esketamine-nasal", hours=2
    )
    assert raw not in link.token_hash and len(link.token_hash) == 64
    client = Client()
    url = f"/intake/consent/sign/{raw}/"
    page = client.get(url).content.decode()
    assert "esketamine" in page.lower() and "2 hours" in page
    assert client.post(url, {"typed_name": patient.legal_name, "agreed": "on"}).status_code == 200
    signature = ConsentSignature.objects.get()
    assert signature.via == "link" and signature.collected_by is None
    assert client.get(url).status_code == 404  # single use
    link2, raw2 = services.create_consent_link(
        patient=patient, actor=staff["nurse"], route="iv-ketamine", hours=1
    )
    ConsentLink.objects.filter(pk=link2.pk).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    assert client.get(f"/intake/consent/sign/{raw2}/").status_code == 404
    assert client.get("/intake/consent/sign/kc_forged/").status_code == 404


def test_default_documents_cover_every_route(clinic, staff, client_for):
    page = client_for(staff["owner"]).get("/intake/consent-documents/").content.decode()
    assert page.count("New version") == 5
    edit = client_for(staff["owner"]).post(
        "/intake/consent-documents/oral-ketamine/", {"title": "", "body": ""}
    )
    assert edit.status_code == 200 and "This field is required" in edit.content.decode()
