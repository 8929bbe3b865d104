from django.contrib import admin

from ketaflow.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the application offers no way to change or delete audit events."""

    list_display = [
        "seq",
        "chain",
        "at",
        "actor_label",
        "action",
        "object_type",
        "object_id",
        "emergency",
    ]
    list_filter = ["action", "emergency"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
