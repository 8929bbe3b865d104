from django.core.management.base import BaseCommand

from ketaflow.web import demo


class Command(BaseCommand):
    help = "Load the synthetic demo clinics (idempotent) and print the demo logins."

    def handle(self, *args, **options):
        data = demo.seed()
        self.stdout.write(demo.describe(data))
