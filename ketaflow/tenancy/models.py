"""Clinics (the tenants), their locations and treatment chairs, and staff memberships."""

import datetime
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from ketaflow.accounts.roles import ROLE_CHOICES, ROLES


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            f"{value!r} is not a known IANA time zone (for example America/New_York)."
        )


def validate_roles(value) -> None:
    if not isinstance(value, list) or not value:
        raise ValidationError("Choose at least one role.")
    unknown = [role for role in value if role not in ROLES]
    if unknown:
        raise ValidationError(f"Unknown role(s): {', '.join(map(str, unknown))}.")


class Clinic(models.Model):
    """A clinic is the tenant: every patient-data row carries one."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    timezone = models.CharField(
        max_length=64, default="America/New_York", validators=[validate_timezone]
    )
    is_demo = models.BooleanField(
        default=False, help_text="Holds only synthetic demonstration data; every page says so."
    )
    next_mrn = models.PositiveIntegerField(
        default=1, help_text="Next number for clinic-assigned MRNs."
    )
    mrn_prefix = models.CharField(max_length=8, default="KF")
    # Security settings (defaults from docs/security.md).
    idle_timeout_minutes = models.PositiveIntegerField(
        default=15, validators=[MinValueValidator(1), MaxValueValidator(240)]
    )
    emergency_access_minutes = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(5), MaxValueValidator(24 * 60)]
    )
    # Crisis resources shown to patients (issue 4 uses them).
    emergency_phone = models.CharField(max_length=40, default="911")
    crisis_line = models.CharField(
        max_length=200, default="988 Suicide & Crisis Lifeline: call or text 988"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def today(self) -> datetime.date:
        """The date now at the clinic (its time zone), not the server's."""
        return timezone.now().astimezone(self.tz).date()


class Location(models.Model):
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="locations")
    name = models.CharField(max_length=120)
    address = models.CharField(max_length=300, blank=True)
    phone = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "name"], name="uniq_location_name")
        ]

    def __str__(self) -> str:
        return self.name


class Chair(models.Model):
    """An infusion chair or treatment room at a location."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="chairs")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="chairs")
    name = models.CharField(max_length=60)
    kind = models.CharField(
        max_length=20,
        choices=[("chair", "Infusion chair"), ("room", "Treatment room")],
        default="chair",
    )

    class Meta:
        ordering = ["location__name", "name"]
        constraints = [models.UniqueConstraint(fields=["location", "name"], name="uniq_chair_name")]

    def __str__(self) -> str:
        return f"{self.location.name} · {self.name}"


class Membership(models.Model):
    """A user's place in a clinic: their roles and the locations they work at."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="memberships")
    roles = models.JSONField(default=list, validators=[validate_roles])
    locations = models.ManyToManyField(Location, blank=True, related_name="memberships")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "clinic"], name="uniq_membership")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.clinic}"

    @property
    def role_labels(self) -> str:
        return ", ".join(dict(ROLE_CHOICES)[role] for role in self.roles if role in ROLES)


class ClinicScopedQuerySet(models.QuerySet):
    """Every read of patient data goes through ``for_clinic`` (see ARCHITECTURE.md)."""

    def for_clinic(self, clinic: Clinic):
        if clinic is None:
            return self.none()
        return self.filter(clinic=clinic)


class ClinicOwned(models.Model):
    """Abstract base for every table that holds patient data."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")

    objects = ClinicScopedQuerySet.as_manager()

    class Meta:
        abstract = True
