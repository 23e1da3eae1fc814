"""Account pages beyond Django's own auth views: your teams and API tokens, deleting your account, a team's members,
invitations and settings, and sign-up by invitation (there is no open sign-up: every account starts from an owner's
invitation)."""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from axes.utils import reset as axes_reset
from django.contrib import auth, messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.views import LogoutView, PasswordResetConfirmView, PasswordResetView
from django.core.mail import BadHeaderError, send_mail
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from campaigns import retention
from qartsite import access, members, rates, site, tokens
from qartsite.access import get_for_user_or_404
from qartsite.forms import AccountDeleteForm, InvitationSignUpForm, InviteForm, MemberRoleForm, TeamSettingsForm
from qartsite.models import Invitation, Membership, Team
from qartsite.sql import lock_rows

User = get_user_model()
log = logging.getLogger(__name__)

# The session key under which `token_new` leaves a new token for the account page to show, once.
NEW_TOKEN_KEY = "qart:new-api-token"
# An invitation link travels by e-mail, so it should not stay valid for ever.
INVITATION_DAYS = 14
CHANGES_SETTINGS = "Only a team owner changes the team's settings."
MANAGES_MEMBERS = "Only a team owner manages the team's members and invitations."


class ResetPassword(PasswordResetView):
    """Django's "e-mail me a reset link" step, its link under the site's one root for links that leave it
    (`site.site_root`). Django builds the link from the request's Host header: with SITE_ROOT set, a request made
    to another of ALLOWED_HOSTS (the server's address, an internal name) mailed the reset token to that host."""

    def form_valid(self, form):
        root = urlsplit(site.site_root(self.request))
        # Read last by the form's e-mail (`PasswordResetForm.save`): it replaces the host and scheme of the request.
        self.extra_email_context = {"protocol": root.scheme, "domain": root.netloc}
        return super().form_valid(form)


django_password_reset = ResetPassword.as_view()


@require_http_methods(["GET", "HEAD", "POST"])
def password_reset(request: HttpRequest) -> HttpResponse:
    """Django's password reset form, with a rate: per client network and per address asked for
    (`rates.PasswordResetThrottle`, `rates.PasswordResetAddressThrottle`), so the form cannot flood a mailbox.
    Refused: the form again, 429 with Retry-After, saying when to try again."""
    refused = (rates.refused_by(request, (rates.PasswordResetThrottle(), rates.PasswordResetAddressThrottle()))
               if request.method == "POST" else None)
    if refused is not None:
        wait = refused.retry_after()
        form = PasswordResetForm(request.POST)
        form.add_error(None, f"Too many reset links were asked for just now. Try again in {rates.retry_in(wait)}.")
        response = render(request, "registration/password_reset_form.html", {"form": form}, status=429)
        response["Retry-After"] = str(wait)
        return response
    return django_password_reset(request)


class ResetPasswordConfirm(PasswordResetConfirmView):
    """Django's "set a new password" step of a reset by e-mail; a new password set this way also lifts a sign-in
    lockout of the account (the lockout page sends people here), which would otherwise refuse it too."""

    # Django's dispatch answers a link that is not (or no longer) valid with its page for any method, TRACE and PUT
    # included (200), and takes a valid one into the session before any method check: the methods first, as on
    # every other page.
    @method_decorator(require_http_methods(["GET", "HEAD", "POST"]))
    def dispatch(self, *args, **kwargs):
        return super().dispatch(*args, **kwargs)

    def form_valid(self, form):
        response = super().form_valid(form)
        axes_reset(username=form.user.get_username())
        return response


django_logout = LogoutView.as_view()


@require_http_methods(["GET", "HEAD", "POST"])
def logout(request: HttpRequest) -> HttpResponse:
    """Django's sign-out (a POST, with its CSRF token); a GET (a typed address, an old bookmark) asks first, where
    Django answered an empty 405."""
    if request.method == "POST":
        return django_logout(request)
    return render(request, "registration/logout_confirm.html")


def expiry_cutoff() -> datetime:
    return timezone.now() - timedelta(days=INVITATION_DAYS)


def invitation_url(request: HttpRequest, invitation: Invitation) -> str:
    # The site's one rule for links that leave it (SITE_ROOT, else the host the owner is using).
    return site.absolute_url(request, reverse("invitation", args=[invitation.token]))


