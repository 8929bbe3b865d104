"""Routes of the treatment app for tests/security/test_access_matrix.py, and the helpers
that build appointments and sessions for the treatment tests."""

import datetime
from decimal import Decimal
from unittest import mock


def make_plan(clinic, patient, prescriber, route="iv"):
    from ketaflow.clinical import protocols
    from ketaflow.plans import services as plans
    from ketaflow.plans.models import PlanVersion, TreatmentPlan

    code = "iv-ketamine-clinic-6" if route == "iv" else "esketamine-trd"
    protocol = protocols.get(code)
    if route == "iv":
        calc = plans.calculate(
            clinic=clinic, route=protocol.route, dose_value="0.5", weight_kg="80", minutes=40
        )
        value, unit = Decimal("0.5"), "mg/kg"
    else:
        calc = plans.calculate(clinic=clinic, route=protocol.route, dose_value="56")
        value, unit = Decimal(56), "mg"
    phase = protocol.phases[0].code
    plan = TreatmentPlan.objects.create(
        clinic=clinic, patient=patient, phase=phase, status="active"
    )
    version = PlanVersion.objects.create(
        clinic=clinic,
        plan=plan,
        number=1,
        protocol_code=code,
        protocol_name=protocol.name,
        protocol_source=protocol.source,
        protocol_data=protocols.to_dict(protocol),
        route=protocol.route,
        prescriber=prescriber,
        phase=phase,
        dose_value=value,
        dose_unit=unit,
        dose_mg=calc.dose_mg,
        weight_kg=Decimal(80) if route == "iv" else None,
        weight_basis="actual",
        calculation=calc.as_dict(),
        start_date=datetime.date.today(),
        goals="Response (synthetic)",
        signed_by=prescriber,
        signed_at=datetime.datetime.now(datetime.UTC),
    )
    plan.current = version
    plan.save()
    return plan


def make_appointment(clinic, staff, patient, route="iv", minutes_ago=0):
    from ketaflow.scheduling.defaults import ensure_types
    from ketaflow.scheduling.models import Appointment
    from ketaflow.tenancy.models import Chair
    from ketaflow.treatment.models import TreatmentSession

    location = clinic.locations.get(name="North")
    # One patient per chair at a time: a free chair, a new one when all are held.
    held = TreatmentSession.objects.filter(state__in=TreatmentSession.ACTIVE).values("chair_id")
    chair = location.chairs.exclude(pk__in=held).order_by("pk").first() or Chair.objects.create(
        clinic=clinic, location=location, name=f"Extra chair {location.chairs.count() + 1}"
    )
    type_ = ensure_types(clinic)["iv-infusion" if route == "iv" else "esketamine-session"]
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=minutes_ago)
    return Appointment.objects.create(
        clinic=clinic,
        patient=patient,
        type=type_,
        location=location,
        chair=chair,
        start=start,
        end=start + datetime.timedelta(minutes=type_.minutes),
        plan=make_plan(clinic, patient, staff["prescriber"], route),
        booked_by=staff["owner"],
    )


def _session(world, to="checked_in", route="iv", **kw):
    from ketaflow.treatment import builder, services

    patient = world["make_patient"](world["clinic"])
    appt = make_appointment(world["clinic"], world["staff"], patient, route=route)
    with mock.patch.object(services, "consent_valid", lambda s: True):
        return builder.build(
            appt,
            to=to,
            nurse=world["staff"]["nurse"],
            prescriber=world["staff"]["prescriber"],
            **kw,
        )


def _appointment(world):
    patient = world["make_patient"](world["clinic"])
    return make_appointment(world["clinic"], world["staff"], patient).pk


def _checked_in(world):
    return _session(world).pk


def _monitoring_session(world):
    if "_tx_monitoring" not in world:
        world["_tx_monitoring"] = _session(world, "monitoring")
    return world["_tx_monitoring"]


def _monitoring(world):
    return _monitoring_session(world).pk


def _alert(world):
    from ketaflow.treatment import services

    s = _monitoring_session(world)
    entry = services.record_vitals(
        session=s,
        actor=world["staff"]["nurse"],
        values={"systolic": 150, "diastolic": 80, "spo2": 88},
    )
    return entry.raised[0].pk


def _signed(world):
    return _session(world, "signed").pk


def _esk_discharged(world):
    return _session(world, "discharged", route="esk").pk


