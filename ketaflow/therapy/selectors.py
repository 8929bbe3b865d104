"""Reads of the therapy app, always scoped to one clinic.

The psychotherapy-note rule lives here and only here: a note of kind ``psychotherapy`` is
readable by its author and by the clinicians the author shared it with (an active
``NoteShare``), and by nobody else: no role, no emergency access, no export. Every other
therapy note is part of the medical record and follows the chart's access rule
(``patients.selectors.chart_access``). All lists go through ``visible_notes``.
"""

import datetime
from collections import defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple

from django.apps import apps as django_apps
from django.db.models import Exists, OuterRef, Q
from django.http import Http404

from ketaflow.accounts.permissions import can
from ketaflow.patients import selectors as patient_selectors
from ketaflow.therapy import note_types as nt
from ketaflow.therapy.models import (
    Goal,
    NoteAddendum,
    NoteShare,
    OutsideClinician,
    Practice,
    PracticeEntry,
    PracticeLink,
    ProgressLetter,
    TherapyNote,
    TherapySettings,
)


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def settings_for(clinic) -> TherapySettings:
    return TherapySettings.objects.filter(clinic=clinic).first() or TherapySettings(clinic=clinic)


# ---------------------------------------------------------------------------- note access


def _shared_with(user):
    return NoteShare.objects.filter(note=OuterRef("pk"), user=user, revoked_at__isnull=True)


def visible_notes(user, clinic, patient=None):
    """Therapy notes ``user`` may read in ``clinic``: record notes, plus psychotherapy notes
    the user wrote or was shared. The caller checks chart access to the patient."""
    if user is None or not getattr(user, "is_authenticated", False):
        return TherapyNote.all_kinds.none()
    qs = TherapyNote.all_kinds.for_clinic(clinic).filter(
        ~Q(kind=nt.PSYCHOTHERAPY) | Q(author=user) | Q(Exists(_shared_with(user)))
    )
    if patient is not None:
        qs = qs.filter(patient=patient)
    return qs


def may_read_note(user, clinic, note) -> bool:
    """Chart access to the patient, and for psychotherapy notes, author or shared."""
    if note.clinic_id != clinic.pk:
        return False
    access, _grant = patient_selectors.chart_access(user, clinic, note.patient)
    if access is None:
        return False
    if not note.is_psychotherapy:
        return True
    return note.author_id == user.pk or (
        NoteShare.objects.filter(note=note, user=user, revoked_at__isnull=True).exists()
    )


def get_note(user, clinic, pk) -> TherapyNote:
    """The note if ``user`` may read it. Another clinic's note, and a psychotherapy note the
    user neither wrote nor was shared, answer 404 (their existence is not revealed)."""
    try:
        note = (
            visible_notes(user, clinic)
            .select_related("patient", "author", "plan__current", "session", "appointment__type")
            .get(pk=int(pk))
        )
    except (TherapyNote.DoesNotExist, ValueError, TypeError):
        raise Http404("No such note in this clinic.") from None
    return note


def note_list(user, clinic, patient, *, text: str = ""):
    """The patient's therapy notes visible to ``user``, newest first (2 queries)."""
    qs = visible_notes(user, clinic, patient).select_related("author")
    if text:
        qs = [n for n in qs if text.casefold() in " ".join(n.content.values()).casefold()]
    return list(qs)


def addenda(note):
    return list(NoteAddendum.objects.filter(note=note).select_related("author"))


def active_shares(note):
    return list(NoteShare.objects.filter(note=note, revoked_at__isnull=True).select_related("user"))


def share_candidates(clinic, note):
    """Clinicians of the clinic the author may share with (chart roles), author excluded."""
    from ketaflow.tenancy.models import Membership

    members = (
        Membership.objects.filter(clinic=clinic, is_active=True)
        .select_related("user")
        .order_by("user__full_name")
    )
    return [m for m in members if m.user_id != note.author_id and can(m.user, "chart.view", clinic)]