def send_invitation(invitation: Invitation, url: str) -> None:
    context = {"invitation": invitation, "url": url, "days": INVITATION_DAYS}
    send_mail(
        subject=" ".join(f"You're invited to {invitation.team.name} on qart".split()),  # one line, whatever the name
        message=render_to_string("qartsite/invitation_email.txt", context),
        from_email=None,  # DEFAULT_FROM_EMAIL
        recipient_list=[invitation.email],
    )


@login_required
@require_safe
def account(request: HttpRequest) -> HttpResponse:
    # A token `token_new` just made, shown once: popped by a GET only (a HEAD must not use up its one showing).
    made = request.session.pop(NEW_TOKEN_KEY, None) if request.method == "GET" else None
    if not made:
        return account_page(request)
    response = account_page(request, new_token=made["token"], new_token_prefix=made["prefix"],
                            new_token_name=made["name"])
    response["Cache-Control"] = "no-store"  # no copy of the token in any cache
    return response


def account_page(request: HttpRequest, status: int = 200, **extra) -> HttpResponse:
    """Your teams and your API tokens; `extra` carries a token just made (shown once) or why one was refused."""
    # Someone in no team (yet, or no longer) still sees their tokens here, to revoke them.
    memberships = Membership.objects.filter(user=request.user).select_related("team").order_by("team__name")
    ctx = {"memberships": memberships, "tokens": tokens.tokens_of(request.user), "token_name_length":
           tokens.NAME_LENGTH, **extra}
    return render(request, "qartsite/account.html", ctx, status=status)


@login_required
@require_POST
def token_new(request: HttpRequest) -> HttpResponse:
    """Make an API token; the account page this redirects to shows it, the only time it is ever shown (answered
    here, a reload sent the form again and made a second token)."""
    try:
        auth_token, token = tokens.make_token(request.user, request.POST.get("name", ""))
    except tokens.TokenRefused as refused:
        # The name typed stays in the field, to be corrected rather than typed again
        return account_page(request, status=400, token_error=str(refused), token_name=request.POST.get("name", ""))
    request.session[NEW_TOKEN_KEY] = {"token": token, "prefix": auth_token.token_key,
                                      "name": request.POST.get("name", "").strip()}
    return redirect("account")


@login_required
@require_POST
def token_revoke(request: HttpRequest, prefix: str) -> HttpResponse:
    try:
        revoked = tokens.revoke(request.user, prefix)
    except tokens.TokenRefused as refused:
        return account_page(request, status=400, token_error=str(refused))
    messages.success(request, f"Token {revoked}… revoked: requests that send it are refused from now on.")
    return redirect("account")


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def account_delete(request: HttpRequest) -> HttpResponse:
    """Delete your own account, confirmed with your password: a GET shows what goes and what stays, and the form.

    Only ever `request.user`'s account. It goes with its team memberships, API tokens and the invitations it sent
    that nobody used; the team keeps everything made in it (campaigns, generations, labels), made by nobody. Then the
    person is signed out and lands on the sign-in page. Refused, with nothing deleted (409, the page saying why):
    - the last owner of a team, whether or not anyone else is in it (`members.delete_account`, the admin's rule):
      its campaigns' printed codes still redirect, so the team is neither left without an owner nor deleted along.
      They make another member an owner first; alone in the team, they invite someone to own it, or ask an
      administrator to close it.
    - a superuser: they delete no account here, their own included, so the site is never left without anyone to
      run its admin; another superuser deletes it in the admin.
    A wrong password is the form's error (400); it counts towards the sign-in lockout (`AccountDeleteForm`).
    """
    user = request.user
    form = AccountDeleteForm(request.POST if request.method == "POST" else None, request=request)
    kept_by = last_owner_of(user)
    # Refused before the password is read: a refusal does not count towards the sign-in lockout.
    if request.method == "POST" and not (user.is_superuser or kept_by) and form.is_valid():
        username = user.get_username()
        try:
            members.delete_account(user)
        except members.Refused:  # another owner stepped down meanwhile: the page names the team, with what to do
            kept_by = last_owner_of(user)
        else:
            axes_reset(username=username)  # its failures would count against a new account of the same name
            auth.logout(request)
            messages.success(request, "Your account was deleted.")
            return redirect("login")
    refused = user.is_superuser or bool(kept_by)
    status = 200 if request.method != "POST" else 409 if refused else 400
    return render(request, "qartsite/account_delete.html", {"form": form, "kept_by": kept_by, "refused": refused},
                  status=status)


