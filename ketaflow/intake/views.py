"""Thin views: parse, authorize, call a service or selector, render."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from ketaflow.accounts.permissions import can
from ketaflow.audit import services as audit
from ketaflow.audit.middleware import client_address
from ketaflow.clinical import eligibility as rules
from ketaflow.intake import forms, selectors, services
from ketaflow.intake.models import ROUTE_CHOICES, ROUTE_LABELS, ConsultationRequest
from ketaflow.intake.pdf import consent_pdf
from ketaflow.patients import selectors as patient_selectors
from ketaflow.tenancy.models import Clinic
from ketaflow.web.decorators import clinic_required

MAX_PUBLIC_BODY = 32_000  # bytes: the whole public form fits in far less


def _apply_errors(form, exc: ValidationError):
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


def _chart_patient(request, pk):
    """The patient, if the user may open the clinical chart (normal scope or emergency grant)."""
    patient = patient_selectors.get_patient(request.clinic, pk)
    access, grant = patient_selectors.chart_access(request.user, request.clinic, patient)
    if access is None:
        raise PermissionDenied("This chart is outside your normal scope (use emergency access).")
    request.emergency_grant = grant
    return patient


# --- Public pages ------------------------------------------------------------------------


def _content_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return MAX_PUBLIC_BODY + 1


def _public_clinic(slug):
    return get_object_or_404(Clinic, slug=slug)


@require_http_methods(["GET", "POST"])
def public_request(request, slug):
    """The public consultation request page: no sign-in, CSRF, honeypot, rate limit, sizes."""
    clinic = _public_clinic(slug)
    if request.method == "POST":
        if _content_length(request) > MAX_PUBLIC_BODY:
            return render(
                request,
                "intake/public_error.html",
                {"clinic": clinic, "error": "The form was too large to accept."},
                status=413,
            )
        if not services.allow_public_submission(client_address=client_address(request)):
            return render(
                request,
                "intake/public_error.html",
                {
                    "clinic": clinic,
                    "error": "Too many requests from your network in the last hour. "
                    "Please try again later, or telephone the clinic.",
                },
                status=429,
            )
        form = forms.PublicRequestForm(request.POST, clinic=clinic)
        if request.POST.get("website"):
            # A bot filled the hidden field: answer as if accepted, store nothing.
            return redirect("intake:public_thanks", slug=clinic.slug)
        if form.is_valid():
            item = services.submit_request(clinic=clinic, data=form.cleaned_data)
            request.session["intake_urgent"] = item.urgent
            return redirect("intake:public_thanks", slug=clinic.slug)
    else:
        form = forms.PublicRequestForm(clinic=clinic)
    return render(request, "intake/public_request.html", {"clinic": clinic, "form": form})


def public_thanks(request, slug):
    clinic = _public_clinic(slug)
    urgent = request.session.pop("intake_urgent", False)
    return render(request, "intake/public_thanks.html", {"clinic": clinic, "urgent": urgent})


@require_http_methods(["GET", "POST"])
def consent_by_link(request, token):
    """The patient signs at home through a single-use, expiring link."""
    link = selectors.link_for_token(token)
    if link is None:
        return render(
            request,
            "intake/public_error.html",
            {
                "error": "This link is not valid, has been used, or has expired. "
                "Ask the clinic for a new one."
            },
            status=404,
        )
    form = forms.ConsentSignForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.sign_consent_by_link(
                raw_token=token,
                typed_name=form.cleaned_data["typed_name"],
                agreed=form.cleaned_data["agreed"],
                client_address=client_address(request),
                user_agent=request.META.get("HTTP_USER_AGENT", ""),
            )
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            return render(request, "intake/consent_done.html", {"clinic": link.clinic})
    return render(
        request,
        "intake/consent_sign.html",
        {
            "document": link.document,
            "patient": link.patient,
            "form": form,
            "public": True,
            "clinic": link.clinic,
        },
    )


# --- Intake queue ------------------------------------------------------------------------


@clinic_required("intake.view")
def queue(request):
    status = request.GET.get("status", "")
    if status not in ConsultationRequest.Status.values:
        status = ""
    items = list(selectors.requests(request.clinic, status or None)[:200])
    audit.record_list_read(
        request,
        patient_ids=[r.patient_id for r in items],
        object_ids=[r.pk for r in items],
        object_type="intake.consultationrequest",
        detail={"filters": {"status": status or None}},
    )
    counts = selectors.request_status_counts(request.clinic)
    return render(
        request,
        "intake/queue.html",
        {
            "items": items,
            "status": status,
            "statuses": [(v, label, counts[v]) for v, label in ConsultationRequest.Status.choices],
            "public_url": request.build_absolute_uri(
                reverse("intake:public_request", args=[request.clinic.slug])
            ),
        },
    )


@clinic_required("intake.view")
def request_detail(request, pk):
    item = selectors.get_request(request.clinic, pk)
    audit.record(
        action="read",
        clinic=request.clinic,
        actor=request.user,
        obj=item,
        patient=item.patient,
        emergency=item.patient is not None and audit.read_is_emergency(request, item.patient),
    )
    return _render_detail(request, item, forms.StatusForm(initial={"status": item.status}))


def _render_detail(request, item, status_form, status=200):
    return render(
        request,
        "intake/request_detail.html",
        {
            "item": item,
            "status_form": status_form,
            "phq9_rows": _phq9_rows(item),
        },
        status=status,
    )


def _phq9_rows(item):
    from ketaflow.clinical import instruments

    if not item.phq9_answers:
        return []
    rows = []
    for it in instruments.get("phq9").items:
        value = item.phq9_answers.get(it.key)
        label = next((o.label for o in it.options if o.value == value), "—")
        rows.append((it.text, value, label))
    return rows


@clinic_required("intake.manage")
@require_POST
def request_status(request, pk):
    item = selectors.get_request(request.clinic, pk)
    form = forms.StatusForm(request.POST)
    if form.is_valid():
        try:
            services.set_request_status(
                item=item,
                actor=request.user,
                status=form.cleaned_data["status"],
                decline_reason=form.cleaned_data["decline_reason"],
            )
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, "Status saved.")
            return redirect("intake:request_detail", pk=item.pk)
    return _render_detail(request, item, form)


@clinic_required("intake.manage")
@require_POST
def request_convert(request, pk):
    item = selectors.get_request(request.clinic, pk)
    try:
        patient = services.convert_request(item=item, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(m for ms in exc.message_dict.values() for m in ms))
        return redirect("intake:request_detail", pk=item.pk)
    messages.success(
        request,
        f"{patient.display_name} is registered as a prospective patient "
        f"(MRN {patient.mrn}). Check the details marked unconfirmed with them.",
    )
    return redirect("patients:chart", pk=patient.pk)


# --- Assessment --------------------------------------------------------------------------


def _formsets(data, assessment):
    def rows(items, minimum=3):
        return max(minimum - len(items), 1)

    diag = assessment.diagnoses if assessment else []
    trials = assessment.trials if assessment else []
    meds = assessment.medications if assessment else []
    if data is None:
        return (
            forms.forms.formset_factory(forms.DiagnosisForm, extra=rows(diag, 2))(
                prefix="dx", initial=diag
            ),
            forms.forms.formset_factory(forms.TrialForm, extra=rows(trials))(
                prefix="trial", initial=forms.trial_initial(trials)
            ),
            forms.forms.formset_factory(forms.MedicationForm, extra=rows(meds))(
                prefix="med", initial=meds
            ),
        )
    return (
        forms.DiagnosisFormSet(data, prefix="dx"),
        forms.TrialFormSet(data, prefix="trial"),
        forms.MedicationFormSet(data, prefix="med"),
    )


@clinic_required("assessment.edit")
@require_http_methods(["GET", "POST"])
def assessment_edit(request, pk):
    patient = _chart_patient(request, pk)
    current = selectors.latest_assessment(patient)
    draft = current if current and not current.is_signed else None
    if current and current.is_signed and request.GET.get("new") != "1" and request.method == "GET":
        return redirect("patients:chart_tab", pk=patient.pk, tab="assessment")
    source = draft or current  # a new assessment after a signed one starts from its content
    form = forms.AssessmentForm(
        request.POST or None,
        clinic=request.clinic,
        instance=source if draft else None,
        initial=_initial_from(source) if source and not draft else None,
    )
    dx, trials, meds = _formsets(request.POST if request.method == "POST" else None, source)
    if request.method == "POST":
        valid = all([form.is_valid(), dx.is_valid(), trials.is_valid(), meds.is_valid()])
        if valid:
            try:
                services.save_assessment(
                    patient=patient,
                    actor=request.user,
                    fields=form.cleaned_data,
                    diagnoses=[
                        {
                            "code": f.cleaned_data["code"],
                            "description": f.cleaned_data["description"],
                        }
                        for f in dx
                        if f.cleaned_data.get("code")
                    ],
                    trials=[t for f in trials if (t := f.as_trial())],
                    medications=[m for f in meds if (m := f.as_medication())],
                )
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                messages.success(request, "Draft saved.")
                return redirect("patients:chart_tab", pk=patient.pk, tab="assessment")
    audit.record_read(request, patient=patient, detail={"tab": "assessment-edit"})
    return render(
        request,
        "intake/assessment_form.html",
        {
            "patient": patient,
            "form": form,
            "dx": dx,
            "trials": trials,
            "meds": meds,
            "draft": draft,
        },
    )


def _initial_from(assessment):
    from django.forms.models import model_to_dict

    return model_to_dict(assessment, fields=services.ASSESSMENT_FIELDS)


@clinic_required("assessment.sign")
@require_POST
def assessment_sign(request, pk):
    assessment = selectors.get_assessment(request.clinic, pk)
    _chart_patient(request, assessment.patient_id)
    try:
        services.sign_assessment(assessment=assessment, actor=request.user)
    except ValidationError as exc:
        messages.error(
            request, "Not signed: " + " ".join(m for ms in exc.message_dict.values() for m in ms)
        )
    else:
        messages.success(
            request, "Assessment signed. It is now read-only; corrections are addenda."
        )
    return redirect("patients:chart_tab", pk=assessment.patient_id, tab="assessment")


@clinic_required("assessment.edit")
@require_POST
def assessment_addendum(request, pk):
    assessment = selectors.get_assessment(request.clinic, pk)
    _chart_patient(request, assessment.patient_id)
    try:
        services.add_addendum(
            assessment=assessment, actor=request.user, text=request.POST.get("text", "")
        )
    except ValidationError as exc:
        messages.error(request, " ".join(m for ms in exc.message_dict.values() for m in ms))
    else:
        messages.success(request, "Addendum added.")
    return redirect("patients:chart_tab", pk=assessment.patient_id, tab="assessment")


# --- Eligibility decision ----------------------------------------------------------------


def route_rows(results):
    return [{"route": r, "label": ROUTE_LABELS[r], **results[r]} for r in rules.ROUTES]


@clinic_required("eligibility.decide")
@require_http_methods(["GET", "POST"])
def decision(request, pk):
    patient = _chart_patient(request, pk)
    assessment = selectors.latest_assessment(patient)
    form = forms.DecisionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.record_decision(patient=patient, actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, "Decision signed.")
            return redirect("patients:chart_tab", pk=patient.pk, tab="assessment")
    results = None
    if assessment is not None:
        try:
            results = route_rows(selectors.rule_results(assessment, patient))
        except ValidationError:
            results = None
    audit.record_read(request, patient=patient, detail={"tab": "eligibility"})
    return render(
        request,
        "intake/decision.html",
        {
            "patient": patient,
            "assessment": assessment,
            "results": results,
            "form": form,
            "decisions": list(selectors.decisions(patient)[:10]),
        },
    )


# --- Consent -----------------------------------------------------------------------------


@clinic_required("consent.collect")
@require_http_methods(["GET", "POST"])
def consent_collect(request, pk, route):
    """Tablet signing: a staff member hands the signed-in tablet to the patient."""
    if route not in rules.ROUTES:
        raise Http404("Unknown route.")
    patient = patient_selectors.get_patient(request.clinic, pk)
    services.ensure_default_documents(clinic=request.clinic)
    document = selectors.current_document(request.clinic, route)
    form = forms.ConsentSignForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.sign_consent(
                patient=patient,
                actor=request.user,
                route=route,
                typed_name=form.cleaned_data["typed_name"],
                agreed=form.cleaned_data["agreed"],
                client_address=client_address(request),
                user_agent=request.META.get("HTTP_USER_AGENT", ""),
            )
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            return render(
                request, "intake/consent_done.html", {"clinic": request.clinic, "patient": patient}
            )
    return render(
        request,
        "intake/consent_sign.html",
        {"document": document, "patient": patient, "form": form, "public": False},
    )


@clinic_required("consent.collect")
@require_POST
def consent_link_create(request, pk):
    patient = patient_selectors.get_patient(request.clinic, pk)
    services.ensure_default_documents(clinic=request.clinic)
    form = forms.ConsentLinkForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a route and a validity of 1 to 168 hours.")
        return redirect("patients:chart", pk=patient.pk)
    link, raw = services.create_consent_link(
        patient=patient, actor=request.user, **form.cleaned_data
    )
    url = request.build_absolute_uri(reverse("intake:consent_by_link", args=[raw]))
    return render(
        request,
        "intake/consent_link.html",
        {
            "patient": patient,
            "link": link,
            "url": url,
            "route_label": ROUTE_LABELS[form.cleaned_data["route"]],
        },
    )


@clinic_required("chart.view")
def consent_view(request, pk):
    signature = selectors.get_signature(request.clinic, pk)
    patient = _chart_patient(request, signature.patient_id)
    audit.record_read(request, patient=patient, obj=signature)
    return render(
        request,
        "intake/consent_view.html",
        {"signature": signature, "patient": patient, "withdraw_form": forms.WithdrawForm()},
    )


@clinic_required("chart.view")
def consent_pdf_view(request, pk):
    signature = selectors.get_signature(request.clinic, pk)
    patient = _chart_patient(request, signature.patient_id)
    audit.record(
        action="print",
        clinic=request.clinic,
        actor=request.user,
        patient=patient,
        obj=signature,
        emergency=audit.read_is_emergency(request, patient),
    )
    response = HttpResponse(consent_pdf(signature, request.clinic), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="consent-{signature.pk}.pdf"'
    return response


@clinic_required("consent.collect")
@require_POST
def consent_withdraw(request, pk):
    signature = selectors.get_signature(request.clinic, pk)
    try:
        services.withdraw_consent(
            signature=signature, actor=request.user, reason=request.POST.get("reason", "")
        )
    except ValidationError as exc:
        messages.error(request, " ".join(m for ms in exc.message_dict.values() for m in ms))
    else:
        messages.success(request, "Withdrawal of consent recorded.")
    if can(request.user, "chart.view", request.clinic):
        return redirect("patients:chart_tab", pk=signature.patient_id, tab="assessment")
    return redirect("patients:chart", pk=signature.patient_id)


@clinic_required("consent.manage")
def documents(request):
    services.ensure_default_documents(clinic=request.clinic)
    current = selectors.current_documents(request.clinic)
    return render(
        request,
        "intake/documents.html",
        {
            "rows": [(code, label, current.get(code)) for code, label in ROUTE_CHOICES],
            "history": list(selectors.documents(request.clinic)),
        },
    )


@clinic_required("consent.manage")
@require_http_methods(["GET", "POST"])
def document_edit(request, route):
    if route not in rules.ROUTES:
        raise Http404("Unknown route.")
    services.ensure_default_documents(clinic=request.clinic)
    current = selectors.current_document(request.clinic, route)
    form = forms.ConsentDocumentForm(
        request.POST or None, initial={"title": current.title, "body": current.body}
    )
    if request.method == "POST" and form.is_valid():
        try:
            document = services.publish_document(
                clinic=request.clinic, actor=request.user, route=route, **form.cleaned_data
            )
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(
                request,
                f"Version {document.version} published; earlier signatures keep their text.",
            )
            return redirect("intake:documents")
    return render(
        request,
        "intake/document_form.html",
        {"form": form, "current": current, "route_label": ROUTE_LABELS[route]},
    )


@clinic_required("clinic.settings")
@require_http_methods(["GET", "POST"])
def eligibility_settings(request):
    """The clinic's eligibility-rule settings, each with ketaflow's default and its source."""
    row = selectors.eligibility_settings_row(request.clinic)
    form = forms.EligibilitySettingsForm(request.POST or None, instance=row)
    if request.method == "POST":
        try:
            services.save_eligibility_settings(
                clinic=request.clinic, actor=request.user, data=request.POST
            )
        except ValidationError as exc:
            form.is_valid()
            if not form.errors:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, "Eligibility settings saved.")
            return redirect("intake:eligibility_settings")
    return render(
        request,
        "intake/eligibility_settings.html",
        {"form": form, "table": selectors.eligibility_settings_table(request.clinic)},
        status=422 if form.errors else 200,
    )
