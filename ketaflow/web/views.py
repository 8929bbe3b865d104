from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render

from ketaflow.audit import services as audit
from ketaflow.patients import selectors as patient_selectors
from ketaflow.web.dashboard import panels_for
from ketaflow.web.decorators import clinic_required


@clinic_required("patients.view")
def today(request):
    """The day at a glance. Later issues add appointments and alerts above the work queue."""
    clinic = request.clinic
    # The page and its panels are one audited read naming every patient shown.
    with audit.list_read_batch(request, object_type="web.today"):
        needing_action = list(patient_selectors.needing_action(clinic))
        audit.record_list_read(
            request,
            patient_ids=[p.pk for p in needing_action],
            object_type="patients.patient",
            detail={"panel": "needing-action"},
        )
        panels = panels_for(request)
    return render(
        request,
        "web/today.html",
        {
            "needing_action": needing_action,
            "counts": patient_selectors.status_counts(clinic),
            "panels": panels,
        },
    )


def healthz(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


def csrf_failure(request, reason=""):
    """A forged or missing CSRF token: a neutral page and an audit event, never a server error."""
    from ketaflow.accounts.services import record_rejected_request

    record_rejected_request(user=getattr(request, "user", None), reason="csrf", path=request.path)
    return render(
        request,
        "403.html",
        {
            "reason": "This form was out of date or did not come from ketaflow. Go back, reload the page and try again."
        },
        status=403,
    )


def permission_denied(request, exception=None):
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)
