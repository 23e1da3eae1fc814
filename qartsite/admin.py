"""The admin's team isolation: staff who are not superusers see, choose and change only their teams' things.

Pages and the API scope through `Model.objects.for_user(user)` and `qartsite.access`; the admin does the same in
every place it reads rows: changelists, change pages, foreign-key and many-to-many choices (the autocomplete's too),
list filters, inlines, delete confirmations and the index's recent actions. A row of two teams (a label made in one
team's session on another's candidate) is shown to neither team's staff, and the admin's forms make none. Viewers
read; editors change their teams' objects; owners change teams, members and invitations. Django's permissions still
apply on top. Superusers see and change everything.

Every registered admin is a `TeamScopedAdmin`, or one of the scoped replacements at the bottom of this module for
the admins Django and the packages register themselves (users, groups, API tokens, sign-in attempts), or global
on purpose (`generator.admin.VerifierModelAdmin`: the one verifier model every team's jobs use, read by staff);
`tests/qartsite/test_admin.py` walks the registry and proves it.
"""

from __future__ import annotations

from axes.admin import AccessAttemptAdmin, AccessFailureLogAdmin, AccessLogAdmin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django import forms
from django.contrib import admin
from django.contrib.admin import widgets
from django.contrib.admin.models import LogEntry
from django.contrib.admin.utils import NestedObjects, get_fields_from_path, quote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.contrib.contenttypes import views as contenttype_views
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db import models, router
from django.db.models import Model, Q, QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.db.models.functions import Cast
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.text import capfirst
from knox import admin as knox_admin  # noqa: F401 (registers knox's admin, replaced below)
from knox.models import AuthToken
from rest_framework.authtoken import admin as drf_token_admin  # noqa: F401 (registers DRF's, removed below)
from rest_framework.authtoken.models import TokenProxy

from qartsite import members
from qartsite.access import VIEWERS_CANNOT_CHANGE, editable_teams, owned_teams, teammates
from qartsite.models import APIToken, Invitation, Membership, Team, TokenLabel, named
from qartsite.parsers import MAX_DEPTH, NUMBERS_RULE, numbers_in_range, too_deep


def visible_to(model: type[Model], user) -> QuerySet:
    """The rows of `model` (a team or a team-owned model) that `user` may see in the admin."""
    return in_teams(model, Team.for_user(user))


def in_teams(model: type[Model], teams: QuerySet[Team]) -> QuerySet:
    """The rows of `model` (a team or a team-owned model) that belong to `teams` alone.

    A row that several paths lead to a team (a human scan label: its session's, its candidate's job's) counts only
    when every path that is set leads into `teams`: `for_user`'s "any path will do" showed a label made in another
    team's session on our candidate, with that session's name, in the list, its filter and the autocomplete.
    """
    if model is Team:
        return teams
    rows = model.objects.in_teams(teams)
    if len(model.team_paths) > 1:
        for path in model.team_paths:
            elsewhere = model.objects.filter(**{f"{path}__isnull": False}).exclude(**{f"{path}__in": teams})
            rows = rows.exclude(pk__in=elsewhere.values("pk"))
    return rows


def is_team_owned(model: type[Model]) -> bool:
    """Whether `model`'s rows belong to teams (a team, or a model with `team_paths`)."""
    return model is Team or hasattr(model, "team_paths")


def teams_of(obj: Model) -> set[Team]:
    """The teams `obj` belongs to: itself for a team, else where its model's `team_paths` lead (unset paths skipped)."""
    if isinstance(obj, Team):
        return {obj}
    teams = set()
    for path in type(obj).team_paths:
        target = obj
        for name in path.split("__"):
            try:
                target = getattr(target, name)
            except ObjectDoesNotExist:  # a required relation not set yet, on an object being created
                target = None
            if target is None:
                break
        if target is not None:
            teams.add(target)
    return teams


