"""Fixtures for the measures tests: treatment plans (courses) and dosing appointments
(the treatments), created with the plans and scheduling models."""

import datetime
from decimal import Decimal

import pytest


@pytest.fixture
def make_plan(staff):
    from ketaflow.clinical import protocols
    from ketaflow.plans.models import PlanVersion, TreatmentPlan

    def make(patient, *, code="iv-ketamine-clinic-6", status="active", start_date=None):
        protocol = protocols.get(code)
        plan = TreatmentPlan.objects.create(
            clinic=patient.clinic, patient=patient, phase="induction", status=status
        )
        version = PlanVersion.objects.create(
            clinic=patient.clinic,
            plan=plan,
            number=1,
            protocol_code=code,
            protocol_name=protocol.name,
            protocol_source=protocol.source,
            protocol_data=protocols.to_dict(protocol),
            route=protocol.route,
            prescriber=staff["prescriber"],
            phase="induction",
            dose_value=Decimal("0.5"),
            dose_unit="mg/kg",
            dose_mg=Decimal(40),
            weight_kg=Decimal(80),
            calculation={},
            start_date=start_date or datetime.date(2026, 3, 1),
            goals="Response (synthetic)",
            signed_by=staff["prescriber"],
            signed_at=datetime.datetime(2026, 2, 27, tzinfo=datetime.UTC),
        )
        plan.current = version
        plan.save()
        return plan

    return make


@pytest.fixture
def dosing_visit(staff):
    """A dosing appointment (type with a route) of ``plan`` at ``start``."""
    from ketaflow.scheduling.defaults import ROUTE_TYPE, ensure_types
    from ketaflow.scheduling.models import Appointment

    def make(plan, start, *, status="completed", type_code=None, patient=None):
        clinic = plan.clinic
        types = ensure_types(clinic)
        appt_type = types[type_code or ROUTE_TYPE[plan.current.route]]
        return Appointment.objects.create(
            clinic=clinic,
            patient=patient or plan.patient,
            type=appt_type,
            location=clinic.locations.first(),
            start=start,
            end=start + datetime.timedelta(minutes=appt_type.minutes),
            status=status,
            plan=plan,
            booked_by=staff["front_desk"],
        )

    return make
