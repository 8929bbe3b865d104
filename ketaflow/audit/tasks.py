"""Periodic audit work (django.tasks): the anchor checkpoint.

``ketaflow audit_tick`` (cron, every few minutes) enqueues it; ``ketaflow worker`` runs it.
Tampering found while checkpointing is logged as an error on every run until fixed.
"""

import logging

from django.tasks import task

from ketaflow.audit import integrity
from ketaflow.audit.anchor import AnchorError

log = logging.getLogger(__name__)


@task
def checkpoint() -> dict:
    try:
        result = integrity.checkpoint()
    except AnchorError as exc:
        log.error("audit anchor: no checkpoint written: %s", exc)
        return {"line": 0, "chains": {}, "problems": [str(exc)]}
    for problem in result.problems:
        log.error("audit trail: %s", problem)
    return {"line": result.line, "chains": result.chains, "problems": result.problems}
