"""Every read of patient data is audited, lists included, one event per request; reads made
under emergency access are flagged (issue 16, findings 4 and 8).

The routes come from the OpenAPI schema and the URL configuration, so a new list route or
page is covered without editing this file.
"""

import json

from django.urls import reverse

from ketaflow.accounts import services as access
from ketaflow.accounts.permissions import roles_can
from ketaflow.audit.models import AuditEvent
from tests.security.test_access_matrix import API, BODIES, OBJECTS, WEB, _call, _resolve, world
from tests.security.test_location_scope import _list_operations, _list_pages, scoped

__all__ = ["scoped", "world"]  # fixtures shared with the other security tests

# GET routes without a path parameter that return no patient records.
NO_PATIENT_DATA_API = {
    "ketaflow_accounts_api_me": "the signed-in user",
    "ketaflow_audit_api_events": "the audit report (owner only)",
    "ketaflow_measures_api_list_instruments": "questionnaire definitions",
    "ketaflow_plans_api_list_protocols": "the protocol library",
    "ketaflow_scheduling_api_list_types": "appointment types",
    "ketaflow_scheduling_api_free_slots": "free times (no patient data in the answer)",
}


def _new_events(before: int):
    return list(AuditEvent.objects.filter(pk__gt=before).order_by("pk"))


def _last_pk() -> int:
    return AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def _listed(event) -> set[int]:
    ids = set(event.detail.get("patients", []))
    for part in event.detail.get("parts", []):
        ids |= set(part.get("patients", []))
    return ids


def test_every_list_route_writes_exactly_one_read_event(scoped):
    client = scoped["all_client"]
    expected = {scoped["home"].pk, scoped["away"].pk}
    covered = []
    for route, operation in _list_operations():
        if operation in NO_PATIENT_DATA_API:
            continue
        before = _last_pk()
        response = client.get(route)
        assert response.status_code == 200, (route, response.status_code)
        events = _new_events(before)
        assert len(events) == 1, (route, [(e.action, e.object_type) for e in events])
        event = events[0]
        assert event.action == "read" and event.detail["list"] is True, route
        assert event.detail["view"] and event.detail["count"] == len(event.detail["patients"])
        shown = set(_patient_ids(response.json())) & expected
        assert shown <= set(event.detail["patients"]), (route, shown, event.detail)
        covered.append(operation)
    assert "ketaflow_patients_api_list_patients" in covered
    assert "ketaflow_treatment_api_list_sessions" in covered


def _patient_ids(payload):
    """Patient ids in a list answer: ``patient_id`` fields, and ``id`` of patient rows."""
    if isinstance(payload, dict):
        if "mrn" in payload and "id" in payload:
            yield payload["id"]
        if "patient_id" in payload:
            yield payload["patient_id"]
        for value in payload.values():
            yield from _patient_ids(value)
    elif isinstance(payload, list):
        for value in payload:
            yield from _patient_ids(value)


def test_every_list_page_showing_patients_writes_exactly_one_read_event(scoped):
    client = scoped["all_client"]
    names = {scoped["home"].pk: "Northhome", scoped["away"].pk: "Southaway"}
    audited = []
    for name in _list_pages():
        before = _last_pk()
        page = client.get(reverse(name))
        shown = {pk for pk, family in names.items() if family in page.content.decode()}
        reads = [e for e in _new_events(before) if e.action == "read"]
        if not shown:
            assert len(reads) <= 1, name
            continue
        assert len(reads) == 1, (name, [(e.object_type, e.detail) for e in reads])
        assert shown <= _listed(reads[0]), (name, shown, reads[0].detail)
        audited.append(name)
    assert {"web:today", "treatment:board", "treatment:board_partial", "measures:alerts"} <= set(
        audited
    )


def test_patient_search_is_audited_without_the_words_typed(scoped, client_for, staff):
    away = scoped["away"]
    client = client_for(staff["front_desk"])
    before = _last_pk()
    found = client.post(
        "/api/v1/patients/search", {"q": "Southaway"}, content_type="application/json"
    )
    assert [p["id"] for p in found.json()] == [away.pk]
    (event,) = _new_events(before)
    assert event.action == "read" and event.detail["patients"] == [away.pk]
    assert event.detail["search"]["kind"] == "name"
    assert "southaway" not in json.dumps(event.detail).lower()

    before = _last_pk()
    page = client.post("/patients/", {"q": away.mrn}, headers={"HX-Request": "true"})
    assert "Southaway" in page.content.decode()
    (event,) = _new_events(before)
    assert event.detail["patients"] == [away.pk] and event.detail["search"]["kind"] == "mrn"
    assert away.mrn.lower() not in json.dumps(event.detail).lower()


