"""Writing and verifying the audit trail.

``record`` appends one event to its clinic's chain inside the caller's transaction, so a
change and its audit event are stored together or not at all.
"""

import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from ketaflow.audit import context
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
        insert = f"INSERT INTO {events} ({columns}) VALUES ({values})"  # noqa: S608
        if self.returning:
            insert += f" RETURNING {pk}"
        # SQLite has no row locks: its transactions start with BEGIN IMMEDIATE (ketaflow.config),
        # which takes the database's write lock, so a reader of the head is already its only writer.
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        self.read_head = f"SELECT seq, hash FROM {head} WHERE chain = %s{lock}"  # noqa: S608
        update_head = f"UPDATE {head} SET seq = %s, hash = %s WHERE chain = %s"  # noqa: S608
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
        # The chain's first event. ON CONFLICT DO NOTHING (no savepoint): a concurrent first
        # writer's row wins, and the locking read below waits for it.
        AuditChainHead.objects.bulk_create(
            [AuditChainHead(chain=key, seq=0, hash=GENESIS)], ignore_conflicts=True
        )
        cursor.execute(sql.read_head, [key])
        row = cursor.fetchone()
    return row[0], row[1]


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
    head), three on SQLite (where each is an in-process call).
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
        event.hash = compute_hash(event)
        values = [f.get_db_prep_save(getattr(event, f.attname), connection) for f in sql.fields]
        if sql.folded:
            cursor.execute(sql.insert, [event.seq, event.hash, key, *values])
        else:
            cursor.execute(sql.insert, values)
        event.pk = cursor.fetchone()[0] if sql.returning else cursor.lastrowid
        if not sql.folded:
            cursor.execute(sql.update_head, [event.seq, event.hash, key])
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


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    chains: int
    events: int
    problem: str = ""
    event_id: int | None = None
    chain: str = ""
    seq: int | None = None


def verify(chain: str | None = None) -> VerifyResult:
    """Recompute every chain; name the first event that was changed, removed or inserted."""
    heads = {head.chain: head for head in AuditChainHead.objects.all()}
    chains = sorted(set(heads) | set(AuditEvent.objects.values_list("chain", flat=True).distinct()))
    if chain is not None:
        chains = [chain]
    total = 0
    for key in chains:
        expected_prev, expected_seq = GENESIS, 1
        for event in (
            AuditEvent.objects.filter(chain=key).order_by("seq", "id").iterator(chunk_size=2000)
        ):
            total += 1
            where = {"event_id": event.pk, "chain": key, "seq": event.seq}
            if event.seq != expected_seq:
                missing = event.seq > expected_seq
                problem = (
                    f"event #{expected_seq} of chain {key} is missing (found #{event.seq} next)"
                    if missing
                    else f"event id {event.pk} repeats sequence number {event.seq} in chain {key}"
                )
                return VerifyResult(False, len(chains), total, problem, **where)
            if event.prev_hash != expected_prev:
                return VerifyResult(
                    False,
                    len(chains),
                    total,
                    f"event id {event.pk} (#{event.seq} of {key}) does not follow the event before it",
                    **where,
                )
            if compute_hash(event) != event.hash:
                return VerifyResult(
                    False,
                    len(chains),
                    total,
                    f"event id {event.pk} (#{event.seq} of {key}) was changed after it was written",
                    **where,
                )
            expected_prev, expected_seq = event.hash, event.seq + 1
        head = heads.get(key)
        if head is not None and (head.seq != expected_seq - 1 or head.hash != expected_prev):
            return VerifyResult(
                False,
                len(chains),
                total,
                f"chain {key} ends at #{expected_seq - 1} but its head records #{head.seq}: "
                "events were removed from its end",
                chain=key,
                seq=head.seq,
            )
    return VerifyResult(True, len(chains), total)
