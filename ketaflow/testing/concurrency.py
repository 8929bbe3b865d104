"""Run test callables at the same moment from threads, each on its own database connection.

SQLite's in-memory shared-cache test database reports a held write lock at once ("table is
locked") instead of waiting as a file database's busy timeout would: :func:`retry_locked`
retries then. PostgreSQL blocks on the row lock instead, so nothing is retried there: a
deadlock or a serialisation failure is an error the test sees.
"""

import contextlib
import re
import threading
import time

from django.db import OperationalError, connection, connections
from django.db.backends.signals import connection_created


def retry_locked(fn, attempts: int = 500, pause_s: float = 0.005):
    """``fn()``, called again while the test database reports a held write lock."""
    for _ in range(attempts):
        try:
            return fn()
        except OperationalError as exc:
            # Only SQLite's refusal: PostgreSQL's deadlock report ("... blocked by process
            # ...") also contains "locked", and must reach the test.
            if connection.vendor != "sqlite" or "is locked" not in str(exc):
                raise
            time.sleep(pause_s)
    raise TimeoutError("the test database stayed locked")


def at_once(*fns) -> list:
    """Start every callable in its own thread at the same moment (a barrier), each retried
    with :func:`retry_locked`; returns what each returned or the exception it raised, in
    the order given."""
    barrier = threading.Barrier(len(fns))
    out: list = [None] * len(fns)

    def run(i, fn):
        try:
            barrier.wait()
            out[i] = retry_locked(fn)
        except Exception as exc:  # handed back to the test
            out[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def repeat(fn, times: int) -> list:
    """``fn(i)`` for i in range(times), one after the other (a worker of a load test), each
    retried with :func:`retry_locked`; returns what each call returned or the exception it
    raised, so one failure does not stop the worker."""
    out = []
    for i in range(times):
        try:
            out.append(retry_locked(lambda i=i: fn(i)))
        except Exception as exc:  # handed back to the test
            out.append(exc)
    return out


def successes(results) -> list:
    """The results that are not exceptions."""
    return [r for r in results if not isinstance(r, BaseException)]


def failures(results) -> list:
    """The exceptions among the results."""
    return [r for r in results if isinstance(r, BaseException)]


_ROW_LOCK = re.compile(r"\bFOR (NO KEY )?(UPDATE|SHARE)\b|\bFOR KEY SHARE\b")


def _is_head_lock(sql: str) -> bool:
    return "audit_auditchainhead" in sql and _ROW_LOCK.search(sql) is not None


@contextlib.contextmanager
def head_locked_last():
    """Watch every database connection opened meanwhile (any thread) and collect each explicit
    row lock (SELECT ... FOR [NO KEY] UPDATE/SHARE) taken after the audit chain head in the
    same transaction; yields the list, empty when the lock order of ARCHITECTURE.md held.

    The head is the last lock of a transaction: a lock taken after it could wait for a
    transaction that holds that row and waits for the head (a deadlock on PostgreSQL)."""
    late: list[str] = []
    watched = []

    def watch(conn):
        if getattr(conn, "_kf_lock_watch", False):
            return
        conn._kf_lock_watch = True
        conn._kf_head_held = False
        set_autocommit = conn.set_autocommit

        def boundary(*args, **kwargs):  # a transaction starts or ends
            conn._kf_head_held = False
            return set_autocommit(*args, **kwargs)

        def wrapper(execute, sql, params, many, context):
            if not conn.in_atomic_block:
                conn._kf_head_held = False
            elif _is_head_lock(sql):
                conn._kf_head_held = True
            elif conn._kf_head_held and _ROW_LOCK.search(sql):
                late.append(sql)
            return execute(sql, params, many, context)

        conn.set_autocommit = boundary
        conn.execute_wrappers.append(wrapper)
        watched.append((conn, wrapper))

    def on_created(sender, connection, **kwargs):
        watch(connection)

    for conn in connections.all(initialized_only=True):
        watch(conn)
    connection_created.connect(on_created)
    try:
        yield late
    finally:
        connection_created.disconnect(on_created)
        for conn, wrapper in watched:
            conn.execute_wrappers.remove(wrapper)
            del conn.set_autocommit
            conn._kf_lock_watch = False
