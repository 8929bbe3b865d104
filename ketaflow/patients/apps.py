from django.apps import AppConfig


class PatientsConfig(AppConfig):
    name = "ketaflow.patients"
    label = "patients"
    verbose_name = "Patients"
