"""A course's baseline (issue 17, item 6): the last complete score before the first dose's
start; scores with no course taken at the assessment, before the first dose, count.

Outcome terms: baseline = last score before the first treatment of a course; response = at
least 50% fall from baseline (e.g. Spravato prescribing information; Fava et al., Mol
Psychiatry 2020)."""

import datetime

import pytest

from ketaflow.measures import selectors
from ketaflow.measures.models import Administration

T0 = datetime.datetime(2026, 3, 2, 10, tzinfo=datetime.UTC)  # the visit's booked start
H = datetime.timedelta(hours=1)
M = datetime.timedelta(minutes=1)


def _adm(clinic, patient, at, total, plan=None, code="phq9"):
    per = [0] * 9
    for i in range(total or 0):
        per[i % 8] += 1
    return Administration.objects.create(
        clinic=clinic,
        patient=patient,
        instrument=code,
        instrument_version="1",
        answers={str(k + 1): v for k, v in enumerate(per)},
        total=total,
        severity="",
        source="self_report",
        taken_at=at,
        plan=plan,
    )


@pytest.fixture
def dosed(staff):
    """A completed dosing visit booked at ``start`` whose recorded dose began at ``dose``."""
    from ketaflow.treatment.models import TreatmentSession

    def make(visit, dose):
        appt = visit
        return TreatmentSession.objects.create(
            clinic=appt.clinic,
            appointment=appt,
            patient=appt.patient,
            route="iv-ketamine",
            location=appt.location,
            state="signed",
            opened_by=staff["nurse"],
            opened_at=dose - 30 * M,
            state_changed_at=dose + 3 * H,
            dose_started_at=dose,
            dose_ended_at=dose + 40 * M,
        )

    return make


def _badges(block, code="phq9"):
    (history,) = [h for h in block.histories if h.code == code]
    return {b.label: b.state for b in history.badges}, history


def test_a_score_after_the_dose_is_never_the_baseline_even_before_the_booked_start(
    clinic, patient, make_plan, dosing_visit, dosed
):
    """The patient was dosed at 09:30 for a visit booked at 10:00; a PHQ-9 of 24 filled in
    at 09:50, after the dose, was taken as "baseline 24" (before the visit's start)."""
    plan = make_plan(patient)
    dosed(dosing_visit(plan, T0), dose=T0 - 30 * M)
    _adm(clinic, patient, T0 - 2 * H, 20, plan)  # before the dose
    _adm(clinic, patient, T0 - 10 * M, 24, plan)  # after the dose, before the booked start
    _adm(clinic, patient, T0 + 24 * H, 9, plan)
    (block,) = selectors.course_measures(patient)
    assert block.first_treatment_at == T0 - 30 * M
    labels, history = _badges(block)
    assert "Baseline 20" in labels and "Baseline 24" not in labels
    assert history.series.baseline == (T0 - 2 * H, 20)
    (row,) = [r for r in selectors.clinic_outcomes(clinic, "phq9") if r.plan_id == plan.pk]
    assert row.baseline == 20 and row.response is True


def test_a_score_after_check_in_but_before_the_dose_is_the_baseline(
    clinic, patient, make_plan, dosing_visit, dosed
):
    plan = make_plan(patient)
    dosed(dosing_visit(plan, T0), dose=T0 + 40 * M)
    _adm(clinic, patient, T0 - 48 * H, 14, plan)
    _adm(clinic, patient, T0 + 15 * M, 22, plan)  # at the chair, before the dose
    _adm(clinic, patient, T0 + 7 * 24 * H, 10, plan)
    (block,) = selectors.course_measures(patient)
    labels, _ = _badges(block)
    assert "Baseline 22" in labels and labels["Response"] == "yes"
    (row,) = [r for r in selectors.clinic_outcomes(clinic, "phq9") if r.plan_id == plan.pk]
    assert row.baseline == 22


def test_the_visit_counts_once_at_its_dose_start(clinic, patient, make_plan, dosing_visit, dosed):
    plan = make_plan(patient)
    dosed(dosing_visit(plan, T0), dose=T0 + 40 * M)
    dosing_visit(plan, T0 + 72 * H)  # completed, no session recorded: its booked start
    times = selectors.treatment_sessions(clinic, patient=patient)
    assert [t.at for t in times] == [T0 + 40 * M, T0 + 72 * H]


