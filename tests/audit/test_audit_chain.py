import itertools

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from ketaflow.audit import services as audit
from ketaflow.audit.models import AppendOnlyError, AuditChainHead, AuditEvent


@pytest.fixture
def chain(clinic, staff):
    return [
        audit.record(
            action="create",
            clinic=clinic,
            actor=staff["owner"],
            object_type="x",
            object_id=str(i),
            detail={"n": i},
        )
        for i in range(5)
    ]


def _raw(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_chain_links_every_event_and_verifies(chain, capsys):
    assert [e.seq for e in chain] == [1, 2, 3, 4, 5]
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(chain))
    result = audit.verify()
    assert result.ok and result.events == 5 and not result.anchored
    # Intact but not anchored yet: exit 2, saying what to run.
    with pytest.raises(CommandError, match="no anchor yet") as raised:
        call_command("audit", "verify")
    assert raised.value.returncode == 2
    call_command("audit", "checkpoint")
    call_command("audit", "verify")
    out = capsys.readouterr().out
    assert "Checkpoint: started the anchor with line 1 (clinic:" in out
    assert "Audit trail intact: 5 events in 1 chain(s); anchor: 1 line(s)" in out


def test_event_hash_is_keyed_with_the_audit_key(chain, settings):
    """Recomputing an event's SHA-256 is not enough to forge it: the hash is an HMAC."""
    import hashlib
    import hmac

    event = chain[2]
    assert event.hash != audit.legacy_hash(event)
    with open(settings.KETAFLOW_AUDIT_KEY_FILE) as handle:
        secret = handle.read().strip().encode()
    expected = hmac.new(
        secret,
        b"ketaflow-audit-event\0" + audit._canonical(audit.event_fields(event)),
        hashlib.sha256,
    ).hexdigest()
    assert event.hash == expected


def test_changed_field_is_named(chain):
    _raw("UPDATE audit_auditevent SET action = %s WHERE id = %s", ["delete", chain[2].pk])
    result = audit.verify()
    assert not result.ok and result.event_id == chain[2].pk
    assert "changed" in result.problem
    with pytest.raises(CommandError, match=f"event id {chain[2].pk}"):
        call_command("audit", "verify")


def test_changed_detail_is_detected(chain):
    _raw("UPDATE audit_auditevent SET detail = %s WHERE id = %s", ['{"n": 99}', chain[1].pk])
    assert audit.verify().event_id == chain[1].pk


def test_deleted_row_is_detected(chain):
    _raw("DELETE FROM audit_auditevent WHERE id = %s", [chain[2].pk])
    result = audit.verify()
    assert not result.ok and "#3" in result.problem and "missing" in result.problem


def test_deleted_last_row_is_detected(chain):
    _raw("DELETE FROM audit_auditevent WHERE id = %s", [chain[4].pk])
    result = audit.verify()
    assert not result.ok and "removed from its end" in result.problem


def test_inserted_row_is_detected(chain, clinic):
    forged = chain[1]
    _raw(
        "UPDATE audit_auditevent SET seq = seq + 100 WHERE chain = %s AND seq >= 3", [forged.chain]
    )
    _raw(
        "INSERT INTO audit_auditevent (chain, seq, clinic_id, actor_label, action, object_type, object_id, at, "
        "client_address, user_agent, request_id, detail, emergency, prev_hash, hash) "
        "VALUES (%s, 3, %s, 'forger', 'read', '', '', %s, '', '', '', '{}', %s, %s, %s)",
        [forged.chain, clinic.pk, forged.at, False, forged.hash, "f" * 64],
    )
    result = audit.verify()
    assert not result.ok
    assert result.seq == 3


def test_application_cannot_change_or_delete(chain):
    event = chain[0]
    event.action = "delete"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(action="read")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()


def test_chains_are_per_clinic(clinic, other_clinic, staff):
    a = audit.record(action="read", clinic=clinic, actor=staff["owner"])
    b = audit.record(action="read", clinic=other_clinic)
    c = audit.record(action="login-failed", actor_label="nobody@example.test")
    assert (a.chain, a.seq) == (f"clinic:{clinic.pk}", 1)
    assert (b.chain, b.seq) == (f"clinic:{other_clinic.pk}", 1)
    assert (c.chain, c.clinic_id) == ("global", None)
    assert audit.verify().ok


