"""Appointments, appointment types, clinic hours, closures, staff hours and calendar feeds.

Times are stored in UTC and shown in the clinic's time zone (``clinic.tz``).
"""

import datetime

from django.conf import settings
from django.db import models

from ketaflow.tenancy.models import Clinic, ClinicOwned

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


class ScheduleSettings(models.Model):
    clinic = models.OneToOneField(Clinic, on_delete=models.CASCADE, related_name="+")
    open_time = models.TimeField(default=datetime.time(8, 0))
    close_time = models.TimeField(default=datetime.time(18, 0))
    open_days = models.CharField(
        max_length=20, default="0,1,2,3,4", help_text="Weekdays open, 0 = Monday."
    )
    slot_minutes = models.PositiveIntegerField(default=15)
    reminder_lead_hours = models.PositiveIntegerField(default=24)
    companion_window_days = models.PositiveIntegerField(
        default=3,
        help_text="Days after a dosing session (or before the first one) in which a companion "
        "visit is proposed when the protocol gives no window.",
    )

    SOURCES = {
        "open_time": "Clinic setting, default 08:00 (no clinical source: the clinic's hours).",
        "close_time": "Clinic setting, default 18:00.",
        "open_days": "Clinic setting, default Monday to Friday.",
        "slot_minutes": "Clinic setting, default 15 min: the grid free slots are searched on.",
        "reminder_lead_hours": "Clinic setting, default 24 h before the visit.",
        "companion_window_days": "Clinic setting, default 3 days: KAP practice follows each "
        "dosing session 'within days' by an integration session (clinical-reference.md section "
        "2) and gives no number; a protocol's own window (within_days) wins.",
    }

    def __str__(self) -> str:
        return f"Scheduling settings of clinic {self.clinic_id}"

    @property
    def days(self) -> set[int]:
        return {int(d) for d in self.open_days.split(",") if d.strip().isdigit()}


class AppointmentType(models.Model):
    class Resource(models.TextChoices):
        CHAIR = "chair", "Infusion chair"
        ROOM = "room", "Treatment room"
        NONE = "none", "No chair or room (telehealth)"

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="+")
    code = models.CharField(max_length=40)
    name = models.CharField(max_length=100)
    minutes = models.PositiveIntegerField()
    minimum_minutes = models.PositiveIntegerField(default=5)
    resource = models.CharField(max_length=10, choices=Resource.choices)
    route = models.CharField(max_length=20, blank=True, help_text="Set for dosing visits.")
    preparation = models.TextField(blank=True)
    source = models.TextField()
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["order", "name"]
        constraints = [models.UniqueConstraint(fields=["clinic", "code"], name="uniq_appt_type")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_dose(self) -> bool:
        return bool(self.route)


class WorkingHours(models.Model):
    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    weekday = models.PositiveSmallIntegerField()
    start = models.TimeField()
    end = models.TimeField()
    location = models.ForeignKey(
        "tenancy.Location", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )

    class Meta:
        ordering = ["user", "weekday", "start"]

    def __str__(self) -> str:
        return f"{self.user_id} day {self.weekday} {self.start}-{self.end}"


class Closure(models.Model):
    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="+")
    location = models.ForeignKey(
        "tenancy.Location",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Empty: every location.",
    )
    date = models.DateField()
    reason = models.CharField(max_length=200)

    class Meta:
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date}: {self.reason}"


class Appointment(ClinicOwned):
    class Status(models.TextChoices):
        BOOKED = "booked", "Booked"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"
        NO_SHOW = "no_show", "No-show"
        RESCHEDULED = "rescheduled", "Rescheduled"

    ACTIVE = (Status.BOOKED, Status.COMPLETED)

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    type = models.ForeignKey(AppointmentType, on_delete=models.PROTECT, related_name="+")
    location = models.ForeignKey("tenancy.Location", on_delete=models.PROTECT, related_name="+")
    chair = models.ForeignKey(
        "tenancy.Chair", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    start = models.DateTimeField()
    end = models.DateTimeField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.BOOKED)
    status_reason = models.TextField(blank=True)
    plan = models.ForeignKey(
        "plans.TreatmentPlan", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    phase = models.CharField(max_length=60, blank=True)
    visit_number = models.PositiveIntegerField(null=True, blank=True)
    rescheduled_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    notes = models.CharField(max_length=300, blank=True)
    reminder_sent_at = models.DateTimeField(null=True, blank=True)
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["start", "id"]
        indexes = [
            models.Index(fields=["clinic", "location", "start"]),
            models.Index(fields=["clinic", "staff", "start"]),
            models.Index(fields=["clinic", "patient", "start"]),
            models.Index(fields=["clinic", "chair", "start"]),
            models.Index(fields=["clinic", "plan"]),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.start:%Y-%m-%d %H:%M}Z"

    @property
    def is_dose(self) -> bool:
        return self.type.is_dose


class FeedToken(models.Model):
    """A staff member's iCalendar feed token (stored as SHA-256; shown once)."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}…"
