"""Thin pages: parse, authorize, call a service or selector, render."""

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from ketaflow.accounts.permissions import can
from ketaflow.audit import services as audit
from ketaflow.patients import selectors as patient_selectors
from ketaflow.therapy import course as course_mod
from ketaflow.therapy import fhir, forms, selectors, services
from ketaflow.therapy import note_types as nt
from ketaflow.therapy.models import (
    Goal,
    OutsideClinician,
    Practice,
    PracticeLink,
    TherapyNote,
)
from ketaflow.web.decorators import clinic_required


def _chart_patient(request, pk):
    """The patient, if the user may open the clinical chart (404 for other clinics)."""
    patient = patient_selectors.get_patient(request.clinic, pk)
    access, grant = patient_selectors.chart_access(request.user, request.clinic, patient)
    if access is None:
        raise PermissionDenied("Your role or locations do not give access to this chart.")
    request.emergency_grant = grant
    return patient


def _note(request, pk):
    note = selectors.get_note(request.user, request.clinic, pk)
    _chart_patient(request, note.patient_id)
    return note


def _msg(exc) -> str:
    return " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)


def _errors(exc: ValidationError) -> dict:
    return {k: " ".join(v) for k, v in exc.message_dict.items()}


def _apply(form, exc):
    for field, errs in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errs)


def _notes_url(patient_id):
    return reverse("patients:chart_tab", kwargs={"pk": patient_id, "tab": "notes"})


def _content_from_post(kind, structure, post) -> dict:
    return {s.key: post.get(s.key, "") for s in nt.sections(kind, structure)}


# ---------------------------------------------------------------------------- notes


@clinic_required("therapy.write")
@require_http_methods(["GET", "POST"])
def note_new(request, pk):
    patient = _chart_patient(request, pk)
    kind = request.POST.get("kind") or request.GET.get("kind") or ""
    plans = selectors.kap_plans(patient)
    sessions = selectors.patient_sessions(patient)
    if kind not in nt.KIND_LABELS:
        return render(
            request,
            "therapy/note_choose.html",
            {"patient": patient, "kinds": nt.KIND_CHOICES},
        )
    structure = (
        selectors.settings_for(request.clinic).progress_note_format if kind == nt.PROGRESS else ""
    )
    values = {
        # Not "plan" or "course": those are section names (note_types.CONTROL_NAMES).
        "plan": request.POST.get("treatment_course", request.GET.get("plan", "")),
        "session": request.POST.get("session", request.GET.get("session", "")),
        "appointment": request.POST.get("appointment", request.GET.get("appointment", "")),
    }
    content, errors = {}, {}
    if request.method == "POST":
        content = _content_from_post(kind, structure, request.POST)
        note = None
        try:
            note = services.create_note(
                patient=patient,
                actor=request.user,
                kind=kind,
                content=content,
                plan=values["plan"] or None,
                appointment=values["appointment"] or None,
                session=values["session"] or None,
            )
            if request.POST.get("go") == "sign":
                note = services.sign_note(note=note, actor=request.user)
        except ValidationError as exc:
            if note is not None:  # saved as a draft, signing refused: show why on the draft
                messages.warning(request, "Saved as a draft; not signed: " + " ".join(exc.messages))
                return redirect("therapy:note_edit", pk=note.pk)
            errors = _errors(exc)
        else:
            messages.success(
                request, "Note signed." if note.is_signed else "Draft saved: sign it when ready."
            )
            return redirect("therapy:note", pk=note.pk)
    return render(
        request,
        "therapy/note_form.html",
        {
            "patient": patient,
            "kind": kind,
            "kind_label": nt.KIND_LABELS[kind],
            "rows": [
                (s, content.get(s.key, ""), errors.get(s.key, ""))
                for s in nt.sections(kind, structure)
            ],
            "structure": structure,
            "errors": errors,
            "values": values,
            "plans": plans,
            "sessions": sessions,
            "creating": True,
            "medications": selectors.concurrent_medications(patient),
        },
    )


