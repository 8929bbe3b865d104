"""Writes of the intake app: one function, one transaction, one audit event each."""

import datetime
import hashlib
import secrets

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ketaflow.accounts.permissions import require_permission
from ketaflow.audit import services as audit
from ketaflow.clinical import eligibility as rules
from ketaflow.intake import selectors
from ketaflow.intake.consent_text import default_document
from ketaflow.intake.models import (
    ROUTE_LABELS,
    Assessment,
    AssessmentAddendum,
    ConsentDocument,
    ConsentLink,
    ConsentSignature,
    ConsultationRequest,
    EligibilityDecision,
    RequestAttempt,
)
from ketaflow.intake.prescreen import summarise
from ketaflow.patients import services as patient_services

PUBLIC_ACTOR = "public consultation request page"
RATE_LIMIT = getattr(settings, "KETAFLOW_INTAKE_RATE_LIMIT", 5)  # submissions per address
RATE_WINDOW = datetime.timedelta(minutes=getattr(settings, "KETAFLOW_INTAKE_RATE_MINUTES", 60))
JUSTIFICATION_MIN = 20


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _address_hash(address: str) -> str:
    return hashlib.sha256(f"{settings.SECRET_KEY}:intake:{address}".encode()).hexdigest()


# --- Public request page ---------------------------------------------------------------


@transaction.atomic
def allow_public_submission(*, client_address: str) -> bool:
    """Count one submission from ``client_address``; False once the hourly limit is reached.

    Stored in the ``RequestAttempt`` table (a salted hash of the address, and the time), so
    the limit holds across processes and restarts. Not audited: it holds no patient data.
    """
    now = timezone.now()
    key = _address_hash(client_address or "unknown")
    RequestAttempt.objects.filter(at__lt=now - RATE_WINDOW).delete()
    recent = RequestAttempt.objects.filter(address_hash=key, at__gte=now - RATE_WINDOW).count()
    if recent >= RATE_LIMIT:
        return False
    RequestAttempt.objects.create(address_hash=key, at=now)
    return True


@transaction.atomic
def submit_request(*, clinic, data: dict) -> ConsultationRequest:
    """Store a public request (``data``: PublicRequestForm.cleaned_data) and notify staff."""
    from ketaflow.intake.tasks import notify_new_request

    keys = (
        "diagnosed_depression",
        "antidepressants_tried",
        "antidepressant_helped",
        "antidepressant_intolerance",
        "therapy_tried",
        "referred",
        "referrer",
        "pregnant",
        "heart_bp",
        "psychosis_mania",
        "substance_use",
    )
    prescreen = {key: data.get(key) for key in keys}
    phq9 = data.get("phq9")
    item9 = phq9.items.get("9") if phq9 is not None else None
    summary = summarise({**prescreen, "seeking": data["seeking"]}, phq9_item9=item9)
    item = ConsultationRequest.objects.create(
        clinic=clinic,
        given_name=data["given_name"],
        family_name=data["family_name"],
        date_of_birth=data["date_of_birth"],
        email=data.get("email") or "",
        phone=data.get("phone") or "",
        preferred_location=data.get("preferred_location"),
        contact_time=data.get("contact_time") or "",
        seeking=list(data["seeking"]),
        seeking_other=data.get("seeking_other") or "",
        prescreen=prescreen,
        phq9_answers=data.get("phq9_answers") if phq9 is not None else None,
        phq9_total=phq9.total if phq9 is not None else None,
        phq9_severity=(phq9.severity or "") if phq9 is not None else "",
        phq9_item9=item9,
        message=data.get("message") or "",
        consent_to_contact=bool(data.get("consent_to_contact")),
        summary=summary.level,
        summary_reasons=list(summary.reasons),
        urgent=summary.urgent,
    )
    audit.record(
        action="create",
        clinic=clinic,
        actor_label=PUBLIC_ACTOR,
        obj=item,
        detail={"summary": summary.level, "urgent": summary.urgent},
    )
    transaction.on_commit(lambda: notify_new_request.enqueue(item.pk))
    return item


# --- Intake queue ------------------------------------------------------------------------


