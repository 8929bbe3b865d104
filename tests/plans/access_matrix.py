"""Routes of the plans app for tests/security/test_access_matrix.py."""

import datetime
from decimal import Decimal

from ketaflow.clinical import protocols


def make_plan(world):
    from ketaflow.plans.models import PlanVersion, TreatmentPlan

    clinic, patient = world["clinic"], world["patient"]
    prescriber = world["staff"]["prescriber"]
    protocol = protocols.get("iv-ketamine-clinic-6")
    plan = TreatmentPlan.objects.create(clinic=clinic, patient=patient, phase="induction")
    version = PlanVersion.objects.create(
        clinic=clinic,
        plan=plan,
        number=1,
        protocol_code=protocol.code,
        protocol_name=protocol.name,
        protocol_source=protocol.source,
        protocol_data=protocols.to_dict(protocol),
        route=protocol.route,
        prescriber=prescriber,
        phase="induction",
        step=1,
        dose_value=Decimal("0.5"),
        dose_unit="mg/kg",
        dose_mg=Decimal("35"),
        weight_kg=Decimal("70"),
        weight_basis="actual",
        calculation={"arithmetic": ["70 kg × 0.5 mg/kg = 35 mg"], "minutes": 40},
        start_date=datetime.date(2030, 1, 7),
        goals="Synthetic goals",
        signed_by=prescriber,
        signed_at=datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC),
    )
    plan.current = version
    plan.save()
    return plan.pk


PLAN_BODY = {
    "protocol": "iv-ketamine-clinic-6",
    "prescriber": 0,
    "weight_kg": 70,
    "start_date": "2030-01-07",
    "goals": "Synthetic goals",
}

WEB = {
    "plans:protocols": ("get", "chart.view", {}),
    "plans:protocol": ("get", "chart.view", {"code": "esketamine-trd"}),
    "plans:protocol_edit": ("get", "protocols.manage", {"code": "esketamine-trd"}),
    "plans:settings": ("get", "clinic.settings", {}),
    "plans:dose": ("get", "chart.view", {}),
    "plans:create": ("get", "plans.edit", {"pk": "patient"}),
    "plans:detail": ("get", "chart.view", {"pk": "plan"}),
    "plans:revise": ("get", "plans.edit", {"pk": "plan"}),
    "plans:status": ("post", "plans.edit", {"pk": "plan"}),
    "plans:transition": ("post", "plans.edit", {"pk": "plan"}),
}
API = {
    "ketaflow_plans_api_list_protocols": ("chart.view", {}),
    "ketaflow_plans_api_get_protocol": ("chart.view", {"code": "esketamine-trd"}),
    "ketaflow_plans_api_save_protocol": ("protocols.manage", {"code": "esketamine-trd"}),
    "ketaflow_plans_api_calculate_dose": ("chart.view", {}),
    "ketaflow_plans_api_list_plans": ("chart.view", {}),
    "ketaflow_plans_api_create_plan": ("plans.edit", {}),
    "ketaflow_plans_api_get_plan": ("chart.view", {"plan_id": "plan"}),
    "ketaflow_plans_api_plan_prediction": ("chart.view", {"plan_id": "plan"}),
    "ketaflow_plans_api_revise_plan": ("plans.edit", {"plan_id": "plan"}),
    "ketaflow_plans_api_change_status": ("plans.edit", {"plan_id": "plan"}),
    "ketaflow_plans_api_transition_phase": ("plans.edit", {"plan_id": "plan"}),
}
OBJECTS = {"plan": make_plan}
BODIES = {
    "plans:status": {"status": "discontinued", "reason": "Synthetic reason"},
    "plans:transition": {"to_phase": "boosters", "outcome": "Synthetic outcome"},
    "ketaflow_plans_api_save_protocol": {
        "data": protocols.to_dict(protocols.get("esketamine-trd"))
    },
    "ketaflow_plans_api_calculate_dose": {
        "route": "iv-ketamine",
        "dose_value": 0.5,
        "weight_kg": 70,
        "minutes": 40,
    },
    "ketaflow_plans_api_create_plan": {**PLAN_BODY, "patient_id": 0},
    "ketaflow_plans_api_revise_plan": {**PLAN_BODY, "change_reason": "Synthetic change"},
    "ketaflow_plans_api_change_status": {"status": "paused", "reason": "Synthetic"},
    "ketaflow_plans_api_transition_phase": {"to_phase": "boosters", "outcome": "Synthetic"},
}
