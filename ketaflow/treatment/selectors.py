"""Treatment-day reads, always scoped to the clinic. The chair board runs a constant number
of queries whatever the number of sessions."""

import datetime
from dataclasses import dataclass, field

from django.core.exceptions import ObjectDoesNotExist
from django.shortcuts import get_object_or_404

from ketaflow.clinical import dosing
from ketaflow.clinical import vitals as rules
from ketaflow.treatment import rems
from ketaflow.treatment.models import (
    RemsForm,
    SessionAlert,
    TreatmentSession,
    VitalSign,
)
from ketaflow.treatment.services import (
    baseline_of,
    now,
    settings_for,
)

S = TreatmentSession.State


def one(obj, name):
    """A reverse one-to-one, or None."""
    try:
        return getattr(obj, name)
    except ObjectDoesNotExist:
        return None


def get_session(clinic, pk) -> TreatmentSession:
    return get_object_or_404(
        TreatmentSession.objects.for_clinic(clinic).select_related(
            "patient", "chair", "location", "plan_version", "appointment"
        ),
        pk=pk,
    )


def get_alert(clinic, pk) -> SessionAlert:
    return get_object_or_404(
        SessionAlert.objects.for_clinic(clinic).select_related("session", "patient"), pk=pk
    )


def local_day_bounds(clinic, day=None):
    tz = clinic.tz
    day = day or now().astimezone(tz).date()
    start = datetime.datetime.combine(day, datetime.time(0), tzinfo=tz)
    return start.astimezone(datetime.UTC), (start + datetime.timedelta(days=1)).astimezone(
        datetime.UTC
    )


def todays_dose_appointments(clinic, location=None):
    from ketaflow.scheduling.models import Appointment

    start, end = local_day_bounds(clinic)
    qs = (
        Appointment.objects.for_clinic(clinic)
        .filter(start__gte=start, start__lt=end, status__in=["booked", "completed"])
        .exclude(type__route="")
        .select_related("patient", "type", "chair", "location")
        .order_by("start")
    )
    if location is not None:
        qs = qs.filter(location=location)
    return qs


def sessions_today(clinic):
    start, end = local_day_bounds(clinic)
    return (
        TreatmentSession.objects.for_clinic(clinic)
        .filter(opened_at__gte=start, opened_at__lt=end)
        .select_related("patient", "chair", "location")
    )


def open_alerts(clinic, limit=50, *, scope):
    """Unacknowledged alerts of the patients ``scope`` (a ``patients.scope.ChartScope``) sees."""
    qs = (
        SessionAlert.objects.for_clinic(clinic)
        .filter(acknowledged_at__isnull=True)
        .select_related("patient", "session__chair")
        .order_by("created_at")
    )
    return scope.visible(qs)[:limit]


@dataclass
class BoardRow:
    session: TreatmentSession
    minutes: int
    last: VitalSign | None
    last_age: int | None
    due: rules.Due | None
    due_status: str
    alerts: list = field(default_factory=list)
    recheck: str = ""
    since: str = "check-in"
    route_label: str = ""
    banner: object = None  # patients.selectors.SafetyBanner, set by attach_banners


def attach_banners(clinic, rows, *, scope) -> None:
    """Each chair's safety banner (two identifiers, age, allergies, risk flag, consent,
    similar names in today), for all rows at once: a constant number of queries."""
    from ketaflow.patients.selectors import safety_banners

    banners = safety_banners(clinic, [r.session.patient for r in rows], scope=scope)
    for r in rows:
        r.banner = banners[r.session.patient_id]


def board_locations(clinic, scope):
    """The locations whose chairs ``scope``'s member may watch: their own, or all of them
    for members with no locations listed."""
    qs = clinic.locations.order_by("name")
    if scope.location_ids:
        qs = qs.filter(pk__in=scope.location_ids)
    return qs


