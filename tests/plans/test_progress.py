"""Completed dosing visits advance the plan's step and the next dose follows the protocol;
the plan page shows completed versus planned visits; emergency access on plan pages."""

import datetime
from decimal import Decimal

import pytest

from ketaflow.audit.models import AuditEvent
from ketaflow.plans import selectors, services
from ketaflow.plans.models import PlanEvent
from ketaflow.scheduling import services as scheduling
from ketaflow.scheduling.defaults import ensure_types

CUSIN = "iv-ketamine-cusin-2017-step-up"


def at(clinic, day, hour):
    return datetime.datetime(2030, 1, day, hour, tzinfo=clinic.tz)


@pytest.fixture
def cusin(patient, staff, plan_data, gate_open):
    def make(step="3", **extra):
        plan = services.create_plan(
            patient=patient,
            actor=staff["prescriber"],
            data=plan_data(protocol=CUSIN, phase="induction", step=step, **extra),
        )
        services.change_status(plan=plan, actor=staff["prescriber"], status="active")
        plan.refresh_from_db()
        return plan

    return make


def dose_visit(clinic, plan, staff, day=7, type="iv-infusion"):
    from ketaflow.tenancy.models import Chair

    north = clinic.locations.get(name="North")
    types = ensure_types(clinic)
    if types[type].resource == "room":
        chair, _ = Chair.objects.get_or_create(
            clinic=clinic, location=north, name="Room 1", defaults={"kind": "room"}
        )
    else:
        chair = north.chairs.get(name="Chair 1")
    return scheduling.book(
        clinic=clinic,
        actor=staff["front_desk"],
        patient=plan.patient,
        type=types[type],
        location=north,
        start=at(clinic, day, 9),
        chair=chair,
        plan=plan,
    )


def test_completing_a_dosing_visit_advances_the_step_and_the_cusin_dose_steps_up(
    clinic, staff, cusin
):
    plan = cusin(step="3")
    assert plan.step == 3 and plan.current.dose_value == Decimal("0.5")
    first = selectors.next_dose(plan)
    assert first.step == 3 and first.dose_value == Decimal("0.5") and not first.changed
    visit = dose_visit(clinic, plan, staff)
    before = AuditEvent.objects.count()
    scheduling.complete(appointment=visit, actor=staff["nurse"])
    plan.refresh_from_db()
    assert plan.step == 4
    assert AuditEvent.objects.count() == before + 1  # one event for the whole write
    event = AuditEvent.objects.latest("id")
    assert event.object_id == str(visit.pk)
    assert event.detail["plan_step"] == {"plan": plan.pk, "from": 3, "to": 4}
    step_event = PlanEvent.objects.get(plan=plan, kind="step")
    assert (step_event.from_value, step_event.to_value) == ("3", "4")
    assert step_event.actor == staff["nurse"]
    nxt = selectors.next_dose(plan)
    assert nxt.step == 4 and nxt.dose_value == Decimal("0.75") and nxt.changed
    assert nxt.dose_mg == Decimal("60")  # 80 kg x 0.75 mg/kg
    assert "80 kg" in nxt.arithmetic[0] and "Cusin" in nxt.basis
    assert plan.current.number == 1  # the signed version is untouched


def test_a_prescribers_own_dose_is_kept(clinic, staff, cusin):
    plan = cusin(step="3", dose_value="0.6")
    scheduling.complete(appointment=dose_visit(clinic, plan, staff), actor=staff["nurse"])
    plan.refresh_from_db()
    nxt = selectors.next_dose(plan)
    assert plan.step == 4 and nxt.dose_value == Decimal("0.6") and not nxt.changed
    assert "prescriber's own dose" in nxt.basis


def test_non_dosing_and_inactive_plan_visits_do_not_advance(clinic, staff, cusin):
    plan = cusin(step="1")
    follow_up = dose_visit(clinic, plan, staff, type="follow-up")
    scheduling.complete(appointment=follow_up, actor=staff["nurse"])
    plan.refresh_from_db()
    assert plan.step == 1
    visit = dose_visit(clinic, plan, staff, day=8)
    services.change_status(
        plan=plan, actor=staff["prescriber"], status="discontinued", reason="Synthetic"
    )
    scheduling.complete(appointment=visit, actor=staff["nurse"])
    plan.refresh_from_db()
    assert plan.step == 1 and not PlanEvent.objects.filter(kind="step").exists()


def test_revision_and_transition_set_the_step(clinic, staff, cusin, plan_data):
    plan = cusin(step="2")
    scheduling.complete(appointment=dose_visit(clinic, plan, staff), actor=staff["nurse"])
    plan.refresh_from_db()
    assert plan.step == 3
    services.revise_plan(
        plan=plan,
        actor=staff["prescriber"],
        data=plan_data(protocol=CUSIN, phase="induction", step="5", change_reason="Synthetic"),
    )
    plan.refresh_from_db()
    assert plan.step == 5


def test_plan_page_shows_completed_versus_planned_and_next_dose(clinic, staff, cusin, client_for):
    plan = cusin(step="3")
    done = dose_visit(clinic, plan, staff, day=7)
    dose_visit(clinic, plan, staff, day=9)
    scheduling.complete(appointment=done, actor=staff["nurse"])
    client = client_for(staff["prescriber"])
    before = AuditEvent.objects.filter(action="read").count()
    page = client.get(f"/plans/{plan.pk}/").content.decode()
    assert "Dosing visits: <strong>1</strong> completed of <strong>2</strong> planned" in page
    assert "Next visit: visit 4 of the induction phase" in page
    assert "0.75 mg/kg = 60 mg" in page
    assert AuditEvent.objects.filter(action="read").count() == before + 1


def test_api_plan_has_the_step(clinic, staff, cusin, client_for):
    plan = cusin(step="2")
    body = client_for(staff["prescriber"]).get(f"/api/v1/plans/plans/{plan.pk}").json()
    assert body["step"] == 2


def test_plan_pages_outside_scope_offer_emergency_access(
    clinic, staff, cusin, make_user, client_for, patient
):
    plan = cusin(step="1")
    patient.preferred_location = clinic.locations.get(name="South")
    patient.save()
    nurse = make_user(clinic, "nurse", locations=["North"])
    client = client_for(nurse)
    blocked = client.get(f"/plans/{plan.pk}/")
    text = blocked.content.decode()
    assert blocked.status_code == 403 and "Reason for emergency access" in text
    assert 'name="tab" value="plan"' in text
    assert not AuditEvent.objects.filter(action="read", patient=patient).exists()
    client.post(
        f"/patients/{patient.pk}/emergency-access/",
        {"reason": "Patient unwell in the waiting room", "tab": "plan"},
    )
    assert client.get(f"/plans/{plan.pk}/").status_code == 200
    assert AuditEvent.objects.filter(action="read", emergency=True, patient=patient).exists()
    # Front desk has no chart access at all: a plain 403.
    assert client_for(staff["front_desk"]).get(f"/plans/{plan.pk}/").status_code == 403
