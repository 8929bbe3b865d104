from django.apps import AppConfig


class EducationConfig(AppConfig):
    name = "ketaflow.education"
    label = "education"
    verbose_name = "Patient education"
