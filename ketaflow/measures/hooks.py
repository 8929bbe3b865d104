"""What this app adds to other pages: the chart's Measures tab and Overview chart, the risk
banner on every chart page, the Today panel of open alerts, and the "Alerts" nav entry.
Each provider issues a constant number of queries whatever the patient's history."""

import datetime

from django.template.loader import render_to_string

from ketaflow.accounts.permissions import can
from ketaflow.audit import services as audit
from ketaflow.clinical.instruments import suicidality
from ketaflow.measures import charts, selectors
from ketaflow.patients import chart
from ketaflow.patients import selectors as patient_selectors
from ketaflow.patients.scope import ChartScope
from ketaflow.web import dashboard, navigation

ITEM_TABLE_COLUMNS = 10
# Alerts stored before the urgency table (kind "cssrs-risk") sort as the most urgent.
_URGENCY_RANK = {u: suicidality.rank(u) for u in suicidality.URGENCIES}


def _may_see_chart(request, patient) -> bool:
    cache = request.__dict__.setdefault("_kf_measures_access", {})
    if patient.pk not in cache:
        access, _ = patient_selectors.chart_access(request.user, request.clinic, patient)
        cache[patient.pk] = access is not None
    return cache[patient.pk]


def _open_flag(request, patient):
    cache = request.__dict__.setdefault("_kf_measures_flag", {})
    if patient.pk not in cache:
        cache[patient.pk] = selectors.open_flag(patient)
    return cache[patient.pk]


def _decorate(block, tz, prefix):
    for h in block.histories:
        if h.instrument.score_range is not None:
            h.svg = charts.trend_svg(h, block.treatments, tz, chart_id=f"{prefix}-{h.code}")
        recent = h.rows[-ITEM_TABLE_COLUMNS:]
        h.table_columns = recent
        h.table_rows = [
            {
                "key": item.key,
                "text": item.text,
                "cells": [a.answers.get(item.key, "–") for a in recent],
            }
            for item in h.instrument.items
        ]


def measures_tab(request, patient):
    """One block per treatment course (plan) with its outcomes, trend charts and ▲ session
    markers, then "No course" for scores not linked to a plan."""
    clinic = request.clinic
    tz = clinic.tz
    blocks = selectors.course_measures(patient)
    links = selectors.pending_links(patient)
    schedules = selectors.schedules(patient)
    now = datetime.datetime.now(datetime.UTC)
    for block in blocks:
        _decorate(block, tz, f"trend-{block.plan.pk if block.plan else 'none'}")
    return render_to_string(
        "measures/_tab.html",
        {
            "patient": patient,
            "blocks": blocks,
            "histories": [h for b in blocks for h in b.histories],
            "links": [(link, link.status_at(now)) for link in links],
            "schedules": schedules,
            "flag": _open_flag(request, patient),
            "can_record": can(request.user, "measures.record", clinic),
            "can_send": can(request.user, "measures.send", clinic),
            "can_respond": can(request.user, "alerts.respond", clinic),
            "columns": ITEM_TABLE_COLUMNS,
        },
        request=request,
    )


def overview(request, patient):
    """Latest scores, and the compact chart of the most recent course with scores."""
    if not _may_see_chart(request, patient):
        return None
    blocks = selectors.course_measures(patient)
    if not blocks:
        return None
    courses = [b for b in blocks if b.plan is not None] or blocks
    block = courses[-1]
    histories = block.histories
    scored = [h for h in histories if h.instrument.score_range is not None]
    main = scored[0] if scored else None
    svg = (
        charts.trend_svg(
            main, block.treatments, request.clinic.tz, compact=True, chart_id="overview"
        )
        if main
        else ""
    )
    return render_to_string(
        "measures/_overview.html",
        {"patient": patient, "histories": histories, "main": main, "svg": svg, "block": block},
        request=request,
    )


def risk_banner(request, patient):
    if request is None or getattr(request, "clinic", None) is None:
        return None
    if not _may_see_chart(request, patient):
        return None
    flag = _open_flag(request, patient)
    if flag is None:
        return None
    return render_to_string(
        "measures/_banner.html",
        {
            "flag": flag,
            "patient": patient,
            "can_respond": can(request.user, "alerts.respond", request.clinic),
        },
        request=request,
    )


def alerts_panel(request):
    if not can(request.user, "chart.view", request.clinic):
        return None
    scope = ChartScope(request.user, request.clinic)
    # Most urgent first (immediate, urgent, same day), newest first within an urgency.
    open_alerts = sorted(
        selectors.alerts(request.clinic, scope=scope, limit=20),
        key=lambda a: -_URGENCY_RANK.get(a.severity, len(suicidality.URGENCIES)),
    )
    flags = list(selectors.open_flags(request.clinic, scope=scope, limit=20))
    audit.record_list_read(
        request,
        patient_ids=[a.patient_id for a in open_alerts] + [f.patient_id for f in flags],
        object_type="measures.safetyalert",
        detail={"panel": "measures-alerts"},
    )
    return render_to_string(
        "measures/_panel.html",
        {
            "open_alerts": open_alerts,
            "flags": flags,
            "can_respond": can(request.user, "alerts.respond", request.clinic),
        },
        request=request,
    )


def register() -> None:
    chart.section("measures")(measures_tab)
    chart.section("overview")(overview)
    chart.banner(risk_banner)
    dashboard.panel(order=10)(alerts_panel)
    navigation.item(
        "Alerts", "measures:alerts", action="chart.view", order=20, namespace="measures"
    )