def board_chairs_in_use_by_others(clinic, location=None, *, scope) -> list[tuple[str, str]]:
    """(location, chair) of active sessions at the member's locations whose patient is
    outside their scope: the board shows the chair as in use, without the patient."""
    if not scope.location_ids:
        return []
    qs = TreatmentSession.objects.for_clinic(clinic).filter(
        state__in=TreatmentSession.ACTIVE, location__in=board_locations(clinic, scope)
    )
    if location is not None:
        qs = qs.filter(location=location)
    hidden = qs.exclude(pk__in=scope.visible(qs).values("pk"))
    return list(
        hidden.order_by("location__name", "chair__name").values_list(
            "location__name", "chair__name"
        )
    )


def board(clinic, location=None, *, scope) -> list[BoardRow]:
    """Every active session at the member's locations (``scope``, a
    ``patients.scope.ChartScope``) whose patient's chart the member may open; today's
    finished ones are not shown. 3 queries."""
    qs = (
        TreatmentSession.objects.for_clinic(clinic)
        .filter(state__in=TreatmentSession.ACTIVE)
        .select_related("patient", "chair", "location")
        .order_by("location__name", "chair__name", "opened_at")
    )
    qs = scope.visible(qs)
    if scope.location_ids:
        qs = qs.filter(location__in=board_locations(clinic, scope))
    if location is not None:
        qs = qs.filter(location=location)
    sessions = list(qs)
    ids = [s.pk for s in sessions]
    readings: dict[int, list[VitalSign]] = {i: [] for i in ids}
    for v in VitalSign.objects.filter(session_id__in=ids).order_by("at", "id"):
        readings[v.session_id].append(v)
    alerts: dict[int, list[SessionAlert]] = {i: [] for i in ids}
    for a in SessionAlert.objects.filter(session_id__in=ids, acknowledged_at__isnull=True):
        alerts[a.session_id].append(a)
    cfg = settings_for(clinic).as_rules() if sessions else rules.DEFAULTS
    t = now()
    rows = []
    for s in sessions:
        vit = readings[s.pk]
        last = vit[-1] if vit else None
        result = series(s, vit, cfg, t)
        due = result.due
        rows.append(
            BoardRow(
                session=s,
                minutes=int((t - (s.dose_started_at or s.opened_at)).total_seconds() // 60),
                since="dose start" if s.dose_started_at else "check-in",
                route_label=route_label(s.route),
                last=last,
                last_age=int((t - last.at).total_seconds() // 60) if last else None,
                due=due,
                due_status=due.status(t) if due else "",
                alerts=alerts[s.pk],
                recheck=recheck_prompt(result, clinic.tz),
            )
        )
    return rows


def series(s: TreatmentSession, vit: list[VitalSign], cfg, t=None) -> rules.SeriesResult:
    """The session's readings through the one series function (clinical.vitals.evaluate_series):
    findings per reading, pending rechecks and the next due reading (at ``t``)."""
    readings = {v.pk: v.as_reading() for v in vit}
    base = baseline_of(vit)
    return rules.evaluate_series(
        route=s.route,
        dose_start=s.dose_started_at,
        dose_end=s.dose_ended_at,
        baseline=readings[base.pk] if base is not None else None,
        readings=[readings[v.pk] for v in vit],
        settings=cfg,
        now=t,
    )


def recheck_prompt(result: rules.SeriesResult, tz) -> str:
    """The pending recheck of an unconfirmed alert, if any, with its (local) time."""
    if not result.pending or result.due is None:
        return ""
    return f"{result.due.reason}, by {result.due.at.astimezone(tz):%H:%M}."


@dataclass
class SessionView:
    session: TreatmentSession
    vitals: list
    baseline: VitalSign | None
    alerts: list
    measures: list
    dose_events: list
    events: list
    waste: list
    changes: list
    administration: object
    note: object
    addenda: list
    rems: object
    due: rules.Due | None
    due_status: str
    recheck: str
    predose: list
    unmet: list
    settings: object
    #: VitalSign pk -> (findings, next due after it) from the series function.
    findings: dict = field(default_factory=dict)
    waste_due: dict | None = None


def session_view(s: TreatmentSession) -> SessionView:
    from ketaflow.treatment import services

    vit = list(s.vitals.select_related("recorded_by").order_by("at", "id"))
    alerts = list(s.alerts.select_related("acknowledged_by").order_by("-created_at"))
    measures = list(s.measures.all())
    cfg_row = settings_for(s.clinic)
    cfg = cfg_row.as_rules()
    t = now()
    result = series(s, vit, cfg, t)
    due = result.due if s.is_active else None
    # vit is in (at, id) order, the series function's order (a stable sort by time).
    findings = {}
    for v, r in zip(vit, result.readings, strict=True):
        findings[v.pk] = (list(r.findings), r.due)
        v.series_findings = list(r.findings)  # the flowsheet's Findings column
    open_count = sum(1 for a in alerts if a.is_open)
    note = one(s, "note")
    administration = one(s, "administration")
    rems_form = one(s, "rems")
    return SessionView(
        session=s,
        vitals=vit,
        baseline=baseline_of(vit),
        alerts=alerts,
        measures=measures,
        dose_events=list(s.dose_events.select_related("actor")),
        events=list(s.events.all()),
        waste=list(s.waste.select_related("wasted_by", "witness")),
        changes=list(s.changes.select_related("actor")),
        administration=administration,
        note=note,
        addenda=list(note.addenda.select_related("signed_by")) if note and note.pk else [],
        rems=rems_form,
        due=due,
        due_status=due.status(t) if due else "",
        recheck=recheck_prompt(result, s.clinic.tz) if s.is_active else "",
        predose=services.predose_problems(s, vit, measures)
        if s.state in (S.CHECKED_IN, S.PRE_ASSESSMENT)
        else [],
        unmet=services.unmet_criteria(s, vitals=vit, measures=measures, open_alerts=open_count)
        if s.state in (S.MONITORING, S.RECOVERY, S.READY)
        else [],
        settings=cfg_row,
        findings=findings,
        waste_due=services.waste_due(s) if administration else None,
    )


# ---------------------------------------------------------------------------- note and REMS


def _local(dt, clinic):
    return dt.astimezone(clinic.tz).strftime("%H:%M") if dt else "–"


def note_text(s: TreatmentSession) -> str:
    """The structured part of the session note, generated from the record."""
    clinic = s.clinic
    v = session_view(s)
    lines = [
        f"Treatment session {s.pk}: {s.patient.display_name} (MRN {s.patient.mrn})",
        f"Date {s.opened_at.astimezone(clinic.tz):%Y-%m-%d}, route {s.route}, "
        f"location {s.location.name}{', ' + s.chair.name if s.chair_id else ''}.",
        "",
        "Timeline: "
        + "; ".join(f"{S(c.to_state).label} {_local(c.at, clinic)}" for c in v.changes),
    ]
    c = s.checklist or {}
    if c:
        lines.append(
            f"Pre-assessment: food {c.get('food_hours')} h, liquids {c.get('liquid_minutes')} min "
            f"ago; ride home {'yes' if c.get('ride_home') else 'no'}; pregnancy "
            f"{c.get('pregnancy') or '–'}; consent valid "
            f"{ {True: 'yes', False: 'no', None: 'not checked'}[c.get('consent_valid')] }; "
            f"medication changes: {c.get('medication_changes') or 'none'}; new symptoms: "
            f"{c.get('new_symptoms') or 'none'}."
        )
    if s.proceed_at:
        lines.append(f"Prescriber proceeded despite the pre-dose limit: {s.proceed_reason}")
    if s.calculation:
        lines.append("Dose: " + "; ".join(s.calculation.get("arithmetic", [])))
    if v.administration:
        a = v.administration
        lines.append(
            f"Prepared {a.drug}, {a.product} {a.concentration}, lot {a.lot_number} "
            f"(exp {a.expiry}), {dosing.fmt(a.dose_mg)} mg drawn, {a.route}, by "
            f"{a.administered_by.get_full_name()}."
        )
        if a.given_mg is None:
            lines.append("Dose given: not yet known (dosing has not ended).")
        else:
            lines.append(
                f"Dose given: {dosing.fmt(a.given_mg)} mg of {dosing.fmt(a.dose_mg)} mg drawn"
                + (f"; {dosing.fmt(a.unused_mg)} mg not given" if a.unused_mg else "")
                + " ("
                + "; ".join(a.given_arithmetic)
                + ")."
            )
    for e in v.dose_events:
        extra = f" rate {e.rate_mg_per_min} mg/min" if e.rate_mg_per_min else ""
        dev = f" #{e.device_number}" if e.device_number else ""
        reason = f" ({e.reason})" if e.reason else ""
        lines.append(f"  {_local(e.at, clinic)} {e.get_kind_display()}{dev}{extra}{reason}")
    for w in v.waste:
        lines.append(
            f"Waste {w.amount_mg} mg by {w.wasted_by.get_full_name()}, witnessed by "
            f"{w.witness.get_full_name()}: {w.reason}"
        )
    if v.vitals:
        lines.append("Vital signs (BP, HR, SpO2, RR):")
        for r in v.vitals:
            lines.append(
                f"  {_local(r.at, clinic)} {r.bp} HR {r.heart_rate or '–'} SpO2 "
                f"{r.spo2 or '–'} RR {r.resp_rate or '–'}{' (baseline)' if r.is_baseline else ''}"
            )
    for a in reversed(v.alerts):
        ack = (
            f"acknowledged {_local(a.acknowledged_at, clinic)} by "
            f"{a.acknowledged_by.get_full_name()}: {a.get_action_display()}"
            if a.acknowledged_at
            else "NOT acknowledged"
        )
        if a.status == SessionAlert.Status.RESOLVED:
            ack = f"resolved {_local(a.acknowledged_at, clinic)}: {a.note}"
        elif a.recheck_missed_at:
            ack += f"; recheck missed, escalated {_local(a.recheck_missed_at, clinic)}"
        label = a.label[0] + a.label[1:].lower()  # "Alert", "Alert (unconfirmed)", "Resolved"
        lines.append(f"{label} {_local(a.created_at, clinic)}: {a.message} ({ack})")
    for m in v.measures:
        lines.append(f"{m.instrument.upper()} ({m.timing}-dose) {_local(m.at, clinic)}: {m.total}")
    for e in v.events:
        lines.append(
            f"{e.get_kind_display()} {_local(e.at, clinic)}: {e.effect}, {e.severity}"
            f"{', serious' if e.serious else ''}{', outcome ' + e.outcome if e.outcome else ''}"
            f"{'; ' + e.intervention if e.intervention else ''}"
        )
    if s.discharged_at:
        lines.append(
            f"Discharged {_local(s.discharged_at, clinic)}"
            + (f" on prescriber override: {s.override_reason}" if s.override_reason else "")
            + "; walks steadily, responsible adult present."
        )
    if s.state == S.STOPPED or s.state_reason:
        lines.append(f"Reason recorded: {s.state_reason}")
    return "\n".join(lines)


def rems_prefill(s: TreatmentSession) -> dict:
    from django.apps import apps

    v = session_view(s)
    clinic = s.clinic
    classes = set()
    if apps.is_installed("ketaflow.intake"):
        from ketaflow.intake import selectors as intake

        classes = intake.current_medication_classes(s.patient)
    bp = [r for r in v.vitals if r.systolic is not None]
    base = v.baseline
    at40 = None
    if s.dose_started_at:
        mark = s.dose_started_at + datetime.timedelta(minutes=40)
        after = [r for r in bp if r.at >= s.dose_started_at]
        if after:
            at40 = min(after, key=lambda r: abs((r.at - mark).total_seconds()))
    last = bp[-1] if bp else None
    # the dose given (devices actually used), not the dose drawn
    dose = str(int(v.administration.recorded_mg)) if v.administration else ""
    end = s.discharged_at or now()
    total = int((end - s.dose_started_at).total_seconds() // 60) if s.dose_started_at else ""
    pre = [m for m in v.measures if m.instrument == "moaas" and m.timing == "pre"]
    post = [m for m in v.measures if m.instrument == "moaas" and m.timing == "post"]
    from ketaflow.clinical import instruments

    sedation = (
        any(instruments.sedation(pre[-1].total, m.total) for m in post) if pre and post else None
    )
    cadss = [m for m in v.measures if m.instrument == "cadss" and m.timing == "post"]
    yn = {True: "yes", False: "no", None: ""}
    patient = s.patient
    staff = s.opened_by
    location = s.location
    start = s.dose_started_at
    ready = (
        int((s.ready_without_rule_at - start).total_seconds() // 60)
        if start and s.ready_without_rule_at
        else ""
    )
    earlier = TreatmentSession.objects.filter(
        patient_id=patient.pk, route=dosing.ESKETAMINE, dose_started_at__isnull=False
    )
    if start:
        earlier = earlier.filter(dose_started_at__lt=start)
    completion = last if last and last is not base else None
    given, _, family = (staff.get_full_name() or "").strip().partition(" ")

    def bp(reading, part):
        value = getattr(reading, part, None) if reading else None
        return value if value is not None else ""

    return {
        "patient_first_name": patient.legal_given_name,
        "patient_last_name": patient.legal_family_name,
        "patient_dob": patient.date_of_birth.isoformat() if patient.date_of_birth else "",
        "patient_sex": patient.sex_assigned_at_birth
        if patient.sex_assigned_at_birth in ("male", "female")
        else "",
        "first_treatment": yn[not earlier.exists()],
        "enrolled": "",
        "benzodiazepine": yn["benzodiazepine" in classes],
        "sedative_hypnotic": yn["sedative_hypnotic" in classes],
        "opioid": yn["opioid" in classes],
        "psychostimulant": yn["psychostimulant" in classes],
        "maoi": yn["maoi" in classes],
        "provider_first_name": given,
        "provider_last_name": family,
        "provider_phone": "",
        "provider_email": staff.email,
        "setting_name": f"{clinic.name}, {location.name}",
        "setting_address1": getattr(location, "address", "") or "",
        "setting_address2": "",
        "setting_city": "",
        "setting_state": "",
        "setting_zip": "",
        "treatment_date": (start or s.opened_at).astimezone(clinic.tz).date().isoformat(),
        "dose": dose if dose in ("56", "84") else ("other" if dose else ""),
        "dose_other_mg": int(dose) if dose and dose not in ("56", "84") else "",
        "lot_number": v.administration.lot_number if v.administration else "",
        "total_minutes": total,
        "ready_minutes": ready,
        "vitals_ok_before": yn[bool(base) and not v.session.proceed_at] if base else "",
        "vitals_ok_completion": yn[bool(s.discharged_at) and not s.override_reason]
        if s.discharged_at
        else "",
        "bp_before_systolic": bp(base, "systolic"),
        "bp_before_diastolic": bp(base, "diastolic"),
        "bp_40_systolic": bp(at40, "systolic"),
        "bp_40_diastolic": bp(at40, "diastolic"),
        "bp_completion_systolic": bp(completion, "systolic"),
        "bp_completion_diastolic": bp(completion, "diastolic"),
        "sedation": yn[sedation],
        "dissociation": yn[any((m.total or 0) > 0 for m in cadss)] if cadss else "",
        "respiratory_depression": "",
        "adverse_events": "; ".join(e.effect for e in v.events if e.kind == "adverse") or "none",
    }


def rems_forms(clinic):
    return (
        RemsForm.objects.for_clinic(clinic)
        .select_related("session__patient", "signed_by")
        .order_by("signed_at", "due_by")
    )


def rems_status(form, today) -> str:
    if form.signed_at:
        return "signed"
    return "overdue" if today > form.due_by else "due"


def rems_rows(form):
    """(label, value, required) under the form's own version: a form signed under an older
    field list is shown with that list, as it was signed."""
    return [
        (label, form.data.get(key, ""), required)
        for key, label, _kind, required in rems.fields(form.form_version)
    ]


def dosed_sessions(clinic, *, patient=None, plan=None):
    """Treatments given, for the measures app's treatment timeline: every session in which
    dosing started (including those stopped early), dated by the recorded start of the dose
    (a course's baseline is the last score before it) and tied to its appointment so that
    the completed visit and its session count once. One query."""
    from ketaflow.measures.selectors import TreatmentTime

    qs = (
        TreatmentSession.objects.for_clinic(clinic)
        .filter(dose_started_at__isnull=False, appointment__plan__isnull=False)
        .order_by("dose_started_at")
    )
    if patient is not None:
        qs = qs.filter(patient=patient)
    if plan is not None:
        qs = qs.filter(appointment__plan=plan)
    return [
        TreatmentTime(
            pid,
            plan_id,
            at,
            f"{route_label(route)} session ({S(state).label.lower()})",
            appointment_id=appointment_id,
            dose_start=True,
        )
        for pid, plan_id, at, route, state, appointment_id in qs.values_list(
            "patient_id",
            "appointment__plan_id",
            "dose_started_at",
            "route",
            "state",
            "appointment_id",
        )
    ]


def concurrent_medications(patient) -> list:
    """The patient's medications with the reference's interaction notes (from intake)."""
    from django.apps import apps

    if not apps.is_installed("ketaflow.intake"):
        return []
    from ketaflow.intake import selectors as intake

    return intake.concurrent_medications(patient)


def route_label(route: str) -> str:
    from ketaflow.plans.models import ROUTE_LABELS

    return ROUTE_LABELS.get(route, route)


def is_esketamine(s) -> bool:
    return s.route == dosing.ESKETAMINE


def session_forecast(s: TreatmentSession, v: SessionView):
    """The prediction for what was actually given, including rate changes and pauses (IV)
    or each device's time (esketamine), as ``(forecast, markers)``; ``None`` without a
    dose or (IV) without a recorded weight.  Built by
    :func:`ketaflow.clinical.pk.reference.forecast`, like the plan page, the API and the
    CLI: racemic IV as the four shipped models with the venous range and the time below
    it as a range across them; esketamine with no measured range."""
    from ketaflow.clinical import pk

    if not s.dose_started_at or not v.dose_events:
        return None
    kwargs = {}
    t0 = s.dose_started_at

    def m(t):
        return (t - t0).total_seconds() / 60

    markers = []
    if s.route == dosing.ESKETAMINE:
        reg = pk.Regimen()
        for e in v.dose_events:
            if e.kind == "device":
                reg = reg.add_nasal(28, at_min=m(e.at))
                markers.append((m(e.at), f"device {e.device_number}"))
        if reg.is_empty:
            return None
        # Body weight is not a covariate of the esketamine model; age above 60 is.
        kwargs["age"] = s.patient.age_on(t0.astimezone(s.clinic.tz).date())
    elif s.route == dosing.IV:
        calc = s.calculation or {}
        rate = float(calc.get("rate_mg_per_min") or 0)
        if rate <= 0 or not (s.dose_ended_at or calc.get("minutes")):
            return None
        end = m(s.dose_ended_at) if s.dose_ended_at else float(calc["minutes"])
        reg = pk.Regimen().add_infusion(mg_per_min=rate, minutes=max(end, 0.5))
        for e in v.dose_events:
            if e.kind == "rate" and e.rate_mg_per_min and m(e.at) < end:
                reg = reg.change_rate(m(e.at), float(e.rate_mg_per_min))
                markers.append((m(e.at), "rate"))
            elif e.kind == "pause":
                resume = next(
                    (r for r in v.dose_events if r.kind == "resume" and r.at > e.at), None
                )
                length = (m(resume.at) if resume else end) - m(e.at)
                if length > 0:
                    reg = reg.pause(m(e.at), length)
                markers.append((m(e.at), "pause"))
            elif e.kind == "resume" and e.rate_mg_per_min:
                reg = reg.change_rate(m(e.at), float(e.rate_mg_per_min))
        if not s.weight_kg:  # recorded at every IV pre-assessment; never guessed
            return None
        kwargs["weight_kg"] = float(s.weight_kg)
    else:
        return None
    return pk.forecast(reg, hours=4, **kwargs), markers


def pk_overlay(s: TreatmentSession, v: SessionView) -> str:
    """The SVG of :func:`session_forecast` ("" where there is none)."""
    made = session_forecast(s, v)
    if made is None:
        return ""
    fc, markers = made
    return fc.svg(markers=markers, hours=4, width=600, height=280)
