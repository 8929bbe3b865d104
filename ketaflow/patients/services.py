"""Writes to the patient registry: one function, one transaction, one audit event."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from ketaflow.accounts.permissions import require_permission
from ketaflow.audit import services as audit
from ketaflow.patients.forms import PatientForm
from ketaflow.patients.models import Patient
from ketaflow.tenancy.models import Clinic


def _next_mrn(clinic: Clinic) -> str:
    clinic = Clinic.objects.select_for_update(no_key=True, of=("self",)).get(pk=clinic.pk)
    while True:
        candidate = f"{clinic.mrn_prefix}-{clinic.next_mrn:06d}"
        clinic.next_mrn += 1
        if not Patient.objects.for_clinic(clinic).filter(mrn=candidate).exists():
            break
    Clinic.objects.filter(pk=clinic.pk).update(next_mrn=clinic.next_mrn)
    return candidate


def _validated(form: PatientForm) -> PatientForm:
    if not form.is_valid():
        raise ValidationError(form.errors.as_data())
    return form


@transaction.atomic
def create_patient(*, clinic: Clinic, actor, data: dict) -> Patient:
    """Register a patient from raw form/API data; raises ValidationError naming fields."""
    require_permission(actor, "patients.create", clinic)
    form = _validated(PatientForm(data, clinic=clinic))
    patient = form.save(commit=False)
    patient.clinic = clinic
    if not patient.mrn:
        patient.mrn = _next_mrn(clinic)
    try:
        with transaction.atomic():
            patient.save()
    except IntegrityError as exc:
        raise ValidationError(
            {"mrn": [f"MRN {patient.mrn} already belongs to another patient."]}
        ) from exc
    audit.record(action="create", clinic=clinic, actor=actor, patient=patient, obj=patient)
    return patient


@transaction.atomic
def update_patient(*, patient: Patient, actor, data: dict) -> Patient:
    """Edit demographics; only the fields present in ``data`` change."""
    require_permission(actor, "patients.edit_demographics", patient.clinic)
    patient = Patient.objects.select_for_update(no_key=True, of=("self",)).get(pk=patient.pk)
    merged = {**PatientForm(instance=patient, clinic=patient.clinic).initial, **data}
    form = _validated(PatientForm(merged, instance=patient, clinic=patient.clinic))
    changed = form.changed_data
    if not changed:
        return patient
    try:
        with transaction.atomic():
            patient = form.save()
    except IntegrityError as exc:
        raise ValidationError({"mrn": ["This MRN already belongs to another patient."]}) from exc
    audit.record(
        action="update",
        clinic=patient.clinic,
        actor=actor,
        patient=patient,
        obj=patient,
        detail={"fields": sorted(changed)},
    )
    return patient