def may_change(user, obj: Model | None, allowed_teams=editable_teams) -> bool:
    """Whether `user` may change `obj`: every team it belongs to is among `allowed_teams(user)`.

    Without an object (the changelist, the add page): whether `user` may change things in any team.
    """
    if user.is_superuser:
        return True
    allowed = allowed_teams(user)
    if obj is None:
        return allowed.exists()
    wanted = {team.pk for team in teams_of(obj)}
    # An object of no team (a prompt saved without one) is nobody's to change but a superuser's.
    return bool(wanted) and allowed.filter(pk__in=wanted).count() == len(wanted)


# Fields no changelist may filter on: `?secret__startswith=whsec_A` showing a row or not would spell out a webhook's
# signing secret (or a share's token hash, an invitation's token) to anyone who sees the row, one guess at a time.
HIDDEN_LOOKUPS = frozenset({"secret", "token", "token_hash", "token_key", "digest", "password"})


class ScopedRawIdWidget(widgets.ForeignKeyRawIdWidget):
    """A raw-id input that names only objects the user may pick: Django's looks its id up in the whole table, so
    `?job=2` on an add page printed another team's prompt beside the box."""

    def __init__(self, rel, admin_site, scope: QuerySet, **kwargs):
        super().__init__(rel, admin_site, **kwargs)
        self.scope = scope

    def label_and_url_for_value(self, value):
        try:
            visible = self.scope.filter(**{self.rel.get_related_field().name: value}).exists()
        except (ValueError, TypeError, OverflowError, ValidationError):  # not an id at all
            visible = False
        return super().label_and_url_for_value(value) if visible else ("", "")


class FiniteJSONField(forms.JSONField):
    """Django's JSON form field, refusing NaN, infinity and numbers past 64 bits (`parsers.numbers_in_range`): Python
    reads them, the databases' JSON does not (a 500 on save); and JSON nested too deeply (`parsers.too_deep`), as the
    API's parser does."""

    def to_python(self, value):
        if isinstance(value, str) and too_deep(value.encode()):  # Python's parser would recurse to its limit: a 500
            raise ValidationError(f"The JSON is nested more than {MAX_DEPTH} levels deep.", code="invalid")
        value = super().to_python(value)
        if not numbers_in_range(value):
            raise ValidationError(NUMBERS_RULE[0].upper() + NUMBERS_RULE[1:], code="invalid")
        return value

    def bound_data(self, data, initial):
        # The form shown again with a body nested too deeply: the text as typed, not a parse that would overflow.
        if isinstance(data, str) and too_deep(data.encode()):
            return forms.fields.InvalidJSONInput(data)
        return super().bound_data(data, initial)


class IdChoiceField(forms.ModelChoiceField):
    """Django's, but an id too large for the database (30 digits in a raw-id input) is "not one of the choices"
    rather than an OverflowError and a 500."""

    def to_python(self, value):
        try:
            return super().to_python(value)
        except OverflowError:
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice") from None


class IdsChoiceField(forms.ModelMultipleChoiceField):
    """`IdChoiceField` for many-to-many fields."""

    def _check_values(self, value):
        try:
            return super()._check_values(value)
        except OverflowError:
            raise ValidationError(self.error_messages["invalid_pk_value"], code="invalid_pk_value",
                                  params={"pk": "(too large)"}) from None


class OneTeamForm(forms.ModelForm):
    """A team-owned object's admin form (made by `TeamScopedAdmin.get_form`) that keeps it within one team: what it
    points to (a session's candidates, a label's session and candidate, a job's placement) must be its own team's.

    The choices offer everything of the user's teams, so a member of two teams could put one team's candidate in
    the other's session: the other team's page then named that session, and deleting the candidate took its labels.
    """

    def _post_clean(self) -> None:
        super()._post_clean()
        owners = {team.pk for team in teams_of(self.instance)}
        if self.instance.pk is not None and not isinstance(self.instance, Team):
            # Nobody moves a thing to another team, a superuser neither: a placement moved along sent its printed
            # codes to the new team's address and showed that team its scans, visitor keys included.
            before = type(self.instance)._base_manager.filter(pk=self.instance.pk).first()
            was = {team.pk for team in teams_of(before)} if before is not None else set()
            if was and owners != was:
                self.add_error(None, "This belongs to another team than the one chosen: nothing moves to another "
                                     "team. Make a new one in that team instead.")
                return
        # A superuser too: their choices span every team, and team A's job pointing at team B's placement showed B's
        # placement on A's pages.
        if len(owners) > 1:
            self.add_error(None, "Choose things of one team: this belongs to the team of each.")
            return
        for name, field in self.fields.items():
            model = getattr(getattr(field, "queryset", None), "model", None)
            value = self.cleaned_data.get(name)
            if not owners or model is Team or not hasattr(model, "team_paths") or value in (None, ""):
                continue
            chosen = value if isinstance(field, forms.ModelMultipleChoiceField) else [value]
            if any(not {team.pk for team in teams_of(obj)} <= owners for obj in chosen):
                self.add_error(name, "Choose one of its own team's: this is another team's.")


