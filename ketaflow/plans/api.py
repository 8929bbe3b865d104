import datetime
from decimal import Decimal
from typing import Any

from ninja import Field, Router, Schema, Status

from ketaflow.api import ERRORS, WRITE_ERRORS, api_require
from ketaflow.audit import services as audit
from ketaflow.clinical import protocols
from ketaflow.patients import selectors as patient_selectors
from ketaflow.patients.scope import ChartScope
from ketaflow.plans import selectors, services
from ketaflow.web import bounds

router = Router(tags=["plans"])


class ProtocolOut(Schema):
    code: str
    name: str
    route: str
    source: str
    edited: bool
    data: dict[str, Any]


def _protocol_out(entry) -> dict:
    p = entry.protocol
    return {
        "code": p.code,
        "name": p.name,
        "route": p.route,
        "source": p.source,
        "edited": entry.edited,
        "data": protocols.to_dict(p),
    }


class VersionOut(Schema):
    number: int
    protocol_code: str
    route: str
    prescriber_id: int
    phase: str
    step: int
    dose_value: Decimal
    dose_unit: str
    dose_mg: Decimal
    weight_kg: Decimal | None
    weight_basis: str
    calculation: dict[str, Any]
    override_reason: str
    start_date: datetime.date
    goals: str
    change_reason: str
    signed_by_id: int
    signed_at: datetime.datetime


class PlanOut(Schema):
    id: int
    patient_id: int
    status: str
    status_reason: str
    phase: str
    step: int = Field(description="The next visit number (advanced by completed dosing visits)")
    current: VersionOut


class PlanPage(Schema):
    items: list[PlanOut]
    limit: int
    offset: int
    has_more: bool


class PlanIn(Schema):
    protocol: str
    phase: str = ""
    step: int = 1
    prescriber: bounds.Id
    weight_kg: Decimal
    dose_value: Decimal | None = None
    override_reason: str = ""
    start_date: datetime.date
    goals: str
    change_reason: str = ""

    def as_form_data(self) -> dict:
        return {k: ("" if v is None else str(v)) for k, v in self.model_dump().items()}


class PlanCreateIn(PlanIn):
    patient_id: bounds.Id


class PlanStatusIn(Schema):
    status: str
    reason: str = ""


class TransitionIn(Schema):
    to_phase: str
    outcome: str


class DoseIn(Schema):
    route: str = Field(
        ..., description="iv-ketamine, im-ketamine, sc-ketamine, oral-ketamine, esketamine-nasal"
    )
    dose_value: Decimal = Field(..., description="mg/kg, or mg for esketamine")
    weight_kg: Decimal | None = None
    minutes: Decimal | None = None
    override_reason: str = ""


class ProtocolIn(Schema):
    data: dict[str, Any]


@router.get("/protocols", response={200: list[ProtocolOut], **ERRORS}, summary="Protocol library")
def list_protocols(request):
    clinic = api_require(request, "chart.view")
    return [_protocol_out(e) for e in selectors.library(clinic)]


@router.get("/protocols/{code}", response={200: ProtocolOut, **ERRORS}, summary="One protocol")
def get_protocol(request, code: str):
    clinic = api_require(request, "chart.view")
    return _protocol_out(selectors.library_entry(clinic, code))


@router.put(
    "/protocols/{code}",
    response={200: ProtocolOut, **WRITE_ERRORS},
    summary="Store the clinic's edited copy of a protocol",
)
def save_protocol(request, code: str, body: ProtocolIn):
    clinic = api_require(request, "protocols.manage", writes=True)
    selectors.library_entry(clinic, code)
    services.save_protocol(clinic=clinic, actor=request.user, code=code, data=body.data)
    return _protocol_out(selectors.library_entry(clinic, code))


@router.post("/dose", response={200: dict[str, Any], **WRITE_ERRORS}, summary="Calculate a dose")
def calculate_dose(request, body: DoseIn):
    """The clinic's limits and rounding apply; above the mg/kg maximum only with a reason."""
    clinic = api_require(request, "chart.view")
    return services.calculate(
        clinic=clinic,
        route=body.route,
        dose_value=body.dose_value,
        weight_kg=body.weight_kg,
        minutes=body.minutes,
        override_reason=body.override_reason,
    ).as_dict()


def _plan_for(request, clinic, plan_id, write=False):
    plan = selectors.get_plan(clinic, plan_id)
    access, _ = patient_selectors.chart_access(request.user, clinic, plan.patient)
    if access is None:
        from ninja.errors import HttpError

        raise HttpError(403, "This chart is outside your normal scope.")
    return plan


