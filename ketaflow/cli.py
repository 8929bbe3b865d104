"""The ``ketaflow`` console command: a thin wrapper over Django management commands.

Pure clinical commands (score, eligibility, dose, pk, vitals) run without Django or a database.
"""

import importlib
import json
import os
import sys

PURE = {
    "score": "ketaflow.clinical.instruments.cli",
    "eligibility": "ketaflow.clinical.eligibility",
    "dose": "ketaflow.clinical.dosing",
    "pk": "ketaflow.clinical.pk.cli",
    "vitals": "ketaflow.clinical.vitals",
}

USAGE = """usage: ketaflow COMMAND [ARGS]

  demo          migrate, load the synthetic demo clinic, serve on http://127.0.0.1:8000
  serve         production server (gunicorn) on KETAFLOW_BIND (default 127.0.0.1:8000)
  worker        run background tasks (django-tasks-db worker)
  check         deployment checks (secret key, DEBUG off, security settings)
  seed-demo     load the synthetic demo clinics (idempotent)
  demo-code E   print the current sign-in code of demo user E (demo only)
  audit verify  check the audit trail's hash chains against the anchor
  audit checkpoint  write every audit chain's end to the anchor (--start: the first time)
  audit_tick    enqueue the audit anchor checkpoint (run every few minutes)
  measures_tick send due questionnaires and reminders, escalate alerts (run every few minutes)
  scheduling_tick  send due visit reminders (run every few minutes)
  score         score a questionnaire:  ketaflow score phq9 1=2 2=1 ...
  eligibility   ketaflow eligibility check CASE.json
  dose          ketaflow dose --route iv-ketamine --weight-kg 70 --mg-per-kg 0.5 --minutes 40
  pk            ketaflow pk simulate|population|validate ...
  vitals        ketaflow vitals evaluate SERIES.json  (alerts and next due reading, JSON)
  (any other Django management command, e.g. migrate, createsuperuser)
"""


def _fail(message: str) -> int:
    print(f"ketaflow: {message}", file=sys.stderr)
    return 2


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ketaflow.settings")
    import django

    django.setup()


def _check_database() -> None:
    from django.db import connection
    from django.db.utils import OperationalError

    from ketaflow.config import ConfigError

    try:
        connection.ensure_connection()
    except OperationalError as exc:
        settings = connection.settings_dict
        where = settings.get("HOST") or settings.get("NAME")
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise ConfigError(
            f"cannot reach the database at {where} ({first}): check DATABASE_URL and that the server runs."
        ) from exc


def _manage(argv: list[str]) -> None:
    from django.core.management import execute_from_command_line

    execute_from_command_line(["ketaflow", *argv])


def _demo(argv: list[str]) -> int:
    os.environ["KETAFLOW_DEBUG"] = "1"
    os.environ.setdefault("KETAFLOW_HTTPS", "0")
    _setup_django()
    _check_database()
    _manage(["migrate", "--no-input", "-v", "0"])
    _manage(["seed_demo"])
    addr = argv[0] if argv else "127.0.0.1:8000"
    print(f"\nketaflow demo: open http://{addr}/ in your browser (Ctrl-C stops it).\n", flush=True)
    _manage(["runserver", addr, "--noreload"])
    return 0


def _serve(argv: list[str]) -> int:
    _setup_django()
    _check_database()
    _manage(["migrate", "--no-input", "-v", "0"])
    _manage(["collectstatic", "--no-input", "-v", "0"])
    bind = os.environ.get("KETAFLOW_BIND", "127.0.0.1:8000")
    workers = os.environ.get("KETAFLOW_WORKERS", "3")
    os.execvp(  # noqa: S606 (replaces this process with gunicorn)
        sys.executable,
        [
            sys.executable,
            "-m",
            "gunicorn",
            "ketaflow.wsgi:application",
            "--bind",
            bind,
            "--workers",
            workers,
            "--access-logfile",
            "-",
            *argv,
        ],
    )
    return 0


def _demo_code(argv: list[str]) -> int:
    if len(argv) != 1:
        return _fail("usage: ketaflow demo-code EMAIL")
    from ketaflow.config import var_dir

    path = var_dir() / "demo-credentials.json"
    if not path.exists():
        return _fail(f"{path} does not exist: run 'ketaflow demo' or 'ketaflow seed-demo' first.")
    users = {u["email"]: u for u in json.loads(path.read_text())["users"]}
    if argv[0] not in users:
        return _fail(f"{argv[0]} is not a demo user; demo users: {', '.join(sorted(users))}")
    from ketaflow.web.totp import current_code

    print(current_code(users[argv[0]]["totp_secret"]))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command in PURE:
        return importlib.import_module(PURE[command]).main(rest)
    from ketaflow.config import ConfigError

    try:
        if command == "demo":
            return _demo(rest)
        if command == "serve":
            return _serve(rest)
        if command == "demo-code":
            return _demo_code(rest)
        _setup_django()
        if command == "worker":
            _check_database()
            _manage(["db_worker", *rest])
        elif command == "check":
            _manage(["check", "--deploy", "--fail-level", "WARNING", *rest])
        elif command == "seed-demo":
            _check_database()
            _manage(["seed_demo", *rest])
        else:
            _manage([command, *rest])
    except ConfigError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
