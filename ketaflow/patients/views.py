from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from ketaflow.accounts import services as access_services
from ketaflow.accounts.permissions import can
from ketaflow.audit import selectors as audit_selectors
from ketaflow.audit import services as audit
from ketaflow.patients import selectors, services
from ketaflow.patients.chart import TAB_BY_SLUG, TABS, sections_for
from ketaflow.patients.forms import PatientForm
from ketaflow.patients.models import Patient
from ketaflow.web.decorators import clinic_required


def _apply_errors(form, exc: ValidationError):
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


@clinic_required("patients.view")
@require_http_methods(["GET", "POST"])
def patient_list(request):
    """Search by name, MRN or date of birth. Searches are POSTed: no patient data in URLs."""
    query = request.POST.get("q", "") if request.method == "POST" else ""
    status = request.POST.get("status", "") if request.method == "POST" else ""
    if status not in Patient.Status.values:
        status = ""
    results = list(selectors.search(request.clinic, query, status=status or None))
    audit.record_list_read(
        request,
        patient_ids=[p.pk for p in results],
        object_type="patients.patient",
        detail={"search": selectors.describe_search(query, status or None)},
    )
    context = {"results": results, "q": query, "status": status, "statuses": Patient.Status.choices}
    if request.htmx:
        return render(request, "patients/list.html#results", context)
    return render(request, "patients/list.html", context)


@clinic_required("patients.create")
@require_http_methods(["GET", "POST"])
def patient_create(request):
    form = PatientForm(request.POST or None, clinic=request.clinic)
    if request.method == "POST":
        try:
            patient = services.create_patient(
                clinic=request.clinic, actor=request.user, data=request.POST
            )
        except ValidationError as exc:
            form.is_valid()
            if not form.errors:
                _apply_errors(form, exc)
        else:
            messages.success(
                request, f"{patient.display_name} is registered with MRN {patient.mrn}."
            )
            return redirect("patients:chart", pk=patient.pk)
    return render(request, "patients/form.html", {"form": form, "creating": True})


@clinic_required("patients.edit_demographics")
@require_http_methods(["GET", "POST"])
def patient_edit(request, pk):
    patient = selectors.get_patient(request.clinic, pk)
    form = PatientForm(request.POST or None, instance=patient, clinic=request.clinic)
    if request.method == "POST":
        data = {name: request.POST.get(name, "") for name in form.fields}
        try:
            services.update_patient(patient=patient, actor=request.user, data=data)
        except ValidationError as exc:
            form.is_valid()
            if not form.errors:
                _apply_errors(form, exc)
        else:
            messages.success(request, "Demographics saved.")
            return redirect("patients:chart", pk=patient.pk)
    return render(
        request, "patients/form.html", {"form": form, "patient": patient, "creating": False}
    )


@clinic_required("patients.view")
def patient_chart(request, pk, tab="overview"):
    patient = selectors.get_patient(request.clinic, pk)
    current = TAB_BY_SLUG.get(tab)
    if current is None:
        raise Http404("No such chart tab.")
    access, grant = selectors.chart_access(request.user, request.clinic, patient)
    request.emergency_grant = grant
    if current.clinical and access is None:
        if can(request.user, "chart.emergency_access", request.clinic):
            return render(
                request, "patients/emergency.html", {"patient": patient, "tab": current}, status=403
            )
        raise PermissionDenied(
            "Your role gives access to demographics only, not to the clinical chart."
        )
    audit.record_read(request, patient=patient, detail={"tab": tab})
    context = {
        "patient": patient,
        "tabs": TABS,
        "tab": current,
        "access": access,
        "grant": grant,
        "sections": sections_for(request, patient, tab),
    }
    if tab == "activity":
        page = Paginator(audit_selectors.patient_activity(request.clinic, patient), 50).get_page(
            request.GET.get("page")
        )
        context["page"] = page
    return render(request, "patients/chart.html", context)


@clinic_required("chart.emergency_access")
@require_POST
def emergency_access(request, pk):
    patient = selectors.get_patient(request.clinic, pk)
    try:
        access_services.grant_emergency_access(
            actor=request.user,
            clinic=request.clinic,
            patient=patient,
            reason=request.POST.get("reason", ""),
        )
    except ValidationError as exc:
        tab = TAB_BY_SLUG.get(request.POST.get("tab", ""), TAB_BY_SLUG["overview"])
        return render(
            request,
            "patients/emergency.html",
            {
                "patient": patient,
                "tab": tab,
                "error": exc.message_dict["reason"][0],
                "reason": request.POST.get("reason", ""),
            },
            status=400,
        )
    messages.warning(request, "Emergency access granted and recorded in the audit trail.")
    tab = request.POST.get("tab", "overview")
    return redirect(
        "patients:chart_tab", pk=patient.pk, tab=tab if tab in TAB_BY_SLUG else "overview"
    )
