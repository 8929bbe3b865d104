"""Measurement-based care: administrations of questionnaires, patient links, schedules,
safety alerts and risk flags.

Scoring is never done here: every total, band and flag comes from
``ketaflow.clinical.instruments.score`` and is stored with the instrument version.
"""

import hashlib
import secrets

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from ketaflow.clinical.instruments import suicidality
from ketaflow.tenancy.models import ClinicOwned

# ketaflow's defaults (not clinical facts; each clinic may change them in Measures settings).
DEFAULT_LINK_EXPIRY_HOURS = 7 * 24
DEFAULT_ESCALATION_MINUTES = 15
DEFAULT_REMINDER_HOURS = 48
DEFAULT_PRE_TREATMENT_HOURS = 24

# Clinical settings: documented values from the clinical reference section 5.
MADRS_REMISSION_CHOICES = [
    (10, "10 or less (ketaflow default; clinical reference section 5)"),
    (12, "12 or less (used by the esketamine trials; clinical reference section 5)"),
]
PCL5_PTSD_CHOICES = [
    (31, "31 or more"),
    (32, "32 or more"),
    (33, "33 or more (ketaflow default)"),
]
PCL5_RELIABLE_CHANGE_RANGE = (5, 10)


class MeasuresSettings(models.Model):
    """Per-clinic settings of this app (tenancy.Clinic belongs to another app)."""

    clinic = models.OneToOneField(
        "tenancy.Clinic", on_delete=models.CASCADE, related_name="measures_settings"
    )
    link_expiry_hours = models.PositiveIntegerField(
        "patient links expire after (hours)",
        default=DEFAULT_LINK_EXPIRY_HOURS,
        validators=[MinValueValidator(1), MaxValueValidator(60 * 24)],
        help_text="ketaflow's default is 168 hours (7 days).",
    )
    escalation_minutes = models.PositiveIntegerField(
        "escalate unacknowledged safety alerts after (minutes)",
        default=DEFAULT_ESCALATION_MINUTES,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 60)],
        help_text="ketaflow's default is 15 minutes.",
    )
    reminder_hours = models.PositiveIntegerField(
        "remind patients of unfinished questionnaires every (hours)",
        default=DEFAULT_REMINDER_HOURS,
        validators=[MinValueValidator(1), MaxValueValidator(14 * 24)],
        help_text="ketaflow's default is 48 hours. Reminders stop when the link is used or expires.",
    )
    pre_treatment_hours = models.PositiveIntegerField(
        "send 'before each treatment' questionnaires this many hours ahead",
        default=DEFAULT_PRE_TREATMENT_HOURS,
        validators=[MinValueValidator(1), MaxValueValidator(7 * 24)],
        help_text="ketaflow's default is 24 hours.",
    )
    madrs_remission_cutoff = models.PositiveSmallIntegerField(
        "MADRS remission cut-off",
        choices=MADRS_REMISSION_CHOICES,
        default=10,
        help_text="Remission = MADRS total at or below this. Clinical reference section 5: "
        "remission 10 or less; esketamine trials used 12 or less.",
    )
    pcl5_ptsd_cutoff = models.PositiveSmallIntegerField(
        "PCL-5 provisional PTSD cut-off",
        choices=PCL5_PTSD_CHOICES,
        default=33,
        help_text="Provisional PTSD = PCL-5 total at or above this. Clinical reference "
        "section 5 gives 31-33; ketaflow's default is 33.",
    )
    pcl5_reliable_change = models.PositiveSmallIntegerField(
        "PCL-5 reliable-change threshold (points)",
        null=True,
        blank=True,
        validators=[
            MinValueValidator(PCL5_RELIABLE_CHANGE_RANGE[0]),
            MaxValueValidator(PCL5_RELIABLE_CHANGE_RANGE[1]),
        ],
        help_text="Clinical reference section 5 gives only a range, 5-10 points. Empty "
        "(ketaflow's default): reliable change on the PCL-5 is shown as not assessed.",
    )

    suicidality_urgency = models.JSONField(
        "urgency of suicidality answers (clinic settings)",
        default=dict,
        blank=True,
        help_text="Overrides of the clinic-default urgencies of ketaflow.clinical.instruments."
        'suicidality.RULES: {rule: {answer: urgency}}, e.g. {"phq9:9": {"1": "urgent"}}. '
        "Empty: the documented defaults. An endorsed answer always alerts (at least the same "
        "day); the C-SSRS screener's own triage cannot be changed.",
    )

    def __str__(self) -> str:
        return f"Measures settings of {self.clinic}"

    def clean(self):
        from django.core.exceptions import ValidationError

        super().clean()
        try:
            self.suicidality_urgency = suicidality.validate_overrides(self.suicidality_urgency)
        except suicidality.OverrideError as exc:
            raise ValidationError({"suicidality_urgency": [str(exc)]}) from exc

    def scoring_settings(self, code: str) -> dict:
        """Settings for ``instruments.score`` of this instrument (only those it accepts)."""
        if code == "pcl5":
            from ketaflow.clinical.instruments.forms import pcl5

            return {pcl5.SETTING_CUTOFF: self.pcl5_ptsd_cutoff}
        return {}

    def outcome_settings(self, code: str) -> dict:
        """Keyword arguments for ``instruments.compare`` / ``evaluate_series``."""
        if code == "madrs":
            return {"remission_cutoff": self.madrs_remission_cutoff}
        if code == "pcl5" and self.pcl5_reliable_change is not None:
            return {"reliable_change_threshold": self.pcl5_reliable_change}
        return {}


