"""Treatment day: sessions, vitals, alerts, administration, events, notes and REMS forms.

A session is opened from the day's appointment and moves through the states of
``TreatmentSession.State`` (enforced in services). Once the session note is signed, the
session and everything charted in it are read-only; corrections are signed addenda.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models

from ketaflow.clinical import dosing
from ketaflow.clinical import vitals as rules
from ketaflow.tenancy.models import Clinic, ClinicOwned

USER = settings.AUTH_USER_MODEL


class TreatmentSettings(models.Model):
    """A clinic's treatment-day thresholds; defaults and sources in ``clinical.vitals``."""

    clinic = models.OneToOneField(Clinic, on_delete=models.CASCADE, related_name="+")
    systolic_max = models.PositiveIntegerField(default=rules.DEFAULTS.systolic_max)
    diastolic_max = models.PositiveIntegerField(default=rules.DEFAULTS.diastolic_max)
    bp_confirm_minutes = models.PositiveIntegerField(default=rules.DEFAULTS.bp_confirm_minutes)
    heart_rate_max = models.PositiveIntegerField(default=rules.DEFAULTS.heart_rate_max)
    heart_rate_sustained_readings = models.PositiveIntegerField(
        default=rules.DEFAULTS.heart_rate_sustained_readings
    )
    spo2_min = models.PositiveIntegerField(default=rules.DEFAULTS.spo2_min)
    resp_rate_min = models.PositiveIntegerField(default=rules.DEFAULTS.resp_rate_min)
    systolic_min = models.PositiveIntegerField(default=rules.DEFAULTS.systolic_min)
    heart_rate_min = models.PositiveIntegerField(default=rules.DEFAULTS.heart_rate_min)
    resp_rate_max = models.PositiveIntegerField(default=rules.DEFAULTS.resp_rate_max)
    systolic_rise = models.PositiveIntegerField(default=rules.DEFAULTS.systolic_rise)
    diastolic_rise = models.PositiveIntegerField(default=rules.DEFAULTS.diastolic_rise)
    predose_systolic_max = models.PositiveIntegerField(default=rules.DEFAULTS.predose_systolic_max)
    predose_diastolic_max = models.PositiveIntegerField(
        default=rules.DEFAULTS.predose_diastolic_max
    )
    dosing_interval_minutes = models.PositiveIntegerField(
        default=rules.DEFAULTS.dosing_interval_minutes
    )
    esketamine_bp_minutes = models.PositiveIntegerField(
        default=rules.DEFAULTS.esketamine_bp_minutes
    )
    after_interval_minutes = models.PositiveIntegerField(
        default=rules.DEFAULTS.after_interval_minutes
    )
    discharge_systolic_margin = models.PositiveIntegerField(
        default=rules.DEFAULTS.discharge_systolic_margin
    )
    discharge_diastolic_margin = models.PositiveIntegerField(
        default=rules.DEFAULTS.discharge_diastolic_margin
    )
    discharge_heart_rate_margin = models.PositiveIntegerField(
        default=rules.DEFAULTS.discharge_heart_rate_margin
    )
    esketamine_monitoring_minutes = models.PositiveIntegerField(
        default=rules.DEFAULTS.esketamine_monitoring_minutes
    )
    escalation_minutes = models.PositiveIntegerField(default=rules.DEFAULTS.escalation_minutes)
    rems_deadline_days = models.PositiveIntegerField(default=rules.DEFAULTS.rems_deadline_days)
    bprs_wanted = models.BooleanField(
        default=False, help_text="Record BPRS positive items during and after dosing."
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    FIELDS = [f for f in rules.SOURCES]

    def __str__(self) -> str:
        return f"Treatment settings of clinic {self.clinic_id}"

    def as_rules(self) -> rules.VitalsSettings:
        return rules.VitalsSettings(**{name: getattr(self, name) for name in self.FIELDS})


class TreatmentSession(ClinicOwned):
    class State(models.TextChoices):
        CHECKED_IN = "checked_in", "Checked in"
        PRE_ASSESSMENT = "pre_assessment", "Pre-assessment"
        DOSING = "dosing", "Dosing"
        MONITORING = "monitoring", "Monitoring"
        RECOVERY = "recovery", "Recovery"
        READY = "ready", "Ready for discharge"
        DISCHARGED = "discharged", "Discharged"
        SIGNED = "signed", "Signed"
        CANCELLED = "cancelled", "Cancelled"
        STOPPED = "stopped", "Stopped early"

    ACTIVE = ("checked_in", "pre_assessment", "dosing", "monitoring", "recovery", "ready")
    DOSED = ("monitoring", "recovery", "ready", "discharged", "signed", "stopped")

    appointment = models.OneToOneField(
        "scheduling.Appointment", on_delete=models.PROTECT, related_name="+"
    )
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    plan_version = models.ForeignKey(
        "plans.PlanVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    route = models.CharField(max_length=20)
    location = models.ForeignKey("tenancy.Location", on_delete=models.PROTECT, related_name="+")
    chair = models.ForeignKey(
        "tenancy.Chair", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.CHECKED_IN)
    state_reason = models.TextField(blank=True)
    opened_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    opened_at = models.DateTimeField()
    state_changed_at = models.DateTimeField()
    # Pre-assessment.
    checklist = models.JSONField(default=dict, blank=True)
    weight_kg = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    calculation = models.JSONField(default=dict, blank=True)
    proceed_reason = models.TextField(blank=True)
    proceed_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    proceed_at = models.DateTimeField(null=True, blank=True)
    # Dosing.
    dose_started_at = models.DateTimeField(null=True, blank=True)
    dose_ended_at = models.DateTimeField(null=True, blank=True)
    # Recovery and discharge.
    walks_steadily = models.BooleanField(default=False)
    responsible_adult = models.BooleanField(default=False)
    ready_without_rule_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the patient would have been ready to leave "
        "without the 2-hour rule (REMS form).",
    )
    override_reason = models.TextField(blank=True)
    override_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    discharged_at = models.DateTimeField(null=True, blank=True)
    instructions_sent_at = models.DateTimeField(null=True, blank=True)
    last_vitals_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["opened_at", "id"]
        indexes = [
            models.Index(fields=["clinic", "state"]),
            models.Index(fields=["clinic", "location", "state"]),
            models.Index(fields=["clinic", "patient", "opened_at"]),
        ]

    def __str__(self) -> str:
        return f"Session {self.pk} ({self.state})"

    @property
    def is_signed(self) -> bool:
        return self.state == self.State.SIGNED

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE


class StateChange(ClinicOwned):
    session = models.ForeignKey(TreatmentSession, on_delete=models.PROTECT, related_name="changes")
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16)
    reason = models.TextField(blank=True)
    actor = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]


