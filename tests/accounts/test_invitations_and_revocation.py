"""Adding an existing account is an invitation; sign-out-everywhere and password reset end
API tokens, calendar-feed tokens and (reset) recovery codes."""

import base64
import re

import pytest
from django.apps import apps
from django.test import Client
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaflow.accounts import services
from ketaflow.accounts.models import ApiToken, Invitation
from ketaflow.audit.models import AuditEvent
from ketaflow.tenancy.models import Membership
from ketaflow.web.totp import current_code

PASSWORD = "correct horse battery staple 42"


def _code(user):
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    return current_code(base64.b32encode(device.bin_key).decode())


def _add(client, email, roles=("owner",)):
    return client.post(
        "/accounts/users/add/", {"email": email, "full_name": "Someone Else", "roles": list(roles)}
    )


def test_another_clinics_owner_cannot_attach_an_existing_account(
    clinic, other_clinic, staff, make_user, client_for
):
    victim = staff["prescriber"]
    rival = make_user(other_clinic, "owner")
    page = _add(client_for(rival), victim.email)
    assert page.status_code == 200 and page.context["invitation"] is not None
    assert page.context["password"] is None
    assert "is invited" in page.content.decode()
    assert not Membership.objects.filter(user=victim, clinic=other_clinic).exists()
    # The victim's sign-ins are not written to the rival clinic's trail.
    client = Client()
    client.post("/accounts/login/", {"email": victim.email, "password": PASSWORD})
    client.post("/accounts/mfa/", {"code": _code(victim)})
    assert AuditEvent.objects.filter(action="login", actor=victim, clinic=clinic).exists()
    assert not AuditEvent.objects.filter(actor=victim, clinic=other_clinic).exists()
    # The rival's report cannot find them either.
    report = client_for(rival).get("/audit/", {"user": victim.pk})
    assert victim.email not in report.content.decode()


def test_invited_person_accepts_or_declines_signed_in(
    clinic, other_clinic, staff, make_user, client_for
):
    person = staff["nurse"]
    owner = make_user(other_clinic, "owner")
    _add(client_for(owner), person.email, roles=("nurse",))
    invitation = Invitation.objects.get(email=person.email)
    assert AuditEvent.objects.filter(
        action="create", clinic=other_clinic, object_type="accounts.invitation"
    ).exists()
    page = client_for(person).get("/accounts/me/")
    assert other_clinic.name in page.content.decode()
    # Someone else cannot answer it.
    client_for(staff["therapist"]).post(f"/accounts/me/invitations/{invitation.pk}/accept/")
    assert not Membership.objects.filter(clinic=other_clinic, roles=["nurse"]).exists()
    response = client_for(person).post(f"/accounts/me/invitations/{invitation.pk}/accept/")
    assert response["Location"] == "/accounts/me/"
    membership = Membership.objects.get(user=person, clinic=other_clinic)
    assert membership.roles == ["nurse"]
    assert AuditEvent.objects.filter(
        action="permission-change", clinic=other_clinic, actor=person
    ).exists()
    # Answered once only.
    client_for(person).post(f"/accounts/me/invitations/{invitation.pk}/decline/")
    invitation.refresh_from_db()
    assert invitation.accepted_at is not None and invitation.declined_at is None


def test_declining_leaves_no_membership(clinic, other_clinic, staff, make_user, client_for):
    person = staff["therapist"]
    _add(client_for(make_user(other_clinic, "owner")), person.email, roles=("therapist",))
    invitation = Invitation.objects.get(email=person.email)
    client_for(person).post(f"/accounts/me/invitations/{invitation.pk}/decline/")
    invitation.refresh_from_db()
    assert invitation.declined_at is not None
    assert not Membership.objects.filter(user=person, clinic=other_clinic).exists()


def _feed_token(user, clinic):
    if not apps.is_installed("ketaflow.scheduling"):
        return None
    from ketaflow.scheduling.services import new_feed_token

    return new_feed_token(clinic=clinic, actor=user)


def _feed_ok(token) -> bool:
    return Client().get(f"/scheduling/feed/{token}.ics").status_code == 200


