from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "ketaflow.web"
    label = "web"
    verbose_name = "Web shell"

    def ready(self):
        from ketaflow.web import checks  # noqa: F401  (registers the deployment checks)
