"""Lists and single records agree on location scope (issue 16, finding 4).

A nurse limited to the North location gets 403 on the chart, plans and sessions of a patient
whose home is South; every list (API routes from the OpenAPI schema, list pages from the URL
configuration, the chair board, the Today panels) must leave that patient out too, while an
unrestricted nurse sees them. Routes that are clinic-wide by decision (demographics, the
calendar, consultation requests: see docs/security.md) are named in ``CLINIC_WIDE``.
"""

import datetime
import itertools
import json
from unittest import mock

import pytest
from django.urls import reverse

from ketaflow.api import api
from ketaflow.patients.models import Patient
from tests.security.test_access_matrix import WEB
from tests.treatment.access_matrix import make_appointment

# Clinic-wide by decision: demographics (find a patient, book them) are open to every role,
# as the demographics page is; see docs/security.md "Location scope".
CLINIC_WIDE_API = {
    "ketaflow_patients_api_list_patients",
    "ketaflow_scheduling_api_list_appointments",
    "ketaflow_intake_api_list_requests",
}
CLINIC_WIDE_WEB = {"patients:list", "scheduling:week", "scheduling:day", "intake:queue"}


def _build_session(clinic, staff, patient, *, to, route="iv"):
    from ketaflow.treatment import builder, services

    appt = make_appointment(clinic, staff, patient, route=route)
    with mock.patch.object(services, "consent_valid", lambda s: True):
        s = builder.build(appt, to=to, nurse=staff["nurse"], prescriber=staff["prescriber"])
    return s


def _records_for(clinic, staff, patient):
    """A plan, an active IV session with an open alert, a finished esketamine session with its
    REMS form, a PHQ-9 safety alert and risk flag: every kind of listed record."""
    from ketaflow.measures import services as measures
    from ketaflow.scheduling.models import Appointment
    from ketaflow.treatment import services

    live = _build_session(clinic, staff, patient, to="monitoring")
    services.record_vitals(
        session=live, actor=staff["nurse"], values={"systolic": 150, "diastolic": 80, "spo2": 88}
    )
    esk = _build_session(clinic, staff, patient, to="discharged", route="esk")
    measures.record_administration(
        patient=patient,
        actor=staff["prescriber"],
        instrument="phq9",
        answers={str(i): 1 for i in range(1, 10)},
    )
    # The appointments move to another day, so the calendar's Today panel (clinic-wide
    # by decision) does not list the patient; the sessions stay today's.
    two_days_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=2)
    Appointment.objects.filter(patient=patient).update(
        start=two_days_ago, end=two_days_ago + datetime.timedelta(hours=2)
    )
    return {"sessions": {live.pk, esk.pk}}


@pytest.fixture
def scoped(clinic, staff, make_user, make_patient, client_for):
    north = clinic.locations.get(name="North")
    south = clinic.locations.get(name="South")
    # Both patients have a prescriber, so neither is on the Today page's "needing action"
    # list (demographics, clinic-wide).
    home = make_patient(
        clinic,
        legal_family_name="Northhome-Synth",
        preferred_location=north,
        prescriber=staff["prescriber"],
    )
    away = make_patient(
        clinic,
        legal_family_name="Southaway-Synth",
        preferred_location=south,
        prescriber=staff["prescriber"],
    )
    records = {"home": _records_for(clinic, staff, home), "away": _records_for(clinic, staff, away)}
    north_nurse = make_user(clinic, "nurse", locations=["North"])
    return {
        "clinic": clinic,
        "north": north,
        "south": south,
        "home": home,
        "away": away,
        "records": records,
        "north_nurse": north_nurse,
        "north_client": client_for(north_nurse),
        "all_client": client_for(staff["nurse"]),
    }


def _list_operations():
    """Every GET route of the API without a path parameter (lists and searches)."""
    schema = api.get_openapi_schema()
    for route, methods in schema["paths"].items():
        operation = methods.get("get")
        if operation and "{" not in route:
            yield route, operation["operationId"]


def _list_pages():
    """Every GET page without URL parameters that a nurse may open."""
    for name, (method, need, params) in sorted(WEB.items()):
        if method == "get" and not params and need not in ("public", "signed-in"):
            from ketaflow.accounts.permissions import roles_can

            if roles_can(["nurse"], need):
                yield name


def _mentions(payload, patient, sessions) -> bool:
    """Whether a JSON answer carries a record of ``patient`` (or one of their sessions)."""
    if isinstance(payload, dict):
        if payload.get("patient_id") == patient.pk or payload.get("session_id") in sessions:
            return True
        return any(_mentions(v, patient, sessions) for v in payload.values())
    if isinstance(payload, list):
        return any(_mentions(v, patient, sessions) for v in payload)
    return False


