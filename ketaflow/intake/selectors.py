"""Reads of the intake app, always scoped to one clinic. Also the interface for other apps:
``approved_routes``, ``signed_consent``, ``current_medication_classes``, ``current_medications``.
"""

import hashlib
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import Http404
from django.utils import timezone

from ketaflow.accounts.permissions import roles_can
from ketaflow.clinical import eligibility as rules
from ketaflow.intake.forms import OWN_FIELDS
from ketaflow.intake.models import (
    Assessment,
    ConsentDocument,
    ConsentLink,
    ConsentSignature,
    ConsultationRequest,
    EligibilityDecision,
)


def _get(qs, pk):
    try:
        return qs.get(pk=int(pk))
    except (qs.model.DoesNotExist, ValueError, TypeError):
        raise Http404("Not found in this clinic.") from None


# --- Requests ----------------------------------------------------------------------------


def requests(clinic, status: str | None = None):
    qs = ConsultationRequest.objects.for_clinic(clinic).select_related("preferred_location")
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-urgent", "-created_at", "-id")


def get_request(clinic, pk) -> ConsultationRequest:
    return _get(
        ConsultationRequest.objects.for_clinic(clinic).select_related(
            "preferred_location", "patient"
        ),
        pk,
    )


def request_status_counts(clinic) -> dict[str, int]:
    rows = ConsultationRequest.objects.for_clinic(clinic).values("status").annotate(n=Count("id"))
    counts = dict.fromkeys(ConsultationRequest.Status.values, 0)
    counts.update({row["status"]: row["n"] for row in rows})
    return counts


def intake_staff_emails(clinic) -> list[str]:
    """Active members whose roles may work the intake queue."""
    return sorted(
        m.user.email
        for m in clinic.memberships.filter(is_active=True, user__is_active=True).select_related(
            "user"
        )
        if roles_can(m.roles, "intake.manage")
    )


# --- Assessment and rules ----------------------------------------------------------------


def assessments(patient):
    return Assessment.objects.for_clinic(patient.clinic).filter(patient=patient)


def latest_assessment(patient) -> Assessment | None:
    return assessments(patient).order_by("-created_at", "-id").first()


def latest_signed_or_draft(patient) -> Assessment | None:
    """The latest signed assessment, else the latest draft."""
    qs = assessments(patient).order_by("-signed_at", "-created_at", "-id")
    return qs.filter(status=Assessment.Status.SIGNED).first() or qs.first()


def get_assessment(clinic, pk) -> Assessment:
    return _get(Assessment.objects.for_clinic(clinic).select_related("patient"), pk)


def eligibility_settings_row(clinic):
    from ketaflow.intake.models import EligibilitySettingsRow

    return EligibilitySettingsRow.objects.filter(clinic=clinic).first() or EligibilitySettingsRow(
        clinic=clinic
    )


def eligibility_settings(clinic) -> rules.EligibilitySettings:
    """The clinic's rule settings: its saved values, else ketaflow's defaults (each with its
    source in ``rules.SETTING_SOURCES``)."""
    from ketaflow.intake.models import EligibilitySettingsRow

    row = EligibilitySettingsRow.objects.filter(clinic=clinic).first()
    return row.as_rules() if row is not None else rules.DEFAULTS


SETTING_LABELS = {
    "trd_min_weeks": "Minimum weeks for an adequate antidepressant trial (TRD)",
    "bp_review_systolic": "Blood pressure review threshold, systolic (mmHg)",
    "bp_review_diastolic": "Blood pressure review threshold, diastolic (mmHg)",
    "adult_age": "Age of adulthood (years)",
    "esketamine_older_adult_age": "Older-adult age for the esketamine day-1 dose (years)",
}


def eligibility_settings_table(clinic) -> list[dict]:
    """Each setting with its value, ketaflow's default and the source of the default."""
    current = eligibility_settings(clinic)
    return [
        {
            "name": name,
            "label": label,
            "value": getattr(current, name),
            "default": getattr(rules.DEFAULTS, name),
            "changed": getattr(current, name) != getattr(rules.DEFAULTS, name),
            "source": rules.SETTING_SOURCES[name],
        }
        for name, label in SETTING_LABELS.items()
    ]


def case_for(assessment: Assessment, patient, route: str) -> rules.Case:
    """The eligibility case the assessment describes; ValidationError naming the field."""
    conditions = set(assessment.conditions or ())
    conditions |= {code for code, attr in OWN_FIELDS.items() if getattr(assessment, attr)}
    data = {
        "route": route,
        "age": patient.age_on(patient.clinic.today()),
        "antidepressant_trials": [
            {k: t[k] for k in ("drug", "adequate_dose", "weeks", "current_episode", "outcome")}
            for t in assessment.trials or ()
        ],
        "conditions": sorted(conditions),
        "medication_classes": sorted(
            {
                m["med_class"]
                for m in assessment.medications or ()
                if m.get("med_class") in rules.MEDICATION_CLASSES
            }
        ),
    }
    if assessment.systolic is not None and assessment.diastolic is not None:
        data["blood_pressure"] = {
            "systolic": assessment.systolic,
            "diastolic": assessment.diastolic,
        }
    try:
        return rules.parse_case(data)
    except rules.CaseError as exc:
        field = (
            exc.field.split("[")[0].split(".")[-1] if "." in exc.field else exc.field.split("[")[0]
        )
        field = {"blood_pressure": "systolic", "age": "__all__", "route": "__all__"}.get(
            field, field
        )
        raise ValidationError({field: [f"{exc.field}: {exc.message}"]}) from exc


