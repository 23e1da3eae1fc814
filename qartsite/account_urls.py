"""Account routes under /accounts/: Django's auth views (login, POST-only logout, password change and reset,
with our templates under templates/registration/), API tokens, deleting one's own account, the teams page (members,
invitations, settings), and sign-up by invitation."""

from __future__ import annotations

from django.urls import include, path

from qartsite import accounts

urlpatterns = [
    path("", accounts.account, name="account"),
    path("tokens/", accounts.token_new, name="token_new"),
    path("tokens/<str:prefix>/revoke/", accounts.token_revoke, name="token_revoke"),
    path("delete/", accounts.account_delete, name="account_delete"),
    path("team/<int:team_id>/", accounts.team_page, name="team"),
    path("team/<int:team_id>/settings/", accounts.team_settings, name="team_settings"),
    path("team/<int:team_id>/members/<int:member_id>/role/", accounts.member_role, name="member_role"),
    path("team/<int:team_id>/members/<int:member_id>/remove/", accounts.member_remove, name="member_remove"),
    path("team/<int:team_id>/invitations/<int:invitation_id>/withdraw/", accounts.invitation_withdraw,
         name="invitation_withdraw"),
    path("invite/<str:token>/", accounts.accept_invitation, name="invitation"),
    path("logout/", accounts.logout, name="logout"),  # Django's, asking first on a GET
    path("password_reset/", accounts.password_reset, name="password_reset"),  # Django's, with a rate
    # Django's, lifting a sign-in lockout of the account once its new password is set
    path("reset/<uidb64>/<token>/", accounts.ResetPasswordConfirm.as_view(), name="password_reset_confirm"),
    path("", include("django.contrib.auth.urls")),
]
