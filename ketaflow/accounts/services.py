"""Writes about people and access: sign-in events, tokens, memberships, emergency access."""

import datetime
import hashlib
import secrets

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaflow.accounts.models import (
    ApiToken,
    EmergencyAccess,
    Invitation,
    LoginFailure,
    SignInAttempt,
    User,
    hash_token,
)
from ketaflow.accounts.permissions import require_permission
from ketaflow.accounts.roles import ROLES
from ketaflow.accounts.signals import credentials_revoked
from ketaflow.audit import services as audit
from ketaflow.tenancy.models import Membership

RECOVERY_CODES = 10


def _clinics_of(user):
    if user is None:
        return [None]
    clinics = [m.clinic for m in user.memberships.filter(is_active=True).select_related("clinic")]
    return clinics or [None]


def _record_for_user(user, *, action, label="", detail=None, obj=None):
    for clinic in _clinics_of(user):
        audit.record(
            action=action, clinic=clinic, actor=user, actor_label=label, obj=obj, detail=detail
        )


def _window_start():
    return timezone.now() - datetime.timedelta(minutes=settings.KETAFLOW_LOGIN_LOCKOUT_MINUTES)


def locked_until(email: str):
    """The end of the current lock of ``email``, or None when sign-in is open."""
    email = email.strip().lower()
    return (
        LoginFailure.objects.filter(email=email, locked_until__gt=timezone.now())
        .order_by("-locked_until")
        .values_list("locked_until", flat=True)
        .first()
    )


def is_locked(email: str) -> bool:
    return locked_until(email) is not None


def _failures_counting(email: str) -> int:
    """Failures in the window that came after the last lock ended (a lock starts a new count)."""
    since = _window_start()
    last_lock = (
        LoginFailure.objects.filter(email=email, locked_until__isnull=False)
        .order_by("-locked_until")
        .values_list("locked_until", flat=True)
        .first()
    )
    if last_lock is not None and last_lock > since:
        since = last_lock
    return LoginFailure.objects.filter(email=email, at__gte=since).count()


@transaction.atomic
def record_login_failure(*, email: str, client_address: str | None, stage: str) -> bool:
    """Count a failed password or second-factor attempt; returns True when now locked.

    An attempt while the email is locked is audited but not counted: it neither extends the
    lock nor starts the next count.
    """
    email = email.strip().lower()[:254]
    was_locked = is_locked(email)
    user = User.objects.filter(email=email).first()
    _record_for_user(
        user, action="login-failed", label=email, detail={"stage": stage, "locked": was_locked}
    )
    if was_locked:
        return True
    failure = LoginFailure.objects.create(email=email, client_address=client_address or None)
    if _failures_counting(email) >= settings.KETAFLOW_LOGIN_MAX_FAILURES:
        failure.locked_until = failure.at + datetime.timedelta(
            minutes=settings.KETAFLOW_LOGIN_LOCKOUT_MINUTES
        )
        failure.save(update_fields=["locked_until"])
        _record_for_user(
            user,
            action="lockout",
            label=email,
            detail={"minutes": settings.KETAFLOW_LOGIN_LOCKOUT_MINUTES},
        )
        return True
    return False


# Per-address limit on sign-in, second-factor and password-reset attempts ---------------


def _address_hash(scope: str, address: str) -> str:
    return hashlib.sha256(f"{settings.SECRET_KEY}:{scope}:{address}".encode()).hexdigest()


@transaction.atomic
def allow_attempt(*, scope: str, client_address: str) -> bool:
    """Count one attempt from ``client_address``; False once the sliding window is full.

    Runs before any password is hashed, so a flood costs a count and an insert per request,
    not an Argon2 hash. A refused attempt is not counted (the window keeps sliding). Not
    audited: it holds no person's data, and a flood must not flood the audit trail.
    """
    now = timezone.now()
    window = datetime.timedelta(minutes=settings.KETAFLOW_THROTTLE_MINUTES)
    key = _address_hash(scope, client_address or "unknown")
    SignInAttempt.objects.filter(at__lt=now - window).delete()  # the table holds one window
    recent = SignInAttempt.objects.filter(
        scope=scope, address_hash=key, at__gte=now - window
    ).count()
    if recent >= settings.KETAFLOW_THROTTLE_ATTEMPTS:
        return False
    SignInAttempt.objects.create(scope=scope, address_hash=key, at=now)
    return True


@transaction.atomic
def record_login(*, user: User, method: str) -> None:
    LoginFailure.objects.filter(email=user.email).delete()
    _record_for_user(user, action="login", detail={"second_factor": method})


