"""Enqueue (or, with --now, run) the audit anchor checkpoint. Run from cron every few minutes."""

from django.core.management.base import BaseCommand

from ketaflow.audit import tasks


class Command(BaseCommand):
    help = "Checkpoint the end of every audit chain to the anchor (docs/security.md)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--now",
            action="store_true",
            help="run the checkpoint in this process (no worker needed)",
        )

    def handle(self, *args, **options):
        t = tasks.checkpoint
        if options["now"]:
            result = t.call()
            self.stdout.write(
                f"{t.name}: line {result['line'] or '-'}, {len(result['problems'])} problem(s)"
            )
        else:
            t.enqueue()
            self.stdout.write(f"{t.name}: enqueued")
