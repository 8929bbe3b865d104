from django.core.management.base import BaseCommand, CommandError

from ketaflow.audit import integrity
from ketaflow.audit.anchor import AnchorError


class Command(BaseCommand):
    help = (
        "Audit trail tools. 'audit verify' checks every hash chain against its head and the "
        "anchor and names the first problem (exit 1; exit 2 if the trail has no anchor yet). "
        "'audit checkpoint' writes the end of every chain to the anchor (--start: the first "
        "time, when events older than the anchor exist)."
    )

    def add_arguments(self, parser):
        parser.add_argument("operation", choices=["verify", "checkpoint"])
        parser.add_argument("--chain", help="Verify one chain only, e.g. clinic:1")
        parser.add_argument(
            "--start",
            action="store_true",
            help="checkpoint: start the anchor, accepting events hashed before it existed",
        )

    def handle(self, *args, operation, chain=None, start=False, **options):
        if operation == "checkpoint":
            return self._checkpoint(start)
        result = integrity.verify(chain)
        if not result.ok:
            raise CommandError(f"Audit chain broken: {result.problem}.")
        summary = f"Audit trail intact: {result.events} events in {result.chains} chain(s)"
        if not result.anchored:
            raise CommandError(
                f"{summary}, but it has no anchor yet, so deleted chains and rehashed events "
                "cannot be detected: run `ketaflow audit checkpoint` (docs/security.md).",
                returncode=2,
            )
        self.stdout.write(
            f"{summary}; anchor: {result.anchor_lines} line(s), last checkpoint "
            f"{result.last_checkpoint}."
        )

    def _checkpoint(self, start):
        try:
            result = integrity.checkpoint(start=start)
        except AnchorError as exc:
            raise CommandError(f"No checkpoint written: {exc}.") from None
        if result.line:
            verb = "started the anchor with" if result.started else "wrote"
            self.stdout.write(
                f"Checkpoint: {verb} line {result.line} "
                f"({', '.join(f'{k} #{seq}' for k, seq in result.chains.items()) or 'no events yet'})."
            )
        else:
            self.stdout.write("Checkpoint: no chain moved since the last checkpoint.")
        if result.problems:
            raise CommandError(
                f"Audit chain broken: {result.problems[0]}"
                + (f" (and {len(result.problems) - 1} more)" if len(result.problems) > 1 else "")
                + "."
            )
