import base64
import time

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaflow.accounts.middleware import LAST_SEEN
from ketaflow.audit.models import AuditEvent
from ketaflow.web.totp import current_code

PASSWORD = "correct horse battery staple 42"
NEUTRAL = "Sign-in failed."


def _code(user):
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    return current_code(base64.b32encode(device.bin_key).decode())


def _password_step(client, user, password=PASSWORD, next_url="/today/"):
    return client.post(
        "/accounts/login/", {"email": user.email.upper(), "password": password, "next": next_url}
    )


def test_full_sign_in_with_totp_is_audited(staff):
    nurse = staff["nurse"]
    client = Client()
    response = _password_step(client, nurse, next_url="/patients/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/mfa/")
    # Half signed in: every page but the second step is closed.
    assert client.get("/patients/")["Location"].startswith("/accounts/mfa/")
    assert client.get("/api/v1/patients").status_code == 401
    response = client.post(response["Location"], {"code": _code(nurse)})
    assert response["Location"] == "/patients/"
    assert client.get("/patients/").status_code == 200
    event = AuditEvent.objects.get(action="login")
    assert event.actor == nurse and event.detail == {"second_factor": "totp"}


@pytest.mark.parametrize("email", ["nobody@example.test", "known"])
def test_wrong_password_and_unknown_user_get_the_same_message(staff, email):
    client = Client()
    address = staff["nurse"].email if email == "known" else email
    response = client.post("/accounts/login/", {"email": address, "password": "wrong password 123"})
    assert response.status_code == 200
    assert NEUTRAL in response.content.decode()
    event = AuditEvent.objects.get(action="login-failed")
    assert event.actor_label == address and event.detail["stage"] == "password"


def test_lockout_after_repeated_failures(staff, settings):
    nurse = staff["nurse"]
    client = Client()
    for _ in range(settings.KETAFLOW_LOGIN_MAX_FAILURES):
        assert NEUTRAL in _password_step(client, nurse, "wrong password 123").content.decode()
    # The right password is refused while locked, with the same words.
    response = _password_step(client, nurse)
    assert response.status_code == 200 and NEUTRAL in response.content.decode()
    assert AuditEvent.objects.filter(action="lockout").count() == 1
    assert (
        AuditEvent.objects.filter(action="login-failed").count()
        == settings.KETAFLOW_LOGIN_MAX_FAILURES + 1
    )


def test_wrong_totp_codes_count_towards_lockout(staff, settings):
    nurse = staff["nurse"]
    client = Client()
    _password_step(client, nurse)
    for _ in range(settings.KETAFLOW_LOGIN_MAX_FAILURES - 1):
        response = client.post("/accounts/mfa/", {"code": "000000"})
        assert "That code was not accepted" in response.content.decode()
    response = client.post("/accounts/mfa/", {"code": "000000"})
    assert response["Location"] == "/accounts/login/"  # locked: signed out
    assert AuditEvent.objects.filter(action="lockout").count() == 1
    assert client.get("/today/").status_code == 302


def test_recovery_code_works_once(staff):
    from ketaflow.accounts.services import replace_recovery_codes

    nurse = staff["nurse"]
    codes = replace_recovery_codes(nurse)
    client = Client()
    _password_step(client, nurse)
    assert client.post("/accounts/mfa/", {"code": codes[0]})["Location"] == "/today/"
    client.post("/accounts/logout/")
    _password_step(client, nurse)
    response = client.post("/accounts/mfa/", {"code": codes[0]})
    assert response.status_code == 200 and "not accepted" in response.content.decode()


def test_enrolment_confirms_device_and_shows_recovery_codes(clinic, make_user):
    user = make_user(clinic, "therapist", totp=False)
    client = Client()
    response = _password_step(client, user)
    response = client.get(response["Location"], follow=True)
    assert response.redirect_chain[-1][0].startswith("/accounts/mfa/enrol/")
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    page = response.content.decode()
    assert "data:image/svg+xml" in page  # the QR code, served inline as an image (no script)
    bad = client.post("/accounts/mfa/enrol/", {"code": "123456"})
    assert "not right" in bad.content.decode()
    good = client.post(
        "/accounts/mfa/enrol/", {"code": current_code(base64.b32encode(device.bin_key).decode())}
    )
    assert good.status_code == 200
    assert len(good.context["codes"]) == 10
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/today/").status_code == 200
    assert AuditEvent.objects.filter(action="update", detail__mfa="totp-enrolled").exists()


