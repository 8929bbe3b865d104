"""One patient per chair at a time, under concurrency (issue 17, item 5).

Several check-ins of different patients into the same chair at the same moment: exactly one
session opens; every other gets a clear refusal naming the chair and the patient there,
never a second patient in the chair, a deadlock or a 500. Run on PostgreSQL too
(scripts/with_postgres.py), where the chair row lock does the work."""

import importlib.util
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from ketaflow.testing.concurrency import at_once, failures, head_locked_last, successes

_spec = importlib.util.spec_from_file_location(
    "banner_chair_treatment_helpers",
    Path(__file__).resolve().parents[1] / "treatment" / "access_matrix.py",
)
treatment = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(treatment)

N = 6


@pytest.fixture(autouse=True)
def consent_on_file(monkeypatch):
    from ketaflow.treatment import services

    monkeypatch.setattr(services, "consent_valid", lambda session: True)


@pytest.mark.django_db(transaction=True)
def test_simultaneous_check_ins_into_one_chair_open_exactly_one_session(
    clinic, staff, make_patient
):
    from ketaflow.treatment import services
    from ketaflow.treatment.models import TreatmentSession

    appts = [treatment.make_appointment(clinic, staff, make_patient(clinic)) for _ in range(N)]
    chair = appts[0].chair
    assert chair is not None and all(a.chair_id == chair.pk for a in appts)

    def check_in(appt):
        return lambda: services.open_session(appointment=appt, actor=staff["nurse"])

    with head_locked_last() as late:
        results = at_once(*[check_in(a) for a in appts])
    won, lost = successes(results), failures(results)
    assert len(won) == 1, results
    assert len(lost) == N - 1
    winner = won[0]
    for exc in lost:
        assert isinstance(exc, ValidationError), repr(exc)
        msg = exc.message_dict["chair"][0]
        assert f"{chair.name} is occupied" in msg and winner.patient.mrn in msg
    assert (
        TreatmentSession.objects.filter(chair=chair, state__in=TreatmentSession.ACTIVE).count() == 1
    )
    assert late == []