def test_sign_out_everywhere_revokes_api_and_feed_tokens(clinic, staff, client_for):
    nurse = staff["nurse"]
    _, raw = services.create_api_token(
        user=nurse, clinic=clinic, name="script", scope="read", days=30
    )
    feed = _feed_token(nurse, clinic)
    headers = {"Authorization": f"Bearer {raw}"}
    assert Client().get("/api/v1/me", headers=headers).status_code == 200
    if feed:
        assert _feed_ok(feed)
    client_for(nurse).post("/accounts/logout/", {"everywhere": "1"})
    assert Client().get("/api/v1/me", headers=headers).status_code == 401
    if feed:
        assert not _feed_ok(feed)
    event = AuditEvent.objects.get(action="logout", detail__everywhere=True)
    assert event.detail["revoked"]["api_tokens"] == 1
    if feed:
        assert event.detail["revoked"]["feed_tokens"] == 1
    # A plain sign-out keeps them.
    _, raw2 = services.create_api_token(
        user=nurse, clinic=clinic, name="script", scope="read", days=30
    )
    client_for(nurse).post("/accounts/logout/")
    assert (
        Client().get("/api/v1/me", headers={"Authorization": f"Bearer {raw2}"}).status_code == 200
    )


def test_password_reset_revokes_tokens_and_recovery_codes(clinic, staff, mailoutbox):
    nurse = staff["nurse"]
    old_codes = services.replace_recovery_codes(nurse)
    _, raw = services.create_api_token(
        user=nurse, clinic=clinic, name="script", scope="read", days=30
    )
    feed = _feed_token(nurse, clinic)
    client = Client()
    client.post("/accounts/password-reset/", {"email": nurse.email})
    link = re.search(r"https?://\S+", mailoutbox[0].body).group(0)
    page = client.get("/" + link.split("://", 1)[1].split("/", 1)[1], follow=True)
    new = "a brand new long passphrase 7"
    client.post(page.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    assert ApiToken.objects.get().revoked_at is not None
    assert Client().get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 401
    if feed:
        assert not _feed_ok(feed)
    assert not StaticToken.objects.filter(device__user=nurse).exists()
    # The old recovery codes no longer sign in; the authenticator does, and new codes follow.
    client.post("/accounts/login/", {"email": nurse.email, "password": new})
    refused = client.post("/accounts/mfa/", {"code": old_codes[0]})
    assert refused.status_code == 200 and "not accepted" in refused.content.decode()
    # (django-otp makes the authenticator wait a moment after a wrong code)
    TOTPDevice.objects.filter(user=nurse).update(
        throttling_failure_count=0, throttling_failure_timestamp=None
    )
    shown = client.post("/accounts/mfa/", {"code": _code(nurse)})
    assert len(shown.context["codes"]) == 10
    assert StaticToken.objects.filter(device__user=nurse).count() == 10
    assert AuditEvent.objects.filter(
        action="update", detail__mfa="recovery-codes-issued", detail__reason="password-reset"
    ).exists()
    event = AuditEvent.objects.get(action="update", detail__password="reset")
    assert event.detail["revoked"]["api_tokens"] == 1
    assert event.detail["revoked"]["recovery_codes"] == 10


@pytest.mark.parametrize("host", ["evil.example.test"])
def test_reset_links_use_the_public_url_not_the_host_header(staff, settings, mailoutbox, host):
    settings.ALLOWED_HOSTS = ["*"]
    settings.PUBLIC_URL = "https://clinic.example.org"
    Client().post("/accounts/password-reset/", {"email": staff["nurse"].email}, HTTP_HOST=host)
    body = mailoutbox[0].body
    assert "https://clinic.example.org/accounts/password-reset/" in body
    assert host not in body


def test_the_clinic_can_withdraw_an_open_invitation(
    clinic, other_clinic, staff, make_user, client_for
):
    person = staff["nurse"]
    owner = make_user(other_clinic, "owner")
    _add(client_for(owner), person.email, roles=("nurse",))
    invitation = Invitation.objects.get(email=person.email)
    assert person.email in client_for(owner).get("/accounts/users/").content.decode()
    # Another clinic's owner cannot touch it.
    foreign = client_for(staff["owner"]).post(
        f"/accounts/users/invitations/{invitation.pk}/withdraw/"
    )
    assert foreign.status_code == 404
    done = client_for(owner).post(f"/accounts/users/invitations/{invitation.pk}/withdraw/")
    assert done["Location"] == "/accounts/users/"
    assert AuditEvent.objects.filter(
        action="update", clinic=other_clinic, detail__invitation="withdrawn"
    ).exists()
    client_for(person).post(f"/accounts/me/invitations/{invitation.pk}/accept/")
    assert not Membership.objects.filter(user=person, clinic=other_clinic).exists()
