from django.apps import AppConfig


class TherapyConfig(AppConfig):
    name = "ketaflow.therapy"
    label = "therapy"
    verbose_name = "Therapy (KAP) and integrated care"

    def ready(self):
        from ketaflow.therapy import hooks

        hooks.register()
