from django.utils import timezone

from ketaflow.accounts.permissions import membership_for

SESSION_KEY = "kf_clinic_id"


class CurrentClinicMiddleware:
    """Set ``request.clinic`` and ``request.membership`` from the session.

    A user with one clinic gets it; a user with several picks one explicitly
    (the choice is kept in the session and always shown in the header).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.clinic = None
        request.membership = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not hasattr(request, "api_token"):
            memberships = list(user.memberships.filter(is_active=True).select_related("clinic"))
            chosen = request.session.get(SESSION_KEY)
            membership = next((m for m in memberships if m.clinic_id == chosen), None)
            if membership is None and len(memberships) == 1:
                membership = memberships[0]
                request.session[SESSION_KEY] = membership.clinic_id
            if membership is not None:
                request.clinic = membership.clinic
                request.membership = membership_for(user, membership.clinic)
            request.user_clinics = [m.clinic for m in memberships]
        if request.clinic is not None:
            timezone.activate(request.clinic.tz)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
