from django.contrib.auth.backends import ModelBackend

from ketaflow.accounts.models import User


class EmailBackend(ModelBackend):
    """Sign in by email, case-insensitively; runs the hasher even for unknown emails."""

    def authenticate(self, request, username=None, password=None, email=None, **kwargs):
        email = (email or username or "").strip().lower()
        if not email or password is None:
            return None
        try:
            user = User.objects.get(email=email)
        except User.DoesNotExist:
            User().set_password(password)  # same work as a real check: no timing oracle
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
