from django.contrib.auth import views as auth_views
from django.urls import path

from ketaflow.accounts import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("mfa/", views.mfa_view, name="mfa"),
    path("mfa/enrol/", views.mfa_enrol_view, name="mfa_enrol"),
    path("logout/", views.logout_view, name="logout"),
    path("me/", views.account_view, name="account"),
    path("me/tokens/<int:pk>/revoke/", views.revoke_token_view, name="revoke_token"),
    path(
        "me/invitations/<int:pk>/accept/",
        views.invitation_view,
        {"answer": "accept"},
        name="invitation_accept",
    ),
    path(
        "me/invitations/<int:pk>/decline/",
        views.invitation_view,
        {"answer": "decline"},
        name="invitation_decline",
    ),
    path("users/", views.users_view, name="users"),
    path("users/add/", views.member_add_view, name="member_add"),
    path("users/<int:pk>/", views.member_edit_view, name="member_edit"),
    path(
        "users/invitations/<int:pk>/withdraw/",
        views.invitation_withdraw_view,
        name="invitation_withdraw",
    ),
    path(
        "password-reset/",
        views.PasswordResetView.as_view(),
        name="password_reset",
    ),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_done.html"),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="accounts/password_reset_complete.html"
        ),
        name="password_reset_complete",
    ),
]
