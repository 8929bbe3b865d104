from importlib.util import find_spec

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from ketaflow.api import api
from ketaflow.web import views as web_views

handler403 = "ketaflow.web.views.permission_denied"
# Under /api/ these answer JSON (ketaflow.api); elsewhere Django's pages.
handler400 = "ketaflow.api.handler400"
handler404 = "ketaflow.api.handler404"
handler500 = "ketaflow.api.handler500"

# The admin signs in through ketaflow's own sign-in (throttling, two-step, audit).
admin.site.login = RedirectView.as_view(pattern_name="accounts:login", query_string=True)

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="web:today", permanent=False)),
    path("today/", include("ketaflow.web.urls")),
    path("accounts/", include("ketaflow.accounts.urls")),
    path("clinic/", include("ketaflow.tenancy.urls")),
    path("patients/", include("ketaflow.patients.urls")),
    path("audit/", include("ketaflow.audit.urls")),
    *[
        path(f"{name}/", include(f"ketaflow.{name}.urls"))
        for name in settings.DOMAIN_APPS
        if f"ketaflow.{name}" in settings.INSTALLED_APPS and find_spec(f"ketaflow.{name}.urls")
    ],
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
    path("healthz", web_views.healthz, name="healthz"),
]
