"""Intake benchmarks:

- the intake queue with 5,000 stored requests (the page shows at most 200): median < 200 ms;
- the chart's Assessment tab of a patient with 50 assessments, decisions and consents:
  constant queries, median < 150 ms;
- one public request submission (form, pre-screen, PHQ-9, audit, rate limit): median < 100 ms.

Run:  .venv/bin/python -m benchmarks.intake_bench [--requests 5000] [--repeat 20]
Builds a throwaway SQLite database under a temporary directory (or uses DATABASE_URL).
"""

import argparse
import datetime
import os
import tempfile
import time


def _setup():
    os.environ.setdefault("KETAFLOW_VAR_DIR", tempfile.mkdtemp(prefix="ketaflow-bench-"))
    os.environ.setdefault("KETAFLOW_HTTPS", "0")
    os.environ.setdefault("KETAFLOW_STATIC_MANIFEST", "0")
    os.environ.setdefault("KETAFLOW_FAST_PASSWORD_HASHING", "1")
    os.environ.setdefault("KETAFLOW_DOMAIN_APPS", "intake")
    os.environ.setdefault("KETAFLOW_EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
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
    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    print(f"database: {engine}; domain apps: {os.environ['KETAFLOW_DOMAIN_APPS']}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    _setup()
    from django.test import Client

    from benchmarks.web_bench import _report, _signed_in_client, _time
    from ketaflow.accounts.models import User
    from ketaflow.intake import services
    from ketaflow.intake.models import ConsultationRequest, RequestAttempt
    from ketaflow.patients.models import Patient
    from ketaflow.tenancy.models import Clinic, Location, Membership

    clinic = Clinic.objects.create(
        name="Bench Intake (synthetic)", slug=f"bench-intake-{time.time_ns()}"
    )
    Location.objects.create(clinic=clinic, name="Main")
    users = {}
    for role in ("prescriber", "nurse", "front_desk"):
        user = User.objects.create_user(
            email=f"{role}.{clinic.slug}@bench.example.test",
            password="bench password 12345",  # noqa: S106 - throwaway benchmark database
            full_name=f"Bench {role}-Synth",
        )
        Membership.objects.create(user=user, clinic=clinic, roles=[role])
        users[role] = user

    rows = [
        ConsultationRequest(
            clinic=clinic,
            given_name=f"Req{i}",
            family_name="Bench-Synth",
            date_of_birth=datetime.date(1980, 1, 1),
            phone="555 010 0000",
            seeking=["depression"],
            summary=("likely", "review", "not_suitable")[i % 3],
            status=("new", "contacted", "booked", "declined")[i % 4],
        )
        for i in range(args.requests)
    ]
    ConsultationRequest.objects.bulk_create(rows, batch_size=1000)
    desk = _signed_in_client(users["front_desk"])
    print(f"intake queue ({args.requests} requests):")
    samples, queries = _time(desk, "get", "/intake/", None, args.repeat)
    _report("GET /intake/ (all statuses)", samples, queries, 200)
    samples, queries = _time(desk, "get", "/intake/?status=new", None, args.repeat)
    _report("GET /intake/?status=new", samples, queries, 200)

    patient = Patient.objects.create(
        clinic=clinic,
        mrn="B-1",
        legal_given_name="Bench",
        legal_family_name="Patient-Synth",
        date_of_birth=datetime.date(1980, 1, 1),
        sex_assigned_at_birth="female",
        status="active",
    )
    services.ensure_default_documents(clinic=clinic)
    trials = [
        {
            "drug": f"drug{i}",
            "dose": "",
            "weeks": 8.0,
            "adequate_dose": True,
            "current_episode": True,
            "outcome": "no_response",
        }
        for i in range(6)
    ]
    doc = _signed_in_client(users["prescriber"])
    doc.get("/today/")
    print("Assessment tab (queries must not grow with history):")
    from ketaflow.intake import selectors

    for n in (1, 50):
        while selectors.assessments(patient).count() < n:
            a = services.save_assessment(
                patient=patient,
                actor=users["nurse"],
                fields={"systolic": 130, "diastolic": 80},
                diagnoses=[{"code": "F33.2", "description": "MDD"}],
                trials=trials,
            )
            a = services.sign_assessment(assessment=a, actor=users["prescriber"])
            services.add_addendum(assessment=a, actor=users["nurse"], text="bench addendum")
            services.record_decision(
                patient=patient,
                actor=users["prescriber"],
                decision="approve",
                routes=["iv-ketamine"],
            )
            services.sign_consent(
                patient=patient,
                actor=users["nurse"],
                route="iv-ketamine",
                typed_name=patient.legal_name,
                agreed=True,
            )
        samples, queries = _time(
            doc, "get", f"/patients/{patient.pk}/assessment/", None, args.repeat
        )
        _report(f"Assessment tab, {n} assessment(s)", samples, queries, 150)

    print("public request submission:")
    data = {
        "given_name": "Pub",
        "family_name": "Bench-Synth",
        "date_of_birth": "1980-01-01",
        "phone": "555 010 1111",
        "seeking": ["depression"],
        "diagnosed_depression": "yes",
        "antidepressants_tried": "3",
        "antidepressant_helped": "no",
        "therapy_tried": "yes",
        "referred": "no",
        "pregnant": "no",
        "heart_bp": "no",
        "psychosis_mania": "no",
        "substance_use": "no",
        "consent_to_contact": "on",
        **{f"phq9_{k}": "1" for k in range(1, 10)},
        "phq9_difficulty": "1",
    }
    samples = []
    for i in range(args.repeat):
        RequestAttempt.objects.all().delete()  # stay under the rate limit while timing
        client = Client(REMOTE_ADDR=f"198.51.100.{i % 250}")
        start = time.perf_counter()
        response = client.post(f"/intake/request/{clinic.slug}/", data)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 302, response.status_code
    _report("POST /intake/request/<slug>/", samples, 0, 100)


if __name__ == "__main__":
    main()
