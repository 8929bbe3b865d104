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
    TreatmentEvent,
)

T0 = datetime.datetime(2026, 3, 1, 9, tzinfo=datetime.UTC)


def _adm(clinic, patient, at, total):
    per = [0] * 9
    for i in range(total):
        per[i % 8] += 1
    answers = {str(k + 1): v for k, v in enumerate(per)}
    return Administration(
        clinic=clinic,
        patient=patient,
        instrument="phq9",
        instrument_version="1",
        answers=answers,
        total=total,
        severity="",
        source="self_report",
        taken_at=at,
    )


def test_badges_and_rapid_response(clinic, patient):
    TreatmentEvent.objects.create(clinic=clinic, patient=patient, at=T0)
    Administration.objects.bulk_create(
        [
            _adm(clinic, patient, T0 - datetime.timedelta(days=7), 22),
            _adm(clinic, patient, T0 - datetime.timedelta(hours=1), 20),
            _adm(clinic, patient, T0 + datetime.timedelta(hours=20), 9),
            _adm(clinic, patient, T0 + datetime.timedelta(days=14), 4),
        ]
    )
    (history,) = selectors.patient_measures(patient)
    badges = {b.label: b for b in history.badges}
    assert badges["Baseline 20"].state == "yes"
    assert badges["Response"].state == "yes" and badges["Remission"].state == "yes"
    assert badges["Rapid response (24 h)"].state == "yes"
    assert "20 h after the first treatment" in badges["Rapid response (24 h)"].rule
    assert badges["Relapse after response"].state == "no"
    assert "Change -16 (-80%)" in badges


def test_no_treatment_means_no_baseline(clinic, patient):
    Administration.objects.bulk_create([_adm(clinic, patient, T0, 12)])
    (history,) = selectors.patient_measures(patient)
    assert [b.state for b in history.badges] == ["na"]
    assert "no treatment is recorded yet" in history.badges[0].rule


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.integers(-30, 60), st.integers(0, 27)), min_size=1, max_size=12))
def test_clinic_report_agrees_with_the_outcome_rules(clinic, patient, data):
    Administration.objects.filter(patient=patient).delete()
    rows = [_adm(clinic, patient, T0 + datetime.timedelta(days=d), t) for d, t in data]
    Administration.objects.bulk_create(rows)
    (row,) = selectors.clinic_outcomes(clinic, "phq9", {patient.pk: T0})
    scores = sorted(((T0 + datetime.timedelta(days=d), t) for d, t in data), key=lambda s: s[0])
    base = outcomes.baseline_of([(r.taken_at, r.total) for r in rows], T0)
    after = [s for s in scores if s[0] > T0]
    assert row.baseline == (base[1] if base else None)
    if base and after:
        expected = outcomes.compare("phq9", base[1], after[-1][1])
        assert (row.response, row.remission) == (expected.response, expected.remission)
    else:
        assert row.response is None


def test_demo_seed_is_idempotent_with_one_open_alert(db, tmp_path, monkeypatch):
    monkeypatch.setenv("KETAFLOW_VAR_DIR", str(tmp_path))
    from ketaflow.web import demo

    monkeypatch.setattr(demo, "credentials_path", lambda: tmp_path / "creds.json")
    demo.seed()
    counts = (
        Administration.objects.count(),
        SafetyAlert.objects.count(),
        RiskFlag.objects.count(),
        PatientLink.objects.count(),
        TreatmentEvent.objects.count(),
    )
    demo.seed()
    assert counts == (
        Administration.objects.count(),
        SafetyAlert.objects.count(),
        RiskFlag.objects.count(),
        PatientLink.objects.count(),
        TreatmentEvent.objects.count(),
    )
    from ketaflow.tenancy.models import Clinic

    main = Clinic.objects.get(slug="demo")
    assert SafetyAlert.objects.filter(clinic=main, acknowledged_at__isnull=True).count() == 1
    assert RiskFlag.objects.filter(clinic=main, cleared_at__isnull=True).count() == 1
    assert PatientLink.objects.filter(clinic=main, submitted_at__isnull=True).count() == 1
    rows = selectors.clinic_outcomes(main, "phq9")
    assert len(rows) >= 10
    responders = sum(1 for r in rows if r.response)
    remitters = sum(1 for r in rows if r.remission)
    non = sum(1 for r in rows if r.response is False)
    assert responders >= 3 and remitters >= 1 and non >= 3
