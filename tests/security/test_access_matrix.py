"""Every URL and every API route, tried as anonymous, as each role, and from another clinic.

The tables below must name every URL pattern and every API operation: a new route that is
not listed here fails ``test_every_route_is_in_the_matrix``.
"""

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from ketaflow.accounts.models import ApiToken
from ketaflow.accounts.permissions import MATRIX, roles_can
from ketaflow.api import api
from ketaflow.tenancy.models import Membership

ROLES = ["owner", "prescriber", "nurse", "therapist", "front_desk"]
PUBLIC = "public"
SIGNED_IN = "signed-in"

# url name -> (method, what it needs, kind of object in the URL or None)
WEB = {
    "web:today": ("get", "patients.view", None),
    "patients:list": ("get", "patients.view", None),
    "patients:create": ("get", "patients.create", None),
    "patients:chart": ("get", "patients.view", "patient"),
    "patients:chart_tab": ("get", "chart.view", "patient"),
    "patients:edit": ("get", "patients.edit_demographics", "patient"),
    "patients:emergency_access": ("post", "chart.emergency_access", "patient"),
    "audit:report": ("get", "audit.view", None),
    "audit:export_csv": ("get", "audit.view", None),
    "accounts:users": ("get", "users.manage", None),
    "accounts:member_add": ("get", "users.manage", None),
    "accounts:member_edit": ("get", "users.manage", "membership"),
    "accounts:account": ("get", SIGNED_IN, None),
    "accounts:revoke_token": ("post", SIGNED_IN, "token"),
    "tenancy:choose": ("get", SIGNED_IN, None),
    "accounts:login": ("get", PUBLIC, None),
    "accounts:mfa": ("get", PUBLIC, None),
    "accounts:mfa_enrol": ("get", PUBLIC, None),
    "accounts:logout": ("post", PUBLIC, None),
    "accounts:password_reset": ("get", PUBLIC, None),
    "accounts:password_reset_done": ("get", PUBLIC, None),
    "accounts:password_reset_confirm": ("get", PUBLIC, None),
    "accounts:password_reset_complete": ("get", PUBLIC, None),
    "healthz": ("get", PUBLIC, None),
}
# URL prefixes covered elsewhere: the API (below), Django's admin (staff only, its own tests), the root redirect.
COVERED_PREFIXES = ("api/v1/", "admin/")

# API operation id -> (what it needs, kind of object in the path or None)
API = {
    "ketaflow_patients_api_list_patients": ("patients.view", None),
    "ketaflow_patients_api_search_patients": ("patients.view", None),
    "ketaflow_patients_api_get_patient": ("patients.view", "patient"),
    "ketaflow_patients_api_create_patient": ("patients.create", None),
    "ketaflow_patients_api_update_patient": ("patients.edit_demographics", "patient"),
    "ketaflow_audit_api_events": ("audit.view", None),
    "ketaflow_accounts_api_me": (SIGNED_IN, None),
}


def _named_patterns(resolver=None, prefix="", namespace=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _named_patterns(entry, route, ns)
        elif isinstance(entry, URLPattern):
            yield route, (namespace + entry.name) if entry.name else None


def _operations():
    schema = api.get_openapi_schema()
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation["operationId"]


def test_every_route_is_in_the_matrix():
    missing = [
        (route, name)
        for route, name in _named_patterns()
        if not route.startswith(COVERED_PREFIXES) and route != "" and name not in WEB
    ]
    assert missing == []
    assert sorted(op for _, _, op in _operations()) == sorted(API)
    for need, _ in API.values():
        assert need in MATRIX or need == SIGNED_IN
    for _, need, _ in WEB.values():
        assert need in MATRIX or need in (PUBLIC, SIGNED_IN)


@pytest.fixture
def world(clinic, other_clinic, staff, make_user, patient, client_for):
    outsider = make_user(other_clinic, *ROLES)
    token, _ = ApiToken.objects.get_or_create(
        user=staff["owner"],
        clinic=clinic,
        name="t",
        prefix="kf_x",
        token_hash="0" * 64,
        defaults={"expires_at": "2099-01-01T00:00:00Z"},
    )
    objects = {
        "patient": patient.pk,
        "membership": Membership.objects.get(user=staff["nurse"], clinic=clinic).pk,
        "token": token.pk,
    }
    return {"staff": staff, "outsider": outsider, "objects": objects, "client_for": client_for}


def _url(name, kind, objects):
    from django.urls import reverse

    kwargs = {"pk": objects[kind]} if kind else {}
    if name == "patients:chart_tab":
        kwargs["tab"] = "assessment"
    if name == "accounts:password_reset_confirm":
        kwargs = {"uidb64": "MQ", "token": "set-password"}
    return reverse(name, kwargs=kwargs)


def _api_path(path, kind, objects):
    return path.replace("{patient_id}", str(objects[kind])) if kind else path


def _call(client, method, url, data=None):
    if method == "get":
        return client.get(url)
    if url.startswith("/api/"):
        return getattr(client, method)(url, data or {}, content_type="application/json")
    return client.post(url, data or {})


@pytest.mark.parametrize("name", sorted(WEB))
def test_web_route_matrix(world, name):
    method, need, kind = WEB[name]
    url = _url(name, kind, world["objects"])
    anonymous = _call(Client(), method, url)
    if need == PUBLIC:
        assert anonymous.status_code in (200, 302), url
        return
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"], url
    for role in ROLES:
        client = world["client_for"](world["staff"][role])
        response = _call(client, method, url, {"reason": "Patient collapsed in the waiting room"})
        allowed = need == SIGNED_IN or roles_can([role], need)
        if name == "accounts:revoke_token":
            allowed = role == "owner"  # only the token's own user
            assert response.status_code == (302 if allowed else 404), (role, url)
        elif allowed:
            assert response.status_code in (200, 302), (role, url, response.status_code)
        else:
            assert response.status_code in (403, 404), (role, url, response.status_code)
    if kind:
        response = _call(
            world["client_for"](world["outsider"]), method, url, {"reason": "Checking someone else"}
        )
        assert response.status_code == 404, (name, url, response.status_code)


@pytest.mark.parametrize(("path", "method", "operation"), sorted(_operations()))
def test_api_route_matrix(world, path, method, operation):
    need, kind = API[operation]
    url = "/api/v1" + _api_path(path.removeprefix("/api/v1"), kind, world["objects"])
    body = {"q": "a"} if operation.endswith("search_patients") else {"phone": "555 010 9999"}
    assert _call(Client(), method.lower(), url, body).status_code == 401, url
    for role in ROLES:
        client = world["client_for"](world["staff"][role])
        response = _call(client, method.lower(), url, body)
        allowed = need == SIGNED_IN or roles_can([role], need)
        if allowed:
            assert response.status_code in (200, 201, 422), (
                role,
                url,
                response.status_code,
                response.content,
            )
        else:
            assert response.status_code == 403, (role, url, response.status_code)
    if kind:
        response = _call(world["client_for"](world["outsider"]), method.lower(), url, body)
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
