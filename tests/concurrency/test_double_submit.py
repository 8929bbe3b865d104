"""The same action submitted twice (or eight times) at once: exactly one succeeds, the others
get a clear 409 naming what happened, never a 500 from a unique violation.

Issue 16 finding 3: simultaneous check-ins of one visit returned 500s (the service checked for
an existing session, then inserted one, with no lock)."""

import pytest
from django.db import connection

from ketaflow.audit.models import AuditEvent
from ketaflow.testing.concurrency import at_once, failures
from ketaflow.treatment import services
from ketaflow.treatment.models import SessionAlert, SessionNote, TreatmentSession

API = "/api/v1/treatment"


#: Races over HTTP need PostgreSQL: SQLite's in-memory test database refuses a locked table at
#: once instead of waiting, even to a read after the action committed, so a retried request
#: would submit the action again. The same races run through the services on both databases.
over_http = pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason="SQLite's in-memory test database cannot retry HTTP requests safely",
)


def _posts(clients, url, body):
    return at_once(
        *(lambda c=c: c.post(url, body, content_type="application/json") for c in clients)
    )


def _one_success(responses, ok):
    assert not failures(responses), failures(responses)
    codes = sorted(r.status_code for r in responses)
    assert codes == [ok] + [409] * (len(responses) - 1), codes
    return [r.json()["detail"] for r in responses if r.status_code == 409]


@over_http
@pytest.mark.django_db(transaction=True)
def test_eight_check_ins_of_one_visit_open_one_session(
    clinic, make_user, token_client, dosing_appointment
):
    appointment = dosing_appointment()
    nurses = [token_client(make_user(clinic, "nurse")) for _ in range(8)]
    refused = _one_success(
        _posts(nurses, f"{API}/sessions", {"appointment_id": appointment.pk}), 201
    )
    assert all("already has a session" in d and "checked in by" in d for d in refused), refused
    assert TreatmentSession.objects.filter(appointment=appointment).count() == 1
    assert AuditEvent.objects.filter(object_type="treatment.treatmentsession").count() == 1


@pytest.mark.django_db(transaction=True)
def test_check_in_twice_through_the_services(clinic, staff, make_user, dosing_appointment):
    appointment = dosing_appointment()
    other = make_user(clinic, "nurse")
    results = at_once(
        lambda: services.open_session(appointment=appointment, actor=staff["nurse"]),
        lambda: services.open_session(appointment=appointment, actor=other),
    )
    (refused,) = failures(results)
    assert isinstance(refused, services.AlreadyDone), repr(refused)
    assert TreatmentSession.objects.filter(appointment=appointment).count() == 1


@over_http
@pytest.mark.django_db(transaction=True)
def test_discharge_twice_at_once(clinic, staff, make_user, token_client, session_at):
    s = session_at("ready")
    nurses = [token_client(staff["nurse"]), token_client(make_user(clinic, "nurse"))]
    (refused,) = _one_success(_posts(nurses, f"{API}/sessions/{s.pk}/discharge", {}), 200)
    assert refused.startswith("state: Already discharged at") or "Already discharged" in refused
    s.refresh_from_db()
    assert s.state == "discharged"
    assert AuditEvent.objects.filter(detail__discharged=True).count() == 1


@over_http
@pytest.mark.django_db(transaction=True)
def test_sign_the_note_twice_at_once(clinic, staff, make_user, token_client, session_at):
    s = session_at("discharged")
    nurses = [token_client(staff["nurse"]), token_client(make_user(clinic, "nurse"))]
    body = {"free_text": "Uneventful (synthetic)."}
    (refused,) = _one_success(_posts(nurses, f"{API}/sessions/{s.pk}/note/sign", body), 200)
    assert "is signed" in refused
    assert SessionNote.objects.filter(session=s, signed_at__isnull=False).count() == 1
    assert (
        AuditEvent.objects.filter(action="sign", object_type="treatment.sessionnote").count() == 1
    )


@over_http
@pytest.mark.django_db(transaction=True)
def test_acknowledge_an_alert_from_four_clients_at_once(
    clinic, staff, make_user, token_client, session_at
):
    s = session_at("monitoring")
    services.record_vitals(session=s, actor=staff["nurse"], values={"spo2": 88})
    alert = SessionAlert.objects.get(session=s)
    clients = [token_client(make_user(clinic, "nurse")) for _ in range(4)]
    refused = _one_success(
        _posts(clients, f"{API}/alerts/{alert.pk}/acknowledge", {"action": "observe"}), 200
    )
    assert all(d.startswith("Already acknowledged by") for d in refused), refused
    assert AuditEvent.objects.filter(object_type="treatment.sessionalert").count() == 1


@pytest.mark.django_db(transaction=True)
def test_discharge_and_sign_twice_through_the_services(clinic, staff, make_user, session_at):
    s = session_at("ready")
    other = make_user(clinic, "nurse")
    twice = at_once(
        lambda: services.discharge(session=s, actor=staff["nurse"]),
        lambda: services.discharge(session=s, actor=other),
    )
    (refused,) = failures(twice)
    assert isinstance(refused, services.AlreadyDone), repr(refused)
    signs = at_once(
        lambda: services.sign_note(session=s, actor=staff["nurse"]),
        lambda: services.sign_note(session=s, actor=other),
    )
    (refused,) = failures(signs)
    assert isinstance(refused, services.SignedRecordError), repr(refused)
    assert SessionNote.objects.filter(session=s, signed_at__isnull=False).count() == 1
