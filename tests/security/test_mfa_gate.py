"""The two-step sign-in as a state machine, generated from the URL configuration.

A session that has typed only the password ("half signed in") reaches the pages in
``MFA_PENDING_ALLOWED`` and nothing else: every other route, GET and POST, is sent to the
second step (or answered 401 on the API). Routes are read from the resolver and the OpenAPI
schema at collection time, so a route added later is covered without touching this file.
"""

import base64

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils.http import urlencode
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaflow.accounts.middleware import MFA_PENDING_ALLOWED
from ketaflow.accounts.models import ApiToken, User
from ketaflow.api import VerifiedSessionAuth, api
from ketaflow.audit.models import AuditEvent
from ketaflow.tenancy.models import Membership
from ketaflow.web.totp import current_code

PASSWORD = "correct horse battery staple 42"
SAMPLE = {
    "int": 1,
    "slug": "x",
    "str": "x",
    "path": "x",
    "uuid": "00000000-0000-0000-0000-000000000000",
}


def _converter_kind(converter) -> str:
    return type(converter).__name__.removesuffix("Converter").lower()


def _routes(resolver=None, namespace=""):
    """(url name, URL with sample arguments) for every named web route (not the API's)."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace in ("api", "admin"):
                continue
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _routes(entry, ns)
        elif isinstance(entry, URLPattern) and entry.name:
            name = namespace + entry.name
            kwargs = {
                key: SAMPLE.get(_converter_kind(conv), "x")
                for key, conv in entry.pattern.converters.items()
            }
            kwargs = {k: v for k, v in kwargs.items() if k not in (entry.default_args or {})}
            yield name, reverse(name, kwargs=kwargs)


ROUTES = sorted(set(_routes()))
NAMESPACES = sorted({(name.split(":")[0] if ":" in name else "") for name, _ in ROUTES})


def _api_operations():
    for route, methods in api.get_openapi_schema()["paths"].items():
        for method, operation in methods.items():
            path = route
            for part in path.split("{")[1:]:
                path = path.replace("{" + part.split("}")[0] + "}", "1")
            yield operation["operationId"], method, path


API_OPERATIONS = sorted(_api_operations())


@pytest.fixture
def half(staff):
    """An owner who typed the right password and has not entered a code yet."""
    owner = staff["owner"]
    client = Client()
    response = client.post("/accounts/login/", {"email": owner.email, "password": PASSWORD})
    assert response["Location"].startswith("/accounts/mfa/")
    assert not User.objects.get(pk=owner.pk).staticdevice_set.exists()
    return client, owner


def _gate(url: str) -> str:
    return reverse("accounts:mfa") + "?" + urlencode({"next": url})


def _namespace(name: str) -> str:
    return name.split(":")[0] if ":" in name else ""


def test_allowed_names_all_exist():
    """No stale entry: every allowed name of an installed app is a route."""
    names = {name for name, _ in ROUTES} | {"api:openapi-json", "api:openapi-view"}
    installed = set(NAMESPACES) | {"api"}
    assert {name for name in MFA_PENDING_ALLOWED if _namespace(name) in installed} <= names


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_half_signed_in_session_reaches_only_the_second_step(half, namespace):
    client, _ = half
    wrong = []
    for name, url in ROUTES:
        if _namespace(name) != namespace:
            continue
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            gated = response.status_code == 302 and response["Location"] == _gate(url)
            if gated == (name in MFA_PENDING_ALLOWED):
                wrong.append((method, name, url, response.status_code))
            if name == "accounts:logout" and method == "post":
                # Signing out ends the half session: start it again for the next routes.
                client.post("/accounts/login/", {"email": half[1].email, "password": PASSWORD})
    assert wrong == []


def test_every_api_operation_refuses_a_half_signed_in_session(half):
    client, _ = half
    wrong = []
    for operation, method, path in API_OPERATIONS:
        response = getattr(client, method)(path, {}, content_type="application/json")
        if response.status_code != 401:
            wrong.append((operation, method, path, response.status_code))
    assert wrong == []
    assert client.get("/api/v1/openapi.json").status_code == 200


def test_half_signed_in_session_cannot_mint_second_factors_tokens_or_owners(half, clinic):
    client, owner = half
    client.post("/accounts/me/", {"form": "recovery", "password": PASSWORD})
    client.post("/accounts/me/", {"form": "token", "name": "x", "scope": "read-write", "days": 9})
    client.post(
        "/accounts/users/add/",
        {"email": "new.owner@test.ketaflow.test", "full_name": "New Owner", "roles": ["owner"]},
    )
    assert not StaticToken.objects.filter(device__user=owner).exists()
    assert not ApiToken.objects.exists()
    assert not User.objects.filter(email="new.owner@test.ketaflow.test").exists()
    assert Membership.objects.filter(clinic=clinic).count() == 5  # the staff fixture's five


def test_verified_session_auth_requires_the_second_step(rf, staff, clinic):
    user = staff["nurse"]
    request = rf.get("/api/v1/me")
    request.user = user
    request.clinic = clinic
    user.is_verified = lambda: False
    assert VerifiedSessionAuth().authenticate(request, "session") is None
    user.is_verified = lambda: True
    assert VerifiedSessionAuth().authenticate(request, "session") == user


def _code(user):
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    return current_code(base64.b32encode(device.bin_key).decode())


def test_session_key_is_rotated_at_each_step(staff):
    nurse = staff["nurse"]
    client = Client()
    client.post("/accounts/login/", {"email": nurse.email, "password": PASSWORD})
    half_key = client.session.session_key
    # Typing the password again in a half-signed-in session also gets a new key.
    client.post("/accounts/login/", {"email": nurse.email, "password": PASSWORD})
    again_key = client.session.session_key
    assert again_key != half_key
    client.post("/accounts/mfa/", {"code": _code(nurse)})
    full_key = client.session.session_key
    assert full_key != again_key
    assert client.get("/today/").status_code == 200
    # The half-signed-in key is worth nothing now.
    stale = Client()
    stale.cookies["sessionid"] = again_key
    assert stale.get("/today/").status_code == 302


def test_new_recovery_codes_need_the_password_and_are_audited(staff, client_for):
    nurse = staff["nurse"]
    client = client_for(nurse)
    refused = client.post("/accounts/me/", {"form": "recovery", "password": "not my password 1"})
    assert refused.context["codes"] is None
    assert "not your password" in refused.content.decode()
    assert AuditEvent.objects.filter(
        action="login-failed", detail__stage="re-authentication"
    ).exists()
    page = client.post("/accounts/me/", {"form": "recovery", "password": PASSWORD})
    assert len(page.context["codes"]) == 10
    event = AuditEvent.objects.get(action="update", detail__mfa="recovery-codes-issued")
    assert event.actor == nurse
    # One of them completes a later sign-in.
    client.post("/accounts/logout/")
    client.post("/accounts/login/", {"email": nurse.email, "password": PASSWORD})
    assert (
        client.post("/accounts/mfa/", {"code": page.context["codes"][0]})["Location"] == "/today/"
    )


def test_api_token_issue_is_audited(staff, client_for):
    client = client_for(staff["nurse"])
    page = client.post("/accounts/me/", {"form": "token", "name": "s", "scope": "read", "days": 5})
    assert page.context["new_token"].startswith("kf_")
    assert AuditEvent.objects.filter(action="create", object_type="accounts.apitoken").exists()
