"""The audit key and the anchor: when checkpoints are written, how the anchor starts, and
what it refuses. Tampering itself is covered by tests/security/test_audit_tamper.py."""

import json
import os
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from ketaflow.audit import anchor, integrity
from ketaflow.audit import services as audit
from ketaflow.audit.models import AuditAnchorMark, AuditEvent
from ketaflow.config import ConfigError


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _record(clinic, n):
    return [audit.record(action="read", clinic=clinic) for _ in range(n)]


def test_key_is_generated_once_with_mode_600(db, settings):
    anchor.reload_key()
    first = anchor.fingerprint()
    path = settings.KETAFLOW_AUDIT_KEY_FILE
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert len(Path(path).read_text().strip()) == 64
    anchor.reload_key()
    assert anchor.fingerprint() == first


def test_key_from_the_environment_must_be_long(db, monkeypatch):
    monkeypatch.setenv("KETAFLOW_AUDIT_KEY", "short")
    anchor.reload_key()
    with pytest.raises(ConfigError, match="KETAFLOW_AUDIT_KEY is shorter than 32 characters"):
        anchor.fingerprint()
    monkeypatch.setenv("KETAFLOW_AUDIT_KEY", "k" * 40)
    anchor.reload_key()
    assert anchor.key() == b"k" * 40


def test_unusable_key_path_is_a_clear_configuration_error(db, settings, tmp_path):
    (tmp_path / "not-a-directory").write_text("")
    settings.KETAFLOW_AUDIT_KEY_FILE = str(tmp_path / "not-a-directory" / "audit_key")
    with pytest.raises(ConfigError, match=r"The audit key .* cannot be read \(Not a directory\)"):
        anchor.key()


def test_first_checkpoint_starts_the_anchor_then_only_moved_chains(
    clinic, other_clinic, audit_anchor
):
    _record(clinic, 3)
    first = integrity.checkpoint()
    assert first.started and first.line == 1 and first.chains == {f"clinic:{clinic.pk}": 3}
    assert oct(audit_anchor.stat().st_mode & 0o777) == "0o600"
    assert oct(audit_anchor.parent.stat().st_mode & 0o777) == "0o700"
    assert integrity.checkpoint().line == 0  # nothing moved: nothing written
    _record(other_clinic, 2)
    third = integrity.checkpoint()
    assert (third.line, third.chains) == (2, {f"clinic:{other_clinic.pk}": 2})
    lines = _lines(audit_anchor)
    assert [line["kind"] for line in lines] == ["open", "checkpoint"]
    assert lines[1]["prev"] == lines[0]["mac"]
    assert lines[0]["key"] == anchor.fingerprint() and lines[0]["legacy"] == {}
    mark = AuditAnchorMark.objects.get()
    assert (mark.lines, mark.mac) == (2, lines[1]["mac"])
    assert audit.verify().ok


def test_every_nth_event_is_checkpointed_after_commit(
    clinic, settings, audit_anchor, django_capture_on_commit_callbacks
):
    settings.KETAFLOW_AUDIT_CHECKPOINT_EVERY = 4
    _record(clinic, 1)
    integrity.checkpoint()
    with django_capture_on_commit_callbacks(execute=True):
        events = _record(clinic, 8)
    lines = _lines(audit_anchor)
    assert [line["chains"] for line in lines[1:]] == [
        {f"clinic:{clinic.pk}": [4, events[2].hash]},
        {f"clinic:{clinic.pk}": [8, events[6].hash]},
    ]
    assert AuditAnchorMark.objects.get().lines == 3
    assert audit.verify().ok


def test_rolled_back_event_is_not_checkpointed(
    clinic, settings, audit_anchor, django_capture_on_commit_callbacks
):
    settings.KETAFLOW_AUDIT_CHECKPOINT_EVERY = 2
    _record(clinic, 1)
    integrity.checkpoint()
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        _record(clinic, 1)
        raise RuntimeError("the change failed")
    assert callbacks == []
    assert len(_lines(audit_anchor)) == 1


def test_every_nth_event_never_starts_the_anchor(
    clinic, settings, audit_anchor, django_capture_on_commit_callbacks
):
    settings.KETAFLOW_AUDIT_CHECKPOINT_EVERY = 1
    with django_capture_on_commit_callbacks(execute=True):
        _record(clinic, 2)
    assert not audit_anchor.exists()


def test_audit_tick_checkpoints_through_the_task(clinic, audit_anchor, capsys):
    _record(clinic, 2)
    call_command("audit_tick")  # tests run tasks immediately
    assert _lines(audit_anchor)[0]["chains"] == {
        f"clinic:{clinic.pk}": [2, AuditEvent.objects.get(seq=2).hash]
    }
    _record(clinic, 1)
    call_command("audit_tick", "--now")
    assert "checkpoint: line 2, 0 problem(s)" in capsys.readouterr().out


