"""Deployment checks run by `ketaflow check` (Django's `check --deploy`)."""

from django.conf import settings
from django.core.checks import Error, Info, Tags, Warning, register


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
    if any("*" in host for host in settings.ALLOWED_HOSTS):
        problems.append(
            Error(
                "ALLOWED_HOSTS contains a wildcard ('*'): any Host header is accepted.",
                hint="Set KETAFLOW_ALLOWED_HOSTS to the exact host names ketaflow is served at.",
                id="ketaflow.E005",
            )
        )
    if not settings.PUBLIC_URL_SET:
        problems.append(
            Error(
                "KETAFLOW_PUBLIC_URL is not set: links in emails (password resets, questionnaire "
                f"links, reminders) would point to {settings.PUBLIC_URL}.",
                hint="Set KETAFLOW_PUBLIC_URL to the address people use, e.g. https://clinic.example.org.",
                id="ketaflow.E006",
            )
        )
    elif settings.HTTPS and not settings.PUBLIC_URL.startswith("https://"):
        problems.append(
            Error(
                f"KETAFLOW_PUBLIC_URL ({settings.PUBLIC_URL}) is not an https:// address.",
                hint="Links in emails must use HTTPS: set KETAFLOW_PUBLIC_URL=https://...",
                id="ketaflow.E007",
            )
        )
    mailer = settings.MAILERS.get("default", {})
    options = mailer.get("OPTIONS", {})
    smtp = mailer.get("BACKEND", "").endswith("smtp.EmailBackend")
    encrypted = options.get("use_tls") or options.get("use_ssl")
    # A relay on this machine (the default, localhost) is not a network hop.
    remote = options.get("host", "localhost") not in {"localhost", "127.0.0.1", "::1"}
    if smtp and not encrypted and remote:
        problems.append(
            Warning(
                f"Email goes to the SMTP server {options.get('host')} without TLS or SSL: "
                "password-reset links and patient links cross the network in clear text.",
                hint="Set KETAFLOW_EMAIL_TLS=1 (STARTTLS, usually port 587) or "
                "KETAFLOW_EMAIL_SSL=1 (port 465).",
                id="ketaflow.W008",
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
