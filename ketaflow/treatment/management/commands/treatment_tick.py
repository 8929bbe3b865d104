from django.core.management.base import BaseCommand

from ketaflow.treatment import tasks


class Command(BaseCommand):
    help = "Enqueue the escalation of unacknowledged treatment alerts (run every minute)."

    def handle(self, *args, **options):
        tasks.escalate_alerts.enqueue()
        self.stdout.write("treatment: escalation enqueued")
