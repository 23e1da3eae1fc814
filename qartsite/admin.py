"""The admin's team isolation: staff who are not superusers see, choose and change only their teams' things.

Pages and the API scope through `Model.objects.for_user(user)` and `qartsite.access`; the admin does the same in
every place it reads rows: changelists, change pages, foreign-key and many-to-many choices (the autocomplete's too),
list filters, inlines, delete confirmations, and its log: history pages name only the user's teammates, the index's
recent actions only objects still seen (`qartsite.admin_log`). A row of two teams (a label made in one team's session
on another's candidate) is shown to neither team's staff, and the admin's forms make none. Viewers read; editors change
their teams' objects; owners change teams and members, and alone see invitations and webhooks (`OwnersOnly`).
Django's permissions still apply on top. Superusers see and change everything.

Every registered admin is a `TeamScopedAdmin` (`qartsite.scoped_admin`: it and what it is built of), or one of the
scoped replacements at the bottom of this module for the admins Django and the packages register themselves (users,
groups, API tokens, sign-in attempts), or global on purpose (`generator.verifier_admin.VerifierModelAdmin`: the one
verifier model every team's jobs use, read by staff); `tests/qartsite/test_admin.py` walks the registry and proves it.
"""

from __future__ import annotations

from axes.admin import AccessAttemptAdmin, AccessFailureLogAdmin, AccessLogAdmin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.contrib.contenttypes import views as contenttype_views
from django.contrib.contenttypes.models import ContentType
from django.db.models.constants import LOOKUP_SEP
from django.http import Http404, HttpRequest, HttpResponse
from knox import admin as knox_admin  # noqa: F401 (registers knox's admin, replaced below)
from knox.models import AuthToken
from rest_framework.authtoken import admin as drf_token_admin  # noqa: F401 (registers DRF's, removed below)
from rest_framework.authtoken.models import TokenProxy

from qartsite import members
from qartsite.access import owned_teams, teammates
from qartsite.admin_log import TeammatesInHistory, recent_actions
from qartsite.admin_relations import LinksThatOpen
from qartsite.models import APIToken, Invitation, Membership, Team, TokenLabel
from qartsite.scoped_admin import (
    OwnersOnly,
    PlainFields,
    ScopedChoices,
    TeamScopedAdmin,
    TeamScopedInline,
)

NO_OWNER_NAMED = ("A team needs at least one owner: make one of its members an owner, or leave yourself out of the "
                  "list to own it yourself.")


class KeepsAnOwner(forms.BaseInlineFormSet):
    """A team's members as the admin changes them: a team that has an owner keeps one (`members`: the team page's
    rule), whatever rows are changed or deleted; a new team names an owner, or its maker becomes it
    (`TeamAdmin.save_related`) unless they listed themselves in another role, which is theirs to choose."""

    maker = None  # who saves the form (`MembershipInline.get_formset`)

    def clean(self) -> None:
        super().clean()
        kept = [form for form in self.forms if not (self.can_delete and self._should_delete_form(form))]
        if any(form.cleaned_data.get("role", form.instance.role) == Membership.Role.OWNER for form in kept):
            return
        if self.instance.pk is None:
            # A maker who listed themselves in another role was made its owner all the same, their choice silently
            # overruled: they are asked instead.
            listed = {form.cleaned_data["user"].pk for form in kept if form.cleaned_data.get("user")}
            if self.maker is not None and self.maker.pk in listed:
                raise forms.ValidationError(NO_OWNER_NAMED)
        elif self.instance.memberships.filter(role=Membership.Role.OWNER).exists():
            raise forms.ValidationError(members.last_owner_message(self.instance))


class MembershipInline(TeamScopedInline):
    model = Membership
    formset = KeepsAnOwner
    extra = 0
    raw_id_fields = ("user",)
    changing_teams = staticmethod(owned_teams)

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        return type(formset.__name__, (formset,), {"maker": request.user})


