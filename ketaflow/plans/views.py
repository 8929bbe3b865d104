import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_http_methods, require_POST

from ketaflow.accounts.permissions import can
from ketaflow.audit import services as audit
from ketaflow.clinical import dosing, protocols
from ketaflow.patients import selectors as patient_selectors
from ketaflow.plans import gates, selectors, services
from ketaflow.plans.forms import (
    DosingSettingsForm,
    PlanForm,
    ProtocolJSONForm,
    TransitionForm,
)
from ketaflow.web.decorators import clinic_required


def _apply_errors(form, exc: ValidationError):
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


def _require_chart(request, patient):
    """None when the user may open the patient's chart (normal scope or an emergency grant);
    else the emergency-access page (as on the chart) for members who may ask for it."""
    access, grant = patient_selectors.chart_access(request.user, request.clinic, patient)
    request.emergency_grant = grant
    if access is not None:
        return None
    if can(request.user, "chart.emergency_access", request.clinic):
        from ketaflow.patients.chart import TAB_BY_SLUG

        return render(
            request,
            "patients/emergency.html",
            {"patient": patient, "tab": TAB_BY_SLUG["plan"]},
            status=403,
        )
    raise PermissionDenied("This chart is outside your normal scope (use emergency access).")


# ---------------------------------------------------------------------------
# Chart tab "Plan"
# ---------------------------------------------------------------------------


def plan_context(plan, *, age=None):
    version = plan.current
    protocol = selectors.protocol_of(version)
    return {
        "plan": plan,
        "version": version,
        "protocol": protocol,
        "rule": protocol.dose,
        "pk": selectors.pk_view(version, age),
        "phases": protocol.phases,
        "later_phases": [p for p in protocol.phases][
            [p.code for p in protocol.phases].index(plan.phase) + 1 :
        ]
        if plan.phase in [p.code for p in protocol.phases]
        else [],
    }


def plan_chart_section(request, patient):
    plans = list(selectors.plans_for_patient(request.clinic, patient))
    if not plans:
        if can(request.user, "plans.edit", request.clinic):
            return render_to_string(
                "plans/_chart_empty.html", {"patient": patient}, request=request
            )
        return None
    context = {
        "patient": patient,
        "plans": plans,
        "main": plan_context(plans[0], age=patient.age_on(plans[0].current.start_date)),
    }
    return render_to_string("plans/_chart_section.html", context, request=request)


# ---------------------------------------------------------------------------
# Plans
# ---------------------------------------------------------------------------


def _form_page(request, *, patient, form, plan=None, preview=None):
    entries = selectors.library(request.clinic)
    return render(
        request,
        "plans/form.html",
        {
            "patient": patient,
            "plan": plan,
            "form": form,
            "entries": entries,
            "preview": preview,
            "settings_table": selectors.settings_table(request.clinic),
        },
    )


def _preview(request, form):
    """The dose calculation for the form as typed (the "Calculate" button)."""
    if not form.is_valid():
        return None
    cd = form.cleaned_data
    protocol = selectors.get_protocol(request.clinic, cd["protocol"])
    dose = cd["dose_value"] or protocol.dose.planned_dose(cd["step"])
    if dose is None:
        form.add_error("dose_value", "This protocol gives no planned dose: enter the dose.")
        return None
    try:
        return services.calculate(
            clinic=request.clinic,
            route=protocol.route,
            dose_value=dose,
            weight_kg=cd["weight_kg"],
            minutes=protocol.infusion_minutes,
            override_reason=cd["override_reason"],
        )
    except ValidationError as exc:
        _apply_errors(form, exc)
        return None


