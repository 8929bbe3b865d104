"""Measures API: instruments and their definitions, scoring, administrations, FHIR shapes,
safety alerts. Scoring always goes through ketaflow.clinical.instruments."""

import datetime
from typing import Any

from django.core.exceptions import ValidationError
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError

from ketaflow.api import ERRORS, WRITE_ERRORS, api_require
from ketaflow.audit import services as audit
from ketaflow.clinical import instruments
from ketaflow.measures import selectors, services
from ketaflow.patients import selectors as patient_selectors
from ketaflow.patients.scope import ChartScope
from ketaflow.web import bounds

router = Router(tags=["measures"])


class OptionOut(Schema):
    label: str
    value: int | str


class ItemOut(Schema):
    key: str
    text: str
    options: list[OptionOut]
    required: bool
    scored: bool
    asked_if: list[Any] | None = None


class BandOut(Schema):
    low: int
    high: int
    label: str


class InstrumentOut(Schema):
    code: str
    short_name: str
    name: str
    version: str
    respondent: str
    recall_period: str | None
    score_range: list[int] | None


class InstrumentDetailOut(InstrumentOut):
    stem: str | None
    wording: str
    items: list[ItemOut]
    bands: list[BandOut]
    direction: str
    licence_note: str
    source: str
    notes: list[str]


def _instrument(inst, detail=False) -> dict:
    out = {
        "code": inst.code,
        "short_name": inst.short_name,
        "name": inst.name,
        "version": inst.version,
        "respondent": inst.respondent,
        "recall_period": inst.recall_period,
        "score_range": list(inst.score_range) if inst.score_range else None,
    }
    if detail:
        out.update(
            stem=inst.stem,
            wording=inst.wording,
            items=[
                {
                    "key": it.key,
                    "text": it.text,
                    "options": [{"label": o.label, "value": o.value} for o in it.options],
                    "required": it.required,
                    "scored": it.scored,
                    "asked_if": list(it.asked_if) if it.asked_if else None,
                }
                for it in inst.items
            ],
            bands=[{"low": b.low, "high": b.high, "label": b.label} for b in inst.bands],
            direction=inst.direction,
            licence_note=inst.licence_note,
            source=inst.source,
            notes=list(inst.notes),
        )
    return out


def _get_instrument(code: str):
    try:
        return instruments.get(code)
    except instruments.UnknownInstrumentError:
        raise HttpError(404, f"No instrument {code!r}.") from None


@router.get(
    "/instruments", response={200: list[InstrumentOut], **ERRORS}, summary="List instruments"
)
def list_instruments(request):
    api_require(request, "patients.view")
    return [_instrument(i) for i in instruments.all_instruments()]


@router.get(
    "/instruments/{code}", response={200: InstrumentDetailOut, **ERRORS}, summary="One instrument"
)
def get_instrument(request, code: str):
    api_require(request, "patients.view")
    return _instrument(_get_instrument(code), detail=True)


@router.get(
    "/instruments/{code}/fhir",
    response={200: dict, **ERRORS},
    summary="FHIR R4 Questionnaire of an instrument",
)
def instrument_questionnaire(request, code: str):
    api_require(request, "patients.view")
    return instruments.to_fhir_questionnaire(_get_instrument(code))


def _chart_patient(request, clinic, patient_id):
    """The patient, if the caller may open this chart: the same scope as the pages (the
    patient's location, prescriber or therapist, or an active emergency-access grant)."""
    patient = patient_selectors.get_patient(clinic, patient_id)
    access, grant = patient_selectors.chart_access(request.user, clinic, patient)
    if access is None:
        raise HttpError(
            403,
            "This chart is outside your scope (the patient's location, or being their "
            "prescriber or therapist); use emergency access on the chart page if needed.",
        )
    request.emergency_grant = grant
    return patient


class ScoreIn(Schema):
    instrument: str
    answers: dict[str, int | str | bool | None] = Field(
        ..., description='Item key -> answer, e.g. {"1": 2, "2": 1, ...}'
    )


class ScoreOut(Schema):
    instrument: str
    version: str
    total: int | None
    severity: str | None
    risk: str | None
    flags: list[str]
    subscores: dict[str, int]


def _score_out(result) -> dict:
    return {
        "instrument": result.instrument,
        "version": instruments.get(result.instrument).version,
        "total": result.total,
        "severity": result.severity,
        "risk": result.risk,
        "flags": list(result.flags),
        "subscores": dict(result.subscores),
    }


@router.post(
    "/score", response={200: ScoreOut, **WRITE_ERRORS}, summary="Score answers (nothing stored)"
)
def score(request, body: ScoreIn):
    clinic = api_require(request, "measures.record")
    return _score_out(services.score_answers(body.instrument, body.answers, clinic))


class MeasureAdministrationIn(Schema):
    patient_id: bounds.Id
    instrument: str
    answers: dict[str, int | str | bool | None]
    taken_at: datetime.datetime | None = None
    plan_id: bounds.Id | None = Field(
        None, description="Treatment course: a treatment plan of this patient (optional)."
    )