@transaction.atomic
def set_request_status(*, item: ConsultationRequest, actor, status: str, decline_reason: str = ""):
    require_permission(actor, "intake.manage", item.clinic)
    item = ConsultationRequest.objects.select_for_update(no_key=True, of=("self",)).get(pk=item.pk)
    allowed = {"new", "contacted", "booked", "declined"}
    if status not in allowed:
        raise ValidationError(
            {
                "status": [
                    f"Choose one of {', '.join(sorted(allowed))} (convert with “Create patient”)."
                ]
            }
        )
    if item.status == ConsultationRequest.Status.CONVERTED:
        raise ValidationError(
            {"status": ["This request is already a patient; its status is final."]}
        )
    decline_reason = (decline_reason or "").strip()
    if status == "declined" and not decline_reason:
        raise ValidationError({"decline_reason": ["Give the reason for declining the request."]})
    before = item.status
    item.status = status
    item.decline_reason = decline_reason if status == "declined" else ""
    item.save(update_fields=["status", "decline_reason", "updated_at"])
    audit.record(
        action="update",
        clinic=item.clinic,
        actor=actor,
        obj=item,
        detail={
            "status": [before, status],
            **({"reason": decline_reason} if decline_reason else {}),
        },
    )
    return item


@transaction.atomic
def convert_request(*, item: ConsultationRequest, actor):
    """Turn a request into a prospective patient (no retyping). Audit events: the patient's
    creation (by ``patients.services.create_patient``), the pre-screen questionnaire if one
    was answered, and this status change.

    A PHQ-9 answered on the request's pre-screen becomes a scored administration of the new
    patient (source "prescreen", dated when the request was sent) in this same
    transaction, so an endorsed item 9 raises a safety alert and the patient's risk flag
    at once (``measures.services.record_prescreen``)."""
    require_permission(actor, "intake.manage", item.clinic)
    item = ConsultationRequest.objects.select_for_update(no_key=True, of=("self",)).get(pk=item.pk)
    if item.patient_id is not None:
        raise ValidationError({"status": ["This request has already been converted."]})
    patient = patient_services.create_patient(
        clinic=item.clinic,
        actor=actor,
        data={
            "legal_given_name": item.given_name,
            "legal_family_name": item.family_name,
            "date_of_birth": item.date_of_birth.isoformat(),
            "sex_assigned_at_birth": "unknown",
            "phone": item.phone,
            "email": item.email,
            "preferred_location": item.preferred_location_id or "",
            "status": "prospective",
        },
    )
    prescreen = _record_prescreen(item, patient, actor)
    before = item.status
    item.status = ConsultationRequest.Status.CONVERTED
    item.patient = patient
    item.save(update_fields=["status", "patient", "updated_at"])
    audit.record(
        action="update",
        clinic=item.clinic,
        actor=actor,
        patient=patient,
        obj=item,
        detail={"status": [before, "converted"], **prescreen},
    )
    return patient


def _record_prescreen(item: ConsultationRequest, patient, actor) -> dict:
    """The request's pre-screen PHQ-9 as a scored record of ``patient`` (with its alert and
    risk flag); {} when none was answered. Without the measures app installed the answers
    stay on the request (its queue still shows it as urgent)."""
    if not item.phq9_answers or not apps.is_installed("ketaflow.measures"):
        return {}
    from ketaflow.measures import services as measures

    adm, alerts = measures.record_prescreen(
        patient=patient,
        actor=actor,
        instrument="phq9",
        answers=dict(item.phq9_answers),
        taken_at=item.created_at,
        context=item,
    )
    return {"prescreen_administration": adm.pk, "alerts": [a.pk for a in alerts]}


# --- Assessment --------------------------------------------------------------------------

ASSESSMENT_FIELDS = (
    "episode_start",
    "history_psychosis",
    "history_mania",
    "suicide_attempts",
    "hospitalisations",
    "history_notes",
    "psychotherapy",
    "conditions",
    "medical_notes",
    "substance_use_disorder",
    "substance_notes",
    "pregnant",
    "breastfeeding",
    "allergies",
    "systolic",
    "diastolic",
    "heart_rate",
    "weight_kg",
    "height_cm",
)


def _refuse_signed(assessment: Assessment) -> None:
    if assessment.is_signed:
        raise ValidationError(
            {"__all__": ["This assessment is signed and read-only: add an addendum instead."]}
        )