def last_owner_of(user) -> list[tuple[Team, bool]]:
    """The teams `user` is the last owner of (`members.left_without_owner`), each with whether anyone else is in it."""
    return [(team, team.memberships.exclude(user=user).exists()) for team in members.left_without_owner([user])]


@login_required
@require_POST
def team_settings(request: HttpRequest, team_id: int) -> HttpResponse:
    """The team's time zone (the dashboards' days) and how long raw scans are kept; owners only."""
    team = get_for_user_or_404(Team.for_user(request.user), pk=team_id)
    access.require_owner(request.user, team, CHANGES_SETTINGS)
    kept_days = team.scan_retention_days  # before the form: a bound form writes the new values onto the team
    form = TeamSettingsForm(request.POST, instance=team)
    if not form.is_valid():
        return team_page_response(request, team, settings_form=form, status=400)
    new_days = form.cleaned_data["scan_retention_days"]
    lost = retention.newly_expired(team, kept_days, new_days)
    if lost and request.POST.get("confirm_retention") != str(new_days):
        # Shortening the retention deletes scans for good at the next daily pass: said, with the count, first.
        # The day in the team's zone (the form's, if it changes too), as every date of its scans is: the server's
        # (UTC) date was a day early east of it, and said a day was kept whose scans go.
        before = timezone.localdate(timezone.now() - timedelta(days=new_days), timezone=team.zone)
        warning = {"count": lost, "days": new_days, "before": before}
        return team_page_response(request, team, settings_form=form, status=409, retention_warning=warning)
    zone_changed = "time_zone" in form.changed_data
    form.save()
    if zone_changed:
        # "Team settings saved." first when anything else changed too: the time zone's sentence alone read as if
        # only it had been saved.
        if set(form.changed_data) - {"time_zone"}:
            messages.success(request, "Team settings saved.")
        team.refresh_from_db(fields=["counted_time_zone"])  # switched at once when nothing was counted yet
        messages.success(request, zone_change_said(team))
    else:
        messages.success(request, "Team settings saved.")
    return redirect("team", team_id=team.pk)


def zone_change_said(team: Team) -> str:
    """What a change of the team's time zone does to its figures, said as it is saved."""
    if not team.recounting:
        return f"Days now count in {team.time_zone}."
    return (f"Days will count in {team.time_zone} once the figures are recounted, usually within a few minutes; "
            f"until then every page, export and API answer keeps the days of {team.counted_time_zone} (the pages "
            "say so). Days whose single scans were deleted keep their old boundaries.")


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def team_page(request: HttpRequest, team_id: int) -> HttpResponse:
    team = get_for_user_or_404(Team.for_user(request.user), pk=team_id)
    is_owner = Membership.role_of(request.user, team) == Membership.Role.OWNER
    form = InviteForm(team=team) if is_owner else None
    if request.method == "POST":
        access.require_owner(request.user, team)
        form = InviteForm(request.POST, team=team)
        if form.is_valid():
            refused = rates.refused_by(request, (rates.InvitationAddressThrottle(),
                                                 rates.InvitationTeamThrottle(team.pk)))
            if refused is not None:
                wait = refused.retry_after()
                to = " to this address" if isinstance(refused, rates.InvitationAddressThrottle) else ""
                form.add_error(None, f"Too many invitations were sent{to} just now. Try again in "
                                     f"{rates.retry_in(wait)}.")
                response = team_page_response(request, team, form=form, status=429)
                response["Retry-After"] = str(wait)
                return response
            invitation, sent = invite(request, team, form.cleaned_data["email"], form.cleaned_data["role"])
            if sent:
                messages.success(request, f"Invitation sent to {invitation.email}.")
            else:
                messages.warning(request, f"The invitation for {invitation.email} is saved, but the e-mail could "
                                          "not be sent. Copy its link below and send it yourself.")
            return redirect("team", team_id=team.pk)
    return team_page_response(request, team, form=form, status=400 if form and form.errors else 200)


