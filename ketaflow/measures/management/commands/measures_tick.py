"""Enqueue (or, with --now, run) the periodic measures tasks. Run from cron every few minutes."""

from django.core.management.base import BaseCommand

from ketaflow.measures import tasks


class Command(BaseCommand):
    help = "Send due questionnaires and reminders, and escalate unacknowledged safety alerts."

    def add_arguments(self, parser):
        parser.add_argument(
            "--now", action="store_true", help="run the tasks in this process (no worker needed)"
        )

    def handle(self, *args, **options):
        for t in (tasks.send_due_measures, tasks.send_reminders, tasks.escalate_alerts):
            if options["now"]:
                result = t.call()
                self.stdout.write(f"{t.name}: {result}")
            else:
                t.enqueue()
                self.stdout.write(f"{t.name}: enqueued")
