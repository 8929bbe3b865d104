"""Background tasks (django.tasks): alert emails, scheduled sending, reminders, escalation.

``ketaflow worker`` runs queued tasks; ``ketaflow measures_tick`` (cron, every few minutes)
enqueues the periodic ones. See docs/measures.md.
"""

import datetime
import logging

from django.tasks import task

from ketaflow.measures import selectors, services
from ketaflow.measures.models import MeasureSchedule, MeasuresSettings, PatientLink, SafetyAlert

log = logging.getLogger(__name__)


def _guarded(fn, **kwargs):
    """Run one item's service; a failure (e.g. mail server down) is logged and retried at the
    next tick instead of stopping the other items."""
    try:
        return fn(**kwargs)
    except Exception:
        log.exception("measures task step %s failed", fn.__name__)
        return None


@task
def notify_alert(alert_id: int) -> int:
    return len(services.notify_alert(alert_id=alert_id))


def _settings_by_clinic(clinic_ids):
    found = {s.clinic_id: s for s in MeasuresSettings.objects.filter(clinic_id__in=clinic_ids)}
    return {cid: found.get(cid) or MeasuresSettings(clinic_id=cid) for cid in clinic_ids}


@task
def escalate_alerts() -> int:
    """Escalate every unacknowledged alert older than its clinic's delay."""
    now = services.now()
    open_alerts = list(
        SafetyAlert.objects.filter(
            acknowledged_at__isnull=True, escalated_at__isnull=True
        ).values_list("pk", "clinic_id", "created_at")
    )
    conf = _settings_by_clinic({cid for _, cid, _ in open_alerts})
    done = 0
    for pk, cid, created in open_alerts:
        if now - created >= datetime.timedelta(minutes=conf[cid].escalation_minutes):
            done += _guarded(services.escalate_alert, alert_id=pk) is not None
    return done


@task
def send_reminders() -> int:
    """Remind patients of emailed links that are still open, every clinic-set interval."""
    now = services.now()
    links = list(
        PatientLink.objects.filter(
            submitted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
        )
        .exclude(emailed_to="")
        .values_list("pk", "clinic_id", "last_sent_at")
    )
    conf = _settings_by_clinic({cid for _, cid, _ in links})
    sent = 0
    for pk, cid, last in links:
        if last is None or now - last >= datetime.timedelta(hours=conf[cid].reminder_hours):
            sent += bool(_guarded(services.send_reminder, link=PatientLink(pk=pk)))
    return sent


@task
def send_due_measures() -> int:
    """Send every schedule that is due: weekly/fortnightly by date, and 'before each
    treatment' when a booked dosing visit (scheduling app) starts within the clinic's lead
    time."""
    now = services.now()
    sent = 0
    due = MeasureSchedule.objects.filter(active=True, next_due__lte=now).exclude(
        cadence=MeasureSchedule.Cadence.BEFORE_EACH_TREATMENT
    )
    for schedule in due.select_related("patient", "clinic"):
        sent += _guarded(services.send_scheduled, schedule=schedule) is not None
    pre = MeasureSchedule.objects.filter(
        active=True, cadence=MeasureSchedule.Cadence.BEFORE_EACH_TREATMENT
    ).select_related("patient", "clinic", "plan")
    pre = list(pre)
    conf = _settings_by_clinic({s.clinic_id for s in pre})
    for schedule in pre:
        lead = datetime.timedelta(hours=conf[schedule.clinic_id].pre_treatment_hours)
        # The patient's booked dosing visits (of the schedule's plan, if it has one) that
        # start within the lead time; one link per visit.
        upcoming = [
            a.start
            for a in selectors.upcoming_dosing_visits(
                schedule.patient, plan=schedule.plan, start=now, end=now + lead
            )
            if schedule.last_treatment_sent_for is None
            or a.start > schedule.last_treatment_sent_for
        ]
        if upcoming:
            sent += (
                _guarded(services.send_scheduled, schedule=schedule, treatment_at=upcoming[0])
                is not None
            )
    return sent
