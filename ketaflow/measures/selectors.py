"""Reads of the measures app, always scoped to one clinic."""

import datetime
from collections import defaultdict
from dataclasses import dataclass, field

from django.apps import apps as django_apps
from django.http import Http404

from ketaflow.clinical import instruments
from ketaflow.clinical.instruments import outcomes
from ketaflow.measures.models import (
    Administration,
    MeasureSchedule,
    OnCall,
    PatientLink,
    RiskFlag,
    SafetyAlert,
)


@dataclass(frozen=True)
class TreatmentTime:
    """One treatment given to a patient: when, for which course (plan), and what it was."""

    patient_id: int
    plan_id: int | None
    at: datetime.datetime
    label: str = "Treatment"
    # The visit it was given at (one treatment however many sources report it), and whether
    # ``at`` is the recorded start of the dose (True) or only the visit's booked start.
    appointment_id: int | None = None
    dose_start: bool = False


def completed_dosing_visits(clinic, *, patient=None, plan=None):
    """Completed dosing appointments of ``ketaflow.scheduling`` that belong to a plan.

    A dosing visit is an appointment whose type has a route (``AppointmentType.is_dose``);
    only visits marked completed count as treatments given. One query."""
    if not django_apps.is_installed("ketaflow.scheduling"):
        return []
    from ketaflow.scheduling.models import Appointment

    qs = (
        Appointment.objects.for_clinic(clinic)
        .filter(status=Appointment.Status.COMPLETED, plan__isnull=False)
        .exclude(type__route="")
    )
    if patient is not None:
        qs = qs.filter(patient=patient)
    if plan is not None:
        qs = qs.filter(plan=plan)
    return [
        TreatmentTime(pid, plan_id, at, f"{name} (completed)", appointment_id=pk)
        for pk, pid, plan_id, at, name in qs.order_by("start").values_list(
            "pk", "patient_id", "plan_id", "start", "type__name"
        )
    ]


# Where treatment times come from. Each source is ``source(clinic, *, patient=None,
# plan=None) -> iterable of TreatmentTime`` and issues a constant number of queries. The
# treatment app adds its recorded sessions with ``treatment_time_source`` (from its
# AppConfig.ready); times given by several sources for the same course count once.
treatment_time_sources: list = [completed_dosing_visits]


def treatment_time_source(fn):
    """Register a source of treatment times (usable as a decorator)."""
    if fn not in treatment_time_sources:
        treatment_time_sources.append(fn)
    return fn


def treatment_sessions(clinic, *, patient=None, plan=None) -> list[TreatmentTime]:
    """Every treatment of the clinic (or of one patient or course), oldest first.

    A visit reported by several sources (the completed appointment, its recorded session)
    counts once, at the recorded start of its dose when a source knows it: a course's
    baseline is the last score before the first *dose*, not before the booked visit (a
    questionnaire filled in after check-in but before the dose is a baseline; one filled in
    after the dose is not)."""
    found: dict = {}
    times: set = set()  # (patient, course, time) of what is kept
    for source in treatment_time_sources:
        for t in source(clinic, patient=patient, plan=plan):
            by_time = (t.patient_id, t.plan_id, t.at)
            if t.appointment_id is None:
                # a source that does not know the visit: the same time counts once
                if by_time not in times:
                    found[by_time] = t
                    times.add(by_time)
                continue
            key = ("visit", t.appointment_id)
            if key not in found or (t.dose_start and not found[key].dose_start):
                found[key] = t
                times.add(by_time)
    out = list(found.values())
    out.sort(key=lambda t: (t.at, t.plan_id or 0))
    return out


def course_spans(times) -> list[tuple]:
    """``[(first, last, plan_id)]`` of one patient's courses, by first treatment, from
    ``(plan_id, at)`` pairs."""
    spans: dict = {}
    for plan_id, at in times:
        if plan_id is None:
            continue
        first, last = spans.get(plan_id, (at, at))
        spans[plan_id] = (min(first, at), max(last, at))
    return sorted(((f, la, pid) for pid, (f, la) in spans.items()), key=lambda r: (r[0], r[2]))


