import ipaddress
import re
import uuid

from django.conf import settings

from ketaflow.audit import context

# A request id a client (or the proxy) may choose; anything else is replaced by a new one.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _ip(value: str) -> str:
    value = value.strip()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return ""


def client_address(request) -> str:
    """The client's IP address, trusting only the proxies the operator declared.

    With N trusted proxies (KETAFLOW_TRUSTED_PROXIES) each appends the address it received
    from to X-Forwarded-For, so the client is the Nth entry from the right; entries further
    left were written by the client and are ignored. With 0, or when the header is shorter
    than N or that entry is not an IP address, REMOTE_ADDR.
    """
    remote = _ip(request.META.get("REMOTE_ADDR", ""))
    proxies = settings.KETAFLOW_TRUSTED_PROXIES
    if proxies > 0:
        hops = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if len(hops) >= proxies:
            forwarded = _ip(hops[-proxies])
            if forwarded:
                return forwarded
    return remote


def safe_request_id(request) -> str:
    incoming = request.headers.get("X-Request-ID", "")
    return incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex


class RequestContextMiddleware:
    """Give every request an id and remember its client for the audit trail."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = request_id = safe_request_id(request)
        token = context.set_current(
            context.RequestContext(
                request_id=request_id,
                client_address=client_address(request),
                user_agent=request.headers.get("User-Agent", "")[:300],
            )
        )
        try:
            response = self.get_response(request)
        finally:
            context.reset(token)
        response["X-Request-ID"] = request_id
        return response
