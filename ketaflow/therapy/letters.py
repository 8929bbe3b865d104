"""The facts of a progress letter, generated from the record (never from therapy notes).

The letter says what the record says: treatment dates, routes and doses from the treatment
sessions, questionnaire scores with their baseline and the outcome rules of
``clinical.instruments.outcomes`` (response, partial response, remission), and the current
concurrent medications. Psychotherapy notes and every other therapy note stay out of it.
"""

import datetime

from django.apps import apps as django_apps

from ketaflow.therapy import selectors

# In-session instruments (clinical reference, section 5 "Others": "In-session: MOAA/S,
# CADSS-23, BPRS positive"): charted on the treatment day, not progress measures.
IN_SESSION = frozenset({"moaas", "cadss", "bprs-positive"})


def _yn(value) -> str:
    return "not assessed" if value is None else ("yes" if value else "no")


def _histories(patient, plan):
    if not django_apps.is_installed("ketaflow.measures"):
        return [], []
    from ketaflow.measures import selectors as measures

    blocks = measures.course_measures(patient)
    if plan is not None:
        block = next((b for b in blocks if b.plan is not None and b.plan.pk == plan.pk), None)
        return (block.histories, block.treatments) if block else ([], [])
    courses = [b for b in blocks if b.plan is not None]
    if courses:
        return courses[-1].histories, courses[-1].treatments
    return [], []


def _treatments(patient, plan, tz) -> list[dict]:
    """Treatments given: every treatment session in which dosing started (route and dose from
    its record), and completed dosing visits with no session record (the measures app's
    treatment timeline counts them too; their dose is not recorded in ketaflow)."""
    from ketaflow.scheduling.models import Appointment
    from ketaflow.treatment import selectors as tx

    every = selectors.patient_sessions(patient, plan)
    sessions = [s for s in every if s.dose_started_at]
    rows = []
    for s in sessions:
        admin = tx.one(s, "administration")
        rows.append(
            (
                s.dose_started_at,
                {
                    "date": s.dose_started_at.astimezone(tz).date().isoformat(),
                    "route": tx.route_label(s.route),
                    "dose_mg": f"{admin.recorded_mg.normalize():f}" if admin else "",
                    "state": s.get_state_display(),
                },
            )
        )
    visits = (
        Appointment.objects.for_clinic(patient.clinic)
        .filter(patient=patient, status=Appointment.Status.COMPLETED)
        .exclude(type__route="")
        .exclude(pk__in=[s.appointment_id for s in every])
        .select_related("type")
    )
    if plan is not None:
        visits = visits.filter(plan=plan)
    for a in visits:
        rows.append(
            (
                a.start,
                {
                    "date": a.start.astimezone(tz).date().isoformat(),
                    "route": tx.route_label(a.type.route),
                    "dose_mg": "",
                    "state": "Completed visit (no session record)",
                },
            )
        )
    rows.sort(key=lambda r: r[0])
    return [r for _at, r in rows]


def facts(patient, plan=None) -> dict:
    tz = patient.clinic.tz
    treatments = _treatments(patient, plan, tz)
    histories, _times = _histories(patient, plan)
    measures = []
    for h in histories:
        if h.instrument.score_range is None or h.code in IN_SESSION:
            continue
        scores = [
            [a.taken_at.astimezone(tz).date().isoformat(), a.total]
            for a in h.rows
            if a.total is not None
        ]
        if not scores:
            continue
        latest = h.latest
        series = h.series
        measures.append(
            {
                "code": h.code,
                "name": h.instrument.short_name,
                "range": list(h.instrument.score_range),
                "scores": scores,
                "baseline": series.baseline[1] if series and series.baseline else None,
                "latest": scores[-1][1],
                "latest_date": scores[-1][0],
                "severity": h.newest.severity,
                "percent_change": round(latest.percent_change)
                if latest and latest.percent_change is not None
                else None,
                "response": _yn(latest.response if latest else None),
                "partial_response": _yn(latest.partial_response if latest else None),
                "remission": _yn(latest.remission if latest else None),
                "rules": {
                    k: latest.rules.get(k, "")
                    for k in ("response", "partial_response", "remission")
                }
                if latest
                else {},
            }
        )
    status = []
    for m in measures:
        if m["baseline"] is None:
            status.append(
                f"{m['name']}: no baseline before the first treatment, outcome not assessed."
            )
            continue
        pct = (
            f" ({m['percent_change']:+d}% from baseline)" if m["percent_change"] is not None else ""
        )
        status.append(
            f"{m['name']}: baseline {m['baseline']}, latest {m['latest']} on {m['latest_date']}"
            f"{pct}; response {m['response']}, partial response {m['partial_response']}, "
            f"remission {m['remission']}."
        )
    course = {}
    if plan is not None and plan.current is not None:
        v = plan.current
        course = {
            "protocol": v.protocol_name,
            "route": v.route_label,
            "start_date": v.start_date.isoformat(),
            "status": plan.get_status_display(),
        }
    meds = [
        {"name": m.name, "dose": m.dose, "class": m.class_label, "note": m.note}
        for m in selectors.concurrent_medications(patient)
    ]
    return {
        "generated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "clinic": patient.clinic.name,
        "patient": {
            "name": patient.legal_name,
            "date_of_birth": patient.date_of_birth.isoformat(),
            "mrn": patient.mrn,
        },
        "course": course,
        "treatments": treatments,
        "measures": measures,
        "response_status": status,
        "medications": meds,
    }
