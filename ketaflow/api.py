"""The JSON API root: /api/v1/ (OpenAPI at /api/v1/openapi.json, docs at /api/v1/docs).

Authentication: a personal API token (``Authorization: Bearer kf_...``) or the browser
session after two-step sign-in. The same permission matrix and audit trail apply.

Every error is JSON in one of three documented shapes: ``ErrorOut`` (``detail``),
``ValidationErrorOut`` (``detail`` + ``errors[{field, message}]``, for Django's and Ninja's
validation errors alike) and ``ServerErrorOut`` (``detail`` + ``request_id``, for a 500 that
is logged with its traceback and the same request id). ``KetaflowAPI.get_openapi_schema``
adds the error responses an operation can give to every operation (see ``error_responses``),
so a new route is documented without repeating them.
"""

import logging

from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    ValidationError,
)
from django.http import Http404, JsonResponse
from django.views.decorators.csp import csp_override
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as RequestValidationError
from ninja.security import HttpBearer, SessionAuth

from ketaflow.accounts import services as access
from ketaflow.accounts.permissions import require_permission
from ketaflow.audit.middleware import client_address

logger = logging.getLogger("ketaflow.api")


class ErrorOut(Schema):
    detail: str


class ServerErrorOut(Schema):
    detail: str
    request_id: str


class FieldError(Schema):
    field: str
    message: str


class ValidationErrorOut(Schema):
    detail: str
    errors: list[FieldError]


# What a route may declare itself (a route's own model for a status wins, e.g. a 409 with the
# conflicting bookings); the OpenAPI schema adds the rest of ``error_responses`` to every route.
ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut}
WRITE_ERRORS = {**ERRORS, 409: ErrorOut, 422: ValidationErrorOut}

WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
ERROR_DESCRIPTIONS = {
    400: "Malformed request: the body is not JSON",
    401: "Not authenticated: no valid API token or two-step session",
    403: "Not allowed: role, location scope or a read-only token",
    404: "Not found in your clinic",
    409: "Conflict with the record's state (signed, already acknowledged, double booking)",
    413: "Request body too large",
    422: "Invalid input: each error names its field",
    429: "Too many requests",
    500: "Internal error: logged with the request id given here, never a traceback",
}


def error_responses(*, method: str, has_params: bool, has_body: bool, throttled: bool) -> dict:
    """The error responses (status -> schema) an operation can give.

    401/403/404 and 500 for every operation; 422 once it takes a path, query or body
    parameter; 400 and 413 when it reads a body; 409 for writes; 429 when it is throttled.
    """
    codes = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 500: ServerErrorOut}
    if has_params or has_body:
        codes[422] = ValidationErrorOut
    if has_body:
        codes[400] = ErrorOut
        codes[413] = ErrorOut
    if method in WRITE_METHODS:
        codes[409] = ErrorOut
    if throttled:
        codes[429] = ErrorOut
    return dict(sorted(codes.items()))


class KetaflowAPI(NinjaAPI):
    def validation_error_from_error_contexts(self, error_contexts):
        """Ninja's errors with the location as the client wrote it.

        Ninja reads a JSON body into the view's parameter, so its locations start with that
        parameter's name (``body.body.weight_kg``); the client sent ``weight_kg``.
        """
        errors = []
        for context in error_contexts:
            single = getattr(context.model, "__read_from_single_attr__", None)
            for item in super().validation_error_from_error_contexts([context]).errors:
                loc = tuple(item["loc"])
                if single and loc[1:2] == (single,):
                    loc = loc[:1] + loc[2:]
                errors.append({**item, "loc": loc})
        return RequestValidationError(errors)

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        throttled = {
            self.get_openapi_operation_id(op) if op.operation_id is None else op.operation_id
            for bound in self._get_bound_routers()
            for path_view in bound.path_operations.values()
            for op in path_view.operations
            if op.throttle_objects
        }
        used = set()
        for methods in schema["paths"].values():
            for method, operation in methods.items():
                codes = error_responses(
                    method=method,
                    has_params=bool(operation.get("parameters")),
                    has_body="requestBody" in operation,
                    throttled=operation.get("operationId") in throttled,
                )
                responses = operation.setdefault("responses", {})
                for code, model in codes.items():
                    if code not in responses:
                        used.add(model)
                        responses[code] = {
                            "description": ERROR_DESCRIPTIONS[code],
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": f"#/components/schemas/{model.__name__}"}
                                }
                            },
                        }
                operation["responses"] = dict(sorted(responses.items(), key=lambda kv: int(kv[0])))
        definitions = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in sorted(used, key=lambda m: m.__name__):
            model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            definitions.update(model_schema.pop("$defs", {}))
            definitions.setdefault(model.__name__, model_schema)
        return schema


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


