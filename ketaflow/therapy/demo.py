"""Demo KAP patient (idempotent): a full cycle (preparation, a dosing session charted through
the treatment app, integration), notes of every type including one private psychotherapy
note, goals linked to PHQ-9 and WSAS, practices ticked through a practice link, the
patient's other clinicians with sharing consent, and a signed progress letter.

Runs in ``post_seed``, after the plans, scheduling, treatment and measures demos: the patient
is the first active KAP (sublingual ketamine) course of the clinic. A clinic without a
therapist, or whose KAP patient already has therapy notes, is left alone. All synthetic."""

import datetime

from ketaflow.accounts.roles import FRONT_DESK, NURSE, OWNER, PRESCRIBER, THERAPIST
from ketaflow.clinical import dosing
from ketaflow.therapy import note_types as nt
from ketaflow.therapy import services
from ketaflow.therapy.models import (
    Goal,
    PracticeEntry,
    PracticeLink,
    TherapyNote,
)

UTC = datetime.UTC

PREP = {
    "history": "Recurrent depression since her twenties; two adequate antidepressant trials "
    "without response; grief after a parent's death two years ago (synthetic).",
    "intentions": "To soften the self-criticism and feel close to people again (synthetic).",
    "set_setting": "Dim room, eyeshade, the clinic's instrumental playlist; partner collects "
    "her afterwards (synthetic).",
    "expectations": "Explained dissociation, time distortion and that difficult feelings can "
    "come up and pass; she expects 'nothing will happen' (synthetic).",
    "frame_consent": "Agreed: therapist stays in the room; supportive touch only a hand on the "
    "shoulder when she asks; she can stop talking at any time (synthetic).",
}
DOSING = {
    "presence": "Therapist present for the whole session, about 2.5 hours (synthetic).",
    "course": "Onset at about 10 minutes; a long quiet stretch, then tearful memories of her "
    "father, then calm and warmth towards herself (synthetic).",
    "interventions": "Grounding with breath at onset; reassurance when tearful; no directive "
    "work during the peak (synthetic).",
    "safety": "None observed by the therapist (synthetic).",
}
INTEGRATION = {
    "themes": "Grief held with kindness; the 'harsh inner coach' voice (synthetic).",
    "insights": "She can be both sad and steady; she wants to call her sister (synthetic).",
    "difficulties": "Brief low mood the evening after dosing, resolved by morning (synthetic).",
    "plan": "Daily walk and three-line journal; call her sister this week; next dosing "
    "session after the review (synthetic).",
}
PROCESS = {
    "process": "Countertransference: I felt protective when she described her father; watch "
    "for rescuing. Hypothesis: self-criticism keeps grief at a distance (synthetic)."
}
PRACTICES = [
    ("exercise", "Walk 20 minutes", "Outside if possible", 5),
    ("sleep", "Lights out by 23:00", "Phone out of the bedroom", 7),
    ("mindfulness", "10 minutes of breathing practice", "", 5),
    ("journaling", "Write three lines", "What I noticed, what I felt, one kind thing", 3),
    ("social", "Contact a friend or family member", "", 2),
]


def _local(clinic, day, hour):
    return datetime.datetime.combine(day, datetime.time(hour), tzinfo=clinic.tz).astimezone(UTC)


def _appointment(plan, code, start, status, staff_user, booker):
    from ketaflow.scheduling.defaults import ensure_types
    from ketaflow.scheduling.models import Appointment

    type_ = ensure_types(plan.clinic)[code]
    patient = plan.patient
    location = patient.preferred_location or plan.clinic.locations.order_by("name").first()
    room = location.chairs.filter(kind="room").first()
    return Appointment.objects.create(
        clinic=plan.clinic,
        patient=patient,
        type=type_,
        location=location,
        chair=room,
        staff=staff_user,
        start=start,
        end=start + datetime.timedelta(minutes=type_.minutes),
        status=status,
        plan=plan,
        booked_by=booker,
        notes="Demo KAP cycle (synthetic)",
    )


def _dosing_session(appt, nurse, prescriber):
    """The treatment app's builder, charting as of three hours after the visit started."""
    from ketaflow.treatment import builder
    from ketaflow.treatment import services as tx

    at = appt.start + datetime.timedelta(hours=3)
    with tx.charted_as_of(at):
        return builder.build(appt, to="signed", nurse=nurse, prescriber=prescriber)


def _free_day(plan, today):
    """A day 4-12 days ago with no other dosing visit of the course on it or the two days
    after (the integration session follows two days later)."""
    from ketaflow.scheduling.models import Appointment

    tz = plan.clinic.tz
    busy = {
        a.start.astimezone(tz).date()
        for a in Appointment.objects.for_clinic(plan.clinic)
        .filter(plan=plan, status__in=["booked", "completed"])
        .exclude(type__route="")
    }
    for back in range(4, 13):
        day = today - datetime.timedelta(days=back)
        if not busy & {day + datetime.timedelta(days=i) for i in range(3)}:
            return day
    return today - datetime.timedelta(days=5)


def _note(patient, author, kind, content, when, **kw):
    note = services.create_note(patient=patient, actor=author, kind=kind, content=content, **kw)
    note = services.sign_note(note=note, actor=author)
    # Dated like the visit it documents (demo only; the audit trail keeps the real times).
    TherapyNote.all_kinds.filter(pk=note.pk).update(created_at=when, signed_at=when)
    return note


