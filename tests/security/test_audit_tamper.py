"""Tampering with the audit trail by someone with database access (and, for the anchor
kinds, file access): every kind is found by `ketaflow audit verify`, which exits non-zero
naming the first problem; an untouched trail verifies. Tampering uses raw SQL, as an
attacker would (the models refuse updates and deletes).

The trail: clinic A (120 events), clinic B (6) and the global chain (2), checkpointed three
times (A at #60 and #120, B at #3, #5 and #6, global at #2), so the anchor has three lines.
"""

import datetime
import json
import os

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from ketaflow.audit import integrity
from ketaflow.audit import services as audit
from ketaflow.audit.models import AuditChainHead, AuditEvent

EVENTS = "audit_auditevent"
HEADS = "audit_auditchainhead"


@pytest.fixture(autouse=True)
def anchor_file(settings, tmp_path, monkeypatch):
    monkeypatch.delenv("KETAFLOW_AUDIT_KEY", raising=False)
    settings.KETAFLOW_AUDIT_KEY_FILE = str(tmp_path / "audit_key")
    settings.KETAFLOW_AUDIT_ANCHOR = str(tmp_path / "audit-anchor" / "anchor.jsonl")
    return tmp_path / "audit-anchor" / "anchor.jsonl"


def _sql(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.rowcount


def _events(chain):
    return list(AuditEvent.objects.filter(chain=chain).order_by("seq"))


def _insert(event: AuditEvent):
    """Store an event with raw SQL, as given (seq, prev_hash and hash included)."""
    fields = [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(f.column for f in fields)
    values = [f.get_db_prep_save(getattr(event, f.attname), connection) for f in fields]
    _sql(f"INSERT INTO {EVENTS} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})", values)  # noqa: S608


def _forge(template: AuditEvent, **changes) -> AuditEvent:
    """A copy of ``template`` with ``changes`` and a correct *unkeyed* SHA-256 (all that an
    attacker without the audit key can compute)."""
    forged = AuditEvent(
        **{f.attname: getattr(template, f.attname) for f in AuditEvent._meta.concrete_fields}
    )
    forged.pk = None
    for name, value in changes.items():
        setattr(forged, name, value)
    forged.hash = audit.legacy_hash(forged)
    return forged


def _set_head(chain, seq, digest):
    _sql(f"UPDATE {HEADS} SET seq = %s, hash = %s WHERE chain = %s", [seq, digest, chain])  # noqa: S608


@pytest.fixture
def trail(clinic, other_clinic, staff, make_user, make_patient):
    patients = [make_patient(clinic), make_patient(clinic)]
    other_staff = make_user(other_clinic, "owner")

    def a(n):
        for i in range(n):
            audit.record(
                action="update" if i % 3 else "read",
                clinic=clinic,
                actor=staff["nurse"],
                patient=patients[0],
                obj=patients[0],
                detail={"fields": ["phone"], "i": i},
            )

    def b(n):
        for _ in range(n):
            audit.record(action="read", clinic=other_clinic, actor=other_staff)

    a(60)
    b(3)
    for _ in range(2):
        audit.record(action="login-failed", actor_label="nobody@example.test")
    integrity.checkpoint()
    a(60)
    b(2)
    integrity.checkpoint()
    b(1)
    integrity.checkpoint()
    return {
        "a": f"clinic:{clinic.pk}",
        "b": f"clinic:{other_clinic.pk}",
        "staff": staff,
        "patients": patients,
    }


def _detected(expect: str) -> str:
    result = audit.verify()
    assert not result.ok, "tampering went unnoticed"
    assert expect in result.problem, result.problem
    with pytest.raises(CommandError, match="Audit chain broken") as raised:
        call_command("audit", "verify")
    assert raised.value.returncode != 0
    return result.problem


def test_untouched_trail_verifies(trail, anchor_file, capsys):
    result = audit.verify()
    assert result.ok and result.anchored
    assert (result.chains, result.events, result.anchor_lines) == (3, 128, 3)
    call_command("audit", "verify")
    assert (
        "Audit trail intact: 128 events in 3 chain(s); anchor: 3 line(s)" in capsys.readouterr().out
    )
    lines = [json.loads(line) for line in anchor_file.read_text().splitlines()]
    assert lines[0]["chains"] == {
        trail["a"]: [60, _events(trail["a"])[59].hash],
        trail["b"]: [3, _events(trail["b"])[2].hash],
        "global": [2, _events("global")[1].hash],
    }
    assert [sorted(line["chains"]) for line in lines[1:]] == [
        sorted([trail["a"], trail["b"]]),
        [trail["b"]],
    ]
    assert oct(anchor_file.stat().st_mode & 0o777) == "0o600"


# --- one field of one event -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("detail", lambda t, e: '{"fields": ["legal_name"], "i": 1}'),
        ("actor_id", lambda t, e: t["staff"]["owner"].pk),
        ("patient_id", lambda t, e: t["patients"][1].pk),
        ("at", lambda t, e: e.at - datetime.timedelta(hours=3)),
        ("action", lambda t, e: "read" if e.action != "read" else "update"),
    ],
)
def test_one_field_changed(trail, column, value):
    event = _events(trail["a"])[40]
    _sql(f"UPDATE {EVENTS} SET {column} = %s WHERE id = %s", [value(trail, event), event.pk])  # noqa: S608
    problem = _detected("was changed after it was written")
    assert f"event id {event.pk} (#41 of {trail['a']})" in problem


