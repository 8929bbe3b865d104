"""Writing and verifying the audit trail.

``record`` appends one event to its clinic's chain inside the caller's transaction, so a
change and its audit event are stored together or not at all. Each event's hash is an
HMAC-SHA256 under the audit key, kept outside the database (``ketaflow.audit.anchor``);
``verify`` and ``checkpoint`` live in ``ketaflow.audit.integrity``.
"""

import hashlib
import json
from contextlib import contextmanager
from datetime import UTC, datetime

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from ketaflow.audit import anchor, context
from ketaflow.audit.models import Action, AuditChainHead, AuditEvent

GENESIS = "0" * 64
_ACTIONS = frozenset(Action.values)


def chain_key(clinic) -> str:
    return f"clinic:{clinic.pk}" if clinic is not None else "global"


def _canonical(fields: dict) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str).encode()


def event_fields(event: AuditEvent) -> dict:
    """Every stored field the hash protects (everything but the id and the hash itself)."""
    return {
        "chain": event.chain,
        "seq": event.seq,
        "clinic": event.clinic_id,
        "actor": event.actor_id,
        "actor_label": event.actor_label,
        "patient": event.patient_id,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "at": event.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "client_address": event.client_address,
        "user_agent": event.user_agent,
        "request_id": event.request_id,
        "detail": event.detail,
        "emergency": event.emergency,
        "prev_hash": event.prev_hash,
    }


def compute_hash(event: AuditEvent) -> str:
    """The event's hash: HMAC-SHA256 under the audit key of the canonical JSON of its fields
    (the previous event's hash included), so it cannot be recomputed without the key."""
    return anchor.event_mac(_canonical(event_fields(event)))


def legacy_hash(event: AuditEvent) -> str:
    """The unkeyed SHA-256 that events written before the audit key existed carry."""
    return hashlib.sha256(_canonical(event_fields(event))).hexdigest()


def object_ref(obj) -> tuple[str, str]:
    if obj is None:
        return "", ""
    return obj._meta.label_lower, str(obj.pk)


class _Statements:
    """The SQL of one append, built once per connection vendor from the models' metadata.

    ``record`` runs on every write and every chart read, so it skips the ORM's query
    compilation (most of its cost) and sends fixed, parameterised statements instead.
    """

    def __init__(self, connection):
        qn = connection.ops.quote_name
        head = qn(AuditChainHead._meta.db_table)
        events = qn(AuditEvent._meta.db_table)
        self.fields = [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]
        columns = ", ".join(qn(f.column) for f in self.fields)
        values = ", ".join(["%s"] * len(self.fields))
        pk = qn(AuditEvent._meta.pk.column)
        self.returning = connection.features.can_return_columns_from_insert
        # Identifiers come from the models' metadata; every value is a parameter.
        # A head row reset behind its events would make the insert collide with a stored
        # event: DO NOTHING lets ``record`` notice (no row back) and repair the head instead of
        # aborting the transaction.
        insert = (
            f"INSERT INTO {events} ({columns}) VALUES ({values})"  # noqa: S608
            " ON CONFLICT (chain, seq) DO NOTHING"
        )
        if self.returning:
            insert += f" RETURNING {pk}"
        # SQLite has no row locks: its transactions start with BEGIN IMMEDIATE (ketaflow.config),
        # which takes the database's write lock, so a reader of the head is already its only writer.
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        self.read_head = f"SELECT seq, hash FROM {head} WHERE chain = %s{lock}"  # noqa: S608
        update_head = f"UPDATE {head} SET seq = %s, hash = %s WHERE chain = %s"  # noqa: S608
        # Only when the head is missing or behind its events (see _locked_head, _repair_head).
        self.last_event = (
            f"SELECT seq, hash FROM {events} WHERE chain = %s ORDER BY seq DESC LIMIT 1"  # noqa: S608
        )
        self.repair_head = (
            f"UPDATE {head} SET seq = %s, hash = %s, repaired_from = %s, repaired_at = %s "  # noqa: S608
            "WHERE chain = %s"
        )
        # PostgreSQL advances the head in the same statement as the insert (one round trip).
        self.folded = connection.vendor == "postgresql" and self.returning
        if self.folded:
            self.insert = f"WITH advanced AS ({update_head}) {insert}"
            self.update_head = ""
        else:
            self.insert = insert
            self.update_head = update_head


_statements: dict[str, _Statements] = {}


def _sql(connection) -> _Statements:
    statements = _statements.get(connection.vendor)
    if statements is None:
        statements = _statements[connection.vendor] = _Statements(connection)
    return statements


