import csv
import datetime

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_http_methods, require_POST

from ketaflow.accounts.models import User
from ketaflow.accounts.permissions import can
from ketaflow.audit import services as audit
from ketaflow.clinical import instruments
from ketaflow.clinical import vitals as rules
from ketaflow.patients import selectors as patient_selectors
from ketaflow.patients.scope import ChartScope
from ketaflow.treatment import charts, pdf, rems, selectors, services
from ketaflow.treatment.models import DoseEvent, SessionAlert, TreatmentSettings
from ketaflow.web.decorators import clinic_required


def _session(request, pk):
    s = selectors.get_session(request.clinic, pk)
    access, _grant = patient_selectors.chart_access(request.user, request.clinic, s.patient)
    if access is None:
        raise PermissionDenied("Your role or locations do not give access to this chart.")
    return s


def _errors(request, exc: ValidationError):
    for field, msgs in exc.message_dict.items():
        for m in msgs:
            messages.error(request, m if field in ("__all__", "state") else f"{field}: {m}")


def _at(request, value):
    if not value:
        return None
    parsed = parse_datetime(value) if "T" in value or "-" in value else None
    if parsed is None:
        try:
            t = datetime.time.fromisoformat(value)
        except ValueError:
            return None
        today = request.clinic.today()
        parsed = datetime.datetime.combine(today, t)
    return timezone.make_aware(parsed, request.clinic.tz) if timezone.is_naive(parsed) else parsed


def _location(request, scope):
    """The location chosen in the query string, among those the member may watch."""
    pk = request.GET.get("location")
    if pk and pk.isdigit():
        return get_object_or_404(selectors.board_locations(request.clinic, scope), pk=pk)
    return None


@clinic_required("chart.view")
def day(request):
    scope = ChartScope(request.user, request.clinic)
    location = _location(request, scope)
    appts = list(scope.visible(selectors.todays_dose_appointments(request.clinic, location)))
    today = scope.visible(selectors.sessions_today(request.clinic)).select_related(
        "appointment__type"
    )
    if location is not None:
        today = today.filter(location=location)
    sessions = {s.appointment_id: s for s in today}
    listed = {a.pk for a in appts}
    # Sessions opened today from another day's appointment (e.g. moved at the desk).
    extra = [(s.appointment, s) for s in sessions.values() if s.appointment_id not in listed]
    rows = [(a, sessions.get(a.pk)) for a in appts] + extra
    audit.record_list_read(
        request,
        patient_ids=[a.patient_id for a, _ in rows],
        object_type="treatment.treatmentsession",
        detail={"filters": {"location": location.pk if location else None}},
    )
    return render(
        request,
        "treatment/day.html",
        {
            "rows": rows,
            "locations": selectors.board_locations(request.clinic, scope),
            "location": location,
            "can_chart": can(request.user, "vitals.chart", request.clinic),
        },
    )


@clinic_required("vitals.chart")
@require_POST
def open_session(request, pk):
    from ketaflow.scheduling import selectors as scheduling

    appt = scheduling.get_appointment(request.clinic, pk)
    try:
        s = services.open_session(appointment=appt, actor=request.user)
    except ValidationError as exc:
        _errors(request, exc)
        return redirect("treatment:day")
    return redirect("treatment:session", s.pk)


def _board(request, template):
    """The chair board: only the member's locations and the patients whose chart they may
    open (the same scope as the session page); every refresh is an audited read."""
    scope = ChartScope(request.user, request.clinic)
    location = _location(request, scope)
    rows = selectors.board(request.clinic, location, scope=scope)
    selectors.attach_banners(request.clinic, rows, scope=scope)
    # The board shows its patients and those named by a similar-name warning: one read.
    similar = [o.pk for r in rows for o in r.banner.same_name if o is not None]
    audit.record_list_read(
        request,
        patient_ids=[r.session.patient_id for r in rows] + similar,
        object_type="treatment.treatmentsession",
        detail={"filters": {"location": location.pk if location else None}, "board": True},
    )
    context = {
        "rows": rows,
        "others": selectors.board_chairs_in_use_by_others(request.clinic, location, scope=scope),
        "location": location,
        "locations": selectors.board_locations(request.clinic, scope),
        "now": timezone.now(),
        "large": request.GET.get("large") == "1",
    }
    return render(request, template, context)


