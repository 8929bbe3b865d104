"""Request-level input gate: body size, NUL and lone surrogates (see ``web.bounds``).

* A body larger than ``bounds.MAX_BODY_BYTES`` (by its Content-Length, or as read) answers
  413, as JSON under /api/ and as a short page elsewhere, before any view reads it.
* Text that no column can hold or no page can print is refused before it reaches a view: a
  NUL character (PostgreSQL refuses it in text) anywhere in the path, the query string or a
  form field, and a NUL or an unpaired UTF-16 surrogate (``"\\ud800"``, legal as a JSON escape
  but not encodable as UTF-8) in a JSON body's keys or strings. The API answers 422 with the
  field named (``{"detail", "errors": [{"field", "message"}]}``, like every other 422); the
  web answers 400.
"""

from __future__ import annotations

import json

from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse, JsonResponse

from ketaflow.web import bounds

API_PREFIX = "/api/"


def _too_large(request):
    message = (
        f"The request body is larger than the {bounds.MAX_BODY_BYTES // 1024} KiB this server "
        "accepts."
    )
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"detail": message}, status=413)
    return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")


def _refused(request, field: str, rule: str, status_web: int = 400):
    message = f"{field}: {rule}"
    if request.path.startswith(API_PREFIX):
        return JsonResponse(
            {"detail": message, "errors": [{"field": field, "message": message}]}, status=422
        )
    return HttpResponse(
        f"Refused: {message}.", status=status_web, content_type="text/plain; charset=utf-8"
    )


def _walk(value, path: str):
    """(field path, rule) of the first bad string in a parsed JSON value, or None."""
    if isinstance(value, str):
        rule = bounds.bad_text(value)
        return (path or "body", rule) if rule else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if rule := bounds.bad_text(key):
                return ((path or "body") + " (a key)", rule)
            if found := _walk(item, where):
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if found := _walk(item, f"{path}[{i}]"):
                return found
    return None


class BadInputMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > bounds.MAX_BODY_BYTES:
            return _too_large(request)
        if "\x00" in request.path:
            return _refused(request, "path", "must not contain NUL characters", 404)
        for key, values in request.GET.lists():
            for value in [key, *values]:
                if rule := bounds.bad_text(value):
                    return _refused(request, key, rule)
        content_type = request.content_type or ""
        try:
            if request.method in ("POST", "PUT", "PATCH", "DELETE"):
                form = content_type in ("application/x-www-form-urlencoded", "multipart/form-data")
                if content_type == "application/json" or (
                    request.path.startswith(API_PREFIX) and not form
                ):
                    found = self._check_json(request.body)
                    if found:
                        return _refused(request, *found)
                elif form:
                    for key, values in request.POST.lists():
                        for value in [key, *values]:
                            if rule := bounds.bad_text(value):
                                return _refused(request, key, rule)
        except RequestDataTooBig:
            return _too_large(request)
        return self.get_response(request)

    @staticmethod
    def _check_json(body: bytes):
        if not body:
            return None
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return None  # malformed JSON: the API's own parser answers 400
        return _walk(data, "")
