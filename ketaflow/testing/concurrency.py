"""Run test callables at the same moment from threads, each on its own database connection.

SQLite's in-memory shared-cache test database reports a held write lock at once ("table is
locked") instead of waiting as a file database's busy timeout would: :func:`retry_locked`
retries then. PostgreSQL blocks on the row lock instead, so nothing is retried there.
"""

import threading
import time

from django.db import OperationalError, connection


def retry_locked(fn, attempts: int = 500, pause_s: float = 0.005):
    """``fn()``, called again while the test database reports a held write lock."""
    for _ in range(attempts):
        try:
            return fn()
        except OperationalError as exc:
            if "locked" not in str(exc):
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
