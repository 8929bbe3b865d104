from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "ketaflow.scheduling"
    label = "scheduling"
    verbose_name = "Scheduling"

    def ready(self):
        from ketaflow.accounts.signals import credentials_revoked
        from ketaflow.scheduling import services, views
        from ketaflow.web import dashboard, navigation

        credentials_revoked.connect(
            services.revoke_feed_tokens, dispatch_uid="scheduling.revoke_feed_tokens"
        )

        navigation.item(
            "Calendar", "scheduling:week", action="schedule.view", order=30, namespace="scheduling"
        )
        dashboard.panel(order=10)(views.today_panel)
