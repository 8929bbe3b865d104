"""Every API error is JSON in its documented shape (ErrorOut, ValidationErrorOut, ServerErrorOut),
and every operation documents the errors it can give."""

import logging

import pytest
from django.test import Client, override_settings

from ketaflow.accounts import services as access

API = "/api/v1"


@pytest.fixture
def nurse(clinic, staff):
    raw = access.create_api_token(
        user=staff["nurse"], clinic=clinic, name="rw", scope="read-write", days=30
    )[1]
    return Client(headers={"Authorization": f"Bearer {raw}"})


def _post(client, url, data):
    return client.post(url, data, content_type="application/json")


def _assert_validation_shape(response, fields):
    assert response.status_code == 422, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert [e["field"] for e in body["errors"]] == fields
    assert isinstance(body["detail"], str)
    assert all(e["message"].startswith(f"{e['field']}: ") for e in body["errors"])


def test_request_validation_errors_name_fields_as_the_client_sent_them(nurse):
    _assert_validation_shape(
        _post(nurse, f"{API}/treatment/sessions", {"appointment_id": "tomorrow"}),
        ["appointment_id"],
    )
    _assert_validation_shape(
        _post(
            nurse,
            f"{API}/treatment/sessions/1/vitals/batch",
            {"readings": [{"spo2": 97}, {"temperature": "warm"}]},
        ),
        ["readings[1].temperature"],
    )
    _assert_validation_shape(nurse.get(f"{API}/treatment/sessions?limit=many"), ["limit"])
    _assert_validation_shape(
        nurse.post(f"{API}/treatment/sessions", content_type="application/json"),
        ["appointment_id"],
    )


def test_django_validation_error_without_fields_is_named_request(nurse, monkeypatch):
    from django.core.exceptions import ValidationError

    from ketaflow.treatment import selectors

    def refuse(*args, **kwargs):
        raise ValidationError("The clinic is closed for maintenance.")

    monkeypatch.setattr(selectors, "open_alerts", refuse)
    _assert_validation_shape(nurse.get(f"{API}/treatment/alerts"), ["request"])


def test_unhandled_error_is_json_500_with_the_request_id_and_logged(nurse, monkeypatch):
    from ketaflow.treatment import selectors

    def crash(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(selectors, "open_alerts", crash)
    records = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = records.append
    logging.getLogger("ketaflow.api").addHandler(handler)
    try:
        response = nurse.get(f"{API}/treatment/alerts")
    finally:
        logging.getLogger("ketaflow.api").removeHandler(handler)
    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["request_id"] == response["X-Request-ID"] and body["request_id"] in body["detail"]
    assert "secret" not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    [record] = records
    assert body["request_id"] in record.getMessage() and record.exc_info[0] is RuntimeError


def test_malformed_and_oversized_bodies_and_unknown_routes_answer_json(nurse):
    malformed = nurse.post(
        f"{API}/treatment/sessions", "{not json", content_type="application/json"
    )
    assert malformed.status_code == 400 and "detail" in malformed.json()
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000):
        big = _post(nurse, f"{API}/treatment/sessions", {"appointment_id": 1, "pad": "x" * 5000})
    assert big.status_code == 413 and big.json()["detail"].startswith(
        "The request body is larger than"
    )
    missing = nurse.get(f"{API}/no-such-route")
    assert missing.status_code == 404 and missing.json()["detail"]
    assert Client().get("/no-such-page/")["Content-Type"].startswith("text/html")


def test_every_operation_documents_the_errors_it_can_give(db):
    schema = Client().get(f"{API}/openapi.json").json()
    shapes = schema["components"]["schemas"]
    assert set(shapes["ValidationErrorOut"]["required"]) == {"detail", "errors"}
    assert set(shapes["ServerErrorOut"]["required"]) == {"detail", "request_id"}
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            codes = set(operation["responses"])
            expected = {"401", "403", "404", "500"}
            if operation.get("parameters") or "requestBody" in operation:
                expected.add("422")
            if "requestBody" in operation:
                expected |= {"400", "413"}
            if method in ("post", "put", "patch", "delete"):
                expected.add("409")
            assert expected <= codes, (method, path, expected - codes)
            invalid = operation["responses"].get("422")
            if invalid:
                ref = invalid["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/ValidationErrorOut"), (method, path)


def test_decision_with_an_unknown_route_is_a_422_naming_routes(clinic, staff, patient):
    raw = access.create_api_token(
        user=staff["prescriber"], clinic=clinic, name="rw", scope="read-write", days=30
    )[1]
    prescriber = Client(headers={"Authorization": f"Bearer {raw}"})
    response = _post(
        prescriber,
        f"{API}/intake/patients/{patient.pk}/decisions",
        {"decision": "approve", "routes": ["iv-ketamine", "by-owl"]},
    )
    assert response.status_code == 422
    assert "routes" in [e["field"] for e in response.json()["errors"]]