def post_seed(*, clinic, staff, rng):
    from ketaflow.plans.models import TreatmentPlan

    therapist, prescriber = staff.get(THERAPIST), staff.get(PRESCRIBER)
    nurse = staff.get(NURSE)
    booker = staff.get(FRONT_DESK) or staff.get(OWNER)
    if not (therapist and prescriber and nurse and booker):
        return
    plan = (
        TreatmentPlan.objects.for_clinic(clinic)
        .filter(status="active", current__route=dosing.ORAL)
        .select_related("current", "patient")
        .order_by("patient__mrn")
        .first()
    )
    if plan is None:
        return
    patient = plan.patient
    if TherapyNote.all_kinds.for_clinic(clinic).filter(patient=patient).exists():
        return
    today = clinic.today()
    dose_day = _free_day(plan, today)
    prep_day = min(plan.current.start_date, dose_day) - datetime.timedelta(days=3)
    prep = _appointment(
        plan, "kap-preparation", _local(clinic, prep_day, 15), "completed", therapist, booker
    )
    dose_appt = _appointment(
        plan, "kap-dosing", _local(clinic, dose_day, 13), "booked", therapist, booker
    )
    session = _dosing_session(dose_appt, nurse, prescriber)
    integ_day = dose_day + datetime.timedelta(days=2)
    integ = _appointment(
        plan, "integration", _local(clinic, integ_day, 16), "completed", therapist, booker
    )
    _appointment(
        plan,
        "integration",
        _local(clinic, today + datetime.timedelta(days=4), 16),
        "booked",
        therapist,
        booker,
    )

    _note(patient, therapist, nt.PREPARATION, PREP, prep.end, plan=plan.pk, appointment=prep.pk)
    _note(patient, therapist, nt.DOSING, DOSING, dose_appt.end, session=session.pk)
    _note(patient, therapist, nt.INTEGRATION, INTEGRATION, integ.end, appointment=integ.pk)
    _note(patient, therapist, nt.PSYCHOTHERAPY, PROCESS, integ.end, appointment=integ.pk)

    _seed_goals_and_practices(clinic, patient, plan, therapist, nurse, rng, today, prep.start)
    _seed_care_team_and_letter(patient, plan, therapist, booker, today)


def _seed_goals_and_practices(clinic, patient, plan, therapist, nurse, rng, today, baseline_at):
    from ketaflow.measures import services as measures

    target = (today + datetime.timedelta(weeks=6)).isoformat()
    for title, code, comp, threshold in (
        ("Depression eases (PHQ-9 below 10)", "phq9", "lt", 10),
        ("Back to work and home life (WSAS below 10)", "wsas", "lt", 10),
        ("Call her sister every week", "", "", None),
    ):
        services.save_goal(
            patient=patient,
            actor=therapist,
            data={
                "title": title,
                "plan": plan.pk,
                "status": Goal.Status.ACTIVE,
                "target_date": target,
                "instrument": code,
                "comparator": comp,
                "threshold": "" if threshold is None else str(threshold),
            },
        )
    now = datetime.datetime.now(UTC)
    # WSAS, clinician-entered: 25 at the preparation session (before the first dose), 15 now.
    for at, each in ((baseline_at, 5), (now - datetime.timedelta(days=1), 3)):
        measures.record_administration(
            patient=patient,
            actor=nurse,
            instrument="wsas",
            answers={str(i): each for i in range(1, 6)},
            taken_at=at,
            plan=plan.pk,
        )
    practices = [
        services.save_practice(
            patient=patient,
            actor=therapist,
            data={"kind": k, "title": t, "detail": d, "days_per_week": str(n), "active": "on"},
        )
        for k, t, d, n in PRACTICES
    ]
    link, _raw = services.create_practice_link(patient=patient, actor=therapist)
    PracticeLink.objects.filter(pk=link.pk).update(last_used_at=now)
    rows = []
    for p in practices:
        rate = p.days_per_week / 7
        for back in range(1, 22):
            day = today - datetime.timedelta(days=back)
            if rng.random() < rate * (0.6 if back > 14 else 0.9):
                rows.append(
                    PracticeEntry(
                        clinic=clinic,
                        practice=p,
                        patient=patient,
                        day=day,
                        done=True,
                        source=PracticeEntry.Source.LINK,
                        link=link,
                        recorded_at=now,
                    )
                )
    PracticeEntry.objects.bulk_create(rows)


def _seed_care_team_and_letter(patient, plan, therapist, booker, today):
    given = (today - datetime.timedelta(days=30)).isoformat()
    psychiatrist = services.save_clinician(
        patient=patient,
        actor=booker,
        data={
            "role": "psychiatrist",
            "name": "Dr. Rhea Referrer-Synth",
            "organization": "Demoville Psychiatry (synthetic)",
            "email": "referrer@example.test",
            "phone": "555-0190",
            "consent_given_on": given,
            "consent_expires_on": (today + datetime.timedelta(days=335)).isoformat(),
            "consent_scope": "Treatment dates, doses, questionnaire scores, response status "
            "and plan",
            "active": "on",
        },
    )
    services.save_clinician(
        patient=patient,
        actor=booker,
        data={
            "role": "primary_care",
            "name": "Dr. Pat Primary-Synth",
            "organization": "Demoville Family Practice (synthetic)",
            "email": "primary@example.test",
            "active": "on",
        },
    )
    services.save_clinician(
        patient=patient,
        actor=booker,
        data={
            "role": "therapist",
            "name": "Casey Counsellor-Synth, LPC",
            "organization": "Outside CBT practice (synthetic)",
            "email": "cbt@example.test",
            "consent_given_on": given,
            "consent_scope": "Attendance and response status only",
            "active": "on",
        },
    )
    letter = services.create_letter(
        patient=patient, actor=therapist, recipient=psychiatrist, plan=plan.pk
    )
    services.update_letter(
        letter=letter,
        actor=therapist,
        plan_text="Continue the KAP series: one more dosing session with integration, then "
        "review with the prescriber. Please continue her current antidepressant (synthetic).",
    )
    services.sign_letter(letter=letter, actor=therapist)
