from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect

from ketaflow.accounts.permissions import require_permission


def clinic_required(action: str | None = None):
    """Signed in (with MFA, enforced by middleware), a clinic chosen, and ``action`` allowed."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if request.clinic is None:
                return redirect("tenancy:choose")
            if action is not None:
                require_permission(request.user, action, request.clinic)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
