"""The lock order of ARCHITECTURE.md, kept by scanning the code and by watching it run.

Issue 16 finding 2: ``select_for_update().select_related("clinic", ...)`` also locked the clinic
row FOR UPDATE, which conflicts with the FOR KEY SHARE that every audit event's foreign-key
check takes on it: charting and reading deadlocked on PostgreSQL."""

import ast
import re
from pathlib import Path

import pytest

import ketaflow
from ketaflow.testing.concurrency import at_once

ROOT = Path(ketaflow.__file__).resolve().parent
#: The one raw row lock: the audit chain head (no foreign key points at it; always last).
RAW_LOCKS_ALLOWED = {"audit/services.py"}


def _sources():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if "/migrations/" in rel or rel.startswith("testing/"):
            continue
        yield rel, path.read_text()


def _keyword(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


def test_every_row_lock_is_no_key_and_of_self_only():
    """``select_for_update(no_key=True, of=("self",))``: FOR NO KEY UPDATE never blocks a
    foreign-key check, and ``of`` keeps select_related from locking the joined rows (the
    clinic, the patient) as well."""
    wrong = []
    calls = 0
    for rel, text in _sources():
        for node in ast.walk(ast.parse(text)):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "select_for_update"
            ):
                continue
            calls += 1
            no_key, of = _keyword(node, "no_key"), _keyword(node, "of")
            ok = (
                isinstance(no_key, ast.Constant)
                and no_key.value is True
                and isinstance(of, ast.Tuple)
                and [getattr(e, "value", None) for e in of.elts] == ["self"]
            )
            if not ok:
                wrong.append(f"{rel}:{node.lineno}")
    assert calls > 20  # the scan sees the services
    assert wrong == [], f"use select_for_update(no_key=True, of=('self',)) at {wrong}"


def _strings(tree):
    """String constants of a module that are not docstrings (SQL is a string, prose is not)."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            yield node


def test_no_raw_row_locks_outside_the_audit_head():
    pattern = re.compile(r"FOR (NO KEY )?UPDATE|FOR (KEY )?SHARE|LOCK TABLE", re.IGNORECASE)
    found = [
        f"{rel}:{node.lineno}"
        for rel, text in _sources()
        if rel not in RAW_LOCKS_ALLOWED
        for node in _strings(ast.parse(text))
        if pattern.search(node.value)
    ]
    assert found == [], found
    audit = dict(_sources())["audit/services.py"]
    assert [n.value for n in _strings(ast.parse(audit)) if pattern.search(n.value)] == [
        " FOR UPDATE"
    ]


def test_the_scan_would_catch_the_old_call():
    """The scan's own check: the call that deadlocked is refused."""
    bad = 'TreatmentSession.objects.select_for_update().select_related("clinic").get(pk=1)'
    call = ast.parse(bad).body[0].value.func.value.func.value
    assert call.func.attr == "select_for_update" and _keyword(call, "no_key") is None


@pytest.mark.django_db(transaction=True)
def test_the_watch_sees_a_lock_taken_after_the_audit_head(
    clinic, staff, patient, audit_head_locked_last
):
    """The run-time check of the suite (conftest) fails a transaction that locks a row after
    the audit chain head; only PostgreSQL takes row locks."""
    from django.db import connection, transaction

    from ketaflow.audit import services as audit
    from ketaflow.patients.models import Patient

    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no row locks (BEGIN IMMEDIATE locks the whole database)")

    def late_lock():
        with transaction.atomic():
            audit.record(action="read", clinic=clinic, actor=staff["nurse"], patient=patient)
            Patient.objects.select_for_update(no_key=True, of=("self",)).get(pk=patient.pk)

    late = audit_head_locked_last
    assert at_once(late_lock) == [None]
    assert len(late) == 1 and "patients_patient" in late[0]
    late.clear()  # seen: the fixture's own check passes