class AdministrationOut(Schema):
    id: int
    patient_id: int
    instrument: str
    instrument_version: str
    answers: dict[str, Any]
    total: int | None
    severity: str
    risk: str
    flags: list[str]
    source: str
    entered_by_id: int | None
    taken_at: datetime.datetime
    created_at: datetime.datetime
    plan_id: int | None
    alert_ids: list[int] = []


class AdministrationPage(Schema):
    items: list[AdministrationOut]
    limit: int
    offset: int
    has_more: bool


@router.post(
    "/administrations",
    response={201: AdministrationOut, **WRITE_ERRORS},
    summary="Record a questionnaire for a patient",
)
def create_administration(request, body: MeasureAdministrationIn):
    clinic = api_require(request, "measures.record", writes=True)
    if body.instrument not in instruments.codes():
        raise ValidationError(
            {"instrument": [f"Unknown instrument; known: {', '.join(instruments.codes())}."]}
        )
    patient = _chart_patient(request, clinic, body.patient_id)
    if body.taken_at is not None and body.taken_at.tzinfo is None:
        raise ValidationError({"taken_at": ["Give a time zone (e.g. 2026-01-31T14:30:00Z)."]})
    adm = services.record_administration(
        patient=patient,
        actor=request.user,
        instrument=body.instrument,
        answers=body.answers,
        taken_at=body.taken_at,
        plan=body.plan_id,
    )
    adm.alert_ids = list(adm.alerts.values_list("pk", flat=True))
    return Status(201, adm)


@router.get(
    "/patients/{patient_id}/administrations",
    response={200: AdministrationPage, **ERRORS},
    summary="A patient's scored questionnaires, newest first",
)
def patient_administrations(
    request,
    patient_id: bounds.Id,
    instrument: str | None = None,
    limit: int = 50,
    offset: bounds.Offset = 0,
):
    clinic = api_require(request, "chart.view")
    patient = _chart_patient(request, clinic, patient_id)
    limit, offset = max(1, min(limit, 200)), max(0, offset)
    qs = selectors.administrations(clinic).filter(patient=patient).order_by("-taken_at", "-id")
    if instrument:
        qs = qs.filter(instrument=instrument)
    rows = list(qs[offset : offset + limit + 1])
    audit.record_read(request, patient=patient, detail={"measures": "administrations"})
    return {"items": rows[:limit], "limit": limit, "offset": offset, "has_more": len(rows) > limit}


@router.get(
    "/administrations/{administration_id}",
    response={200: AdministrationOut, **ERRORS},
    summary="One scored questionnaire",
)
def get_administration(request, administration_id: bounds.Id):
    clinic = api_require(request, "chart.view")
    adm = selectors.get_administration(clinic, administration_id)
    _chart_patient(request, clinic, adm.patient_id)
    audit.record_read(request, patient=adm.patient, obj=adm)
    adm.alert_ids = list(adm.alerts.values_list("pk", flat=True))
    return adm


@router.get(
    "/administrations/{administration_id}/fhir",
    response={200: dict, **ERRORS},
    summary="FHIR R4 QuestionnaireResponse of a scored questionnaire",
)
def administration_fhir(request, administration_id: bounds.Id):
    clinic = api_require(request, "chart.view")
    adm = selectors.get_administration(clinic, administration_id)
    _chart_patient(request, clinic, adm.patient_id)
    audit.record_read(request, patient=adm.patient, obj=adm, detail={"format": "fhir"})
    inst = instruments.get(adm.instrument)
    result = services.score_answers(adm.instrument, adm.answers, clinic)
    out = instruments.to_fhir_questionnaire_response(
        inst,
        adm.answers,
        result,
        f"Patient/{adm.patient_id}",
        adm.taken_at.astimezone(datetime.UTC).isoformat(),
    )
    out["id"] = str(adm.pk)
    return out


class SafetyAlertOut(Schema):
    id: int
    patient_id: int
    administration_id: int
    kind: str
    severity: str
    reason: str
    created_at: datetime.datetime
    acknowledged_by_id: int | None
    acknowledged_at: datetime.datetime | None
    escalated_at: datetime.datetime | None


class AcknowledgeIn(Schema):
    note: str = Field("", max_length=2000)


@router.get(
    "/alerts",
    response={200: list[SafetyAlertOut], **ERRORS},
    summary="Unacknowledged safety alerts",
)
def list_alerts(request):
    """Open alerts of patients whose chart you may open; the read is audited."""
    clinic = api_require(request, "chart.view")
    rows = list(selectors.alerts(clinic, scope=ChartScope(request.user, clinic)))
    audit.record_list_read(
        request,
        patient_ids=[a.patient_id for a in rows],
        object_type="measures.safetyalert",
        detail={"filters": {"open": True}},
    )
    return rows


@router.post(
    "/alerts/{alert_id}/acknowledge",
    response={200: SafetyAlertOut, **WRITE_ERRORS},
    summary="Acknowledge a safety alert (409 if already acknowledged)",
)
def acknowledge_alert(request, alert_id: bounds.Id, body: AcknowledgeIn):
    clinic = api_require(request, "alerts.respond", writes=True)
    selectors.get_alert(clinic, alert_id)
    try:
        return services.acknowledge_alert(
            alert_id=alert_id, clinic=clinic, actor=request.user, note=body.note
        )
    except services.AlreadyDone as exc:
        raise HttpError(409, " ".join(exc.messages)) from exc
