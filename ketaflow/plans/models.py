"""Treatment plans, their signed versions, the clinic's protocol copies and dosing settings.

A plan's clinical content lives in ``PlanVersion`` rows. A version is signed by the prescriber
when it is saved and never changes afterwards (the model refuses updates); a change is a new
version. The plan row holds only the workflow state (status, current phase), whose changes are
recorded as ``PlanEvent`` rows with their reasons and outcomes.
"""

from dataclasses import fields as dataclass_fields
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from ketaflow.clinical import dosing
from ketaflow.tenancy.models import Clinic, ClinicOwned

ROUTE_CHOICES = [
    (dosing.IV, "IV ketamine"),
    (dosing.IM, "IM ketamine"),
    (dosing.SC, "Subcutaneous ketamine"),
    (dosing.ORAL, "Oral / sublingual ketamine (KAP)"),
    (dosing.ESKETAMINE, "Esketamine nasal spray"),
]
ROUTE_LABELS = dict(ROUTE_CHOICES)


def _setting(name: str) -> models.DecimalField:
    """A dosing setting stored with the default of ``dosing.DosingSettings`` (its source is
    shown beside it on the settings page, from ``dosing.setting_sources()``)."""
    f = next(f for f in dataclass_fields(dosing.DosingSettings) if f.name == name)
    return models.DecimalField(max_digits=8, decimal_places=3, default=f.default)


class DosingSettingsRow(models.Model):
    """A clinic's dose limits (``ketaflow.clinical.dosing.DosingSettings``); defaults from there."""

    clinic = models.OneToOneField(Clinic, on_delete=models.CASCADE, related_name="+")
    iv_max_mg_per_kg = models.DecimalField(max_digits=6, decimal_places=3, default=Decimal("1.0"))
    im_max_mg_per_kg = models.DecimalField(max_digits=6, decimal_places=3, default=Decimal("0.7"))
    sc_max_mg_per_kg = models.DecimalField(max_digits=6, decimal_places=3, default=Decimal("0.9"))
    oral_max_mg_per_kg = models.DecimalField(max_digits=6, decimal_places=3, default=Decimal("2.5"))
    iv_ceiling_mg_per_kg = _setting("iv_ceiling_mg_per_kg")
    iv_ceiling_mg = _setting("iv_ceiling_mg")
    im_ceiling_mg_per_kg = _setting("im_ceiling_mg_per_kg")
    im_ceiling_mg = _setting("im_ceiling_mg")
    sc_ceiling_mg_per_kg = _setting("sc_ceiling_mg_per_kg")
    sc_ceiling_mg = _setting("sc_ceiling_mg")
    oral_ceiling_mg_per_kg = _setting("oral_ceiling_mg_per_kg")
    oral_ceiling_mg = _setting("oral_ceiling_mg")
    iv_observation_min = _setting("iv_observation_min")
    im_observation_min = _setting("im_observation_min")
    sc_observation_min = _setting("sc_observation_min")
    oral_observation_min = _setting("oral_observation_min")
    esketamine_max_mg = models.DecimalField(max_digits=6, decimal_places=1, default=Decimal("84"))
    rounding_mg = models.DecimalField(max_digits=6, decimal_places=3, default=Decimal("0.1"))
    min_interval_hours = models.DecimalField(max_digits=6, decimal_places=2, default=Decimal("24"))
    weight_basis = models.CharField(
        max_length=10,
        default="actual",
        choices=[("actual", "Actual"), ("ideal", "Ideal"), ("adjusted", "Adjusted")],
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    FIELDS = [
        "weight_basis",
        "rounding_mg",
        "iv_max_mg_per_kg",
        "im_max_mg_per_kg",
        "sc_max_mg_per_kg",
        "oral_max_mg_per_kg",
        "esketamine_max_mg",
        "iv_ceiling_mg_per_kg",
        "iv_ceiling_mg",
        "im_ceiling_mg_per_kg",
        "im_ceiling_mg",
        "sc_ceiling_mg_per_kg",
        "sc_ceiling_mg",
        "oral_ceiling_mg_per_kg",
        "oral_ceiling_mg",
        "iv_observation_min",
        "im_observation_min",
        "sc_observation_min",
        "oral_observation_min",
        "min_interval_hours",
    ]

    def __str__(self) -> str:
        return f"Dosing settings of clinic {self.clinic_id}"

    def as_dosing(self) -> dosing.DosingSettings:
        return dosing.DosingSettings(**{name: getattr(self, name) for name in self.FIELDS})


class ClinicProtocol(models.Model):
    """A clinic's edited copy of a protocol, as JSON validated by ``protocols.from_dict``."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="+")
    code = models.CharField(max_length=80)
    data = models.JSONField()
    based_on = models.CharField(max_length=80, blank=True, help_text="Shipped protocol code.")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clinic", "code"], name="uniq_clinic_protocol")
        ]

    def __str__(self) -> str:
        return self.code


class TreatmentPlan(ClinicOwned):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        DISCONTINUED = "discontinued", "Discontinued"

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.DRAFT)
    status_reason = models.TextField(blank=True)
    phase = models.CharField(max_length=60, help_text="Code of the current protocol phase.")
    current = models.ForeignKey(
        "PlanVersion", null=True, on_delete=models.PROTECT, related_name="+"
    )
    step = models.PositiveIntegerField(
        default=1,
        help_text="The patient's next visit number in the current phase: the signed version's "
        "step, advanced by one each time a dosing visit of this phase is completed.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["clinic", "patient", "status"])]

    def __str__(self) -> str:
        return f"Plan {self.pk}"


class PlanVersion(ClinicOwned):
    """One signed version of a plan: what the prescriber decided, exactly as signed."""

    plan = models.ForeignKey(TreatmentPlan, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    protocol_code = models.CharField(max_length=80)
    protocol_name = models.CharField(max_length=300)
    protocol_source = models.TextField()
    protocol_data = models.JSONField(help_text="The protocol as it stood when signed.")
    route = models.CharField(max_length=20, choices=ROUTE_CHOICES)
    prescriber = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    phase = models.CharField(max_length=60)
    step = models.PositiveIntegerField(default=1, help_text="The patient's current visit number.")
    dose_value = models.DecimalField(max_digits=8, decimal_places=3)
    dose_unit = models.CharField(max_length=6)
    dose_mg = models.DecimalField(max_digits=9, decimal_places=3)
    weight_kg = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    weight_basis = models.CharField(max_length=10, blank=True)
    calculation = models.JSONField(help_text="DoseCalculation.as_dict(), arithmetic included.")
    override_reason = models.TextField(blank=True)
    start_date = models.DateField()
    goals = models.TextField()
    change_reason = models.TextField(blank=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    signed_at = models.DateTimeField()

    class Meta:
        ordering = ["plan", "-number"]
        constraints = [models.UniqueConstraint(fields=["plan", "number"], name="uniq_plan_version")]

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValidationError("A signed plan version never changes: write a new version.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError("A signed plan version cannot be deleted.")

    @property
    def route_label(self) -> str:
        return ROUTE_LABELS.get(self.route, self.route)


class PlanEvent(ClinicOwned):
    """A status change or phase transition, with the reason or outcome that justified it."""

    class Kind(models.TextChoices):
        STATUS = "status", "Status change"
        PHASE = "phase", "Phase transition"
        STEP = "step", "Visit completed (step advanced)"

    plan = models.ForeignKey(TreatmentPlan, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    from_value = models.CharField(max_length=60)
    to_value = models.CharField(max_length=60)
    reason = models.TextField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
