import segno
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from ketaflow.accounts.permissions import can
from ketaflow.audit import services as audit
from ketaflow.clinical import instruments
from ketaflow.measures import forms, selectors, services
from ketaflow.patients import selectors as patient_selectors
from ketaflow.patients.scope import ChartScope
from ketaflow.tenancy.models import Membership
from ketaflow.web.decorators import clinic_required


def _chart_patient(request, pk):
    """The patient, if the user may open their clinical chart (404 for other clinics)."""
    patient = patient_selectors.get_patient(request.clinic, pk)
    access, grant = patient_selectors.chart_access(request.user, request.clinic, patient)
    if access is None:
        raise PermissionDenied("Your role or locations do not give access to this chart.")
    request.emergency_grant = grant
    return patient


def _field_errors(exc: ValidationError) -> dict:
    return {k.removeprefix("item_"): " ".join(v) for k, v in exc.message_dict.items()}


# ---------------------------------------------------------------------------- clinician pages


@clinic_required("measures.record")
@require_http_methods(["GET", "POST"])
def record(request, pk):
    """Record a questionnaire in the chart (for the patient, or clinician-rated)."""
    patient = _chart_patient(request, pk)
    code = request.POST.get("instrument") or request.GET.get("instrument") or ""
    if code not in instruments.codes():
        return render(
            request,
            "measures/choose.html",
            {"patient": patient, "choices": instruments.all_instruments()},
        )
    inst = instruments.get(code)
    answers, errors, other = {}, {}, {}
    plans = selectors.patient_plans(patient)
    current = forms.default_plan(plans)
    values = {"plan": str(current.pk) if current else "", "taken_at": ""}
    if request.method == "POST":
        answers = forms.answers_from_post(inst, request.POST)
        values = {k: request.POST.get(k, "") for k in values}
        taken_at = None
        if values["taken_at"]:
            from django.utils.dateparse import parse_datetime

            parsed = parse_datetime(values["taken_at"])
            if parsed is None:
                other["taken_at"] = "Enter a date and time like 2026-01-31 14:30."
            else:
                taken_at = (
                    timezone.make_aware(parsed, request.clinic.tz)
                    if timezone.is_naive(parsed)
                    else parsed
                )
        if not other:
            try:
                adm = services.record_administration(
                    patient=patient,
                    actor=request.user,
                    instrument=code,
                    answers=answers,
                    taken_at=taken_at,
                    plan=values["plan"] or None,
                )
            except ValidationError as exc:
                errors = _field_errors(exc)
                other = {k: v for k, v in errors.items() if k in ("taken_at", "plan")}
            else:
                if adm.is_suicidality:
                    messages.error(
                        request,
                        f"{inst.short_name} saved. Safety alert raised: the patient now carries a "
                        "risk flag until a clinician clears it with a documented action.",
                    )
                else:
                    total = "" if adm.total is None else f": total {adm.total}"
                    messages.success(request, f"{inst.short_name} saved{total}.")
                return redirect("patients:chart_tab", pk=patient.pk, tab="measures")
    return render(
        request,
        "measures/record.html",
        {
            "patient": patient,
            "inst": inst,
            "rows": forms.item_rows(inst, answers, errors),
            "errors": errors,
            "other": other,
            "values": values,
            "plan_choices": forms.plan_choices(plans),
        },
    )


@clinic_required("chart.view")
def administration_detail(request, pk):
    adm = selectors.get_administration(request.clinic, pk)
    _chart_patient(request, adm.patient_id)
    audit.record_read(request, patient=adm.patient, obj=adm)
    inst = instruments.get(adm.instrument)
    rows = [
        {
            "key": item.key,
            "text": item.text,
            "answer": next(
                (o.label for o in item.options if str(o.value) == str(adm.answers.get(item.key))),
                "not asked" if item.key not in adm.answers else adm.answers.get(item.key),
            ),
            "value": adm.answers.get(item.key, ""),
        }
        for item in inst.items
    ]
    plan = services.resolve_plan(adm.patient, adm.plan_id) if adm.plan_id else None
    return render(
        request,
        "measures/administration.html",
        {
            "adm": adm,
            "inst": inst,
            "rows": rows,
            "patient": adm.patient,
            "plan_label": selectors.plan_label(plan),
        },
    )


@clinic_required("measures.send")
@require_http_methods(["GET", "POST"])
def send_link(request, pk):
    patient = patient_selectors.get_patient(request.clinic, pk)
    plans = selectors.patient_plans(patient)
    current = forms.default_plan(plans)
    form = forms.SendLinkForm(
        request.POST or None,
        plans=plans,
        initial={"instruments": ["phq9"], "plan": str(current.pk) if current else ""},
    )
    if request.method == "POST" and form.is_valid():
        try:
            link, raw = services.create_link(
                patient=patient,
                actor=request.user,
                instruments=form.cleaned_data["instruments"],
                send_email=form.cleaned_data["send_email"],
                plan=form.cleaned_data["plan"] or None,
                base_url=request.build_absolute_uri("/").rstrip("/"),
            )
        except ValidationError as exc:
            for field, errs in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errs)
        else:
            url = request.build_absolute_uri(services.link_path(raw))
            response = render(
                request,
                "measures/link_created.html",
                {
                    "patient": patient,
                    "link": link,
                    "url": url,
                    "qr": segno.make(url, error="m").svg_data_uri(scale=6, border=2),
                    "names": [instruments.get(c).short_name for c in link.instruments],
                },
            )
            response["Cache-Control"] = "no-store"
            return response
    return render(request, "measures/send.html", {"patient": patient, "form": form})