def exportable_notes(clinic, patient):
    """Signed notes that may leave the clinic in an export or the FHIR-shaped API: every
    record note, and psychotherapy notes only once their author released them."""
    return (
        TherapyNote.all_kinds.for_clinic(clinic)
        .filter(patient=patient, status=TherapyNote.Status.SIGNED)
        .filter(~Q(kind=nt.PSYCHOTHERAPY) | Q(released_at__isnull=False))
        .select_related("author")
        .prefetch_related("addenda__author")
        .order_by("signed_at", "id")
    )


# ---------------------------------------------------------------------------- session facts


def session_facts(session) -> list[str]:
    """Route, dose, times and safety events of a treatment session, from its record."""
    from ketaflow.treatment import selectors as tx

    tz = session.clinic.tz
    lines = [
        f"Treatment session {session.pk} on {session.opened_at.astimezone(tz):%Y-%m-%d}: "
        f"route {tx.route_label(session.route)}, state {session.get_state_display().lower()}."
    ]
    admin = tx.one(session, "administration")
    if admin is not None:
        lines.append(
            f"Dose given: {admin.recorded_mg.normalize():f} mg {admin.drug}, {admin.product} "
            f"({admin.concentration}), lot {admin.lot_number}."
        )
    else:
        lines.append("No dose recorded in the session record.")
    if session.dose_started_at:
        lines.append(f"Dose started {session.dose_started_at.astimezone(tz):%H:%M}.")
    if session.discharged_at:
        lines.append(f"Discharged {session.discharged_at.astimezone(tz):%H:%M}.")
    events = list(session.events.all())
    for e in events:
        lines.append(
            f"{e.get_kind_display()} {e.at.astimezone(tz):%H:%M}: {e.effect}, {e.severity}"
            f"{', serious' if e.serious else ''}"
            f"{'; ' + e.intervention if e.intervention else ''}"
        )
    alerts = list(session.alerts.all())
    for a in alerts:
        lines.append(f"Vital-sign alert {a.created_at.astimezone(tz):%H:%M}: {a.message}")
    if not events and not alerts:
        lines.append("No side effects, adverse events or vital-sign alerts recorded.")
    return lines


def patient_sessions(patient, plan=None):
    """The patient's treatment sessions in which dosing started (written against the
    treatment app's model: its selectors have no per-patient list)."""
    if not django_apps.is_installed("ketaflow.treatment"):
        return []
    from ketaflow.treatment.models import TreatmentSession

    qs = (
        TreatmentSession.objects.for_clinic(patient.clinic)
        .filter(patient=patient)
        .exclude(state__in=["cancelled"])
        .select_related("appointment", "administration")
        .order_by("opened_at", "id")
    )
    if plan is not None:
        qs = qs.filter(appointment__plan=plan)
    return list(qs)


def get_session_for_patient(patient, pk):
    from ketaflow.treatment.models import TreatmentSession

    try:
        return TreatmentSession.objects.for_clinic(patient.clinic).get(patient=patient, pk=int(pk))
    except (TreatmentSession.DoesNotExist, ValueError, TypeError):
        raise Http404("No such session for this patient.") from None


# ---------------------------------------------------------------------------- medications


def concurrent_medications(patient) -> list:
    """The patient's medications with the reference's interaction notes (intake owns them)."""
    if not django_apps.is_installed("ketaflow.intake"):
        return []
    from ketaflow.intake import selectors as intake

    return intake.concurrent_medications(patient)


# ---------------------------------------------------------------------------- goals, practices


def get_object(model, clinic, pk, related=("patient",)):
    try:
        return model.objects.for_clinic(clinic).select_related(*related).get(pk=int(pk))
    except (model.DoesNotExist, ValueError, TypeError):
        raise Http404("Not found in this clinic.") from None


def goals(patient):
    return list(Goal.objects.for_clinic(patient.clinic).filter(patient=patient))


