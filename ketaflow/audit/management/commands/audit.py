from django.core.management.base import BaseCommand, CommandError

from ketaflow.audit.services import verify


class Command(BaseCommand):
    help = "Audit trail tools. 'audit verify' recomputes every hash chain and names the first broken event."

    def add_arguments(self, parser):
        parser.add_argument("operation", choices=["verify"])
        parser.add_argument("--chain", help="Verify one chain only, e.g. clinic:1")

    def handle(self, *args, operation, chain=None, **options):
        result = verify(chain)
        if not result.ok:
            raise CommandError(f"Audit chain broken: {result.problem}.")
        self.stdout.write(
            f"Audit trail intact: {result.events} events in {result.chains} chain(s)."
        )
