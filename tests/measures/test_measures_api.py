"""API: instruments, scoring, administrations, FHIR shapes (validated with fhir.resources R4B)."""

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from ketaflow.clinical import instruments
from ketaflow.measures.models import Administration, SafetyAlert

PHQ9 = {str(k): 1 for k in range(1, 9)} | {"9": 0}


def test_list_and_define_instruments(staff, client_for):
    client = client_for(staff["front_desk"])
    listing = client.get("/api/v1/measures/instruments").json()
    assert [i["code"] for i in listing] == list(instruments.codes())
    phq = client.get("/api/v1/measures/instruments/phq9").json()
    assert phq["items"][8]["text"].startswith("Thoughts that you would be better off dead")
    assert phq["bands"][0] == {"low": 0, "high": 4, "label": "minimal"}
    assert client.get("/api/v1/measures/instruments/nope").status_code == 404


@pytest.mark.parametrize("code", instruments.codes())
def test_fhir_questionnaire_validates(staff, client_for, code):
    body = client_for(staff["nurse"]).get(f"/api/v1/measures/instruments/{code}/fhir").json()
    q = Questionnaire.model_validate(body)
    assert q.id == code and q.status == "active"


def test_score_names_the_refused_item(staff, client_for):
    client = client_for(staff["nurse"])
    ok = client.post(
        "/api/v1/measures/score",
        {"instrument": "phq9", "answers": PHQ9},
        content_type="application/json",
    ).json()
    assert (ok["total"], ok["severity"], ok["flags"]) == (8, "mild", [])
    bad = client.post(
        "/api/v1/measures/score",
        {"instrument": "phq9", "answers": PHQ9 | {"3": 9}},
        content_type="application/json",
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "item_3"
    assert not Administration.objects.exists()


def test_create_list_and_fhir_response(staff, patient, client_for, make_plan):
    plan = make_plan(patient)
    client = client_for(staff["nurse"])
    created = client.post(
        "/api/v1/measures/administrations",
        {
            "patient_id": patient.pk,
            "instrument": "phq9",
            "answers": PHQ9 | {"9": 2},
            "taken_at": "2026-01-05T10:00:00Z",
            "plan_id": plan.pk,
        },
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["plan_id"] == plan.pk
    assert body["total"] == 10 and body["flags"] == ["suicidality"] and len(body["alert_ids"]) == 1
    assert SafetyAlert.objects.get().pk == body["alert_ids"][0]
    listing = client.get(f"/api/v1/measures/patients/{patient.pk}/administrations").json()
    assert [i["id"] for i in listing["items"]] == [body["id"]] and not listing["has_more"]
    fhir = client.get(f"/api/v1/measures/administrations/{body['id']}/fhir").json()
    qr = QuestionnaireResponse.model_validate(fhir)
    assert qr.subject.reference == f"Patient/{patient.pk}" and qr.status == "completed"
    total = next(i for i in fhir["item"] if i["linkId"] == "total")
    assert total["answer"][0]["valueInteger"] == 10


def test_cssrs_fhir_response_validates(staff, patient, client_for):
    client = client_for(staff["nurse"])
    created = client.post(
        "/api/v1/measures/administrations",
        {
            "patient_id": patient.pk,
            "instrument": "cssrs",
            "answers": {"1": "yes", "2": "no", "6": "yes", "6b": "no"},
        },
        content_type="application/json",
    ).json()
    assert created["risk"] == "moderate"
    fhir = client.get(f"/api/v1/measures/administrations/{created['id']}/fhir").json()
    QuestionnaireResponse.model_validate(fhir)


def test_acknowledge_twice_is_a_conflict(staff, patient, client_for):
    client = client_for(staff["nurse"])
    created = client.post(
        "/api/v1/measures/administrations",
        {"patient_id": patient.pk, "instrument": "phq9", "answers": PHQ9 | {"9": 1}},
        content_type="application/json",
    ).json()
    alert_id = created["alert_ids"][0]
    assert [a["id"] for a in client.get("/api/v1/measures/alerts").json()] == [alert_id]
    url = f"/api/v1/measures/alerts/{alert_id}/acknowledge"
    first = client.post(url, {"note": "Called"}, content_type="application/json")
    assert first.status_code == 200 and first.json()["acknowledged_by_id"] == staff["nurse"].pk
    second = client_for(staff["prescriber"]).post(url, {}, content_type="application/json")
    assert second.status_code == 409 and "Already acknowledged" in second.json()["detail"]
    assert client.get("/api/v1/measures/alerts").json() == []


def test_naive_times_are_refused(staff, patient, client_for):
    response = client_for(staff["nurse"]).post(
        "/api/v1/measures/administrations",
        {
            "patient_id": patient.pk,
            "instrument": "phq9",
            "answers": PHQ9,
            "taken_at": "2026-01-05T10:00:00",
        },
        content_type="application/json",
    )
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "taken_at"


def test_course_of_another_patient_is_a_field_error(
    clinic, other_clinic, staff, patient, client_for, make_plan, make_patient
):
    client = client_for(staff["nurse"])
    for plan in (make_plan(make_patient(clinic)), make_plan(make_patient(other_clinic))):
        bad = client.post(
            "/api/v1/measures/administrations",
            {"patient_id": patient.pk, "instrument": "phq9", "answers": PHQ9, "plan_id": plan.pk},
            content_type="application/json",
        )
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "plan"
    assert not Administration.objects.exists()


def test_api_applies_the_chart_scope_of_the_pages(
    clinic, staff, make_user, make_patient, client_for
):
    """A nurse who works only at another location gets 403 on the patient's questionnaires,
    like on the chart pages; an emergency-access grant opens them (and is audited)."""
    from ketaflow.accounts.models import EmergencyAccess
    from ketaflow.measures import services

    north = clinic.locations.get(name="North")
    patient = make_patient(clinic)
    patient.preferred_location = north
    patient.save()
    adm = services.record_administration(
        patient=patient, actor=staff["nurse"], instrument="phq9", answers=PHQ9
    )
    outsider = make_user(clinic, "nurse", locations=["South"])
    client = client_for(outsider)
    urls = [
        f"/api/v1/measures/patients/{patient.pk}/administrations",
        f"/api/v1/measures/administrations/{adm.pk}",
        f"/api/v1/measures/administrations/{adm.pk}/fhir",
    ]
    for url in urls:
        refused = client.get(url)
        assert refused.status_code == 403, url
        assert "outside your scope" in refused.json()["detail"]
    created = client.post(
        "/api/v1/measures/administrations",
        {"patient_id": patient.pk, "instrument": "phq9", "answers": PHQ9},
        content_type="application/json",
    )
    assert created.status_code == 403 and Administration.objects.count() == 1
    import datetime

    EmergencyAccess.objects.create(
        clinic=clinic,
        user=outsider,
        patient=patient,
        reason="Synthetic emergency for the test",
        expires_at=datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1),
    )
    for url in urls:
        assert client.get(url).status_code == 200, url
