"""Demo part of the measures app. Idempotent.

Histories line up with the demo's treatment plans and completed dosing visits:

- The demo seeds apps in DOMAIN_APPS order, so measures runs *before* the plans and
  scheduling demos. The questionnaire histories are therefore generated in ``post_seed``,
  which the demo calls after every app's ``seed``, when plans and appointments exist.
- For each active plan, past dosing visits (twice a week from the plan's start date up to
  the scheduling demo's two-week window) are booked and completed through
  ``ketaflow.scheduling.services`` (so the calendar rules apply). Together with the
  scheduling demo's completed visits of this week, they are the course's treatments:
  the ▲ markers and the baselines are read from them (``selectors.treatment_sessions``).
- Each course gets a screening and a pre-dose baseline before its first completed visit and
  a self-report the morning after each later visit (responders, partial responders,
  non-responders, a remitter, a relapse, rapid responders at 20 h), all linked to the plan.
- Immediately (no plans needed): exactly one open suicidality alert with its risk flag (a
  self-report not linked to a course) and one pending patient link.

Every score is produced by ``ketaflow.clinical.instruments.score``.
"""

import datetime
import logging
import random

from django.apps import apps as django_apps
from django.core.exceptions import ValidationError
from django.db import transaction

from ketaflow.accounts.roles import FRONT_DESK, NURSE, OWNER, PRESCRIBER
from ketaflow.clinical import instruments
from ketaflow.measures import selectors, services
from ketaflow.measures.models import Administration, PatientLink, SafetyAlert
from ketaflow.patients.models import Patient

log = logging.getLogger(__name__)

PROFILES = ("responder", "partial", "non_responder", "responder", "remitter", "relapse")