@transaction.atomic
def save_assessment(
    *, patient, actor, fields: dict, diagnoses=(), trials=(), medications=()
) -> Assessment:
    """Create or update the patient's draft assessment. ``fields``: AssessmentForm.cleaned_data."""
    require_permission(actor, "assessment.edit", patient.clinic)
    assessment = (
        Assessment.objects.for_clinic(patient.clinic)
        .select_for_update(no_key=True, of=("self",))
        .filter(patient=patient)
        .order_by("-created_at", "-id")
        .first()
    )
    created = assessment is None or assessment.is_signed
    if created:
        assessment = Assessment(clinic=patient.clinic, patient=patient, created_by=actor)
    for name in ASSESSMENT_FIELDS:
        if name in fields:
            setattr(assessment, name, fields[name])
    assessment.conditions = sorted(set(assessment.conditions or ()))
    assessment.diagnoses = list(diagnoses)
    assessment.trials = list(trials)
    assessment.medications = list(medications)
    selectors.case_for(assessment, patient, rules.ROUTES[0])  # raises ValidationError if invalid
    assessment.save()
    audit.record(
        action="create" if created else "update",
        clinic=patient.clinic,
        actor=actor,
        patient=patient,
        obj=assessment,
    )
    return assessment


@transaction.atomic
def sign_assessment(*, assessment: Assessment, actor) -> Assessment:
    require_permission(actor, "assessment.sign", assessment.clinic)
    assessment = Assessment.objects.select_for_update(no_key=True, of=("self",)).get(
        pk=assessment.pk
    )
    _refuse_signed(assessment)
    problems = {}
    if not assessment.diagnoses:
        problems["diagnoses"] = [
            "Record at least one diagnosis (with its ICD-10-CM code) before signing."
        ]
    if assessment.systolic is None or assessment.diastolic is None:
        problems["systolic"] = ["Record the baseline blood pressure before signing."]
    if problems:
        raise ValidationError(problems)
    assessment.status = Assessment.Status.SIGNED
    assessment.signed_by = actor
    assessment.signed_at = timezone.now()
    assessment.save(update_fields=["status", "signed_by", "signed_at", "updated_at"])
    audit.record(
        action="sign",
        clinic=assessment.clinic,
        actor=actor,
        patient=assessment.patient,
        obj=assessment,
    )
    return assessment


@transaction.atomic
def add_addendum(*, assessment: Assessment, actor, text: str) -> AssessmentAddendum:
    require_permission(actor, "assessment.edit", assessment.clinic)
    text = (text or "").strip()
    if not assessment.is_signed:
        raise ValidationError(
            {"text": ["Addenda are for signed assessments; edit the draft instead."]}
        )
    if not text:
        raise ValidationError({"text": ["Write the addendum."]})
    addendum = AssessmentAddendum.objects.create(
        clinic=assessment.clinic, assessment=assessment, text=text[:4000], author=actor
    )
    audit.record(
        action="create",
        clinic=assessment.clinic,
        actor=actor,
        patient=assessment.patient,
        obj=addendum,
    )
    return addendum


# --- Eligibility decision --------------------------------------------------------------


@transaction.atomic
def record_decision(
    *, patient, actor, decision: str, routes=(), reason: str = "", justification: str = ""
) -> EligibilityDecision:
    """Sign the prescriber's decision next to the rule result of the latest assessment."""
    require_permission(actor, "eligibility.decide", patient.clinic)
    assessment = selectors.latest_assessment(patient)
    reason, justification = (reason or "").strip(), (justification or "").strip()
    order = {route: index for index, route in enumerate(rules.ROUTES)}
    routes = sorted(set(routes or ()), key=lambda r: (order.get(r, len(order)), r))
    errors = {}
    if decision not in EligibilityDecision.Decision.values:
        errors["decision"] = ["Choose approve, decline or defer."]
    if assessment is None:
        errors["__all__"] = ["Record the clinical assessment before deciding."]
    unknown = [r for r in routes if r not in rules.ROUTES]
    if unknown:
        errors["routes"] = [f"Unknown route(s): {', '.join(unknown)}."]
    if errors:
        raise ValidationError(errors)
    results = selectors.rule_results(assessment, patient)
    if decision == "approve":
        if not assessment.is_signed:
            errors["__all__"] = ["The assessment must be signed before approving treatment."]
        if not routes:
            errors["routes"] = ["Choose the route(s) you approve."]
        flagged = [
            f"{ROUTE_LABELS[r]}: {reason_['message']}"
            for r in routes
            for reason_ in results[r]["reasons"]
            if reason_["severity"] in (rules.ABSOLUTE, rules.REVIEW)
        ]
        if flagged and len(justification) < JUSTIFICATION_MIN:
            errors["justification"] = [
                f"Approving against {len(flagged)} absolute or review reason(s) needs a written "
                f"justification of at least {JUSTIFICATION_MIN} characters "
                "(clinical-reference.md section 4): " + " | ".join(flagged)
            ]
    elif not reason:
        errors["reason"] = [f"Give the reason to {decision}."]
    if errors:
        raise ValidationError(errors)
    item = EligibilityDecision.objects.create(
        clinic=patient.clinic,
        patient=patient,
        assessment=assessment,
        decision=decision,
        routes=routes if decision == "approve" else [],
        reason=reason,
        justification=justification,
        rule_results=results,
        decided_by=actor,
    )
    audit.record(
        action="sign",
        clinic=patient.clinic,
        actor=actor,
        patient=patient,
        obj=item,
        detail={"decision": decision, "routes": item.routes, "justified": bool(justification)},
    )
    return item


