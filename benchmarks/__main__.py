"""Run benchmarks on demand:  python -m benchmarks [patients|audit|pk|measures|intake|scheduling|treatment|therapy|all] [options]

Each benchmark builds its own throwaway database (SQLite under a temporary directory, or the
PostgreSQL of DATABASE_URL, e.g. through scripts/with_postgres.py) and prints figures and
ratios against the targets in the issues. Nothing here runs in the test suite.
"""

import argparse
import os
import subprocess
import sys
import tempfile

# Benchmarks that set up their own database, each in its own process.
MODULES = {
    "pk": "benchmarks.pk_bench",
    "measures": "benchmarks.measures_bench",
    "intake": "benchmarks.intake_bench",
    "scheduling": "benchmarks.scheduling_bench",
    "treatment": "benchmarks.treatment_bench",
    "therapy": "benchmarks.therapy_bench",
}
IN_PROCESS = ("patients", "audit")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("which", nargs="?", default="all", choices=[*IN_PROCESS, *MODULES, "all"])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args(argv)

    status = 0
    for name, module in MODULES.items():
        if args.which in (name, "all"):
            print(f"\n== {name} ==", flush=True)
            status |= subprocess.call([sys.executable, "-m", module])
    if args.which not in (*IN_PROCESS, "all"):
        return status

    os.environ.setdefault("KETAFLOW_VAR_DIR", tempfile.mkdtemp(prefix="ketaflow-bench-"))
    os.environ.setdefault("KETAFLOW_HTTPS", "0")
    os.environ.setdefault("KETAFLOW_STATIC_MANIFEST", "0")
    os.environ.setdefault("KETAFLOW_FAST_PASSWORD_HASHING", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ketaflow.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    call_command("migrate", verbosity=0)
    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    print(f"database: {engine}")
    from benchmarks import web_bench

    if args.which in ("patients", "all"):
        web_bench.bench_patients(args.patients, args.repeat)
    if args.which in ("audit", "all"):
        web_bench.bench_audit(args.events, args.repeat)
    return status


if __name__ == "__main__":
    sys.exit(main())
