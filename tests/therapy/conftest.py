import datetime
import importlib.util
from decimal import Decimal
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "therapy_access_matrix", Path(__file__).with_name("access_matrix.py")
)
matrix = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(matrix)

APPS = "measures,intake,plans,scheduling,treatment,therapy,education"


@pytest.fixture(autouse=True)
def consent_on_file(monkeypatch):
    """Intake's consent check is the treatment app's business; these tests assume consent."""
    from ketaflow.treatment import services

    monkeypatch.setattr(services, "consent_valid", lambda session: True)


def make_kap_plan(clinic, patient, prescriber):
    from ketaflow.clinical import protocols
    from ketaflow.plans import services as plans
    from ketaflow.plans.models import PlanVersion, TreatmentPlan

    protocol = protocols.get("kap-sublingual-series")
    calc = plans.calculate(clinic=clinic, route=protocol.route, dose_value="2.0", weight_kg="80")
    phase = protocol.phases[0].code
    plan = TreatmentPlan.objects.create(
        clinic=clinic, patient=patient, phase=phase, status="active"
    )
    version = PlanVersion.objects.create(
        clinic=clinic,
        plan=plan,
        number=1,
        protocol_code=protocol.code,
        protocol_name=protocol.name,
        protocol_source=protocol.source,
        protocol_data=protocols.to_dict(protocol),
        route=protocol.route,
        prescriber=prescriber,
        phase=phase,
        dose_value=Decimal("2.0"),
        dose_unit="mg/kg",
        dose_mg=calc.dose_mg,
        weight_kg=Decimal(80),
        weight_basis="actual",
        calculation=calc.as_dict(),
        start_date=datetime.date.today() - datetime.timedelta(days=14),
        goals="Response (synthetic)",
        signed_by=prescriber,
        signed_at=datetime.datetime.now(datetime.UTC),
    )
    plan.current = version
    plan.save()
    return plan


def make_visit(plan, staff, code, start, status="booked"):
    from ketaflow.scheduling.defaults import ensure_types
    from ketaflow.scheduling.models import Appointment

    type_ = ensure_types(plan.clinic)[code]
    location = plan.clinic.locations.get(name="North")
    return Appointment.objects.create(
        clinic=plan.clinic,
        patient=plan.patient,
        type=type_,
        location=location,
        chair=location.chairs.first(),
        start=start,
        end=start + datetime.timedelta(minutes=type_.minutes),
        plan=plan,
        status=status,
        booked_by=staff["owner"],
        staff=staff["therapist"],
    )


def ago(**kw):
    return datetime.datetime.now(datetime.UTC) - datetime.timedelta(**kw)


@pytest.fixture
def kap(clinic, staff, patient):
    """A KAP course: preparation 10 days ago, a dosing session today (signed), an integration
    visit booked for tomorrow."""
    from ketaflow.treatment import builder

    plan = make_kap_plan(clinic, patient, staff["prescriber"])
    prep = make_visit(plan, staff, "kap-preparation", ago(days=10), status="completed")
    dose_appt = make_visit(plan, staff, "kap-dosing", ago(hours=4))
    session = builder.build(
        dose_appt, to="signed", nurse=staff["nurse"], prescriber=staff["prescriber"]
    )
    integration = make_visit(plan, staff, "integration", ago(hours=-24))
    return {
        "plan": plan,
        "prep": prep,
        "dose": dose_appt,
        "session": session,
        "integration": integration,
    }


@pytest.fixture
def note_factory():
    return matrix.make_note


@pytest.fixture
def visit(staff):
    """``visit(plan, code, start, status)``: an appointment of the course."""

    def make(plan, code, start, status="booked"):
        return make_visit(plan, staff, code, start, status=status)

    return make


@pytest.fixture
def kap_plan(clinic, staff, patient):
    return make_kap_plan(clinic, patient, staff["prescriber"])
