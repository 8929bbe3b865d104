from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from ketaflow.tenancy import services
from ketaflow.tenancy.forms import ClinicSettingsForm
from ketaflow.tenancy.middleware import SESSION_KEY
from ketaflow.web.decorators import clinic_required


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


@clinic_required("clinic.settings")
@require_http_methods(["GET", "POST"])
def clinic_settings(request):
    """The owner's page for the clinic's own settings, each shown with its default and source."""
    form = ClinicSettingsForm(request.POST or None, instance=request.clinic)
    if request.method == "POST":
        try:
            services.update_clinic_settings(
                clinic=request.clinic, actor=request.user, data=request.POST
            )
        except ValidationError:
            form.is_valid()
        else:
            messages.success(request, "Clinic settings saved.")
            return redirect("tenancy:settings")
    return render(
        request, "tenancy/settings.html", {"form": form, "app_settings": app_settings_pages()}
    )


# An app's own settings page is the URL named "<app label>:settings" (intake's is its
# eligibility rules); the clinic settings page links to every installed one.
SETTINGS_URL_NAMES = ("settings", "eligibility_settings")


def app_settings_pages() -> list[tuple[str, str]]:
    """(app name, URL) of every installed domain app's settings page, in flow order."""
    from django.apps import apps
    from django.conf import settings
    from django.urls import NoReverseMatch, reverse

    pages = []
    for name in settings.DOMAIN_APPS:
        if not apps.is_installed(f"ketaflow.{name}"):
            continue
        for url_name in SETTINGS_URL_NAMES:
            try:
                url = reverse(f"{name}:{url_name}")
            except NoReverseMatch:
                continue
            pages.append((apps.get_app_config(name).verbose_name, url))
            break
    return pages
