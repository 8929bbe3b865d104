"""TOTP codes for the demo's pre-enrolled users (RFC 6238, as django-otp computes them)."""

import base64
import time

from django_otp.oath import TOTP


def current_code(secret_b32: str, at: float | None = None) -> str:
    key = base64.b32decode(secret_b32.replace(" ", "").upper())
    totp = TOTP(key, step=30, digits=6)
    totp.time = at if at is not None else time.time()
    return f"{totp.token():06d}"