def test_legacy_unkeyed_events_need_an_explicit_start(clinic, staff, audit_anchor):
    """Events written before the key existed carry a plain SHA-256: the anchor starts only
    when a person accepts them (--start); after that, no unkeyed event is accepted."""
    events = _record(clinic, 3)
    with connection.cursor() as cursor:
        for event in events:  # as the previous version stored them
            event.prev_hash = events[event.seq - 2].hash if event.seq > 1 else audit.GENESIS
            event.hash = audit.legacy_hash(event)
            cursor.execute(
                "UPDATE audit_auditevent SET prev_hash = %s, hash = %s WHERE id = %s",
                [event.prev_hash, event.hash, event.pk],
            )
            cursor.execute(
                "UPDATE audit_auditchainhead SET hash = %s WHERE chain = %s",
                [event.hash, event.chain],
            )
    assert audit.verify().ok  # no anchor yet: an unkeyed prefix is accepted
    with pytest.raises(CommandError, match=r"3 event\(s\) in 1 chain\(s\) were hashed without"):
        call_command("audit", "checkpoint")
    assert not audit_anchor.exists()
    call_command("audit", "checkpoint", "--start")
    assert _lines(audit_anchor)[0]["legacy"] == {f"clinic:{clinic.pk}": 3}
    later = audit.record(action="read", clinic=clinic)
    assert later.hash == audit.compute_hash(later) and later.prev_hash == events[-1].hash
    assert audit.verify().ok
    # An unkeyed event after the keyed one is a forgery.
    forged = AuditEvent.objects.get(pk=later.pk)
    forged.detail = {"forged": True}
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET detail = %s, hash = %s WHERE id = %s",
            [json.dumps(forged.detail), audit.legacy_hash(forged), later.pk],
        )
    assert "was changed after it was written" in audit.verify().problem


def test_broken_trail_is_never_anchored(clinic, audit_anchor):
    events = _record(clinic, 3)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET action = 'login' WHERE id = %s", [events[1].pk])
    with pytest.raises(CommandError, match="the trail does not verify, so no anchor was started"):
        call_command("audit", "checkpoint", "--start")
    assert not audit_anchor.exists()


def test_lost_anchor_is_not_replaced_silently(clinic, audit_anchor):
    _record(clinic, 2)
    integrity.checkpoint()
    os.unlink(audit_anchor)
    with pytest.raises(CommandError, match="restore it from its backup"):
        call_command("audit", "checkpoint")
    assert not audit_anchor.exists()
    call_command("audit", "checkpoint", "--start")  # a person decided to start over
    assert [line["n"] for line in _lines(audit_anchor)] == [1]
    assert audit.verify().ok


def test_cut_last_line_is_reported(clinic, audit_anchor):
    _record(clinic, 2)
    integrity.checkpoint()
    audit_anchor.write_bytes(audit_anchor.read_bytes()[:-20])
    assert "is incomplete" in audit.verify().problem


def test_checkpoint_one_skips_while_a_full_checkpoint_holds_the_lock(clinic, audit_anchor):
    events = _record(clinic, 2)
    integrity.checkpoint()
    with anchor.locked():
        assert anchor.checkpoint_one(events[-1].chain, 2, events[-1].hash) is False
    assert anchor.checkpoint_one(events[-1].chain, 2, events[-1].hash) is True
    assert len(_lines(audit_anchor)) == 2
    assert audit.verify().ok


def test_appends_during_verify_and_checkpoint_are_not_problems(clinic, other_clinic, monkeypatch):
    """Writers go on while a check runs: events newer than the head rows read before the walk
    (and a chain begun meanwhile) are not reported as a reset or missing head."""
    _record(clinic, 3)
    integrity.checkpoint()
    real_walk = integrity._walk

    def walk_while_appending(key, **kwargs):
        _record(clinic, 2)
        _record(other_clinic, 1)
        return real_walk(key, **kwargs)

    monkeypatch.setattr(integrity, "_walk", walk_while_appending)
    assert audit.verify().ok
    result = integrity.checkpoint()
    assert result.problems == [] and result.line == 2
    monkeypatch.undo()
    assert audit.verify().ok


def test_empty_anchor_file_without_a_mark_is_started(clinic, audit_anchor):
    _record(clinic, 2)
    audit_anchor.parent.mkdir(mode=0o700)
    audit_anchor.write_bytes(b"")
    assert not audit.verify().anchored
    assert integrity.checkpoint().started
    assert audit.verify().ok


def test_periodic_checkpoint_logs_tampering_as_an_error(clinic, caplog):
    events = _record(clinic, 3)
    integrity.checkpoint()
    _record(clinic, 2)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [events[2].pk])
    with caplog.at_level("ERROR", logger="ketaflow.audit.tasks"):
        call_command("audit_tick", "--now")
    assert [r.getMessage() for r in caplog.records] == [
        f"audit trail: event #3 of chain clinic:{clinic.pk} is missing (found #4 next)"
    ]