class OnCall(models.Model):
    """A clinician on the clinic's on-call list: receives every safety alert and escalation."""

    clinic = models.ForeignKey("tenancy.Clinic", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clinic", "user"], name="uniq_measures_oncall")
        ]

    def __str__(self) -> str:
        return f"{self.user} on call at {self.clinic}"


class PatientLink(ClinicOwned):
    """A single-use, expiring capability for one patient to answer a set of instruments.

    Only the SHA-256 of the token is stored; the token is shown (or emailed) once.
    """

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    instruments = models.JSONField(help_text="Instrument codes, in the order asked.")
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    schedule = models.ForeignKey(
        "measures.MeasureSchedule",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    plan = models.ForeignKey(
        "plans.TreatmentPlan",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The treatment course the answers belong to (optional).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    emailed_to = models.EmailField(blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    reminders_sent = models.PositiveIntegerField(default=0)
    partial = models.JSONField(default=dict, blank=True, help_text="{code: {item: answer}}")
    opened_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["clinic", "patient", "submitted_at"])]

    @staticmethod
    def new_token() -> str:
        return secrets.token_urlsafe(32)

    @staticmethod
    def hash_token(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    def usable_at(self, now) -> bool:
        return self.submitted_at is None and self.revoked_at is None and now < self.expires_at

    def status_at(self, now) -> str:
        if self.submitted_at:
            return "completed"
        if self.revoked_at:
            return "revoked"
        if now >= self.expires_at:
            return "expired"
        return "pending"


class MeasureSchedule(ClinicOwned):
    class Cadence(models.TextChoices):
        WEEKLY = "weekly", "Every week"
        FORTNIGHTLY = "fortnightly", "Every two weeks"
        BEFORE_EACH_TREATMENT = "before_each_treatment", "Before every treatment"

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    instruments = models.JSONField()
    cadence = models.CharField(max_length=24, choices=Cadence.choices)
    plan = models.ForeignKey(
        "plans.TreatmentPlan",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Send for this treatment course (its booked dosing visits, and links "
        "carry the course).",
    )
    next_due = models.DateTimeField(null=True, blank=True)
    last_treatment_sent_for = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["active", "next_due"])]


class Administration(ClinicOwned):
    """One completed questionnaire, stored with every answer and its score. Never changed."""

    class Source(models.TextChoices):
        CLINICIAN = "clinician", "Entered by a clinician for the patient"
        CLINICIAN_RATED = "clinician_rated", "Rated by a clinician"
        SELF_REPORT = "self_report", "Patient self-report (secure link)"
        PRESCREEN = "prescreen", "Patient self-report (consultation request pre-screen)"

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    instrument = models.CharField(max_length=20)
    instrument_version = models.CharField(max_length=20)
    answers = models.JSONField()
    total = models.IntegerField(null=True, blank=True)
    severity = models.CharField(max_length=40, blank=True)
    risk = models.CharField(max_length=20, blank=True)
    flags = models.JSONField(default=list, blank=True)
    subscores = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=20, choices=Source.choices)
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    link = models.ForeignKey(
        PatientLink, null=True, blank=True, on_delete=models.PROTECT, related_name="administrations"
    )
    taken_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    plan = models.ForeignKey(
        "plans.TreatmentPlan",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The treatment course (plan) this questionnaire belongs to.",
    )
    # Generic reference to where the answers were given: a treatment session (supplied by
    # the treatment app) or the consultation request whose pre-screen they come from.
    context_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    context_id = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-taken_at", "-id"]
        indexes = [
            models.Index(fields=["clinic", "patient", "instrument", "taken_at"]),
            models.Index(fields=["clinic", "instrument", "patient", "taken_at"]),
            models.Index(fields=["clinic", "plan", "taken_at"]),
        ]

    @property
    def is_suicidality(self) -> bool:
        return "suicidality" in (self.flags or []) or self.risk in ("moderate", "high")