def course_of_unlinked(at, spans) -> int | None:
    """The course whose baseline a score with no course counts toward: the first course
    whose first treatment is at or after it, provided no earlier course was under way
    (a score between an earlier course's first and last treatment belongs to neither).
    Scores at the assessment, before any treatment, count toward the first course."""
    previous_last = None
    for first, last, plan_id in spans:
        if at <= first:
            return plan_id if previous_last is None or at > previous_last else None
        previous_last = last if previous_last is None else max(previous_last, last)
    return None


def treatment_times(patient, plan=None) -> list[datetime.datetime]:
    """Treatment start times of the patient (of one course if ``plan`` is given), oldest
    first: completed dosing visits today, and whatever else registers a source."""
    return [t.at for t in treatment_sessions(patient.clinic, patient=patient, plan=plan)]


def upcoming_dosing_visits(patient, *, plan=None, start, end) -> list:
    """Booked (not yet completed) dosing appointments of the patient starting in
    (start, end], oldest first. Empty if the scheduling app is not installed."""
    if not django_apps.is_installed("ketaflow.scheduling"):
        return []
    from ketaflow.scheduling.models import Appointment

    qs = (
        Appointment.objects.for_clinic(patient.clinic)
        .filter(
            patient=patient,
            status=Appointment.Status.BOOKED,
            start__gt=start,
            start__lte=end,
        )
        .exclude(type__route="")
        .order_by("start")
    )
    if plan is not None:
        qs = qs.filter(plan=plan)
    return list(qs)


def patient_plans(patient) -> list:
    """The patient's treatment plans (courses), oldest first."""
    from ketaflow.plans.models import TreatmentPlan

    return list(
        TreatmentPlan.objects.for_clinic(patient.clinic)
        .filter(patient=patient)
        .select_related("current")
        .order_by("created_at", "id")
    )


def plan_label(plan) -> str:
    if plan is None:
        return "No course"
    version = plan.current
    if version is None:
        return f"Plan {plan.pk}"
    return f"Plan {plan.pk}: {version.protocol_name} (from {version.start_date:%Y-%m-%d})"


def administrations(clinic):
    return Administration.objects.for_clinic(clinic).select_related("patient", "entered_by")


def latest_scores(clinic, patient, codes=None) -> dict[str, Administration]:
    """The most recent administration of each instrument (one query per code asked)."""
    codes = codes or sorted(
        {
            a
            for a in administrations(clinic)
            .filter(patient=patient)
            .values_list("instrument", flat=True)
        }
    )
    found = {}
    for code in codes:
        latest = (
            Administration.objects.for_clinic(clinic)
            .filter(patient=patient, instrument=code)
            .order_by("-taken_at", "-id")
            .first()
        )
        if latest is not None:
            found[code] = latest
    return found


def get_administration(clinic, pk) -> Administration:
    try:
        return administrations(clinic).get(pk=int(pk))
    except (Administration.DoesNotExist, ValueError, TypeError):
        raise Http404("No such questionnaire in this clinic.") from None


def _get(model, clinic, pk, related=("patient",)):
    try:
        return model.objects.for_clinic(clinic).select_related(*related).get(pk=int(pk))
    except (model.DoesNotExist, ValueError, TypeError):
        raise Http404("Not found in this clinic.") from None


def get_alert(clinic, pk) -> SafetyAlert:
    return _get(SafetyAlert, clinic, pk, ("patient", "administration", "acknowledged_by"))


def get_flag(clinic, pk) -> RiskFlag:
    return _get(RiskFlag, clinic, pk)


def get_link(clinic, pk) -> PatientLink:
    return _get(PatientLink, clinic, pk)


def get_schedule(clinic, pk) -> MeasureSchedule:
    return _get(MeasureSchedule, clinic, pk)


def open_flag(patient) -> RiskFlag | None:
    return (
        RiskFlag.objects.for_clinic(patient.clinic)
        .filter(patient=patient, cleared_at__isnull=True)
        .select_related("raised_by_alert")
        .first()
    )


