"""Treatment-day API: sessions, pre-assessment, administration, vitals (single and batch, with
LOINC codes and UCUM units), events, alerts with acknowledgement, notes and addenda, REMS forms.

A change to a signed session answers 409 with the reason."""

import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError

from ketaflow.api import ERRORS, WRITE_ERRORS, api_require
from ketaflow.audit import services as audit
from ketaflow.clinical import vitals as rules
from ketaflow.patients.scope import ChartScope
from ketaflow.treatment import rems, selectors, services
from ketaflow.treatment.models import TreatmentSession
from ketaflow.web import bounds

router = Router(tags=["treatment"])


def _signed_guard(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except services.SignedRecordError as exc:
        raise HttpError(409, str(exc)) from exc
    except services.AlreadyDone as exc:
        raise HttpError(409, " ".join(exc.messages)) from exc
    except PermissionDenied as exc:
        raise HttpError(403, str(exc) or "Not allowed.") from exc


def _session(request, clinic, session_id):
    s = selectors.get_session(clinic, session_id)
    from ketaflow.patients import selectors as patient_selectors

    access, _ = patient_selectors.chart_access(request.user, clinic, s.patient)
    if access is None:
        raise HttpError(403, "Your role or locations do not give access to this chart.")
    return s


class Quantity(Schema):
    code: str = Field(..., description="LOINC code")
    display: str
    value: float
    unit: str = Field(..., description="UCUM unit")


class FindingOut(Schema):
    code: str = Field(..., description="Rule, e.g. bp_high, hr_high, spo2_low, sbp_low")
    level: str = Field(..., description="alert, recheck or info")
    message: str
    confirmed: bool | None = Field(
        None, description="Alerts only: false while unconfirmed (recheck due by recheck_by)"
    )
    recheck_by: datetime.datetime | None = None
    resolves: bool = False


class DueOut(Schema):
    due_at: datetime.datetime
    reason: str


class VitalOut(Schema):
    id: int
    at: datetime.datetime
    is_baseline: bool
    observations: list[Quantity]
    alerts: list[str] = []
    prompts: list[str] = []
    findings: list[FindingOut] = []
    next_due: DueOut | None = None


def _findings(findings) -> list[dict]:
    return [f.as_json() for f in findings]


def _vital(v, findings=None, due=None) -> dict:
    obs = []
    for name in rules.MEASURES:
        value = getattr(v, name)
        if value is not None:
            code, unit, display = rules.CODES[name]
            obs.append({"code": code, "display": display, "value": float(value), "unit": unit})
    return {
        "id": v.pk,
        "at": v.at,
        "is_baseline": v.is_baseline,
        "observations": obs,
        "alerts": [a.message for a in getattr(v, "raised", [])],
        "prompts": [f.message for f in getattr(v, "findings", []) if f.kind == "recheck"],
        "findings": _findings(getattr(v, "findings", []) if findings is None else findings),
        "next_due": due.as_json() if due is not None else None,
    }


class VitalIn(Schema):
    """Either plain fields or LOINC-coded observations (code + value; units as in section 6)."""

    at: datetime.datetime | None = None
    systolic: int | None = None
    diastolic: int | None = None
    heart_rate: int | None = None
    resp_rate: int | None = None
    spo2: int | None = None
    temperature: Decimal | None = None
    observations: list[Quantity] | None = None

    def values(self) -> dict:
        out = {k: getattr(self, k) for k in rules.MEASURES}
        by_code = {code: name for name, (code, _u, _d) in rules.CODES.items()}
        by_code["2708-6"] = "spo2"
        for o in self.observations or []:
            name = by_code.get(o.code)
            if name is None:
                raise ValidationError({"observations": [f"Unknown LOINC code {o.code}."]})
            if o.unit != rules.CODES[name][1]:
                raise ValidationError(
                    {"observations": [f"{o.code} must be in UCUM unit {rules.CODES[name][1]}."]}
                )
            out[name] = o.value
        return out


class BatchIn(Schema):
    readings: list[VitalIn]


class SessionAlertOut(Schema):
    id: int
    session_id: int
    patient_id: int
    rule: str
    message: str
    created_at: datetime.datetime
    acknowledged_at: datetime.datetime | None
    acknowledged_by_id: int | None
    action: str
    note: str
    escalated_at: datetime.datetime | None
    status: str = Field(
        ..., description="confirmed, unconfirmed (recheck due by recheck_by) or resolved"
    )
    recheck_by: datetime.datetime | None
    recheck_reading_id: int | None
    recheck_missed_at: datetime.datetime | None


class AckIn(Schema):
    action: str = Field(
        ..., description="rate_reduced, paused, stopped, medication, prescriber, observe"
    )
    note: str = ""


class SessionOut(Schema):
    id: int
    patient_id: int
    appointment_id: int
    route: str
    state: str
    state_reason: str
    location_id: int
    chair_id: int | None
    opened_at: datetime.datetime
    state_changed_at: datetime.datetime
    dose_started_at: datetime.datetime | None
    dose_ended_at: datetime.datetime | None
    discharged_at: datetime.datetime | None
    calculation: dict[str, Any]
    checklist: dict[str, Any]


class DoseGivenOut(Schema):
    drawn_mg: Decimal = Field(..., description="Dose drawn up (the calculation of the day)")
    given_mg: Decimal | None = Field(
        ..., description="Amount actually given, from the dose events; null until dosing ends"
    )
    given_arithmetic: list[str]
    unused_mg: Decimal | None = Field(..., description="drawn_mg - given_mg")
    wasted_mg: Decimal = Field(..., description="Waste recorded for this session")
    waste_due_mg: Decimal = Field(
        ..., description="Unused drug not yet recorded as waste (the note cannot be signed)"
    )


class SessionDetailOut(SessionOut):
    predose_problems: list[str]
    discharge_unmet: list[str]
    next_reading_due: datetime.datetime | None
    vitals: list[VitalOut]
    alerts: list[SessionAlertOut]
    dose: DoseGivenOut | None = None


class SessionPage(Schema):
    items: list[SessionOut]
    limit: int
    offset: int
    has_more: bool


class OpenIn(Schema):
    appointment_id: bounds.Id


class PreAssessmentIn(Schema):
    food_hours: Decimal
    liquid_minutes: Decimal
    ride_home: bool
    medication_changes: str = ""
    new_symptoms: str = ""
    pregnancy: str
    weight_kg: Decimal | None = None


class ReasonIn(Schema):
    reason: str


class DrugAdministrationIn(Schema):
    product: str
    concentration: str
    lot_number: str
    expiry: datetime.date
    at: datetime.datetime | None = None


class DoseEventIn(Schema):
    kind: str = Field(..., description="rate, pause, resume, stop (IV) or device (esketamine)")
    at: datetime.datetime | None = None
    rate_mg_per_min: Decimal | None = None
    reason: str = ""


class DoseEventOut(Schema):
    id: int
    kind: str
    at: datetime.datetime
    rate_mg_per_min: Decimal | None
    device_number: int | None
    reason: str


class EventIn(Schema):
    kind: str = "side_effect"
    effect: str
    severity: str
    intervention: str = ""
    serious: bool = False
    outcome: str = ""
    at: datetime.datetime | None = None


class SessionEventOut(Schema):
    id: int
    kind: str
    effect: str
    severity: str
    intervention: str
    serious: bool
    outcome: str
    at: datetime.datetime


class RecoveryIn(Schema):
    walks_steadily: bool
    responsible_adult: bool
    ready_without_rule_at: datetime.datetime | None = None


class RecoveryOut(Schema):
    state: str
    unmet: list[str]


class DischargeIn(Schema):
    email_instructions: bool = False


class SessionNoteIn(Schema):
    free_text: str = ""


class SessionNoteOut(Schema):
    id: int
    session_id: int
    generated: str
    free_text: str
    signed_by_id: int | None
    signed_at: datetime.datetime | None
    cosigned_by_id: int | None
    cosigned_at: datetime.datetime | None
    addenda: list[dict[str, Any]] = []


class AddendumIn(Schema):
    text: str


class RemsOut(Schema):
    id: int
    session_id: int
    form_version: str
    data: dict[str, Any]
    due_by: datetime.date
    signed_at: datetime.datetime | None
    missing: list[str]


class RemsIn(Schema):
    data: dict[str, Any]


def _detail(s) -> dict:
    v = selectors.session_view(s)
    out = {f: getattr(s, f) for f in SessionOut.model_fields if hasattr(s, f)}
    out.update(
        predose_problems=v.predose,
        discharge_unmet=v.unmet,
        next_reading_due=v.due.at if v.due else None,
        vitals=[_vital(r, *v.findings[r.pk]) for r in v.vitals],
        alerts=v.alerts,
    )
    a = v.administration
    if a is not None:
        wasted = sum((w.amount_mg for w in v.waste), Decimal(0))
        out["dose"] = {
            "drawn_mg": a.dose_mg,
            "given_mg": a.given_mg,
            "given_arithmetic": a.given_arithmetic,
            "unused_mg": a.unused_mg,
            "wasted_mg": wasted,
            "waste_due_mg": v.waste_due["outstanding_mg"] if v.waste_due else Decimal(0),
        }
    return out


# ---------------------------------------------------------------------------- sessions


@router.get("/sessions", response={200: SessionPage, **ERRORS}, summary="Sessions (active first)")
def list_sessions(request, state: str | None = None, limit: int = 50, offset: bounds.Offset = 0):
    """Only sessions of patients whose chart you may open (your locations, your patients,
    emergency grants); the read is audited with the patients listed."""
    clinic = api_require(request, "chart.view")
    limit, offset = max(1, min(limit, 200)), max(0, offset)
    qs = TreatmentSession.objects.for_clinic(clinic).order_by("-opened_at", "-id")
    qs = ChartScope(request.user, clinic).visible(qs)
    if state:
        qs = qs.filter(state=state)
    rows = list(qs[offset : offset + limit + 1])
    audit.record_list_read(
        request,
        patient_ids=[s.patient_id for s in rows[:limit]],
        object_type="treatment.treatmentsession",
        detail={"filters": {"state": state, "limit": limit, "offset": offset}},
    )
    return {"items": rows[:limit], "limit": limit, "offset": offset, "has_more": len(rows) > limit}


@router.post(
    "/sessions", response={201: SessionOut, **WRITE_ERRORS}, summary="Check in from an appointment"
)
def open_session(request, body: OpenIn):
    clinic = api_require(request, "vitals.chart", writes=True)
    from ketaflow.scheduling import selectors as scheduling

    try:
        appt = scheduling.get_appointment(clinic, body.appointment_id)
    except Http404:
        raise ValidationError({"appointment_id": ["No such appointment in your clinic."]}) from None
    return Status(201, _signed_guard(services.open_session, appointment=appt, actor=request.user))


@router.get(
    "/sessions/{session_id}",
    response={200: SessionDetailOut, **ERRORS},
    summary="One session with vitals and alerts",
)
def get_session(request, session_id: bounds.Id):
    clinic = api_require(request, "chart.view")
    s = _session(request, clinic, session_id)
    audit.record_read(request, patient=s.patient, obj=s)
    return _detail(s)


@router.post(
    "/sessions/{session_id}/pre-assessment",
    response={200: SessionOut, **WRITE_ERRORS},
    summary="Save the pre-assessment checklist",
)
def pre_assessment(request, session_id: bounds.Id, body: PreAssessmentIn):
    clinic = api_require(request, "vitals.chart", writes=True)
    s = _session(request, clinic, session_id)
    data = body.dict()
    data["ride_home"] = "yes" if body.ride_home else ""
    return _signed_guard(services.save_pre_assessment, session=s, actor=request.user, data=data)


@router.post(
    "/sessions/{session_id}/proceed",
    response={200: SessionOut, **WRITE_ERRORS},
    summary="Prescriber: proceed despite the pre-dose block",
)
def proceed(request, session_id: bounds.Id, body: ReasonIn):
    clinic = api_require(request, "treatment.prescriber_decision", writes=True)
    s = _session(request, clinic, session_id)
    return _signed_guard(services.decide_proceed, session=s, actor=request.user, reason=body.reason)


@router.post(
    "/sessions/{session_id}/cancel",
    response={200: SessionOut, **WRITE_ERRORS},
    summary="Cancel a session before dosing",
)
def cancel(request, session_id: bounds.Id, body: ReasonIn):
    clinic = api_require(request, "vitals.chart", writes=True)
    s = _session(request, clinic, session_id)
    return _signed_guard(services.cancel_session, session=s, actor=request.user, reason=body.reason)


@router.post(
    "/sessions/{session_id}/stop",
    response={200: SessionOut, **WRITE_ERRORS},
    summary="Stop a session early",
)
def stop(request, session_id: bounds.Id, body: ReasonIn):
    clinic = api_require(request, "vitals.chart", writes=True)
    s = _session(request, clinic, session_id)
    return _signed_guard(services.stop_early, session=s, actor=request.user, reason=body.reason)


# ---------------------------------------------------------------------------- administration


@router.post(
    "/sessions/{session_id}/administration",
    response={201: DoseEventOut, **WRITE_ERRORS},
    summary="Start dosing (drug, lot, expiry)",
)
def start_dosing(request, session_id: bounds.Id, body: DrugAdministrationIn):
    clinic = api_require(request, "vitals.chart", writes=True)
    s = _session(request, clinic, session_id)
    _signed_guard(services.start_dosing, session=s, actor=request.user, data=body.dict())
    return Status(201, s.dose_events.order_by("at", "id").first())


@router.post(
    "/sessions/{session_id}/dose-events",
    response={201: DoseEventOut, **WRITE_ERRORS},
    summary="Rate change, pause, resume, end, or next device",
)
def dose_event(request, session_id: bounds.Id, body: DoseEventIn):
    clinic = api_require(request, "vitals.chart", writes=True)
    s = _session(request, clinic, session_id)
    ev = _signed_guard(
        services.record_dose_event,
        session=s,
        actor=request.user,
        kind=body.kind,
        at=body.at,
        rate_mg_per_min=body.rate_mg_per_min,
        reason=body.reason,
    )
    return Status(201, ev)


# ---------------------------------------------------------------------------- vitals


@router.post(
    "/sessions/{session_id}/vitals",
    response={201: VitalOut, **WRITE_ERRORS},
    summary="Record one vital-signs reading",
)
def record_vitals(request, session_id: bounds.Id, body: VitalIn):
    clinic = api_require(request, "vitals.chart", writes=True)
    s = _session(request, clinic, session_id)
    v = _signed_guard(
        services.record_vitals, session=s, actor=request.user, values=body.values(), at=body.at
    )
    return Status(201, _vital(v, v.findings, _due_after(s, v)))


@router.post(
    "/sessions/{session_id}/vitals/batch",
    response={201: list[VitalOut], **WRITE_ERRORS},
    summary="Record several readings at once",
)
def record_vitals_batch(request, session_id: bounds.Id, body: BatchIn):
    clinic = api_require(request, "vitals.chart", writes=True)
    s = _session(request, clinic, session_id)
    readings = [{**r.values(), "at": r.at} for r in body.readings]
    stored = _signed_guard(
        services.record_vitals_batch, session=s, actor=request.user, readings=readings
    )
    return Status(201, [_vital(v, v.findings, _due_after(s, v)) for v in stored])


@router.get(
    "/sessions/{session_id}/vitals",
    response={200: list[VitalOut], **ERRORS},
    summary="The session's readings",
)
def list_vitals(request, session_id: bounds.Id):
    clinic = api_require(request, "chart.view")
    s = _session(request, clinic, session_id)
    audit.record_read(request, patient=s.patient, obj=s, detail={"vitals": True})
    vit = list(s.vitals.order_by("at", "id"))
    result = selectors.series(s, vit, services.settings_for(clinic).as_rules())
    return [_vital(v, r.findings, r.due) for v, r in zip(vit, result.readings, strict=True)]


def _due_after(s, entry):
    """The next due reading after ``entry`` by the series function (after the write)."""
    vit = list(s.vitals.order_by("at", "id"))
    result = selectors.series(s, vit, services.settings_for(s.clinic).as_rules())
    return next(
        (r.due for v, r in zip(vit, result.readings, strict=True) if v.pk == entry.pk), None
    )


# ---------------------------------------------------------------------------- events


@router.post(
    "/sessions/{session_id}/events",
    response={201: SessionEventOut, **WRITE_ERRORS},
    summary="Record a side effect or adverse event",
)
def record_event(request, session_id: bounds.Id, body: EventIn):
    clinic = api_require(request, "vitals.chart", writes=True)
    s = _session(request, clinic, session_id)
    return Status(
        201, _signed_guard(services.record_event, session=s, actor=request.user, data=body.dict())
    )


# ---------------------------------------------------------------------------- alerts


@router.get(
    "/alerts", response={200: list[SessionAlertOut], **ERRORS}, summary="Open treatment alerts"
)
def list_alerts(request):
    """Open alerts of patients whose chart you may open; the read is audited."""
    clinic = api_require(request, "chart.view")
    rows = list(selectors.open_alerts(clinic, limit=200, scope=ChartScope(request.user, clinic)))
    audit.record_list_read(
        request,
        patient_ids=[a.patient_id for a in rows],
        object_type="treatment.sessionalert",
        detail={"filters": {"open": True}},
    )
    return rows


@router.post(
    "/alerts/{alert_id}/acknowledge",
    response={200: SessionAlertOut, **WRITE_ERRORS},
    summary="Acknowledge an alert with the action taken (409 if already acknowledged)",
)
def acknowledge_alert(request, alert_id: bounds.Id, body: AckIn):
    clinic = api_require(request, "alerts.respond", writes=True)
    selectors.get_alert(clinic, alert_id)
    return _signed_guard(
        services.acknowledge_alert,
        alert_id=alert_id,
        clinic=clinic,
        actor=request.user,
        action=body.action,
        note=body.note,
    )


# ---------------------------------------------------------------------------- recovery


@router.post(
    "/sessions/{session_id}/recovery",
    response={200: RecoveryOut, **WRITE_ERRORS},
    summary="Record recovery checks; returns unmet discharge criteria",
)
def recovery(request, session_id: bounds.Id, body: RecoveryIn):
    clinic = api_require(request, "vitals.chart", writes=True)
    s = _session(request, clinic, session_id)
    unmet = _signed_guard(
        services.assess_recovery,
        session=s,
        actor=request.user,
        walks_steadily=body.walks_steadily,
        responsible_adult=body.responsible_adult,
        ready_without_rule_at=body.ready_without_rule_at,
    )
    s.refresh_from_db()
    return {"state": s.state, "unmet": unmet}


@router.post(
    "/sessions/{session_id}/override",
    response={200: SessionOut, **WRITE_ERRORS},
    summary="Prescriber: override discharge criteria",
)
def override(request, session_id: bounds.Id, body: ReasonIn):
    clinic = api_require(request, "treatment.prescriber_decision", writes=True)
    s = _session(request, clinic, session_id)
    return _signed_guard(
        services.override_discharge, session=s, actor=request.user, reason=body.reason
    )


@router.post(
    "/sessions/{session_id}/discharge",
    response={200: SessionOut, **WRITE_ERRORS},
    summary="Discharge (criteria met or overridden)",
)
def discharge(request, session_id: bounds.Id, body: DischargeIn):
    clinic = api_require(request, "vitals.chart", writes=True)
    s = _session(request, clinic, session_id)
    return _signed_guard(
        services.discharge,
        session=s,
        actor=request.user,
        email_instructions=body.email_instructions,
    )


# ---------------------------------------------------------------------------- notes


def _note(note) -> dict:
    return {
        **{
            f: getattr(note, f)
            for f in (
                "id",
                "session_id",
                "generated",
                "free_text",
                "signed_by_id",
                "signed_at",
                "cosigned_by_id",
                "cosigned_at",
            )
        },
        "addenda": [
            {"id": a.pk, "text": a.text, "signed_by_id": a.signed_by_id, "signed_at": a.signed_at}
            for a in note.addenda.all()
        ],
    }


@router.get(
    "/sessions/{session_id}/note",
    response={200: SessionNoteOut, **ERRORS},
    summary="The session note and its addenda",
)
def get_note(request, session_id: bounds.Id):
    clinic = api_require(request, "chart.view")
    s = _session(request, clinic, session_id)
    note = selectors.one(s, "note")
    if note is None:
        raise HttpError(404, "No note for this session yet.")
    audit.record_read(request, patient=s.patient, obj=note)
    return _note(note)


@router.put(
    "/sessions/{session_id}/note",
    response={200: SessionNoteOut, **WRITE_ERRORS},
    summary="Save the note's free text (409 once signed)",
)
def save_note(request, session_id: bounds.Id, body: SessionNoteIn):
    clinic = api_require(request, "notes.sign", writes=True)
    s = _session(request, clinic, session_id)
    return _note(
        _signed_guard(services.save_note, session=s, actor=request.user, free_text=body.free_text)
    )


@router.post(
    "/sessions/{session_id}/note/sign",
    response={200: SessionNoteOut, **WRITE_ERRORS},
    summary="Sign the note (the session becomes read-only)",
)
def sign_note(request, session_id: bounds.Id, body: SessionNoteIn):
    clinic = api_require(request, "notes.sign", writes=True)
    s = _session(request, clinic, session_id)
    return _note(
        _signed_guard(
            services.sign_note, session=s, actor=request.user, free_text=body.free_text or None
        )
    )


@router.post(
    "/sessions/{session_id}/note/cosign",
    response={200: SessionNoteOut, **WRITE_ERRORS},
    summary="Co-sign the note (prescriber)",
)
def cosign_note(request, session_id: bounds.Id):
    clinic = api_require(request, "notes.cosign", writes=True)
    s = _session(request, clinic, session_id)
    return _note(_signed_guard(services.cosign_note, session=s, actor=request.user))


@router.post(
    "/sessions/{session_id}/note/addenda",
    response={201: SessionNoteOut, **WRITE_ERRORS},
    summary="Add a signed addendum to a signed note",
)
def add_addendum(request, session_id: bounds.Id, body: AddendumIn):
    clinic = api_require(request, "notes.sign", writes=True)
    s = _session(request, clinic, session_id)
    a = _signed_guard(services.add_addendum, session=s, actor=request.user, text=body.text)
    return Status(201, _note(a.note))


# ---------------------------------------------------------------------------- REMS


def _rems(form) -> dict:
    return {
        "id": form.pk,
        "session_id": form.session_id,
        "form_version": form.form_version,
        "data": form.data,
        "due_by": form.due_by,
        "signed_at": form.signed_at,
        "missing": rems.missing(form.data, form.form_version),
    }


@router.get("/rems", response={200: list[RemsOut], **ERRORS}, summary="REMS forms (unsigned first)")
def list_rems(request):
    """REMS forms of patients whose chart you may open; the read is audited."""
    clinic = api_require(request, "rems.sign")
    qs = ChartScope(request.user, clinic).visible(selectors.rems_forms(clinic), "session__patient")
    forms = list(qs[:500])
    audit.record_list_read(
        request,
        patient_ids=[f.session.patient_id for f in forms],
        object_type="treatment.remsform",
    )
    return [_rems(f) for f in forms]


@router.put(
    "/sessions/{session_id}/rems",
    response={200: RemsOut, **WRITE_ERRORS},
    summary="Fill REMS form fields",
)
def save_rems(request, session_id: bounds.Id, body: RemsIn):
    clinic = api_require(request, "rems.sign", writes=True)
    s = _session(request, clinic, session_id)
    return _rems(_signed_guard(services.save_rems, session=s, actor=request.user, data=body.data))


@router.post(
    "/sessions/{session_id}/rems/sign",
    response={200: RemsOut, **WRITE_ERRORS},
    summary="Sign the REMS form (422 while a required field is missing)",
)
def sign_rems(request, session_id: bounds.Id):
    clinic = api_require(request, "rems.sign", writes=True)
    s = _session(request, clinic, session_id)
    return _rems(_signed_guard(services.sign_rems, session=s, actor=request.user))


@router.get(
    "/sessions/{session_id}/prediction",
    response={200: dict[str, Any], **ERRORS},
    summary="Predicted concentration for what was given (population estimate)",
)
def session_prediction(request, session_id: int):
    """The same forecast as the session page (``null`` before a dose, or for IV without
    a recorded weight)."""
    clinic = api_require(request, "chart.view")
    s = _session(request, clinic, session_id)
    audit.record_read(request, patient=s.patient, obj=s)
    try:
        made = selectors.session_forecast(s, selectors.session_view(s))
    except (ValueError, ArithmeticError) as exc:  # an aid only, like the page: never a 500
        return {"session_id": s.pk, "prediction": None, "unavailable": str(exc)}
    return {"session_id": s.pk, "prediction": None if made is None else made[0].to_dict()}
