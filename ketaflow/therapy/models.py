"""KAP and psychotherapy notes, goals, practices between sessions, the patient's other
clinicians with their sharing consent, and progress letters.

Psychotherapy process notes (kind ``psychotherapy``) are kept apart from the medical
record, as HIPAA does (45 CFR 164.501, "psychotherapy notes"): the default manager of
``TherapyNote`` never returns them, so a query that forgets the access rule cannot include
them. Only ``selectors`` reach them, through ``TherapyNote.all_kinds`` and the rule "author,
or a clinician the author shared the note with".
"""

import hashlib
import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from ketaflow.tenancy.models import Clinic, ClinicOwned, ClinicScopedQuerySet
from ketaflow.therapy import note_types as nt

USER = settings.AUTH_USER_MODEL

DEFAULT_PRACTICE_LINK_DAYS = 7


class TherapySettings(models.Model):
    """Per-clinic settings of the therapy app (ketaflow defaults, not clinical facts)."""

    clinic = models.OneToOneField(Clinic, on_delete=models.CASCADE, related_name="+")
    progress_note_format = models.CharField(
        "progress-note structure",
        max_length=4,
        choices=nt.FORMAT_CHOICES,
        default=nt.SOAP,
        help_text="ketaflow's default is SOAP. Both are common documentation structures; "
        "no clinical source prefers one. Notes keep the structure they were written in.",
    )
    practice_link_days = models.PositiveIntegerField(
        "practice links stay valid for (days)",
        default=DEFAULT_PRACTICE_LINK_DAYS,
        validators=[MinValueValidator(1), MaxValueValidator(31)],
        help_text="ketaflow's default is 7 days (one weekly grid). Links can be withdrawn.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Therapy settings of clinic {self.clinic_id}"


class RecordNoteQuerySet(ClinicScopedQuerySet):
    pass


class RecordNoteManager(models.Manager.from_queryset(RecordNoteQuerySet)):
    """Therapy notes that are part of the medical record: never psychotherapy notes."""

    def get_queryset(self):
        return super().get_queryset().exclude(kind=nt.PSYCHOTHERAPY)


class TherapyNote(ClinicOwned):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SIGNED = "signed", "Signed"

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=nt.KIND_CHOICES)
    structure = models.CharField(
        max_length=4, choices=nt.FORMAT_CHOICES, blank=True, help_text="Progress notes only."
    )
    author = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    plan = models.ForeignKey(
        "plans.TreatmentPlan", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    appointment = models.ForeignKey(
        "scheduling.Appointment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    session = models.ForeignKey(
        "treatment.TreatmentSession",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Dosing-session notes: the treatment session they describe.",
    )
    content = models.JSONField(default=dict, blank=True, help_text="{section key: text}")
    record_facts = models.JSONField(
        default=list,
        blank=True,
        help_text="Dosing notes: lines copied from the session record (route, dose, events).",
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    signed_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Psychotherapy notes: the author released it to exports and the API.",
    )
    released_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RecordNoteManager()
    all_kinds = RecordNoteQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        base_manager_name = "all_kinds"
        indexes = [
            models.Index(fields=["clinic", "patient", "created_at"]),
            models.Index(fields=["clinic", "plan"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind_label} {self.pk}"

    @property
    def kind_label(self) -> str:
        return nt.KIND_LABELS.get(self.kind, self.kind)

    @property
    def is_psychotherapy(self) -> bool:
        return self.kind == nt.PSYCHOTHERAPY

    @property
    def is_signed(self) -> bool:
        return self.status == self.Status.SIGNED

    @property
    def sections(self):
        return nt.sections(self.kind, self.structure)

    def section_rows(self):
        return [(s, self.content.get(s.key, "")) for s in self.sections]


class NoteShare(ClinicOwned):
    """The author of a psychotherapy note let one named clinician of the clinic read it."""

    note = models.ForeignKey(TherapyNote, on_delete=models.PROTECT, related_name="shares")
    user = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    shared_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    shared_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["shared_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["note", "user"],
                condition=models.Q(revoked_at__isnull=True),
                name="uniq_therapy_active_share",
            )
        ]


class NoteAddendum(ClinicOwned):
    note = models.ForeignKey(TherapyNote, on_delete=models.PROTECT, related_name="addenda")
    text = models.TextField()
    author = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField()

    class Meta:
        ordering = ["signed_at", "id"]


class Goal(ClinicOwned):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        MET = "met", "Met"
        REVISED = "revised", "Revised"
        DISCONTINUED = "discontinued", "Discontinued"

    class Comparator(models.TextChoices):
        LT = "lt", "below"
        LE = "le", "at or below"
        GE = "ge", "at or above"
        GT = "gt", "above"

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    plan = models.ForeignKey(
        "plans.TreatmentPlan", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    title = models.CharField(max_length=200)
    detail = models.TextField(blank=True)
    target_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.ACTIVE)
    instrument = models.CharField(
        "measure", max_length=20, blank=True, help_text="The questionnaire that shows progress."
    )
    comparator = models.CharField(max_length=2, choices=Comparator.choices, blank=True)
    threshold = models.IntegerField(null=True, blank=True)
    created_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["status", "target_date", "id"]
        indexes = [models.Index(fields=["clinic", "patient", "status"])]

    def __str__(self) -> str:
        return self.title

    def target_text(self) -> str:
        if not self.instrument or self.threshold is None:
            return ""
        from ketaflow.clinical import instruments

        name = instruments.get(self.instrument).short_name
        return f"{name} {self.get_comparator_display()} {self.threshold}"

    def met_by(self, total) -> bool | None:
        if total is None or self.threshold is None or not self.comparator:
            return None
        return {
            "lt": total < self.threshold,
            "le": total <= self.threshold,
            "ge": total >= self.threshold,
            "gt": total > self.threshold,
        }[self.comparator]


class Practice(ClinicOwned):
    class Kind(models.TextChoices):
        EXERCISE = "exercise", "Exercise"
        SLEEP = "sleep", "Sleep routine"
        MINDFULNESS = "mindfulness", "Mindfulness"
        JOURNALING = "journaling", "Journaling"
        SOCIAL = "social", "Social contact"
        OTHER = "other", "Other"

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    title = models.CharField(max_length=120, help_text="As the patient will see it.")
    detail = models.CharField(max_length=300, blank=True)
    days_per_week = models.PositiveSmallIntegerField(
        default=7, validators=[MinValueValidator(1), MaxValueValidator(7)]
    )
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "id"]
        indexes = [models.Index(fields=["clinic", "patient", "active"])]

    def __str__(self) -> str:
        return self.title


class PracticeLink(ClinicOwned):
    """A patient's secure link to tick off practices: only the SHA-256 of the token is kept.

    Unlike a questionnaire link it is used many times until it expires (the patient ticks
    days through the week); it can be withdrawn at any time."""

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    starts_on = models.DateField(help_text="First day the patient can tick.")
    expires_at = models.DateTimeField()
    emailed_to = models.EmailField(blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    @staticmethod
    def new_token() -> str:
        return secrets.token_urlsafe(32)

    @staticmethod
    def hash_token(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    def usable_at(self, now) -> bool:
        return self.revoked_at is None and now < self.expires_at

    def status_at(self, now) -> str:
        if self.revoked_at:
            return "withdrawn"
        return "expired" if now >= self.expires_at else "active"


class PracticeEntry(ClinicOwned):
    class Source(models.TextChoices):
        LINK = "link", "Patient (secure link)"
        CLINICIAN = "clinician", "Entered by a clinician"

    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="entries")
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    day = models.DateField()
    done = models.BooleanField(default=True)
    source = models.CharField(max_length=10, choices=Source.choices)
    link = models.ForeignKey(
        PracticeLink, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["day", "id"]
        constraints = [
            models.UniqueConstraint(fields=["practice", "day"], name="uniq_practice_day")
        ]
        indexes = [models.Index(fields=["clinic", "patient", "day"])]


class OutsideClinician(ClinicOwned):
    """One of the patient's other clinicians, and the patient's consent to share with them."""

    class Role(models.TextChoices):
        PSYCHIATRIST = "psychiatrist", "Referring psychiatrist"
        PRIMARY_CARE = "primary_care", "Primary care"
        THERAPIST = "therapist", "Outside therapist"
        OTHER = "other", "Other clinician"

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=14, choices=Role.choices)
    name = models.CharField(max_length=200)
    organization = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    fax = models.CharField(max_length=40, blank=True)
    address = models.CharField(max_length=300, blank=True)
    consent_given_on = models.DateField(
        "consent to share given on",
        null=True,
        blank=True,
        help_text="Empty: the patient has not consented to share with this clinician.",
    )
    consent_expires_on = models.DateField(
        "consent expires on", null=True, blank=True, help_text="Empty: until withdrawn."
    )
    consent_scope = models.CharField(
        "what the patient agreed to share",
        max_length=300,
        blank=True,
        default="Treatment dates, doses, questionnaire scores, response status and plan",
    )
    consent_withdrawn_on = models.DateField(null=True, blank=True)
    consent_recorded_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["role", "name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_role_display()})"

    def consent_status(self, today) -> str:
        if self.consent_given_on is None:
            return "none"
        if self.consent_withdrawn_on is not None and self.consent_withdrawn_on <= today:
            return "withdrawn"
        if self.consent_expires_on is not None and self.consent_expires_on < today:
            return "expired"
        if self.consent_given_on > today:
            return "none"
        return "valid"


class ProgressLetter(ClinicOwned):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SIGNED = "signed", "Signed"

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    recipient = models.ForeignKey(OutsideClinician, on_delete=models.PROTECT, related_name="+")
    plan = models.ForeignKey(
        "plans.TreatmentPlan", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    author = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    facts = models.JSONField(
        default=dict, help_text="What the letter says from the record, as generated."
    )
    plan_text = models.TextField("plan", blank=True)
    comments = models.TextField(blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    signed_at = models.DateTimeField(null=True, blank=True)
    pdf = models.BinaryField(null=True, blank=True, editable=False)
    pdf_sha256 = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["clinic", "patient", "created_at"])]

    @property
    def is_signed(self) -> bool:
        return self.status == self.Status.SIGNED


class LetterSend(ClinicOwned):
    letter = models.ForeignKey(ProgressLetter, on_delete=models.PROTECT, related_name="sends")
    to_email = models.EmailField()
    sent_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    sent_at = models.DateTimeField()

    class Meta:
        ordering = ["sent_at", "id"]