def named_choices(field):
    """`field` (a form field for a relation, or None) with its choices named in one query (`named`): a select of a
    team's thousands of placements named each with a query of its own."""
    if field is not None and getattr(field, "queryset", None) is not None:
        field.queryset = named(field.queryset)
    return field


class ScopedChoices:
    """Choices from the user's teams only, for admins and inlines: foreign keys (raw-id inputs' labels included),
    many-to-many fields and list filters. `changing_teams` names the teams whose objects the user may change here;
    the relation that decides an object's team (the first step of its model's `team_paths`) offers only objects of
    those teams. Changelists refuse lookups on secrets (`HIDDEN_LOOKUPS`) and, to staff, through reverse relations,
    and JSON fields refuse numbers the database's JSON cannot hold."""

    changing_teams = staticmethod(editable_teams)
    formfield_overrides = {models.JSONField: {"form_class": FiniteJSONField}}

    def lookup_allowed(self, lookup, value, request=None) -> bool:
        parts = lookup.split(LOOKUP_SEP)
        if HIDDEN_LOOKUPS & set(parts):
            return False
        if request is not None and not request.user.is_superuser and self._reverse_relation(parts[0]):
            # Django lets a one-step reverse lookup through: `?human_scans=3` on candidates named which of a team's
            # codes another team's hidden label sits on. No list filter of staff's starts with one.
            return False
        return super().lookup_allowed(lookup, value, request)

    def _reverse_relation(self, name: str) -> bool:
        try:
            field = self.model._meta.get_field(name)
        except FieldDoesNotExist:
            return False
        return field.is_relation and field.auto_created and not field.concrete

    def choices_for(self, db_field, request) -> QuerySet | None:
        """What a non-superuser may pick for `db_field`; None for models of no team (groups, permissions)."""
        model, user = db_field.related_model, request.user
        if model is get_user_model():
            return teammates(user)
        if model is Team:
            return self.changing_teams(user)
        if not hasattr(model, "team_paths"):
            return None
        if db_field.name in {path.split("__")[0] for path in getattr(self.model, "team_paths", ())}:
            return in_teams(model, self.changing_teams(user))
        return visible_to(model, user)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        kwargs.setdefault("form_class", IdChoiceField)
        if request.user.is_superuser or "queryset" in kwargs:
            return named_choices(super().formfield_for_foreignkey(db_field, request, **kwargs))
        choices = self.choices_for(db_field, request)
        if choices is not None:
            kwargs["queryset"] = choices
            if db_field.name in self.raw_id_fields and "widget" not in kwargs:
                kwargs["widget"] = ScopedRawIdWidget(db_field.remote_field, self.admin_site, choices,
                                                     using=kwargs.get("using"))
        field = named_choices(super().formfield_for_foreignkey(db_field, request, **kwargs))
        if field is not None and db_field.related_model is Team:
            field.required = True  # a row of no team would vanish from its maker's sight
        return field

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        kwargs.setdefault("form_class", IdsChoiceField)
        if not request.user.is_superuser and "queryset" not in kwargs:
            choices = self.choices_for(db_field, request)
            if choices is not None:
                kwargs["queryset"] = choices
        return named_choices(super().formfield_for_manytomany(db_field, request, **kwargs))

    def get_list_filter(self, request):
        # Django's filter on a relation lists every row of the related table (every team's name); the
        # related-only filter lists those that the scoped changelist refers to.
        list_filter = super().get_list_filter(request)
        if request.user.is_superuser:
            return list_filter
        return [self._related_only(entry) for entry in list_filter]

    def _related_only(self, entry):
        if getattr(self.model, "team_paths", ()) == (entry,):
            return (entry, OwnTeamsListFilter)
        if isinstance(entry, str) and get_fields_from_path(self.model, entry)[-1].is_relation:
            return (entry, admin.RelatedOnlyFieldListFilter)
        if isinstance(entry, tuple) and entry[1] is admin.RelatedFieldListFilter:
            return (entry[0], admin.RelatedOnlyFieldListFilter)
        return entry


