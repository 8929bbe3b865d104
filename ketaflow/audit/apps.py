from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "ketaflow.audit"
    label = "audit"
    verbose_name = "Audit trail"
