"""Run benchmarks on demand:  python -m benchmarks [patients|audit|pk|all] [--patients N] [--events N]

Each benchmark builds its own throwaway database (SQLite under a temporary directory, or the
PostgreSQL of DATABASE_URL, e.g. through scripts/with_postgres.py) and prints figures and
ratios against the targets in the issues. Nothing here runs in the test suite.
"""

import argparse
import os
import sys
import tempfile


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument(
        "which", nargs="?", default="all", choices=["patients", "audit", "pk", "all"]
    )
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args(argv)

    if args.which in ("pk", "all"):
        from benchmarks import pk_bench

        pk_bench.main([])
    if args.which == "pk":
        return 0

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
    return 0


if __name__ == "__main__":
    sys.exit(main())