@clinic_required("measures.send")
@require_POST
def revoke_link(request, pk):
    link = selectors.get_link(request.clinic, pk)
    try:
        services.revoke_link(link=link, actor=request.user)
        messages.success(request, "Link withdrawn: it no longer opens.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("patients:chart", pk=link.patient_id)


@clinic_required("measures.send")
@require_http_methods(["GET", "POST"])
def schedule(request, pk):
    patient = patient_selectors.get_patient(request.clinic, pk)
    plans = selectors.patient_plans(patient)
    current = forms.default_plan(plans)
    form = forms.ScheduleForm(
        request.POST or None,
        plans=plans,
        initial={"instruments": ["phq9"], "plan": str(current.pk) if current else ""},
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.create_schedule(
                patient=patient,
                actor=request.user,
                instruments=form.cleaned_data["instruments"],
                cadence=form.cleaned_data["cadence"],
                plan=form.cleaned_data["plan"] or None,
            )
        except ValidationError as exc:
            for field, errs in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errs)
        else:
            messages.success(request, "Schedule saved: links are emailed by the background tasks.")
            return redirect("patients:chart", pk=patient.pk)
    return render(request, "measures/schedule.html", {"patient": patient, "form": form})


@clinic_required("measures.send")
@require_POST
def stop_schedule(request, pk):
    sched = selectors.get_schedule(request.clinic, pk)
    services.stop_schedule(schedule=sched, actor=request.user)
    messages.success(request, "Schedule stopped.")
    return redirect("patients:chart", pk=sched.patient_id)


# ---------------------------------------------------------------------------- alerts


@clinic_required("chart.view")
def alert_list(request):
    """Alerts and risk flags of the patients whose chart the user may open (audited)."""
    scope = ChartScope(request.user, request.clinic)
    open_alerts = list(selectors.alerts(request.clinic, scope=scope))
    flags = list(selectors.open_flags(request.clinic, scope=scope))
    recent = list(selectors.alerts(request.clinic, scope=scope, open_only=False, limit=30))
    audit.record_list_read(
        request,
        patient_ids=[row.patient_id for row in (*open_alerts, *flags, *recent)],
        object_type="measures.safetyalert",
    )
    return render(
        request,
        "measures/alerts.html",
        {
            "open_alerts": open_alerts,
            "flags": flags,
            "recent": recent,
            "can_respond": can(request.user, "alerts.respond", request.clinic),
        },
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
            note=request.POST.get("note", ""),
        )
        messages.success(request, "Alert acknowledged. Clear the risk flag once you have acted.")
    except ValidationError as exc:
        messages.warning(request, " ".join(exc.messages))
    nxt = request.POST.get("next", "")
    if nxt == "chart":
        return redirect("patients:chart", pk=alert.patient_id)
    return redirect("measures:alerts")


@clinic_required("alerts.respond")
@require_http_methods(["GET", "POST"])
def clear_flag(request, pk):
    flag = selectors.get_flag(request.clinic, pk)
    _chart_patient(request, flag.patient_id)  # the same scope as the patient's chart
    form = forms.ClearFlagForm(request.POST or None)
    if flag.cleared_at is not None:
        messages.info(request, "This risk flag was already cleared.")
        return redirect("patients:chart", pk=flag.patient_id)
    if request.method == "POST":
        form.is_valid()
        try:
            services.clear_flag(
                flag_id=flag.pk,
                clinic=request.clinic,
                actor=request.user,
                action=request.POST.get("action", ""),
                note=request.POST.get("note", ""),
            )
        except services.AlreadyDone as exc:
            messages.warning(request, " ".join(exc.messages))
            return redirect("patients:chart", pk=flag.patient_id)
        except ValidationError as exc:
            for field, errs in exc.message_dict.items():
                if field in form.fields and field not in form.errors:
                    form.add_error(field, errs)
                elif field not in form.fields:
                    form.add_error(None, errs)
        else:
            messages.success(request, "Risk flag cleared; the action is documented.")
            return redirect("patients:chart", pk=flag.patient_id)
    scope = ChartScope(request.user, request.clinic)
    open_alerts = [
        a for a in selectors.alerts(request.clinic, scope=scope) if a.patient_id == flag.patient_id
    ]
    audit.record_read(request, patient=flag.patient, obj=flag)
    return render(
        request,
        "measures/clear_flag.html",
        {"flag": flag, "patient": flag.patient, "form": form, "open_alerts": open_alerts},
    )


@clinic_required("clinic.settings")
@require_http_methods(["GET", "POST"])
def settings_view(request):
    current = services.settings_for(request.clinic)
    form = forms.SettingsForm(request.POST or None, instance=current)
    members = (
        Membership.objects.filter(clinic=request.clinic, is_active=True)
        .select_related("user")
        .order_by("user__full_name")
    )
    clinicians = [m for m in members if can(m.user, "alerts.respond", request.clinic)]
    chosen = selectors.on_call_user_ids(request.clinic)
    if request.method == "POST":
        chosen = {int(v) for v in request.POST.getlist("on_call") if v.isdigit()}
        try:
            services.update_settings(
                clinic=request.clinic,
                actor=request.user,
                data=request.POST,
                on_call_user_ids=sorted(chosen),
            )
        except ValidationError as exc:
            form.is_valid()
            for field, errs in exc.message_dict.items():
                if field not in form.errors:
                    form.add_error(field if field in form.fields else None, errs)
        else:
            messages.success(request, "Measures settings saved.")
            return redirect("measures:settings")
    return render(
        request,
        "measures/settings.html",
        {"form": form, "clinicians": clinicians, "chosen": chosen},
    )


# ---------------------------------------------------------------------------- patient link (public)


def _public(response):
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _refused(request):
    # One neutral page for unknown, tampered, expired, used and revoked links alike.
    return _public(render(request, "measures/public/invalid.html", status=404))


def _complete(code, partial) -> bool:
    try:
        instruments.score(code, partial.get(code, {}))
    except instruments.ScoringError:
        return False
    return True


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def respond(request, token):
    """The patient's questionnaire page: no account, the token is the capability.

    CSRF protection is not used here, on purpose: the page grants nothing through cookies
    or a session, and a forged request would need the unguessable token in its URL, which
    is the very secret CSRF tokens stand in for. (With ``Referrer-Policy: no-referrer`` the
    browser also sends ``Origin: null``, which Django's CSRF check would refuse.)"""
    link = services.find_link(token)
    if link is None:
        return _refused(request)
    timezone.activate(link.clinic.tz)
    codes = list(link.instruments)
    partial = dict(link.partial or {})
    errors: dict = {}
    saved_only = False
    if request.method == "POST":
        code = request.POST.get("instrument", "")
        if code not in codes:
            return _refused(request)
        inst = instruments.get(code)
        answers = forms.answers_from_post(inst, request.POST)
        try:
            link = services.save_link_progress(link=link, code=code, answers=answers)
        except PermissionDenied:
            return _refused(request)
        partial = dict(link.partial or {})
        go = request.POST.get("go", "next")
        index = codes.index(code)
        if go == "save":
            saved_only = True
        elif go == "back":
            index = max(0, index - 1)
        else:
            try:
                services.score_answers(code, partial.get(code, {}), link.clinic)
            except ValidationError as exc:
                errors = _field_errors(exc)
            else:
                if index + 1 < len(codes):
                    index += 1
                else:
                    return _submit(request, link, codes, partial)
    else:
        index = next((i for i, c in enumerate(codes) if not _complete(c, partial)), len(codes) - 1)
    code = codes[index]
    inst = instruments.get(code)
    answers = partial.get(code, {})
    asked = [it for it in inst.items if it.asked_if is None]
    answered = sum(1 for it in asked if it.key in answers)
    return _public(
        render(
            request,
            "measures/public/respond.html",
            {
                "link": link,
                "clinic": link.clinic,
                "inst": inst,
                "rows": forms.item_rows(inst, answers, errors),
                "errors": errors,
                "index": index,
                "number": index + 1,
                "count": len(codes),
                "is_last": index + 1 == len(codes),
                "answered": answered,
                "asked": len(asked),
                "saved_only": saved_only,
            },
            status=200,
        )
    )


def _submit(request, link, codes, partial):
    try:
        _adms, alerts = services.submit_link(link=link)
    except PermissionDenied:
        return _refused(request)
    except ValidationError as exc:
        # Another questionnaire of the link is incomplete: send the patient back to it.
        first = next(iter(exc.message_dict))
        index = codes.index(first) if first in codes else 0
        inst = instruments.get(codes[index])
        return _public(
            render(
                request,
                "measures/public/respond.html",
                {
                    "link": link,
                    "clinic": link.clinic,
                    "inst": inst,
                    "rows": forms.item_rows(inst, partial.get(codes[index], {}), {}),
                    "errors": {},
                    "top_error": "Some questions here still need an answer.",
                    "index": index,
                    "number": index + 1,
                    "count": len(codes),
                    "is_last": index + 1 == len(codes),
                    "answered": 0,
                    "asked": len(inst.items),
                },
            )
        )
    return _public(
        render(
            request,
            "measures/public/done.html",
            {"clinic": link.clinic, "crisis": bool(alerts)},
        )
    )