def test_every_list_route_leaves_out_patients_of_other_locations(scoped):
    away, sessions = scoped["away"], scoped["records"]["away"]["sessions"]
    home = scoped["home"]
    shown_to_all = []
    for route, operation in _list_operations():
        everyone = scoped["all_client"].get(route)
        north = scoped["north_client"].get(route)
        assert everyone.status_code == north.status_code, (route, north.status_code)
        if north.status_code != 200:
            continue
        if _mentions(everyone.json(), away, sessions):
            shown_to_all.append(operation)
        if operation in CLINIC_WIDE_API:
            continue
        assert not _mentions(north.json(), away, sessions), (route, north.content[:400])
        assert "Southaway" not in north.content.decode(), route
        if _mentions(everyone.json(), home, scoped["records"]["home"]["sessions"]):
            assert _mentions(north.json(), home, scoped["records"]["home"]["sessions"]), route
    # The records exist and the unrestricted nurse sees them: the lists above were not empty.
    assert {
        "ketaflow_plans_api_list_plans",
        "ketaflow_treatment_api_list_sessions",
        "ketaflow_treatment_api_list_alerts",
        "ketaflow_treatment_api_list_rems",
        "ketaflow_measures_api_list_alerts",
    } <= set(shown_to_all)


def test_every_list_page_leaves_out_patients_of_other_locations(scoped):
    shown_to_all = []
    for name in _list_pages():
        url = reverse(name)
        everyone = scoped["all_client"].get(url)
        north = scoped["north_client"].get(url)
        assert everyone.status_code == north.status_code, (name, north.status_code)
        if "Southaway" in everyone.content.decode():
            shown_to_all.append(name)
        if name in CLINIC_WIDE_WEB:
            continue
        assert "Southaway" not in north.content.decode(), name
    assert {
        "web:today",
        "measures:alerts",
        "treatment:day",
        "treatment:board",
        "treatment:board_partial",
        "treatment:rems_list",
    } <= set(shown_to_all)


def test_chair_board_offers_only_the_members_locations(scoped):
    north_client, south = scoped["north_client"], scoped["south"]
    assert north_client.get(f"/treatment/board/?location={south.pk}").status_code == 404
    assert scoped["all_client"].get(f"/treatment/board/?location={south.pk}").status_code == 200
    page = north_client.get("/treatment/board/").content.decode()
    assert "Northhome" in page and "Southaway" not in page
    # The South patient's session runs in a North chair: the chair shows as in use, unnamed.
    from ketaflow.treatment.models import TreatmentSession

    away = TreatmentSession.objects.get(pk=next(iter(scoped["records"]["away"]["sessions"])))
    assert f"North · {away.chair.name}: in use" in page
    assert f'value="{south.pk}"' not in page


def test_lists_show_a_patient_under_an_active_emergency_grant_as_the_detail_does(scoped):
    from ketaflow.accounts import services as access

    away, client = scoped["away"], scoped["north_client"]
    session = next(iter(scoped["records"]["away"]["sessions"]))
    assert client.get(f"/api/v1/treatment/sessions/{session}").status_code == 403
    assert not _mentions(client.get("/api/v1/treatment/sessions").json(), away, {session})
    access.grant_emergency_access(
        actor=scoped["north_nurse"],
        clinic=scoped["clinic"],
        patient=away,
        reason="Patient unwell in the waiting room",
    )
    assert client.get(f"/api/v1/treatment/sessions/{session}").status_code == 200
    assert _mentions(client.get("/api/v1/treatment/sessions").json(), away, {session})
    assert _mentions(client.get("/api/v1/plans/plans").json(), away, set())


def test_scope_predicate_and_queryset_agree(clinic, staff, make_user, make_patient):
    """``allows`` (one record) and ``visible`` (lists) give the same answer for every
    combination of member locations, patient location and care-team link."""
    from ketaflow.patients.scope import ChartScope

    north = clinic.locations.get(name="North")
    south = clinic.locations.get(name="South")
    members = {
        locs: make_user(clinic, "nurse", locations=locs) for locs in [(), ("North",), ("South",)]
    }
    members["front_desk"] = make_user(clinic, "front_desk", locations=("North",))
    patients = []
    for location, link in itertools.product(
        [None, north, south], [None, "prescriber", "therapist"]
    ):
        for member in members.values():
            fields = {"preferred_location": location}
            if link:
                fields[link] = member
            patients.append(make_patient(clinic, **fields))
    for member in members.values():
        scope = ChartScope(member, clinic)
        visible = set(
            scope.visible(Patient.objects.for_clinic(clinic), "").values_list("pk", flat=True)
        )
        allowed = {p.pk for p in patients if scope.allows(p)}
        assert {p.pk for p in patients} & visible == allowed


def test_list_answers_carry_no_other_location_data_in_json(scoped):
    """The reproduction of the issue: weight, dose and the pre-dose checklist of a South
    patient came back in full from the sessions list."""
    body = scoped["north_client"].get("/api/v1/treatment/sessions?limit=200").json()
    assert all(item["patient_id"] != scoped["away"].pk for item in body["items"])
    assert "Southaway" not in json.dumps(body)