S, M, A, G, E = "tx_session", "tx_monitoring", "tx_alert", "tx_signed", "tx_esk"
WEB = {
    "treatment:day": ("get", "chart.view", {}),
    "treatment:board": ("get", "chart.view", {}),
    "treatment:board_partial": ("get", "chart.view", {}),
    "treatment:open": ("post", "vitals.chart", {"pk": "tx_appointment"}),
    "treatment:session": ("get", "chart.view", {"pk": S}),
    "treatment:session_live": ("get", "chart.view", {"pk": S}),
    "treatment:pre_assessment": ("post", "vitals.chart", {"pk": S}),
    "treatment:vitals": ("post", "vitals.chart", {"pk": S}),
    "treatment:measure": ("get", "vitals.chart", {"pk": S}),
    "treatment:proceed": ("post", "treatment.prescriber_decision", {"pk": S}),
    "treatment:start_dosing": ("post", "vitals.chart", {"pk": S}),
    "treatment:dose_event": ("post", "vitals.chart", {"pk": S}),
    "treatment:waste": ("post", "vitals.chart", {"pk": S}),
    "treatment:event": ("post", "vitals.chart", {"pk": S}),
    "treatment:recovery": ("post", "vitals.chart", {"pk": M}),
    "treatment:override": ("post", "treatment.prescriber_decision", {"pk": M}),
    "treatment:discharge": ("post", "vitals.chart", {"pk": M}),
    "treatment:cancel": ("post", "vitals.chart", {"pk": S}),
    "treatment:stop": ("post", "vitals.chart", {"pk": M}),
    "treatment:instructions": ("get", "chart.view", {"pk": S}),
    "treatment:note": ("post", "notes.sign", {"pk": G}),
    "treatment:cosign": ("post", "notes.cosign", {"pk": G}),
    "treatment:addendum": ("post", "notes.sign", {"pk": G}),
    "treatment:note_pdf": ("get", "chart.view", {"pk": G}),
    "treatment:rems": ("get", "rems.sign", {"pk": E}),
    "treatment:rems_pdf": ("get", "rems.sign", {"pk": E}),
    "treatment:rems_csv": ("get", "rems.sign", {"pk": E}),
    "treatment:acknowledge": ("post", "alerts.respond", {"pk": A}),
    "treatment:rems_list": ("get", "rems.sign", {}),
    "treatment:settings": ("get", "clinic.settings", {}),
}
P = "ketaflow_treatment_api_"
API = {
    P + "list_sessions": ("chart.view", {}),
    P + "open_session": ("vitals.chart", {}),
    P + "get_session": ("chart.view", {"session_id": S}),
    P + "session_prediction": ("chart.view", {"session_id": M}),
    P + "pre_assessment": ("vitals.chart", {"session_id": S}),
    P + "proceed": ("treatment.prescriber_decision", {"session_id": S}),
    P + "cancel": ("vitals.chart", {"session_id": S}),
    P + "stop": ("vitals.chart", {"session_id": M}),
    P + "start_dosing": ("vitals.chart", {"session_id": S}),
    P + "dose_event": ("vitals.chart", {"session_id": S}),
    P + "record_vitals": ("vitals.chart", {"session_id": S}),
    P + "record_vitals_batch": ("vitals.chart", {"session_id": S}),
    P + "list_vitals": ("chart.view", {"session_id": S}),
    P + "record_event": ("vitals.chart", {"session_id": S}),
    P + "list_alerts": ("chart.view", {}),
    P + "acknowledge_alert": ("alerts.respond", {"alert_id": A}),
    P + "recovery": ("vitals.chart", {"session_id": M}),
    P + "override": ("treatment.prescriber_decision", {"session_id": M}),
    P + "discharge": ("vitals.chart", {"session_id": M}),
    P + "get_note": ("chart.view", {"session_id": G}),
    P + "save_note": ("notes.sign", {"session_id": G}),
    P + "sign_note": ("notes.sign", {"session_id": G}),
    P + "cosign_note": ("notes.cosign", {"session_id": G}),
    P + "add_addendum": ("notes.sign", {"session_id": G}),
    P + "list_rems": ("rems.sign", {}),
    P + "save_rems": ("rems.sign", {"session_id": E}),
    P + "sign_rems": ("rems.sign", {"session_id": E}),
}
OBJECTS = {
    "tx_appointment": _appointment,
    S: _checked_in,
    M: _monitoring,
    A: _alert,
    G: _signed,
    E: _esk_discharged,
}
BODIES = {
    P + "open_session": {"appointment_id": 0},
    P + "pre_assessment": {
        "food_hours": 3,
        "liquid_minutes": 40,
        "ride_home": True,
        "pregnancy": "nope",
    },
    P + "proceed": {"reason": "x"},
    P + "cancel": {"reason": "x"},
    P + "stop": {"reason": "x"},
    P + "start_dosing": {
        "product": "",
        "concentration": "",
        "lot_number": "",
        "expiry": "2030-01-01",
    },
    P + "dose_event": {"kind": "rate"},
    P + "record_vitals": {"systolic": 400, "diastolic": 80},
    P + "record_vitals_batch": {"readings": [{"spo2": 10}]},
    P + "record_event": {"effect": "x", "severity": "x"},
    P + "acknowledge_alert": {"action": "nope"},
    P + "recovery": {"walks_steadily": False, "responsible_adult": False},
    P + "override": {"reason": "x"},
    P + "discharge": {},
    P + "save_note": {"free_text": "x"},
    P + "sign_note": {},
    P + "add_addendum": {"text": ""},
    P + "save_rems": {"data": {}},
}