def team_page_response(request: HttpRequest, team: Team, status: int = 200, form: InviteForm | None = None,
                       settings_form: TeamSettingsForm | None = None, retention_warning: dict | None = None
                       ) -> HttpResponse:
    is_owner = Membership.role_of(request.user, team) == Membership.Role.OWNER
    if form is None and is_owner:
        # The settings form answered with an error or the retention warning: the invite form is still offered,
        # with its fields (it rendered as a bare "Send invitation" that posted to the settings address).
        form = InviteForm(team=team)
    memberships = list(team.memberships.select_related("user").order_by("user__username"))
    pending = team.invitations.filter(accepted__isnull=True, created__gte=expiry_cutoff()).order_by("-created")
    owners = sum(m.role == Membership.Role.OWNER for m in memberships)
    ctx = {"team": team, "is_owner": is_owner, "form": form,
           # No role form for the only owner: a team keeps one, so changing it could only be refused
           "members": [(m, MemberRoleForm(initial={"role": m.role}, prefix=f"m{m.pk}")
                        if is_owner and not (m.role == Membership.Role.OWNER and owners == 1) else None)
                       for m in memberships],
           "settings_form": (settings_form or TeamSettingsForm(instance=team)) if is_owner else None,
           "pending": [(i, invitation_url(request, i)) for i in pending] if is_owner else [],
           "retention_warning": retention_warning,
           # The last owner is refused if they try to leave (`members.remove`): offer no button, say why instead.
           "last_owner": is_owner and not any(m.role == Membership.Role.OWNER and m.user_id != request.user.pk
                                              for m in memberships)}
    return render(request, "qartsite/team.html", ctx, status=status)


def team_membership(request: HttpRequest, team_id: int, member_id: int) -> tuple[Team, Membership]:
    """The team (one of yours, else 404) and one of its memberships (404 when not of that team)."""
    team = get_for_user_or_404(Team.for_user(request.user), pk=team_id)
    return team, get_for_user_or_404(team.memberships.select_related("user"), pk=member_id)


@login_required
@require_POST
def member_role(request: HttpRequest, team_id: int, member_id: int) -> HttpResponse:
    """An owner gives a member another role (themselves included, while another owner remains)."""
    team, membership = team_membership(request, team_id, member_id)
    access.require_owner(request.user, team, MANAGES_MEMBERS)
    form = MemberRoleForm(request.POST, prefix=f"m{membership.pk}")
    if not form.is_valid():
        messages.error(request, "Choose owner, editor or viewer.")
        return redirect("team", team_id=team.pk)
    role = form.cleaned_data["role"]
    name = "You are" if membership.user == request.user else f"{membership.user.get_username()} is"
    if role == membership.role:
        # "Change" pressed on the role already held: saying "now owner" would claim a change that never happened.
        held = membership.get_role_display().lower()
        messages.info(request, f"{name} already {'an' if held[0] in 'aeiou' else 'a'} {held} of {team.name}: "
                               "nothing changed.")
        return redirect("team", team_id=team.pk)
    try:
        members.set_role(membership, role)
    except members.Refused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, f"{name} now {membership.get_role_display().lower()} of {team.name}.")
    return redirect("team", team_id=team.pk)


@login_required
@require_POST
def member_remove(request: HttpRequest, team_id: int, member_id: int) -> HttpResponse:
    """An owner takes someone out of the team; anyone may leave it (their own membership). The team's last owner
    can do neither."""
    team, membership = team_membership(request, team_id, member_id)
    leaving = membership.user == request.user
    if not leaving:
        access.require_owner(request.user, team, MANAGES_MEMBERS)
    try:
        members.remove(membership)
    except members.Refused as refused:
        messages.error(request, str(refused))
        return redirect("team", team_id=team.pk)
    if leaving:
        messages.success(request, f"You left {team.name}.")
        return redirect("account")
    messages.success(request, f"{membership.user.get_username()} is no longer in {team.name}; the invitations they "
                              "sent and nobody used are withdrawn." if membership.role == Membership.Role.OWNER
                     else f"{membership.user.get_username()} is no longer in {team.name}.")
    return redirect("team", team_id=team.pk)


@login_required
@require_POST
def invitation_withdraw(request: HttpRequest, team_id: int, invitation_id: int) -> HttpResponse:
    """An owner withdraws an invitation nobody has used: its link stops working."""
    team = get_for_user_or_404(Team.for_user(request.user), pk=team_id)
    access.require_owner(request.user, team, MANAGES_MEMBERS)
    invitation = get_for_user_or_404(team.invitations.filter(accepted__isnull=True), pk=invitation_id)
    invitation.delete()
    messages.success(request, f"The invitation for {invitation.email} is withdrawn: its link no longer works.")
    return redirect("team", team_id=team.pk)


