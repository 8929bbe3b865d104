from django.urls import path

from ketaflow.tenancy import views

app_name = "tenancy"

urlpatterns = [
    path("choose/", views.choose_clinic, name="choose"),
    path("settings/", views.clinic_settings, name="settings"),
]