# --- Consent -----------------------------------------------------------------------------


@transaction.atomic
def ensure_default_documents(*, clinic) -> list[ConsentDocument]:
    """Give every route without a consent document ketaflow's default text as version 1."""
    existing = set(
        ConsentDocument.objects.for_clinic(clinic).values_list("route", flat=True).distinct()
    )
    created = []
    for route in rules.ROUTES:
        if route not in existing:
            title, body = default_document(route)
            created.append(
                ConsentDocument.objects.create(
                    clinic=clinic, route=route, version=1, title=title, body=body
                )
            )
    if created:
        audit.record(
            action="create",
            clinic=clinic,
            actor_label="ketaflow default consent texts",
            object_type="intake.consentdocument",
            detail={"routes": [d.route for d in created]},
        )
    return created


@transaction.atomic
def publish_document(*, clinic, actor, route: str, title: str, body: str) -> ConsentDocument:
    """A new version of the clinic's consent for ``route`` (earlier versions stay as signed)."""
    require_permission(actor, "consent.manage", clinic)
    if route not in rules.ROUTES:
        raise ValidationError({"route": ["Unknown route."]})
    title, body = (title or "").strip(), (body or "").strip()
    if not title or not body:
        raise ValidationError({"body": ["Give the title and the full text."]})
    current = selectors.current_document(clinic, route)
    document = ConsentDocument.objects.create(
        clinic=clinic,
        route=route,
        version=(current.version + 1) if current else 1,
        title=title,
        body=body,
        created_by=actor,
    )
    audit.record(
        action="create",
        clinic=clinic,
        actor=actor,
        obj=document,
        detail={"version": document.version},
    )
    return document


def _new_signature(
    *, document, patient, typed_name, agreed, via, actor, client_address, user_agent
):
    typed_name = " ".join((typed_name or "").split())
    errors = {}
    if not agreed:
        errors["agreed"] = ["Tick the box to agree; without it the form is not signed."]
    if len(typed_name) < 2:
        errors["typed_name"] = ["Type your full name."]
    elif typed_name.casefold() != patient.legal_name.casefold():
        errors["typed_name"] = ["Type your full legal name as the clinic has it on record."]
    if document.clinic_id != patient.clinic_id:
        errors["__all__"] = ["This document belongs to another clinic."]
    if errors:
        raise ValidationError(errors)
    return ConsentSignature.objects.create(
        clinic=patient.clinic,
        patient=patient,
        document=document,
        route=document.route,
        version=document.version,
        title=document.title,
        body=document.body,
        body_sha256=hashlib.sha256(document.body.encode()).hexdigest(),
        typed_name=typed_name,
        agreed=True,
        client_address=(client_address or "")[:64],
        user_agent=(user_agent or "")[:300],
        via=via,
        collected_by=actor,
    )


@transaction.atomic
def sign_consent(
    *, patient, actor, route: str, typed_name: str, agreed: bool, client_address="", user_agent=""
) -> ConsentSignature:
    """The patient signs on a clinic tablet, with a staff member signed in."""
    require_permission(actor, "consent.collect", patient.clinic)
    document = selectors.current_document(patient.clinic, route)
    if document is None:
        raise ValidationError({"route": ["This clinic has no consent document for this route."]})
    signature = _new_signature(
        document=document,
        patient=patient,
        typed_name=typed_name,
        agreed=agreed,
        via=ConsentSignature.Via.TABLET,
        actor=actor,
        client_address=client_address,
        user_agent=user_agent,
    )
    audit.record(
        action="sign",
        clinic=patient.clinic,
        actor=actor,
        patient=patient,
        obj=signature,
        detail={"route": route, "version": document.version, "via": "tablet"},
    )
    return signature


