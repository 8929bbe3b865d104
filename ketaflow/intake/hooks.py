"""Registrations with the shared hooks: chart Assessment tab, Today panel, navigation."""

from django.apps import apps
from django.template.loader import render_to_string
from django.urls import reverse

from ketaflow.accounts.permissions import can
from ketaflow.audit import services as audit
from ketaflow.intake import selectors
from ketaflow.intake.forms import CHECKLIST, MEDICATION_CLASSES, OUTCOME_CHOICES
from ketaflow.intake.models import ROUTE_CHOICES
from ketaflow.patients import chart
from ketaflow.web import dashboard, navigation

navigation.item("Intake", "intake:queue", action="intake.view", order=20, namespace="intake")

BASELINE = (("phq9", "PHQ-9"), ("gad7", "GAD-7"), ("cssrs", "C-SSRS"))


def baseline_measures(patient):
    """Latest PHQ-9, GAD-7 and C-SSRS from the measures app, when it is installed."""
    if not apps.is_installed("ketaflow.measures"):
        return None
    from ketaflow.measures.selectors import latest_scores

    scores = latest_scores(patient.clinic, patient, codes=[code for code, _ in BASELINE])
    return [
        {
            "code": code,
            "label": label,
            "score": scores.get(code),
            "url": reverse("measures:record", kwargs={"pk": patient.pk}) + f"?instrument={code}",
        }
        for code, label in BASELINE
    ]


@chart.section("assessment")
def assessment_section(request, patient):
    from ketaflow.intake.views import route_rows

    assessment = selectors.latest_assessment(patient)
    results = None
    if assessment is not None:
        results = route_rows(selectors.rule_results(assessment, patient))
    addenda = list(assessment.addenda.select_related("author")) if assessment else []
    labels = {**dict(OUTCOME_CHOICES), **dict(MEDICATION_CLASSES), **dict(CHECKLIST)}
    trials = [
        {**t, "outcome_label": labels.get(t["outcome"], t["outcome"])}
        for t in (assessment.trials if assessment else [])
    ]
    medications = [
        {**m, "class_label": labels.get(m.get("med_class"), "")}
        for m in (assessment.medications if assessment else [])
    ]
    conditions = [labels.get(c, c) for c in (assessment.conditions if assessment else [])]
    return render_to_string(
        "intake/_assessment_section.html",
        {
            "patient": patient,
            "assessment": assessment,
            "addenda": addenda,
            "trials": trials,
            "medications": medications,
            "conditions": conditions,
            "results": results,
            "decision": selectors.current_decision(patient),
            "signatures": list(selectors.signatures(patient)),
            "baseline": baseline_measures(patient),
            "measures_installed": apps.is_installed("ketaflow.measures"),
            "routes": ROUTE_CHOICES,
            "empty": chart.TAB_BY_SLUG["assessment"],
        },
        request=request,
    )


@dashboard.panel(order=15)
def new_requests_panel(request):
    clinic = getattr(request, "clinic", None)
    if clinic is None or not can(request.user, "intake.view", clinic):
        return None
    items = list(selectors.requests(clinic, "new")[:5])
    audit.record_list_read(
        request,
        patient_ids=[r.patient_id for r in items],
        object_ids=[r.pk for r in items],
        object_type="intake.consultationrequest",
        detail={"panel": "new-requests"},
    )
    count = selectors.request_status_counts(clinic)["new"]
    return render_to_string(
        "intake/_today_panel.html", {"items": items, "count": count}, request=request
    )
