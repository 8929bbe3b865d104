"""Fixtures of the concurrency suite: real transactions, one connection per thread.

No access matrix here: these tests drive existing routes and services from several threads.
The helpers that build appointments and sessions come from the treatment tests' module."""

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "concurrency_treatment_helpers",
    Path(__file__).resolve().parents[1] / "treatment" / "access_matrix.py",
)
treatment = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(treatment)


@pytest.fixture(autouse=True)
def consent_on_file(monkeypatch):
    """Intake's consent check is tested elsewhere; sessions here assume a signed consent."""
    from ketaflow.treatment import services

    monkeypatch.setattr(services, "consent_valid", lambda session: True)


@pytest.fixture
def session_at(clinic, staff, make_patient):
    """A treatment session of a new patient, charted up to state ``to`` (treatment builder)."""
    from ketaflow.treatment import builder

    def make(to="monitoring", route="iv"):
        appointment = treatment.make_appointment(clinic, staff, make_patient(clinic), route=route)
        return builder.build(
            appointment, to=to, nurse=staff["nurse"], prescriber=staff["prescriber"]
        )

    return make


@pytest.fixture
def dosing_appointment(clinic, staff, make_patient):
    """A booked dosing appointment (with a signed plan) of a new patient, starting now."""

    def make(route="iv"):
        return treatment.make_appointment(clinic, staff, make_patient(clinic), route=route)

    return make


@pytest.fixture
def make_plan(clinic, staff):
    """An active, signed treatment plan of ``patient`` (treatment test helper)."""

    def make(patient, route="iv"):
        return treatment.make_plan(clinic, patient, staff["prescriber"], route=route)

    return make


@pytest.fixture(autouse=True)
def lock_timeout():
    """On PostgreSQL a lock wait that a bug left without end fails the test after 20 s
    instead of hanging the run (a real deadlock is detected after 1 s anyway)."""
    from django.db.backends.signals import connection_created

    def limit(sender, connection, **kwargs):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '20s'")

    connection_created.connect(limit)
    yield
    connection_created.disconnect(limit)


@pytest.fixture
def token_client(clinic):
    """An API client for ``user`` authenticated by a read-write token.

    Not the browser session: the session middleware saves the session after the response, and
    SQLite's in-memory test database can refuse that write ("table is locked") after the
    action committed, so retrying the request would submit it twice. A token writes nothing
    after the action."""
    from django.test import Client

    from ketaflow.accounts import services as access

    def make(user):
        raw = access.create_api_token(
            user=user, clinic=clinic, name="load", scope="read-write", days=1
        )[1]
        return Client(headers={"Authorization": f"Bearer {raw}"})

    return make


@pytest.fixture(autouse=True)
def audit_head_locked_last():
    """Every test here also checks the lock order's last rule on PostgreSQL: no row lock is
    taken after the audit chain head in a transaction (ketaflow.testing.concurrency)."""
    from ketaflow.testing.concurrency import head_locked_last

    with head_locked_last() as late:
        yield late
    assert late == [], f"row locks taken after the audit chain head: {late[:3]}"