def alerts(clinic, *, scope, open_only: bool = True, limit: int = 200):
    """Safety alerts of the patients ``scope`` (a ``patients.scope.ChartScope``) sees."""
    qs = (
        SafetyAlert.objects.for_clinic(clinic)
        .select_related("patient", "acknowledged_by", "administration")
        .order_by("-created_at", "-id")
    )
    if open_only:
        qs = qs.filter(acknowledged_at__isnull=True)
    return scope.visible(qs)[:limit]


def open_flags(clinic, *, scope, limit: int = 200):
    """Uncleared risk flags of the patients ``scope`` sees."""
    qs = (
        RiskFlag.objects.for_clinic(clinic)
        .filter(cleared_at__isnull=True)
        .select_related("patient")
        .order_by("-raised_at")
    )
    return scope.visible(qs)[:limit]


def on_call_user_ids(clinic) -> set[int]:
    return set(OnCall.objects.filter(clinic=clinic).values_list("user_id", flat=True))


# ---------------------------------------------------------------------------- outcomes


@dataclass
class Badge:
    label: str
    state: str  # "yes", "no", "na"
    rule: str


@dataclass
class InstrumentHistory:
    code: str
    instrument: instruments.Instrument
    rows: list  # Administration, oldest first
    series: outcomes.SeriesOutcome | None = None
    latest: outcomes.Outcome | None = None
    badges: list[Badge] = field(default_factory=list)

    @property
    def newest(self):
        return self.rows[-1]


def _yes_no(value) -> str:
    return "na" if value is None else ("yes" if value else "no")


def badges_for(series: outcomes.SeriesOutcome | None, latest: outcomes.Outcome | None, inst):
    if series is None:
        return []
    if series.baseline is None:
        return [Badge("Baseline", "na", series.rules["baseline"])]
    out = [Badge(f"Baseline {series.baseline[1]}", "yes", series.rules["baseline"])]
    if latest is not None:
        r = latest.rules
        pct = "" if latest.percent_change is None else f" ({latest.percent_change:+.0f}%)"
        out.append(
            Badge(
                f"Change {latest.change:+d}{pct}",
                "na",
                f"Change: latest {inst.short_name} {latest.follow_up} minus baseline "
                f"{latest.baseline}" + (f" ({pct.strip(' ()')} from baseline)" if pct else ""),
            )
        )
        out.append(Badge("Response", _yes_no(latest.response), r["response"]))
        out.append(
            Badge("Partial response", _yes_no(latest.partial_response), r["partial_response"])
        )
        out.append(Badge("Remission", _yes_no(latest.remission), r["remission"]))
        if latest.reliable_deterioration:
            out.append(Badge("Reliable deterioration", "yes", r["reliable_change"]))
        else:
            out.append(
                Badge(
                    "Reliable improvement",
                    _yes_no(latest.reliable_improvement),
                    r["reliable_change"],
                )
            )
    out.append(
        Badge(
            "Rapid response (24 h)", _yes_no(series.rapid_response), series.rules["rapid_response"]
        )
    )
    out.append(Badge("Relapse after response", _yes_no(series.relapse), series.rules["relapse"]))
    return out


def evaluate(code: str, scores, first_treatment_at, conf=None):
    """Series outcome and latest outcome for one instrument (None where not applicable).

    ``conf`` is the clinic's MeasuresSettings (MADRS remission cut-off, PCL-5
    reliable-change threshold); None means ketaflow's defaults."""
    inst = instruments.get(code)
    if inst.score_range is None or first_treatment_at is None:
        return None, None
    kwargs = conf.outcome_settings(inst.code) if conf is not None else {}
    series = outcomes.evaluate_series(inst, scores, first_treatment_at, **kwargs)
    latest = series.points[-1][1] if series.points else None
    return series, latest


