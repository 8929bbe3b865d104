"""ketaflow settings: one module, every knob from the environment.

See docs/operations.md for the list of environment variables.
"""

import os

from django.utils.csp import CSP

from ketaflow import config

BASE_DIR = config.BASE_DIR
VAR_DIR = config.var_dir()

DEBUG = config.env_bool("KETAFLOW_DEBUG", False)
SECRET_KEY = config.secret_key(VAR_DIR)
ALLOWED_HOSTS = config.env_list("KETAFLOW_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = config.env_list("KETAFLOW_CSRF_TRUSTED_ORIGINS", "")
# Where patients and staff reach this server: every link in an email (password resets,
# questionnaire links, reminders) is built from it, never from a request's Host header.
# `ketaflow check` fails in production while it is unset.
PUBLIC_URL_SET = bool(os.environ.get("KETAFLOW_PUBLIC_URL", "").strip())
PUBLIC_URL = os.environ.get("KETAFLOW_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")

# Served over HTTPS in production: secure cookies and HSTS follow this switch.
HTTPS = config.env_bool("KETAFLOW_HTTPS", not DEBUG)

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.admin",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_htmx",
    "django_tasks_db",
    "ninja",
    "ketaflow.web",
    "ketaflow.tenancy",
    "ketaflow.accounts",
    "ketaflow.audit",
    "ketaflow.patients",
]
# Clinical domain apps, in flow order. Each is installed once its package exists, so a new
# domain is added by creating ketaflow/<name>/ (apps.py, urls.py, api.py, demo.py are found
# by the hooks in urls.py, api.py and web/demo.py).
DOMAIN_APPS = config.env_list(
    # Development only: limit the installed domain apps, e.g. while another one is half-built.
    "KETAFLOW_DOMAIN_APPS",
    "measures,intake,plans,scheduling,treatment,therapy,outcomes,interop,education",
)
INSTALLED_APPS += [
    f"ketaflow.{name}"
    for name in DOMAIN_APPS
    if (BASE_DIR / "ketaflow" / name / "apps.py").exists()
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "ketaflow.web.middleware.BadInputMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "ketaflow.audit.middleware.RequestContextMiddleware",
    "ketaflow.accounts.middleware.PrivateCacheMiddleware",
    "ketaflow.accounts.middleware.SessionLimitsMiddleware",
    "ketaflow.tenancy.middleware.CurrentClinicMiddleware",
]

# Request bodies: ketaflow.web.bounds.MAX_BODY_BYTES (BadInputMiddleware answers 413 above it).
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

ROOT_URLCONF = "ketaflow.urls"
FORM_RENDERER = "ketaflow.web.forms.Renderer"
WSGI_APPLICATION = "ketaflow.wsgi.application"
ASGI_APPLICATION = "ketaflow.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "ketaflow.tenancy.context_processors.clinic",
            ],
        },
    }
]

