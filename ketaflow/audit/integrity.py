"""Verifying the audit trail against itself and its anchor, and writing checkpoints.

``verify`` walks every chain (the database's chains and every chain the anchor registered)
and names the first problem: an event changed, forged or rehashed without the audit key, a
gap, an inserted or reordered event, an event that differs from the anchor's checkpoint, a
chain shorter than the anchor says or gone, a head row deleted, reset or repaired, and an
anchor file that was changed, cut short or written with another key.

``checkpoint`` appends the current end of every chain that moved to the anchor, after
checking the events since the chain's previous checkpoint, so the anchor never vouches for
a tampered segment. See docs/security.md, "Audit trail integrity".
"""

import hmac
import math
from dataclasses import dataclass, field

from django.db import connection

from ketaflow.audit import anchor
from ketaflow.audit.anchor import AnchorError
from ketaflow.audit.models import AuditAnchorMark, AuditChainHead, AuditEvent
from ketaflow.audit.services import GENESIS, compute_hash, legacy_hash


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    chains: int
    events: int
    problem: str = ""
    event_id: int | None = None
    chain: str = ""
    seq: int | None = None
    anchored: bool = False
    anchor_lines: int = 0
    last_checkpoint: str = ""


@dataclass
class CheckpointResult:
    line: int = 0  # the anchor line written (0: nothing moved, nothing written)
    chains: dict[str, int] = field(default_factory=dict)  # chain -> seq anchored by this line
    problems: list[str] = field(default_factory=list)
    started: bool = False


class _Problem(Exception):
    def __init__(self, problem: str, *, event_id=None, chain="", seq=None):
        super().__init__(problem)
        self.problem = problem
        self.where = {"event_id": event_id, "chain": chain, "seq": seq}


@dataclass
class _Walked:
    events: int
    seq: int  # the last event's sequence number (0: no events)
    hash: str
    legacy: int  # the last sequence number accepted with an unkeyed hash (0: none)
    first: int = 1  # the first sequence number walked
    watched: str | None = None  # the hash of event #watch (the head's, read before the walk)


def chains_in_database() -> set[str]:
    """Every chain with a head row or an event (a loose scan of the (chain, seq) index)."""
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    sql = f"""
        WITH RECURSIVE chains (name) AS (
            SELECT MIN(chain) FROM {table}
            UNION ALL
            SELECT (SELECT MIN(chain) FROM {table} WHERE chain > chains.name)
            FROM chains WHERE chains.name IS NOT NULL
        )
        SELECT name FROM chains WHERE name IS NOT NULL
    """  # noqa: S608 (the table name comes from the model)
    with connection.cursor() as cursor:
        cursor.execute(sql)
        found = {name for (name,) in cursor.fetchall()}
    return found | set(AuditChainHead.objects.values_list("chain", flat=True))


def _walk(
    key: str, *, after=None, legacy_limit: float = 0, checkpoints=None, watch=None
) -> _Walked:
    """Check the chain's events in order (from the checkpointed event ``after`` = (seq, hash),
    or from #1). Unkeyed hashes pass only as a prefix of the chain up to ``legacy_limit``.
    The hash of event #``watch`` is kept (to compare with the head)."""
    checkpoints = checkpoints or {}
    events = AuditEvent.objects.filter(chain=key)
    if after is not None:
        start_seq = after[0]
        events = events.filter(seq__gte=start_seq)
        expected_seq, expected_prev = start_seq, None
    else:
        expected_seq, expected_prev = 1, GENESIS
    count, legacy, keyed, watched = 0, 0, False, None
    for event in events.order_by("seq", "id").iterator(chunk_size=2000):
        count += 1
        where = {"event_id": event.pk, "chain": key, "seq": event.seq}
        name = f"event id {event.pk} (#{event.seq} of {key})"
        if event.seq != expected_seq:
            if event.seq > expected_seq:
                raise _Problem(
                    f"event #{expected_seq} of chain {key} is missing (found #{event.seq} next)",
                    **where,
                )
            raise _Problem(
                f"event id {event.pk} repeats sequence number {event.seq} in chain {key}", **where
            )
        if expected_prev is not None and event.prev_hash != expected_prev:
            raise _Problem(f"{name} does not follow the event before it", **where)
        checkpointed = checkpoints.get(event.seq)
        if after is not None and event.seq == after[0]:
            checkpointed = after[1]
        if checkpointed is not None and event.hash != checkpointed:
            raise _Problem(
                f"{name} is not the event the anchor checkpointed at #{event.seq}: "
                "the chain was rewritten from there",
                **where,
            )
        if hmac.compare_digest(compute_hash(event), event.hash):
            keyed = True
        elif not keyed and event.seq <= legacy_limit and legacy_hash(event) == event.hash:
            legacy = event.seq
        else:
            raise _Problem(
                f"{name} was changed after it was written (its hash does not match: "
                "rewriting, rehashing or forging an event needs the audit key)",
                **where,
            )
        if event.seq == watch:
            watched = event.hash
        expected_seq, expected_prev = event.seq + 1, event.hash
    if after is not None and count == 0:
        raise _Problem(
            f"chain {key} ends before #{after[0]}, which the anchor checkpointed: "
            "events were removed from its end",
            chain=key,
            seq=after[0],
        )
    first = after[0] if after is not None else 1
    return _Walked(count, expected_seq - 1, expected_prev or GENESIS, legacy, first, watched)


