"""The append-only, hash-chained audit trail (ONC 170.315(d)(2), (d)(3), (d)(10))."""

from django.db import models


class AppendOnlyError(Exception):
    """Raised on any attempt to change or delete an audit event through the application."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("Audit events cannot be changed.")

    def delete(self):
        raise AppendOnlyError("Audit events cannot be deleted.")

    def for_clinic(self, clinic):
        return self.filter(clinic=clinic) if clinic is not None else self.none()


class Action(models.TextChoices):
    CREATE = "create"
    READ = "read"
    UPDATE = "update"
    DELETE = "delete"
    SIGN = "sign"
    EXPORT = "export"
    PRINT = "print"
    LOGIN = "login"
    LOGOUT = "logout"
    LOGIN_FAILED = "login-failed"
    LOCKOUT = "lockout"
    PERMISSION_CHANGE = "permission-change"
    EMERGENCY_ACCESS = "emergency-access"


class AuditEvent(models.Model):
    """One event. ``hash`` covers every field and the previous event's hash in its chain."""

    chain = models.CharField(
        max_length=40, help_text="clinic:<id>, or 'global' for events of no clinic"
    )
    seq = models.PositiveBigIntegerField()
    clinic = models.ForeignKey(
        "tenancy.Clinic", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=254, blank=True)
    patient = models.ForeignKey(
        "patients.Patient", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=20, choices=Action.choices)
    object_type = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    at = models.DateTimeField()
    client_address = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    emergency = models.BooleanField(default=False)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["chain", "seq"], name="uniq_audit_chain_seq")
        ]
        indexes = [
            models.Index(fields=["clinic", "at"]),
            models.Index(fields=["clinic", "actor", "at"]),
            models.Index(fields=["clinic", "patient", "at"]),
            models.Index(fields=["clinic", "action", "at"]),
            models.Index(fields=["clinic", "object_type", "at"]),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type} {self.object_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None or kwargs.get("force_update"):
            raise AppendOnlyError("Audit events cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit events cannot be deleted.")


class AuditChainHead(models.Model):
    """The last sequence number and hash of each chain; locked while appending."""

    chain = models.CharField(max_length=40, unique=True)
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"{self.chain} at #{self.seq}"
