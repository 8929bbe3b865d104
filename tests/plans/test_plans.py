import json
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from ketaflow.audit.models import AuditEvent
from ketaflow.clinical import protocols
from ketaflow.plans import gates, services
from ketaflow.plans.models import PlanEvent, PlanVersion


def test_create_plan_signs_version_with_dose_arithmetic_and_one_audit_event(
    patient, staff, plan_data
):
    before = AuditEvent.objects.count()
    plan = services.create_plan(patient=patient, actor=staff["prescriber"], data=plan_data())
    v = plan.current
    assert plan.status == "draft" and v.number == 1 and v.signed_by == staff["prescriber"]
    assert v.dose_mg == Decimal("40") and v.dose_unit == "mg/kg" and v.weight_basis == "actual"
    assert v.calculation["arithmetic"][0] == "80 kg (actual body weight) × 0.5 mg/kg = 40 mg"
    assert v.protocol_data["code"] == "iv-ketamine-clinic-6"
    assert AuditEvent.objects.count() == before + 1
    assert AuditEvent.objects.latest("id").action == "create"


@pytest.mark.parametrize("role", ["owner", "nurse", "therapist", "front_desk"])
def test_only_prescribers_create_plans(patient, staff, plan_data, role):
    with pytest.raises(PermissionDenied):
        services.create_plan(patient=patient, actor=staff[role], data=plan_data())


def test_exceeding_the_maximum_needs_a_justification_which_is_recorded(patient, staff, plan_data):
    with pytest.raises(ValidationError) as err:
        services.create_plan(
            patient=patient, actor=staff["prescriber"], data=plan_data(dose_value="1.2")
        )
    assert "override_reason" in err.value.message_dict
    assert "above the clinic maximum of 1 mg/kg" in err.value.message_dict["dose_value"][0]
    plan = services.create_plan(
        patient=patient,
        actor=staff["prescriber"],
        data=plan_data(dose_value="1.2", override_reason="Partial response at 1.0 (synthetic)"),
    )
    v = plan.current
    assert v.override_reason == "Partial response at 1.0 (synthetic)"
    assert v.calculation["override"]["reason"] == v.override_reason
    assert any(line.startswith("OVERRIDE") for line in v.calculation["arithmetic"])


def test_clinic_rounding_and_maximum_settings_apply(
    clinic, patient, staff, plan_data, settings_data
):
    services.save_dosing_settings(
        clinic=clinic,
        actor=staff["owner"],
        data=settings_data(weight_basis="ideal", rounding_mg="5", iv_max_mg_per_kg="0.8"),
    )
    plan = services.create_plan(
        patient=patient, actor=staff["prescriber"], data=plan_data(weight_kg="73")
    )
    assert plan.current.dose_mg == Decimal("35")  # 36.5 mg to the nearest 5 mg
    assert plan.current.weight_basis == "ideal"
    with pytest.raises(ValidationError):
        services.create_plan(
            patient=patient, actor=staff["prescriber"], data=plan_data(dose_value="0.9")
        )


def test_signed_versions_never_change_and_changes_are_new_versions(patient, staff, plan_data):
    plan = services.create_plan(patient=patient, actor=staff["prescriber"], data=plan_data())
    first = plan.current
    first.goals = "tampered"
    with pytest.raises(ValidationError):
        first.save()
    with pytest.raises(ValidationError):
        services.revise_plan(plan=plan, actor=staff["prescriber"], data=plan_data(dose_value="0.6"))
    v2 = services.revise_plan(
        plan=plan,
        actor=staff["prescriber"],
        data=plan_data(dose_value="0.6", change_reason="No benefit after infusion 3"),
    )
    assert v2.number == 2 and v2.dose_mg == Decimal("48")
    assert PlanVersion.objects.get(pk=first.pk).goals == "PHQ-9 response (synthetic)"


def test_gate_refuses_when_intake_is_not_installed(patient, staff, plan_data, monkeypatch):
    monkeypatch.setattr(gates, "intake_installed", lambda: False)
    plan = services.create_plan(patient=patient, actor=staff["prescriber"], data=plan_data())
    with pytest.raises(ValidationError) as err:
        services.change_status(plan=plan, actor=staff["prescriber"], status="active")
    assert "intake app" in err.value.message_dict["status"][0]
    plan.refresh_from_db()
    assert plan.status == "draft"


@pytest.mark.parametrize(
    ("routes", "consent", "needle"),
    [
        (set(), object(), "No approved eligibility decision"),
        ({"iv-ketamine"}, None, "No signed consent"),
        ({"esketamine-nasal"}, object(), "No approved eligibility decision for iv-ketamine"),
    ],
)
def test_gate_needs_approval_and_consent_for_the_route(
    patient, staff, plan_data, monkeypatch, routes, consent, needle
):
    monkeypatch.setattr(gates, "intake_installed", lambda: True)
    monkeypatch.setattr(gates, "approved_routes", lambda p: routes)
    monkeypatch.setattr(gates, "signed_consent", lambda p, r: consent)
    plan = services.create_plan(patient=patient, actor=staff["prescriber"], data=plan_data())
    with pytest.raises(ValidationError) as err:
        services.change_status(plan=plan, actor=staff["prescriber"], status="active")
    assert any(needle in m for m in err.value.message_dict["status"])