# --- deletions ------------------------------------------------------------------------------


def test_middle_event_deleted(trail):
    _sql(f"DELETE FROM {EVENTS} WHERE chain = %s AND seq = 70", [trail["a"]])  # noqa: S608
    _detected(f"event #70 of chain {trail['a']} is missing")


def test_newest_event_deleted(trail):
    _sql(f"DELETE FROM {EVENTS} WHERE chain = %s AND seq = 120", [trail["a"]])  # noqa: S608
    _detected(f"chain {trail['a']} ends at #119, but the anchor checkpointed it at #120")


def test_newest_event_deleted_and_head_moved_back(trail):
    last = _events(trail["a"])[118]
    _sql(f"DELETE FROM {EVENTS} WHERE chain = %s AND seq = 120", [trail["a"]])  # noqa: S608
    _set_head(trail["a"], last.seq, last.hash)
    _detected("events were removed from its end")


def test_newest_50_deleted_and_head_moved_back(trail):
    last = _events(trail["a"])[69]
    _sql(f"DELETE FROM {EVENTS} WHERE chain = %s AND seq > 70", [trail["a"]])  # noqa: S608
    _set_head(trail["a"], last.seq, last.hash)
    _detected(f"chain {trail['a']} ends at #70, but the anchor checkpointed it at #120")


def test_head_row_deleted(trail):
    _sql(f"DELETE FROM {HEADS} WHERE chain = %s", [trail["a"]])  # noqa: S608
    _detected(f"chain {trail['a']} has events up to #120 but no head row")


def test_head_and_newest_50_deleted(trail):
    _sql(f"DELETE FROM {HEADS} WHERE chain = %s", [trail["a"]])  # noqa: S608
    _sql(f"DELETE FROM {EVENTS} WHERE chain = %s AND seq > 70", [trail["a"]])  # noqa: S608
    _detected(f"chain {trail['a']} ends at #70, but the anchor checkpointed it at #120")


def test_whole_chain_and_head_deleted(trail):
    _sql(f"DELETE FROM {HEADS} WHERE chain = %s", [trail["b"]])  # noqa: S608
    _sql(f"DELETE FROM {EVENTS} WHERE chain = %s", [trail["b"]])  # noqa: S608
    _detected(f"chain {trail['b']} has no events, but the anchor checkpointed it at #6")


def test_whole_chain_deleted_then_used_again(trail, other_clinic):
    """The clinic carries on after its chain vanished: the new #1.. are not the anchored ones."""
    _sql(f"DELETE FROM {HEADS} WHERE chain = %s", [trail["b"]])  # noqa: S608
    _sql(f"DELETE FROM {EVENTS} WHERE chain = %s", [trail["b"]])  # noqa: S608
    for _ in range(7):
        audit.record(action="read", clinic=other_clinic)
    _detected("is not the event the anchor checkpointed at #3")


def test_table_truncated(trail):
    _sql(f"DELETE FROM {EVENTS}")  # noqa: S608
    _sql(f"DELETE FROM {HEADS}")  # noqa: S608
    _detected("has no events, but the anchor checkpointed it")


# --- insertions, reordering, rewriting --------------------------------------------------------


