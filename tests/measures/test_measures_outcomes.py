"""Outcome selectors and the demo: badges from the package's rules, clinic report, seed."""

import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ketaflow.clinical.instruments import outcomes
from ketaflow.measures import selectors
from ketaflow.measures.models import (
    Administration,
    PatientLink,
    RiskFlag,
    SafetyAlert,
)

T0 = datetime.datetime(2026, 3, 1, 9, tzinfo=datetime.UTC)


def _adm(clinic, patient, at, total, plan=None, code="phq9"):
    per = [0] * 9
    for i in range(total):
        per[i % 8] += 1
    answers = {str(k + 1): v for k, v in enumerate(per)}
    return Administration(
        clinic=clinic,
        patient=patient,
        instrument=code,
        instrument_version="1",
        answers=answers,
        total=total,
        severity="",
        source="self_report",
        taken_at=at,
        plan=plan,
    )


def test_badges_and_rapid_response(clinic, patient, make_plan, dosing_visit):
    plan = make_plan(patient)
    dosing_visit(plan, T0)
    Administration.objects.bulk_create(
        [
            _adm(clinic, patient, T0 - datetime.timedelta(days=7), 22, plan),
            _adm(clinic, patient, T0 - datetime.timedelta(hours=1), 20, plan),
            _adm(clinic, patient, T0 + datetime.timedelta(hours=20), 9, plan),
            _adm(clinic, patient, T0 + datetime.timedelta(days=14), 4, plan),
        ]
    )
    (block,) = selectors.course_measures(patient)
    assert block.plan == plan and block.treatments == [T0]
    (history,) = block.histories
    badges = {b.label: b for b in history.badges}
    assert badges["Baseline 20"].state == "yes"
    assert badges["Response"].state == "yes" and badges["Remission"].state == "yes"
    assert badges["Rapid response (24 h)"].state == "yes"
    assert "20 h after the first treatment" in badges["Rapid response (24 h)"].rule
    assert badges["Relapse after response"].state == "no"
    assert "Change -16 (-80%)" in badges


def test_no_treatment_means_no_baseline(clinic, patient, make_plan, dosing_visit):
    plan = make_plan(patient)
    # Booked, cancelled and non-dosing visits are not treatments given.
    dosing_visit(plan, T0 - datetime.timedelta(days=2), status="booked")
    dosing_visit(plan, T0 - datetime.timedelta(days=3), status="cancelled")
    dosing_visit(plan, T0 - datetime.timedelta(days=4), type_code="consultation")
    Administration.objects.bulk_create([_adm(clinic, patient, T0, 12, plan)])
    (block,) = selectors.course_measures(patient)
    assert block.treatments == []
    (history,) = block.histories
    assert [b.state for b in history.badges] == ["na"]
    assert "no treatment of this course is recorded yet" in history.badges[0].rule


def test_outcomes_per_course_with_its_own_baseline(
    clinic, patient, make_plan, dosing_visit, make_patient
):
    """Two courses: each baseline is the last score of that course before its own first
    treatment; scores without a course show no outcomes; another patient's visits and the
    other course's visits are not markers here."""
    first, second = make_plan(patient), make_plan(patient, code="esketamine-trd")
    t2 = T0 + datetime.timedelta(days=60)
    dosing_visit(first, T0)
    dosing_visit(first, T0 + datetime.timedelta(days=3))
    dosing_visit(second, t2)
    other = make_patient(clinic)
    dosing_visit(make_plan(other), T0 - datetime.timedelta(days=30))
    Administration.objects.bulk_create(
        [
            _adm(clinic, patient, T0 - datetime.timedelta(hours=2), 20, first),
            _adm(clinic, patient, T0 + datetime.timedelta(days=7), 8, first),
            _adm(clinic, patient, t2 - datetime.timedelta(hours=2), 16, second),
            _adm(clinic, patient, t2 + datetime.timedelta(days=7), 12, second),
            _adm(clinic, patient, T0 + datetime.timedelta(days=1), 25),  # no course
        ]
    )
    blocks = selectors.course_measures(patient)
    assert [b.plan for b in blocks] == [first, second, None]
    assert blocks[0].treatments == [T0, T0 + datetime.timedelta(days=3)]
    assert blocks[1].treatments == [t2]
    labels = [{b.label: b.state for b in blk.histories[0].badges} for blk in blocks]
    assert labels[0]["Baseline 20"] == "yes" and labels[0]["Response"] == "yes"
    assert labels[1]["Baseline 16"] == "yes" and labels[1]["Response"] == "no"
    assert labels[1]["Partial response"] == "yes"
    assert labels[2] == {"Baseline": "na"}
    assert "not linked to a treatment course" in blocks[2].histories[0].badges[0].rule
    # The clinic report gives the same numbers per patient and course.
    report = {(r.patient_id, r.plan_id): r for r in selectors.clinic_outcomes(clinic, "phq9")}
    assert (report[(patient.pk, first.pk)].baseline, report[(patient.pk, first.pk)].response) == (
        20,
        True,
    )
    assert report[(patient.pk, second.pk)].response is False
    assert report[(patient.pk, None)].baseline is None


def test_registered_treatment_source_adds_sessions(clinic, patient, make_plan, dosing_visit):
    """The treatment app can contribute sessions; the same time from two sources counts once."""
    plan = make_plan(patient)
    dosing_visit(plan, T0)

    def sessions(clinic_, *, patient=None, plan=None):
        return [
            selectors.TreatmentTime(patient.pk, plan_.pk, at, "Session")
            for plan_, at in ((first_plan, T0), (first_plan, T0 + datetime.timedelta(days=2)))
        ]

    first_plan = plan
    selectors.treatment_time_source(sessions)
    try:
        assert selectors.treatment_times(patient, plan) == [T0, T0 + datetime.timedelta(days=2)]
    finally:
        selectors.treatment_time_sources.remove(sessions)
    assert selectors.treatment_times(patient, plan) == [T0]