def test_status_flow_and_phase_transition_with_outcome(patient, staff, plan_data, gate_open):
    plan = services.create_plan(patient=patient, actor=staff["prescriber"], data=plan_data())
    services.change_status(plan=plan, actor=staff["prescriber"], status="active")
    with pytest.raises(ValidationError):
        services.transition_phase(
            plan=plan, actor=staff["prescriber"], to_phase="boosters", outcome=""
        )
    with pytest.raises(ValidationError):
        services.transition_phase(
            plan=plan, actor=staff["prescriber"], to_phase="induction", outcome="x"
        )
    v = services.transition_phase(
        plan=plan,
        actor=staff["prescriber"],
        to_phase="boosters",
        outcome="PHQ-9 21 → 8 after 6 infusions (synthetic)",
    )
    plan.refresh_from_db()
    assert plan.phase == "boosters" and v.number == 2 and v.step == 1
    event = PlanEvent.objects.get(plan=plan, kind="phase")
    assert event.reason.startswith("PHQ-9 21")
    with pytest.raises(ValidationError):
        services.change_status(plan=plan, actor=staff["prescriber"], status="discontinued")
    services.change_status(
        plan=plan, actor=staff["prescriber"], status="discontinued", reason="Patient moved away"
    )
    with pytest.raises(ValidationError):
        services.change_status(plan=plan, actor=staff["prescriber"], status="active")


def test_protocol_copy_is_validated_by_from_dict(clinic, staff):
    data = protocols.to_dict(protocols.get("esketamine-trd"))
    data["dose"]["maximum"] = 112
    with pytest.raises(ValidationError) as err:
        services.save_protocol(
            clinic=clinic, actor=staff["owner"], code="esketamine-trd", data=data
        )
    assert err.value.message_dict["data"][0].startswith("dose.")
    data = protocols.to_dict(protocols.get("esketamine-trd"))
    data["notes"] = "Clinic note (synthetic)"
    services.save_protocol(clinic=clinic, actor=staff["owner"], code="esketamine-trd", data=data)
    from ketaflow.plans.selectors import get_protocol

    assert get_protocol(clinic, "esketamine-trd").notes == "Clinic note (synthetic)"
    with pytest.raises(PermissionDenied):
        services.save_protocol(
            clinic=clinic, actor=staff["prescriber"], code="esketamine-trd", data=data
        )


def test_web_override_is_recorded_and_page_shows_arithmetic_and_pk(
    patient, staff, client_for, plan_data
):
    client = client_for(staff["prescriber"])
    refused = client.post(f"/plans/patient/{patient.pk}/new/", plan_data(dose_value="1.5"))
    assert refused.status_code == 200 and "justification" in refused.content.decode()
    ok = client.post(
        f"/plans/patient/{patient.pk}/new/",
        plan_data(dose_value="1.5", override_reason="Documented partial response (synthetic)"),
    )
    assert ok.status_code == 302
    page = client.get(ok["Location"]).content.decode()
    assert "Documented partial response (synthetic)" in page
    assert "80 kg (actual body weight) × 1.5 mg/kg = 120 mg" in page
    assert "<svg" in page and "Population estimate" in page and "100 ng/mL" in page
    tab = client.get(f"/patients/{patient.pk}/plan/").content.decode()
    assert "Treatment plan" in tab and "<svg" in tab


def test_api_dose_calculation_applies_limits_and_overrides(staff, client_for):
    client = client_for(staff["nurse"])
    body = {"route": "iv-ketamine", "dose_value": 1.2, "weight_kg": 70, "minutes": 40}
    refused = client.post("/api/v1/plans/dose", body, content_type="application/json")
    assert refused.status_code == 422
    fields = {e["field"] for e in refused.json()["errors"]}
    assert {"dose_value", "override_reason"} <= fields
    ok = client.post(
        "/api/v1/plans/dose",
        {**body, "override_reason": "Synthetic reason: partial response"},
        content_type="application/json",
    )
    assert ok.status_code == 200
    assert ok.json()["override"]["reason"] == "Synthetic reason: partial response"
    esk = client.post(
        "/api/v1/plans/dose",
        {"route": "esketamine-nasal", "dose_value": 112},
        content_type="application/json",
    )
    assert esk.status_code == 422


def test_api_create_plan_and_no_route_edits_a_signed_version(patient, staff, client_for, plan_data):
    client = client_for(staff["prescriber"])
    body = {**plan_data(), "patient_id": patient.pk, "weight_kg": 80}
    created = client.post("/api/v1/plans/plans", body, content_type="application/json")
    assert created.status_code == 201, created.content
    plan_id = created.json()["id"]
    assert created.json()["current"]["dose_mg"] in ("40.000", 40, "40")
    # There is no PUT/PATCH for a plan or a version: a change is a new version.
    assert (
        client.put(
            f"/api/v1/plans/plans/{plan_id}", body, content_type="application/json"
        ).status_code
        == 405
    )
    revised = client.post(
        f"/api/v1/plans/plans/{plan_id}/versions",
        {**body, "change_reason": "Weight change"},
        content_type="application/json",
    )
    assert revised.status_code == 201 and revised.json()["current"]["number"] == 2
    assert json.loads(json.dumps(PlanVersion.objects.filter(plan_id=plan_id).count())) == 2
