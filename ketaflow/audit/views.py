import csv

from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils.http import urlencode

from ketaflow.accounts.models import User
from ketaflow.audit import selectors
from ketaflow.audit import services as audit
from ketaflow.audit.models import Action
from ketaflow.web.decorators import clinic_required

CSV_COLUMNS = [
    "seq",
    "at",
    "actor",
    "action",
    "object_type",
    "object_id",
    "patient_mrn",
    "client_address",
    "user_agent",
    "request_id",
    "emergency",
    "detail",
]


# OWASP "CSV injection": a cell starting with one of these is a formula to spreadsheet
# programs (=HYPERLINK(...) in a User-Agent would run when the export is opened).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    """A value as a CSV cell that spreadsheets show as text: a leading single quote before
    any formula character."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_START) else text


@clinic_required("audit.view")
def report(request):
    error, status = None, 200
    try:
        flt = selectors.parse_filter(request.GET)
        number = selectors.parse_page(request.GET.get("page"))
    except selectors.FilterError as exc:
        error, status, flt, number = exc, 400, selectors.ReportFilter(), 1
    rows, has_next = (
        ([], False) if error else selectors.page(selectors.report(request.clinic, flt), number)
    )
    params = {k: v for k, v in request.GET.items() if k not in {"page"} and v}
    staff = User.objects.filter(memberships__clinic=request.clinic).order_by("full_name")
    return render(
        request,
        "audit/report.html",
        {
            "rows": rows,
            "has_next": has_next,
            "number": number,
            "flt": flt,
            "error": error,
            "params": params,
            "querystring": urlencode(params),
            "staff": staff,
            "actions": Action.values,
            "object_types": selectors.object_types(request.clinic),
            "sort_links": {
                key: urlencode({**params, "sort": key if flt.sort == f"-{key}" else f"-{key}"})
                for key in selectors.SORTABLE
            },
        },
        status=status,
    )


class _Echo:
    def write(self, value):
        return value


@clinic_required("audit.view")
def export_csv(request):
    try:
        flt = selectors.parse_filter(request.GET)
    except selectors.FilterError as exc:
        return render(
            request,
            "audit/report.html",
            {"error": exc, "rows": [], "flt": selectors.ReportFilter()},
            status=400,
        )
    audit.record(
        action="export",
        clinic=request.clinic,
        actor=request.user,
        object_type="audit.auditevent",
        detail={"format": "csv", "filter": {k: v for k, v in request.GET.items() if v}},
    )
    qs = selectors.report(request.clinic, flt)
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(CSV_COLUMNS)
        for e in qs.iterator(chunk_size=2000):
            yield writer.writerow(
                [
                    csv_cell(value)
                    for value in (
                        e.seq,
                        e.at.isoformat(),
                        e.actor_label,
                        e.action,
                        e.object_type,
                        e.object_id,
                        e.patient.mrn if e.patient else "",
                        e.client_address,
                        e.user_agent,
                        e.request_id,
                        "yes" if e.emergency else "",
                        e.detail,
                    )
                ]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="ketaflow-audit.csv"'
    return response