class VitalSign(ClinicOwned):
    session = models.ForeignKey(TreatmentSession, on_delete=models.PROTECT, related_name="vitals")
    at = models.DateTimeField()
    systolic = models.PositiveSmallIntegerField(null=True, blank=True)
    diastolic = models.PositiveSmallIntegerField(null=True, blank=True)
    heart_rate = models.PositiveSmallIntegerField(null=True, blank=True)
    resp_rate = models.PositiveSmallIntegerField(null=True, blank=True)
    spo2 = models.PositiveSmallIntegerField(null=True, blank=True)
    temperature = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True)
    is_baseline = models.BooleanField(default=False)
    recorded_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["session", "at"])]

    def as_reading(self) -> rules.Reading:
        return rules.Reading(
            at=self.at,
            systolic=self.systolic,
            diastolic=self.diastolic,
            heart_rate=self.heart_rate,
            resp_rate=self.resp_rate,
            spo2=self.spo2,
            temperature=self.temperature,
        )

    @property
    def bp(self) -> str:
        return f"{self.systolic}/{self.diastolic}" if self.systolic is not None else "–"

    @property
    def summary(self) -> str:
        """Only what was measured, e.g. "BP 124/78 · HR 72 · SpO2 98 %"."""
        parts = [
            (self.systolic is not None, f"BP {self.bp}"),
            (self.heart_rate is not None, f"HR {self.heart_rate}"),
            (self.spo2 is not None, f"SpO2 {self.spo2} %"),
            (self.resp_rate is not None, f"RR {self.resp_rate}"),
            (self.temperature is not None, f"{self.temperature} °C"),
        ]
        return " · ".join(text for measured, text in parts if measured)


