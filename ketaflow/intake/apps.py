from django.apps import AppConfig


class IntakeConfig(AppConfig):
    name = "ketaflow.intake"
    label = "intake"
    verbose_name = "Intake"

    def ready(self) -> None:
        from ketaflow.intake import hooks  # noqa: F401  (registers chart, dashboard, navigation)