@transaction.atomic
def record_logout(*, user: User, everywhere: bool = False, reason: str = "user") -> None:
    """Sign-out by the user, or the end of a session (reason: idle, lifetime, signed-out).

    "Sign out everywhere" also revokes the user's API tokens and calendar-feed tokens: they
    are sessions that live outside the browser.
    """
    detail = {"everywhere": everywhere, "reason": reason}
    if everywhere:
        User.objects.filter(pk=user.pk).update(session_epoch=F("session_epoch") + 1)
        detail["revoked"] = _revoke_credentials(user, reason="signed-out-everywhere")
    _record_for_user(user, action="logout", detail=detail)


def _revoke_credentials(user: User, *, reason: str) -> dict:
    """Revoke every API token and (through ``credentials_revoked``) calendar-feed token."""
    now = timezone.now()
    counts = {
        "api_tokens": ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(
            revoked_at=now
        )
    }
    for _receiver, result in credentials_revoked.send(sender=User, user=user, reason=reason):
        if isinstance(result, dict):
            counts.update(result)
    return counts


@transaction.atomic
def password_reset_completed(*, user: User) -> None:
    """After a password reset by email: unlock sign-in, end sessions, revoke credentials.

    A reset means the password may have been known to someone else, so every credential
    that does not ask for it again ends: browser sessions (the session epoch), API tokens,
    calendar-feed tokens and the recovery codes (new ones are issued and shown once at the
    next two-step sign-in with the authenticator app). The authenticator itself stays.
    """
    user = User.objects.select_for_update(no_key=True, of=("self",)).get(pk=user.pk)
    unlocked = LoginFailure.objects.filter(email=user.email).delete()[0] > 0
    User.objects.filter(pk=user.pk).update(session_epoch=F("session_epoch") + 1)
    revoked = _revoke_credentials(user, reason="password-reset")
    revoked["recovery_codes"] = StaticToken.objects.filter(device__user=user).count()
    StaticToken.objects.filter(device__user=user).delete()
    # An unconfirmed recovery-code device marks "revoked, to be issued again at sign-in".
    StaticDevice.objects.filter(user=user).update(confirmed=False)
    if not StaticDevice.objects.filter(user=user).exists():
        StaticDevice.objects.create(user=user, name="Recovery codes", confirmed=False)
    _record_for_user(
        user,
        action="update",
        obj=user,
        detail={"password": "reset", "unlocked": unlocked, "revoked": revoked},
    )


@transaction.atomic
def record_rejected_request(*, user, reason: str, path: str) -> None:
    """A request refused before it reached a view (a forged or missing CSRF token)."""
    label = "" if user is not None and user.is_authenticated else "(anonymous)"
    known = user if user is not None and user.is_authenticated else None
    _record_for_user(
        known, action="login-failed", label=label, detail={"stage": reason, "path": path[:200]}
    )


# Multi-factor enrolment ------------------------------------------------------------


def pending_totp_device(user: User) -> TOTPDevice:
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