DATABASES = {"default": config.database(VAR_DIR)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["ketaflow.accounts.backends.EmailBackend"]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
if config.env_bool("KETAFLOW_FAST_PASSWORD_HASHING", False):
    # Test runs only: Argon2 is deliberately slow. Never set this in production.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PASSWORD_HASHERS]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
CSRF_FAILURE_VIEW = "ketaflow.web.views.csrf_failure"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "web:today"
LOGOUT_REDIRECT_URL = "accounts:login"

# Sessions: an absolute lifetime (default 12 h) here; the idle timeout is a clinic setting
# enforced by ketaflow.accounts.middleware.SessionLimitsMiddleware.
SESSION_COOKIE_AGE = int(os.environ.get("KETAFLOW_SESSION_MAX_AGE_SECONDS", 12 * 3600))
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and config.env_bool("KETAFLOW_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS and config.env_bool("KETAFLOW_HSTS_PRELOAD", False)
# Preloading HSTS is a permanent, domain-wide commitment the operator makes (KETAFLOW_HSTS_PRELOAD=1);
# ketaflow does not require it, so `ketaflow check` does not warn about it.
SILENCED_SYSTEM_CHECKS = ["security.W021"]
BEHIND_PROXY = config.env_bool("KETAFLOW_BEHIND_PROXY", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_PROXY else None
# How many reverse proxies append to X-Forwarded-For in front of ketaflow: the client address
# is the Nth entry from the right (entries further left are whatever the client sent).
# 0 uses REMOTE_ADDR. Default: 1 behind a proxy (KETAFLOW_BEHIND_PROXY), else 0.
KETAFLOW_TRUSTED_PROXIES = config.env_int("KETAFLOW_TRUSTED_PROXIES", 1 if BEHIND_PROXY else 0)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Content Security Policy: no inline script anywhere; scripts and styles are local files.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
# Production serves collected, fingerprinted files; the demo and the tests serve them from the apps.
STATIC_MANIFEST = config.env_bool("KETAFLOW_STATIC_MANIFEST", not DEBUG)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if STATIC_MANIFEST
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST
WHITENOISE_AUTOREFRESH = DEBUG

_EMAIL_BACKEND = os.environ.get(
    "KETAFLOW_EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
MAILERS = {
    "default": {
        "BACKEND": _EMAIL_BACKEND,
        "OPTIONS": (
            {
                "host": os.environ.get("KETAFLOW_EMAIL_HOST", "localhost"),
                "port": int(os.environ.get("KETAFLOW_EMAIL_PORT", "25")),
                "use_tls": config.env_bool("KETAFLOW_EMAIL_TLS", False),
                "use_ssl": config.env_bool("KETAFLOW_EMAIL_SSL", False),
                "username": os.environ.get("KETAFLOW_EMAIL_USER", ""),
                "password": os.environ.get("KETAFLOW_EMAIL_PASSWORD", ""),
            }
            if _EMAIL_BACKEND.endswith("smtp.EmailBackend")
            else {}
        ),
    }
}
DEFAULT_FROM_EMAIL = os.environ.get("KETAFLOW_FROM_EMAIL", "ketaflow@localhost")

TASKS = {
    "default": {
        "BACKEND": os.environ.get("KETAFLOW_TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default"],
    }
}

OTP_TOTP_ISSUER = "ketaflow"

# Logs carry request ids and status codes, never patient data (URLs hold only opaque ids).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("KETAFLOW_LOG_LEVEL", "WARNING")},
}

# Security knobs with their defaults (per-clinic values live on the Clinic model).
KETAFLOW_LOGIN_MAX_FAILURES = int(os.environ.get("KETAFLOW_LOGIN_MAX_FAILURES", "5"))
KETAFLOW_LOGIN_LOCKOUT_MINUTES = int(os.environ.get("KETAFLOW_LOGIN_LOCKOUT_MINUTES", "15"))
# Per client address: POSTs to sign-in, the second step and password reset (each counted
# apart) within a sliding window; more are answered 429 before any password is hashed.
KETAFLOW_THROTTLE_ATTEMPTS = config.env_int("KETAFLOW_THROTTLE_ATTEMPTS", 30, minimum=1)
KETAFLOW_THROTTLE_MINUTES = config.env_int("KETAFLOW_THROTTLE_MINUTES", 5, minimum=1)

# --- Audit trail anchor (docs/security.md, "Audit trail integrity") --------------------------
# The audit key keys every event's hash and every anchor line: KETAFLOW_AUDIT_KEY (at least 32
# characters, read by ketaflow.audit.anchor, never stored in settings), or a key generated once
# into KETAFLOW_AUDIT_KEY_FILE with mode 600. Keep it out of database backups and back it up
# on its own: a trail cannot be verified without the key that wrote it.
KETAFLOW_AUDIT_KEY_FILE = os.environ.get("KETAFLOW_AUDIT_KEY_FILE", "") or str(
    VAR_DIR / "audit_key"
)
# The append-only anchor file (checkpoints of every chain's end); copy it off the host.
KETAFLOW_AUDIT_ANCHOR = os.environ.get("KETAFLOW_AUDIT_ANCHOR", "") or str(
    VAR_DIR / "audit-anchor" / "anchor.jsonl"
)
# Besides `ketaflow audit_tick` (cron), each chain is also checkpointed after every Nth event
# (0: only the periodic checkpoint).
KETAFLOW_AUDIT_CHECKPOINT_EVERY = int(os.environ.get("KETAFLOW_AUDIT_CHECKPOINT_EVERY", "1000"))
