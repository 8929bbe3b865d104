"""What the therapy app adds to other pages: a "Therapy notes" section in the chart's Notes
tab (after the treatment app's session notes: sections of one tab show in registration
order, and settings.DOMAIN_APPS puts treatment before therapy), progress letters in the
Documents tab, and the patient's other clinicians on the Overview tab. Each provider issues a constant number of queries."""

from django.template.loader import render_to_string

from ketaflow.accounts.permissions import can
from ketaflow.patients import chart
from ketaflow.patients import selectors as patient_selectors
from ketaflow.therapy import selectors


def _may_see(request, patient) -> bool:
    access, _ = patient_selectors.chart_access(request.user, request.clinic, patient)
    return access is not None


def _rows(notes, tz) -> list[dict]:
    """The table rows, formatted here: a chart with hundreds of notes stays fast (one
    ``reverse`` instead of one per row, no per-row template filters)."""
    from django.urls import reverse

    marker = 987654321
    href = reverse("therapy:note", kwargs={"pk": marker})
    return [
        {
            "href": href.replace(str(marker), str(n.pk)),
            "date": n.created_at.astimezone(tz).strftime("%Y-%m-%d"),
            "label": n.kind_label,
            "private": n.is_psychotherapy,
            "author": n.author.get_full_name(),
            "status": f"Signed {n.signed_at.astimezone(tz):%Y-%m-%d}" if n.is_signed else "Draft",
        }
        for n in notes
    ]


def notes_section(request, patient):
    """Therapy notes the user may read (psychotherapy notes only for their author and the
    clinicians they were shared with), the KAP courses, goals and practices, care team."""
    if not _may_see(request, patient):
        return None
    clinic = request.clinic
    notes = _rows(selectors.note_list(request.user, clinic, patient), clinic.tz)
    return render_to_string(
        "therapy/_chart_notes.html",
        {
            "patient": patient,
            "notes": notes,
            "plans": selectors.kap_plans(patient),
            "can_write": can(request.user, "therapy.write", clinic),
            "can_letters": can(request.user, "letters.sign", clinic),
            "can_care_team": can(request.user, "care_team.manage", clinic),
            "can_export": can(request.user, "export", clinic),
            "user_id": request.user.pk,
        },
        request=request,
    )


def documents_section(request, patient):
    if not _may_see(request, patient):
        return None
    letters = selectors.letters(patient)
    if not letters:
        return None
    return render_to_string(
        "therapy/_chart_letters.html", {"letters": letters, "patient": patient}, request=request
    )


def care_team_overview(request, patient):
    """The patient's other clinicians and sharing consent on the Overview tab, where front
    desk (who records them) can reach them. One query."""
    if request is None or not can(request.user, "care_team.manage", request.clinic):
        return None
    today = request.clinic.today()
    rows = [(c, c.consent_status(today)) for c in selectors.outside_clinicians(patient, True)]
    return render_to_string(
        "therapy/_overview_care_team.html", {"patient": patient, "rows": rows}, request=request
    )


def register() -> None:
    chart.section("notes")(notes_section)
    chart.section("documents")(documents_section)
    chart.section("overview")(care_team_overview)
