"""pytest plugin (``-p ketaflow.testing.env``): test-run environment, set before Django loads settings."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

os.environ.setdefault("KETAFLOW_VAR_DIR", str(ROOT / "var" / "test"))
os.environ.setdefault("KETAFLOW_HTTPS", "0")
os.environ.setdefault("KETAFLOW_FAST_PASSWORD_HASHING", "1")
os.environ.setdefault("KETAFLOW_STATIC_MANIFEST", "0")
os.environ.setdefault("KETAFLOW_EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
os.environ.setdefault("KETAFLOW_TASKS_BACKEND", "django.tasks.backends.immediate.ImmediateBackend")
os.environ.setdefault(
    "DJANGO_ALLOW_ASYNC_UNSAFE", "true"
)  # Playwright's sync API runs an event loop
