"""Treatment-day benchmarks (issue 7):

- recording one vitals reading (request to stored and alert-checked) with 50 active sessions:
  median server time < 30 ms;
- the chair board for 30 active sessions: median < 100 ms, with the same number of queries
  for 10 and for 30 sessions.

Run:  .venv/bin/python -m benchmarks.treatment_bench [--repeat 60]
Builds a throwaway SQLite database under a temporary directory (or uses DATABASE_URL, e.g.
through scripts/with_postgres.py).
"""

import argparse
import datetime
import os
import sys
import tempfile
import time
from decimal import Decimal
from unittest import mock


def _setup():
    os.environ.setdefault("KETAFLOW_VAR_DIR", tempfile.mkdtemp(prefix="ketaflow-bench-"))
    os.environ.setdefault("KETAFLOW_HTTPS", "0")
    os.environ.setdefault("KETAFLOW_STATIC_MANIFEST", "0")
    os.environ.setdefault("KETAFLOW_FAST_PASSWORD_HASHING", "1")
    os.environ.setdefault("KETAFLOW_DOMAIN_APPS", "measures,intake,plans,scheduling,treatment")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ketaflow.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    call_command("migrate", verbosity=0)
    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    print(f"database: {engine}; domain apps: {os.environ['KETAFLOW_DOMAIN_APPS']}")


def _world():
    from ketaflow.accounts.models import User
    from ketaflow.clinical import protocols
    from ketaflow.patients.models import Patient
    from ketaflow.plans import services as plans
    from ketaflow.plans.models import PlanVersion, TreatmentPlan
    from ketaflow.scheduling.defaults import ensure_types
    from ketaflow.scheduling.models import Appointment
    from ketaflow.tenancy.models import Chair, Clinic, Location, Membership

    clinic = Clinic.objects.create(name="Bench treatment (synthetic)", slug="bench-treatment")
    locations = [Location.objects.create(clinic=clinic, name=n) for n in ("East", "West")]
    staff = {}
    for role in ("owner", "prescriber", "nurse"):
        user = User.objects.create_user(
            email=f"{role}@bench-treatment.ketaflow.test", password=None, full_name=f"{role}-Synth"
        )
        Membership.objects.create(user=user, clinic=clinic, roles=[role])
        staff[role] = user
    protocol = protocols.get("iv-ketamine-clinic-6")
    calc = plans.calculate(
        clinic=clinic, route=protocol.route, dose_value="0.5", weight_kg="80", minutes=40
    )
    type_ = ensure_types(clinic)["iv-infusion"]
    now = datetime.datetime.now(datetime.UTC)
    appointments = []
    for i in range(50):
        location = locations[0] if i < 30 else locations[1]
        chair = Chair.objects.create(clinic=clinic, location=location, name=f"Chair {i + 1}")
        patient = Patient.objects.create(
            clinic=clinic,
            mrn=f"B-{i:05d}",
            legal_given_name=f"Bench{i}",
            legal_family_name="Treatment-Synth",
            date_of_birth=datetime.date(1980, 1, 1) + datetime.timedelta(days=i),
            sex_assigned_at_birth="female",
            status="active",
        )
        plan = TreatmentPlan.objects.create(
            clinic=clinic, patient=patient, phase="induction", status="active"
        )
        version = PlanVersion.objects.create(
            clinic=clinic,
            plan=plan,
            number=1,
            protocol_code=protocol.code,
            protocol_name=protocol.name,
            protocol_source=protocol.source,
            protocol_data=protocols.to_dict(protocol),
            route=protocol.route,
            prescriber=staff["prescriber"],
            phase="induction",
            dose_value=Decimal("0.5"),
            dose_unit="mg/kg",
            dose_mg=calc.dose_mg,
            weight_kg=Decimal(80),
            weight_basis="actual",
            calculation=calc.as_dict(),
            start_date=now.date(),
            goals="Bench (synthetic)",
            signed_by=staff["prescriber"],
            signed_at=now,
        )
        plan.current = version
        plan.save()
        appointments.append(
            Appointment.objects.create(
                clinic=clinic,
                patient=patient,
                type=type_,
                location=location,
                chair=chair,
                start=now,
                end=now + datetime.timedelta(minutes=130),
                plan=plan,
                booked_by=staff["owner"],
            )
        )
    return clinic, locations, staff, appointments


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=60)
    args = parser.parse_args(argv)
    _setup()
    import json

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from benchmarks.web_bench import _report, _signed_in_client
    from ketaflow.treatment import builder, services

    _clinic, locations, staff, appointments = _world()
    started = time.perf_counter()
    sessions = []
    with mock.patch.object(services, "consent_valid", lambda s: True):
        for i, appt in enumerate(appointments):
            to = ("dosing", "monitoring", "monitoring")[i % 3]
            sessions.append(
                builder.build(appt, to=to, nurse=staff["nurse"], prescriber=staff["prescriber"])
            )
    print(f"50 active sessions charted in {time.perf_counter() - started:.1f} s")
    nurse = _signed_in_client(staff["nurse"])

    samples = []
    for i in range(args.repeat):
        s = sessions[i % len(sessions)]
        body = json.dumps({"systolic": 120 + i % 20, "diastolic": 78, "heart_rate": 72, "spo2": 97})
        t = time.perf_counter()
        r = nurse.post(
            f"/api/v1/treatment/sessions/{s.pk}/vitals", body, content_type="application/json"
        )
        samples.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 201, r.content
    with CaptureQueriesContext(connection) as ctx:
        nurse.post(
            f"/api/v1/treatment/sessions/{sessions[0].pk}/vitals",
            json.dumps({"spo2": 97}),
            content_type="application/json",
        )
    print("recording one reading (50 active sessions):")
    vit = _report("POST vitals (API)", samples, len(ctx.captured_queries), target_ms=30)

    print("chair board:")
    counts = {}
    medians = {}
    for n, url in ((30, f"/treatment/board/live/?location={locations[0].pk}"),):
        samples = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            r = nurse.get(url)
            samples.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200
        with CaptureQueriesContext(connection) as ctx:
            nurse.get(url)
        counts[n] = len(ctx.captured_queries)
        medians[n] = _report(f"board partial, {n} active sessions", samples, counts[n], 100)
    # Same page with only 10 sessions active at the location: the query count must not change.
    from ketaflow.treatment.models import TreatmentSession

    keep = [s.pk for s in sessions[:10]]
    TreatmentSession.objects.filter(location=locations[0]).exclude(pk__in=keep).update(
        state="discharged"
    )
    with CaptureQueriesContext(connection) as ctx:
        nurse.get(f"/treatment/board/live/?location={locations[0].pk}")
    counts[10] = len(ctx.captured_queries)
    print(f"  queries with 10 sessions: {counts[10]}, with 30: {counts[30]}")
    ok = vit < 30 and medians[30] < 100 and counts[10] == counts[30]
    print("all targets met" if ok else "SOME TARGETS NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