class SessionAlert(ClinicOwned):
    class Status(models.TextChoices):
        CONFIRMED = "confirmed", "Confirmed"
        UNCONFIRMED = "unconfirmed", "Unconfirmed: recheck due"
        RESOLVED = "resolved", "Resolved by a normal recheck"

    class Action(models.TextChoices):
        RATE_REDUCED = "rate_reduced", "Rate reduced"
        PAUSED = "paused", "Infusion paused"
        STOPPED = "stopped", "Infusion stopped"
        MEDICATION = "medication", "Medication given"
        PRESCRIBER = "prescriber", "Prescriber notified"
        OBSERVE = "observe", "Observation continued"

    session = models.ForeignKey(TreatmentSession, on_delete=models.PROTECT, related_name="alerts")
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    reading = models.ForeignKey(VitalSign, on_delete=models.PROTECT, related_name="alerts")
    rule = models.CharField(max_length=20)
    message = models.TextField()
    created_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=16, choices=Action.choices, blank=True)
    note = models.TextField(blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    escalated_to = models.JSONField(default=list, blank=True)
    # A reading beyond a severe limit raises the alert at once, unconfirmed; the recheck
    # (due by ``recheck_by``) confirms it or, within limits, resolves it.
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.CONFIRMED)
    recheck_by = models.DateTimeField(null=True, blank=True)
    recheck_reading = models.ForeignKey(
        VitalSign, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    recheck_missed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["clinic", "acknowledged_at"])]

    @property
    def is_open(self) -> bool:
        return self.acknowledged_at is None

    @property
    def is_unconfirmed(self) -> bool:
        return self.status == self.Status.UNCONFIRMED

    @property
    def label(self) -> str:
        """What the chair board, the session page and Today print before the message."""
        if self.status == self.Status.UNCONFIRMED:
            return "ALERT (unconfirmed)"
        if self.status == self.Status.RESOLVED:
            return "RESOLVED"
        return "ALERT"


class AdministrationRecord(ClinicOwned):
    """What was prepared and what was given: one row per session.

    ``dose_mg`` is the dose drawn up (the calculation of the day). ``given_mg`` is what the
    patient actually received, computed by ``dosing.administered_mg`` from the dose events when
    the dose ends (an infusion's start, rate changes, pauses and stop; the devices given); null
    while dosing. ``dose_mg - given_mg`` is unused drug that must be recorded as waste before
    the note is signed.
    """

    session = models.OneToOneField(
        TreatmentSession, on_delete=models.PROTECT, related_name="administration"
    )
    drug = models.CharField(max_length=60)
    product = models.CharField(max_length=120)
    concentration = models.CharField(max_length=60, help_text="e.g. 10 mg/mL, or 28 mg/device")
    lot_number = models.CharField(max_length=40)
    expiry = models.DateField()
    route = models.CharField(max_length=20)
    dose_mg = models.DecimalField(max_digits=9, decimal_places=3)
    rate_ml_per_h = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    administered_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    given_mg = models.DecimalField(
        max_digits=9,
        decimal_places=3,
        null=True,
        blank=True,
        help_text="Amount actually given, computed from the dose events when the dose ended.",
    )
    given_arithmetic = models.JSONField(default=list, blank=True)

    @property
    def given_text(self) -> str:
        """ "4.08 mg of 40.8 mg drawn (36.72 mg not given)", "40.8 mg", or not known yet."""
        f = dosing.fmt
        if self.given_mg is None:
            return f"not known until dosing ends ({f(self.dose_mg)} mg drawn)"
        if self.unused_mg:
            return (
                f"{f(self.given_mg)} mg of {f(self.dose_mg)} mg drawn "
                f"({f(self.unused_mg)} mg not given)"
            )
        return f"{f(self.given_mg)} mg"

    @property
    def recorded_mg(self) -> Decimal:
        """What the record reports as the dose: the amount given once dosing has ended (the
        amount drawn only while it is still running)."""
        return self.dose_mg if self.given_mg is None else self.given_mg

    @property
    def unused_mg(self) -> Decimal | None:
        return None if self.given_mg is None else self.dose_mg - self.given_mg


