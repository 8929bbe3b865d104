"""Reads of the audit trail (ONC 170.315(d)(3) report), always scoped to one clinic."""

import datetime
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from ketaflow.audit.models import Action, AuditEvent

SORTABLE = {
    "at": "at",
    "actor": "actor_label",
    "action": "action",
    "object": "object_type",
    "patient": "patient_id",
    "address": "client_address",
}


@dataclass
class ReportFilter:
    date_from: datetime.date | None = None
    date_to: datetime.date | None = None
    actor_id: int | None = None
    patient_id: int | None = None
    action: str = ""
    object_type: str = ""
    emergency_only: bool = False
    sort: str = "-at"


class FilterError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse_filter(params) -> ReportFilter:
    """Read report filters from a query dict; raise FilterError naming the field."""
    result = ReportFilter()
    for name in ("date_from", "date_to"):
        value = (params.get(name) or "").strip()
        if value:
            try:
                setattr(result, name, datetime.date.fromisoformat(value))
            except ValueError:
                raise FilterError(name, "use a date as YYYY-MM-DD.") from None
    if result.date_from and result.date_to and result.date_from > result.date_to:
        raise FilterError("date_to", "must be on or after the start date.")
    for name, attr in (("user", "actor_id"), ("patient", "patient_id")):
        value = (params.get(name) or "").strip()
        if value:
            if not (value.isascii() and value.isdigit()) or int(value) > 2**63 - 1:
                raise FilterError(name, "must be a number (an id from the list).")
            setattr(result, attr, int(value))
    action = (params.get("action") or "").strip()
    if action and action not in Action.values:
        raise FilterError("action", f"must be one of {', '.join(Action.values)}.")
    result.action = action
    result.object_type = (params.get("object_type") or "").strip()[:60]
    result.emergency_only = (params.get("emergency") or "") in {"1", "true", "on"}
    sort = (params.get("sort") or "-at").strip()
    if sort.lstrip("-") not in SORTABLE:
        raise FilterError(
            "sort", f"must be one of {', '.join(SORTABLE)} (prefix - for descending)."
        )
    result.sort = sort
    return result


def report(clinic, flt: ReportFilter):
    qs = AuditEvent.objects.for_clinic(clinic)
    tz = timezone.get_current_timezone()
    if flt.date_from:
        qs = qs.filter(
            at__gte=datetime.datetime.combine(flt.date_from, datetime.time.min, tzinfo=tz)
        )
    if flt.date_to:
        end = datetime.datetime.combine(
            flt.date_to + datetime.timedelta(days=1), datetime.time.min, tzinfo=tz
        )
        qs = qs.filter(at__lt=end)
    if flt.actor_id:
        qs = qs.filter(actor_id=flt.actor_id)
    if flt.patient_id:
        qs = qs.filter(patient_id=flt.patient_id)
    if flt.action:
        qs = qs.filter(action=flt.action)
    if flt.object_type:
        qs = qs.filter(object_type=flt.object_type)
    if flt.emergency_only:
        qs = qs.filter(emergency=True)
    field = SORTABLE[flt.sort.lstrip("-")]
    # Ties are broken by time and id in the same direction as the chosen column, so that each
    # sort reads straight from one (clinic, column, at) index, forwards or backwards, instead
    # of sorting every event of the clinic (seconds at a million events).
    sign = "-" if flt.sort.startswith("-") else ""
    order = [f"{sign}{name}" for name in dict.fromkeys([field, "at", "id"])]
    return qs.select_related("patient").order_by(*order)


def page(qs, number: int, size: int = 50):
    """Offset page without COUNT(*): returns (rows, has_next)."""
    number = max(1, number)
    rows = list(qs[(number - 1) * size : number * size + 1])
    return rows[:size], len(rows) > size


def patient_activity(clinic, patient):
    return AuditEvent.objects.for_clinic(clinic).filter(patient=patient).order_by("-at", "-id")


def object_types(clinic) -> list[str]:
    """The clinic's object types, sorted: one probe of the (clinic, object_type, at) index per
    type (a loose index scan), where SELECT DISTINCT would read every event of the clinic."""
    if clinic is None:
        return []
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    sql = f"""
        WITH RECURSIVE types (name) AS (
            SELECT MIN(object_type) FROM {table} WHERE clinic_id = %s
            UNION ALL
            SELECT (SELECT MIN(object_type) FROM {table}
                    WHERE clinic_id = %s AND object_type > types.name)
            FROM types WHERE types.name IS NOT NULL
        )
        SELECT name FROM types WHERE name IS NOT NULL ORDER BY name
    """  # noqa: S608 (the table name comes from the model; the clinic is a parameter)
    with connection.cursor() as cursor:
        cursor.execute(sql, [clinic.pk, clinic.pk])
        return [name for (name,) in cursor.fetchall()]