@clinic_required("chart.view")
def board(request):
    return _board(request, "treatment/board.html")


@clinic_required("chart.view")
def board_partial(request):
    return _board(request, "treatment/_board.html")


def _page_context(request, s):
    v = selectors.session_view(s)
    start = s.opened_at
    end = max(
        [timezone.now() if s.is_active else (s.discharged_at or s.state_changed_at)]
        + [r.at for r in v.vitals]
    )
    return {
        "s": s,
        "v": v,
        "patient": s.patient,
        "svg": charts.vitals_svg(
            v.vitals,
            start=start,
            end=end,
            dose_start=s.dose_started_at,
            dose_end=s.dose_ended_at,
            tz=request.clinic.tz,
        ),
        "pk": pk_overlay(s, v),
        "actions": SessionAlert.Action.choices,
        "side_effects": services.SIDE_EFFECTS,
        "severities": services.SEVERITIES,
        "outcomes": services.OUTCOMES,
        "pregnancy": services.PREGNANCY,
        "can_chart": can(request.user, "vitals.chart", request.clinic),
        "can_decide": can(request.user, "treatment.prescriber_decision", request.clinic),
        "can_sign": can(request.user, "notes.sign", request.clinic),
        "can_cosign": can(request.user, "notes.cosign", request.clinic),
        "can_respond": can(request.user, "alerts.respond", request.clinic),
        "can_rems": can(request.user, "rems.sign", request.clinic),
        "witnesses": User.objects.filter(
            memberships__clinic=request.clinic, memberships__is_active=True
        )
        .exclude(pk=request.user.pk)
        .order_by("full_name"),
        "kinds": DoseEvent.Kind.choices,
        "esketamine": selectors.is_esketamine(s),
        "route_label": selectors.route_label(s.route),
        "units": rules.UNITS,
        "medications": selectors.concurrent_medications(s.patient),
    }


def pk_overlay(s, v) -> dict | None:
    """Predicted concentration for what was actually given (population estimate): the
    SVG and its caption lines, from the same forecast as the plan page and the API."""
    try:
        made = selectors.session_forecast(s, v)
        if made is None:
            return None
        fc, markers = made
        return {
            "svg": fc.svg(markers=markers, hours=4, width=600, height=280),
            "lines": fc.lines(),
        }
    except (ValueError, ArithmeticError):  # an aid only: never break the charting page
        return None


@clinic_required("chart.view")
def session(request, pk):
    s = _session(request, pk)
    audit.record_read(request, patient=s.patient, obj=s)
    return render(request, "treatment/session.html", _page_context(request, s))


@clinic_required("chart.view")
def session_live(request, pk):
    """The polled part of the session page: open alerts, repeat prompts, next reading due.
    Every refresh is a read of the session and is audited like the page."""
    s = _session(request, pk)
    audit.record_read(request, patient=s.patient, obj=s, detail={"live": True})
    return render(
        request,
        "treatment/_live.html",
        {
            "s": s,
            "v": selectors.session_view(s),
            "actions": SessionAlert.Action.choices,
            "can_respond": can(request.user, "alerts.respond", request.clinic),
        },
    )


def _post(request, pk, fn, ok, anchor=""):
    s = _session(request, pk)
    try:
        fn(s)
    except ValidationError as exc:
        _errors(request, exc)
    except PermissionDenied as exc:
        messages.error(request, str(exc))
    else:
        if ok:
            messages.success(request, ok)
    return redirect(reverse("treatment:session", args=[s.pk]) + anchor)


@clinic_required("vitals.chart")
@require_POST
def pre_assessment(request, pk):
    return _post(
        request,
        pk,
        lambda s: services.save_pre_assessment(session=s, actor=request.user, data=request.POST),
        "Pre-assessment saved.",
        "#pre",
    )


