"""Server-side timings of the patient search, the chart page and the audit trail."""

import contextlib
import datetime
import os
import random
import statistics
import time
from contextlib import contextmanager
from unittest import mock

from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from ketaflow.accounts.models import User
from ketaflow.audit import selectors as audit_selectors
from ketaflow.audit import services as audit_services
from ketaflow.audit.models import AuditChainHead, AuditEvent
from ketaflow.patients.models import Patient, search_key
from ketaflow.tenancy.models import Clinic, Location, Membership
from ketaflow.web.demo import FAMILY, GIVEN


def _stats(samples_ms):
    samples_ms = sorted(samples_ms)
    p95 = samples_ms[min(len(samples_ms) - 1, round(0.95 * (len(samples_ms) - 1)))]
    return statistics.median(samples_ms), p95


def _report(label, samples_ms, queries, target_ms=None):
    median, p95 = _stats(samples_ms)
    line = f"  {label:<46} median {median:7.2f} ms   p95 {p95:7.2f} ms   queries {queries:3d}"
    if target_ms:
        line += f"   target < {target_ms} ms: {'met' if median < target_ms else 'NOT met'} (ratio {median / target_ms:.2f})"
    print(line, flush=True)
    return median


def _time(client, method, url, data, repeat):
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = (
            getattr(client, method)(url, data) if data is not None else getattr(client, method)(url)
        )
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    with CaptureQueriesContext(connection) as ctx:
        getattr(client, method)(url, data) if data is not None else getattr(client, method)(url)
    return samples, len(ctx.captured_queries)


def _signed_in_client(user):
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from ketaflow.accounts.middleware import AUTH_AT, EPOCH, LAST_SEEN

    device, _ = TOTPDevice.objects.get_or_create(
        user=user, name="bench", defaults={"confirmed": True}
    )
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session[AUTH_AT] = session[LAST_SEEN] = time.time() + 3600  # no idle expiry during the run
    session[EPOCH] = user.session_epoch
    session.save()
    return client


def _world(name):
    clinic, _ = Clinic.objects.get_or_create(
        slug=f"bench-{name}", defaults={"name": f"Bench {name} (synthetic)"}
    )
    location, _ = Location.objects.get_or_create(clinic=clinic, name="Main")
    user, _ = User.objects.get_or_create(
        email=f"{name}@bench.ketaflow.test", defaults={"full_name": "Bench-Synth"}
    )
    Membership.objects.get_or_create(
        user=user, clinic=clinic, defaults={"roles": ["owner", "prescriber"]}
    )
    return clinic, location, user


def _load_patients(clinic, location, n):
    existing = Patient.objects.filter(clinic=clinic).count()
    rng = random.Random(1)
    batch = []
    start = time.perf_counter()
    for i in range(existing, n):
        family = f"{rng.choice(FAMILY)}{i:06d}-Synth"
        given = rng.choice(GIVEN)
        batch.append(
            Patient(
                clinic=clinic,
                mrn=f"B-{i:07d}",
                legal_given_name=given,
                legal_family_name=family,
                date_of_birth=datetime.date(1940, 1, 1)
                + datetime.timedelta(days=rng.randrange(25000)),
                sex_assigned_at_birth="female",
                status="active",
                preferred_location=location,
                family_key=search_key(family),
                given_key=search_key(given),
            )
        )
        if len(batch) == 5000:
            Patient.objects.bulk_create(batch)
            batch = []
    if batch:
        Patient.objects.bulk_create(batch)
    print(f"  loaded {n - existing} patients in {time.perf_counter() - start:.1f} s")


