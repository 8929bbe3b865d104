"""Scheduling timings:  .venv/bin/python -m benchmarks.scheduling_bench [--repeat N]

Targets (issue 6): the week view of a location with 30 chairs and 2,000 appointments renders
under 150 ms median server time with a constant number of queries; the free-slot search for a
full course completes under 200 ms. Builds a throwaway database (SQLite in a temporary
directory, or the PostgreSQL of DATABASE_URL).
"""

import argparse
import datetime
import os
import sys
import tempfile
import time


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scheduling_bench")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--appointments", type=int, default=2000)
    args = parser.parse_args(argv)
    os.environ.setdefault("KETAFLOW_VAR_DIR", tempfile.mkdtemp(prefix="ketaflow-bench-"))
    os.environ.setdefault("KETAFLOW_HTTPS", "0")
    os.environ.setdefault("KETAFLOW_STATIC_MANIFEST", "0")
    os.environ.setdefault("KETAFLOW_FAST_PASSWORD_HASHING", "1")
    os.environ.setdefault(
        "KETAFLOW_TASKS_BACKEND", "django.tasks.backends.immediate.ImmediateBackend"
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ketaflow.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    call_command("migrate", verbosity=0)
    print(f"database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}")
    run(args.appointments, args.repeat)
    return 0


def run(n_appointments: int, repeat: int) -> None:
    from decimal import Decimal

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from benchmarks.web_bench import _report, _signed_in_client, _time, _world
    from ketaflow.clinical import protocols
    from ketaflow.patients.models import Patient
    from ketaflow.plans.models import PlanVersion, TreatmentPlan
    from ketaflow.scheduling import services
    from ketaflow.scheduling.defaults import ensure_types
    from ketaflow.scheduling.models import Appointment
    from ketaflow.tenancy.models import Chair

    clinic, location, user = _world("scheduling")
    chairs = [
        Chair.objects.get_or_create(clinic=clinic, location=location, name=f"Chair {i:02d}")[0]
        for i in range(1, 31)
    ]
    types = ensure_types(clinic)
    tz = clinic.tz
    today = datetime.datetime.now(tz).date()
    monday = today - datetime.timedelta(days=today.weekday()) + datetime.timedelta(days=7)
    patients = list(Patient.objects.for_clinic(clinic)[:500])
    for i in range(len(patients), 500):
        patients.append(
            Patient.objects.create(
                clinic=clinic,
                mrn=f"B-{i:05d}",
                legal_given_name="Bench",
                legal_family_name=f"Patient{i}-Synth",
                date_of_birth=datetime.date(1980, 1, 1),
                sex_assigned_at_birth="female",
                status="active",
            )
        )
    Appointment.objects.filter(clinic=clinic).delete()
    rows, k = [], 0
    type = types["follow-up"]
    while len(rows) < n_appointments:
        day = monday + datetime.timedelta(days=(k // (30 * 14)) % 5)
        slot = (k // 30) % 14
        chair = chairs[k % 30]
        start = datetime.datetime.combine(day, datetime.time(8), tzinfo=tz) + datetime.timedelta(
            minutes=40 * slot
        )
        rows.append(
            Appointment(
                clinic=clinic,
                patient=patients[k % 500],
                type=type,
                location=location,
                chair=chair,
                start=start,
                end=start + datetime.timedelta(minutes=30),
                booked_by=user,
            )
        )
        k += 1
    Appointment.objects.bulk_create(rows)
    client = _signed_in_client(user)
    url = f"/scheduling/?location={location.pk}&date={monday.isoformat()}"
    samples, queries = _time(client, "get", url, None, repeat)
    print(f"week view: 30 chairs, {Appointment.objects.filter(clinic=clinic).count()} appointments")
    _report("week view (location)", [s for s in samples], queries, 150)
    protocol = protocols.get("esketamine-trd")
    patient = patients[0]
    plan = TreatmentPlan.objects.create(
        clinic=clinic, patient=patient, phase="induction", status="active"
    )
    v = PlanVersion.objects.create(
        clinic=clinic,
        plan=plan,
        number=1,
        protocol_code=protocol.code,
        protocol_name=protocol.name,
        protocol_source=protocol.source,
        protocol_data=protocols.to_dict(protocol),
        route=protocol.route,
        prescriber=user,
        phase="induction",
        dose_value=Decimal(56),
        dose_unit="mg",
        dose_mg=Decimal(56),
        weight_kg=Decimal(70),
        calculation={},
        start_date=monday,
        goals="bench",
        signed_by=user,
        signed_at=datetime.datetime.now(datetime.UTC),
    )
    plan.current = v
    plan.save()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        proposals = services.propose_course(
            clinic=clinic,
            plan=plan,
            location=location,
            start_date=monday,
            prefer=datetime.time(12, 0),
        )
        samples.append((time.perf_counter() - t0) * 1000)
    with CaptureQueriesContext(connection) as ctx:
        services.propose_course(clinic=clinic, plan=plan, location=location, start_date=monday)
    assert all(p["slot"] for p in proposals)
    _report(
        "free-slot search, full esketamine induction (8)", samples, len(ctx.captured_queries), 200
    )


if __name__ == "__main__":
    sys.exit(main())
