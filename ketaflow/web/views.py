from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render

from ketaflow.patients import selectors as patient_selectors
from ketaflow.web.dashboard import panels_for
from ketaflow.web.decorators import clinic_required


@clinic_required("patients.view")
def today(request):
    """The day at a glance. Later issues add appointments and alerts above the work queue."""
    clinic = request.clinic
    return render(
        request,
        "web/today.html",
        {
            "needing_action": patient_selectors.needing_action(clinic),
            "counts": patient_selectors.status_counts(clinic),
            "panels": panels_for(request),
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
