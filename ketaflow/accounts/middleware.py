"""Session limits and the multi-factor gate, applied to every request."""

import time

from django.conf import settings
from django.contrib.auth import logout
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django_htmx.http import HttpResponseClientRedirect

from ketaflow.tenancy.middleware import SESSION_KEY

AUTH_AT = "kf_auth_at"
LAST_SEEN = "kf_last_seen"
EPOCH = "kf_epoch"
DEFAULT_IDLE_MINUTES = 15

# Paths an authenticated user may reach before completing multi-factor sign-in: sign-in itself,
# and the public patient pages (a clinic tablet may have a half-signed-in staff session).
MFA_OPEN_PREFIXES = (
    "/accounts/",
    "/static/",
    "/api/",
    "/healthz",
    "/measures/r/",
    "/intake/request/",
    "/intake/consent/sign/",
    "/education/",
    "/therapy/r/",
)


def idle_limit_seconds(request) -> int:
    """The chosen clinic's idle timeout; before a clinic is chosen, the strictest of the user's."""
    from ketaflow.tenancy.models import Clinic

    clinics = Clinic.objects.filter(memberships__user=request.user, memberships__is_active=True)
    clinic_id = request.session.get(SESSION_KEY)
    if clinic_id:
        clinics = clinics.filter(pk=clinic_id)
    minutes = min(
        clinics.values_list("idle_timeout_minutes", flat=True), default=DEFAULT_IDLE_MINUTES
    )
    return minutes * 60


def _to_login(request, reason: str):
    login = reverse("accounts:login")
    target = login + "?" + urlencode({"next": request.get_full_path(), "expired": reason})
    if request.path.startswith("/api/"):
        return None
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(target)
    return redirect(target)


class SessionLimitsMiddleware:
    """Idle timeout (clinic setting), absolute lifetime, sign-out-everywhere and the MFA gate."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if user.is_authenticated:
            now = time.time()
            session = request.session
            reason = ""
            if session.get(EPOCH) != user.session_epoch:
                reason = "signed-out"
            elif now - session.get(AUTH_AT, 0) > settings.SESSION_COOKIE_AGE:
                reason = "lifetime"
            elif now - session.get(LAST_SEEN, now) > idle_limit_seconds(request):
                reason = "idle"
            if reason:
                from ketaflow.accounts.services import record_logout

                record_logout(user=user, reason=reason)
                logout(request)
                response = _to_login(request, reason)
                if response is not None:
                    return response
            else:
                if now - session.get(LAST_SEEN, 0) > 15:
                    session[LAST_SEEN] = now
                if not user.is_verified() and not request.path.startswith(MFA_OPEN_PREFIXES):
                    return redirect(
                        reverse("accounts:mfa") + "?" + urlencode({"next": request.get_full_path()})
                    )
        return self.get_response(request)


def start_session(request) -> None:
    """Stamp a fresh session after sign-in (called by the sign-in view)."""
    now = time.time()
    request.session[AUTH_AT] = now
    request.session[LAST_SEEN] = now
    request.session[EPOCH] = request.user.session_epoch
