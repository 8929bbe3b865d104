import datetime

from django.core.exceptions import ValidationError
from ninja import Router, Schema

from ketaflow.api import ERRORS, api_require
from ketaflow.audit import selectors
from ketaflow.web import bounds

router = Router(tags=["audit"])


class AuditEventOut(Schema):
    id: int
    seq: int
    at: datetime.datetime
    actor_id: int | None
    actor_label: str
    patient_id: int | None
    action: str
    object_type: str
    object_id: str
    client_address: str
    user_agent: str
    request_id: str
    emergency: bool
    detail: dict


class EventPage(Schema):
    items: list[AuditEventOut]
    page: int
    has_more: bool


@router.get("/events", response={200: EventPage, **ERRORS}, summary="Audit report")
def events(
    request,
    date_from: str = "",
    date_to: str = "",
    user: str = "",
    patient: str = "",
    action: str = "",
    object_type: str = "",
    emergency: str = "",
    sort: str = "-at",
    page: bounds.bounded_int(le=bounds.OFFSET_MAX // 50) = 1,
):
    """Filter by date range (YYYY-MM-DD), user id, patient id, action and object type; sort by any column."""
    clinic = api_require(request, "audit.view")
    params = {
        "date_from": date_from,
        "date_to": date_to,
        "user": user,
        "patient": patient,
        "action": action,
        "object_type": object_type,
        "emergency": emergency,
        "sort": sort,
    }
    try:
        flt = selectors.parse_filter(params)
        number = selectors.parse_page(page)
    except selectors.FilterError as exc:
        raise ValidationError({exc.field: [exc.message]}) from exc
    rows, has_more = selectors.page(selectors.report(clinic, flt), number)
    return {"items": rows, "page": number, "has_more": has_more}
