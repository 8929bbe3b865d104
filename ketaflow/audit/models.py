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
    # No single-column indexes on the foreign keys: every index below starts with the clinic,
    # and each extra index is one more B-tree to update on every append. Looking events up by
    # user or patient alone happens only when one is deleted (never: accounts are deactivated,
    # and events protect both), which then scans.
    clinic = models.ForeignKey(
        "tenancy.Clinic",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    actor = models.ForeignKey(
        "accounts.User",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    actor_label = models.CharField(max_length=254, blank=True)
    patient = models.ForeignKey(
        "patients.Patient",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
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
        # One index per filter and sort of the report (selectors.report), each ending in ``at``
        # so that the page's order comes straight from the index, in either direction.
        indexes = [
            models.Index(fields=["clinic", "at"]),  # all events; date ranges; the default sort
            models.Index(fields=["clinic", "actor", "at"]),  # user filter
            models.Index(fields=["clinic", "patient", "at"]),  # patient filter, Activity tab
            models.Index(fields=["clinic", "action", "at"]),  # action filter and sort
            models.Index(fields=["clinic", "object_type", "at"]),  # object filter and sort
            models.Index(fields=["clinic", "actor_label", "at"], name="audit_event_by_actor_label"),
            models.Index(fields=["clinic", "client_address", "at"], name="audit_event_by_address"),
            # Partial: only emergency-access reads are indexed, so other appends skip it.
            models.Index(
                fields=["clinic", "at"],
                condition=models.Q(emergency=True),
                name="audit_event_emergency",
            ),
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
    # Set when an append found this row missing, or behind the chain's stored events (deleted
    # or reset in the database): the append continued after the last stored event instead of
    # failing, and ``audit verify`` reports it from then on.
    repaired_from = models.PositiveBigIntegerField(null=True, blank=True)
    repaired_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.chain} at #{self.seq}"


class AuditAnchorMark(models.Model):
    """How long the anchor file was when last written (one row): lines cut from its end show.

    Only ever moves forwards; the anchor file itself lives outside the database
    (ketaflow.audit.anchor).
    """

    lines = models.PositiveBigIntegerField()
    mac = models.CharField(max_length=64)
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"anchor line {self.lines}"