def _locked_head(cursor, sql: _Statements, key: str) -> tuple[int, str]:
    """(seq, hash) of the chain's head, locked until the transaction ends (made on first use)."""
    cursor.execute(sql.read_head, [key])
    row = cursor.fetchone()
    if row is None:
        # The chain's first event, or its head row was deleted: continue after the chain's
        # last stored event (marking the head as repaired, which `audit verify` reports) rather
        # than restart at #1 and fail every later append on the (chain, seq) constraint.
        # ON CONFLICT DO NOTHING (no savepoint): a concurrent first writer's row wins, and the
        # locking read below waits for it.
        cursor.execute(sql.last_event, [key])
        last = cursor.fetchone()
        head = AuditChainHead(chain=key, seq=0, hash=GENESIS)
        if last is not None:
            head = AuditChainHead(
                chain=key,
                seq=last[0],
                hash=last[1],
                repaired_from=last[0],
                repaired_at=datetime.now(UTC),
            )
        AuditChainHead.objects.bulk_create([head], ignore_conflicts=True)
        cursor.execute(sql.read_head, [key])
        row = cursor.fetchone()
    return row[0], row[1]


def _repair_head(cursor, sql: "_Statements", key: str, connection) -> tuple[int, str]:
    """The head (locked) is behind the chain's stored events, so it was reset in the database:
    continue after the last stored event and mark the head as repaired."""
    cursor.execute(sql.last_event, [key])
    seq, digest = cursor.fetchone()
    at = AuditChainHead._meta.get_field("repaired_at").get_db_prep_save(
        datetime.now(UTC), connection
    )
    cursor.execute(sql.repair_head, [seq, digest, seq, at, key])
    return seq, digest


@transaction.atomic(savepoint=False)
def record(
    *,
    action: str,
    clinic=None,
    actor=None,
    actor_label: str = "",
    patient=None,
    obj=None,
    object_type: str = "",
    object_id: str = "",
    detail: dict | None = None,
    emergency: bool = False,
) -> AuditEvent:
    """Append one event. Call it inside the service's transaction.

    Two statements on PostgreSQL (lock and read the head; insert the event and advance the
    head), three on SQLite (where each is an in-process call). Every
    ``KETAFLOW_AUDIT_CHECKPOINT_EVERY``-th event of a chain is also written to the anchor once
    the transaction commits.
    """
    if action not in _ACTIONS:
        raise ValueError(f"Unknown audit action {action!r}.")
    if obj is not None:
        object_type, object_id = object_ref(obj)
    ctx = context.current()
    key = chain_key(clinic)
    authenticated = actor is not None and getattr(actor, "is_authenticated", False)
    connection = connections[DEFAULT_DB_ALIAS]
    sql = _sql(connection)
    with connection.cursor() as cursor:
        seq, prev_hash = _locked_head(cursor, sql, key)
        event = AuditEvent(
            chain=key,
            seq=seq + 1,
            clinic=clinic,
            actor=actor if authenticated else None,
            actor_label=(actor.email if authenticated else actor_label)[:254],
            patient=patient,
            action=action,
            object_type=object_type[:60],
            object_id=str(object_id)[:64],
            at=datetime.now(UTC),
            client_address=ctx.client_address,
            user_agent=ctx.user_agent,
            request_id=ctx.request_id,
            detail=detail or {},
            emergency=emergency,
            prev_hash=prev_hash,
        )
        for attempt in range(2):
            event.hash = compute_hash(event)
            values = [f.get_db_prep_save(getattr(event, f.attname), connection) for f in sql.fields]
            if sql.folded:
                cursor.execute(sql.insert, [event.seq, event.hash, key, *values])
            else:
                cursor.execute(sql.insert, values)
            row = cursor.fetchone() if sql.returning else None
            if row is not None or (not sql.returning and cursor.rowcount == 1):
                break
            if attempt:
                raise RuntimeError(f"audit chain {key}: event #{event.seq} could not be stored")
            seq, event.prev_hash = _repair_head(cursor, sql, key, connection)
            event.seq = seq + 1
        event.pk = row[0] if sql.returning else cursor.lastrowid
        if not sql.folded:
            cursor.execute(sql.update_head, [event.seq, event.hash, key])
    every = settings.KETAFLOW_AUDIT_CHECKPOINT_EVERY
    if every > 0 and event.seq % every == 0:
        transaction.on_commit(
            lambda: anchor.checkpoint_one(key, event.seq, event.hash), using=connection.alias
        )
    event._state.adding = False
    event._state.db = connection.alias
    return event