@transaction.atomic
def create_consent_link(*, patient, actor, route: str, hours: int = 72) -> tuple[ConsentLink, str]:
    """A single-use link for signing at home. Returns (link, raw token); only the hash is kept."""
    require_permission(actor, "consent.collect", patient.clinic)
    document = selectors.current_document(patient.clinic, route)
    if document is None:
        raise ValidationError({"route": ["This clinic has no consent document for this route."]})
    if not 1 <= int(hours) <= 168:
        raise ValidationError({"hours": ["A link is valid for 1 to 168 hours."]})
    raw = "kc_" + secrets.token_urlsafe(32)
    link = ConsentLink.objects.create(
        clinic=patient.clinic,
        patient=patient,
        document=document,
        token_hash=hash_token(raw),
        created_by=actor,
        expires_at=timezone.now() + datetime.timedelta(hours=int(hours)),
    )
    audit.record(
        action="create",
        clinic=patient.clinic,
        actor=actor,
        patient=patient,
        obj=link,
        detail={"route": route, "hours": int(hours)},
    )
    return link, raw


@transaction.atomic
def sign_consent_by_link(
    *, raw_token: str, typed_name: str, agreed: bool, client_address="", user_agent=""
) -> ConsentSignature:
    link = selectors.link_for_token(raw_token, lock=True)
    if link is None:
        raise ValidationError(
            {"__all__": ["This link is not valid, has been used, or has expired."]}
        )
    signature = _new_signature(
        document=link.document,
        patient=link.patient,
        typed_name=typed_name,
        agreed=agreed,
        via=ConsentSignature.Via.LINK,
        actor=None,
        client_address=client_address,
        user_agent=user_agent,
    )
    link.used_at = timezone.now()
    link.save(update_fields=["used_at"])
    audit.record(
        action="sign",
        clinic=link.clinic,
        actor_label="patient (secure consent link)",
        patient=link.patient,
        obj=signature,
        detail={"route": link.document.route, "version": link.document.version, "via": "link"},
    )
    return signature


@transaction.atomic
def withdraw_consent(*, signature: ConsentSignature, actor, reason: str) -> ConsentSignature:
    require_permission(actor, "consent.collect", signature.clinic)
    signature = ConsentSignature.objects.select_for_update(no_key=True, of=("self",)).get(
        pk=signature.pk
    )
    if signature.withdrawn_at is not None:
        raise ValidationError({"reason": ["This consent has already been withdrawn."]})
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["Record what the patient said."]})
    signature.withdrawn_at = timezone.now()
    signature.withdrawn_reason = reason
    signature.withdrawn_recorded_by = actor
    signature.save(update_fields=["withdrawn_at", "withdrawn_reason", "withdrawn_recorded_by"])
    audit.record(
        action="update",
        clinic=signature.clinic,
        actor=actor,
        patient=signature.patient,
        obj=signature,
        detail={"withdrawn": True, "route": signature.route},
    )
    return signature


@transaction.atomic
def save_eligibility_settings(*, clinic, actor, data):
    """The clinic's eligibility-rule settings (owner, ``clinic.settings``); audited with the
    values before and after."""
    from ketaflow.intake.forms import EligibilitySettingsForm

    require_permission(actor, "clinic.settings", clinic)
    row = selectors.eligibility_settings_row(clinic)
    before = {name: str(getattr(row, name)) for name in row.FIELDS}
    form = EligibilitySettingsForm(data, instance=row)
    if not form.is_valid():
        raise ValidationError(form.errors.as_data())
    row = form.save(commit=False)
    try:
        row.as_rules()
    except ValueError as exc:
        raise ValidationError({"__all__": [str(exc)]}) from exc
    row.updated_by = actor
    row.save()
    after = {name: str(getattr(row, name)) for name in row.FIELDS}
    audit.record(
        action="update",
        clinic=clinic,
        actor=actor,
        obj=row,
        detail={
            "fields": sorted(k for k in after if after[k] != before[k]),
            "from": {k: before[k] for k in after if after[k] != before[k]},
            "to": {k: after[k] for k in after if after[k] != before[k]},
        },
    )
    return row
