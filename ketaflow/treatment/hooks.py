"""What the treatment app adds to other pages: Today panel of open treatment alerts, the
"Treatment day" nav entry, the chart's Sessions and Notes tabs."""

from django.apps import apps as django_apps
from django.template.loader import render_to_string

from ketaflow.accounts.permissions import can
from ketaflow.audit import services as audit
from ketaflow.patients import chart
from ketaflow.patients import selectors as patient_selectors
from ketaflow.patients.scope import ChartScope
from ketaflow.treatment import selectors
from ketaflow.treatment.models import TreatmentSession
from ketaflow.web import dashboard, navigation


def _may_see(request, patient) -> bool:
    access, _ = patient_selectors.chart_access(request.user, request.clinic, patient)
    return access is not None


def alerts_panel(request):
    if not can(request.user, "chart.view", request.clinic):
        return None
    alerts = list(
        selectors.open_alerts(
            request.clinic, limit=20, scope=ChartScope(request.user, request.clinic)
        )
    )
    audit.record_list_read(
        request,
        patient_ids=[a.patient_id for a in alerts],
        object_type="treatment.sessionalert",
        detail={"panel": "treatment-alerts"},
    )
    return render_to_string(
        "treatment/_panel.html",
        {"open_alerts": alerts, "can_respond": can(request.user, "alerts.respond", request.clinic)},
        request=request,
    )


def _sessions(patient):
    return list(
        TreatmentSession.objects.for_clinic(patient.clinic)
        .filter(patient=patient)
        .select_related("chair", "location", "note")
        .order_by("-opened_at")[:50]
    )


def sessions_tab(request, patient):
    if not _may_see(request, patient):
        return None
    sessions = _sessions(patient)
    if not sessions:
        return None  # the tab's empty state says how a session starts
    for s in sessions:
        s.route_label = selectors.route_label(s.route)
    return render_to_string(
        "treatment/_chart_sessions.html",
        {"sessions": sessions, "patient": patient},
        request=request,
    )


def notes_tab(request, patient):
    if not _may_see(request, patient):
        return None
    notes = [n for s in _sessions(patient) if (n := selectors.one(s, "note")) is not None]
    if not notes:
        return None
    return render_to_string(
        "treatment/_chart_notes.html", {"notes": notes, "patient": patient}, request=request
    )


def register() -> None:
    dashboard.panel(order=5)(alerts_panel)
    navigation.item(
        "Treatment day", "treatment:day", action="chart.view", order=25, namespace="treatment"
    )
    chart.section("sessions")(sessions_tab)
    chart.section("notes")(notes_tab)
    if django_apps.is_installed("ketaflow.measures"):
        from ketaflow.measures.selectors import treatment_time_source

        treatment_time_source(selectors.dosed_sessions)
