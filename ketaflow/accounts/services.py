"""Writes about people and access: sign-in events, tokens, memberships, emergency access."""

import datetime
import secrets

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaflow.accounts.models import ApiToken, EmergencyAccess, LoginFailure, User, hash_token
from ketaflow.accounts.permissions import require_permission
from ketaflow.accounts.roles import ROLES
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


def is_locked(email: str) -> bool:
    email = email.strip().lower()
    return (
        LoginFailure.objects.filter(email=email, at__gte=_window_start()).count()
        >= settings.KETAFLOW_LOGIN_MAX_FAILURES
    )


@transaction.atomic
def record_login_failure(*, email: str, client_address: str | None, stage: str) -> bool:
    """Count a failed password or second-factor attempt; returns True when now locked."""
    email = email.strip().lower()[:254]
    was_locked = is_locked(email)
    LoginFailure.objects.create(email=email, client_address=client_address or None)
    user = User.objects.filter(email=email).first()
    _record_for_user(
        user, action="login-failed", label=email, detail={"stage": stage, "locked": was_locked}
    )
    locked = is_locked(email)
    if locked and not was_locked:
        _record_for_user(
            user,
            action="lockout",
            label=email,
            detail={"minutes": settings.KETAFLOW_LOGIN_LOCKOUT_MINUTES},
        )
    return locked


@transaction.atomic
def record_login(*, user: User, method: str) -> None:
    LoginFailure.objects.filter(email=user.email).delete()
    _record_for_user(user, action="login", detail={"second_factor": method})


@transaction.atomic
def record_logout(*, user: User, everywhere: bool = False, reason: str = "user") -> None:
    """Sign-out by the user, or the end of a session (reason: idle, lifetime, signed-out)."""
    if everywhere:
        User.objects.filter(pk=user.pk).update(session_epoch=user.session_epoch + 1)
    _record_for_user(user, action="logout", detail={"everywhere": everywhere, "reason": reason})


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


@transaction.atomic
def add_member(
    *, actor: User, clinic, email: str, full_name: str, roles, locations
) -> tuple[Membership, str | None]:
    """Add a person to the clinic; returns the membership and a one-time password for a new user."""
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
    user = User.objects.filter(email=email).first()
    password = None
    if user is None:
        password = secrets.token_urlsafe(12)
        user = User.objects.create_user(email=email, password=password, full_name=full_name.strip())
    elif Membership.objects.filter(user=user, clinic=clinic).exists():
        raise ValidationError({"email": ["This person is already a member of the clinic."]})
    membership = Membership.objects.create(user=user, clinic=clinic, roles=roles)
    membership.locations.set(locations)
    audit.record(
        action="permission-change",
        clinic=clinic,
        actor=actor,
        obj=membership,
        detail={"user": email, "before": None, "after": {"roles": roles, "is_active": True}},
    )
    return membership, password


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
