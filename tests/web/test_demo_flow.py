"""The synthetic demo as one flow across the apps: intake approvals and consent open the plan
gate, plans in every phase, a calendar, measures with one open alert, and an intact audit trail."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from ketaflow.accounts.models import User
from ketaflow.audit.services import verify
from ketaflow.intake import selectors as intake_selectors
from ketaflow.intake import services as intake_services
from ketaflow.intake.models import ConsentSignature
from ketaflow.measures.models import SafetyAlert
from ketaflow.plans import services as plan_services
from ketaflow.plans.models import TreatmentPlan
from ketaflow.scheduling.models import Appointment
from ketaflow.tenancy.models import Clinic
from ketaflow.web import demo


@pytest.fixture
def clinic(db, tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "var_dir", lambda: tmp_path)
    demo.seed()
    return Clinic.objects.get(slug="demo")


def test_demo_carries_the_whole_flow(clinic, client_for):
    plans = TreatmentPlan.objects.for_clinic(clinic)
    active = plans.filter(status="active").select_related("patient", "current")
    assert {"induction", "maintenance", "boosters", "dosing-sessions", "course"} <= {
        p.phase for p in active
    }
    for plan in active:
        assert plan.current.route in intake_selectors.approved_routes(plan.patient)
        assert intake_selectors.signed_consent(plan.patient, plan.current.route) is not None
    today = timezone.localdate(timezone=clinic.tz)
    monday = datetime.datetime.combine(
        today - datetime.timedelta(days=today.weekday()), datetime.time(), tzinfo=clinic.tz
    )
    for week in range(2):
        window = (
            monday + datetime.timedelta(weeks=week),
            monday + datetime.timedelta(weeks=week + 1),
        )
        assert Appointment.objects.for_clinic(clinic).filter(start__range=window).count() >= 10
    assert SafetyAlert.objects.for_clinic(clinic).filter(acknowledged_at__isnull=True).count() == 1
    nurse = client_for(User.objects.get(email="nurse@demo.ketaflow.test"))
    page = nurse.get("/today/").content.decode()
    assert "Calendar" in page and "Alerts" in page and "Intake" in page
    assert verify().ok


def test_plan_gate_opens_only_with_real_consent(clinic):
    prescriber = User.objects.get(email="prescriber@demo.ketaflow.test")
    desk = User.objects.get(email="frontdesk@demo.ketaflow.test")
    withdrawn = (
        ConsentSignature.objects.for_clinic(clinic).filter(withdrawn_at__isnull=False).first()
    )
    plan = TreatmentPlan.objects.for_clinic(clinic).get(patient=withdrawn.patient)
    assert plan.status == "draft"
    with pytest.raises(ValidationError, match="No signed consent"):
        plan_services.change_status(plan=plan, actor=prescriber, status="active")
    intake_services.sign_consent(
        patient=plan.patient,
        actor=desk,
        route=withdrawn.route,
        typed_name=plan.patient.legal_name,
        agreed=True,
    )
    assert (
        plan_services.change_status(plan=plan, actor=prescriber, status="active").status == "active"
    )
