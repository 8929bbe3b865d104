from django.contrib import messages
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from ketaflow.tenancy.middleware import SESSION_KEY


@require_http_methods(["GET", "POST"])
def choose_clinic(request):
    """Pick the clinic to work in (users who belong to several)."""
    if not request.user.is_authenticated:
        return redirect("accounts:login")
    clinics = getattr(request, "user_clinics", [])
    if request.method == "POST":
        try:
            clinic_id = int(request.POST.get("clinic", ""))
        except ValueError:
            return HttpResponseBadRequest("clinic: choose one of your clinics.")
        chosen = next((c for c in clinics if c.pk == clinic_id), None)
        if chosen is None:
            return HttpResponseBadRequest("clinic: choose one of your clinics.")
        request.session[SESSION_KEY] = chosen.pk
        messages.info(request, f"You are now working in {chosen.name}.")
        target = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
            target = "web:today"
        return redirect(target)
    return render(request, "tenancy/choose_clinic.html", {"clinics": clinics})
