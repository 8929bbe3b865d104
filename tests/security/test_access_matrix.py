"""Every URL and every API route, tried as anonymous, as each role, and from another clinic.

The tables must name every URL pattern and every API operation: a route that is not listed
fails ``test_every_route_is_in_the_matrix``. Domain apps list their routes in
``tests/<app>/access_matrix.py`` (WEB, API, and optionally OBJECTS and BODIES), merged here.

WEB:  url name     -> (method, needed action | PUBLIC | SIGNED_IN, {url kwarg: object kind or literal})
API:  operation id -> (needed action | SIGNED_IN, {path parameter: object kind})
OBJECTS: object kind -> function(world) creating one such object in the first clinic, returning its pk
BODIES:  operation id or url name -> request body for POST/PUT/PATCH
"""

import importlib.util
from pathlib import Path

import pytest
from django.apps import apps
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from ketaflow.accounts.models import ApiToken
from ketaflow.accounts.permissions import MATRIX, roles_can
from ketaflow.api import api
from ketaflow.tenancy.models import Membership

ROLES = ["owner", "prescriber", "nurse", "therapist", "front_desk"]
PUBLIC = "public"
SIGNED_IN = "signed-in"

WEB = {
    "web:today": ("get", "patients.view", {}),
    "patients:list": ("get", "patients.view", {}),
    "patients:create": ("get", "patients.create", {}),
    "patients:chart": ("get", "patients.view", {"pk": "patient"}),
    "patients:chart_tab": ("get", "chart.view", {"pk": "patient", "tab": "assessment"}),
    "patients:edit": ("get", "patients.edit_demographics", {"pk": "patient"}),
    "patients:emergency_access": ("post", "chart.emergency_access", {"pk": "patient"}),
    "audit:report": ("get", "audit.view", {}),
    "audit:export_csv": ("get", "audit.view", {}),
    "accounts:users": ("get", "users.manage", {}),
    "accounts:member_add": ("get", "users.manage", {}),
    "accounts:member_edit": ("get", "users.manage", {"pk": "membership"}),
    "accounts:account": ("get", SIGNED_IN, {}),
    "accounts:revoke_token": ("post", "own-token", {"pk": "token"}),
    "tenancy:choose": ("get", SIGNED_IN, {}),
    "tenancy:settings": ("get", "clinic.settings", {}),
    "accounts:login": ("get", PUBLIC, {}),
    "accounts:mfa": ("get", PUBLIC, {}),
    "accounts:mfa_enrol": ("get", PUBLIC, {}),
    "accounts:logout": ("post", PUBLIC, {}),
    "accounts:password_reset": ("get", PUBLIC, {}),
    "accounts:password_reset_done": ("get", PUBLIC, {}),
    "accounts:password_reset_confirm": ("get", PUBLIC, {"uidb64": "MQ", "token": "set-password"}),
    "accounts:password_reset_complete": ("get", PUBLIC, {}),
    "healthz": ("get", PUBLIC, {}),
}
API = {
    "ketaflow_patients_api_list_patients": ("patients.view", {}),
    "ketaflow_patients_api_search_patients": ("patients.view", {}),
    "ketaflow_patients_api_get_patient": ("patients.view", {"patient_id": "patient"}),
    "ketaflow_patients_api_create_patient": ("patients.create", {}),
    "ketaflow_patients_api_update_patient": (
        "patients.edit_demographics",
        {"patient_id": "patient"},
    ),
    "ketaflow_audit_api_events": ("audit.view", {}),
    "ketaflow_accounts_api_me": (SIGNED_IN, {}),
}
OBJECTS = {}
BODIES = {
    "patients:emergency_access": {"reason": "Patient collapsed in the waiting room"},
    "ketaflow_patients_api_search_patients": {"q": "a"},
    "ketaflow_patients_api_update_patient": {"phone": "555 010 9999"},
}
# Django's admin (staff only) and the root redirect are outside the clinic's role matrix.
OUTSIDE = ("admin/",)