def bench_patients(n, repeat):
    print(
        f"\nPatient search and chart at {n:,} patients (issue 2: search < 50 ms; constant queries)"
    )
    clinic, location, user = _world("patients")
    _load_patients(clinic, location, n)
    client = _signed_in_client(user)
    sample = Patient.objects.filter(clinic=clinic).order_by("id")[n // 2]
    cases = [
        ("search: family-name prefix 'garc'", {"q": "garc"}),
        ("search: two tokens 'dana alv'", {"q": "dana alv"}),
        ("search: MRN", {"q": sample.mrn}),
        ("search: date of birth", {"q": sample.date_of_birth.isoformat()}),
        ("search: no match", {"q": "zzzz"}),
    ]
    for label, data in cases:
        samples, queries = _time(client, "post", "/patients/", data, repeat)
        _report(label, samples, queries, target_ms=50)
    for label, url in (
        ("chart page (overview)", f"/patients/{sample.pk}/"),
        ("chart activity tab", f"/patients/{sample.pk}/activity/"),
    ):
        samples, queries = _time(client, "get", url, None, repeat)
        _report(label, samples, queries)
    with transaction.atomic():
        for _ in range(500):
            audit_services.record(
                action="read", clinic=clinic, actor=user, patient=sample, obj=sample
            )
    for label, url in (
        ("chart page, 500 more history events", f"/patients/{sample.pk}/"),
        ("activity tab, 500 more events", f"/patients/{sample.pk}/activity/"),
    ):
        samples, queries = _time(client, "get", url, None, repeat)
        _report(label, samples, queries)


@contextmanager
def _audit_off():
    with mock.patch.object(audit_services, "record", lambda **kwargs: None):
        yield


def _load_events(clinic, user, patient, n):
    existing = AuditEvent.objects.filter(clinic=clinic).count()
    if existing >= n:
        return
    start = time.perf_counter()
    rng = random.Random(2)
    actions = ["read", "read", "read", "update", "create", "login"]
    head = AuditChainHead.objects.get_or_create(
        chain=audit_services.chain_key(clinic), defaults={"hash": audit_services.GENESIS}
    )[0]
    seq = head.seq
    t0 = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    batch = []
    for _ in range(existing, n):
        seq += 1
        batch.append(
            AuditEvent(
                chain=head.chain,
                seq=seq,
                clinic=clinic,
                actor=user,
                actor_label=user.email,
                patient=patient if rng.random() < 0.001 else None,
                action=rng.choice(actions),
                object_type="patients.patient",
                object_id=str(rng.randrange(100000)),
                at=t0 + datetime.timedelta(seconds=seq * 30),
                detail={},
                prev_hash="0" * 64,
                hash="0" * 64,
            )
        )
        if len(batch) == 10000:
            AuditEvent.objects.bulk_create(batch)
            batch = []
    if batch:
        AuditEvent.objects.bulk_create(batch)
    # Benchmark rows carry dummy hashes; the head continues from them so new events chain on.
    AuditChainHead.objects.filter(pk=head.pk).update(seq=seq, hash="0" * 64)
    print(f"  loaded {n - existing:,} audit events in {time.perf_counter() - start:.1f} s")


def _interleaved(request, repeat):
    """Time ``request()`` with the audit trail on and off, alternating sample by sample.

    Alternating keeps the two sets of samples under the same machine load and cache state;
    timing all "on" requests before all "off" ones credited the later set with a warmer run.
    """
    on, off = [], []
    patcher = mock.patch.object(audit_services, "record", lambda **kwargs: None)
    request()  # warm up both paths
    with _audit_off():
        request()
    for _ in range(repeat):
        for samples, audited in ((on, True), (off, False)):
            if not audited:
                patcher.start()
            try:
                start = time.perf_counter()
                request()
                samples.append((time.perf_counter() - start) * 1000)
            finally:
                if not audited:
                    patcher.stop()
    return on, off


def _count_queries(request, audited):
    with (
        _audit_off() if not audited else contextlib.nullcontext(),
        CaptureQueriesContext(connection) as ctx,
    ):
        request()
    return len(ctx.captured_queries)


def bench_audit(n, repeat):
    print(
        f"\nCost of the audit trail at {n:,} existing events (issue 3: < 2 ms per request; report < 200 ms)"
    )
    clinic, location, user = _world("audit")
    _load_patients(clinic, location, 1000)
    patient = Patient.objects.filter(clinic=clinic).first()
    _load_events(clinic, user, patient, n)
    client = _signed_in_client(user)
    url = f"/patients/{patient.pk}/"
    edit = f"/patients/{patient.pk}/edit/"
    form = {
        k: ("" if v is None else v) for k, v in Patient.objects.values().get(pk=patient.pk).items()
    }
    form.update(preferred_location=location.pk, prescriber="", therapist="")
    writes = iter(range(10**9))

    def read():
        response = client.get(url)
        assert response.status_code == 200, response.status_code

    def write():
        form["pronouns"] = f"they/them {next(writes)}"
        response = client.post(edit, form)
        assert response.status_code == 302, response.content[:500]

    print(
        f"  load average {os.getloadavg()[0]:.2f} (2 cores shared: compare runs made back to back)"
    )
    for label, request in (("chart page", read), ("demographics write", write)):
        on, off = _interleaved(request, repeat)
        median_on = _report(f"{label}, audit on", on, _count_queries(request, True))
        median_off = _report(f"{label}, audit off", off, _count_queries(request, False))
        added = median_on - median_off
        print(
            f"  audit adds {added:6.2f} ms per {label} request (target < 2 ms: {'met' if added < 2 else 'NOT met'})"
        )
    owner = client
    since = (datetime.datetime(2025, 1, 1) + datetime.timedelta(seconds=n * 15)).date().isoformat()
    filters = (
        [
            ("report: first page, no filter", {}),
            ("report: one user", {"user": user.pk}),
            ("report: one patient", {"patient": patient.pk}),
            ("report: action=update", {"action": "update"}),
            ("report: action=lockout (no rows)", {"action": "lockout"}),
            ("report: object type", {"object_type": "patients.patient"}),
            ("report: emergency access only", {"emergency": "1"}),
            ("report: date range + action", {"date_from": since, "action": "read"}),
        ]
        + [(f"report: sorted by {key}", {"sort": key}) for key in audit_selectors.SORTABLE]
        + [("report: sorted by -action", {"sort": "-action"})]
    )
    # Fewer samples per report query: an unindexed sort takes seconds at a million events.
    report_repeat = max(5, repeat // 5)
    for label, params in filters:
        samples, queries = _time(owner, "get", "/audit/", params, report_repeat)
        _report(label, samples, queries, target_ms=200)
    samples, queries = _time(owner, "get", f"/patients/{patient.pk}/activity/", None, report_repeat)
    _report("chart activity tab", samples, queries, target_ms=200)