class DoseEvent(ClinicOwned):
    class Kind(models.TextChoices):
        START = "start", "Infusion started"
        RATE = "rate", "Rate changed"
        PAUSE = "pause", "Paused"
        RESUME = "resume", "Resumed"
        STOP = "stop", "Infusion ended"
        DEVICE = "device", "Nasal device"
        GIVEN = "given", "Dose given"

    session = models.ForeignKey(
        TreatmentSession, on_delete=models.PROTECT, related_name="dose_events"
    )
    kind = models.CharField(max_length=8, choices=Kind.choices)
    at = models.DateTimeField()
    rate_mg_per_min = models.DecimalField(max_digits=8, decimal_places=3, null=True, blank=True)
    device_number = models.PositiveSmallIntegerField(null=True, blank=True)
    reason = models.TextField(blank=True)
    actor = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["at", "id"]


class Waste(ClinicOwned):
    session = models.ForeignKey(TreatmentSession, on_delete=models.PROTECT, related_name="waste")
    amount_mg = models.DecimalField(max_digits=8, decimal_places=3)
    reason = models.TextField()
    wasted_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    witness = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()


class SessionEvent(ClinicOwned):
    """A side effect (checklist, reference section 3) or an adverse event."""

    class Kind(models.TextChoices):
        SIDE_EFFECT = "side_effect", "Side effect"
        ADVERSE = "adverse", "Adverse event"

    session = models.ForeignKey(TreatmentSession, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    effect = models.CharField(max_length=60)
    severity = models.CharField(max_length=10)
    intervention = models.TextField(blank=True)
    serious = models.BooleanField(default=False)
    outcome = models.CharField(max_length=60, blank=True)
    at = models.DateTimeField()
    recorded_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["at", "id"]


class SessionMeasure(ClinicOwned):
    """A questionnaire recorded through the measures app during this session."""

    session = models.ForeignKey(TreatmentSession, on_delete=models.PROTECT, related_name="measures")
    administration = models.OneToOneField(
        "measures.Administration", on_delete=models.PROTECT, related_name="+"
    )
    instrument = models.CharField(max_length=30)
    timing = models.CharField(max_length=10)  # "pre" or "post"
    total = models.IntegerField(null=True, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]


class SessionNote(ClinicOwned):
    session = models.OneToOneField(TreatmentSession, on_delete=models.PROTECT, related_name="note")
    generated = models.TextField()
    free_text = models.TextField(blank=True)
    signed_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    signed_at = models.DateTimeField(null=True, blank=True)
    cosigned_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    cosigned_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)


class Addendum(ClinicOwned):
    note = models.ForeignKey(SessionNote, on_delete=models.PROTECT, related_name="addenda")
    text = models.TextField()
    signed_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField()

    class Meta:
        ordering = ["signed_at", "id"]


class RemsForm(ClinicOwned):
    session = models.OneToOneField(TreatmentSession, on_delete=models.PROTECT, related_name="rems")
    form_version = models.CharField(max_length=20)
    data = models.JSONField(default=dict)
    due_by = models.DateField()
    signed_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    signed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["due_by", "id"]