def test_event_inserted_in_the_middle(trail):
    """Events from #50 on move up one; a forged #50 links to #49 with a correct unkeyed hash."""
    events = _events(trail["a"])
    _sql(f"UPDATE {EVENTS} SET seq = seq + 1000 WHERE chain = %s AND seq >= 50", [trail["a"]])  # noqa: S608
    _sql(f"UPDATE {EVENTS} SET seq = seq - 999 WHERE chain = %s AND seq >= 1050", [trail["a"]])  # noqa: S608
    _insert(_forge(events[48], seq=50, prev_hash=events[48].hash, detail={"forged": True}))
    _set_head(trail["a"], 121, events[-1].hash)
    _detected("#50 of")


def test_two_events_swap_seq(trail):
    events = _events(trail["a"])
    first, second = events[29], events[30]
    _sql(f"UPDATE {EVENTS} SET seq = 100000 WHERE id = %s", [first.pk])  # noqa: S608
    _sql(f"UPDATE {EVENTS} SET seq = %s WHERE id = %s", [first.seq, second.pk])  # noqa: S608
    _sql(f"UPDATE {EVENTS} SET seq = %s WHERE id = %s", [second.seq, first.pk])  # noqa: S608
    _detected(f"event id {second.pk} (#30 of {trail['a']}) does not follow the event before it")


def test_event_rewritten_and_rest_rehashed(trail):
    """The strongest rewrite without the key: change #80, recompute every later SHA-256 and
    link, move the head. The chain is self-consistent, but not keyed and not the anchored one."""
    events = _events(trail["a"])
    prev = events[78].hash
    for event in events[79:]:
        changes = {"prev_hash": prev}
        if event.seq == 80:
            changes["detail"] = {"fields": [], "i": 0}
        forged = _forge(event, **changes)
        _sql(
            f"UPDATE {EVENTS} SET detail = %s, prev_hash = %s, hash = %s WHERE id = %s",  # noqa: S608
            [json.dumps(forged.detail), forged.prev_hash, forged.hash, event.pk],
        )
        prev = forged.hash
    _set_head(trail["a"], 120, prev)
    _detected(f"(#80 of {trail['a']}) was changed after it was written")


def test_event_rewritten_and_rehashed_with_the_right_key_still_differs_from_checkpoint(
    trail, settings
):
    """Even someone holding the key cannot rewrite what was checkpointed: #120 is anchored."""
    events = _events(trail["a"])
    prev = events[99].hash
    for event in events[100:]:
        forged = AuditEvent(
            **{f.attname: getattr(event, f.attname) for f in AuditEvent._meta.concrete_fields}
        )
        forged.prev_hash = prev
        if event.seq == 101:
            forged.detail = {"fields": [], "i": 0}
        forged.hash = audit.compute_hash(forged)
        _sql(
            f"UPDATE {EVENTS} SET detail = %s, prev_hash = %s, hash = %s WHERE id = %s",  # noqa: S608
            [json.dumps(forged.detail), forged.prev_hash, forged.hash, event.pk],
        )
        prev = forged.hash
    _set_head(trail["a"], 120, prev)
    _detected(f"(#120 of {trail['a']}) is not the event the anchor checkpointed at #120")


def test_forged_event_appended_with_a_correct_unkeyed_hash(trail):
    last = _events(trail["a"])[-1]
    forged = _forge(last, seq=121, prev_hash=last.hash, action="delete", detail={"forged": True})
    _insert(forged)
    _set_head(trail["a"], 121, forged.hash)
    _detected(f"(#121 of {trail['a']}) was changed after it was written")


def test_head_reset_to_an_earlier_seq(trail):
    event = _events(trail["a"])[99]
    _set_head(trail["a"], event.seq, event.hash)
    _detected(f"the head row of chain {trail['a']} records #100, but the chain goes on to #120")


def test_head_hash_changed(trail):
    _set_head(trail["a"], 120, "f" * 64)
    _detected(f"the head row of chain {trail['a']} records a hash at #120 that is not event #120's")


def test_event_moved_to_another_chain(trail):
    """A's newest event becomes B's #7, with a correct unkeyed hash and both heads moved."""
    a_events, b_events = _events(trail["a"]), _events(trail["b"])
    moved = a_events[-1]
    forged = _forge(moved, chain=trail["b"], seq=7, prev_hash=b_events[-1].hash)
    _sql(
        f"UPDATE {EVENTS} SET chain = %s, seq = 7, prev_hash = %s, hash = %s WHERE id = %s",  # noqa: S608
        [trail["b"], forged.prev_hash, forged.hash, moved.pk],
    )
    _set_head(trail["a"], 119, a_events[-2].hash)
    _set_head(trail["b"], 7, forged.hash)
    _detected(f"chain {trail['a']} ends at #119, but the anchor checkpointed it at #120")


