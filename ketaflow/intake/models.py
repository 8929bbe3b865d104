"""Consultation requests, clinical assessments, eligibility decisions and informed consent."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from ketaflow.clinical import eligibility as rules
from ketaflow.tenancy.models import ClinicOwned

ROUTE_CHOICES = [
    ("iv-ketamine", "IV ketamine"),
    ("im-ketamine", "IM ketamine"),
    ("sc-ketamine", "Subcutaneous ketamine"),
    ("oral-ketamine", "Oral / sublingual ketamine"),
    ("esketamine-nasal", "Esketamine nasal spray"),
]
assert tuple(code for code, _ in ROUTE_CHOICES) == rules.ROUTES
ROUTE_LABELS = dict(ROUTE_CHOICES)

YES_NO_UNSURE = [("yes", "Yes"), ("no", "No"), ("unsure", "Not sure")]


class ConsultationRequest(ClinicOwned):
    """A request from the public page. Nothing here is clinical fact until staff confirm it."""

    class Status(models.TextChoices):
        NEW = "new", "New"
        CONTACTED = "contacted", "Contacted"
        BOOKED = "booked", "Consultation booked"
        CONVERTED = "converted", "Converted to patient"
        DECLINED = "declined", "Declined"

    class Summary(models.TextChoices):
        LIKELY = "likely", "Likely candidate"
        REVIEW = "review", "Needs review"
        NOT_SUITABLE = "not_suitable", "Likely not suitable"

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.NEW)
    decline_reason = models.CharField(max_length=500, blank=True)
    # Contact details.
    given_name = models.CharField("first name", max_length=100)
    family_name = models.CharField("last name", max_length=100)
    date_of_birth = models.DateField()
    email = models.EmailField(max_length=254, blank=True)
    phone = models.CharField(max_length=30, blank=True)
    preferred_location = models.ForeignKey(
        "tenancy.Location", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    contact_time = models.CharField("best time to contact", max_length=20, blank=True)
    seeking = models.JSONField(default=list, blank=True)
    seeking_other = models.CharField(max_length=200, blank=True)
    # Pre-screen (self-reported, untrusted).
    prescreen = models.JSONField(default=dict, blank=True)
    phq9_answers = models.JSONField(null=True, blank=True)
    phq9_total = models.PositiveSmallIntegerField(null=True, blank=True)
    phq9_severity = models.CharField(max_length=30, blank=True)
    phq9_item9 = models.PositiveSmallIntegerField(null=True, blank=True)
    message = models.TextField(blank=True, max_length=1000)
    consent_to_contact = models.BooleanField(default=False)
    summary = models.CharField(max_length=14, choices=Summary.choices)
    summary_reasons = models.JSONField(default=list, blank=True)
    urgent = models.BooleanField(default=False)
    patient = models.ForeignKey(
        "patients.Patient", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["clinic", "status", "created_at"])]

    def __str__(self) -> str:
        return f"Consultation request #{self.pk}"

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.family_name}"


class RequestAttempt(models.Model):
    """One submission of the public page, for the per-address rate limit.

    Holds a salted SHA-256 of the client address (never the address) and the time.
    """

    address_hash = models.CharField(max_length=64, db_index=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"Submission at {self.at:%Y-%m-%d %H:%M}"


class Assessment(ClinicOwned):
    """The consultation's clinical assessment. Draft until the prescriber signs; then read-only."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SIGNED = "signed", "Signed"

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    diagnoses = models.JSONField(default=list, blank=True)  # [{code, description}]
    episode_start = models.DateField("current episode started", null=True, blank=True)
    history_psychosis = models.BooleanField("history of psychosis", default=False)
    history_mania = models.BooleanField("history of mania", default=False)
    suicide_attempts = models.PositiveSmallIntegerField(default=0)
    hospitalisations = models.PositiveSmallIntegerField("psychiatric hospitalisations", default=0)
    history_notes = models.TextField("psychiatric history notes", blank=True, max_length=4000)
    trials = models.JSONField(default=list, blank=True)  # antidepressant trials
    psychotherapy = models.TextField("psychotherapy tried", blank=True, max_length=2000)
    medications = models.JSONField(default=list, blank=True)  # [{name, dose, med_class}]
    conditions = models.JSONField(default=list, blank=True)  # eligibility condition codes
    medical_notes = models.TextField("other medical history", blank=True, max_length=4000)
    substance_use_disorder = models.BooleanField(default=False)
    substance_notes = models.TextField("substance use", blank=True, max_length=2000)
    pregnant = models.BooleanField(default=False)
    breastfeeding = models.BooleanField(default=False)
    allergies = models.TextField(blank=True, max_length=1000)
    systolic = models.PositiveSmallIntegerField("systolic BP (mmHg)", null=True, blank=True)
    diastolic = models.PositiveSmallIntegerField("diastolic BP (mmHg)", null=True, blank=True)
    heart_rate = models.PositiveSmallIntegerField("heart rate (/min)", null=True, blank=True)
    weight_kg = models.DecimalField(
        "weight (kg)", max_digits=5, decimal_places=1, null=True, blank=True
    )
    height_cm = models.DecimalField(
        "height (cm)", max_digits=4, decimal_places=1, null=True, blank=True
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    signed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["clinic", "patient", "created_at"])]

    def __str__(self) -> str:
        return f"Assessment #{self.pk}"

    @property
    def is_signed(self) -> bool:
        return self.status == self.Status.SIGNED

    @property
    def bmi(self):
        """Body-mass index (kg/m2, one decimal), computed from weight and height."""
        if not self.weight_kg or not self.height_cm:
            return None
        metres = float(self.height_cm) / 100
        return round(float(self.weight_kg) / (metres * metres), 1)


