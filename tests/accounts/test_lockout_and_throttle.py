"""Per-email lockout (attempts while locked do not extend it; a reset unlocks) and the
per-address limit on sign-in, second-step and password-reset POSTs."""

import datetime
import re

import pytest
from django.test import Client

from ketaflow.accounts import backends
from ketaflow.accounts.models import LoginFailure
from ketaflow.audit.models import AuditEvent

PASSWORD = "correct horse battery staple 42"
WRONG = "wrong password 123"


def _attempt(client, user, password=WRONG, **extra):
    return client.post("/accounts/login/", {"email": user.email, "password": password}, **extra)


def _shift(minutes):
    """Move every stored failure (and its lock) ``minutes`` into the past."""
    delta = datetime.timedelta(minutes=minutes)
    for failure in LoginFailure.objects.all():
        failure.at -= delta
        if failure.locked_until:
            failure.locked_until -= delta
        failure.save()


def test_attempts_while_locked_do_not_extend_the_lock(staff, settings):
    nurse = staff["nurse"]
    client = Client()
    for _ in range(settings.KETAFLOW_LOGIN_MAX_FAILURES):
        _attempt(client, nurse)
    _shift(10)
    for _ in range(settings.KETAFLOW_LOGIN_MAX_FAILURES):
        assert "Sign-in failed" in _attempt(client, nurse).content.decode()
    still = _attempt(client, nurse, PASSWORD)
    assert still.status_code == 200  # locked: the right password is refused too
    _shift(6)  # 16 minutes after the lock began: it has ended, whatever was tried meanwhile
    response = _attempt(client, nurse, PASSWORD)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/mfa/")
    assert AuditEvent.objects.filter(action="lockout").count() == 1
    assert AuditEvent.objects.filter(action="login-failed", detail__locked=True).count() == 6


def test_a_new_count_starts_after_a_lock(staff, settings):
    nurse = staff["nurse"]
    client = Client()
    for _ in range(settings.KETAFLOW_LOGIN_MAX_FAILURES):
        _attempt(client, nurse)
    _shift(16)
    _attempt(client, nurse)  # one failure after the lock is not a new lock
    assert _attempt(client, nurse, PASSWORD).status_code == 302


def test_completed_password_reset_unlocks_with_audit(staff, settings, mailoutbox):
    nurse = staff["nurse"]
    client = Client()
    for _ in range(settings.KETAFLOW_LOGIN_MAX_FAILURES):
        _attempt(client, nurse)
    assert _attempt(client, nurse, PASSWORD).status_code == 200  # locked
    client.post("/accounts/password-reset/", {"email": nurse.email})
    link = re.search(r"https?://\S+", mailoutbox[0].body).group(0)
    path = link.split("://", 1)[1].split("/", 1)[1]
    form_page = client.get("/" + path, follow=True)
    new = "a brand new long passphrase 7"
    done = client.post(
        form_page.redirect_chain[-1][0], {"new_password1": new, "new_password2": new}
    )
    assert done["Location"] == "/accounts/password-reset/complete/"
    response = _attempt(client, nurse, new)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/mfa/")
    event = AuditEvent.objects.get(action="update", detail__password="reset")
    assert event.detail["unlocked"] is True and event.actor == nurse


@pytest.fixture
def small_limit(settings):
    settings.KETAFLOW_THROTTLE_ATTEMPTS = 3
    return settings


def test_sign_in_flood_from_one_address_gets_429_before_hashing(staff, small_limit, monkeypatch):
    nurse = staff["nurse"]
    calls = []
    original = backends.EmailBackend.authenticate

    def counting(self, request, **kwargs):
        calls.append(1)
        return original(self, request, **kwargs)

    monkeypatch.setattr(backends.EmailBackend, "authenticate", counting)
    client = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(3):
        assert _attempt(client, nurse).status_code == 200
    refused = _attempt(client, nurse, PASSWORD)
    assert refused.status_code == 429
    assert "Too many attempts from your network" in refused.content.decode()
    assert refused["Retry-After"] == str(small_limit.KETAFLOW_THROTTLE_MINUTES * 60)
    assert len(calls) == 3  # the refused attempt hashed nothing
    # Another address is not affected; GET still shows the page.
    assert client.get("/accounts/login/").status_code == 200
    other = Client(REMOTE_ADDR="198.51.100.4")
    assert _attempt(other, nurse, PASSWORD).status_code == 302


def test_the_window_slides(staff, small_limit):
    from ketaflow.accounts.models import SignInAttempt

    client = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(3):
        _attempt(client, staff["nurse"])
    assert _attempt(client, staff["nurse"]).status_code == 429
    old = datetime.timedelta(minutes=small_limit.KETAFLOW_THROTTLE_MINUTES + 1)
    for row in SignInAttempt.objects.all():
        row.at -= old
        row.save()
    assert _attempt(client, staff["nurse"]).status_code == 200
    assert SignInAttempt.objects.count() == 1  # rows older than the window are gone


def test_second_step_and_password_reset_are_limited_too(staff, small_limit, mailoutbox):
    nurse = staff["nurse"]
    client = Client(REMOTE_ADDR="203.0.113.9")
    _attempt(client, nurse, PASSWORD)
    statuses = [client.post("/accounts/mfa/", {"code": "000000"}).status_code for _ in range(4)]
    assert statuses[-1] == 429
    for _ in range(3):
        client.post("/accounts/password-reset/", {"email": nurse.email})
    assert client.post("/accounts/password-reset/", {"email": nurse.email}).status_code == 429
    assert len(mailoutbox) == 3


def test_an_empty_sign_in_post_names_the_fields(db):
    response = Client().post("/accounts/login/", {})
    assert response.status_code == 200
    assert {"email", "password"} <= set(response.context["form"].errors)