@admin.register(Team)
class TeamAdmin(TeamScopedAdmin):
    list_display = ("name", "created")
    search_fields = ("name",)
    inlines = [MembershipInline]
    changing_teams = staticmethod(owned_teams)
    # Set on the team page or the API, where a shorter retention that deletes stored scans asks first.
    readonly_fields = ("scan_retention_days",)

    def has_add_permission(self, request) -> bool:
        # README's way to a second team; only superusers, since a team made here needs no invitation to join.
        return request.user.is_superuser

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        team = form.instance
        if not change and not team.memberships.filter(role=Membership.Role.OWNER).exists():
            # The site shows a team to its members only: one made here without an owner was nobody's, its maker's
            # neither, and a team always keeps an owner. Its maker owns it then: not listed among its members, since
            # a maker who listed themselves in another role is refused that (`KeepsAnOwner`).
            Membership.objects.create(team=team, user=request.user, role=Membership.Role.OWNER)

    def has_delete_permission(self, request, obj=None) -> bool:
        # Deleting a team deletes its campaigns, placements and scans: printed codes would answer 404. Campaigns are
        # archived instead (campaigns.admin); only a superuser deletes, on purpose.
        return request.user.is_superuser and super().has_delete_permission(request, obj)


@admin.register(Invitation)
class InvitationAdmin(OwnersOnly, TeamScopedAdmin):
    """Only owners see invitations: the token in an invitation is the key to joining its team in its role."""

    list_display = ("email", "team", "role", "created", "accepted")
    list_filter = ("role",)
    search_fields = ("email", "team__name")
    readonly_fields = ("token",)

    def get_readonly_fields(self, request, obj=None):
        # Its sender is whoever saves it (`save_model`): naming another owner kept an invitation alive after its real
        # sender was removed, since an invitation is only as good as its sender's ownership (qartsite.members).
        return (*super().get_readonly_fields(request, obj), "invited_by", "accepted")

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.invited_by = request.user
        super().save_model(request, obj, form, change)


# The admins that Django and the packages register by themselves, replaced by scoped ones.

class SuperusersOnly(TeammatesInHistory, LinksThatOpen, PlainFields):
    """An admin that only superusers see or use."""

    def has_module_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_add_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser


class TeammateUserAdmin(TeammatesInHistory, LinksThatOpen, ScopedChoices, UserAdmin):
    """Staff who are not superusers see the members of their teams, read only and without their password hashes
    or permissions: whoever may change a user may make anyone, themselves included, a superuser. People change
    their own accounts on the site."""

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.filter(pk__in=teammates(request.user).values("pk"))

    def get_fieldsets(self, request, obj=None):
        if request.user.is_superuser or obj is None:
            return super().get_fieldsets(request, obj)
        return ((None, {"fields": ("username", "first_name", "last_name", "email")}),
                ("Important dates", {"fields": ("last_login", "date_joined")}))

    def has_add_permission(self, request) -> bool:
        return request.user.is_superuser and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser and super().has_delete_permission(request, obj)

    def get_deleted_objects(self, objs, request):
        # A team always keeps an owner (`qartsite.members`): deleting its last owner's account left it with nobody
        # to manage it. Listed as protected, the delete is refused with the reason, alone or in a bulk delete.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        protected = list(protected) + [members.last_owner_message(team)
                                       for team in members.left_without_owner(objs)]
        return deleted, counts, perms_needed, protected

    def lookup_allowed(self, lookup, value, request=None) -> bool:
        # Django lets any one-step lookup through, reverse relations included: `?teams=3` or `?generations=7`
        # told staff which of their teammates belong to another team, or made that team's generation. Staff filter
        # by the list's own filters only.
        if request is not None and not request.user.is_superuser:
            shown = {entry[0] if isinstance(entry, tuple) else entry for entry in self.get_list_filter(request)}
            if lookup.split(LOOKUP_SEP)[0] not in shown:
                return False
        return super().lookup_allowed(lookup, value, request)

    def get_list_filter(self, request):
        # Groups are a superuser's business (SuperuserGroupAdmin): the filter listed their names to staff.
        list_filter = super().get_list_filter(request)
        if request.user.is_superuser:
            return list_filter
        return [entry for entry in list_filter if (entry[0] if isinstance(entry, tuple) else entry) != "groups"]


