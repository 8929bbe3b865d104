import itertools

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from ketaflow.audit import services as audit
from ketaflow.audit.models import AppendOnlyError, AuditEvent


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


def test_chain_links_every_event_and_verifies(chain):
    assert [e.seq for e in chain] == [1, 2, 3, 4, 5]
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(chain))
    result = audit.verify()
    assert result.ok and result.events == 5
    call_command("audit", "verify")


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


def test_appending_costs_three_queries(clinic, staff, django_assert_num_queries):
    audit.record(action="read", clinic=clinic, actor=staff["owner"])  # the chain's head exists now
    with django_assert_num_queries(3):  # lock the head, insert the event, advance the head
        audit.record(action="read", clinic=clinic, actor=staff["owner"], detail={"x": 1})
