import random

from ketaflow.treatment import demo
from ketaflow.treatment.models import RemsForm, SessionAlert, TreatmentSession


def test_demo_treatment_day_every_state_one_alert_one_rems_idempotent(
    appt, staff, clinic, monkeypatch
):
    from ketaflow.treatment import services

    monkeypatch.setattr(services, "consent_valid_for", lambda patient, route: True)
    from ketaflow.tenancy.models import Chair

    # One patient per chair at a time: each visit in a chair of its own, as booked.
    for i, route in enumerate(["iv"] * 8 + ["esk"] * 3):
        a = appt(route)
        a.chair = Chair.objects.create(clinic=clinic, location=a.location, name=f"Demo chair {i}")
        a.save(update_fields=["chair"])
    demo.seed(clinic=clinic, staff=staff, rng=random.Random(1))
    states = set(TreatmentSession.objects.for_clinic(clinic).values_list("state", flat=True))
    assert states == {
        "checked_in",
        "pre_assessment",
        "dosing",
        "monitoring",
        "recovery",
        "ready",
        "discharged",
        "signed",
        "cancelled",
        "stopped",
    }
    assert SessionAlert.objects.for_clinic(clinic).filter(acknowledged_at__isnull=True).count() == 1
    # Due: the discharged esketamine session's form and the one stopped after a device.
    assert RemsForm.objects.for_clinic(clinic).filter(signed_at__isnull=True).count() == 2
    count = TreatmentSession.objects.count()
    demo.seed(clinic=clinic, staff=staff, rng=random.Random(1))
    assert TreatmentSession.objects.count() == count


def test_demo_opens_no_session_without_signed_consent(appt, staff, clinic):
    appt("iv")
    appt("esk")
    demo.seed(clinic=clinic, staff=staff, rng=random.Random(1))
    assert not TreatmentSession.objects.for_clinic(clinic).exists()