@router.get("/plans", response={200: PlanPage, **ERRORS}, summary="List plans")
def list_plans(
    request, patient_id: bounds.Id | None = None, limit: int = 25, offset: bounds.Offset = 0
):
    """Only plans of patients whose chart you may open (your locations, your patients,
    emergency grants), as on each plan's own page; the read is audited."""
    clinic = api_require(request, "chart.view")
    limit, offset = max(1, min(limit, 100)), max(0, offset)
    qs = selectors.plans(clinic).order_by("-created_at", "-id")
    qs = ChartScope(request.user, clinic).visible(qs)
    if patient_id is not None:
        qs = qs.filter(patient_id=patient_id)
    rows = list(qs[offset : offset + limit + 1])
    audit.record_list_read(
        request,
        patient_ids=[p.patient_id for p in rows[:limit]],
        object_type="plans.treatmentplan",
        detail={"filters": {"patient_id": patient_id, "limit": limit, "offset": offset}},
    )
    return {"items": rows[:limit], "limit": limit, "offset": offset, "has_more": len(rows) > limit}


@router.get("/plans/{plan_id}", response={200: PlanOut, **ERRORS}, summary="One plan")
def get_plan(request, plan_id: bounds.Id):
    clinic = api_require(request, "chart.view")
    plan = _plan_for(request, clinic, plan_id)
    audit.record_read(request, patient=plan.patient, obj=plan)
    return plan


@router.post("/plans", response={201: PlanOut, **WRITE_ERRORS}, summary="Create and sign a plan")
def create_plan(request, body: PlanCreateIn):
    clinic = api_require(request, "plans.edit", writes=True)
    from django.core.exceptions import ValidationError
    from django.http import Http404

    try:
        patient = patient_selectors.get_patient(clinic, body.patient_id)
    except Http404:
        raise ValidationError({"patient_id": ["No such patient in this clinic."]}) from None
    plan = services.create_plan(patient=patient, actor=request.user, data=body.as_form_data())
    return Status(201, selectors.get_plan(clinic, plan.pk))


@router.post(
    "/plans/{plan_id}/versions",
    response={201: PlanOut, **WRITE_ERRORS},
    summary="Revise a plan (a new signed version)",
)
def revise_plan(request, plan_id: bounds.Id, body: PlanIn):
    clinic = api_require(request, "plans.edit", writes=True)
    plan = _plan_for(request, clinic, plan_id)
    services.revise_plan(plan=plan, actor=request.user, data=body.as_form_data())
    return Status(201, selectors.get_plan(clinic, plan.pk))


@router.post(
    "/plans/{plan_id}/status", response={200: PlanOut, **WRITE_ERRORS}, summary="Change status"
)
def change_status(request, plan_id: bounds.Id, body: PlanStatusIn):
    clinic = api_require(request, "plans.edit", writes=True)
    plan = _plan_for(request, clinic, plan_id)
    services.change_status(plan=plan, actor=request.user, status=body.status, reason=body.reason)
    return selectors.get_plan(clinic, plan.pk)


@router.post(
    "/plans/{plan_id}/transitions",
    response={200: PlanOut, **WRITE_ERRORS},
    summary="Record a phase transition",
)
def transition_phase(request, plan_id: bounds.Id, body: TransitionIn):
    clinic = api_require(request, "plans.edit", writes=True)
    plan = _plan_for(request, clinic, plan_id)
    services.transition_phase(
        plan=plan, actor=request.user, to_phase=body.to_phase, outcome=body.outcome
    )
    return selectors.get_plan(clinic, plan.pk)


@router.get(
    "/plans/{plan_id}/prediction",
    response={200: dict[str, Any], **ERRORS},
    summary="Predicted concentration for the plan's current dose (population estimate)",
)
def plan_prediction(request, plan_id: int):
    """The same forecast as the plan page: racemic IV ketamine as every shipped model, the
    venous 100-250 ng/mL range with its source, and the time below 100 ng/mL as the range
    across the models; esketamine without a measured range.  ``null`` where ketaflow has
    no model for the route or the plan records no weight."""
    clinic = api_require(request, "chart.view")
    plan = _plan_for(request, clinic, plan_id)
    audit.record_read(request, patient=plan.patient, obj=plan)
    version = plan.current
    view = selectors.pk_view(version, plan.patient.age_on(version.start_date))
    return {"plan_id": plan.pk, "version": version.number, "prediction": view and view.data}
