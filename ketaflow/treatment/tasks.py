"""Background work (django.tasks): escalate unacknowledged treatment alerts.

``ketaflow treatment_tick`` (cron, every minute) enqueues it; see docs/treatment.md."""

from django.tasks import task

from ketaflow.treatment import services


@task
def escalate_alerts() -> int:
    """Escalate every open alert older than its clinic's delay to the prescriber on duty."""
    return services.escalate_due()
