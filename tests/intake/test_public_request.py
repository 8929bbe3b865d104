"""The public request page: submission, notification, and abuse (honeypot, sizes, scripts, rate)."""

import pytest
from django.test import Client

from ketaflow.audit.models import AuditEvent
from ketaflow.intake.models import ConsultationRequest, RequestAttempt

SCRIPT = '<script>alert("x")</script>'


def url(clinic):
    return f"/intake/request/{clinic.slug}/"


def test_submit_lands_in_queue_and_notifies_staff(
    clinic, staff, request_data, mailoutbox, django_capture_on_commit_callbacks
):
    client = Client(enforce_csrf_checks=True)
    page = client.get(url(clinic))
    assert page.status_code == 200 and "Request a consultation" in page.content.decode()
    token = page.cookies["csrftoken"].value
    data = {**request_data, "csrfmiddlewaretoken": token}
    for key in range(1, 10):
        data[f"phq9_{key}"] = "1"
    data["phq9_difficulty"] = "1"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url(clinic), data)
    assert response.status_code == 302 and response["Location"].endswith("/thanks/")
    thanks = client.get(response["Location"]).content.decode()
    assert "What happens next" in thanks and "thoughts of being better off dead" in thanks
    item = ConsultationRequest.objects.get()
    assert item.clinic == clinic and item.status == "new"
    assert item.phq9_total == 9 and item.phq9_item9 == 1 and item.urgent
    assert item.summary == "review"
    assert (
        AuditEvent.objects.filter(object_type="intake.consultationrequest", action="create").count()
        == 1
    )
    # Intake staff (owner, prescriber, nurse, front desk) are emailed; the therapist is not.
    assert len(mailoutbox) == 1
    recipients = set(mailoutbox[0].to)
    assert staff["front_desk"].email in recipients and staff["therapist"].email not in recipients
    assert "Jamie" not in mailoutbox[0].body  # no personal data in email
    # Staff see it on Today and in the queue.
    staff_client = Client()
    from tests.conftest import sign_in

    sign_in(staff_client, staff["front_desk"])
    today = staff_client.get("/today/").content.decode()
    assert "New consultation requests (1)" in today and "urgent" in today
    assert "Intake" in today  # navigation entry


def test_csrf_is_enforced(clinic, request_data):
    response = Client(enforce_csrf_checks=True).post(url(clinic), request_data)
    assert response.status_code == 403
    assert not ConsultationRequest.objects.exists()


def test_missing_consent_checkbox_keeps_input(clinic, request_data):
    data = {k: v for k, v in request_data.items() if k != "consent_to_contact"}
    page = Client().post(url(clinic), data)
    html = page.content.decode()
    assert page.status_code == 200 and "Please tick the box so that we may contact you" in html
    assert 'value="Jamie"' in html
    assert not ConsultationRequest.objects.exists()


def test_honeypot_stores_nothing(
    clinic, request_data, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = Client().post(
            url(clinic), {**request_data, "website": "http://spam.example.test"}
        )
    assert response.status_code == 302
    assert not ConsultationRequest.objects.exists() and mailoutbox == []


def test_oversize_fields_are_refused(clinic, request_data):
    data = {**request_data, "given_name": "A" * 101, "message": "m" * 1001}
    page = Client().post(url(clinic), data)
    html = page.content.decode()
    assert page.status_code == 200
    assert "at most 100 characters" in html and "at most 1000 characters" in html
    assert not ConsultationRequest.objects.exists()
    huge = Client().post(url(clinic), {**request_data, "message": "x" * 40_000})
    assert huge.status_code == 413


def test_script_in_every_field_is_rendered_inert(clinic, staff, request_data, client_for):
    data = {
        k: (
            SCRIPT
            if k in ("given_name", "family_name", "seeking_other", "message", "referrer")
            else v
        )
        for k, v in request_data.items()
    }
    data["seeking"] = ["other"]
    data["email"] = "x@example.test"
    data["phone"] = SCRIPT  # invalid: shown back in the form, escaped
    page = Client().post(url(clinic), data)
    assert SCRIPT not in page.content.decode() and "&lt;script&gt;" in page.content.decode()
    data["phone"] = "555 010 3333"
    assert Client().post(url(clinic), data).status_code == 302
    item = ConsultationRequest.objects.get()
    client = client_for(staff["front_desk"])
    for path in ("/intake/", f"/intake/requests/{item.pk}/", "/today/"):
        html = client.get(path).content.decode()
        assert SCRIPT not in html and "&lt;script&gt;" in html, path


def test_rapid_repeats_are_rate_limited(clinic, request_data, settings):
    from ketaflow.intake import services

    client = Client()
    for _ in range(services.RATE_LIMIT):
        assert client.post(url(clinic), request_data).status_code == 302
    blocked = client.post(url(clinic), request_data)
    assert blocked.status_code == 429 and "Too many requests" in blocked.content.decode()
    assert ConsultationRequest.objects.count() == services.RATE_LIMIT
    # Another address is not affected; only hashes of addresses are stored.
    other = Client(REMOTE_ADDR="203.0.113.9")
    assert other.post(url(clinic), request_data).status_code == 302
    assert not RequestAttempt.objects.filter(address_hash__contains="127.0.0.1").exists()


def test_unknown_clinic_is_404(db):
    assert Client().get("/intake/request/no-such-clinic/").status_code == 404


@pytest.mark.parametrize("field", ["seeking", "diagnosed_depression", "antidepressants_tried"])
def test_required_prescreen_answers(clinic, request_data, field):
    data = {k: v for k, v in request_data.items() if k != field}
    page = Client().post(url(clinic), data)
    assert page.status_code == 200 and 'aria-invalid="true"' in page.content.decode()
