"""Account forms: inviting someone to a team, a member's role, the team's name and settings, the sign-up form an
invitation link opens, and the password that confirms deleting one's own account."""

from __future__ import annotations

from django import forms
from django.contrib.auth import authenticate
from django.contrib.auth.forms import UserCreationForm
from django.http import HttpRequest

from qartsite import form_fields
from qartsite.models import Invitation, Membership, Team, time_zone_names


class InviteForm(form_fields.ModelForm):
    class Meta:
        model = Invitation
        fields = ["email", "role"]
        help_texts = {"role": "Owners manage members; editors change campaigns and generate art; viewers only read."}

    def __init__(self, *args, team: Team, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.team = team

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip()
        if Membership.objects.filter(team=self.team, user__email__iexact=email).exists():
            raise forms.ValidationError("Someone with this address is already in the team.")
        return email


class InvitationSignUpForm(UserCreationForm):
    """User name and password (checked by the password validators); the address comes from the invitation."""

    class Meta(UserCreationForm.Meta):
        fields = ["username"]

    def validate_password_for_user(self, user, password_field_name: str = "password1") -> None:
        # Django checks the rules against the confirmation and files "too short" under it; the rules are about the
        # password itself, so they go on its field (a mismatch stays on the confirmation, from `clean`).
        super().validate_password_for_user(user, password_field_name=password_field_name)


class MemberRoleForm(forms.Form):
    """A member's role, as an owner changes it on the team page (one form per member, prefixed by its id)."""

    role = forms.ChoiceField(choices=Membership.Role.choices)


class TeamSettingsForm(form_fields.ModelForm):
    # What a change does to the figures, said before it is made (`campaigns.rollup_rebuilds.recount_team`).
    time_zone = forms.ChoiceField(help_text=Team._meta.get_field("time_zone").help_text + (
        " Changing it recounts every daily figure in the new zone, usually within a few minutes; until that is done "
        "the pages, exports and API keep the old zone's days."))
    # Its one lower bound: the model field's own "at least 0" (a positive integer) answered -1 before the 30.
    scan_retention_days = form_fields.IntegerField(
        required=False, min_value=Team.MIN_RETENTION_DAYS, max_value=Team.MAX_RETENTION_DAYS,
        label=Team._meta.get_field("scan_retention_days").verbose_name.capitalize(),
        help_text=Team._meta.get_field("scan_retention_days").help_text)

    class Meta:
        model = Team
        fields = ["name", "time_zone", "scan_retention_days", "capital_scheme"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [(name, name.replace("_", " ")) for name in sorted(time_zone_names())]


class AccountDeleteForm(forms.Form):
    """The signed-in person's current password, confirming they delete their own account (`accounts.account_delete`)."""

    # Required: the browser asks for it before the page's "for good?" question (dashboard.js) can come up, and a form
    # sent without it (no script, an old browser) gets this one message, not "This field is required."
    password = forms.CharField(label="Your password", strip=False, widget=forms.PasswordInput(
        attrs={"autocomplete": "current-password"}),
        error_messages={"required": "Type your password to delete your account."})

    def __init__(self, *args, request: HttpRequest, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.request = request

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        # Checked as a sign-in checks it, through django-axes: a wrong password here counts towards the account's
        # sign-in lockout, and a locked-out account gets the lockout page, so a session left open is no way round
        # the lockout to guess the password.
        user = self.request.user
        if authenticate(self.request, username=user.get_username(), password=password) != user:
            raise forms.ValidationError("That is not your password.", code="password_incorrect")
        return password
