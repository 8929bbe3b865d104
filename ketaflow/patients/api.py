import datetime

from ninja import Field, Router, Schema, Status

from ketaflow.api import ERRORS, WRITE_ERRORS, api_require
from ketaflow.audit import services as audit
from ketaflow.patients import selectors, services
from ketaflow.patients.forms import FIELDS
from ketaflow.patients.models import Patient
from ketaflow.web import bounds

router = Router(tags=["patients"])


class PatientOut(Schema):
    id: int
    mrn: str
    legal_given_name: str
    legal_family_name: str
    preferred_name: str
    date_of_birth: datetime.date
    sex_assigned_at_birth: str
    gender_identity: str
    pronouns: str
    phone: str
    email: str
    address_line1: str
    address_line2: str
    city: str
    region: str
    postal_code: str
    emergency_contact_name: str
    emergency_contact_relationship: str
    emergency_contact_phone: str
    preferred_location_id: int | None
    prescriber_id: int | None
    therapist_id: int | None
    status: str
    created_at: datetime.datetime
    updated_at: datetime.datetime


class PatientIn(Schema):
    """Fields to set. On create, the legal names, date of birth and sex are required."""

    mrn: str | None = None
    legal_given_name: str | None = None
    legal_family_name: str | None = None
    preferred_name: str | None = None
    date_of_birth: str | None = Field(None, description="YYYY-MM-DD")
    sex_assigned_at_birth: str | None = Field(None, description=", ".join(Patient.Sex.values))
    gender_identity: str | None = Field(None, description=", ".join(Patient.Gender.values))
    pronouns: str | None = None
    phone: str | None = None
    email: str | None = None
    address_line1: str | None = None
    address_line2: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    emergency_contact_name: str | None = None
    emergency_contact_relationship: str | None = None
    emergency_contact_phone: str | None = None
    preferred_location: bounds.Id | None = None
    prescriber: bounds.Id | None = None
    therapist: bounds.Id | None = None
    status: str | None = Field(None, description=", ".join(Patient.Status.values))

    def as_form_data(self) -> dict:
        data = self.model_dump(exclude_unset=True)
        return {k: ("" if v is None else v) for k, v in data.items() if k in FIELDS}


class PatientPage(Schema):
    items: list[PatientOut]
    limit: int
    offset: int
    has_more: bool


class SearchIn(Schema):
    q: str = Field("", max_length=100, description="Name prefix(es), MRN, or date of birth")
    status: str | None = None
    limit: int = Field(25, ge=1, le=100)


@router.get("", response={200: PatientPage, **ERRORS}, summary="List patients")
def list_patients(request, limit: int = 25, offset: bounds.Offset = 0, status: str | None = None):
    clinic = api_require(request, "patients.view")
    limit = max(1, min(limit, 100))
    offset = max(0, offset)
    qs = selectors.patients(clinic).order_by("legal_family_name", "legal_given_name", "id")
    if status:
        qs = qs.filter(status=status)
    rows = list(qs[offset : offset + limit + 1])
    audit.record_list_read(
        request,
        patient_ids=[p.pk for p in rows[:limit]],
        object_type="patients.patient",
        detail={"filters": {"status": status, "limit": limit, "offset": offset}},
    )
    return {"items": rows[:limit], "limit": limit, "offset": offset, "has_more": len(rows) > limit}


@router.post("/search", response={200: list[PatientOut], **ERRORS}, summary="Search patients")
def search_patients(request, body: SearchIn):
    """A POST, so that names and dates of birth never appear in URLs or access logs."""
    clinic = api_require(request, "patients.view")
    rows = list(selectors.search(clinic, body.q, status=body.status, limit=body.limit))
    audit.record_list_read(
        request,
        patient_ids=[p.pk for p in rows],
        object_type="patients.patient",
        detail={"search": selectors.describe_search(body.q, body.status, body.limit)},
    )
    return rows


@router.get("/{patient_id}", response={200: PatientOut, **ERRORS}, summary="One patient")
def get_patient(request, patient_id: bounds.Id):
    clinic = api_require(request, "patients.view")
    patient = selectors.get_patient(clinic, patient_id)
    audit.record_read(request, patient=patient)
    return patient


@router.post("", response={201: PatientOut, **WRITE_ERRORS}, summary="Register a patient")
def create_patient(request, body: PatientIn):
    clinic = api_require(request, "patients.create", writes=True)
    return Status(
        201, services.create_patient(clinic=clinic, actor=request.user, data=body.as_form_data())
    )


@router.patch(
    "/{patient_id}", response={200: PatientOut, **WRITE_ERRORS}, summary="Edit demographics"
)
def update_patient(request, patient_id: bounds.Id, body: PatientIn):
    clinic = api_require(request, "patients.edit_demographics", writes=True)
    patient = selectors.get_patient(clinic, patient_id)
    return services.update_patient(patient=patient, actor=request.user, data=body.as_form_data())