# --- the anchor itself ------------------------------------------------------------------------


def test_anchor_line_replaced(trail, anchor_file):
    lines = anchor_file.read_text().splitlines()
    line = json.loads(lines[1])
    line["chains"][trail["a"]] = [100, line["chains"][trail["a"]][1]]
    lines[1] = json.dumps(line, sort_keys=True, separators=(",", ":"))
    anchor_file.write_text("\n".join(lines) + "\n")
    _detected("anchor line 2 (")


def test_anchor_middle_line_deleted(trail, anchor_file):
    lines = anchor_file.read_text().splitlines()
    anchor_file.write_text("\n".join([lines[0], lines[2]]) + "\n")
    _detected("anchor line 2 (")


def test_anchor_last_lines_deleted(trail, anchor_file):
    """Cutting the anchor's end (with the database's events after line 1) shows through the
    line count the database keeps."""
    lines = anchor_file.read_text().splitlines()
    anchor_file.write_text(lines[0] + "\n")
    _detected("ends at line 1, but the database recorded line 3")


def test_anchor_file_deleted(trail, anchor_file):
    os.unlink(anchor_file)
    _detected("is missing or empty, but the database recorded that it had 3 line(s)")


def test_anchor_file_emptied(trail, anchor_file):
    anchor_file.write_bytes(b"")
    _detected("is missing or empty, but the database recorded that it had 3 line(s)")
    with pytest.raises(CommandError, match="restore it from its backup"):
        call_command("audit", "checkpoint")


def test_audit_key_changed(trail, monkeypatch):
    monkeypatch.setenv("KETAFLOW_AUDIT_KEY", "another-key-of-at-least-32-characters-0123")
    _detected("anchor line 1 (")
    assert "was written with another audit key" in audit.verify().problem


def test_audit_key_file_replaced(trail, settings):
    with open(settings.KETAFLOW_AUDIT_KEY_FILE, "w") as handle:
        handle.write("f" * 64 + "\n")
    _detected("was written with another audit key")


# --- the clinic keeps working after the head row is gone ---------------------------------------


def test_deleted_head_does_not_break_the_clinic_and_is_reported(trail, clinic, client_for):
    _sql(f"DELETE FROM {HEADS} WHERE chain = %s", [trail["a"]])  # noqa: S608
    nurse = client_for(trail["staff"]["nurse"])
    patient = trail["patients"][0]
    assert nurse.get(f"/patients/{patient.pk}/").status_code == 200
    event = audit.record(action="read", clinic=clinic, actor=trail["staff"]["nurse"])
    assert event.seq == 122  # continued after #120 and the chart read (#121)
    head = AuditChainHead.objects.get(chain=trail["a"])
    assert (head.seq, head.repaired_from) == (122, 120)
    _detected(f"the head row of chain {trail['a']} was missing or behind its events")


def test_head_reset_does_not_break_the_clinic_and_is_reported(trail, clinic):
    event = _events(trail["a"])[99]
    _set_head(trail["a"], event.seq, event.hash)
    new = audit.record(action="read", clinic=clinic, actor=trail["staff"]["nurse"])
    assert (new.seq, new.prev_hash) == (121, _events(trail["a"])[119].hash)
    assert AuditChainHead.objects.get(chain=trail["a"]).repaired_from == 120
    _detected("was repaired from event #120")


def test_checkpoint_refuses_to_anchor_a_tampered_segment(trail, clinic):
    """The periodic checkpoint checks the events since the last one before anchoring them."""
    for _ in range(3):
        audit.record(action="read", clinic=clinic)
    event = _events(trail["a"])[121]
    _sql(f"UPDATE {EVENTS} SET action = 'login' WHERE id = %s", [event.pk])  # noqa: S608
    result = integrity.checkpoint()
    assert trail["a"] not in result.chains
    assert any("(#122 of" in p for p in result.problems)
    with pytest.raises(CommandError, match=r"Audit chain broken: .*#122 of"):
        call_command("audit", "checkpoint")
