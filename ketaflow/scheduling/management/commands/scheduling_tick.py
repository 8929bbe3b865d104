"""Enqueue (or, with --now, run) the reminder sweep. Run from cron every few minutes."""

from django.core.management.base import BaseCommand

from ketaflow.scheduling import tasks


class Command(BaseCommand):
    help = "Send the visit reminders that are due (each clinic's lead time; each visit once)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--now", action="store_true", help="run the sweep in this process (no worker needed)"
        )

    def handle(self, *args, **options):
        t = tasks.send_due_reminders
        if options["now"]:
            self.stdout.write(f"{t.name}: {t.call()} reminders sent")
        else:
            t.enqueue()
            self.stdout.write(f"{t.name}: enqueued")
