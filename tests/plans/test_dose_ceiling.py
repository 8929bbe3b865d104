"""Issue 17 item 2: dose limits an override cannot pass (plans, calculator page and API,
dosing settings)."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from ketaflow.audit.models import AuditEvent
from ketaflow.plans import services
from ketaflow.plans.models import DosingSettingsRow, PlanVersion

REASON = "Partial response at 1.0 mg/kg after three infusions (synthetic)"


def test_a_100_mg_per_kg_plan_cannot_be_signed_even_with_a_justification(patient, staff, plan_data):
    before = PlanVersion.objects.count()
    for reason in ("x", REASON):
        with pytest.raises(ValidationError) as err:
            services.create_plan(
                patient=patient,
                actor=staff["prescriber"],
                data=plan_data(weight_kg="82", dose_value="100", override_reason=reason),
            )
        msg = err.value.message_dict["dose_value"][0]
        assert "absolute ceiling of 2 mg/kg" in msg and "ceiling_mg_per_kg" in msg
    assert PlanVersion.objects.count() == before


def test_a_justification_of_one_letter_does_not_sign_an_override(patient, staff, plan_data):
    with pytest.raises(ValidationError) as err:
        services.create_plan(
            patient=patient,
            actor=staff["prescriber"],
            data=plan_data(dose_value="1.2", override_reason="x"),
        )
    assert "at least 20 characters" in err.value.message_dict["override_reason"][0]


def test_revising_to_a_dose_above_the_ceiling_is_refused(patient, staff, plan_data):
    plan = services.create_plan(patient=patient, actor=staff["prescriber"], data=plan_data())
    with pytest.raises(ValidationError, match="absolute ceiling"):
        services.revise_plan(
            plan=plan,
            actor=staff["prescriber"],
            data=plan_data(dose_value="2.5", override_reason=REASON, change_reason="More"),
        )


def test_api_calculator_and_plan_refuse_above_the_ceiling_naming_it(
    patient, staff, client_for, plan_data
):
    client = client_for(staff["prescriber"])
    body = {
        "route": "iv-ketamine",
        "weight_kg": 70,
        "dose_value": 10,
        "minutes": 40,
        "override_reason": "per MD",
    }
    r = client.post("/api/v1/plans/dose", body, content_type="application/json")
    assert r.status_code == 422
    errors = {e["field"]: e["message"] for e in r.json()["errors"]}
    assert "absolute ceiling of 2 mg/kg" in errors["dose_value"]
    r = client.post(
        "/api/v1/plans/dose", {**body, "override_reason": REASON}, content_type="application/json"
    )
    assert r.status_code == 422
    created = client.post(
        "/api/v1/plans/plans",
        {
            **plan_data(dose_value="100", override_reason=REASON),
            "patient_id": patient.pk,
            "weight_kg": 82,
        },
        content_type="application/json",
    )
    assert created.status_code == 422
    assert any("absolute ceiling" in e["message"] for e in created.json()["errors"])


def test_calculator_page_names_the_ceiling(staff, client_for):
    client = client_for(staff["prescriber"])
    page = client.post(
        "/plans/dose/",
        {
            "route": "iv-ketamine",
            "weight_kg": "70",
            "dose_value": "10",
            "minutes": "40",
            "override_reason": REASON,
        },
    )
    assert page.status_code == 200
    assert "absolute ceiling of 2 mg/kg" in page.content.decode()


def test_raising_a_ceiling_is_an_audited_settings_change(clinic, staff, settings_data):
    before = AuditEvent.objects.count()
    services.save_dosing_settings(
        clinic=clinic,
        actor=staff["owner"],
        data=settings_data(iv_ceiling_mg_per_kg="3", iv_max_mg_per_kg="1.0"),
    )
    assert AuditEvent.objects.count() == before + 1
    event = AuditEvent.objects.latest("id")
    assert event.detail["limits"] == {"iv_ceiling_mg_per_kg": {"from": "2", "to": "3"}}
    row = DosingSettingsRow.objects.get(clinic=clinic)
    assert row.as_dosing().ceiling("iv-ketamine") == (Decimal(3), Decimal(200))


def test_prescribers_cannot_change_the_ceiling(clinic, staff, settings_data):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.save_dosing_settings(
            clinic=clinic, actor=staff["prescriber"], data=settings_data(iv_ceiling_mg_per_kg="3")
        )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"iv_max_mg_per_kg": "2.5"}, "iv_max_mg_per_kg"),
        ({"iv_ceiling_mg_per_kg": "20"}, "iv_ceiling_mg_per_kg"),
        ({"im_max_mg_per_kg": "1.5"}, "im_max_mg_per_kg"),
    ],
)
def test_settings_refuse_a_maximum_above_the_ceiling(clinic, staff, settings_data, changes, field):
    with pytest.raises(ValidationError) as err:
        services.save_dosing_settings(
            clinic=clinic, actor=staff["owner"], data=settings_data(**changes)
        )
    assert field in err.value.message_dict


def test_boundary_073_kg_at_075_max_with_5mg_rounding_signs_50_mg(
    clinic, patient, staff, plan_data, settings_data
):
    services.save_dosing_settings(
        clinic=clinic,
        actor=staff["owner"],
        data=settings_data(rounding_mg="5", iv_max_mg_per_kg="0.75"),
    )
    plan = services.create_plan(
        patient=patient,
        actor=staff["prescriber"],
        data=plan_data(weight_kg="73", dose_value="0.75"),
    )
    assert plan.current.dose_mg == Decimal(50)
