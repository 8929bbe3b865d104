"""Intake API (/api/v1/intake/): eligibility check, requests, assessment, decisions, consents."""

import datetime
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError

from ketaflow.api import ERRORS, WRITE_ERRORS, api_require
from ketaflow.audit import services as audit
from ketaflow.clinical import eligibility as rules
from ketaflow.intake import selectors, services
from ketaflow.patients import selectors as patient_selectors
from ketaflow.web import bounds

router = Router(tags=["intake"])
# Mounted at /api/v1/eligibility/ by ketaflow/api.py (the path the eligibility rules are known by).
eligibility_router = Router(tags=["eligibility"])
EXTRA_ROUTERS = {"/eligibility": eligibility_router}


class ReasonOut(Schema):
    code: str
    severity: str = Field(description="absolute, review or info")
    message: str
    source: str


class EligibilityOut(Schema):
    decision: str = Field(description="eligible, review or ineligible")
    trd: bool
    adequate_failed_trials: int
    reasons: list[ReasonOut]


class CaseIn(Schema):
    """The case format of ``ketaflow eligibility check FILE`` (see docs/intake.md)."""

    route: Any = Field(description=", ".join(rules.ROUTES))
    age: Any
    antidepressant_trials: Any = Field(
        description="list of {drug, adequate_dose, weeks, current_episode, outcome}"
    )
    conditions: Any = Field(description=", ".join(rules.CONDITIONS))
    medication_classes: Any = Field(description=", ".join(rules.MEDICATION_CLASSES))
    blood_pressure: Any = Field(None, description="{systolic, diastolic} or null")


def _chart_patient(request, clinic, patient_id):
    patient = patient_selectors.get_patient(clinic, patient_id)
    access, grant = patient_selectors.chart_access(request.user, clinic, patient)
    if access is None:
        raise HttpError(403, "This chart is outside your normal scope (use emergency access).")
    request.emergency_grant = grant
    return patient


@eligibility_router.post(
    "/check",
    response={200: EligibilityOut, **WRITE_ERRORS},
    summary="Evaluate an eligibility case (decision support, nothing stored)",
)
def eligibility_check(request, body: CaseIn):
    clinic = api_require(request, "chart.view")
    data = body.model_dump(exclude_unset=True)
    try:
        case = rules.parse_case(data)
    except rules.CaseError as exc:
        raise ValidationError({exc.field: [exc.message]}) from exc
    return rules.evaluate(case, selectors.eligibility_settings(clinic)).as_dict()


class RequestOut(Schema):
    id: int
    status: str
    given_name: str
    family_name: str
    date_of_birth: datetime.date
    email: str
    phone: str
    preferred_location_id: int | None
    contact_time: str
    seeking: list[str]
    seeking_other: str
    prescreen: dict
    phq9_total: int | None
    phq9_item9: int | None
    summary: str
    summary_reasons: list[str]
    urgent: bool
    decline_reason: str
    patient_id: int | None
    created_at: datetime.datetime


class RequestPage(Schema):
    items: list[RequestOut]
    limit: int
    offset: int
    has_more: bool


class RequestStatusIn(Schema):
    status: str = Field(description="new, contacted, booked or declined")
    decline_reason: str = Field("", max_length=500)


class ConvertOut(Schema):
    patient_id: int
    mrn: str


@router.get("/requests", response={200: RequestPage, **ERRORS}, summary="Consultation requests")
def list_requests(request, status: str | None = None, limit: int = 25, offset: bounds.Offset = 0):
    clinic = api_require(request, "intake.view")
    limit, offset = max(1, min(limit, 100)), max(0, offset)
    rows = list(selectors.requests(clinic, status)[offset : offset + limit + 1])
    audit.record_list_read(
        request,
        patient_ids=[r.patient_id for r in rows[:limit]],
        object_ids=[r.pk for r in rows[:limit]],
        object_type="intake.consultationrequest",
        detail={"filters": {"status": status, "limit": limit, "offset": offset}},
    )
    return {"items": rows[:limit], "limit": limit, "offset": offset, "has_more": len(rows) > limit}


@router.get("/requests/{request_id}", response={200: RequestOut, **ERRORS}, summary="One request")
def get_request(request, request_id: bounds.Id):
    clinic = api_require(request, "intake.view")
    item = selectors.get_request(clinic, request_id)
    audit.record(
        action="read",
        clinic=clinic,
        actor=request.user,
        obj=item,
        patient=item.patient,
        emergency=item.patient is not None and audit.read_is_emergency(request, item.patient),
    )
    return item


@router.post(
    "/requests/{request_id}/status",
    response={200: RequestOut, **WRITE_ERRORS},
    summary="Change a request's status",
)
def set_request_status(request, request_id: bounds.Id, body: RequestStatusIn):
    clinic = api_require(request, "intake.manage", writes=True)
    item = selectors.get_request(clinic, request_id)
    return services.set_request_status(
        item=item, actor=request.user, status=body.status, decline_reason=body.decline_reason
    )


