"""Patient validation: the single source of rules for the web form and the API."""

import datetime
import re

from django import forms

from ketaflow.accounts.roles import PRESCRIBER, THERAPIST
from ketaflow.patients.models import Patient
from ketaflow.tenancy.models import Location
from ketaflow.web import bounds

PHONE = re.compile(r"^\+?[0-9 ()\-.]{7,25}$")
FIELDS = [
    "mrn",
    "legal_given_name",
    "legal_family_name",
    "preferred_name",
    "date_of_birth",
    "sex_assigned_at_birth",
    "gender_identity",
    "pronouns",
    "phone",
    "email",
    "address_line1",
    "address_line2",
    "city",
    "region",
    "postal_code",
    "emergency_contact_name",
    "emergency_contact_relationship",
    "emergency_contact_phone",
    "preferred_location",
    "prescriber",
    "therapist",
    "status",
]


def staff_with_role(clinic, role):
    from ketaflow.accounts.models import User

    ids = [
        m.user_id
        for m in clinic.memberships.filter(is_active=True).only("user_id", "roles")
        if role in m.roles
    ]
    return User.objects.filter(pk__in=ids, is_active=True)


class PatientForm(bounds.BoundedModelForm):
    class Meta:
        model = Patient
        fields = FIELDS
        widgets = {"date_of_birth": forms.DateInput(attrs={"type": "date"})}
        help_texts = {"mrn": "Leave empty to assign the clinic's next number."}

    def __init__(self, *args, clinic, **kwargs):
        super().__init__(*args, **kwargs)
        self.clinic = clinic
        self.fields["mrn"].required = False
        self.fields["status"].required = False
        self.fields["status"].help_text = "New patients start as prospective."
        self.fields["preferred_location"].queryset = Location.objects.filter(clinic=clinic)
        self.fields["prescriber"].queryset = staff_with_role(clinic, PRESCRIBER)
        self.fields["therapist"].queryset = staff_with_role(clinic, THERAPIST)
        self.fields["date_of_birth"].input_formats = ["%Y-%m-%d", "%m/%d/%Y"]
        for name in ("email", "phone"):
            self.fields[name].widget.attrs["autocomplete"] = "off"

    def clean_mrn(self):
        mrn = (self.cleaned_data.get("mrn") or "").strip()
        if not mrn and self.instance.pk:
            raise forms.ValidationError("MRN is required for a registered patient.")
        if mrn and not re.fullmatch(r"[A-Za-z0-9\-]{1,32}", mrn):
            raise forms.ValidationError(
                "MRN may contain only letters, digits and hyphens (up to 32)."
            )
        mrn = mrn.upper()  # MRNs are case-insensitive: stored in capitals
        if mrn:
            clash = Patient.objects.for_clinic(self.clinic).filter(mrn=mrn)
            if self.instance.pk:
                clash = clash.exclude(pk=self.instance.pk)
            if clash.exists():
                raise forms.ValidationError(
                    f"MRN {mrn} already belongs to another patient of this clinic."
                )
        return mrn

    def clean_status(self):
        return self.cleaned_data.get("status") or self.instance.status or Patient.Status.PROSPECTIVE

    def clean_date_of_birth(self):
        dob = self.cleaned_data["date_of_birth"]
        today = self.clinic.today()
        if dob > today:
            raise forms.ValidationError("Date of birth cannot be in the future.")
        if dob < datetime.date(1900, 1, 1):
            raise forms.ValidationError("Date of birth must be on or after 1900-01-01.")
        return dob

    def _clean_phone(self, name):
        value = (self.cleaned_data.get(name) or "").strip()
        if value and (not PHONE.match(value) or sum(ch.isdigit() for ch in value) < 7):
            raise forms.ValidationError(
                "Enter a phone number of at least 7 digits (digits, spaces, +, -, parentheses)."
            )
        return value

    def clean_phone(self):
        return self._clean_phone("phone")

    def clean_emergency_contact_phone(self):
        return self._clean_phone("emergency_contact_phone")

    def clean(self):
        data = super().clean()
        for name in ("legal_given_name", "legal_family_name", "preferred_name"):
            if name in data and isinstance(data[name], str):
                data[name] = " ".join(data[name].split())
        return data
