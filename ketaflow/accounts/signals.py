"""Signals other apps answer without accounts importing them."""

from django.dispatch import Signal

# Sent with ``user`` and ``reason`` when a user's credentials must end ("sign out everywhere",
# a password reset). Apps holding their own credentials for the user (scheduling's calendar
# feed tokens) revoke them and return ``{"name": count}`` for the audit event.
credentials_revoked = Signal()
