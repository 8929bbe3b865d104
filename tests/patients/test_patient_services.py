import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from ketaflow.audit.models import AuditEvent
from ketaflow.patients import services
from ketaflow.patients.models import Patient

VALID = {
    "legal_given_name": "Casey",
    "legal_family_name": "Nakamura-Synth",
    "date_of_birth": "1985-04-02",
    "sex_assigned_at_birth": "male",
    "status": "prospective",
}


def test_create_assigns_mrn_and_records_one_audit_event(clinic, staff):
    patient = services.create_patient(clinic=clinic, actor=staff["front_desk"], data=VALID)
    assert patient.mrn == "KF-000001"
    assert patient.clinic == clinic
    events = AuditEvent.objects.filter(patient=patient)
    assert [(e.action, e.actor_id) for e in events] == [("create", staff["front_desk"].pk)]
    second = services.create_patient(
        clinic=clinic, actor=staff["owner"], data={**VALID, "legal_given_name": "Dana"}
    )
    assert second.mrn == "KF-000002"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "date_of_birth",
            (datetime.date.today() + datetime.timedelta(days=2)).isoformat(),
            "cannot be in the future",
        ),
        ("date_of_birth", "1899-12-31", "on or after 1900"),
        ("date_of_birth", "02/30/1990", "valid date"),
        ("email", "no-at-sign.example.test", "valid email"),
        ("phone", "12ab", "at least 7 digits"),
        ("sex_assigned_at_birth", "robot", "not one of the available choices"),
        ("legal_family_name", "", "required"),
        ("mrn", "bad mrn!", "letters, digits and hyphens"),
    ],
)
def test_invalid_fields_are_named_and_nothing_is_saved(clinic, staff, field, value, message):
    with pytest.raises(ValidationError) as exc:
        services.create_patient(clinic=clinic, actor=staff["nurse"], data={**VALID, field: value})
    assert field in exc.value.message_dict
    assert message in " ".join(exc.value.message_dict[field])
    assert not Patient.objects.exists()
    assert not AuditEvent.objects.filter(action="create").exists()


def test_duplicate_mrn_in_same_clinic_refused_but_allowed_in_another(
    clinic, other_clinic, staff, make_user
):
    services.create_patient(clinic=clinic, actor=staff["owner"], data={**VALID, "mrn": "A-1"})
    with pytest.raises(ValidationError) as exc:
        services.create_patient(clinic=clinic, actor=staff["owner"], data={**VALID, "mrn": "a-1"})
    assert "already belongs" in exc.value.message_dict["mrn"][0]
    other_owner = make_user(other_clinic, "owner")
    services.create_patient(clinic=other_clinic, actor=other_owner, data={**VALID, "mrn": "A-1"})
    assert Patient.objects.filter(mrn="A-1").count() == 2


def test_care_team_must_belong_to_the_clinic(clinic, other_clinic, staff, make_user):
    outsider = make_user(other_clinic, "prescriber")
    with pytest.raises(ValidationError) as exc:
        services.create_patient(
            clinic=clinic, actor=staff["owner"], data={**VALID, "prescriber": outsider.pk}
        )
    assert "prescriber" in exc.value.message_dict
    # A nurse is a member, but not a prescriber.
    with pytest.raises(ValidationError):
        services.create_patient(
            clinic=clinic, actor=staff["owner"], data={**VALID, "prescriber": staff["nurse"].pk}
        )
    patient = services.create_patient(
        clinic=clinic, actor=staff["owner"], data={**VALID, "prescriber": staff["prescriber"].pk}
    )
    assert patient.prescriber == staff["prescriber"]


def test_roles_without_permission_cannot_create(clinic, staff):
    with pytest.raises(PermissionDenied):
        services.create_patient(clinic=clinic, actor=staff["therapist"], data=VALID)
    assert not Patient.objects.exists()


def test_update_changes_only_given_fields_and_audits_field_names(clinic, staff, patient):
    services.update_patient(
        patient=patient,
        actor=staff["nurse"],
        data={"phone": "555 123 4567", "pronouns": "they/them"},
    )
    patient.refresh_from_db()
    assert patient.phone == "555 123 4567"
    assert patient.legal_family_name == "Alvarez-Synth"
    event = AuditEvent.objects.get(action="update")
    assert event.detail == {"fields": ["phone", "pronouns"]}
    assert "555" not in str(event.detail)  # field names, never values


def test_update_without_change_writes_nothing(clinic, staff, patient):
    services.update_patient(patient=patient, actor=staff["nurse"], data={"phone": patient.phone})
    assert not AuditEvent.objects.filter(action="update").exists()


def test_invalid_update_keeps_stored_record(clinic, staff, patient):
    before = Patient.objects.values().get(pk=patient.pk)
    with pytest.raises(ValidationError) as exc:
        services.update_patient(
            patient=patient, actor=staff["nurse"], data={"phone": "1", "email": "bad"}
        )
    assert set(exc.value.message_dict) == {"phone", "email"}
    assert Patient.objects.values().get(pk=patient.pk) == before


def test_mrn_cannot_be_cleared(clinic, staff, patient):
    with pytest.raises(ValidationError) as exc:
        services.update_patient(patient=patient, actor=staff["owner"], data={"mrn": ""})
    assert "required" in exc.value.message_dict["mrn"][0]


def test_date_of_birth_is_checked_against_the_clinics_date_not_the_servers(
    clinic, staff, monkeypatch
):
    # 02:00 UTC on 4 December is still 3 December in New York.
    instant = datetime.datetime(2026, 12, 4, 2, 0, tzinfo=datetime.UTC)
    monkeypatch.setattr("django.utils.timezone.now", lambda: instant)
    assert clinic.timezone == "America/New_York"
    assert clinic.today() == datetime.date(2026, 12, 3)
    with pytest.raises(ValidationError) as exc:
        services.create_patient(
            clinic=clinic, actor=staff["owner"], data={**VALID, "date_of_birth": "2026-12-04"}
        )
    assert exc.value.message_dict["date_of_birth"] == ["Date of birth cannot be in the future."]
    born = services.create_patient(
        clinic=clinic, actor=staff["owner"], data={**VALID, "date_of_birth": "2026-12-03"}
    )
    assert born.date_of_birth == datetime.date(2026, 12, 3)