def test_rolled_back_write_leaves_no_event(clinic, staff):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        audit.record(action="create", clinic=clinic, actor=staff["owner"])
        raise RuntimeError("the change failed")
    assert not AuditEvent.objects.exists()
    assert audit.verify().ok
    assert audit.record(action="create", clinic=clinic, actor=staff["owner"]).seq == 1


def test_appending_costs_two_statements_on_postgresql_three_on_sqlite(
    clinic, staff, django_assert_num_queries
):
    audit.record(action="read", clinic=clinic, actor=staff["owner"])  # the chain's head exists now
    # PostgreSQL: lock and read the head; insert the event and advance the head in one statement.
    # SQLite: read the head (the transaction already holds the write lock), insert, advance.
    expected = 2 if connection.vendor == "postgresql" else 3
    with django_assert_num_queries(expected) as ctx:
        event = audit.record(action="read", clinic=clinic, actor=staff["owner"], detail={"x": 1})
    sql = [q["sql"] for q in ctx.captured_queries]
    assert "SAVEPOINT" not in " ".join(sql)
    if connection.vendor == "postgresql":
        assert sql[0].endswith("FOR UPDATE")
    head = AuditChainHead.objects.get(chain=event.chain)
    assert (head.seq, head.hash) == (event.seq, event.hash)


def test_returned_event_is_the_stored_row(clinic, staff, patient):
    event = audit.record(
        action="update",
        clinic=clinic,
        actor=staff["nurse"],
        patient=patient,
        obj=patient,
        detail={"fields": ["pronouns", "phone"], "nested": {"n": 1.5, "ok": True}},
        emergency=True,
    )
    stored = AuditEvent.objects.get(pk=event.pk)
    assert audit.event_fields(stored) == audit.event_fields(event)
    assert audit.compute_hash(stored) == stored.hash == event.hash
    assert (stored.actor, stored.patient, stored.clinic) == (staff["nurse"], patient, clinic)
    assert stored.actor_label == staff["nurse"].email
    assert (stored.object_type, stored.object_id) == ("patients.patient", str(patient.pk))
    with pytest.raises(AppendOnlyError):
        event.save()


def test_unknown_action_is_refused_and_writes_nothing(clinic):
    from django.db import transaction

    with pytest.raises(ValueError, match="Unknown audit action 'erase'"), transaction.atomic():
        audit.record(action="erase", clinic=clinic)
    assert not AuditEvent.objects.exists()
    assert not AuditChainHead.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_form_one_unbroken_chain(clinic, staff):
    """Writers racing on a new chain (its head row not yet made) and then on its head."""
    from django.db import transaction

    from ketaflow.testing.concurrency import at_once, retry_locked

    writers, per_writer = 4, 5

    def append(n):
        with transaction.atomic():
            audit.record(action="read", clinic=clinic, actor=staff["owner"], object_id=str(n))

    def writer(w):
        for i in range(per_writer):
            retry_locked(lambda n=w * 100 + i: append(n))

    assert at_once(*(lambda w=w: writer(w) for w in range(writers))) == [None] * writers
    events = list(AuditEvent.objects.filter(chain=f"clinic:{clinic.pk}").order_by("seq"))
    total = writers * per_writer
    assert [e.seq for e in events] == list(range(1, total + 1))
    assert sorted(int(e.object_id) for e in events) == sorted(
        w * 100 + i for w in range(writers) for i in range(per_writer)
    )
    assert events[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
    assert AuditChainHead.objects.get(chain=f"clinic:{clinic.pk}").seq == total
    assert audit.verify().ok


def test_migrations_match_the_models(db):
    call_command("makemigrations", "audit", "--check", "--dry-run", verbosity=0)


def test_no_single_column_foreign_key_indexes_each_report_sort_indexed(db):
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, AuditEvent._meta.db_table)
    indexed = {
        tuple(info["columns"])
        for info in constraints.values()
        if (info["index"] or info["unique"]) and not info["primary_key"]
    }
    for column in ("clinic_id", "actor_id", "patient_id"):
        assert (column,) not in indexed
    for column in (
        "actor_id",
        "patient_id",
        "action",
        "object_type",
        "actor_label",
        "client_address",
    ):
        assert ("clinic_id", column, "at") in indexed
    assert ("clinic_id", "at") in indexed
    assert ("chain", "seq") in indexed