def practices(patient, active_only=False):
    qs = Practice.objects.for_clinic(patient.clinic).filter(patient=patient)
    if active_only:
        qs = qs.filter(active=True)
    return list(qs)


def practice_links(patient):
    return list(
        PracticeLink.objects.for_clinic(patient.clinic)
        .filter(patient=patient)
        .select_related("created_by")[:10]
    )


@dataclass
class GoalRow:
    goal: Goal
    latest: object | None  # Administration
    met: bool | None


def goal_rows(patient, goal_list=None) -> list[GoalRow]:
    """Each goal with the latest score of its measure (2 queries)."""
    goal_list = goals(patient) if goal_list is None else goal_list
    codes = {g.instrument for g in goal_list if g.instrument}
    latest = {}
    if codes and django_apps.is_installed("ketaflow.measures"):
        from ketaflow.measures.models import Administration

        for adm in (
            Administration.objects.for_clinic(patient.clinic)
            .filter(patient=patient, instrument__in=codes)
            .order_by("taken_at", "id")
        ):
            latest[adm.instrument] = adm
    rows = []
    for g in goal_list:
        adm = latest.get(g.instrument)
        rows.append(GoalRow(g, adm, g.met_by(adm.total) if adm is not None else None))
    return rows


class Cell(NamedTuple):
    day: datetime.date
    state: str  # "done", "missed" (reported not done), "" (not reported) or "future"


@dataclass
class Week:
    start: datetime.date
    days: list[datetime.date]
    rows: list = field(default_factory=list)  # (practice, [Cell], done_count)


def practice_weeks(patient, *, weeks: int = 4, end: datetime.date | None = None) -> list[Week]:
    """A Monday-to-Sunday grid per week, newest last, of every practice (2 queries)."""
    end = end or patient.clinic.today()
    last_monday = end - datetime.timedelta(days=end.weekday())
    first = last_monday - datetime.timedelta(weeks=weeks - 1)
    plist = practices(patient)
    entries = defaultdict(dict)
    for e in PracticeEntry.objects.for_clinic(patient.clinic).filter(
        patient=patient, day__gte=first, day__lt=last_monday + datetime.timedelta(days=7)
    ):
        entries[e.practice_id][e.day] = e
    out = []
    for w in range(weeks):
        start = first + datetime.timedelta(weeks=w)
        days = [start + datetime.timedelta(days=i) for i in range(7)]
        week = Week(start, days)
        for p in plist:
            cells = []
            for d in days:
                e = entries[p.pk].get(d)
                state = (
                    "future" if d > end else ("done" if e and e.done else ("missed" if e else ""))
                )
                cells.append(Cell(d, state))
            if p.active or any(c.state in ("done", "missed") for c in cells):
                week.rows.append((p, cells, sum(1 for c in cells if c.state == "done")))
        out.append(week)
    return out


def outside_clinicians(patient, active_only=False):
    qs = OutsideClinician.objects.for_clinic(patient.clinic).filter(patient=patient)
    if active_only:
        qs = qs.filter(active=True)
    return list(qs.select_related("consent_recorded_by"))


def letters(patient):
    return list(
        ProgressLetter.objects.for_clinic(patient.clinic)
        .filter(patient=patient)
        .select_related("recipient", "author")
        .defer("pdf")
    )


def get_letter(clinic, pk) -> ProgressLetter:
    try:
        return (
            ProgressLetter.objects.for_clinic(clinic)
            .select_related("patient", "recipient", "author", "plan__current")
            .get(pk=int(pk))
        )
    except (ProgressLetter.DoesNotExist, ValueError, TypeError):
        raise Http404("No such letter in this clinic.") from None


def kap_plans(patient):
    """The patient's treatment plans (courses) with their current version."""
    from ketaflow.plans.models import TreatmentPlan

    return list(
        TreatmentPlan.objects.for_clinic(patient.clinic)
        .filter(patient=patient)
        .select_related("current")
        .order_by("created_at", "id")
    )