def test_clinic_settings_change_madrs_remission_and_pcl5_reliable_change(
    clinic, patient, make_plan, dosing_visit
):
    from ketaflow.measures.models import MeasuresSettings

    plan = make_plan(patient)
    dosing_visit(plan, T0)

    def madrs(total):
        return {str(i): (6 if i <= total // 6 else 0) for i in range(1, 11)} | (
            {str(total // 6 + 1): total % 6} if total % 6 else {}
        )

    from ketaflow.clinical import instruments

    rows = []
    for at, total in (
        (T0 - datetime.timedelta(hours=1), 30),
        (T0 + datetime.timedelta(days=7), 12),
    ):
        result = instruments.score("madrs", madrs(total))
        assert result.total == total
        rows.append(
            Administration(
                clinic=clinic,
                patient=patient,
                plan=plan,
                instrument="madrs",
                instrument_version="1",
                answers=result.items,
                total=total,
                source="clinician_rated",
                taken_at=at,
            )
        )
    for at, total in (
        (T0 - datetime.timedelta(hours=1), 50),
        (T0 + datetime.timedelta(days=7), 43),
    ):
        rows.append(
            Administration(
                clinic=clinic,
                patient=patient,
                plan=plan,
                instrument="pcl5",
                instrument_version="1",
                answers={},
                total=total,
                source="self_report",
                taken_at=at,
            )
        )
    Administration.objects.bulk_create(rows)

    def badges():
        (block,) = selectors.course_measures(patient)
        return {h.code: {b.label: b for b in h.badges} for h in block.histories}

    default = badges()
    assert default["madrs"]["Remission"].state == "no"  # 12 > default cut-off 10
    assert "10" in default["madrs"]["Remission"].rule
    assert default["pcl5"]["Reliable improvement"].state == "na"
    assert "not assessed" in default["pcl5"]["Reliable improvement"].rule
    MeasuresSettings.objects.create(
        clinic=clinic, madrs_remission_cutoff=12, pcl5_reliable_change=6
    )
    changed = badges()
    assert changed["madrs"]["Remission"].state == "yes"
    assert "total 12 or less" in changed["madrs"]["Remission"].rule
    assert changed["pcl5"]["Reliable improvement"].state == "yes"
    assert "threshold 6 points" in changed["pcl5"]["Reliable improvement"].rule


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.integers(-30, 60), st.integers(0, 27)), min_size=1, max_size=12))
def test_clinic_report_agrees_with_the_outcome_rules(clinic, patient, data):
    Administration.objects.filter(patient=patient).delete()
    rows = [_adm(clinic, patient, T0 + datetime.timedelta(days=d), t) for d, t in data]
    Administration.objects.bulk_create(rows)
    (row,) = selectors.clinic_outcomes(clinic, "phq9", {(patient.pk, None): T0})
    scores = sorted(((T0 + datetime.timedelta(days=d), t) for d, t in data), key=lambda s: s[0])
    base = outcomes.baseline_of([(r.taken_at, r.total) for r in rows], T0)
    after = [s for s in scores if s[0] > T0]
    assert row.baseline == (base[1] if base else None)
    if base and after:
        expected = outcomes.compare("phq9", base[1], after[-1][1])
        assert (row.response, row.remission) == (expected.response, expected.remission)
    else:
        assert row.response is None


def test_demo_seed_is_idempotent_and_lines_up_with_plans_and_visits(
    db, tmp_path, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setenv("KETAFLOW_VAR_DIR", str(tmp_path))
    from ketaflow.plans.models import TreatmentPlan
    from ketaflow.web import demo

    monkeypatch.setattr(demo, "credentials_path", lambda: tmp_path / "creds.json")
    with django_capture_on_commit_callbacks(execute=True):
        demo.seed()

    def counts():
        return (
            Administration.objects.count(),
            SafetyAlert.objects.count(),
            RiskFlag.objects.count(),
            PatientLink.objects.count(),
        )

    before = counts()
    with django_capture_on_commit_callbacks(execute=True):
        demo.seed()
    assert counts() == before
    from ketaflow.tenancy.models import Clinic

    main = Clinic.objects.get(slug="demo")
    assert SafetyAlert.objects.filter(clinic=main, acknowledged_at__isnull=True).count() == 1
    assert RiskFlag.objects.filter(clinic=main, cleared_at__isnull=True).count() == 1
    assert PatientLink.objects.filter(clinic=main, submitted_at__isnull=True).count() == 1
    # Histories belong to the demo's active plans, and every baseline precedes the first
    # completed dosing visit of its course.
    active = set(
        TreatmentPlan.objects.for_clinic(main).filter(status="active").values_list("pk", flat=True)
    )
    linked = set(
        Administration.objects.for_clinic(main)
        .filter(plan__isnull=False, instrument="phq9")
        .values_list("plan_id", flat=True)
    )
    assert linked and linked <= active
    first = {}
    for t in selectors.treatment_sessions(main):
        first.setdefault(t.plan_id, t.at)
    rows = [r for r in selectors.clinic_outcomes(main, "phq9") if r.plan_id is not None]
    assert len(rows) >= 10
    for plan_id in linked:
        scores = Administration.objects.filter(plan_id=plan_id, instrument="phq9")
        if plan_id in first:
            assert scores.filter(taken_at__lte=first[plan_id]).exists(), plan_id
    responders = sum(1 for r in rows if r.response)
    remitters = sum(1 for r in rows if r.remission)
    non = sum(1 for r in rows if r.response is False)
    assert responders >= 3 and remitters >= 1 and non >= 3