@clinic_required("plans.edit")
@require_http_methods(["GET", "POST"])
def plan_create(request, pk):
    patient = patient_selectors.get_patient(request.clinic, pk)
    if (denied := _require_chart(request, patient)) is not None:
        return denied
    entries = selectors.library(request.clinic)
    initial = {
        "prescriber": request.user.pk,
        "start_date": request.clinic.today(),
        "protocol": request.GET.get("protocol", ""),
        "step": 1,
    }
    form = PlanForm(
        request.POST or None,
        clinic=request.clinic,
        protocols=[e.protocol for e in entries],
        initial=initial,
    )
    preview = None
    if request.method == "POST":
        if "calculate" in request.POST:
            preview = _preview(request, form)
        else:
            try:
                plan = services.create_plan(patient=patient, actor=request.user, data=request.POST)
            except ValidationError as exc:
                form.is_valid()
                _apply_errors(form, exc)
            else:
                messages.success(request, "Plan signed and saved as a draft (version 1).")
                return redirect("plans:detail", pk=plan.pk)
    return _form_page(request, patient=patient, form=form, preview=preview)


@clinic_required("plans.edit")
@require_http_methods(["GET", "POST"])
def plan_revise(request, pk):
    plan = selectors.get_plan(request.clinic, pk)
    if (denied := _require_chart(request, plan.patient)) is not None:
        return denied
    v = plan.current
    initial = {
        "protocol": v.protocol_code,
        "phase": v.phase,
        "step": v.step,
        "prescriber": v.prescriber_id,
        "weight_kg": v.weight_kg,
        "dose_value": v.dose_value,
        "start_date": v.start_date,
        "goals": v.goals,
    }
    form = PlanForm(
        request.POST or None,
        clinic=request.clinic,
        protocols=[e.protocol for e in selectors.library(request.clinic)],
        revising=True,
        initial=initial,
    )
    preview = None
    if request.method == "POST":
        if "calculate" in request.POST:
            preview = _preview(request, form)
        else:
            try:
                version = services.revise_plan(plan=plan, actor=request.user, data=request.POST)
            except ValidationError as exc:
                form.is_valid()
                _apply_errors(form, exc)
            else:
                messages.success(request, f"Version {version.number} signed.")
                return redirect("plans:detail", pk=plan.pk)
    return _form_page(request, patient=plan.patient, form=form, plan=plan, preview=preview)


@clinic_required("chart.view")
def plan_detail(request, pk):
    plan = selectors.get_plan(request.clinic, pk)
    if (denied := _require_chart(request, plan.patient)) is not None:
        return denied
    audit.record_read(request, patient=plan.patient, obj=plan)
    context = plan_context(plan, age=plan.patient.age_on(plan.current.start_date))
    context.update(
        {
            "patient": plan.patient,
            "versions": list(selectors.versions(plan)),
            "events": list(selectors.events(plan)),
            "status_choices": [
                (value, label)
                for value, label in plan.Status.choices
                if value in services.TRANSITIONS[plan.status]
            ],
            "transition_form": TransitionForm(),
            "gate": gates.check(plan.patient, plan.current.route)
            if plan.status in ("draft", "paused")
            else None,
            "visits": _visits(request, plan),
            "next_dose": selectors.next_dose(plan)
            if plan.status not in ("completed", "discontinued")
            else None,
        }
    )
    return render(request, "plans/detail.html", context)


def _visits(request, plan):
    """Completed versus planned visits, from the scheduling app when it is installed."""
    from django.apps import apps

    if not apps.is_installed("ketaflow.scheduling"):
        return None
    from ketaflow.scheduling import selectors as schedule

    return schedule.plan_visits(request.clinic, plan)


@clinic_required("plans.edit")
@require_POST
def plan_status(request, pk):
    plan = selectors.get_plan(request.clinic, pk)
    if (denied := _require_chart(request, plan.patient)) is not None:
        return denied
    try:
        services.change_status(
            plan=plan,
            actor=request.user,
            status=request.POST.get("status", ""),
            reason=request.POST.get("reason", ""),
        )
    except ValidationError as exc:
        for errors in exc.message_dict.values():
            for error in errors:
                messages.error(request, error)
    else:
        messages.success(request, "Status changed.")
    return redirect("plans:detail", pk=plan.pk)


