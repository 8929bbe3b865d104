from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "ketaflow.scheduling"
    label = "scheduling"
    verbose_name = "Scheduling"

    def ready(self):
        from ketaflow.scheduling import views
        from ketaflow.web import dashboard, navigation

        navigation.item(
            "Calendar", "scheduling:week", action="schedule.view", order=30, namespace="scheduling"
        )
        dashboard.panel(order=10)(views.today_panel)