@clinic_required("vitals.chart")
@require_POST
def vitals(request, pk):
    def do(s):
        entry = services.record_vitals(
            session=s,
            actor=request.user,
            values={k: request.POST.get(k) for k in rules.MEASURES},
            at=_at(request, request.POST.get("at")),
        )
        for a in entry.raised:
            messages.error(request, f"{a.label}: {a.message}")
        for a in entry.changed:
            messages.warning(request, f"{a.get_status_display()}: {a.message}")
        for f in entry.findings:
            if f.kind == "recheck":
                messages.warning(request, f.message)

    return _post(request, pk, do, "Vital signs recorded.", "#vitals")


@clinic_required("vitals.chart")
@require_http_methods(["GET", "POST"])
def measure(request, pk):
    s = _session(request, pk)
    code = request.POST.get("instrument") or request.GET.get("instrument") or "moaas"
    if code not in instruments.codes():
        code = "moaas"
    inst = instruments.get(code)
    timing = request.POST.get("timing") or request.GET.get("timing") or "post"
    if request.method == "POST":
        from ketaflow.measures import forms as mforms

        answers = mforms.answers_from_post(inst, request.POST)
        try:
            services.record_measure(
                session=s, actor=request.user, instrument=code, answers=answers, timing=timing
            )
        except ValidationError as exc:
            _errors(request, exc)
        else:
            messages.success(request, f"{inst.short_name} recorded.")
            return redirect("treatment:session", s.pk)
    return render(
        request,
        "treatment/measure.html",
        {"s": s, "inst": inst, "timing": timing, "patient": s.patient, "rows": _rows(inst)},
    )


def _rows(inst):
    from ketaflow.measures import forms as mforms

    return mforms.item_rows(inst, {}, {})


@clinic_required("treatment.prescriber_decision")
@require_POST
def proceed(request, pk):
    return _post(
        request,
        pk,
        lambda s: services.decide_proceed(
            session=s, actor=request.user, reason=request.POST.get("reason")
        ),
        "Proceed decision recorded.",
    )


@clinic_required("vitals.chart")
@require_POST
def start_dosing(request, pk):
    return _post(
        request,
        pk,
        lambda s: services.start_dosing(
            session=s,
            actor=request.user,
            data={**request.POST.dict(), "at": _at(request, request.POST.get("at"))},
        ),
        "Dosing started.",
        "#dosing",
    )


@clinic_required("vitals.chart")
@require_POST
def dose_event(request, pk):
    return _post(
        request,
        pk,
        lambda s: services.record_dose_event(
            session=s,
            actor=request.user,
            kind=request.POST.get("kind", ""),
            at=_at(request, request.POST.get("at")),
            rate_mg_per_min=request.POST.get("rate_mg_per_min") or None,
            reason=request.POST.get("reason", ""),
        ),
        "Dose event recorded.",
        "#dosing",
    )


@clinic_required("vitals.chart")
@require_POST
def waste(request, pk):
    def do(s):
        wid = request.POST.get("witness", "")
        witness = (
            User.objects.filter(pk=wid, memberships__clinic=request.clinic).first()
            if wid.isdigit()
            else None
        )
        services.record_waste(
            session=s,
            actor=request.user,
            amount_mg=request.POST.get("amount_mg"),
            reason=request.POST.get("reason", ""),
            witness=witness,
        )

    return _post(request, pk, do, "Waste recorded with witness.", "#dosing")


@clinic_required("vitals.chart")
@require_POST
def event(request, pk):
    return _post(
        request,
        pk,
        lambda s: services.record_event(session=s, actor=request.user, data=request.POST),
        "Event recorded.",
        "#events",
    )


@clinic_required("alerts.respond")
@require_POST
def acknowledge(request, pk):
    alert = selectors.get_alert(request.clinic, pk)
    try:
        services.acknowledge_alert(
            alert_id=alert.pk,
            clinic=request.clinic,
            actor=request.user,
            action=request.POST.get("action", ""),
            note=request.POST.get("note", ""),
        )
    except ValidationError as exc:
        _errors(request, exc)
    else:
        messages.success(request, "Alert acknowledged.")
    nxt = request.POST.get("next", "")
    if nxt.startswith("/") and not nxt.startswith("//"):
        return redirect(nxt)
    return redirect("treatment:session", alert.session_id)


