"""Account routes under /accounts/: Django's auth views (login, POST-only logout, password change and reset,
with our templates under templates/registration/), the teams page and sign-up by invitation."""

from __future__ import annotations

from django.urls import include, path

from qartsite import accounts

urlpatterns = [
    path("", accounts.account, name="account"),
    path("team/<int:team_id>/", accounts.team_page, name="team"),
    path("invite/<str:token>/", accounts.accept_invitation, name="invitation"),
    path("", include("django.contrib.auth.urls")),
]
