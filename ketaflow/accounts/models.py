"""Staff users, personal API tokens, sign-in throttling and emergency access grants."""

import hashlib
import secrets

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.utils import timezone


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email, password=None, **extra):
        if not email:
            raise ValueError("email: an email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in. Roles come from their clinic memberships, not from here."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200)
    credentials = models.CharField(max_length=60, blank=True, help_text="e.g. MD, RN, LCSW")
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="May use the Django admin.")
    date_joined = models.DateTimeField(default=timezone.now)
    # Raised by "sign out everywhere": every session started before is refused.
    session_epoch = models.PositiveIntegerField(default=0)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["full_name"]

    class Meta:
        ordering = ["full_name"]

    def __str__(self) -> str:
        return self.full_name or self.email

    def get_full_name(self) -> str:
        return self.full_name

    def get_short_name(self) -> str:
        return self.full_name.split(" ")[0] if self.full_name else self.email


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(models.Model):
    """A personal API token. Only its SHA-256 is stored; the token is shown once."""

    SCOPE_READ = "read"
    SCOPE_READ_WRITE = "read-write"
    SCOPES = [(SCOPE_READ, "Read only"), (SCOPE_READ_WRITE, "Read and write")]

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    clinic = models.ForeignKey("tenancy.Clinic", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    scope = models.CharField(max_length=12, choices=SCOPES, default=SCOPE_READ)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def generate() -> str:
        return "kf_" + secrets.token_urlsafe(32)

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class LoginFailure(models.Model):
    """One failed sign-in attempt, for throttling. Holds no password."""

    email = models.CharField(max_length=254, db_index=True)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    # Set on the failure that reached the limit: sign-in for this email is refused until then.
    # Attempts while locked add no row, so they never extend the lock.
    locked_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"failed sign-in for {self.email} at {self.at:%Y-%m-%d %H:%M}"


class SignInAttempt(models.Model):
    """One POST to a sign-in, second-factor or password-reset page, for the per-address limit.

    Holds a keyed hash of the client address (never the address itself) and the time; rows
    older than the window (of any address) are deleted as new ones arrive.
    """

    scope = models.CharField(max_length=20)
    address_hash = models.CharField(max_length=64)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["scope", "address_hash", "at"], name="signin_attempt_by_addr")
        ]

    def __str__(self) -> str:
        return f"{self.scope} attempt at {self.at:%Y-%m-%d %H:%M:%S}"


class Invitation(models.Model):
    """An owner's offer of a membership to someone who already has a ketaflow account.

    The membership exists only once the invited person accepts it while signed in (both
    steps), so no clinic can attach another clinic's staff member, or see their sign-ins,
    on its own.
    """

    clinic = models.ForeignKey("tenancy.Clinic", on_delete=models.CASCADE, related_name="+")
    email = models.EmailField()
    roles = models.JSONField(default=list)
    locations = models.ManyToManyField("tenancy.Location", blank=True, related_name="+")
    invited_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    declined_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["email", "expires_at"], name="invitation_by_email")]

    def __str__(self) -> str:
        return f"invitation of {self.email}"

    @property
    def is_open(self) -> bool:
        return (
            self.accepted_at is None
            and self.declined_at is None
            and self.expires_at > timezone.now()
        )


class EmergencyAccess(models.Model):
    """A time-limited, reasoned grant to open one chart outside one's normal scope."""

    clinic = models.ForeignKey("tenancy.Clinic", on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="emergency_grants")
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    started_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["user", "patient", "expires_at"])]

    def __str__(self) -> str:
        return f"emergency access by {self.user} until {self.expires_at:%Y-%m-%d %H:%M}"

    @property
    def is_active(self) -> bool:
        return self.expires_at > timezone.now()