@clinic_required("vitals.chart")
@require_POST
def recovery(request, pk):
    def do(s):
        unmet = services.assess_recovery(
            session=s,
            actor=request.user,
            walks_steadily=request.POST.get("walks_steadily") == "on",
            responsible_adult=request.POST.get("responsible_adult") == "on",
            ready_without_rule_at=_at(request, request.POST.get("ready_without_rule_at")),
        )
        if not unmet:
            messages.success(request, "Every discharge criterion is met.")

    return _post(request, pk, do, "", "#discharge")


@clinic_required("treatment.prescriber_decision")
@require_POST
def override(request, pk):
    return _post(
        request,
        pk,
        lambda s: services.override_discharge(
            session=s, actor=request.user, reason=request.POST.get("reason")
        ),
        "Discharge override recorded.",
        "#discharge",
    )


@clinic_required("vitals.chart")
@require_POST
def discharge(request, pk):
    return _post(
        request,
        pk,
        lambda s: services.discharge(
            session=s, actor=request.user, email_instructions=request.POST.get("email") == "on"
        ),
        "Patient discharged.",
        "#note",
    )


@clinic_required("vitals.chart")
@require_POST
def cancel(request, pk):
    return _post(
        request,
        pk,
        lambda s: services.cancel_session(
            session=s, actor=request.user, reason=request.POST.get("reason")
        ),
        "Session cancelled.",
    )


@clinic_required("vitals.chart")
@require_POST
def stop(request, pk):
    return _post(
        request,
        pk,
        lambda s: services.stop_early(
            session=s, actor=request.user, reason=request.POST.get("reason")
        ),
        "Session stopped early.",
    )


@clinic_required("chart.view")
def instructions(request, pk):
    s = _session(request, pk)
    return render(
        request, "treatment/instructions.html", {"s": s, "text": services.discharge_instructions(s)}
    )


@clinic_required("notes.sign")
@require_POST
def note(request, pk):
    action = request.POST.get("do", "save")
    if action == "sign":
        return _post(
            request,
            pk,
            lambda s: services.sign_note(
                session=s, actor=request.user, free_text=request.POST.get("free_text", "")
            ),
            "Note signed: the session is now read-only.",
            "#note",
        )
    return _post(
        request,
        pk,
        lambda s: services.save_note(
            session=s, actor=request.user, free_text=request.POST.get("free_text", "")
        ),
        "Note saved.",
        "#note",
    )


@clinic_required("notes.cosign")
@require_POST
def cosign(request, pk):
    return _post(
        request,
        pk,
        lambda s: services.cosign_note(session=s, actor=request.user),
        "Note co-signed.",
        "#note",
    )


@clinic_required("notes.sign")
@require_POST
def addendum(request, pk):
    return _post(
        request,
        pk,
        lambda s: services.add_addendum(
            session=s, actor=request.user, text=request.POST.get("text", "")
        ),
        "Addendum signed.",
        "#note",
    )


@clinic_required("chart.view")
def note_pdf(request, pk):
    s = _session(request, pk)
    v = selectors.session_view(s)
    if v.note is None:
        raise PermissionDenied("No note yet.")
    audit.record_read(request, patient=s.patient, obj=v.note, detail={"pdf": True})
    body = pdf.note_pdf(s, v.note, v.addenda)
    resp = HttpResponse(body, content_type="application/pdf")
    resp["Content-Disposition"] = f'inline; filename="session-{s.pk}-note.pdf"'
    return resp