def _histories(rows, first_treatment_at, conf, *, course: bool) -> list[InstrumentHistory]:
    grouped: dict[str, list] = defaultdict(list)
    for adm in rows:
        grouped[adm.instrument].append(adm)
    order = {code: i for i, code in enumerate(instruments.codes())}
    out = []
    for code in sorted(grouped, key=lambda c: order.get(c, 99)):
        inst = instruments.get(code)
        items = grouped[code]
        history = InstrumentHistory(code, inst, items)
        if inst.score_range is not None:
            scores = [(a.taken_at, a.total) for a in items if a.total is not None]
            history.series, history.latest = evaluate(code, scores, first_treatment_at, conf)
            history.badges = badges_for(history.series, history.latest, inst)
            if not course:
                history.badges = [
                    Badge(
                        "Baseline",
                        "na",
                        f"No {inst.short_name} outcomes: these scores are not linked to a "
                        "treatment course (outcomes are computed per course; baseline = last "
                        "score before the first treatment of the course)",
                    )
                ]
            elif first_treatment_at is None:
                history.badges = [
                    Badge(
                        "Baseline",
                        "na",
                        f"No {inst.short_name} baseline: no treatment of this course is "
                        "recorded yet (baseline = last score before the first treatment of "
                        "the course)",
                    )
                ]
        out.append(history)
    return out


@dataclass
class CourseMeasures:
    """The questionnaires of one treatment course (plan), or of no course (plan None)."""

    plan: object | None
    label: str
    treatments: list  # datetimes of this course's treatments
    histories: list[InstrumentHistory]

    @property
    def first_treatment_at(self):
        return self.treatments[0] if self.treatments else None


def course_measures(patient, *, conf=None, sessions=None) -> list[CourseMeasures]:
    """The patient's questionnaires grouped by course, with outcomes per course.

    A course's scores are those linked to its plan plus the scores with no course taken
    before its first dose and after any earlier course's last treatment (the assessment's:
    ``course_of_unlinked``), the same rule as ``clinic_outcomes`` so the tab and the clinic
    report agree; the baseline is the last complete score at or before the first dose's
    start. Other unlinked scores are listed under "No course" without outcomes. Four queries whatever the history: plans,
    treatments (one per source), administrations, settings.
    """
    if conf is None:
        from ketaflow.measures.models import MeasuresSettings

        conf = MeasuresSettings.objects.filter(clinic=patient.clinic).first() or (
            MeasuresSettings(clinic=patient.clinic)
        )
    if sessions is None:
        sessions = treatment_sessions(patient.clinic, patient=patient)
    rows = list(
        Administration.objects.for_clinic(patient.clinic)
        .filter(patient=patient)
        .select_related("entered_by")
        .order_by("taken_at", "id")
    )
    plans = patient_plans(patient)
    by_plan: dict = defaultdict(list)
    for t in sessions:
        by_plan[t.plan_id].append(t.at)
    # Scores with no course (e.g. at the assessment) taken before a course's first dose
    # count toward its baseline and are shown with it.
    spans = course_spans((t.plan_id, t.at) for t in sessions)
    assigned = {a.pk: course_of_unlinked(a.taken_at, spans) for a in rows if a.plan_id is None}
    blocks = []
    for plan in plans:
        times = by_plan.get(plan.pk, [])
        linked = [a for a in rows if a.plan_id == plan.pk or assigned.get(a.pk) == plan.pk]
        if linked or times:
            first = times[0] if times else None
            blocks.append(
                CourseMeasures(
                    plan, plan_label(plan), times, _histories(linked, first, conf, course=True)
                )
            )
    unlinked = [a for a in rows if a.plan_id is None and assigned.get(a.pk) is None]
    if unlinked:
        blocks.append(
            CourseMeasures(None, "No course", [], _histories(unlinked, None, conf, course=False))
        )
    return blocks


def patient_measures(
    patient, *, first_treatment_at=None, treatments=None, conf=None
) -> list[InstrumentHistory]:
    """Every administration of the patient grouped by instrument with outcome badges,
    against one given first treatment (all courses together; the Measures tab uses
    ``course_measures``). ``first_treatment_at`` defaults to the patient's first
    treatment. Two queries whatever the history."""
    if treatments is None:
        treatments = treatment_times(patient)
    if first_treatment_at is None and treatments:
        first_treatment_at = treatments[0]
    rows = (
        Administration.objects.for_clinic(patient.clinic)
        .filter(patient=patient)
        .select_related("entered_by")
        .order_by("taken_at", "id")
    )
    return _histories(rows, first_treatment_at, conf, course=True)