api = KetaflowAPI(
    title="ketaflow API",
    version="1",
    description=(
        "The JSON API of ketaflow. Every route applies the clinic's role matrix and records "
        "reads and writes in the audit trail. Every error is JSON: 400 malformed body, 401 not "
        "signed in, 403 not allowed, 404 not in your clinic, 409 conflict, 413 body too large, "
        "422 invalid field (each error names its field), 500 internal error (with the request "
        "id to quote; the details are in the server log)."
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


def validation_error_response(request, errors: list[dict], status: int = 422):
    """``ValidationErrorOut``: each error names its field; ``detail`` joins the messages."""
    return api.create_response(
        request,
        {"detail": "; ".join(e["message"] for e in errors), "errors": errors},
        status=status,
    )


@api.exception_handler(ValidationError)
def on_validation_error(request, exc: ValidationError):
    by_field = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
    errors = [
        {"field": _label(field), "message": f"{_label(field)}: {message}"}
        for field, messages in by_field.items()
        for message in messages
    ]
    return validation_error_response(request, errors)


def _client_path(loc) -> str:
    """Ninja's location (source first: body, query, path) as the client wrote it:
    ``("body", "readings", 1, "temperature")`` -> ``readings[1].temperature``."""
    path = ""
    for part in loc[1:]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or (str(loc[0]) if loc else "request")


@api.exception_handler(RequestValidationError)
def on_request_validation_error(request, exc: RequestValidationError):
    errors = []
    for item in exc.errors:
        field = _client_path(item.get("loc", ()))
        errors.append({"field": field, "message": f"{field}: {item.get('msg', 'invalid value')}"})
    return validation_error_response(request, errors)


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


@api.exception_handler(RequestDataTooBig)
def on_too_big(request, exc):
    return api.create_response(request, {"detail": "The request body is too large."}, status=413)


@api.exception_handler(SuspiciousOperation)
def on_suspicious(request, exc):
    return api.create_response(request, {"detail": "Malformed request."}, status=400)


def server_error_body(request) -> dict:
    request_id = getattr(request, "request_id", "") or ""
    return {
        "detail": f"Internal error: quote request id {request_id} to your administrator.",
        "request_id": request_id,
    }


@api.exception_handler(Exception)
def on_unhandled(request, exc):
    """A bug: logged with its traceback and the request id; the client sees only the id."""
    logger.error(
        "Unhandled error in %s %s (request %s)",
        request.method,
        request.path,
        getattr(request, "request_id", ""),
        exc_info=exc,
    )
    return api.create_response(request, server_error_body(request), status=500)


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def handler400(request, exception=None):
    """Django's error views, answering JSON under /api/ (errors raised outside a route)."""
    from django.views import defaults

    if _is_api(request):
        if isinstance(exception, RequestDataTooBig):
            return JsonResponse({"detail": "The request body is too large."}, status=413)
        return JsonResponse({"detail": "Malformed request."}, status=400)
    return defaults.bad_request(request, exception)


def handler404(request, exception=None):
    from django.views import defaults

    if _is_api(request):
        return JsonResponse({"detail": "No such API route."}, status=404)
    return defaults.page_not_found(request, exception)


def handler500(request):
    from django.views import defaults

    if _is_api(request):
        return JsonResponse(server_error_body(request), status=500)
    return defaults.server_error(request)


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