@clinic_required("rems.sign")
@require_http_methods(["GET", "POST"])
def rems_form(request, pk):
    s = _session(request, pk)
    if not selectors.is_esketamine(s):
        raise PermissionDenied("The REMS form applies to esketamine sessions.")
    if request.method == "POST":
        try:
            if request.POST.get("do") == "sign":
                services.save_rems(session=s, actor=request.user, data=request.POST.dict())
                services.sign_rems(session=s, actor=request.user)
                messages.success(request, "REMS form signed.")
            else:
                services.save_rems(session=s, actor=request.user, data=request.POST.dict())
                messages.success(request, "REMS form saved.")
        except ValidationError as exc:
            _errors(request, exc)
        except PermissionDenied as exc:
            messages.error(request, str(exc))
        return redirect("treatment:rems", s.pk)
    form = selectors.one(s, "rems")
    data = form.data if form else selectors.rems_prefill(s)
    version = form.form_version if form else rems.CURRENT
    return render(
        request,
        "treatment/rems.html",
        {
            "s": s,
            "patient": s.patient,
            "form": form,
            "fields": [
                (k, label, kind, req, data.get(k, ""), rems.choices(kind))
                for k, label, kind, req in rems.fields(version)
            ],
            "version": version,
            "version_label": rems.label_of(version),
            "missing": rems.missing(data, version),
            "source": rems.SOURCE,
        },
    )


@clinic_required("rems.sign")
def rems_list(request):
    today = request.clinic.today()
    scope = ChartScope(request.user, request.clinic)
    visible = list(scope.visible(selectors.rems_forms(request.clinic), "session__patient"))
    forms = [(f, selectors.rems_status(f, today)) for f in visible]
    audit.record_list_read(
        request,
        patient_ids=[f.session.patient_id for f in visible],
        object_type="treatment.remsform",
    )
    return render(request, "treatment/rems_list.html", {"forms": forms, "today": today})


def _rems_for(request, pk):
    s = _session(request, pk)
    form = selectors.one(s, "rems")
    if form is None:
        raise PermissionDenied("No REMS form for this session yet.")
    audit.record(
        action="export",
        clinic=request.clinic,
        actor=request.user,
        patient=s.patient,
        obj=form,
        emergency=audit.read_is_emergency(request, s.patient),
    )
    return s, form


@clinic_required("rems.sign")
def rems_pdf(request, pk):
    s, form = _rems_for(request, pk)
    resp = HttpResponse(
        pdf.rems_pdf(s, form, selectors.rems_rows(form)), content_type="application/pdf"
    )
    resp["Content-Disposition"] = f'attachment; filename="rems-session-{s.pk}.pdf"'
    return resp


@clinic_required("rems.sign")
def rems_csv(request, pk):
    s, form = _rems_for(request, pk)
    resp = HttpResponse(content_type="text/csv")
    resp["Content-Disposition"] = f'attachment; filename="rems-session-{s.pk}.csv"'
    w = csv.writer(resp)
    w.writerow(["form_version", "field", "label", "value"])
    for key, label, _k, _r in rems.fields(form.form_version):
        w.writerow([form.form_version, key, label, form.data.get(key, "")])
    return resp


@clinic_required("clinic.settings")
@require_http_methods(["GET", "POST"])
def settings_view(request):
    row = services.settings_for(request.clinic)
    errors = {}
    values = {name: getattr(row, name) for name in TreatmentSettings.FIELDS}
    bprs = row.bprs_wanted
    if request.method == "POST":
        values = {name: request.POST.get(name, "") for name in TreatmentSettings.FIELDS}
        bprs = request.POST.get("bprs_wanted") == "on"
        try:
            services.update_settings(clinic=request.clinic, actor=request.user, data=request.POST)
        except ValidationError as exc:
            errors = {k: " ".join(v) for k, v in exc.message_dict.items()}
        else:
            messages.success(request, "Treatment settings saved.")
            return redirect("treatment:settings")
    fields = [
        (
            name,
            name.replace("_", " ").capitalize(),
            values[name],
            getattr(rules.DEFAULTS, name),
            rules.SOURCES[name],
            errors.get(name, ""),
        )
        for name in TreatmentSettings.FIELDS
    ]
    return render(
        request, "treatment/settings.html", {"fields": fields, "bprs": bprs, "errors": errors}
    )