def pending_links(patient, limit: int = 20):
    return list(
        PatientLink.objects.for_clinic(patient.clinic)
        .filter(patient=patient)
        .select_related("created_by")
        .order_by("-created_at")[:limit]
    )


def schedules(patient):
    return list(
        MeasureSchedule.objects.for_clinic(patient.clinic).filter(patient=patient, active=True)
    )


@dataclass(frozen=True)
class PatientOutcomeRow:
    patient_id: int
    plan_id: int | None
    baseline: int | None
    latest: int | None
    n: int
    response: bool | None
    remission: bool | None


def clinic_outcomes(clinic, code: str, first_treatment: dict | None = None, conf=None):
    """Per patient and course: baseline, latest score, response and remission for one
    instrument.

    Reads plain tuples (no model objects), ordered by patient, course and time, so a
    clinic report over 100,000 administrations stays fast. ``first_treatment`` maps
    ``(patient_id, plan_id)`` to the first treatment of that course; by default it comes
    from ``treatment_sessions`` (completed dosing visits). Scores not linked to a course
    (``plan_id`` None) get no baseline.
    """
    inst = instruments.get(code)
    if conf is None:
        from ketaflow.measures.models import MeasuresSettings

        conf = MeasuresSettings.objects.filter(clinic=clinic).first() or MeasuresSettings(
            clinic=clinic
        )
    kwargs = conf.outcome_settings(inst.code)
    times_by_patient: dict = defaultdict(list)
    if first_treatment is None:
        first_treatment = {}
        for t in treatment_sessions(clinic):
            first_treatment.setdefault((t.patient_id, t.plan_id), t.at)
            times_by_patient[t.patient_id].append((t.plan_id, t.at))
    else:
        for (pid, plan_id), at in first_treatment.items():
            times_by_patient[pid].append((plan_id, at))
    spans = {pid: course_spans(times) for pid, times in times_by_patient.items()}
    # Complete scores with no course that count toward a course's baseline (taken before
    # its first dose, e.g. at the assessment): one query, only those rows.
    pre_course: dict = defaultdict(list)
    unassigned: dict = defaultdict(list)
    for pid, at, total in (
        Administration.objects.for_clinic(clinic)
        .filter(instrument=inst.code, total__isnull=False, plan__isnull=True)
        .order_by("patient_id", "taken_at", "id")
        .values_list("patient_id", "taken_at", "total")
        .iterator(chunk_size=5000)
    ):
        course = course_of_unlinked(at, spans.get(pid, []))
        if course is None:
            unassigned[pid].append((at, total))
        else:
            pre_course[(pid, course)].append((at, total))
    rows = (
        Administration.objects.for_clinic(clinic)
        .filter(instrument=inst.code, total__isnull=False, plan__isnull=False)
        .order_by("patient_id", "plan_id", "taken_at", "id")
        .values_list("patient_id", "plan_id", "taken_at", "total")
        .iterator(chunk_size=5000)
    )
    result = []

    def finish(key, scores):
        pid, plan_id = key
        if plan_id is not None:
            scores = sorted(pre_course.pop(key, []) + scores, key=lambda s: s[0])
        first = first_treatment.get(key)
        base = outcomes.baseline_of(scores, first) if first is not None else None
        after = [s for s in scores if first is not None and s[0] > first]
        if base is None or not after:
            result.append(
                PatientOutcomeRow(
                    pid, plan_id, base and base[1], scores[-1][1], len(scores), None, None
                )
            )
            return
        out = outcomes.compare(inst, base[1], after[-1][1], **kwargs)
        result.append(
            PatientOutcomeRow(
                pid, plan_id, base[1], after[-1][1], len(scores), out.response, out.remission
            )
        )

    current, scores = None, []
    for pid, plan_id, at, total in rows:
        key = (pid, plan_id)
        if key != current:
            if current is not None:
                finish(current, scores)
            current, scores = key, []
        scores.append((at, total))
    if current is not None:
        finish(current, scores)
    for key in sorted(pre_course):  # courses with only pre-course scores so far
        finish(key, [])
    for pid in sorted(unassigned):
        finish((pid, None), unassigned[pid])
    result.sort(key=lambda r: (r.patient_id, r.plan_id is None, r.plan_id or 0))
    return result