@clinic_required("therapy.write")
@require_http_methods(["GET", "POST"])
def note_edit(request, pk):
    note = _note(request, pk)
    if note.author_id != request.user.pk or note.is_signed:
        messages.error(request, "Only the author edits a draft; a signed note gains addenda.")
        return redirect("therapy:note", pk=note.pk)
    content, errors = dict(note.content), {}
    if request.method == "POST":
        content = _content_from_post(note.kind, note.structure, request.POST)
        try:
            if request.POST.get("go") == "sign":
                services.sign_note(note=note, actor=request.user, content=content)
            else:
                services.update_note(note=note, actor=request.user, content=content)
        except ValidationError as exc:
            errors = _errors(exc)
        else:
            messages.success(
                request, "Note signed." if request.POST.get("go") == "sign" else "Draft saved."
            )
            return redirect("therapy:note", pk=note.pk)
    return render(
        request,
        "therapy/note_form.html",
        {
            "patient": note.patient,
            "note": note,
            "kind": note.kind,
            "kind_label": note.kind_label,
            "rows": [(s, content.get(s.key, ""), errors.get(s.key, "")) for s in note.sections],
            "structure": note.structure,
            "errors": errors,
            "creating": False,
            "medications": selectors.concurrent_medications(note.patient),
        },
    )


@clinic_required("chart.view")
def note_detail(request, pk):
    note = _note(request, pk)
    services.record_note_read(request, note)
    is_author = note.author_id == request.user.pk
    return render(
        request,
        "therapy/note.html",
        {
            "note": note,
            "patient": note.patient,
            "addenda": selectors.addenda(note),
            "shares": selectors.active_shares(note) if note.is_psychotherapy else [],
            "candidates": selectors.share_candidates(request.clinic, note)
            if note.is_psychotherapy and is_author
            else [],
            "is_author": is_author,
            "can_write": can(request.user, "therapy.write", request.clinic),
            "can_addendum": note.is_signed
            and can(request.user, "therapy.write", request.clinic)
            and (is_author or not note.is_psychotherapy),
            "medications": selectors.concurrent_medications(note.patient),
        },
    )


@clinic_required("therapy.write")
@require_POST
def note_sign(request, pk):
    note = _note(request, pk)
    try:
        services.sign_note(note=note, actor=request.user)
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, _msg(exc))
        if note.author_id == request.user.pk and not note.is_signed:
            return redirect("therapy:note_edit", pk=note.pk)
    else:
        messages.success(request, "Note signed: it is now read-only.")
    return redirect("therapy:note", pk=note.pk)


@clinic_required("therapy.write")
@require_POST
def note_addendum(request, pk):
    note = _note(request, pk)
    try:
        services.add_addendum(note=note, actor=request.user, text=request.POST.get("text", ""))
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, "Addendum not added: " + _msg(exc))
    else:
        messages.success(request, "Addendum signed.")
    return redirect("therapy:note", pk=note.pk)


@clinic_required("therapy.write")
@require_POST
def note_share(request, pk):
    note = _note(request, pk)
    share = request.POST.get("action", "share") != "unshare"
    try:
        services.share_note(
            note=note, actor=request.user, user_id=request.POST.get("user"), share=share
        )
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, _msg(exc))
    else:
        messages.success(request, "Shared." if share else "No longer shared.")
    return redirect("therapy:note", pk=note.pk)


@clinic_required("therapy.write")
@require_POST
def note_release(request, pk):
    note = _note(request, pk)
    try:
        services.release_note(note=note, actor=request.user, reason=request.POST.get("reason", ""))
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, _msg(exc))
    else:
        messages.success(request, "Released to exports and the API.")
    return redirect("therapy:note", pk=note.pk)


# ---------------------------------------------------------------------------- goals, practices


@clinic_required("chart.view")
def therapy_plan(request, pk):
    patient = _chart_patient(request, pk)
    audit.record_read(request, patient=patient, detail={"tab": "therapy-plan"})
    return render(
        request,
        "therapy/plan.html",
        {"patient": patient, **_plan_context(request, patient)},
    )