def _head_problem(key: str, head, walked: _Walked) -> str:
    """Compare the chain's head row, read before the walk, with the events walked.

    Appends go on while a check runs (each one commits its event and the head together), so
    a walk may find events newer than the head it read: then the head is read again.
    """
    if head is not None and head.repaired_from is None:
        if head.seq > walked.seq:
            return (
                f"chain {key} ends at #{walked.seq} but its head records #{head.seq}: "
                "events were removed from its end"
            )
        if walked.first <= head.seq and head.seq and walked.watched != head.hash:
            return (
                f"the head row of chain {key} records a hash at #{head.seq} that is not "
                f"event #{head.seq}'s: the head was changed"
            )
        if head.seq == walked.seq:
            return ""
        head = AuditChainHead.objects.filter(chain=key).first()
    elif head is None:
        head = AuditChainHead.objects.filter(chain=key).first()
    if head is None:
        return (
            f"chain {key} has events up to #{walked.seq} but no head row: the head row was deleted"
            if walked.seq
            else ""
        )
    if head.repaired_from is not None:
        return (
            f"the head row of chain {key} was missing or behind its events (deleted or reset in "
            f"the database) and was repaired from event #{head.repaired_from} on "
            f"{head.repaired_at:%Y-%m-%d %H:%M:%S} UTC: events after #{head.repaired_from} "
            "may have been removed with it"
        )
    if head.seq < walked.seq:
        return (
            f"the head row of chain {key} records #{head.seq}, but the chain goes on to "
            f"#{walked.seq}: the head was reset"
        )
    return ""


def _anchor_problem(found, mark) -> str:
    where = anchor.path()
    if found is None:
        if mark is None:
            return ""
        return (
            f"the anchor file {where} is missing or empty, but the database recorded that it had "
            f"{mark.lines} line(s): restore it from its backup"
        )
    if mark is None:
        return ""
    if mark.lines > found.lines:
        return (
            f"the anchor file {where} ends at line {found.lines}, but the database recorded "
            f"line {mark.lines}: lines were removed from its end (restore it from its backup)"
        )
    if found.macs[mark.lines - 1] != mark.mac:
        return f"anchor line {mark.lines} ({where}) is not the line the database recorded"
    return ""


def verify(chain: str | None = None) -> VerifyResult:
    """Check the anchor, then every chain against itself, its head and the anchor."""
    anchor.reload_key()
    try:
        found = anchor.read()
    except AnchorError as exc:
        return VerifyResult(False, 0, 0, str(exc), anchored=True)
    problem = _anchor_problem(found, AuditAnchorMark.objects.filter(pk=1).first())
    anchored = {
        "anchored": found is not None,
        "anchor_lines": found.lines if found else 0,
        "last_checkpoint": found.last_at if found else "",
    }
    if problem:
        return VerifyResult(False, 0, 0, problem, **anchored)
    heads = {head.chain: head for head in AuditChainHead.objects.all()}
    ends = found.ends if found else {}
    chains = sorted(chains_in_database() | set(ends)) if chain is None else [chain]
    total = 0
    for key in chains:
        try:
            walked = _walk(
                key,
                legacy_limit=found.legacy.get(key, 0) if found else math.inf,
                checkpoints=found.checkpoints.get(key) if found else None,
                watch=heads[key].seq if key in heads else None,
            )
        except _Problem as exc:
            return VerifyResult(False, len(chains), total, exc.problem, **exc.where, **anchored)
        total += walked.events
        end = ends.get(key)
        if end is not None and walked.seq < end[0]:
            problem = (
                f"chain {key} has no events, but the anchor checkpointed it at #{end[0]} "
                f"on {end[2]}: the chain was deleted"
                if walked.seq == 0
                else f"chain {key} ends at #{walked.seq}, but the anchor checkpointed it at "
                f"#{end[0]} on {end[2]}: events were removed from its end"
            )
            return VerifyResult(
                False, len(chains), total, problem, chain=key, seq=end[0], **anchored
            )
        problem = _head_problem(key, heads.get(key), walked)
        if problem:
            return VerifyResult(False, len(chains), total, problem, chain=key, **anchored)
    return VerifyResult(True, len(chains), total, **anchored)