class OwnTeamsListFilter(admin.RelatedOnlyFieldListFilter):
    """The filter on a model's one path to its team, for staff: their teams, without the empty choice ("-") of a team
    that may be empty (a labeling session's), since rows of no team are never theirs: it selected nothing, and beside
    the one team of most staff made a filter of one useless choice (one team alone, the filter hides itself)."""

    include_empty_choice = False


class TeamScopedAdmin(ScopedChoices, admin.ModelAdmin):
    """The admin of a team-owned model (or of teams): rows, choices and changes limited to the user's teams."""

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        paths = getattr(self.model, "team_paths", ())
        if len(paths) == 1:
            # One chain of foreign keys: a join, no row twice. An id subquery made PostgreSQL read a million scans'
            # ids for each page's count, twice (3.6 s for a team's rollups; bench/RESULTS.md).
            return qs.filter(**{f"{paths[0]}__in": Team.for_user(request.user)})
        # A subquery rather than for_user() itself: it keeps this admin's ordering and select_related, and a
        # model with several team paths (distinct rows) still deletes in bulk.
        return qs.filter(pk__in=visible_to(self.model, request.user).values("pk"))

    def has_add_permission(self, request) -> bool:
        return super().has_add_permission(request) and may_change(request.user, None, self.changing_teams)

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and may_change(request.user, obj, self.changing_teams)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and may_change(request.user, obj, self.changing_teams)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (OneTeamForm, form), {})

    def get_deleted_objects(self, objs, request):
        # Django's confirmation page names, with a link, every object a delete takes along or is stopped by, whatever
        # its team: our candidate's page named the other team's placement printing it (generator.admin lists what
        # protects printed artwork). Here another team's objects are named by their kind only, and refuse the delete.
        if request.user.is_superuser or not objs:
            return super().get_deleted_objects(objs, request)
        collector = NestedObjects(using=router.db_for_write(self.model), origin=objs)
        collector.collect(objs)
        perms_needed = set()

        def format_callback(obj: Model) -> str:
            opts = obj._meta
            if is_team_owned(type(obj)) and not visible_to(type(obj), request.user).filter(pk=obj.pk).exists():
                perms_needed.add(opts.verbose_name)
                return f"{capfirst(opts.verbose_name)}: one of another team"
            if self.admin_site.is_registered(type(obj)):
                if not self.admin_site.get_model_admin(type(obj)).has_delete_permission(request, obj):
                    perms_needed.add(opts.verbose_name)
                try:
                    link = reverse(f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change",
                                   args=(quote(obj.pk),))
                except NoReverseMatch:
                    pass
                else:
                    return format_html('{}: <a href="{}">{}</a>', capfirst(opts.verbose_name), link, obj)
            return f"{capfirst(opts.verbose_name)}: {obj}"

        to_delete = collector.nested(format_callback)
        protected = [format_callback(obj) for obj in collector.protected]
        model_count = {model._meta.verbose_name_plural: len(rows) for model, rows in collector.model_objs.items()}
        return to_delete, model_count, perms_needed, protected

    def save_model(self, request, obj, form, change) -> None:
        # Checked on the object as it will be saved: the form's choices already keep other teams out, and this
        # holds whatever the form lets through (a nullable team path left empty, a model with two team paths).
        if not may_change(request.user, obj, self.changing_teams):
            raise PermissionDenied(VIEWERS_CANNOT_CHANGE)
        super().save_model(request, obj, form, change)