def test_idle_timeout_returns_to_sign_in_and_keeps_place(staff, patient, client_for):
    client = client_for(staff["nurse"])
    assert client.get(f"/patients/{patient.pk}/").status_code == 200
    session = client.session
    session[LAST_SEEN] = time.time() - 16 * 60
    session.save()
    response = client.get(f"/patients/{patient.pk}/")
    assert response.status_code == 302
    assert (
        "expired=idle" in response["Location"]
        and f"next=%2Fpatients%2F{patient.pk}%2F" in response["Location"]
    )
    assert "inactivity" in client.get(response["Location"]).content.decode()
    # htmx requests are told to redirect the whole page.
    assert client.get("/today/", headers={"HX-Request": "true"}).status_code == 302


def test_idle_timeout_is_a_clinic_setting(clinic, staff, client_for):
    clinic.idle_timeout_minutes = 60
    clinic.save()
    client = client_for(staff["nurse"])
    session = client.session
    session[LAST_SEEN] = time.time() - 30 * 60
    session.save()
    assert client.get("/today/").status_code == 200


def test_absolute_lifetime(staff, client_for, settings):
    client = client_for(staff["nurse"])
    session = client.session
    session["kf_auth_at"] = time.time() - settings.SESSION_COOKIE_AGE - 1
    session.save()
    assert "expired=lifetime" in client.get("/today/")["Location"]


def test_sign_out_everywhere_ends_other_sessions(staff, client_for):
    nurse = staff["nurse"]
    laptop, tablet = client_for(nurse), client_for(nurse)
    assert tablet.get("/today/").status_code == 200
    laptop.post("/accounts/logout/", {"everywhere": "1"})
    assert "expired=signed-out" in tablet.get("/today/")["Location"]
    assert AuditEvent.objects.filter(action="logout", detail__everywhere=True).exists()


def test_logout_requires_post_and_csrf(staff, client_for):
    client = client_for(staff["nurse"])
    assert client.get("/accounts/logout/").status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies
    assert strict.post("/accounts/logout/").status_code == 403


def test_password_reset_sends_email_without_revealing_accounts(staff, mailoutbox):
    client = Client()
    for email in (staff["nurse"].email, "nobody@example.test"):
        response = client.post("/accounts/password-reset/", {"email": email})
        assert response["Location"] == "/accounts/password-reset/sent/"
    assert len(mailoutbox) == 1 and mailoutbox[0].to == [staff["nurse"].email]
    assert "/accounts/password-reset/" in mailoutbox[0].body


def test_admin_login_goes_through_ketaflow_sign_in():
    response = Client().get("/admin/login/?next=/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_forged_csrf_gets_neutral_page_and_audit_event(staff, client_for):
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/accounts/login/", {"email": staff["nurse"].email, "password": PASSWORD}
    )
    assert response.status_code == 403 and "out of date" in response.content.decode()
    event = AuditEvent.objects.get(action="login-failed")
    assert event.detail["stage"] == "csrf" and event.actor_label == "(anonymous)"


def test_session_expiry_is_audited(staff, client_for):
    client = client_for(staff["nurse"])
    session = client.session
    session[LAST_SEEN] = time.time() - 16 * 60
    session.save()
    client.get("/today/")
    event = AuditEvent.objects.get(action="logout")
    assert event.actor == staff["nurse"] and event.detail["reason"] == "idle"


def test_clinic_settings_page_changes_idle_timeout_with_audit(clinic, staff, client_for):
    owner = client_for(staff["owner"])
    page = owner.get("/clinic/settings/")
    assert "Default and source: ketaflow default 15 minutes" in page.content.decode()
    from django.apps import apps

    # Every installed domain app's own settings page is linked from here.
    for label, url_name in (
        ("measures", "measures:settings"),
        ("intake", "intake:eligibility_settings"),
    ):
        if apps.is_installed(f"ketaflow.{label}"):
            assert f'href="{reverse(url_name)}"' in page.content.decode()
    data = {
        "name": clinic.name,
        "timezone": "Europe/Lisbon",
        "idle_timeout_minutes": "30",
        "emergency_access_minutes": "60",
        "emergency_phone": "112",
        "crisis_line": "SOS line 112",
    }
    assert owner.post("/clinic/settings/", data)["Location"] == "/clinic/settings/"
    clinic.refresh_from_db()
    assert (clinic.idle_timeout_minutes, clinic.timezone) == (30, "Europe/Lisbon")
    event = AuditEvent.objects.get(action="update", object_type="tenancy.clinic")
    assert event.detail["settings"]["idle_timeout_minutes"] == {"from": 15, "to": 30}
    bad = owner.post(
        "/clinic/settings/", {**data, "idle_timeout_minutes": "0", "timezone": "Mars/Base"}
    )
    errors = bad.context["form"].errors
    assert "idle_timeout_minutes" in errors and "timezone" in errors
    clinic.refresh_from_db()
    assert clinic.timezone == "Europe/Lisbon"
    assert client_for(staff["prescriber"]).get("/clinic/settings/").status_code == 403