for path in sorted(Path(__file__).resolve().parents[1].glob("*/access_matrix.py")):
    if not apps.is_installed(f"ketaflow.{path.parent.name}"):
        continue
    spec = importlib.util.spec_from_file_location(f"access_matrix_{path.parent.name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    WEB.update(getattr(module, "WEB", {}))
    API.update(getattr(module, "API", {}))
    OBJECTS.update(getattr(module, "OBJECTS", {}))
    BODIES.update(getattr(module, "BODIES", {}))


def _patterns(resolver=None, prefix="", namespace=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _patterns(entry, route, ns)
        elif isinstance(entry, URLPattern):
            yield route, (namespace + entry.name) if entry.name else None


def _operations():
    schema = api.get_openapi_schema()
    for route, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield route, method, operation["operationId"]


def test_every_route_is_in_the_matrix():
    unlisted = [
        (route, name)
        for route, name in _patterns()
        if route and not route.startswith((*OUTSIDE, "api/v1/")) and name not in WEB
    ]
    assert unlisted == []
    assert sorted(op for _, _, op in _operations()) == sorted(API)
    needs = [need for _, need, _ in WEB.values()] + [need for need, _ in API.values()]
    assert all(need in MATRIX or need in (PUBLIC, SIGNED_IN, "own-token") for need in needs)


@pytest.fixture
def world(clinic, other_clinic, staff, make_user, make_patient, patient, client_for):
    outsider = make_user(other_clinic, *ROLES)
    token = ApiToken.objects.create(
        user=staff["owner"],
        clinic=clinic,
        name="t",
        prefix="kf_x",
        token_hash="0" * 64,
        expires_at="2099-01-01T00:00:00Z",
    )
    world = {
        "clinic": clinic,
        "staff": staff,
        "patient": patient,
        "make_patient": make_patient,
        "outsider": outsider,
        "client_for": client_for,
    }
    objects = {
        "patient": patient.pk,
        "membership": Membership.objects.get(user=staff["nurse"], clinic=clinic).pk,
        "token": token.pk,
    }
    for kind, build in OBJECTS.items():
        objects[kind] = build(world)
    world["objects"] = objects
    return world


def _resolve(params: dict, objects: dict) -> dict:
    return {key: objects.get(value, value) for key, value in params.items()}


def _uses_objects(params: dict) -> bool:
    return any(value in {"patient", "membership", "token", *OBJECTS} for value in params.values())


def _call(client, method, url, data=None):
    if method == "get":
        return client.get(url)
    if url.startswith("/api/"):
        return getattr(client, method)(url, data or {}, content_type="application/json")
    return client.post(url, data or {})


def _allowed(need, role):
    return need == SIGNED_IN or (need == "own-token" and role == "owner") or roles_can([role], need)


@pytest.mark.parametrize("name", sorted(WEB))
def test_web_route_matrix(world, name):
    method, need, params = WEB[name]
    url = reverse(name, kwargs=_resolve(params, world["objects"]))
    body = BODIES.get(name, {})
    anonymous = _call(Client(), method, url, body)
    if need == PUBLIC:
        assert anonymous.status_code in (200, 302), url
        return
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"], url
    for role in ROLES:
        response = _call(world["client_for"](world["staff"][role]), method, url, body)
        if _allowed(need, role):
            assert response.status_code in (200, 302), (role, url, response.status_code)
        else:
            assert response.status_code in (403, 404), (role, url, response.status_code)
    if _uses_objects(params):
        response = _call(world["client_for"](world["outsider"]), method, url, body)
        assert response.status_code == 404, (name, url, response.status_code)


@pytest.mark.parametrize(("route", "method", "operation"), sorted(_operations()))
def test_api_route_matrix(world, route, method, operation):
    need, params = API[operation]
    url = route.format(**_resolve(params, world["objects"]))
    body = BODIES.get(operation, {})
    assert _call(Client(), method, url, body).status_code == 401, url
    for role in ROLES:
        response = _call(world["client_for"](world["staff"][role]), method, url, body)
        if _allowed(need, role):
            assert response.status_code in (200, 201, 204, 409, 422), (
                role,
                url,
                response.status_code,
                response.content[:300],
            )
        else:
            assert response.status_code == 403, (role, url, response.status_code)
    if _uses_objects(params):
        response = _call(world["client_for"](world["outsider"]), method, url, body)
        assert response.status_code == 404, (url, response.status_code)


def test_emergency_access_grants_time_limited_flagged_access(
    clinic, make_user, patient, client_for
):
    from ketaflow.audit.models import AuditEvent

    patient.preferred_location = clinic.locations.get(name="South")
    patient.save()
    nurse = make_user(clinic, "nurse", locations=["North"])
    client = client_for(nurse)
    assert client.get(f"/patients/{patient.pk}/").status_code == 200  # demographics stay open
    blocked = client.get(f"/patients/{patient.pk}/assessment/")
    assert blocked.status_code == 403 and "emergency" in blocked.content.decode().lower()
    short = client.post(
        f"/patients/{patient.pk}/emergency-access/", {"reason": "urgent", "tab": "assessment"}
    )
    assert short.status_code == 400 and "at least 10 characters" in short.content.decode()
    granted = client.post(
        f"/patients/{patient.pk}/emergency-access/",
        {"reason": "Patient unwell in the waiting room", "tab": "assessment"},
    )
    assert granted["Location"] == f"/patients/{patient.pk}/assessment/"
    page = client.get(f"/patients/{patient.pk}/assessment/")
    assert (
        page.status_code == 200 and "Emergency access to this chart until" in page.content.decode()
    )
    assert AuditEvent.objects.get(action="emergency-access").emergency
    assert AuditEvent.objects.filter(action="read", emergency=True, patient=patient).exists()
    # Expired grants close the chart again.
    nurse.emergency_grants.update(expires_at="2000-01-01T00:00:00Z")
    assert client.get(f"/patients/{patient.pk}/assessment/").status_code == 403
