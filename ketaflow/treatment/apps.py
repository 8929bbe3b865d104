from django.apps import AppConfig


class TreatmentConfig(AppConfig):
    name = "ketaflow.treatment"
    label = "treatment"
    verbose_name = "Treatment day"

    def ready(self):
        from ketaflow.treatment import hooks

        hooks.register()
