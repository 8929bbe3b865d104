"""Reminder emails (django.tasks): before each visit, with the route's preparation and an .ics."""

import datetime

from django.core.mail import EmailMessage
from django.tasks import default_task_backend, task
from django.utils import timezone

from ketaflow.scheduling import ics


def education_url(a) -> str:
    """The clinic's patient-education page for a dosing visit's route, or ""."""
    from django.apps import apps
    from django.conf import settings
    from django.urls import reverse

    if not a.type.route or not apps.is_installed("ketaflow.education"):
        return ""
    from ketaflow.education.content import TOPICS

    if a.type.route not in TOPICS:
        return ""
    path = reverse(
        "education:clinic_topic", kwargs={"clinic_slug": a.clinic.slug, "route": a.type.route}
    )
    return settings.PUBLIC_URL.rstrip("/") + path


def reminder_text(a) -> str:
    local = a.start.astimezone(a.clinic.tz)
    lines = [
        f"This is a reminder of your {a.type.name.lower()} at {a.clinic.name}, "
        f"{a.location.name}, on {local:%A %d %B %Y at %H:%M} ({a.clinic.timezone}).",
    ]
    if a.type.preparation:
        lines += ["", "How to prepare:", a.type.preparation]
    guide = education_url(a)
    if guide:
        lines += ["", f"What the treatment is like and how to stay safe afterwards: {guide}"]
    lines += [
        "",
        "To change or cancel the visit, please call the clinic.",
        f"In a crisis: {a.clinic.crisis_line}; emergencies: {a.clinic.emergency_phone}.",
    ]
    return "\n".join(lines)


@task()
def send_reminder(appointment_id: int) -> bool:
    """Send one reminder, once, for a visit still booked; returns whether an email went out."""
    from ketaflow.scheduling.models import Appointment

    a = (
        Appointment.objects.select_related("patient", "type", "location", "clinic")
        .filter(pk=appointment_id, status=Appointment.Status.BOOKED, reminder_sent_at__isnull=True)
        .first()
    )
    if a is None or not a.patient.email or a.start <= timezone.now():
        return False
    message = EmailMessage(
        subject=f"Reminder: {a.type.name} on {a.start.astimezone(a.clinic.tz):%a %d %b %H:%M}",
        body=reminder_text(a),
        to=[a.patient.email],
    )
    message.attach("appointment.ics", ics.patient_ics(a), "text/calendar")
    message.send()
    Appointment.objects.filter(pk=a.pk).update(reminder_sent_at=timezone.now())
    return True


@task()
def send_due_reminders() -> int:
    """Sweep: reminders for every booked visit inside its clinic's lead time (run periodically)."""
    from ketaflow.scheduling.models import Appointment
    from ketaflow.scheduling.selectors import schedule_settings

    now = timezone.now()
    sent = 0
    rows = Appointment.objects.filter(
        status=Appointment.Status.BOOKED,
        reminder_sent_at__isnull=True,
        start__gt=now,
        start__lte=now + datetime.timedelta(days=14),
    ).select_related("clinic")
    leads = {}
    for a in rows:
        if a.clinic_id not in leads:
            leads[a.clinic_id] = schedule_settings(a.clinic).reminder_lead_hours
        if a.start - datetime.timedelta(hours=leads[a.clinic_id]) <= now:
            sent += bool(send_reminder.call(a.pk))
    return sent


def schedule_reminder(appointment_id: int) -> None:
    """Enqueue the reminder: now if the visit is inside the lead time, else deferred where the
    task backend supports it (otherwise the periodic sweep sends it)."""
    from ketaflow.scheduling.models import Appointment
    from ketaflow.scheduling.selectors import schedule_settings

    a = Appointment.objects.select_related("clinic").filter(pk=appointment_id).first()
    if a is None:
        return
    due = a.start - datetime.timedelta(hours=schedule_settings(a.clinic).reminder_lead_hours)
    if due <= timezone.now():
        send_reminder.enqueue(a.pk)
    elif default_task_backend.supports_defer:
        send_reminder.using(run_after=due).enqueue(a.pk)
