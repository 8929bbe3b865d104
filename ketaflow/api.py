"""The JSON API root: /api/v1/ (OpenAPI at /api/v1/openapi.json, docs at /api/v1/docs).

Authentication: a personal API token (``Authorization: Bearer kf_...``) or the browser
session after two-step sign-in. The same permission matrix and audit trail apply.
"""

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.views.decorators.csp import csp_override
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.security import HttpBearer, SessionAuth

from ketaflow.accounts import services as access
from ketaflow.accounts.permissions import require_permission
from ketaflow.audit.middleware import client_address


class ErrorOut(Schema):
    detail: str


class FieldError(Schema):
    field: str
    message: str


class ValidationErrorOut(Schema):
    detail: str
    errors: list[FieldError]


ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut}
WRITE_ERRORS = {**ERRORS, 409: ErrorOut, 422: ValidationErrorOut}


class TokenAuth(HttpBearer):
    openapi_description = (
        "Personal API token from your account page: `Authorization: Bearer kf_...`"
    )

    def authenticate(self, request, token):
        found = access.authenticate_token(token)
        if found is None:
            access.record_login_failure(
                email="(api token)", client_address=client_address(request), stage="api-token"
            )
            return None
        request.user = found.user
        request.clinic = found.clinic
        request.api_token = found
        return found


class VerifiedSessionAuth(SessionAuth):
    """The browser session, only after two-step sign-in and with a clinic chosen."""

    def authenticate(self, request, key):
        user = super().authenticate(request, key)
        if user is None or not user.is_verified() or getattr(request, "clinic", None) is None:
            return None
        return user


api = NinjaAPI(
    title="ketaflow API",
    version="1",
    description=(
        "The JSON API of ketaflow. Every route applies the clinic's role matrix and records "
        "reads and writes in the audit trail. Errors: 400 malformed request, 401 not signed in, "
        "403 not allowed, 404 not in your clinic, 409 conflict, 422 invalid field (named)."
    ),
    auth=[TokenAuth(), VerifiedSessionAuth()],
    urls_namespace="api",
    docs_decorator=csp_override(
        {
            "default-src": ["'self'"],
            "style-src": ["'self'", "'unsafe-inline'"],
            "img-src": ["'self'", "data:"],
        }
    ),
)


def clinic_of(request):
    clinic = getattr(request, "clinic", None)
    if clinic is None:
        raise HttpError(401, "Not signed in to a clinic.")
    return clinic


def api_require(request, action: str, *, writes: bool = False):
    """The clinic of the request, after checking the permission matrix and the token's scope."""
    clinic = clinic_of(request)
    token = getattr(request, "api_token", None)
    if writes and token is not None and token.scope != token.SCOPE_READ_WRITE:
        raise HttpError(403, "This token is read-only: make a read-write token to change records.")
    try:
        require_permission(request.user, action, clinic)
    except PermissionDenied as exc:
        raise HttpError(403, str(exc)) from exc
    return clinic


def _label(field: str) -> str:
    return "request" if field == "__all__" else field


@api.exception_handler(ValidationError)
def on_validation_error(request, exc: ValidationError):
    errors = [
        {"field": _label(field), "message": f"{_label(field)}: {message}"}
        for field, messages in exc.message_dict.items()
        for message in messages
    ]
    return api.create_response(
        request, {"detail": "; ".join(e["message"] for e in errors), "errors": errors}, status=422
    )


@api.exception_handler(PermissionDenied)
def on_permission_denied(request, exc):
    return api.create_response(request, {"detail": str(exc) or "Not allowed."}, status=403)


@api.exception_handler(Http404)
def on_not_found(request, exc):
    return api.create_response(request, {"detail": "Not found in your clinic."}, status=404)


@api.exception_handler(AuthenticationError)
def on_auth_error(request, exc):
    return api.create_response(
        request, {"detail": "Not authenticated: send a valid API token or sign in."}, status=401
    )


def _register_routers():
    """Core routers, then each installed domain app's ``api.router`` at /api/v1/<app>/."""
    from importlib import import_module
    from importlib.util import find_spec

    from django.conf import settings

    from ketaflow.accounts.api import router as me_router
    from ketaflow.audit.api import router as audit_router
    from ketaflow.patients.api import router as patients_router

    api.add_router("/patients", patients_router)
    api.add_router("/audit", audit_router)
    api.add_router("/me", me_router)
    for name in settings.DOMAIN_APPS:
        module = f"ketaflow.{name}.api"
        if f"ketaflow.{name}" in settings.INSTALLED_APPS and find_spec(module):
            app_api = import_module(module)
            api.add_router(f"/{name}", app_api.router)
            for prefix, extra in getattr(app_api, "EXTRA_ROUTERS", {}).items():
                api.add_router(prefix, extra)


_register_routers()
