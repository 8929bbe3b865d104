"""The KAP course view: preparation, each dosing session with its integration session, the
notes of each, the measures between them, and what is still to be scheduled.

A constant number of queries whatever the length of the course."""

import datetime
from dataclasses import dataclass, field

from django.apps import apps as django_apps
from django.db.models import Q

from ketaflow.therapy import note_types as nt
from ketaflow.therapy import selectors
from ketaflow.therapy.letters import IN_SESSION

DONE = ("booked", "completed")


@dataclass
class Cycle:
    number: int
    appointment: object
    session: object | None
    dosing_notes: list = field(default_factory=list)
    integration: object | None = None
    integration_notes: list = field(default_factory=list)
    measures: list = field(default_factory=list)  # taken after this dose, before the next
    facts: list = field(default_factory=list)


@dataclass
class CourseView:
    plan: object
    preparation: list  # appointments
    preparation_notes: list
    before: list  # measures before the first dosing session
    cycles: list[Cycle]
    other_notes: list
    to_schedule: list[str]
    upcoming: list
    window_days: int
    education_url: str = ""


def _appointments(patient, plan):
    from ketaflow.scheduling.models import Appointment

    return list(
        Appointment.objects.for_clinic(patient.clinic)
        .filter(patient=patient, status__in=DONE)
        .filter(
            Q(plan=plan) | Q(plan__isnull=True, type__code__in=["kap-preparation", "integration"])
        )
        .select_related("type", "staff")
        .order_by("start", "id")
    )


def _measures(patient, plan):
    if not django_apps.is_installed("ketaflow.measures"):
        return []
    from ketaflow.measures.models import Administration

    return list(
        Administration.objects.for_clinic(patient.clinic)
        .filter(patient=patient, plan=plan)
        .exclude(instrument__in=IN_SESSION)
        .order_by("taken_at", "id")
    )


def _window_days(clinic) -> int:
    from ketaflow.scheduling.models import ScheduleSettings

    row = ScheduleSettings.objects.filter(clinic=clinic).first()
    return row.companion_window_days if row else 3


def build(user, clinic, patient, plan) -> CourseView:
    appts = _appointments(patient, plan)
    sessions = {s.appointment_id: s for s in selectors.patient_sessions(patient, plan)}
    notes = [
        n
        for n in selectors.visible_notes(user, clinic, patient).select_related("author")
        if n.plan_id in (None, plan.pk)
    ]
    notes.sort(key=lambda n: (n.created_at, n.pk))
    adms = _measures(patient, plan)
    now = selectors.now()
    prep = [a for a in appts if a.type.code == "kap-preparation"]
    doses = [a for a in appts if a.type.route]
    integrations = [a for a in appts if a.type.code == "integration"]
    used_notes: set[int] = set()
    cycles = []
    for i, appt in enumerate(doses):
        nxt = doses[i + 1].start if i + 1 < len(doses) else None
        s = sessions.get(appt.pk)
        c = Cycle(i + 1, appt, s)
        c.integration = next(
            (a for a in integrations if a.start > appt.start and (nxt is None or a.start < nxt)),
            None,
        )
        for n in notes:
            if n.kind == nt.DOSING and (
                n.appointment_id == appt.pk or (s and n.session_id == s.pk)
            ):
                c.dosing_notes.append(n)
                used_notes.add(n.pk)
            elif (
                n.kind in (nt.INTEGRATION, nt.PSYCHOTHERAPY, nt.PROGRESS)
                and c.integration is not None
                and n.appointment_id == c.integration.pk
            ):
                c.integration_notes.append(n)
                used_notes.add(n.pk)
        start = s.dose_started_at if s and s.dose_started_at else appt.start
        c.measures = [a for a in adms if a.taken_at >= start and (nxt is None or a.taken_at < nxt)]
        cycles.append(c)
    first_dose = doses[0].start if doses else None
    before = [a for a in adms if first_dose is None or a.taken_at < first_dose]
    prep_ids = {a.pk for a in prep}
    prep_notes = [
        n
        for n in notes
        if n.pk not in used_notes and (n.kind == nt.PREPARATION or n.appointment_id in prep_ids)
    ]
    used_notes |= {n.pk for n in prep_notes}
    other = [n for n in notes if n.pk not in used_notes]
    window = _window_days(clinic)
    todo = []
    if not prep:
        todo.append("Preparation session: none booked (it comes before the first dosing session).")
    recent_from = now - datetime.timedelta(days=14)
    older = 0
    for c in cycles:
        given = c.session is not None and c.session.dose_started_at is not None
        if c.integration is None and (given or c.appointment.status == "completed"):
            if c.appointment.start < recent_from:
                older += 1
                continue
            todo.append(
                f"Integration session after dosing session {c.number} "
                f"({c.appointment.start.astimezone(clinic.tz):%Y-%m-%d}): none booked; the clinic "
                f"proposes one within {window} days."
            )
    if older:
        todo.append(
            f"{older} earlier dosing session{'s' if older > 1 else ''} (over 14 days ago) "
            "had no integration session."
        )
    upcoming = [a for a in appts if a.start > now and a.status == "booked"]
    if plan.status == "active" and not any(a.type.route for a in upcoming):
        todo.append(
            "Next dosing session: none booked (the protocol leaves the number to the clinic)."
        )
    education_url = ""
    if django_apps.is_installed("ketaflow.education") and plan.current is not None:
        from django.urls import NoReverseMatch, reverse

        try:
            education_url = reverse("education:topic", kwargs={"route": plan.current.route})
        except NoReverseMatch:
            education_url = ""
    for c in cycles:
        if c.session is not None:
            from ketaflow.treatment import selectors as tx

            admin = tx.one(c.session, "administration")
            c.facts = [
                f"{tx.route_label(c.session.route)}"
                + (f", {admin.recorded_mg.normalize():f} mg" if admin else ", no dose recorded")
                + f" · {c.session.get_state_display()}"
            ]
    return CourseView(
        plan=plan,
        preparation=prep,
        preparation_notes=prep_notes,
        before=before,
        cycles=cycles,
        other_notes=other,
        to_schedule=todo,
        upcoming=upcoming,
        window_days=window,
        education_url=education_url,
    )


def first_dose_date(view: CourseView) -> datetime.date | None:
    return view.cycles[0].appointment.start.date() if view.cycles else None