URGENCY_CHOICES = [(u, suicidality.URGENCY_LABELS[u]) for u in reversed(suicidality.URGENCIES)]


class SafetyAlert(ClinicOwned):
    """One alert per questionnaire with endorsed suicidality answers, at the urgency of its
    worst answer (``ketaflow.clinical.instruments.suicidality.RULES``)."""

    class Kind(models.TextChoices):
        SUICIDALITY = "suicidality", "Suicidality"
        CSSRS_RISK = "cssrs-risk", "C-SSRS risk"  # older alerts (before the single table)

    class Severity(models.TextChoices):
        # The urgency codes of suicidality.URGENCIES, most urgent first.
        IMMEDIATE = suicidality.IMMEDIATE, suicidality.URGENCY_LABELS[suicidality.IMMEDIATE]
        URGENT = suicidality.URGENT, suicidality.URGENCY_LABELS[suicidality.URGENT]
        SAME_DAY = suicidality.SAME_DAY, suicidality.URGENCY_LABELS[suicidality.SAME_DAY]

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    administration = models.ForeignKey(
        Administration, on_delete=models.PROTECT, related_name="alerts"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    severity = models.CharField(max_length=20, choices=Severity.choices)
    reason = models.CharField(max_length=300)
    created_at = models.DateTimeField()
    notified = models.JSONField(default=list, blank=True, help_text="Emails notified")
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledge_note = models.TextField(blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["clinic", "acknowledged_at", "created_at"])]


class RiskFlag(ClinicOwned):
    """Shown on every chart page until a clinician clears it with a documented action.

    It always shows the patient's worst answer since it was raised: a more urgent alert
    upgrades it (``urgency``, ``reason``, ``worst_alert``, ``worst_at``); a less urgent or
    better later answer never downgrades it. Only clearing (audited) ends it."""

    class Action(models.TextChoices):
        CONTACTED = "contacted", "Patient contacted, risk assessed"
        SAFETY_PLAN = "safety_plan", "Safety plan made or reviewed"
        EMERGENCY_REFERRAL = "emergency_referral", "Emergency referral"

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    raised_by_alert = models.ForeignKey(SafetyAlert, on_delete=models.PROTECT, related_name="+")
    raised_at = models.DateTimeField()
    reason = models.CharField(max_length=300, help_text="The worst answer (its alert's reason).")
    urgency = models.CharField(max_length=20, choices=URGENCY_CHOICES, default=suicidality.SAME_DAY)
    worst_alert = models.ForeignKey(
        SafetyAlert, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    worst_at = models.DateTimeField(
        null=True, blank=True, help_text="When the worst answer was given."
    )
    upgraded_at = models.DateTimeField(null=True, blank=True)
    cleared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    cleared_at = models.DateTimeField(null=True, blank=True)
    clear_action = models.CharField(max_length=24, choices=Action.choices, blank=True)
    clear_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-raised_at", "-id"]
        constraints = [
            # At most one open flag per patient: new alerts attach to it.
            models.UniqueConstraint(
                fields=["patient"],
                condition=models.Q(cleared_at__isnull=True),
                name="uniq_measures_open_flag",
            )
        ]
