import base64
from functools import wraps

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice

from ketaflow.accounts import services
from ketaflow.accounts.forms import (
    AddMemberForm,
    CodeForm,
    EnrolForm,
    LoginForm,
    MembershipForm,
    ReauthForm,
    TokenForm,
)
from ketaflow.accounts.middleware import start_session
from ketaflow.accounts.models import ApiToken, Invitation
from ketaflow.audit.middleware import client_address
from ketaflow.tenancy.models import Membership
from ketaflow.web.decorators import clinic_required

NEUTRAL_FAILURE = (
    "Sign-in failed. Either the email or password is not right, or sign-in is paused for this "
    "account after repeated failures: wait 15 minutes or reset your password."
)
NEUTRAL_CODE_FAILURE = (
    "That code was not accepted. Enter the current code from your app, or a recovery code."
)
EXPIRED = {
    "idle": "You were signed out after a period of inactivity. Sign in again to continue where you were.",
    "lifetime": "Your session reached its maximum length. Sign in again to continue where you were.",
    "signed-out": "You were signed out everywhere. Sign in again to continue.",
}


THROTTLED = (
    "Too many attempts from your network in the last {minutes} minutes. Wait a few minutes, "
    "then try again."
)


def throttled(scope: str):
    """Refuse a POST with 429 once the client address used up its attempts (before hashing)."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method == "POST" and not services.allow_attempt(
                scope=scope, client_address=client_address(request)
            ):
                response = render(
                    request,
                    "accounts/throttled.html",
                    {"message": THROTTLED.format(minutes=settings.KETAFLOW_THROTTLE_MINUTES)},
                    status=429,
                )
                response["Retry-After"] = str(settings.KETAFLOW_THROTTLE_MINUTES * 60)
                return response
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def _next_url(request, default="web:today"):
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return reverse(default)


@require_http_methods(["GET", "POST"])
@throttled("sign-in")
def login_view(request):
    next_url = _next_url(request)
    if request.user.is_authenticated and request.user.is_verified():
        return redirect(next_url)
    form = LoginForm(request.POST if request.method == "POST" else None)
    expired = EXPIRED.get(request.GET.get("expired", ""))
    if request.method == "POST":
        if form.is_valid():
            email = form.cleaned_data["email"].lower()
            address = client_address(request)
            if services.is_locked(email):
                services.record_login_failure(email=email, client_address=address, stage="locked")
            else:
                user = authenticate(request, email=email, password=form.cleaned_data["password"])
                if user is not None:
                    login(request, user)
                    request.session.cycle_key()  # a new key whatever the session held before
                    start_session(request)
                    return redirect(reverse("accounts:mfa") + "?" + urlencode({"next": next_url}))
                services.record_login_failure(email=email, client_address=address, stage="password")
        form.add_error(None, NEUTRAL_FAILURE)
    return render(
        request, "accounts/login.html", {"form": form, "next": next_url, "expired": expired}
    )


@require_http_methods(["GET", "POST"])
@throttled("second-factor")
def mfa_view(request):
    """Second factor: a TOTP code or a one-time recovery code."""
    if not request.user.is_authenticated:
        return redirect("accounts:login")
    next_url = _next_url(request)
    user = request.user
    if user.is_verified():
        return redirect(next_url)
    totp = services.confirmed_totp(user)
    if totp is None:
        return redirect(reverse("accounts:mfa_enrol") + "?" + urlencode({"next": next_url}))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        code = form.cleaned_data["code"].strip().replace(" ", "").lower()
        if not services.is_locked(user.email):
            device, method = None, ""
            if totp.verify_token(code):
                device, method = totp, "totp"
            else:
                for static in StaticDevice.objects.filter(user=user, confirmed=True):
                    if static.verify_token(code):
                        device, method = static, "recovery-code"
                        break
            if device is not None:
                otp_login(request, device)
                request.session.cycle_key()  # fully signed in: never the half-signed key
                services.record_login(user=user, method=method)
                if method == "recovery-code":
                    messages.warning(request, "You used a recovery code. Each code works once.")
                elif services.recovery_codes_revoked(user):
                    # A password reset revoked the codes: new ones, shown once.
                    codes = services.issue_recovery_codes(user=user, reason="password-reset")
                    return render(
                        request, "accounts/recovery_codes.html", {"codes": codes, "next": next_url}
                    )
                return redirect(next_url)
        locked = services.record_login_failure(
            email=user.email, client_address=client_address(request), stage="second-factor"
        )
        if locked:
            logout(request)
            messages.error(request, NEUTRAL_FAILURE)
            return redirect("accounts:login")
        form.add_error("code", NEUTRAL_CODE_FAILURE)
    return render(request, "accounts/mfa.html", {"form": form, "next": next_url})


@require_http_methods(["GET", "POST"])
@throttled("second-factor")
def mfa_enrol_view(request):
    """Set up an authenticator app (QR code or typed key), then show recovery codes once."""
    if not request.user.is_authenticated:
        return redirect("accounts:login")
    user = request.user
    next_url = _next_url(request)
    if services.confirmed_totp(user) is not None:
        return redirect(reverse("accounts:mfa") + "?" + urlencode({"next": next_url}))
    device = services.pending_totp_device(user)
    form = EnrolForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            codes = services.confirm_totp_enrolment(
                user=user, device=device, code=form.cleaned_data["code"]
            )
        except ValidationError as exc:
            form.add_error("code", exc.message_dict["code"][0])
        else:
            otp_login(request, device)
            request.session.cycle_key()
            services.record_login(user=user, method="totp-enrolment")
            return render(
                request, "accounts/recovery_codes.html", {"codes": codes, "next": next_url}
            )
    secret = base64.b32encode(device.bin_key).decode()
    qr = segno.make(device.config_url, error="m").svg_data_uri(scale=5, border=2)
    return render(
        request,
        "accounts/mfa_enrol.html",
        {
            "form": form,
            "qr": qr,
            "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            "next": next_url,
        },
    )


@require_POST
def logout_view(request):
    if request.user.is_authenticated:
        services.record_logout(user=request.user, everywhere=request.POST.get("everywhere") == "1")
    logout(request)
    messages.info(request, "You are signed out.")
    return redirect("accounts:login")


@login_required
@require_http_methods(["GET", "POST"])
def account_view(request):
    """The user's own page: memberships, invitations, second factor, recovery codes, tokens.

    Reached only with both sign-in steps done (SessionLimitsMiddleware). New recovery codes
    also ask for the password again: a borrowed, unlocked screen must not yield a second factor.
    """
    which = request.POST.get("form") if request.method == "POST" else None
    form = TokenForm(request.POST if which == "token" else None)
    reauth = ReauthForm(request.POST if which == "recovery" else None)
    new_token = codes = None
    if which == "token":
        if request.clinic is None:
            return redirect("tenancy:choose")
        if form.is_valid():
            try:
                _, new_token = services.create_api_token(
                    user=request.user, clinic=request.clinic, **form.cleaned_data
                )
                form = TokenForm()
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
    elif which == "recovery" and reauth.is_valid():
        if services.is_locked(request.user.email):
            reauth.add_error("password", "Sign-in is paused for this account: try again later.")
        elif request.user.check_password(reauth.cleaned_data["password"]):
            codes = services.issue_recovery_codes(user=request.user, reason="asked")
            reauth = ReauthForm()
        else:
            services.record_login_failure(
                email=request.user.email,
                client_address=client_address(request),
                stage="re-authentication",
            )
            reauth.add_error("password", "That is not your password.")
    tokens = ApiToken.objects.filter(user=request.user).select_related("clinic")
    return render(
        request,
        "accounts/account.html",
        {
            "form": form,
            "reauth": reauth,
            "tokens": tokens,
            "new_token": new_token,
            "codes": codes,
            "invitations": services.open_invitations(request.user),
        },
    )


@login_required
@require_POST
def invitation_view(request, pk, answer):
    invitation = services.open_invitations(request.user).filter(pk=pk).first()
    if invitation is None:
        messages.error(request, "This invitation was answered, has expired or is not yours.")
        return redirect("accounts:account")
    accept = answer == "accept"
    try:
        services.answer_invitation(user=request.user, invitation=invitation, accept=accept)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        if accept:
            messages.success(request, f"You are a member of {invitation.clinic.name} now.")
        else:
            messages.info(request, f"You declined the invitation of {invitation.clinic.name}.")
    return redirect("accounts:account")


@login_required
@require_POST
def revoke_token_view(request, pk):
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    services.revoke_api_token(user=request.user, token=token)
    messages.info(request, f"Token {token.name} is revoked.")
    return redirect("accounts:account")


@clinic_required("users.manage")
def users_view(request):
    memberships = (
        Membership.objects.filter(clinic=request.clinic)
        .select_related("user")
        .prefetch_related("locations")
    )
    invitations = Invitation.objects.filter(
        clinic=request.clinic,
        accepted_at__isnull=True,
        declined_at__isnull=True,
        expires_at__gt=timezone.now(),
    )
    return render(
        request, "accounts/users.html", {"memberships": memberships, "invitations": invitations}
    )


@clinic_required("users.manage")
@require_POST
def invitation_withdraw_view(request, pk):
    invitation = get_object_or_404(Invitation, pk=pk, clinic=request.clinic)
    try:
        services.withdraw_invitation(actor=request.user, invitation=invitation)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.info(request, f"The invitation of {invitation.email} is withdrawn.")
    return redirect("accounts:users")


@clinic_required("users.manage")
@require_http_methods(["GET", "POST"])
def member_edit_view(request, pk):
    membership = get_object_or_404(
        Membership.objects.select_related("user"), pk=pk, clinic=request.clinic
    )
    initial = {
        "roles": membership.roles,
        "locations": membership.locations.all(),
        "is_active": membership.is_active,
    }
    form = MembershipForm(request.POST or None, initial=initial, clinic=request.clinic)
    if request.method == "POST" and form.is_valid():
        try:
            services.change_membership(
                actor=request.user, membership=membership, **form.cleaned_data
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, f"Saved the roles of {membership.user}.")
            return redirect("accounts:users")
    return render(request, "accounts/member_edit.html", {"form": form, "membership": membership})


@clinic_required("users.manage")
@require_http_methods(["GET", "POST"])
def member_add_view(request):
    form = AddMemberForm(request.POST or None, clinic=request.clinic)
    if request.method == "POST" and form.is_valid():
        try:
            membership, password, invitation = services.add_member(
                actor=request.user, clinic=request.clinic, **form.cleaned_data
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            return render(
                request,
                "accounts/member_added.html",
                {"membership": membership, "password": password, "invitation": invitation},
            )
    return render(request, "accounts/member_add.html", {"form": form})


@method_decorator(throttled("password-reset"), name="dispatch")
class PasswordResetView(auth_views.PasswordResetView):
    """Reset by email; the link is built from KETAFLOW_PUBLIC_URL, never the request's Host."""

    template_name = "accounts/password_reset.html"
    email_template_name = "accounts/password_reset_email.txt"
    subject_template_name = "accounts/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")

    def form_valid(self, form):
        self.extra_email_context = {"public_url": settings.PUBLIC_URL}
        return super().form_valid(form)


@method_decorator(throttled("password-reset"), name="dispatch")
class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """The new password unlocks sign-in and ends the old sessions and credentials (audited)."""

    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def form_valid(self, form):
        with transaction.atomic():
            response = super().form_valid(form)
            services.password_reset_completed(user=form.user)
        return response