def _plan_context(request, patient):
    weeks = selectors.practice_weeks(patient)
    trend = ""
    if weeks:
        trend = _trend(request, patient)
    return {
        "goals": selectors.goal_rows(patient),
        "practices": selectors.practices(patient),
        "weeks": weeks,
        "links": [(lk, lk.status_at(selectors.now())) for lk in selectors.practice_links(patient)],
        "trend": trend,
        "can_write": can(request.user, "therapy.write", request.clinic),
    }


def _trend(request, patient):
    from django.apps import apps

    if not apps.is_installed("ketaflow.measures"):
        return ""
    from ketaflow.measures import charts
    from ketaflow.measures import selectors as measures

    blocks = [b for b in measures.course_measures(patient) if b.plan is not None]
    if not blocks:
        return ""
    block = blocks[-1]
    from ketaflow.therapy.letters import IN_SESSION

    main = next(
        (
            h
            for h in block.histories
            if h.instrument.score_range is not None and h.code not in IN_SESSION
        ),
        None,
    )
    if main is None:
        return ""
    return charts.trend_svg(
        main, block.treatments, request.clinic.tz, compact=True, chart_id="therapy-trend"
    )


def _model_form_page(request, *, patient, form, template, save, ok, title, back):
    if request.method == "POST":
        try:
            obj = save(request.POST)
        except ValidationError as exc:
            form.is_valid()
            for field, errs in exc.message_dict.items():
                if field not in form.errors:
                    form.add_error(field if field in form.fields else None, errs)
        else:
            messages.success(request, ok)
            return redirect(back(obj))
    return render(request, template, {"patient": patient, "form": form, "title": title})


@clinic_required("therapy.write")
@require_http_methods(["GET", "POST"])
def goal_new(request, pk):
    patient = _chart_patient(request, pk)
    return _model_form_page(
        request,
        patient=patient,
        form=forms.GoalForm(request.POST or None, patient=patient),
        template="therapy/form.html",
        save=lambda data: services.save_goal(patient=patient, actor=request.user, data=data),
        ok="Goal saved.",
        title="New treatment goal",
        back=lambda obj: reverse("therapy:plan", kwargs={"pk": patient.pk}),
    )


@clinic_required("therapy.write")
@require_http_methods(["GET", "POST"])
def goal_edit(request, pk):
    goal = selectors.get_object(Goal, request.clinic, pk)
    patient = _chart_patient(request, goal.patient_id)
    return _model_form_page(
        request,
        patient=patient,
        form=forms.GoalForm(request.POST or None, instance=goal, patient=patient),
        template="therapy/form.html",
        save=lambda data: services.save_goal(
            patient=patient, actor=request.user, data=data, goal=goal
        ),
        ok="Goal saved.",
        title="Treatment goal",
        back=lambda obj: reverse("therapy:plan", kwargs={"pk": patient.pk}),
    )


@clinic_required("therapy.write")
@require_http_methods(["GET", "POST"])
def practice_new(request, pk):
    patient = _chart_patient(request, pk)
    return _model_form_page(
        request,
        patient=patient,
        form=forms.PracticeForm(request.POST or None),
        template="therapy/form.html",
        save=lambda data: services.save_practice(patient=patient, actor=request.user, data=data),
        ok="Practice saved.",
        title="New practice between sessions",
        back=lambda obj: reverse("therapy:plan", kwargs={"pk": patient.pk}),
    )


@clinic_required("therapy.write")
@require_http_methods(["GET", "POST"])
def practice_edit(request, pk):
    practice = selectors.get_object(Practice, request.clinic, pk)
    patient = _chart_patient(request, practice.patient_id)
    return _model_form_page(
        request,
        patient=patient,
        form=forms.PracticeForm(request.POST or None, instance=practice),
        template="therapy/form.html",
        save=lambda data: services.save_practice(
            patient=patient, actor=request.user, data=data, practice=practice
        ),
        ok="Practice saved.",
        title="Practice between sessions",
        back=lambda obj: reverse("therapy:plan", kwargs={"pk": patient.pk}),
    )