def rule_results(assessment: Assessment, patient) -> dict[str, dict]:
    """route -> EligibilityResult.as_dict() for every route."""
    settings = eligibility_settings(patient.clinic)
    return {
        route: rules.evaluate(case_for(assessment, patient, route), settings).as_dict()
        for route in rules.ROUTES
    }


# --- Decisions ---------------------------------------------------------------------------


def decisions(patient):
    return (
        EligibilityDecision.objects.for_clinic(patient.clinic)
        .filter(patient=patient)
        .select_related("decided_by")
        .order_by("-signed_at", "-id")
    )


def current_decision(patient) -> EligibilityDecision | None:
    return decisions(patient).first()


def approved_routes(patient) -> set[str]:
    """Routes with a signed approve decision in force (the latest decision supersedes)."""
    decision = current_decision(patient)
    if decision is None or decision.decision != EligibilityDecision.Decision.APPROVE:
        return set()
    return set(decision.routes)


# --- Consent -----------------------------------------------------------------------------


def documents(clinic):
    return ConsentDocument.objects.for_clinic(clinic).order_by("route", "-version")


def current_documents(clinic) -> dict[str, ConsentDocument]:
    out: dict[str, ConsentDocument] = {}
    for document in documents(clinic):
        out.setdefault(document.route, document)
    return out


def current_document(clinic, route: str) -> ConsentDocument | None:
    return documents(clinic).filter(route=route).first()


def get_document(clinic, pk) -> ConsentDocument:
    return _get(ConsentDocument.objects.for_clinic(clinic), pk)


def signatures(patient):
    return (
        ConsentSignature.objects.for_clinic(patient.clinic)
        .filter(patient=patient)
        .select_related("collected_by", "withdrawn_recorded_by")
        .order_by("-signed_at", "-id")
    )


def get_signature(clinic, pk) -> ConsentSignature:
    return _get(ConsentSignature.objects.for_clinic(clinic).select_related("patient"), pk)


def signed_consent(patient, route: str) -> ConsentSignature | None:
    """A signed, not withdrawn consent of ``patient`` for ``route`` (the newest), or None."""
    return signatures(patient).filter(route=route, withdrawn_at__isnull=True).first()


def link_for_token(raw: str, *, lock: bool = False) -> ConsentLink | None:
    """The usable (unused, unexpired) link for a raw token, or None."""
    if not raw or not raw.startswith("kc_") or len(raw) > 100:
        return None
    qs = ConsentLink.objects.select_related("patient", "document", "clinic")
    if lock:
        qs = qs.select_for_update(no_key=True, of=("self",))
    link = qs.filter(token_hash=hashlib.sha256(raw.encode()).hexdigest()).first()
    return link if link is not None and link.is_usable else None


def pending_links(patient):
    return (
        ConsentLink.objects.for_clinic(patient.clinic)
        .filter(patient=patient, used_at__isnull=True, expires_at__gt=timezone.now())
        .select_related("document")
    )


# --- Medications (for treatment-day and therapy pages) ----------------------------------


def current_medications(patient) -> list[dict]:
    """[{name, dose, med_class}] from the latest signed (else draft) assessment."""
    assessment = latest_signed_or_draft(patient)
    return list(assessment.medications) if assessment else []


@dataclass(frozen=True)
class MedicationRow:
    name: str
    dose: str
    med_class: str
    class_label: str
    note: str  # the reference's interaction note for the class, or ""


def concurrent_medications(patient) -> list[MedicationRow]:
    """Medications from the assessment with the reference's interaction note for the
    classes it names (benzodiazepines, sedative-hypnotics, opioids, stimulants, MAOIs);
    shown on the treatment session and therapy pages (template intake/_medications.html)."""
    from ketaflow.intake.forms import MEDICATION_CLASSES

    labels = dict(MEDICATION_CLASSES)
    return [
        MedicationRow(
            name=m.get("name", ""),
            dose=m.get("dose", ""),
            med_class=m.get("med_class", ""),
            class_label=labels.get(m.get("med_class", ""), ""),
            note=rules.medication_note(m.get("med_class", "")),
        )
        for m in current_medications(patient)
    ]


def current_medication_classes(patient) -> set[str]:
    return {m["med_class"] for m in current_medications(patient) if m.get("med_class")}
