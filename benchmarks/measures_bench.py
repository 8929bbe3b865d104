"""Measures benchmarks (issue 4):

- the Measures tab of a patient with 500 administrations: constant queries, median < 100 ms;
- a clinic outcome report over 100,000 stored administrations: < 2 s.

Run:  .venv/bin/python -m benchmarks.measures_bench [--administrations 100000] [--repeat 30]
Builds a throwaway SQLite database under a temporary directory (or uses DATABASE_URL, e.g.
through scripts/with_postgres.py). The measures, intake, plans and scheduling domain apps are
installed (courses are treatment plans, treatments are completed dosing visits) unless
KETAFLOW_DOMAIN_APPS says otherwise.
"""

import argparse
import datetime
import os
import random
import sys
import tempfile
import time


def _setup():
    os.environ.setdefault("KETAFLOW_VAR_DIR", tempfile.mkdtemp(prefix="ketaflow-bench-"))
    os.environ.setdefault("KETAFLOW_HTTPS", "0")
    os.environ.setdefault("KETAFLOW_STATIC_MANIFEST", "0")
    os.environ.setdefault("KETAFLOW_FAST_PASSWORD_HASHING", "1")
    os.environ.setdefault("KETAFLOW_DOMAIN_APPS", "measures,intake,plans,scheduling")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ketaflow.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    call_command("migrate", verbosity=0)
    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    print(f"database: {engine}; domain apps: {os.environ['KETAFLOW_DOMAIN_APPS']}")


T0 = datetime.datetime(2024, 1, 1, 9, tzinfo=datetime.UTC)


def _courses(clinic, user, patient_ids, visit_days):
    """One active plan per patient and completed dosing visits on ``visit_days`` (bulk)."""
    from decimal import Decimal

    from ketaflow.clinical import protocols
    from ketaflow.plans.models import PlanVersion, TreatmentPlan
    from ketaflow.scheduling.defaults import ROUTE_TYPE, ensure_types
    from ketaflow.scheduling.models import Appointment

    protocol = protocols.get("iv-ketamine-clinic-6")
    data = protocols.to_dict(protocol)
    plans = TreatmentPlan.objects.bulk_create(
        TreatmentPlan(clinic=clinic, patient_id=pid, phase="induction", status="active")
        for pid in patient_ids
    )
    versions = PlanVersion.objects.bulk_create(
        PlanVersion(
            clinic=clinic,
            plan=plan,
            number=1,
            protocol_code=protocol.code,
            protocol_name=protocol.name,
            protocol_source=protocol.source,
            protocol_data=data,
            route=protocol.route,
            prescriber=user,
            phase="induction",
            dose_value=Decimal("0.5"),
            dose_unit="mg/kg",
            dose_mg=Decimal(40),
            weight_kg=Decimal(80),
            calculation={},
            start_date=T0.date(),
            goals="Bench (synthetic)",
            signed_by=user,
            signed_at=T0,
        )
        for plan in plans
    )
    for plan, version in zip(plans, versions, strict=True):
        plan.current = version
    TreatmentPlan.objects.bulk_update(plans, ["current"])
    kind = ensure_types(clinic)[ROUTE_TYPE[protocol.route]]
    location = clinic.locations.first()
    Appointment.objects.bulk_create(
        Appointment(
            clinic=clinic,
            patient_id=plan.patient_id,
            type=kind,
            location=location,
            start=T0 + datetime.timedelta(days=d),
            end=T0 + datetime.timedelta(days=d, minutes=kind.minutes),
            status="completed",
            plan=plan,
            booked_by=user,
        )
        for plan in plans
        for d in visit_days
    )
    return {plan.patient_id: plan.pk for plan in plans}


def _rows(clinic, patient, n, rng, start=T0, plan_id=None):
    from ketaflow.clinical import instruments
    from ketaflow.measures.models import Administration

    rows = []
    for i in range(n):
        code = "phq9" if i % 2 == 0 else "gad7"
        keys = [it.key for it in instruments.get(code).scored_items]
        answers = {k: rng.randint(0, 3) for k in keys}
        if code == "phq9":
            answers["9"] = 0
        result = instruments.score(code, answers)
        rows.append(
            Administration(
                clinic=clinic,
                patient_id=patient if isinstance(patient, int) else patient.pk,
                instrument=code,
                instrument_version="1",
                answers=result.items,
                total=result.total,
                severity=result.severity or "",
                flags=list(result.flags),
                source="self_report",
                taken_at=start + datetime.timedelta(hours=12 * i),
                plan_id=plan_id,
            )
        )
    return rows