def _answers_for(code: str, total: int, rng: random.Random, *, item9: int = 0) -> dict:
    inst = instruments.get(code)
    keys = [it.key for it in inst.scored_items if not (code == "phq9" and it.key == "9")]
    answers = dict.fromkeys(keys, 0)
    remaining = max(0, min(total - item9, 3 * len(keys)))
    while remaining:
        key = rng.choice([k for k in keys if answers[k] < 3])
        answers[key] += 1
        remaining -= 1
    if code == "phq9":
        answers["9"] = item9
    answers["difficulty"] = min(3, total // 7)
    return answers


def _trajectory(
    profile: str, baseline: int, weeks: int, rng: random.Random, *, rapid: bool = False
) -> list[int]:
    goal = {
        "responder": 0.35,
        "remitter": 0.12,
        "partial": 0.62,
        "non_responder": 0.92,
        "relapse": 0.3,
    }[profile]
    out = []
    for w in range(1, weeks + 1):
        frac = 1 - (1 - goal) * min(1.0, (w + 2) / 4 if rapid else w / 4)
        if profile == "relapse" and w > weeks - 3:
            frac = 0.75 + 0.05 * (w - (weeks - 3))
        value = round(baseline * frac + rng.uniform(-1.5, 1.5))
        if profile == "remitter" and w >= 4:
            value = min(value, 4)
        out.append(max(0, min(27, value)))
    return out


def _add(rows, *, clinic, patient, plan, code, answers, at, source, entered_by):
    result = instruments.score(code, answers)
    inst = instruments.get(code)
    rows.append(
        Administration(
            clinic=clinic,
            patient=patient,
            instrument=code,
            instrument_version=inst.version,
            answers=dict(result.items),
            total=result.total,
            severity=result.severity or "",
            risk=result.risk or "",
            flags=list(result.flags),
            subscores=dict(result.subscores),
            source=source,
            entered_by=entered_by,
            taken_at=at,
            plan=plan,
        )
    )


def _book_past_visits(clinic, plan, actor, monday, now) -> None:
    """Completed dosing visits twice a week from the plan's start to ``monday`` (the start
    of the scheduling demo's window), booked through the scheduling services."""
    from ketaflow.scheduling import services as scheduling
    from ketaflow.scheduling.defaults import ROUTE_TYPE, ensure_types
    from ketaflow.scheduling.planner import Planner, min_interval_hours

    patient = plan.patient
    type = ensure_types(clinic)[ROUTE_TYPE[plan.current.route]]
    locations = list(clinic.locations.all())
    location = patient.preferred_location or locations[patient.pk % len(locations)]
    tz = clinic.tz
    day = plan.current.start_date
    offsets = (0, 3)
    week = 0
    while True:
        for d in offsets:
            visit = day + datetime.timedelta(days=7 * week + d)
            if visit >= monday:
                return
            day_start = datetime.datetime.combine(visit, datetime.time(0), tzinfo=tz)
            planner = Planner(
                clinic=clinic,
                location=location,
                start=day_start.astimezone(datetime.UTC),
                end=(day_start + datetime.timedelta(days=1)).astimezone(datetime.UTC),
                patient=patient,
                staff=None,
                interval_hours=min_interval_hours(clinic, plan),
            )
            slots = planner.slots_on(
                visit, type=type, patient_id=patient.pk, prefer=datetime.time(9, 0), limit=1
            )
            if not slots:
                continue
            try:
                appt = scheduling.book(
                    clinic=clinic,
                    actor=actor,
                    patient=patient,
                    type=type,
                    location=location,
                    start=slots[0].start,
                    chair=slots[0].chair,
                    plan=plan,
                )
            except (scheduling.ConflictError, ValidationError):
                log.info("demo: no past visit for plan %s on %s", plan.pk, visit)
                continue
            if appt.end < now:
                scheduling.complete(appointment=appt, actor=actor)
        week += 1


def seed_histories(clinic, staff) -> int:
    """Past dosing visits and questionnaire histories for every active plan that has none.
    Returns the number of courses filled. Idempotent."""
    if not (
        django_apps.is_installed("ketaflow.plans")
        and django_apps.is_installed("ketaflow.scheduling")
    ):
        return 0
    from ketaflow.plans.models import TreatmentPlan

    nurse = staff.get(NURSE) or staff.get(PRESCRIBER)
    booker = staff.get(FRONT_DESK) or staff.get(OWNER)
    if nurse is None or booker is None:
        return 0
    tz = clinic.tz
    now = datetime.datetime.now(datetime.UTC)
    today = now.astimezone(tz).date()
    monday = today - datetime.timedelta(days=today.weekday())
    # A course already has its history when it has a PHQ-9 (other apps' demos may link
    # in-session scales such as MOAA/S to a plan).
    done = set(
        Administration.objects.for_clinic(clinic)
        .filter(plan__isnull=False, instrument="phq9")
        .values_list("plan_id", flat=True)
    )
    plans = list(
        TreatmentPlan.objects.for_clinic(clinic)
        .filter(status=TreatmentPlan.Status.ACTIVE)
        .exclude(pk__in=done)
        .select_related("current", "patient", "patient__preferred_location")
        .order_by("patient__mrn")
    )
    filled = 0
    for index, plan in enumerate(plans):
        with transaction.atomic():
            _book_past_visits(clinic, plan, booker, monday, now)
            visits = [t.at for t in selectors.treatment_sessions(clinic, plan=plan)]
            rows = _course_history(clinic, plan, visits, nurse, index, now)
            Administration.objects.bulk_create(rows)
            filled += 1
    return filled


def _course_history(clinic, plan, visits, nurse, index, now) -> list:
    patient = plan.patient
    prng = random.Random(f"measures:{patient.mrn}:{plan.pk}")
    profile = PROFILES[index % len(PROFILES)]
    rows = []
    first = (
        visits[0]
        if visits
        else datetime.datetime.combine(
            plan.current.start_date, datetime.time(9), tzinfo=clinic.tz
        ).astimezone(datetime.UTC)
    )
    phq_base = prng.randint(16, 24)
    gad_base = prng.randint(10, 18)
    for at, total_p in (
        (first - datetime.timedelta(days=14), min(27, phq_base + prng.randint(-1, 2))),
        (first - datetime.timedelta(hours=2), phq_base),
    ):
        if at > now:
            continue
        for code, total in (("phq9", total_p), ("gad7", gad_base)):
            _add(
                rows,
                clinic=clinic,
                patient=patient,
                plan=plan,
                code=code,
                answers=_answers_for(code, total, prng),
                at=at,
                source=Administration.Source.CLINICIAN,
                entered_by=nurse,
            )
    if not visits:
        return rows
    rapid = profile in ("responder", "remitter") and index % 4 == 0
    # A self-report the morning after each treatment (20 h later), when that time has passed.
    after = [v + datetime.timedelta(hours=20) for v in visits]
    after = [t for t in after if t < now]
    phq = _trajectory(profile, phq_base, len(after), prng, rapid=rapid)
    gad = _trajectory(profile, gad_base, len(after), prng, rapid=rapid)
    for at, p, g in zip(after, phq, gad, strict=True):
        for code, total in (("phq9", p), ("gad7", min(21, g))):
            _add(
                rows,
                clinic=clinic,
                patient=patient,
                plan=plan,
                code=code,
                answers=_answers_for(code, total, prng),
                at=at,
                source=Administration.Source.SELF_REPORT,
                entered_by=None,
            )
    return rows


@transaction.atomic
def seed(*, clinic, staff, rng: random.Random) -> None:
    nurse = staff.get(NURSE) or staff.get(PRESCRIBER)
    prescriber = staff.get(PRESCRIBER) or nurse
    active = list(
        Patient.objects.for_clinic(clinic).filter(status=Patient.Status.ACTIVE).order_by("mrn")
    )
    if not active or nurse is None:
        return
    base_seed = rng.randrange(1 << 30)

    # Exactly one open suicidality alert: a patient's self-report, item 9 = 1.
    if not SafetyAlert.objects.for_clinic(clinic).exists():
        patient = active[min(2, len(active) - 1)]
        prng = random.Random(f"{base_seed}:alert")
        link, _raw = services._new_link(patient=patient, codes=["phq9"], created_by=prescriber)
        link.partial = {"phq9": _answers_for("phq9", 19, prng, item9=1)}
        link.save(update_fields=["partial"])
        services.submit_link(link=link)

    # One pending link (its token was shown once, at creation; clinicians can make a new one).
    if not PatientLink.objects.for_clinic(clinic).filter(submitted_at__isnull=True).exists():
        patient = active[min(1, len(active) - 1)]
        services.create_link(patient=patient, actor=nurse, instruments=["phq9", "gad7"])


def post_seed(*, clinic, staff, rng: random.Random) -> None:
    """Questionnaire histories, once the plans and appointments of the demo exist."""
    seed_histories(clinic, staff)