@clinic_required("therapy.write")
@require_POST
def practice_day(request, pk):
    """A clinician records one day of a practice as done or not done (the grid's buttons);
    htmx gets the grid back (as many weeks as it showed), a plain form post returns to the
    goals-and-practices page."""
    practice = selectors.get_object(Practice, request.clinic, pk)
    patient = _chart_patient(request, practice.patient_id)
    error = ""
    try:
        services.record_practice_day(
            practice=practice,
            actor=request.user,
            day=request.POST.get("day", ""),
            done=request.POST.get("done") == "1",
        )
    except (ValidationError, PermissionDenied) as exc:
        error = _msg(exc)
    if request.htmx:
        shown = request.POST.get("weeks", "")
        n = min(int(shown), 8) if shown.isdigit() and int(shown) > 0 else 4
        context = {"weeks": selectors.practice_weeks(patient, weeks=n), "error": error}
        return render(request, "therapy/_grid.html", {**context, "can_write": True})
    if error:
        messages.error(request, error)
    else:
        messages.success(request, "Day recorded.")
    return redirect("therapy:plan", pk=patient.pk)


@clinic_required("therapy.write")
@require_POST
def practice_link(request, pk):
    patient = _chart_patient(request, pk)
    try:
        link, raw = services.create_practice_link(
            patient=patient,
            actor=request.user,
            send_email=bool(request.POST.get("send_email")),
            base_url=request.build_absolute_uri("/").rstrip("/"),
        )
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, _msg(exc))
        return redirect("therapy:plan", pk=patient.pk)
    import segno

    url = request.build_absolute_uri(services.practice_link_path(raw))
    response = render(
        request,
        "therapy/link_created.html",
        {
            "patient": patient,
            "link": link,
            "url": url,
            "qr": segno.make(url, error="m").svg_data_uri(scale=5, border=2),
        },
    )
    response["Cache-Control"] = "no-store"
    return response


@clinic_required("therapy.write")
@require_POST
def practice_link_revoke(request, pk):
    link = selectors.get_object(PracticeLink, request.clinic, pk)
    _chart_patient(request, link.patient_id)
    try:
        services.revoke_practice_link(link=link, actor=request.user)
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, _msg(exc))
    else:
        messages.success(request, "Link withdrawn: it no longer opens.")
    return redirect("therapy:plan", pk=link.patient_id)


# ---------------------------------------------------------------------------- care team


@clinic_required("care_team.manage")
def care_team(request, pk):
    patient = patient_selectors.get_patient(request.clinic, pk)
    today = request.clinic.today()
    audit.record_read(request, patient=patient, detail={"tab": "care-team"})
    rows = [(c, c.consent_status(today)) for c in selectors.outside_clinicians(patient)]
    return render(
        request,
        "therapy/care_team.html",
        {
            "patient": patient,
            "rows": rows,
            "can_letters": can(request.user, "letters.sign", request.clinic),
        },
    )


@clinic_required("care_team.manage")
@require_http_methods(["GET", "POST"])
def clinician_new(request, pk):
    patient = patient_selectors.get_patient(request.clinic, pk)
    return _model_form_page(
        request,
        patient=patient,
        form=forms.ClinicianForm(request.POST or None, today=request.clinic.today()),
        template="therapy/form.html",
        save=lambda data: services.save_clinician(patient=patient, actor=request.user, data=data),
        ok="Clinician saved.",
        title="Add one of the patient's other clinicians",
        back=lambda obj: reverse("therapy:care_team", kwargs={"pk": patient.pk}),
    )


@clinic_required("care_team.manage")
@require_http_methods(["GET", "POST"])
def clinician_edit(request, pk):
    clinician = selectors.get_object(OutsideClinician, request.clinic, pk)
    patient = clinician.patient
    return _model_form_page(
        request,
        patient=patient,
        form=forms.ClinicianForm(
            request.POST or None, instance=clinician, today=request.clinic.today()
        ),
        template="therapy/form.html",
        save=lambda data: services.save_clinician(
            patient=patient, actor=request.user, data=data, clinician=clinician
        ),
        ok="Clinician saved.",
        title="The patient's other clinician and sharing consent",
        back=lambda obj: reverse("therapy:care_team", kwargs={"pk": patient.pk}),
    )


