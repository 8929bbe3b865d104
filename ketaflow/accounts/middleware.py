"""Session limits, the multi-factor gate and private caching, applied to every request."""

import time

from django.conf import settings
from django.contrib.auth import logout
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import Resolver404, resolve, reverse
from django.utils.cache import patch_cache_control
from django.utils.http import urlencode
from django_htmx.http import HttpResponseClientRedirect

from ketaflow.tenancy.middleware import SESSION_KEY

AUTH_AT = "kf_auth_at"
LAST_SEEN = "kf_last_seen"
EPOCH = "kf_epoch"
DEFAULT_IDLE_MINUTES = 15
# Sent by self-refreshing parts of a page (hx-headers on the chair board, the session page):
# a poll is not the person doing something, so it does not keep the session alive.
POLL_HEADER = "X-KF-Poll"

# What a half-signed-in session (password typed, second factor not yet) may reach, by URL
# name; everything else is refused (deny by default, so a new route is closed until listed).
# The second step itself, sign-out and the pages that need no staff session at all.
MFA_PENDING_ALLOWED = frozenset(
    {
        "accounts:login",
        "accounts:mfa",
        "accounts:mfa_enrol",
        "accounts:logout",
        "accounts:password_reset",
        "accounts:password_reset_done",
        "accounts:password_reset_confirm",
        "accounts:password_reset_complete",
        "healthz",
        # Public pages patients use through their own links (a clinic tablet may carry a
        # half-signed-in staff session); they never use the staff session.
        "measures:respond",
        "intake:public_request",
        "intake:public_thanks",
        "intake:consent_by_link",
        "education:index",
        "education:topic",
        "education:clinic_index",
        "education:clinic_topic",
        "therapy:practice_respond",
        "scheduling:feed",
        # The API's description (no data); API routes authenticate themselves.
        "api:openapi-json",
        "api:openapi-view",
    }
)
# Public pages holding no personal data: the only responses that may be cached.
CACHEABLE_PUBLIC = frozenset(
    {
        "education:index",
        "education:topic",
        "education:clinic_index",
        "education:clinic_topic",
        "api:openapi-json",
        "api:openapi-view",
    }
)


def url_name(request) -> str:
    """The namespaced URL name of the request's path ("" when nothing matches)."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return ""
    return match.view_name or ""


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


def is_poll(request) -> bool:
    return request.headers.get(POLL_HEADER) == "1"


def _to_login(request, reason: str):
    login = reverse("accounts:login")
    target = login + "?" + urlencode({"next": request.get_full_path(), "expired": reason})
    if request.path.startswith("/api/"):
        return None
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(target)
    return redirect(target)


def _second_step_required(request):
    if request.path.startswith("/api/"):
        if request.headers.get("Authorization"):
            return None  # a token request: the API authenticates the token, not the session
        return JsonResponse(
            {"detail": "Two-step sign-in is not complete: enter your code at /accounts/mfa/."},
            status=401,
        )
    target = reverse("accounts:mfa") + "?" + urlencode({"next": request.get_full_path()})
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
                if not is_poll(request) and now - session.get(LAST_SEEN, 0) > 15:
                    session[LAST_SEEN] = now
                if not user.is_verified() and url_name(request) not in MFA_PENDING_ALLOWED:
                    response = _second_step_required(request)
                    if response is not None:
                        return response
        return self.get_response(request)


class PrivateCacheMiddleware:
    """``Cache-Control: no-store, private`` on every response but public, data-free pages.

    Any response to a signed-in person or an API token, and any anonymous page reached
    through a patient's link, may hold patient data: no browser, proxy or shared cache may
    keep it. Static files never reach this middleware (WhiteNoise answers them first).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        signed_in = (user is not None and user.is_authenticated) or hasattr(request, "api_token")
        if signed_in or url_name(request) not in CACHEABLE_PUBLIC:
            if "max-age" in response.get("Cache-Control", ""):
                del response["Cache-Control"]
            patch_cache_control(response, no_store=True, private=True)
        return response


def start_session(request) -> None:
    """Stamp a fresh session after sign-in (called by the sign-in view)."""
    now = time.time()
    request.session[AUTH_AT] = now
    request.session[LAST_SEEN] = now
    request.session[EPOCH] = request.user.session_epoch
