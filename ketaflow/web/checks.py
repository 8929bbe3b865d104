"""Deployment checks run by `ketaflow check` (Django's `check --deploy`)."""

from django.conf import settings
from django.core.checks import Error, Info, Tags, register


@register(Tags.security, deploy=True)
def ketaflow_deploy_checks(app_configs, **kwargs):
    problems = []
    if settings.DEBUG:
        problems.append(
            Error("DEBUG is on.", hint="Unset KETAFLOW_DEBUG in production.", id="ketaflow.E001")
        )
    key = settings.SECRET_KEY or ""
    if key.startswith("django-insecure") or len(set(key)) < 10:
        problems.append(
            Error(
                "The secret key is a default or weak value.",
                hint="Set KETAFLOW_SECRET_KEY or delete var/secret_key to generate a new one.",
                id="ketaflow.E002",
            )
        )
    if not settings.HTTPS:
        problems.append(
            Error(
                "HTTPS is off: cookies are not marked secure and HSTS is not sent.",
                hint="Serve ketaflow over HTTPS and leave KETAFLOW_HTTPS on.",
                id="ketaflow.E003",
            )
        )
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        problems.append(
            Info(
                "The database is SQLite: fine for one small clinic, but PostgreSQL is recommended.",
                hint="Set DATABASE_URL to a PostgreSQL database (docs/operations.md).",
                id="ketaflow.I004",
            )
        )
    return problems