class SuperuserGroupAdmin(SuperusersOnly, GroupAdmin):
    """Groups carry permissions across every team: they are a superuser's business."""


class OwnTokenAdmin(TeammatesInHistory, LinksThatOpen, PlainFields, admin.ModelAdmin):
    """An API token (knox's) acts as its user everywhere: staff who are not superusers see only their own.

    A row holds the token's prefix and a hash, never the token. Knox's own admin lists the hash first, like a key,
    names each token by it and makes tokens; this one shows the proxy `APIToken`, named by its prefix, and makes
    none: `manage.py qart_token` does, the one place a new token is shown. Here tokens are read and revoked.
    """

    list_display = ("token_key", "user", "name", "created", "expiry")
    list_select_related = ("user", "label")
    search_fields = ("token_key", "label__name")
    fields = ("token_key", "user", "name", "created", "expiry")
    readonly_fields = fields

    @admin.display(description="name")
    def name(self, obj: APIToken) -> str:
        return TokenLabel.name_of(obj)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.filter(user=request.user)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class SuperuserSignInRecordAdmin(SuperusersOnly):
    """django-axes' records of sign-ins name accounts and addresses of every team: superusers only. They are
    records, so nobody adds one; deleting an access attempt lifts its lockout."""

    def has_add_permission(self, request) -> bool:
        return False


class SuperuserAccessAttemptAdmin(SuperuserSignInRecordAdmin, AccessAttemptAdmin):
    pass


class SuperuserAccessLogAdmin(SuperuserSignInRecordAdmin, AccessLogAdmin):
    pass


class SuperuserAccessFailureLogAdmin(SuperuserSignInRecordAdmin, AccessFailureLogAdmin):
    pass


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), TeammateUserAdmin)
admin.site.unregister(Group)
admin.site.register(Group, SuperuserGroupAdmin)
# The packages' admin modules are imported at the top, so their registrations exist by now whatever the order of
# INSTALLED_APPS. DRF's plain-text tokens were hashed into knox's by migration 0002 and are not used since: no admin.
admin.site.unregister(TokenProxy)
admin.site.unregister(AuthToken)
admin.site.register(APIToken, OwnTokenAdmin)
admin.site.unregister([AccessAttempt, AccessLog, AccessFailureLog])
admin.site.register(AccessAttempt, SuperuserAccessAttemptAdmin)
admin.site.register(AccessLog, SuperuserAccessLogAdmin)
admin.site.register(AccessFailureLog, SuperuserAccessFailureLogAdmin)


# Django's site, not a subclass of our own: INSTALLED_APPS names "django.contrib.admin", whose default site this is.
admin.site.get_log_entries = recent_actions


def view_on_site(request: HttpRequest, content_type_id: int, object_id: str) -> HttpResponse:
    """The admin's "view on site" redirect (`/admin/r/<content type>/<id>/`, routed in qartsite/urls.py ahead of the
    admin's own): a 404 for a kind of object without a page of its own, before any lookup.

    Django's looks the object up in whatever model the content type names, across every team, even where it has
    no page. django_rq's `Queue` is a placeholder (unmanaged, no table: it exists for its "Access admin page"
    permission), so that lookup failed in the database: SQLite's "no such table" is an OperationalError, which
    `qartsite.outage` answers with its 503, "the database is not answering" (PostgreSQL's is a 500).
    """
    try:
        model = ContentType.objects.get_for_id(content_type_id).model_class()
    except ContentType.DoesNotExist:
        raise Http404("No such kind of object.") from None
    if model is None or not hasattr(model, "get_absolute_url"):
        # No model has a page of its own today. Should one get one, look its objects up through its team-scoped
        # admin's queryset first: Django's shortcut reads every team's rows.
        raise Http404("Objects of this kind have no page on the site.")
    return contenttype_views.shortcut(request, content_type_id, object_id)