# ---------------------------------------------------------------------------- letters


@clinic_required("letters.sign")
@require_http_methods(["GET", "POST"])
def letter_new(request, pk):
    patient = _chart_patient(request, pk)
    clinicians = selectors.outside_clinicians(patient, active_only=True)
    plans = selectors.kap_plans(patient)
    errors, values = (
        {},
        {
            "recipient": request.POST.get("recipient", request.GET.get("recipient", "")),
            "plan": request.POST.get("plan", str(plans[-1].pk) if plans else ""),
        },
    )
    if request.method == "POST":
        try:
            letter = services.create_letter(
                patient=patient,
                actor=request.user,
                recipient=values["recipient"],
                plan=values["plan"] or None,
            )
        except ValidationError as exc:
            errors = _errors(exc)
        else:
            messages.success(request, "Draft letter generated from the record: review it.")
            return redirect("therapy:letter", pk=letter.pk)
    return render(
        request,
        "therapy/letter_new.html",
        {
            "patient": patient,
            "clinicians": clinicians,
            "plans": plans,
            "errors": errors,
            "values": values,
        },
    )


def _letter(request, pk):
    letter = selectors.get_letter(request.clinic, pk)
    _chart_patient(request, letter.patient_id)
    return letter


@clinic_required("chart.view")
def letter_detail(request, pk):
    letter = _letter(request, pk)
    audit.record_read(request, patient=letter.patient, obj=letter)
    today = request.clinic.today()
    return render(
        request,
        "therapy/letter.html",
        {
            "letter": letter,
            "patient": letter.patient,
            "f": letter.facts,
            "trend": _trend(request, letter.patient),
            "consent": letter.recipient.consent_status(today),
            "sends": list(letter.sends.select_related("sent_by")),
            "is_author": letter.author_id == request.user.pk
            and can(request.user, "letters.sign", request.clinic),
        },
    )


@clinic_required("letters.sign")
@require_POST
def letter_edit(request, pk):
    letter = _letter(request, pk)
    try:
        services.update_letter(
            letter=letter,
            actor=request.user,
            plan_text=request.POST.get("plan_text", ""),
            comments=request.POST.get("comments", ""),
            refresh=bool(request.POST.get("refresh")),
        )
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, _msg(exc))
    else:
        messages.success(request, "Letter saved.")
    return redirect("therapy:letter", pk=letter.pk)


@clinic_required("letters.sign")
@require_POST
def letter_sign(request, pk):
    letter = _letter(request, pk)
    try:
        services.sign_letter(letter=letter, actor=request.user)
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, _msg(exc))
    else:
        messages.success(request, "Letter signed; its PDF is fixed.")
    return redirect("therapy:letter", pk=letter.pk)


@clinic_required("letters.sign")
@require_POST
def letter_send(request, pk):
    letter = _letter(request, pk)
    try:
        send = services.send_letter(letter=letter, actor=request.user)
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, _msg(exc))
    else:
        messages.success(request, f"Letter emailed to {send.to_email}.")
    return redirect("therapy:letter", pk=letter.pk)


@clinic_required("chart.view")
def letter_pdf(request, pk):
    letter = _letter(request, pk)
    if not letter.is_signed:
        from ketaflow.therapy import pdf

        data = pdf.letter_pdf(letter)
    else:
        data = bytes(letter.pdf)
    audit.record(
        action="print",
        clinic=request.clinic,
        actor=request.user,
        patient=letter.patient,
        obj=letter,
        detail={"draft": not letter.is_signed},
        emergency=audit.read_is_emergency(request, letter.patient),
    )
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="progress-letter-{letter.pk}.pdf"'
    response["Cache-Control"] = "no-store"
    return response


# ---------------------------------------------------------------------------- course, export