@router.post(
    "/requests/{request_id}/convert",
    response={201: ConvertOut, **WRITE_ERRORS},
    summary="Turn a request into a prospective patient",
)
def convert_request(request, request_id: bounds.Id):
    clinic = api_require(request, "intake.manage", writes=True)
    item = selectors.get_request(clinic, request_id)
    patient = services.convert_request(item=item, actor=request.user)
    return Status(201, {"patient_id": patient.pk, "mrn": patient.mrn})


class AssessmentOut(Schema):
    id: int
    status: str
    diagnoses: list[dict]
    episode_start: datetime.date | None
    history_psychosis: bool
    history_mania: bool
    suicide_attempts: int
    hospitalisations: int
    trials: list[dict]
    medications: list[dict]
    conditions: list[str]
    substance_use_disorder: bool
    pregnant: bool
    breastfeeding: bool
    allergies: str
    systolic: int | None
    diastolic: int | None
    heart_rate: int | None
    weight_kg: float | None
    height_cm: float | None
    bmi: float | None
    signed_at: datetime.datetime | None
    signed_by_id: int | None


class RouteResultOut(EligibilityOut):
    route: str


class PatientEligibilityOut(Schema):
    assessment: AssessmentOut | None
    results: list[RouteResultOut]
    approved_routes: list[str]
    current_decision: str | None


@router.get(
    "/patients/{patient_id}/eligibility",
    response={200: PatientEligibilityOut, **ERRORS},
    summary="Latest assessment, rule result per route, and the decision in force",
)
def patient_eligibility(request, patient_id: bounds.Id):
    clinic = api_require(request, "chart.view")
    patient = _chart_patient(request, clinic, patient_id)
    audit.record_read(request, patient=patient, detail={"tab": "eligibility"})
    assessment = selectors.latest_assessment(patient)
    results = []
    if assessment is not None:
        results = [
            {"route": r, **v} for r, v in selectors.rule_results(assessment, patient).items()
        ]
    decision = selectors.current_decision(patient)
    return {
        "assessment": assessment,
        "results": results,
        "approved_routes": sorted(selectors.approved_routes(patient), key=rules.ROUTES.index),
        "current_decision": decision.decision if decision else None,
    }


class DecisionIn(Schema):
    decision: str = Field(description="approve, decline or defer")
    routes: list[str] = Field(default_factory=list)
    reason: str = Field("", max_length=2000)
    justification: str = Field("", max_length=4000)


class DecisionOut(Schema):
    id: int
    decision: str
    routes: list[str]
    reason: str
    justification: str
    signed_at: datetime.datetime
    decided_by_id: int


@router.post(
    "/patients/{patient_id}/decisions",
    response={201: DecisionOut, **WRITE_ERRORS},
    summary="Sign the prescriber's eligibility decision",
)
def record_decision(request, patient_id: bounds.Id, body: DecisionIn):
    clinic = api_require(request, "eligibility.decide", writes=True)
    patient = _chart_patient(request, clinic, patient_id)
    try:
        item = services.record_decision(patient=patient, actor=request.user, **body.model_dump())
    except PermissionDenied as exc:
        raise HttpError(403, str(exc)) from exc
    return Status(201, item)


class ConsentOut(Schema):
    id: int
    route: str
    version: int
    title: str
    typed_name: str
    signed_at: datetime.datetime
    via: str
    body_sha256: str
    withdrawn_at: datetime.datetime | None
    withdrawn_reason: str


@router.get(
    "/patients/{patient_id}/consents",
    response={200: list[ConsentOut], **ERRORS},
    summary="The patient's consent signatures (withdrawn ones included)",
)
def patient_consents(request, patient_id: bounds.Id):
    clinic = api_require(request, "chart.view")
    patient = _chart_patient(request, clinic, patient_id)
    audit.record_read(request, patient=patient, detail={"tab": "consents"})
    return list(selectors.signatures(patient))


@router.get(
    "/patients/{patient_id}/assessment",
    response={200: AssessmentOut, **ERRORS},
    summary="The patient's latest clinical assessment (draft or signed)",
)
def patient_assessment(request, patient_id: bounds.Id):
    """404 when the patient has no assessment yet. A signed assessment never changes; a later
    one (saved after signing) is returned once it exists."""
    clinic = api_require(request, "chart.view")
    patient = _chart_patient(request, clinic, patient_id)
    assessment = selectors.latest_assessment(patient)
    if assessment is None:
        raise HttpError(404, "This patient has no assessment yet.")
    audit.record_read(request, patient=patient, obj=assessment, detail={"tab": "assessment"})
    return assessment