def test_a_page_of_several_lists_writes_one_event(scoped):
    """The Today page and its panels (treatment alerts, safety alerts): one event."""
    before = _last_pk()
    page = scoped["all_client"].get("/today/")
    assert "Southaway" in page.content.decode()
    reads = [e for e in _new_events(before) if e.action == "read"]
    assert len(reads) == 1
    assert {scoped["home"].pk, scoped["away"].pk} <= _listed(reads[0])
    assert {part["object_type"] for part in reads[0].detail["parts"]} >= {
        "treatment.sessionalert",
        "measures.safetyalert",
    }


def test_list_read_under_an_emergency_grant_is_flagged(scoped):
    away = scoped["away"]
    access.grant_emergency_access(
        actor=scoped["north_nurse"],
        clinic=scoped["clinic"],
        patient=away,
        reason="Patient unwell in the waiting room",
    )
    before = _last_pk()
    scoped["north_client"].get("/api/v1/treatment/sessions")
    (event,) = _new_events(before)
    assert event.emergency and event.detail["emergency_patients"] == [away.pk]
    before = _last_pk()
    scoped["all_client"].get("/api/v1/treatment/sessions")
    (event,) = _new_events(before)
    assert not event.emergency


ROLES = ["prescriber", "nurse", "therapist"]


def _detail_routes():
    """GET routes of one record (API operations and pages with an object in the URL)."""
    from ketaflow.api import api

    schema = api.get_openapi_schema()
    for route, methods in schema["paths"].items():
        operation = methods.get("get")
        if operation and "{" in route:
            need, params = API[operation["operationId"]]
            yield operation["operationId"], "get", route, need, params, True
    for name, (method, need, params) in WEB.items():
        if method == "get" and params:
            yield name, "get", name, need, params, False


def test_every_read_under_emergency_access_is_flagged(world, clinic, make_user, client_for):
    """Every record page and API record of patients outside the member's locations, opened
    through an emergency grant, writes read (and print or export) events flagged
    ``emergency``."""
    from ketaflow.patients.models import Patient

    south = clinic.locations.get(name="South")
    Patient.objects.for_clinic(clinic).update(preferred_location=south)
    member = make_user(clinic, *ROLES, locations=["North"])
    client = client_for(member)
    session_route = "/api/v1/treatment/sessions/{session_id}"
    closed = client.get(
        session_route.format(**_resolve({"session_id": "tx_session"}, world["objects"]))
    )
    assert closed.status_code == 403
    for patient in Patient.objects.for_clinic(clinic):
        access.grant_emergency_access(
            actor=member, clinic=clinic, patient=patient, reason="Urgent review of this chart"
        )
    flagged, unflagged = [], []
    for key, method, target, need, params, is_api in _detail_routes():
        if not roles_can(ROLES, need):
            continue
        kwargs = _resolve(params, world["objects"])
        url = target.format(**kwargs) if is_api else reverse(target, kwargs=kwargs)
        before = _last_pk()
        response = _call(client, method, url, BODIES.get(key))
        if response.status_code != 200:
            continue
        events = [e for e in _new_events(before) if e.action in ("read", "print", "export")]
        assert len([e for e in events if e.action == "read"]) <= 1, (key, events)
        for event in events:
            if event.patient_id is not None:  # a consultation request may have no patient yet
                (flagged if event.emergency else unflagged).append(key)
    assert unflagged == []
    assert {
        "ketaflow_treatment_api_get_session",
        "ketaflow_treatment_api_get_note",
        "treatment:session",
        "treatment:note_pdf",
        "treatment:rems_pdf",
        "therapy:letter_pdf",
        "ketaflow_plans_api_get_plan",
    } <= set(flagged), sorted(flagged)
    assert len(OBJECTS) > 0