def confirmed_totp(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


@transaction.atomic
def confirm_totp_enrolment(*, user: User, device: TOTPDevice, code: str) -> list[str]:
    """Confirm the authenticator with a valid code; returns new one-time recovery codes."""
    if device.user_id != user.pk or device.confirmed:
        raise PermissionDenied("This enrolment is not pending for you.")
    allowed, _ = device.verify_is_allowed()
    if not allowed:
        raise ValidationError(
            {"code": ["Too many tries in a row: wait a few seconds, then enter the new code."]}
        )
    if not device.verify_token(code.strip().replace(" ", "")):
        raise ValidationError(
            {"code": ["The code is not right: enter the 6 digits your app shows now."]}
        )
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    codes = replace_recovery_codes(user)
    _record_for_user(user, action="update", obj=user, detail={"mfa": "totp-enrolled"})
    return codes


def recovery_codes_revoked(user: User) -> bool:
    """True after a password reset revoked the codes, until new ones are issued."""
    return StaticDevice.objects.filter(user=user, confirmed=False).exists()


@transaction.atomic
def issue_recovery_codes(*, user: User, reason: str) -> list[str]:
    """New one-time recovery codes (the old ones stop working), audited; shown once."""
    codes = replace_recovery_codes(user)
    _record_for_user(
        user, action="update", obj=user, detail={"mfa": "recovery-codes-issued", "reason": reason}
    )
    return codes


def replace_recovery_codes(user: User) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
    codes = [secrets.token_hex(5) for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


# API tokens ----------------------------------------------------------------------


@transaction.atomic
def create_api_token(
    *, user: User, clinic, name: str, scope: str, days: int
) -> tuple[ApiToken, str]:
    require_permission(user, "api.tokens", clinic)
    errors = {}
    if not name.strip():
        errors["name"] = ["Give the token a name, for example the script that uses it."]
    if scope not in dict(ApiToken.SCOPES):
        errors["scope"] = ["Choose read or read-write."]
    if not 1 <= days <= 365:
        errors["days"] = ["A token expires after 1 to 365 days."]
    if errors:
        raise ValidationError(errors)
    raw = ApiToken.generate()
    token = ApiToken.objects.create(
        user=user,
        clinic=clinic,
        name=name.strip()[:100],
        prefix=raw[:10],
        token_hash=hash_token(raw),
        scope=scope,
        expires_at=timezone.now() + datetime.timedelta(days=days),
    )
    audit.record(
        action="create", clinic=clinic, actor=user, obj=token, detail={"scope": scope, "days": days}
    )
    return token, raw


@transaction.atomic
def revoke_api_token(*, user: User, token: ApiToken) -> None:
    if token.user_id != user.pk:
        raise PermissionDenied("Only the token's owner can revoke it.")
    if token.revoked_at is None:
        ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
        audit.record(action="delete", clinic=token.clinic, actor=user, obj=token)


def authenticate_token(raw: str) -> ApiToken | None:
    if not raw or not raw.startswith("kf_") or len(raw) > 100:
        return None
    token = (
        ApiToken.objects.select_related("user", "clinic").filter(token_hash=hash_token(raw)).first()
    )
    if token is None or not token.is_usable or not token.user.is_active:
        return None
    if token.last_used_at is None or timezone.now() - token.last_used_at > datetime.timedelta(
        minutes=1
    ):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token


# Memberships ---------------------------------------------------------------------


def _clean_roles(roles) -> list[str]:
    roles = sorted(set(roles or []))
    if not roles:
        raise ValidationError({"roles": ["Choose at least one role."]})
    unknown = [role for role in roles if role not in ROLES]
    if unknown:
        raise ValidationError({"roles": [f"Unknown role: {', '.join(unknown)}."]})
    return roles


@transaction.atomic
def change_membership(
    *, actor: User, membership: Membership, roles, locations, is_active: bool
) -> Membership:
    require_permission(actor, "users.manage", membership.clinic)
    roles = _clean_roles(roles)
    locations = list(locations)
    if any(location.clinic_id != membership.clinic_id for location in locations):
        raise ValidationError({"locations": ["Choose locations of this clinic."]})
    if membership.user_id == actor.pk and ("owner" not in roles or not is_active):
        raise ValidationError(
            {"roles": ["You cannot remove your own owner role or deactivate yourself."]}
        )
    before = {
        "roles": sorted(membership.roles),
        "locations": sorted(membership.locations.values_list("pk", flat=True)),
        "is_active": membership.is_active,
    }
    membership.roles = roles
    membership.is_active = is_active
    membership.save(update_fields=["roles", "is_active"])
    membership.locations.set(locations)
    after = {
        "roles": roles,
        "locations": sorted(loc.pk for loc in locations),
        "is_active": is_active,
    }
    if before != after:
        audit.record(
            action="permission-change",
            clinic=membership.clinic,
            actor=actor,
            obj=membership,
            detail={"user": membership.user.email, "before": before, "after": after},
        )
    return membership


INVITATION_DAYS = 14


@transaction.atomic
def add_member(
    *, actor: User, clinic, email: str, full_name: str, roles, locations
) -> tuple[Membership | None, str | None, Invitation | None]:
    """Add a person to the clinic.

    A new email gets an account and a membership; the one-time first password is returned.
    An email that already has an account gets an invitation instead: the membership exists
    only once that person accepts it, signed in with both steps. An owner therefore controls
    only accounts the owner creates, and sees nobody's sign-ins before they join.
    Returns (membership, password, invitation); exactly one of membership and invitation.
    """
    require_permission(actor, "users.manage", clinic)
    email = (email or "").strip().lower()
    errors = {}
    if "@" not in email or len(email) > 254:
        errors["email"] = ["Enter an email address with an @."]
    if not (full_name or "").strip():
        errors["full_name"] = ["Enter the person's full name."]
    if errors:
        raise ValidationError(errors)
    roles = _clean_roles(roles)
    locations = list(locations)
    if any(location.clinic_id != clinic.pk for location in locations):
        raise ValidationError({"locations": ["Choose locations of this clinic."]})
    user = User.objects.filter(email=email).first()
    if user is not None:
        if Membership.objects.filter(user=user, clinic=clinic).exists():
            raise ValidationError({"email": ["This person is already a member of the clinic."]})
        now = timezone.now()
        Invitation.objects.filter(
            clinic=clinic, email=email, accepted_at__isnull=True, declined_at__isnull=True
        ).update(expires_at=now)
        invitation = Invitation.objects.create(
            clinic=clinic,
            email=email,
            roles=roles,
            invited_by=actor,
            expires_at=now + datetime.timedelta(days=INVITATION_DAYS),
        )
        invitation.locations.set(locations)
        audit.record(
            action="create",
            clinic=clinic,
            actor=actor,
            obj=invitation,
            detail={"invitation": email, "roles": roles, "days": INVITATION_DAYS},
        )
        return None, None, invitation
    password = secrets.token_urlsafe(12)
    user = User.objects.create_user(email=email, password=password, full_name=full_name.strip())
    membership = Membership.objects.create(user=user, clinic=clinic, roles=roles)
    membership.locations.set(locations)
    audit.record(
        action="permission-change",
        clinic=clinic,
        actor=actor,
        obj=membership,
        detail={"user": email, "before": None, "after": {"roles": roles, "is_active": True}},
    )
    return membership, password, None


@transaction.atomic
def withdraw_invitation(*, actor: User, invitation: Invitation) -> None:
    """The clinic takes back an invitation that has not been answered."""
    require_permission(actor, "users.manage", invitation.clinic)
    invitation = Invitation.objects.select_for_update(no_key=True, of=("self",)).get(
        pk=invitation.pk
    )
    if not invitation.is_open:
        raise ValidationError({"invitation": ["This invitation was answered or has expired."]})
    invitation.expires_at = timezone.now()
    invitation.save(update_fields=["expires_at"])
    audit.record(
        action="update",
        clinic=invitation.clinic,
        actor=actor,
        obj=invitation,
        detail={"invitation": "withdrawn"},
    )


def open_invitations(user: User):
    return (
        Invitation.objects.filter(
            email=user.email,
            accepted_at__isnull=True,
            declined_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        .select_related("clinic", "invited_by")
        .prefetch_related("locations")
    )


@transaction.atomic
def answer_invitation(*, user: User, invitation: Invitation, accept: bool) -> Membership | None:
    """The invited person accepts (a membership with the offered roles) or declines."""
    invitation = Invitation.objects.select_for_update(no_key=True, of=("self",)).get(
        pk=invitation.pk
    )
    if invitation.email != user.email:
        raise PermissionDenied("This invitation is for someone else.")
    if not invitation.is_open:
        raise ValidationError({"invitation": ["This invitation was answered or has expired."]})
    now = timezone.now()
    membership = None
    if accept:
        if Membership.objects.filter(user=user, clinic=invitation.clinic).exists():
            raise ValidationError({"invitation": ["You are already a member of this clinic."]})
        invitation.accepted_at = now
        membership = Membership.objects.create(
            user=user, clinic=invitation.clinic, roles=_clean_roles(invitation.roles)
        )
        membership.locations.set(invitation.locations.all())
        audit.record(
            action="permission-change",
            clinic=invitation.clinic,
            actor=user,
            obj=membership,
            detail={
                "user": user.email,
                "invitation": invitation.pk,
                "before": None,
                "after": {"roles": membership.roles, "is_active": True},
            },
        )
    else:
        invitation.declined_at = now
        audit.record(
            action="update",
            clinic=invitation.clinic,
            actor=user,
            obj=invitation,
            detail={"invitation": "declined"},
        )
    invitation.save(update_fields=["accepted_at", "declined_at"])
    return membership


# Emergency access ----------------------------------------------------------------


@transaction.atomic
def grant_emergency_access(*, actor: User, clinic, patient, reason: str) -> EmergencyAccess:
    require_permission(actor, "chart.emergency_access", clinic)
    if patient.clinic_id != clinic.pk:
        raise PermissionDenied("This patient is not in your clinic.")
    reason = " ".join((reason or "").split())
    if len(reason) < 10:
        raise ValidationError({"reason": ["Give the clinical reason in at least 10 characters."]})
    grant = EmergencyAccess.objects.create(
        clinic=clinic,
        user=actor,
        patient=patient,
        reason=reason[:2000],
        expires_at=timezone.now() + datetime.timedelta(minutes=clinic.emergency_access_minutes),
    )
    audit.record(
        action="emergency-access",
        clinic=clinic,
        actor=actor,
        patient=patient,
        obj=grant,
        detail={"reason": grant.reason, "minutes": clinic.emergency_access_minutes},
        emergency=True,
    )
    return grant
