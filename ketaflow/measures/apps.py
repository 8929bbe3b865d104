from django.apps import AppConfig


class MeasuresConfig(AppConfig):
    name = "ketaflow.measures"
    label = "measures"
    verbose_name = "Measures"

    def ready(self):
        from ketaflow.measures import hooks

        hooks.register()
