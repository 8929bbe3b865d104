from django import forms

from ketaflow.accounts.models import ApiToken
from ketaflow.accounts.roles import ROLE_CHOICES
from ketaflow.web import bounds


class LoginForm(bounds.BoundedForm):
    email = forms.EmailField(
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        max_length=4096, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


class CodeForm(bounds.BoundedForm):
    code = forms.CharField(
        label="Code",
        max_length=20,
        help_text="The 6-digit code from your authenticator app, or one of your recovery codes.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True}
        ),
    )


class ReauthForm(bounds.BoundedForm):
    password = forms.CharField(
        label="Your password",
        max_length=4096,
        help_text="Asked again before new recovery codes are made.",
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class EnrolForm(bounds.BoundedForm):
    code = forms.CharField(
        label="6-digit code",
        max_length=8,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


class TokenForm(bounds.BoundedForm):
    name = forms.CharField(
        max_length=100, help_text="What uses this token, for example 'outcomes export script'."
    )
    scope = forms.ChoiceField(choices=ApiToken.SCOPES)
    days = forms.IntegerField(label="Expires after (days)", min_value=1, max_value=365, initial=90)


class MembershipForm(bounds.BoundedForm):
    roles = forms.MultipleChoiceField(choices=ROLE_CHOICES, widget=forms.CheckboxSelectMultiple)
    locations = forms.ModelMultipleChoiceField(
        queryset=None,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Leave all unticked to work at every location.",
    )
    is_active = forms.BooleanField(required=False, label="Active member", initial=True)

    def __init__(self, *args, clinic, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["locations"].queryset = clinic.locations.all()


class AddMemberForm(MembershipForm):
    email = forms.EmailField(max_length=254)
    full_name = forms.CharField(max_length=200)
    field_order = ["email", "full_name", "roles", "locations"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        del self.fields["is_active"]
