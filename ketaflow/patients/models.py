"""The patient registry."""

import unicodedata

from django.conf import settings
from django.db import models

from ketaflow.tenancy.models import ClinicOwned


def search_key(text: str) -> str:
    """Lower-case, accent-free form of a name, for index-friendly prefix search."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold().strip()


class Patient(ClinicOwned):
    class Status(models.TextChoices):
        PROSPECTIVE = "prospective", "Prospective"
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        DISCHARGED = "discharged", "Discharged"

    class Sex(models.TextChoices):
        FEMALE = "female", "Female"
        MALE = "male", "Male"
        INTERSEX = "intersex", "Intersex"
        UNKNOWN = "unknown", "Unknown or not recorded"

    class Gender(models.TextChoices):
        WOMAN = "woman", "Woman"
        MAN = "man", "Man"
        NON_BINARY = "non-binary", "Non-binary"
        TRANS_WOMAN = "transgender-woman", "Transgender woman"
        TRANS_MAN = "transgender-man", "Transgender man"
        OTHER = "other", "Another identity"
        DECLINED = "declined", "Prefers not to say"

    mrn = models.CharField("MRN", max_length=32)
    legal_given_name = models.CharField("legal first name", max_length=100)
    legal_family_name = models.CharField("legal last name", max_length=100)
    preferred_name = models.CharField(max_length=100, blank=True)
    date_of_birth = models.DateField()
    sex_assigned_at_birth = models.CharField(max_length=10, choices=Sex.choices)
    gender_identity = models.CharField(max_length=20, choices=Gender.choices, blank=True)
    pronouns = models.CharField(max_length=40, blank=True)
    phone = models.CharField(max_length=30, blank=True)
    email = models.EmailField(blank=True)
    address_line1 = models.CharField("address", max_length=200, blank=True)
    address_line2 = models.CharField("address line 2", max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    region = models.CharField("state / region", max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    emergency_contact_name = models.CharField(max_length=200, blank=True)
    emergency_contact_relationship = models.CharField(max_length=60, blank=True)
    emergency_contact_phone = models.CharField(max_length=30, blank=True)
    preferred_location = models.ForeignKey(
        "tenancy.Location", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    prescriber = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    therapist = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PROSPECTIVE)
    family_key = models.CharField(max_length=100, editable=False)
    given_key = models.CharField(max_length=100, editable=False)
    preferred_key = models.CharField(max_length=100, editable=False, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["family_key", "given_key", "id"]
        constraints = [models.UniqueConstraint(fields=["clinic", "mrn"], name="uniq_patient_mrn")]
        indexes = [
            models.Index(
                fields=["clinic", "family_key", "given_key"], name="patient_family_search"
            ),
            models.Index(fields=["clinic", "given_key", "family_key"], name="patient_given_search"),
            models.Index(
                fields=["clinic", "preferred_key", "family_key"], name="patient_preferred_search"
            ),
            models.Index(
                fields=["clinic", "date_of_birth", "family_key"], name="patient_dob_search"
            ),
            models.Index(fields=["clinic", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.mrn})"

    def save(self, *args, **kwargs):
        self.family_key = search_key(self.legal_family_name)
        self.given_key = search_key(self.legal_given_name)
        self.preferred_key = search_key(self.preferred_name)
        super().save(*args, **kwargs)

    @property
    def display_name(self) -> str:
        given = self.preferred_name or self.legal_given_name
        return f"{given} {self.legal_family_name}"

    @property
    def legal_name(self) -> str:
        return f"{self.legal_given_name} {self.legal_family_name}"

    def age_on(self, day) -> int:
        dob = self.date_of_birth
        return day.year - dob.year - ((day.month, day.day) < (dob.month, dob.day))