@clinic_required("chart.view")
def course(request, pk):
    from ketaflow.plans.models import TreatmentPlan

    try:
        plan = (
            TreatmentPlan.objects.for_clinic(request.clinic)
            .select_related("current")
            .get(pk=int(pk))
        )
    except (TreatmentPlan.DoesNotExist, ValueError):
        raise Http404("No such course in this clinic.") from None
    patient = _chart_patient(request, plan.patient_id)
    audit.record_read(request, patient=patient, obj=plan, detail={"tab": "kap-course"})
    view = course_mod.build(request.user, request.clinic, patient, plan)
    return render(
        request,
        "therapy/course.html",
        {
            "patient": patient,
            "v": view,
            "plan": plan,
            "goals": selectors.goal_rows(patient),
            "weeks": selectors.practice_weeks(patient, weeks=2),
            "medications": selectors.concurrent_medications(patient),
            "can_write": can(request.user, "therapy.write", request.clinic),
            "trend": _trend(request, patient),
        },
    )


@clinic_required("export")
def export(request, pk):
    """The patient's therapy notes as a FHIR-shaped Bundle: record notes and released
    psychotherapy notes only. The export itself is audited."""
    patient = _chart_patient(request, pk)
    notes = list(selectors.exportable_notes(request.clinic, patient))
    bundle = fhir.bundle(patient, notes)
    audit.record(
        action="export",
        clinic=request.clinic,
        actor=request.user,
        patient=patient,
        object_type="therapy.export",
        object_id=str(patient.pk),
        detail={"notes": len(notes)},
        emergency=audit.read_is_emergency(request, patient),
    )
    response = HttpResponse(json.dumps(bundle, indent=2), content_type="application/fhir+json")
    response["Content-Disposition"] = f'attachment; filename="therapy-notes-{patient.mrn}.json"'
    response["Cache-Control"] = "no-store"
    return response


# ---------------------------------------------------------------------------- settings


@clinic_required("clinic.settings")
@require_http_methods(["GET", "POST"])
def settings_view(request):
    form = forms.SettingsForm(request.POST or None, instance=selectors.settings_for(request.clinic))
    if request.method == "POST":
        try:
            services.update_settings(clinic=request.clinic, actor=request.user, data=request.POST)
        except ValidationError as exc:
            form.is_valid()
            _ = exc
        else:
            messages.success(request, "Therapy settings saved.")
            return redirect("therapy:settings")
    return render(request, "therapy/settings.html", {"form": form})


# ---------------------------------------------------------------------------- public link


def _public(response):
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def practice_respond(request, token):
    """The patient's practice grid: no account, the token is the capability (CSRF exempt for
    the reason given in ``measures.views.respond``: nothing is granted through cookies)."""
    from django.utils import timezone

    link = services.find_practice_link(token)
    if link is None:
        return _public(render(request, "therapy/public/invalid.html", status=404))
    timezone.activate(link.clinic.tz)
    saved = False
    if request.method == "POST":
        ticks = set()
        for value in request.POST.getlist("done"):
            pid, _, day = value.partition(":")
            if pid.isdigit():
                ticks.add((int(pid), day))
        try:
            services.submit_practices(link=link, ticks=ticks)
        except (PermissionDenied, ValidationError):
            return _public(render(request, "therapy/public/invalid.html", status=404))
        saved = True
    days = services.link_days(link)
    plist = selectors.practices(link.patient, active_only=True)
    from ketaflow.therapy.models import PracticeEntry

    done = {
        (e.practice_id, e.day)
        for e in PracticeEntry.objects.filter(practice__in=plist, day__in=days, done=True)
    }
    rows = [(p, [(d, (p.pk, d) in done) for d in days]) for p in plist]
    return _public(
        render(
            request,
            "therapy/public/practices.html",
            {"link": link, "clinic": link.clinic, "days": days, "rows": rows, "saved": saved},
        )
    )


def note_kind_is_record(note: TherapyNote) -> bool:
    return note.kind in nt.RECORD_KINDS
