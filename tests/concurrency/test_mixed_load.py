"""Charting, reading and registering at the same time in one clinic: no deadlock, no error.

Issue 16 finding 2: on PostgreSQL, 4 threads charting vitals and 4 reading charts gave
`deadlock detected` 500s within seconds (a charting transaction locked the clinic row FOR
UPDATE through select_related, and a read held the audit chain head while its event's
foreign key check needed FOR KEY SHARE on that clinic row)."""

import datetime
import itertools

import pytest
from django.db import connection
from django.test import Client

from ketaflow.audit.models import AuditEvent
from ketaflow.patients.models import Patient
from ketaflow.testing.concurrency import at_once, failures, repeat
from ketaflow.treatment.models import VitalSign
from tests.conftest import sign_in

API = "/api/v1"
ROUNDS = 6
_names = itertools.count(1)


def _json(client, url, body):
    return client.post(url, body, content_type="application/json")


@pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason="the race is PostgreSQL's (row locks); SQLite runs one writer at a time, and its "
    "in-memory test database refuses a locked table instead of waiting, so HTTP requests "
    "cannot be retried safely",
)
@pytest.mark.django_db(transaction=True)
def test_vitals_reads_and_registrations_together_never_fail(
    clinic, make_user, session_at, token_client
):
    sessions = [session_at("monitoring"), session_at("monitoring")]
    nurses = [token_client(make_user(clinic, "nurse")) for _ in range(4)]
    # Reads through the browser session (the chart page) and the API: retried reads on
    # SQLite's in-memory database are harmless.
    readers = [sign_in(Client(), make_user(clinic, "prescriber")) for _ in range(4)]
    desks = [token_client(make_user(clinic, "front_desk")) for _ in range(2)]
    vitals_before = VitalSign.objects.count()
    patients_before = Patient.objects.count()

    def chart(client, n):
        def one(i):
            s = sessions[(n + i) % 2]
            r = _json(
                client,
                f"{API}/treatment/sessions/{s.pk}/vitals",
                {"systolic": 118 + i, "diastolic": 76, "heart_rate": 70 + n, "spo2": 98},
            )
            assert r.status_code == 201, r.content
            return r.status_code

        return lambda: repeat(one, ROUNDS)

    def read(client, n):
        def one(i):
            s = sessions[(n + i) % 2]
            url = (
                f"/patients/{s.patient_id}/",
                f"{API}/treatment/sessions/{s.pk}",
                f"{API}/patients/{s.patient_id}",
            )[(n + i) % 3]
            r = client.get(url)
            assert r.status_code == 200, (url, r.status_code)
            return r.status_code

        return lambda: repeat(one, ROUNDS)

    def register(client):
        def one(i):
            k = next(_names)
            r = _json(
                client,
                f"{API}/patients",
                {
                    "legal_given_name": f"Load{k}",
                    "legal_family_name": "Parallel-Synth",
                    "date_of_birth": (
                        datetime.date(1970, 1, 1) + datetime.timedelta(days=k)
                    ).isoformat(),
                    "sex_assigned_at_birth": "male",
                },
            )
            assert r.status_code == 201, r.content
            return r.json()["mrn"]

        return lambda: repeat(one, ROUNDS)

    workers = [
        *(chart(c, n) for n, c in enumerate(nurses)),
        *(read(c, n) for n, c in enumerate(readers)),
        *(register(c) for c in desks),
    ]
    results = at_once(*workers)
    errors = [e for worker in results for e in failures(worker)]
    assert errors == [], errors[:3]
    assert VitalSign.objects.count() == vitals_before + 4 * ROUNDS
    mrns = [m for worker in results[8:] for m in worker]
    assert len(set(mrns)) == 2 * ROUNDS
    assert Patient.objects.count() == patients_before + 2 * ROUNDS
    assert AuditEvent.objects.filter(action="read").count() >= 4 * ROUNDS