class TeamScopedInline(ScopedChoices, admin.TabularInline):
    """An inline of a team-owned model: rows and choices scoped like its page's; only those who may change the
    parent object add, change or delete its rows."""

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(pk__in=visible_to(self.model, request.user).values("pk"))

    def has_add_permission(self, request, obj) -> bool:
        return super().has_add_permission(request, obj) and may_change(request.user, obj, self.changing_teams)

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and may_change(request.user, obj, self.changing_teams)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and may_change(request.user, obj, self.changing_teams)


class KeepsAnOwner(forms.BaseInlineFormSet):
    """A team's members as the admin changes them: a team that has an owner keeps one (`members`: the team page's
    rule), whatever rows are changed or deleted."""

    def clean(self) -> None:
        super().clean()
        if self.instance.pk is None or not self.instance.memberships.filter(role=Membership.Role.OWNER).exists():
            return  # a new team, or one without an owner already: nothing to keep
        kept = [form for form in self.forms if not (self.can_delete and self._should_delete_form(form))]
        if not any(form.cleaned_data.get("role", form.instance.role) == Membership.Role.OWNER for form in kept):
            raise forms.ValidationError(members.last_owner_message(self.instance))


class MembershipInline(TeamScopedInline):
    model = Membership
    formset = KeepsAnOwner
    extra = 0
    raw_id_fields = ("user",)
    changing_teams = staticmethod(owned_teams)


@admin.register(Team)
class TeamAdmin(TeamScopedAdmin):
    list_display = ("name", "created")
    search_fields = ("name",)
    inlines = [MembershipInline]
    changing_teams = staticmethod(owned_teams)
    # Set on the team page or the API, where a shorter retention that deletes stored scans asks first.
    readonly_fields = ("scan_retention_days",)

    def has_add_permission(self, request) -> bool:
        # A team made here would have no member, not even its maker: teams begin on the site, with an owner.
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        # Deleting a team deletes its campaigns, placements and scans: printed codes would answer 404. Campaigns are
        # archived instead (campaigns.admin); only a superuser deletes, on purpose.
        return request.user.is_superuser and super().has_delete_permission(request, obj)


@admin.register(Invitation)
class InvitationAdmin(TeamScopedAdmin):
    """Only owners see invitations: the token in an invitation is the key to joining its team in its role."""

    list_display = ("email", "team", "role", "created", "accepted")
    list_filter = ("role",)
    search_fields = ("email", "team__name")
    readonly_fields = ("token",)
    changing_teams = staticmethod(owned_teams)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.filter(team__in=owned_teams(request.user))

    def get_readonly_fields(self, request, obj=None):
        # Its sender is whoever saves it (`save_model`): naming another owner kept an invitation alive after its real
        # sender was removed, since an invitation is only as good as its sender's ownership (qartsite.members).
        return (*super().get_readonly_fields(request, obj), "invited_by", "accepted")

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.invited_by = request.user
        super().save_model(request, obj, form, change)


# The admins that Django and the packages register by themselves, replaced by scoped ones.

class SuperusersOnly:
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


class TeammateUserAdmin(ScopedChoices, UserAdmin):
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


class OwnTokenAdmin(admin.ModelAdmin):
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


def recent_actions(request: HttpRequest) -> QuerySet[LogEntry]:
    """The log entries behind the admin index's "Recent actions" (`AdminSite.get_log_entries`): for staff who are not
    superusers, only those about objects they still see. The sidebar lists one's own actions by the object's name,
    so someone who left a team, or was moved out of it, kept reading the names of that team's campaigns."""
    entries = LogEntry.objects.select_related("content_type", "user")
    if request.user.is_superuser:
        return entries
    team_owned = [model for model in admin.site._registry if is_team_owned(model)]
    types = ContentType.objects.get_for_models(*team_owned)
    shown = ~Q(content_type__in=types.values())
    for model in team_owned:
        keys = visible_to(model, request.user).annotate(key=Cast("pk", models.TextField())).values("key")
        shown |= Q(content_type=types[model], object_id__in=keys)
    return entries.filter(shown)


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
