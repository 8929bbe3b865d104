import datetime

import pytest

from ketaflow.plans import gates
from ketaflow.plans.models import TreatmentPlan
from ketaflow.scheduling.models import Appointment
from ketaflow.tenancy.models import Clinic
from ketaflow.web import demo


@pytest.fixture
def gate_open(monkeypatch):
    monkeypatch.setattr(gates, "intake_installed", lambda: True)
    monkeypatch.setattr(
        gates,
        "approved_routes",
        lambda p: {
            "iv-ketamine",
            "esketamine-nasal",
            "sc-ketamine",
            "im-ketamine",
            "oral-ketamine",
        },
    )
    monkeypatch.setattr(gates, "signed_consent", lambda p, r: object())


@pytest.mark.django_db(transaction=False)
def test_demo_has_active_plans_in_every_phase_and_a_two_week_calendar(gate_open):
    demo.seed()
    clinic = Clinic.objects.get(slug="demo")
    active = TreatmentPlan.objects.for_clinic(clinic).filter(status="active")
    assert {
        "induction",
        "boosters",
        "maintenance-weeks-5-8",
        "maintenance-week-9-on",
        "maintenance",
    } <= set(active.values_list("phase", flat=True))
    appts = Appointment.objects.for_clinic(clinic)
    assert set(appts.values_list("location__name", flat=True)) == {"Downtown", "Northside"}
    tz = clinic.tz
    weeks = {a.start.astimezone(tz).isocalendar().week for a in appts}
    today = datetime.datetime.now(tz).date()
    assert {
        today.isocalendar().week,
        (today + datetime.timedelta(days=7)).isocalendar().week,
    } <= weeks
    assert appts.filter(type__code="consultation").exists()
    counts = (TreatmentPlan.objects.count(), appts.count())
    demo.seed()
    assert (TreatmentPlan.objects.count(), Appointment.objects.for_clinic(clinic).count()) == counts


@pytest.mark.django_db
def test_without_intake_demo_plans_stay_signed_drafts(monkeypatch):
    monkeypatch.setattr(gates, "intake_installed", lambda: False)
    demo.seed()
    plans = TreatmentPlan.objects.all()
    assert plans.exists() and set(plans.values_list("status", flat=True)) == {"draft"}
    assert all(p.current.signed_by_id for p in plans.select_related("current"))