def test_scores_at_the_assessment_count_toward_the_first_course(
    clinic, patient, make_plan, dosing_visit, dosed, staff, client_for
):
    """Scores recorded at the assessment have no course; they defaulted to "No course" and
    were left out, so the course had no baseline."""
    plan = make_plan(patient)
    dosed(dosing_visit(plan, T0), dose=T0 + 30 * M)
    _adm(clinic, patient, T0 - 10 * 24 * H, 23)  # assessment, no course
    _adm(clinic, patient, T0 + 7 * 24 * H, 11, plan)
    blocks = selectors.course_measures(patient)
    assert [b.plan for b in blocks] == [plan]  # nothing left under "No course"
    labels, history = _badges(blocks[0])
    assert "Baseline 23" in labels and labels["Response"] == "yes"
    assert [a.total for a in history.rows] == [23, 11]
    (row,) = selectors.clinic_outcomes(clinic, "phq9")
    assert (row.plan_id, row.baseline, row.latest, row.response) == (plan.pk, 23, 11, True)
    page = client_for(staff["prescriber"]).get(f"/patients/{patient.pk}/measures/").content
    assert b"Baseline 23" in page


def test_a_later_linked_score_before_the_dose_wins_over_the_assessment(
    clinic, patient, make_plan, dosing_visit, dosed
):
    plan = make_plan(patient)
    dosed(dosing_visit(plan, T0), dose=T0 + 30 * M)
    _adm(clinic, patient, T0 - 10 * 24 * H, 23)
    _adm(clinic, patient, T0 + 10 * M, 19, plan)  # at the chair, before the dose
    (block,) = selectors.course_measures(patient)
    assert "Baseline 19" in _badges(block)[0]


def test_an_incomplete_score_is_never_the_baseline(clinic, patient, make_plan, dosing_visit, dosed):
    plan = make_plan(patient)
    dosed(dosing_visit(plan, T0), dose=T0 + 30 * M)
    _adm(clinic, patient, T0 - 5 * 24 * H, 21)
    _adm(clinic, patient, T0 - 1 * H, None, plan)  # not complete: no total
    (block,) = selectors.course_measures(patient)
    assert "Baseline 21" in _badges(block)[0]
    (row,) = selectors.clinic_outcomes(clinic, "phq9")
    assert row.baseline == 21


def test_an_unlinked_score_during_an_earlier_course_is_not_the_next_courses_baseline(
    clinic, patient, make_plan, dosing_visit, dosed
):
    first = make_plan(patient)
    second = make_plan(patient, code="esketamine-trd")
    dosed(dosing_visit(first, T0), dose=T0 + 30 * M)
    dosed(dosing_visit(first, T0 + 3 * 24 * H), dose=T0 + 3 * 24 * H + 30 * M)
    t2 = T0 + 60 * 24 * H
    dosed(dosing_visit(second, t2), dose=t2 + 30 * M)
    _adm(clinic, patient, T0 + 24 * H, 25)  # during the first course, no course
    _adm(clinic, patient, T0 + 30 * 24 * H, 17)  # between the courses, no course
    blocks = selectors.course_measures(patient)
    assert [b.plan for b in blocks] == [first, second, None]
    assert "Baseline 17" in _badges(blocks[1])[0]
    assert [a.total for a in blocks[2].histories[0].rows] == [25]
    report = {(r.patient_id, r.plan_id): r for r in selectors.clinic_outcomes(clinic, "phq9")}
    assert report[(patient.pk, second.pk)].baseline == 17
    assert report[(patient.pk, None)].n == 1


def test_course_of_unlinked_rule():
    d = datetime.timedelta(days=1)
    spans = [(T0, T0 + 10 * d, 1), (T0 + 60 * d, T0 + 70 * d, 2)]
    assert selectors.course_of_unlinked(T0 - d, spans) == 1
    assert selectors.course_of_unlinked(T0, spans) == 1  # at the dose's start: pre-dose
    assert selectors.course_of_unlinked(T0 + 5 * d, spans) is None
    assert selectors.course_of_unlinked(T0 + 30 * d, spans) == 2
    assert selectors.course_of_unlinked(T0 + 80 * d, spans) is None
