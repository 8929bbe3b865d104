from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "ketaflow.tenancy"
    label = "tenancy"
    verbose_name = "Clinics and locations"