def checkpoint(*, start: bool = False) -> CheckpointResult:
    """Append the end of every chain that moved since its last checkpoint to the anchor.

    The first checkpoint starts the anchor. It refuses to when the trail does not verify,
    when the database says an anchor existed (restore the file instead) and, unless
    ``start``, when events hashed without the key exist (``ketaflow audit checkpoint
    --start`` accepts them once, after a person has looked at ``audit verify``).
    Raises AnchorError when nothing could be anchored.
    """
    anchor.reload_key()
    try:
        with anchor.locked() as fd:
            data = anchor.read_all(fd)
            if data:
                return _extend(fd, anchor.parse(data))
    except FileNotFoundError:
        pass
    # No anchor yet (no file, or an empty one).
    mark = AuditAnchorMark.objects.filter(pk=1).first()
    if mark is not None and not start:
        raise AnchorError(
            _anchor_problem(None, mark) + "; or, only after investigating, start a new "
            "anchor with `ketaflow audit checkpoint --start`"
        )
    ends, legacy = {}, {}
    for key in sorted(chains_in_database()):
        try:
            walked = _walk(key, legacy_limit=math.inf)
        except _Problem as exc:
            raise AnchorError(
                f"the trail does not verify, so no anchor was started: {exc}"
            ) from None
        if walked.seq:
            ends[key] = (walked.seq, walked.hash)
        if walked.legacy:
            legacy[key] = walked.legacy
    if legacy and not start:
        raise AnchorError(
            f"{sum(legacy.values())} event(s) in {len(legacy)} chain(s) were hashed without the "
            "audit key (written before the anchor existed): check them with `ketaflow audit "
            "verify`, then run `ketaflow audit checkpoint --start` once to anchor them as they are"
        )
    with anchor.locked(create=True) as fd:
        existing = anchor.read_all(fd)
        if existing:  # another process started it meanwhile
            return _extend(fd, anchor.parse(existing))
        AuditAnchorMark.objects.filter(pk=1).delete()
        line = anchor.append(
            fd, anchor.Anchor(), kind="open", chains=ends, key=anchor.fingerprint(), legacy=legacy
        )
    return CheckpointResult(line["n"], {k: seq for k, (seq, _) in ends.items()}, [], started=True)


def _extend(fd, found: anchor.Anchor) -> CheckpointResult:
    problem = _anchor_problem(found, AuditAnchorMark.objects.filter(pk=1).first())
    if problem:
        raise AnchorError(problem)
    heads = {head.chain: head for head in AuditChainHead.objects.all()}
    result, moved = CheckpointResult(), {}
    for key in sorted(chains_in_database() | set(found.ends)):
        end = found.ends.get(key)
        try:
            walked = _walk(
                key,
                after=end[:2] if end else None,
                legacy_limit=found.legacy.get(key, 0),
                checkpoints=found.checkpoints.get(key),
                watch=heads[key].seq if key in heads else None,
            )
        except _Problem as exc:
            result.problems.append(exc.problem)
            continue
        if walked.seq > (end[0] if end else 0):
            moved[key] = (walked.seq, walked.hash)
        head_problem = _head_problem(key, heads.get(key), walked)
        if head_problem:
            result.problems.append(head_problem)
    if moved:
        result.line = anchor.append(fd, found, kind="checkpoint", chains=moved)["n"]
        result.chains = {k: seq for k, (seq, _) in moved.items()}
    return result