class AssessmentAddendum(ClinicOwned):
    assessment = models.ForeignKey(Assessment, on_delete=models.PROTECT, related_name="addenda")
    text = models.TextField(max_length=4000)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]


class EligibilityDecision(ClinicOwned):
    """The prescriber's signed decision. Immutable; a later decision supersedes it."""

    class Decision(models.TextChoices):
        APPROVE = "approve", "Approve"
        DECLINE = "decline", "Decline"
        DEFER = "defer", "Defer"

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    assessment = models.ForeignKey(Assessment, on_delete=models.PROTECT, related_name="decisions")
    decision = models.CharField(max_length=8, choices=Decision.choices)
    routes = models.JSONField(default=list, blank=True)
    reason = models.TextField(blank=True, max_length=2000)
    justification = models.TextField(blank=True, max_length=4000)
    rule_results = models.JSONField(default=dict)  # route -> EligibilityResult.as_dict()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    signed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-signed_at", "-id"]
        indexes = [models.Index(fields=["clinic", "patient", "signed_at"])]

    def route_labels(self) -> list[str]:
        return [ROUTE_LABELS.get(r, r) for r in self.routes]


class ConsentDocument(ClinicOwned):
    """One version of a clinic's consent text for a route. Versions are never edited."""

    route = models.CharField(max_length=20, choices=ROUTE_CHOICES)
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    body = models.TextField(max_length=20000)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["route", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "route", "version"], name="uniq_consent_version"
            )
        ]

    def __str__(self) -> str:
        return f"{self.title} (version {self.version})"


class ConsentSignature(ClinicOwned):
    """A patient's signature on the exact text of one document version (stored immutably)."""

    class Via(models.TextChoices):
        TABLET = "tablet", "Clinic tablet"
        LINK = "link", "Secure link"

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    document = models.ForeignKey(ConsentDocument, on_delete=models.PROTECT, related_name="+")
    route = models.CharField(max_length=20, choices=ROUTE_CHOICES)
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    body = models.TextField()
    body_sha256 = models.CharField(max_length=64)
    typed_name = models.CharField(max_length=200)
    agreed = models.BooleanField()
    signed_at = models.DateTimeField(default=timezone.now)
    client_address = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    via = models.CharField(max_length=8, choices=Via.choices)
    collected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_reason = models.TextField(blank=True, max_length=2000)
    withdrawn_recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-signed_at", "-id"]
        indexes = [models.Index(fields=["clinic", "patient", "route"])]

    @property
    def in_force(self) -> bool:
        return self.withdrawn_at is None


class ConsentLink(ClinicOwned):
    """A single-use, expiring link for signing at home. Only the token's SHA-256 is stored."""

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    document = models.ForeignKey(ConsentDocument, on_delete=models.PROTECT, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    @property
    def is_usable(self) -> bool:
        return self.used_at is None and self.expires_at > timezone.now()


class EligibilitySettingsRow(models.Model):
    """A clinic's eligibility-rule settings (``ketaflow.clinical.eligibility.EligibilitySettings``).

    Defaults are ketaflow's (``rules.DEFAULTS``); the source of each is in
    ``rules.SETTING_SOURCES`` and shown next to it."""

    clinic = models.OneToOneField("tenancy.Clinic", on_delete=models.CASCADE, related_name="+")
    trd_min_weeks = models.DecimalField(
        max_digits=4, decimal_places=1, default=rules.DEFAULTS.trd_min_weeks
    )
    bp_review_systolic = models.PositiveSmallIntegerField(default=rules.DEFAULTS.bp_review_systolic)
    bp_review_diastolic = models.PositiveSmallIntegerField(
        default=rules.DEFAULTS.bp_review_diastolic
    )
    adult_age = models.PositiveSmallIntegerField(default=rules.DEFAULTS.adult_age)
    esketamine_older_adult_age = models.PositiveSmallIntegerField(
        default=rules.DEFAULTS.esketamine_older_adult_age
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    FIELDS = [
        "trd_min_weeks",
        "bp_review_systolic",
        "bp_review_diastolic",
        "adult_age",
        "esketamine_older_adult_age",
    ]

    def __str__(self) -> str:
        return f"Eligibility settings of clinic {self.clinic_id}"

    def as_rules(self) -> rules.EligibilitySettings:
        values = {name: getattr(self, name) for name in self.FIELDS}
        weeks = float(values["trd_min_weeks"])
        values["trd_min_weeks"] = int(weeks) if weeks.is_integer() else weeks
        return rules.EligibilitySettings(**values)