def invite(request: HttpRequest, team: Team, email: str, role: str) -> tuple[Invitation, bool]:
    """Invite `email` to `team` and send the link; a pending invitation to the same address is re-sent.

    Returns the invitation and whether the e-mail went out.
    """
    with transaction.atomic():
        # The team's row held while looking: two invitations to one address at once (a double click) make one.
        lock_rows(Team, [team.pk])
        invitation = (team.invitations.filter(email__iexact=email, accepted__isnull=True,
                                              created__gte=expiry_cutoff()).first())
        if invitation is None:
            invitation = Invitation.objects.create(team=team, email=email, role=role, invited_by=request.user)
        elif invitation.role != role:
            invitation.role = role
            invitation.save(update_fields=["role"])
    try:
        send_invitation(invitation, invitation_url(request, invitation))
    except (OSError, smtplib.SMTPException, BadHeaderError):
        # A mail server being down must not lose the invitation: the owner can pass the link on by hand.
        log.exception("Could not send the invitation e-mail to %s", invitation.email)
        return invitation, False
    return invitation, True


def invitation_problem(invitation: Invitation | None) -> str | None:
    """Why this invitation can't be used, or None when it can."""
    if invitation is None:
        return "unknown"
    if invitation.accepted is not None:
        return "used"
    if invitation.created < expiry_cutoff():
        return "expired"
    if members.sender_gone(invitation):
        return "withdrawn"
    return None


@require_http_methods(["GET", "HEAD", "POST"])
def accept_invitation(request: HttpRequest, token: str) -> HttpResponse:
    found = Invitation.objects.select_related("team", "invited_by").filter(token=token).first()
    problem = invitation_problem(found)
    if problem:
        return invitation_refused(request, problem)
    # Someone already signed in joins with that account; anyone else creates one. Either way the invitation is
    # bound to the address it was sent to: a link that leaked (forwarded, seen by someone else) lets no other
    # account in, and a new account gets the invited address.
    signed_in = request.user.is_authenticated
    if signed_in and request.user.email.strip().lower() != found.email.strip().lower():
        return invitation_refused(request, "other_address", invitation=found)
    # The address has an account already: its owner signs in to join, rather than making a second account whose
    # teams and password resets would be split from the first.
    has_account = not signed_in and User.objects.filter(email__iexact=found.email.strip()).exists()
    form = None if signed_in or has_account else InvitationSignUpForm(instance=User(email=found.email))
    if request.method == "POST" and not has_account:
        form = None if signed_in else InvitationSignUpForm(request.POST, instance=User(email=found.email))
        if signed_in or form.is_valid():
            redeemed = redeem(found, (lambda: request.user) if signed_in else form.save)
            if redeemed is None:
                return invitation_refused(request, "used")
            user, role = redeemed
            if not signed_in:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            if role == found.role:
                messages.success(request, f"Welcome to {found.team.name}.")
            else:
                messages.info(request, f"You were already in {found.team.name}, as {role}: an invitation does not "
                                       "change a member's role. Ask an owner to change it.")
            return redirect("campaigns:list")
    ctx = {"invitation": found, "form": form, "has_account": has_account}
    return render(request, "qartsite/invitation.html", ctx,
                  status=400 if (form and form.errors) or (has_account and request.method == "POST") else 200)


def invitation_refused(request: HttpRequest, problem: str, invitation: Invitation | None = None) -> HttpResponse:
    status = {"unknown": 404, "other_address": 403}.get(problem, 410)
    ctx = {"problem": problem, "invited": masked_address(invitation.email) if invitation else ""}
    return render(request, "qartsite/invitation_invalid.html", ctx, status=status)


def masked_address(email: str) -> str:
    """'a***@example.com': enough for the right person to recognise, not enough to harvest."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def redeem(invitation: Invitation, make_user: Callable[[], AbstractBaseUser]) -> tuple[AbstractBaseUser, str] | None:
    """Accept `invitation` for the user `make_user` returns (it may create one): that user and their role in the
    team, or None if it was used.

    The row is locked and checked again before any account is made: two tabs submitting one link must not
    both join, nor leave a second account behind.
    """
    with transaction.atomic():
        locked = Invitation.objects.select_for_update().filter(pk=invitation.pk, accepted__isnull=True).first()
        if locked is None:
            return None
        user = make_user()
        # An existing member keeps their role: an invitation never demotes or promotes anyone.
        membership, _ = Membership.objects.get_or_create(team=locked.team, user=user, defaults={"role": locked.role})
        locked.accepted = timezone.now()
        locked.save(update_fields=["accepted"])
        return user, membership.role