@clinic_required("plans.edit")
@require_POST
def plan_transition(request, pk):
    plan = selectors.get_plan(request.clinic, pk)
    if (denied := _require_chart(request, plan.patient)) is not None:
        return denied
    try:
        services.transition_phase(
            plan=plan,
            actor=request.user,
            to_phase=request.POST.get("to_phase", ""),
            outcome=request.POST.get("outcome", ""),
        )
    except ValidationError as exc:
        for errors in exc.message_dict.values():
            for error in errors:
                messages.error(request, error)
    else:
        messages.success(request, "Phase transition recorded.")
    return redirect("plans:detail", pk=plan.pk)


# ---------------------------------------------------------------------------
# Protocol library and settings
# ---------------------------------------------------------------------------


@clinic_required("chart.view")
def protocol_list(request):
    return render(request, "plans/protocols.html", {"entries": selectors.library(request.clinic)})


@clinic_required("chart.view")
def protocol_detail(request, code):
    entry = selectors.library_entry(request.clinic, code)
    return render(
        request,
        "plans/protocol.html",
        {"entry": entry, "protocol": entry.protocol, "rule": entry.protocol.dose},
    )


@clinic_required("protocols.manage")
@require_http_methods(["GET", "POST"])
def protocol_edit(request, code):
    entry = selectors.library_entry(request.clinic, code)
    initial = {"data": json.dumps(protocols.to_dict(entry.protocol), indent=2, ensure_ascii=False)}
    form = ProtocolJSONForm(request.POST or None, initial=initial)
    if request.method == "POST":
        if "reset" in request.POST:
            try:
                services.reset_protocol(clinic=request.clinic, actor=request.user, code=code)
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                messages.success(request, "The shipped protocol is in use again.")
                return redirect("plans:protocol", code=code)
        elif form.is_valid():
            try:
                services.save_protocol(
                    clinic=request.clinic,
                    actor=request.user,
                    code=code,
                    data=form.cleaned_data["data"],
                )
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                messages.success(request, "The clinic's copy of the protocol is saved.")
                return redirect("plans:protocol", code=code)
    return render(request, "plans/protocol_edit.html", {"entry": entry, "form": form})


@clinic_required("clinic.settings")
@require_http_methods(["GET", "POST"])
def settings_view(request):
    row = selectors.dosing_settings_row(request.clinic)
    form = DosingSettingsForm(request.POST or None, instance=row)
    if request.method == "POST":
        try:
            services.save_dosing_settings(
                clinic=request.clinic, actor=request.user, data=request.POST
            )
        except ValidationError as exc:
            form.is_valid()
            if not form.errors:
                _apply_errors(form, exc)
        else:
            messages.success(request, "Dosing settings saved.")
            return redirect("plans:settings")
    return render(
        request,
        "plans/settings.html",
        {"form": form, "table": selectors.settings_table(request.clinic)},
    )


@clinic_required("chart.view")
@require_http_methods(["GET", "POST"])
def dose_calculator(request):
    """The dose calculator on its own (no patient): limits, overrides and the arithmetic."""
    result = error = None
    data = request.POST if request.method == "POST" else {}
    if request.method == "POST":
        try:
            result = services.calculate(
                clinic=request.clinic,
                route=data.get("route", ""),
                dose_value=data.get("dose_value", ""),
                weight_kg=data.get("weight_kg") or None,
                minutes=data.get("minutes") or None,
                override_reason=data.get("override_reason", ""),
            )
        except ValidationError as exc:
            error = exc.message_dict
    return render(
        request,
        "plans/dose.html",
        {
            "result": result,
            "errors": error or {},
            "data": data,
            "routes": dosing.ROUTES,
            "settings_table": selectors.settings_table(request.clinic),
        },
    )
