"""Therapy benchmarks (issue 9): server time and query counts of the pages that grow with a
patient's history, at a small and a large history.

- the chart's Notes tab (therapy notes section) with 10 and 200 therapy notes, a third of
  them other therapists' psychotherapy notes (hidden) and some shared with the reader;
- the API note list and the text search (``q``) over the same notes;
- the KAP course view with 2 and 20 dosing/integration cycles.

Targets (ketaflow's own, the issue gives none): median < 100 ms for each page at the large
size, and the same number of queries at both sizes.

Run:  .venv/bin/python -m benchmarks.therapy_bench [--repeat 30]
Builds a throwaway SQLite database under a temporary directory (or uses DATABASE_URL).
"""

import argparse
import datetime
import os
import sys
import tempfile

APPS = "measures,intake,plans,scheduling,treatment,therapy,education"


def _setup():
    os.environ.setdefault("KETAFLOW_VAR_DIR", tempfile.mkdtemp(prefix="ketaflow-bench-"))
    if "DATABASE_URL" not in os.environ:
        os.environ["DATABASE_URL"] = "sqlite:///" + os.path.join(
            os.environ["KETAFLOW_VAR_DIR"], "bench.sqlite3"
        )
    os.environ.setdefault("KETAFLOW_HTTPS", "0")
    os.environ.setdefault("KETAFLOW_STATIC_MANIFEST", "0")
    os.environ.setdefault("KETAFLOW_FAST_PASSWORD_HASHING", "1")
    os.environ.setdefault("KETAFLOW_DOMAIN_APPS", APPS)
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
    from ketaflow.patients.models import Patient
    from ketaflow.tenancy.models import Chair, Clinic, Location, Membership

    clinic = Clinic.objects.create(name="Bench therapy (synthetic)", slug="bench-therapy")
    location = Location.objects.create(clinic=clinic, name="Main")
    Chair.objects.create(clinic=clinic, location=location, name="Room 1", kind="room")
    staff = {}
    for name, roles in (
        ("reader", ["therapist"]),
        ("other", ["therapist"]),
        ("prescriber", ["prescriber"]),
        ("owner", ["owner"]),
    ):
        user = User.objects.create_user(
            email=f"{name}@bench-therapy.ketaflow.test", password=None, full_name=f"{name}-Synth"
        )
        Membership.objects.create(user=user, clinic=clinic, roles=roles)
        staff[name] = user
    patients = [
        Patient.objects.create(
            clinic=clinic,
            mrn=f"BT-{i}",
            legal_given_name="Bench",
            legal_family_name=f"Patient{i}-Synth",
            date_of_birth=datetime.date(1980, 1, 1),
            sex_assigned_at_birth="female",
            status="active",
        )
        for i in range(4)
    ]
    return clinic, staff, patients


def _notes(patient, staff, n):
    from ketaflow.therapy import note_types as nt
    from ketaflow.therapy import services

    kinds = [nt.INTEGRATION, nt.PROGRESS, nt.PSYCHOTHERAPY]
    for i in range(n):
        kind = kinds[i % 3]
        author = staff["other"] if kind == nt.PSYCHOTHERAPY else staff["reader"]
        content = {s.key: f"Synthetic text {i} {s.key}" for s in nt.sections(kind, "soap")}
        note = services.create_note(patient=patient, actor=author, kind=kind, content=content)
        services.sign_note(note=note, actor=author)
        if kind == nt.PSYCHOTHERAPY and i % 2:
            services.share_note(note=note, actor=author, user_id=staff["reader"].pk)


