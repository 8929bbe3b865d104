import datetime

import pytest
from django.test import Client

from ketaflow.accounts import services as access
from ketaflow.audit.models import AuditEvent
from ketaflow.patients.models import Patient


@pytest.fixture
def tokens(clinic, staff):
    read = access.create_api_token(
        user=staff["nurse"], clinic=clinic, name="read", scope="read", days=30
    )[1]
    write = access.create_api_token(
        user=staff["nurse"], clinic=clinic, name="rw", scope="read-write", days=30
    )[1]
    return read, write


def _auth(token):
    return {"Authorization": f"Bearer {token}"}


def test_list_search_detail_with_token(clinic, other_clinic, make_patient, tokens):
    read, _ = tokens
    riley = make_patient(clinic, legal_given_name="Riley", legal_family_name="Alvarez-Synth")
    make_patient(other_clinic, legal_given_name="Riley", legal_family_name="Alvarez-Synth")
    client = Client()
    page = client.get("/api/v1/patients?limit=1", headers=_auth(read)).json()
    assert page["limit"] == 1 and len(page["items"]) == 1
    found = client.post(
        "/api/v1/patients/search",
        {"q": "alv"},
        content_type="application/json",
        headers=_auth(read),
    )
    assert [p["id"] for p in found.json()] == [riley.pk]
    detail = client.get(f"/api/v1/patients/{riley.pk}", headers=_auth(read))
    assert detail.json()["mrn"] == riley.mrn
    assert AuditEvent.objects.filter(action="read", patient=riley).count() == 1


def test_create_and_update_with_field_errors(clinic, tokens):
    _, write = tokens
    client = Client()
    future = (datetime.date.today() + datetime.timedelta(days=1)).isoformat()
    bad = client.post(
        "/api/v1/patients",
        {
            "legal_given_name": "Jo",
            "legal_family_name": "Ellis-Synth",
            "date_of_birth": future,
            "sex_assigned_at_birth": "female",
            "email": "jo.example.test",
        },
        content_type="application/json",
        headers=_auth(write),
    )
    assert bad.status_code == 422
    fields = {e["field"] for e in bad.json()["errors"]}
    assert fields == {"date_of_birth", "email"}
    assert "date_of_birth: Date of birth cannot be in the future." in bad.json()["detail"]
    assert not Patient.objects.exists()
    created = client.post(
        "/api/v1/patients",
        {
            "legal_given_name": "Jo",
            "legal_family_name": "Ellis-Synth",
            "date_of_birth": "1990-01-31",
            "sex_assigned_at_birth": "female",
        },
        content_type="application/json",
        headers=_auth(write),
    )
    assert created.status_code == 201
    pid = created.json()["id"]
    changed = client.patch(
        f"/api/v1/patients/{pid}",
        {"pronouns": "she/her"},
        content_type="application/json",
        headers=_auth(write),
    )
    assert changed.status_code == 200 and changed.json()["pronouns"] == "she/her"
    assert changed.json()["legal_family_name"] == "Ellis-Synth"


def test_malformed_json_is_a_clear_400_or_422(tokens):
    _, write = tokens
    response = Client().post(
        "/api/v1/patients", "{not json", content_type="application/json", headers=_auth(write)
    )
    assert response.status_code in (400, 422)
    assert response.status_code < 500


def test_read_token_cannot_write(tokens):
    read, _ = tokens
    response = Client().post(
        "/api/v1/patients", {}, content_type="application/json", headers=_auth(read)
    )
    assert response.status_code == 403 and "read-only" in response.json()["detail"]


@pytest.mark.parametrize(
    "header", ["Bearer nonsense", "Bearer kf_" + "x" * 43, "Token abc", "Bearer " + "kf_" * 60]
)
def test_bad_tokens_get_neutral_401_and_an_audit_event(header, db):
    response = Client().get("/api/v1/patients", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["detail"].startswith("Not authenticated")


def test_revoked_and_expired_tokens_stop_working(clinic, staff, tokens):
    read, _ = tokens
    token = staff["nurse"].api_tokens.get(name="read")
    client = Client()
    assert client.get("/api/v1/me", headers=_auth(read)).json()["token_scope"] == "read"
    access.revoke_api_token(user=staff["nurse"], token=token)
    assert client.get("/api/v1/me", headers=_auth(read)).status_code == 401
    _, raw = access.create_api_token(
        user=staff["nurse"], clinic=clinic, name="old", scope="read", days=1
    )
    staff["nurse"].api_tokens.filter(name="old").update(expires_at="2001-01-01T00:00:00Z")
    assert client.get("/api/v1/me", headers=_auth(raw)).status_code == 401


def test_token_is_stored_hashed_and_shown_once(clinic, staff, client_for):
    client = client_for(staff["nurse"])
    page = client.post(
        "/accounts/me/", {"form": "token", "name": "export", "scope": "read", "days": "30"}
    )
    raw = page.context["new_token"]
    assert raw.startswith("kf_")
    stored = staff["nurse"].api_tokens.get(name="export")
    assert raw not in (stored.token_hash, stored.prefix) and stored.token_hash != raw
    assert raw not in client.get("/accounts/me/").content.decode()
    bad = client.post(
        "/accounts/me/", {"form": "token", "name": "", "scope": "read", "days": "900"}
    )
    errors = bad.context["form"].errors
    assert "name" in errors and "days" in errors


def test_openapi_declares_errors_and_docs_are_served(db):
    client = Client()
    schema = client.get("/api/v1/openapi.json").json()
    create = schema["paths"]["/api/v1/patients"]["post"]["responses"]
    assert {"201", "401", "403", "404", "409", "422"} <= set(create)
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.content.decode()
    assert "cdn" not in docs.content.decode().lower()