def bench_tab(repeat):
    from benchmarks.web_bench import _report, _signed_in_client, _time, _world
    from ketaflow.measures.models import Administration
    from ketaflow.patients.models import Patient

    print("\nMeasures tab (issue 4: constant queries, median < 100 ms at 500 administrations)")
    clinic, location, user = _world("measures")
    rng = random.Random(4)
    patients = []
    for n, size in ((1, 5), (2, 500)):
        patient, created = Patient.objects.get_or_create(
            clinic=clinic,
            mrn=f"M-{n}",
            defaults={
                "legal_given_name": "Bench",
                "legal_family_name": f"Measures{n}-Synth",
                "date_of_birth": datetime.date(1980, 1, 1),
                "sex_assigned_at_birth": "female",
                "status": "active",
                "preferred_location": location,
            },
        )
        if created:
            plan_id = _courses(clinic, user, [patient.pk], range(1, 120, 4))[patient.pk]
            Administration.objects.bulk_create(
                _rows(
                    clinic,
                    patient,
                    size,
                    rng,
                    start=T0 - datetime.timedelta(days=1),
                    plan_id=plan_id,
                )
            )
        patients.append((size, patient))
    client = _signed_in_client(user)
    medians = {}
    queries = {}
    for size, patient in patients:
        for label, url in (
            (f"Measures tab, {size} administrations", f"/patients/{patient.pk}/measures/"),
            (f"Overview with chart, {size} administrations", f"/patients/{patient.pk}/"),
        ):
            samples, q = _time(client, "get", url, None, repeat)
            medians[label] = _report(label, samples, q, target_ms=100)
            queries[label] = q
    same = (
        queries["Measures tab, 5 administrations"] == queries["Measures tab, 500 administrations"]
    )
    print(f"  queries constant (5 vs 500 administrations): {'yes' if same else 'NO'}")


def bench_report(n):
    from benchmarks.web_bench import _world
    from ketaflow.clinical import instruments
    from ketaflow.measures import selectors
    from ketaflow.measures.models import Administration
    from ketaflow.patients.models import Patient

    per_patient = 100
    n_patients = max(1, n // per_patient)
    print(
        f"\nClinic outcome report over {n:,} administrations "
        f"({n_patients:,} patients x {per_patient}; issue 4: < 2 s)"
    )
    clinic, _location, user = _world("measures-report")
    existing = Administration.objects.filter(clinic=clinic).count()
    if existing < n:
        start = time.perf_counter()
        rng = random.Random(5)
        patients = Patient.objects.bulk_create(
            Patient(
                clinic=clinic,
                mrn=f"R-{i:06d}",
                legal_given_name="Report",
                legal_family_name=f"Patient{i:06d}-Synth",
                date_of_birth=datetime.date(1970, 1, 1),
                sex_assigned_at_birth="male",
                status="active",
            )
            for i in range(n_patients)
        )
        ids = [p.pk for p in patients] or list(
            Patient.objects.filter(clinic=clinic).values_list("pk", flat=True)
        )
        plan_of = _courses(clinic, user, ids, (3, 6, 10))
        batch = []
        for pid in ids:
            batch += _rows(clinic, pid, per_patient, rng, plan_id=plan_of[pid])
            if len(batch) >= 10000:
                Administration.objects.bulk_create(batch)
                batch = []
        Administration.objects.bulk_create(batch)
        print(f"  loaded {n:,} administrations in {time.perf_counter() - start:.1f} s")
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        rows = selectors.clinic_outcomes(clinic, "phq9")
        rows += selectors.clinic_outcomes(clinic, "gad7")
        samples.append(time.perf_counter() - start)
    best, median = min(samples), sorted(samples)[len(samples) // 2]
    responders = sum(1 for r in rows if r.response)
    print(
        f"  outcome report (PHQ-9 and GAD-7, all {n:,} rows): median {median:.3f} s, best "
        f"{best:.3f} s; {len(rows):,} patient rows, {responders:,} responders   target < 2 s: "
        f"{'met' if median < 2 else 'NOT met'} (ratio {median / 2:.2f})"
    )
    # Re-scoring every stored answer set with the instrument package (full validation of
    # every answer), as a clinic report that trusts nothing stored would do.
    samples, loads = [], []
    for _ in range(3):
        start = time.perf_counter()
        answers = list(
            Administration.objects.filter(clinic=clinic).values_list(
                "instrument", "answers", "total"
            )
        )
        loaded = time.perf_counter()
        score = instruments.score
        mismatches = sum(1 for code, a, total in answers if score(code, a).total != total)
        samples.append(time.perf_counter() - start)
        loads.append(loaded - start)
    took = sorted(samples)[1]
    load = sorted(loads)[1]
    print(
        f"  re-scoring all {len(answers):,} stored answer sets with instruments.score "
        f"(read + validate + score): median {took:.2f} s (of which reading {load:.2f} s, "
        f"scoring {took - load:.2f} s), {mismatches} mismatches   target < 2 s: "
        f"{'met' if took < 2 else 'NOT met'} (ratio {took / 2:.2f})"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.measures_bench")
    parser.add_argument("--administrations", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args(argv)
    _setup()
    bench_tab(args.repeat)
    bench_report(args.administrations)
    return 0


if __name__ == "__main__":
    sys.exit(main())