def _course(clinic, patient, staff, cycles):
    from decimal import Decimal

    from ketaflow.clinical import protocols
    from ketaflow.plans import services as plans
    from ketaflow.plans.models import PlanVersion, TreatmentPlan
    from ketaflow.scheduling.defaults import ensure_types
    from ketaflow.scheduling.models import Appointment
    from ketaflow.therapy import services

    protocol = protocols.get("kap-sublingual-series")
    calc = plans.calculate(clinic=clinic, route=protocol.route, dose_value="2.0", weight_kg="80")
    plan = TreatmentPlan.objects.create(
        clinic=clinic, patient=patient, phase=protocol.phases[0].code, status="active"
    )
    now = datetime.datetime.now(datetime.UTC)
    plan.current = PlanVersion.objects.create(
        clinic=clinic, plan=plan, number=1, protocol_code=protocol.code,
        protocol_name=protocol.name, protocol_source=protocol.source,
        protocol_data=protocols.to_dict(protocol), route=protocol.route,
        prescriber=staff["prescriber"], phase=protocol.phases[0].code,
        dose_value=Decimal("2.0"), dose_unit="mg/kg", dose_mg=calc.dose_mg,
        weight_kg=Decimal(80), weight_basis="actual", calculation=calc.as_dict(),
        start_date=datetime.date.today(), goals="Synthetic", signed_by=staff["prescriber"],
        signed_at=now,
    )  # fmt: skip
    plan.save()
    types = ensure_types(clinic)
    location = clinic.locations.first()

    def visit(code, start):
        t = types[code]
        return Appointment.objects.create(
            clinic=clinic, patient=patient, type=t, location=location, start=start,
            end=start + datetime.timedelta(minutes=t.minutes), plan=plan, status="completed",
            booked_by=staff["owner"],
        )  # fmt: skip

    first = now - datetime.timedelta(days=4 * cycles + 2)
    visit("kap-preparation", first - datetime.timedelta(days=3))
    for i in range(cycles):
        visit("kap-dosing", first + datetime.timedelta(days=4 * i))
        integ = visit("integration", first + datetime.timedelta(days=4 * i + 2))
        note = services.create_note(
            patient=patient, actor=staff["reader"], kind="integration", appointment=integ.pk,
            content={"themes": f"Theme {i}", "plan": "Synthetic plan"},
        )  # fmt: skip
        services.sign_note(note=note, actor=staff["reader"])
    return plan


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args(argv)
    _setup()
    from benchmarks.web_bench import _report, _signed_in_client, _time

    clinic, staff, patients = _world()
    small, large, course_small, course_large = patients
    _notes(small, staff, 10)
    _notes(large, staff, 200)
    plan_small = _course(clinic, course_small, staff, 2)
    plan_large = _course(clinic, course_large, staff, 20)
    client = _signed_in_client(staff["reader"])
    print("\nTherapy pages (target: median < 100 ms at the large size; constant queries)")
    rows = []
    for label, url_small, url_large in (
        ("Notes tab (10 vs 200 notes)", f"/patients/{small.pk}/notes/", f"/patients/{large.pk}/notes/"),
        (
            "API note list (10 vs 200 notes)",
            f"/api/v1/therapy/patients/{small.pk}/notes",
            f"/api/v1/therapy/patients/{large.pk}/notes",
        ),
        (
            "API note search q= (10 vs 200 notes)",
            f"/api/v1/therapy/patients/{small.pk}/notes?q=text+7",
            f"/api/v1/therapy/patients/{large.pk}/notes?q=text+7",
        ),
        ("KAP course view (2 vs 20 cycles)", f"/therapy/courses/{plan_small.pk}/", f"/therapy/courses/{plan_large.pk}/"),
    ):  # fmt: skip
        s_samples, s_queries = _time(client, "get", url_small, None, args.repeat)
        l_samples, l_queries = _time(client, "get", url_large, None, args.repeat)
        small_ms = _report(f"{label}: small", s_samples, s_queries)
        large_ms = _report(f"{label}: large", l_samples, l_queries, target_ms=100)
        rows.append((label, small_ms, large_ms, s_queries, l_queries))
    print("\nRatios (large / small) and query counts:")
    ok = True
    for label, small_ms, large_ms, sq, lq in rows:
        same = sq == lq
        ok &= same and large_ms < 100
        print(
            f"  {label:<42} time x{large_ms / small_ms:5.2f}   queries {sq} -> {lq}"
            f" ({'constant' if same else 'NOT constant'})"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