def read_is_emergency(request, patient) -> bool:
    """True when the request's user reaches ``patient``'s chart only through an emergency-access
    grant. The access check itself decides (``patients.scope.ChartScope``), so every read is
    flagged correctly whether or not the view kept the grant it was given."""
    from ketaflow.patients.scope import ChartScope

    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    clinic = getattr(request, "clinic", None)
    if clinic is None or clinic.pk != patient.clinic_id:
        clinic = patient.clinic
    return ChartScope(user, clinic).access(patient)[0] == "emergency"


def record_read(request, *, patient, obj=None, detail: dict | None = None) -> AuditEvent | None:
    """One read event per request for opening a chart or record (later calls are no-ops).
    Flagged ``emergency`` when the chart is open to the user only through a grant."""
    if getattr(request, "_kf_read_audited", False):
        return None
    request._kf_read_audited = True
    clinic = getattr(request, "clinic", None)
    return record(
        action=Action.READ,
        clinic=clinic if clinic is not None and clinic.pk == patient.clinic_id else patient.clinic,
        actor=request.user,
        patient=patient,
        obj=obj or patient,
        detail={
            "view": request.resolver_match.view_name if request.resolver_match else "",
            **(detail or {}),
        },
        emergency=read_is_emergency(request, patient),
    )


# A list read names at most this many patients (the first ones, in the order shown) and
# always the count; list routes return at most 500 rows, most far fewer.
LIST_READ_MAX_IDS = 200


def _view_name(request) -> str:
    match = getattr(request, "resolver_match", None)
    return match.view_name if match else ""


def record_list_read(
    request,
    *,
    patient_ids,
    object_type: str,
    object_ids=(),
    detail: dict | None = None,
    clinic=None,
    actor=None,
) -> AuditEvent | None:
    """One read event for a list of patient data (a list route, a search, a board, a panel).

    The event names the route (``view``), the filters the caller passes in ``detail``, the
    number of distinct patients shown and their ids (the first ``LIST_READ_MAX_IDS``, in the
    order shown; ``truncated`` says when there were more). The event has no patient key (the
    report's patient filter and the chart's Activity tab show record reads); it is flagged
    ``emergency`` when any patient shown is visible to the user only through an emergency
    grant (those ids are listed as ``emergency_patients``). ``object_ids`` names the records
    themselves where they are not patients and may have none (consultation requests), with
    the same bound. Written even for an empty list: the query itself is part of the trail.

    One event per request: inside ``list_read_batch`` the ids are collected and written once
    when the batch ends; otherwise a request that has already recorded a read writes nothing.
    """
    ids = list(dict.fromkeys(int(i) for i in patient_ids if i is not None))
    batch = getattr(request, "_kf_list_batch", None)
    if batch is not None:
        batch["patient_ids"].extend(ids)
        part = {"object_type": object_type, "count": len(ids), **(detail or {})}
        if object_ids:
            part["objects"] = [int(i) for i in object_ids][:LIST_READ_MAX_IDS]
        batch["parts"].append(part)
        return None
    if getattr(request, "_kf_read_audited", False):
        return None
    request._kf_read_audited = True
    actor = actor if actor is not None else request.user
    clinic = clinic if clinic is not None else getattr(request, "clinic", None)
    from ketaflow.patients.scope import ChartScope

    emergency_ids = sorted(ChartScope(actor, clinic).emergency_patient_ids(ids))
    payload = {
        "view": _view_name(request),
        "list": True,
        **(detail or {}),
        "count": len(ids),
        "patients": ids[:LIST_READ_MAX_IDS],
        "truncated": len(ids) > LIST_READ_MAX_IDS,
    }
    objects = list(dict.fromkeys(int(i) for i in object_ids))
    if objects:
        payload["objects"] = objects[:LIST_READ_MAX_IDS]
        payload["objects_truncated"] = len(objects) > LIST_READ_MAX_IDS
    if emergency_ids:
        payload["emergency_patients"] = emergency_ids[:LIST_READ_MAX_IDS]
    return record(
        action=Action.READ,
        clinic=clinic,
        actor=actor,
        object_type=object_type,
        detail=payload,
        emergency=bool(emergency_ids),
    )


@contextmanager
def list_read_batch(request, *, object_type: str):
    """Collect the list reads of a page made of several lists (the Today page and its panels)
    into the one read event of the request, written when the block ends without an error."""
    if getattr(request, "_kf_list_batch", None) is not None:
        yield
        return
    batch = request._kf_list_batch = {"patient_ids": [], "parts": []}
    try:
        yield
    finally:
        request._kf_list_batch = None
    record_list_read(
        request,
        patient_ids=batch["patient_ids"],
        object_type=object_type,
        detail={"parts": batch["parts"]},
    )


def verify(chain: str | None = None):
    """Check every chain against itself, its head and the anchor (``integrity.verify``)."""
    from ketaflow.audit import integrity

    return integrity.verify(chain)
