from django.apps import AppConfig


class PlansConfig(AppConfig):
    name = "ketaflow.plans"
    label = "plans"
    verbose_name = "Treatment plans"

    def ready(self):
        from ketaflow.patients import chart
        from ketaflow.plans import views

        chart.section("plan")(views.plan_chart_section)
