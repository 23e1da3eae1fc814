"""What the admin's team isolation is built of: `TeamScopedAdmin` (with `OwnersOnly` for what only owners see and
`SuperusersOnlyFields` for fields only superusers read) and `TeamScopedInline`, the choices, list filters, forms and
fields they scope, and the helpers that say which teams a row belongs to and who may change it (`visible_to`,
`in_teams`, `teams_of`, `may_change`).

Every app's admin builds on these (`campaigns.admin`, `generator.admin`); `qartsite.admin` registers qartsite's own
models with them, replaces the admins Django and the packages register themselves, and says what the isolation
covers.
"""

from __future__ import annotations

from functools import partial

from django import forms
from django.contrib import admin
from django.contrib.admin import widgets
from django.contrib.admin.utils import NestedObjects, get_fields_from_path, quote
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db import models, router
from django.db.models import Model, QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.text import capfirst

from qartsite import form_fields
from qartsite.access import VIEWERS_CANNOT_CHANGE, editable_teams, owned_teams, teammates
from qartsite.admin_log import TeammatesInHistory
from qartsite.admin_relations import (
    KeepsItsRelations,
    LinksThatOpen,
    OtherTeamsRelations,
    first_step,
    of_another_team,
)
from qartsite.changelists import PlainChangeList
from qartsite.models import Team, named
from qartsite.parsers import MAX_DEPTH, NUMBERS_RULE, BoundedDecoder, TooManyDigits, numbers_in_range, too_deep


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
    """The teams `obj` belongs to: itself for a team, else where its model's `team_paths` lead (unset paths skipped).

    A team being added (in the admin) counts as none: nothing else is in it yet, and a model without a primary key
    cannot go in a set (a TypeError: adding a team in the admin was a 500, with its members' rows or without)."""
    if isinstance(obj, Team):
        return {obj} if obj.pk is not None else set()
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
        if target is not None and target.pk is not None:
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


def may_change_here(request: HttpRequest, obj: Model | None, allowed_teams=editable_teams) -> bool:
    """`may_change` for the admin's permission checks: without an object, answered once per request. Django asks
    for each registered model's add, change and delete permission on every admin page (its navigation), and each
    asked the database the same question: 30-odd identical queries a page for a team's staff."""
    if obj is not None:
        return may_change(request.user, obj, allowed_teams)
    known = request.__dict__.setdefault("_may_change_somewhere", {})
    if allowed_teams not in known:
        known[allowed_teams] = may_change(request.user, None, allowed_teams)
    return known[allowed_teams]


# Fields no changelist may filter on: `?secret__startswith=whsec_A` showing a row or not would spell out a webhook's
# signing secret (or a share's token hash, an invitation's token) to anyone who sees the row, one guess at a time.
HIDDEN_LOOKUPS = frozenset({"secret", "token", "token_hash", "token_key", "digest", "password"})


class ScopedRawIdWidget(widgets.ForeignKeyRawIdWidget):
    """A raw-id input that names only objects the user may pick: Django's looks its id up in the whole table, so
    `?job=2` on an add page printed another team's prompt beside the box."""

    def __init__(self, rel, admin_site, scope: QuerySet, **kwargs):
        super().__init__(rel, admin_site, **kwargs)
        self.scope = scope
        self.kept: dict[str, str] = {}  # the row's own value outside `scope`, by id, and its name (KeepsItsRelations)

    def label_and_url_for_value(self, value):
        if str(value) in self.kept:
            return self.kept[str(value)], ""  # no link: the row is not the user's to open
        try:
            visible = self.scope.filter(**{self.rel.get_related_field().name: value}).exists()
        except (ValueError, TypeError, OverflowError, ValidationError):  # not an id at all
            visible = False
        return super().label_and_url_for_value(value) if visible else ("", "")


class FiniteJSONField(forms.JSONField):
    """Django's JSON form field, refusing NaN, infinity and numbers past 64 bits (`parsers.numbers_in_range`): Python
    reads them, the databases' JSON does not (a 500 on save); and JSON nested too deeply (`parsers.too_deep`), as the
    API's parser does."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**{**kwargs, "decoder": kwargs.get("decoder") or BoundedDecoder})

    def to_python(self, value):
        if isinstance(value, str) and too_deep(value.encode()):  # Python's parser would recurse to its limit: a 500
            raise ValidationError(f"The JSON is nested more than {MAX_DEPTH} levels deep.", code="invalid")
        out_of_range = ValidationError(NUMBERS_RULE[0].upper() + NUMBERS_RULE[1:], code="invalid")
        try:
            value = super().to_python(value)
        except TooManyDigits:  # an int of 5,000 digits, which Python refuses to read: a 500
            raise out_of_range from None
        if not numbers_in_range(value):
            raise out_of_range
        return value

    def bound_data(self, data, initial):
        # The form shown again with a body nested too deeply: the text as typed, not a parse that would overflow.
        if isinstance(data, str) and too_deep(data.encode()):
            return forms.fields.InvalidJSONInput(data)
        try:
            return super().bound_data(data, initial)
        except TooManyDigits:
            return forms.fields.InvalidJSONInput(data)


class OneTeamForm(KeepsItsRelations, form_fields.ModelForm):
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
            # What the row already holds stays, whoever's it is (`KeepsItsRelations`): nothing new is linked.
            if any(not {team.pk for team in teams_of(obj)} <= owners for obj in chosen if not self.holds(name, obj)):
                self.add_error(name, "Choose one of its own team's: this is another team's.")


def named_choices(field):
    """`field` (a form field for a relation, or None) with its choices named in one query (`named`): a select of a
    team's thousands of placements named each with a query of its own."""
    if field is not None and getattr(field, "queryset", None) is not None:
        field.queryset = named(field.queryset)
    return field


class PlainFields:
    """An admin's form fields for numbers, dates and ids, read as the API reads them (`qartsite.form_fields`: "١"
    was id 1, "1_000" a thousand; an id past 64 bits, 30 digits in a raw-id input, was an OverflowError's 500),
    and JSON fields refusing numbers the database's JSON cannot hold (`FiniteJSONField`); its lists' page numbers,
    orderings and filters (`qartsite.changelists`) and its formsets' counts (`form_fields.PlainCounts`) read alike.
    Every admin of the project's builds on it."""

    formfield_overrides = {**form_fields.ADMIN_OVERRIDES, models.JSONField: {"form_class": FiniteJSONField}}

    def get_changelist(self, request, **kwargs):
        return PlainChangeList

    def get_changelist_formset(self, request, **kwargs):
        formset = super().get_changelist_formset(request, **kwargs)
        return type(formset.__name__, (form_fields.PlainCounts, formset), {})

    def get_formset(self, request, obj=None, **kwargs):  # an inline's
        formset = super().get_formset(request, obj, **kwargs)
        return type(formset.__name__, (form_fields.PlainCounts, formset), {})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        kwargs.setdefault("form_class", form_fields.ModelChoiceField)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        kwargs.setdefault("form_class", form_fields.ModelMultipleChoiceField)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class ScopedChoices(PlainFields):
    """Choices from the user's teams only, for admins and inlines: foreign keys (raw-id inputs' labels included),
    many-to-many fields and list filters. `changing_teams` names the teams whose objects the user may change here;
    the relation that decides an object's team (the first step of its model's `team_paths`) offers only objects of
    those teams. Changelists refuse lookups on secrets (`HIDDEN_LOOKUPS`) and, to staff, through reverse relations,
    and fields are read as `PlainFields` reads them."""

    changing_teams = staticmethod(editable_teams)

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


class TeamScopedAdmin(TeammatesInHistory, OtherTeamsRelations, LinksThatOpen, ScopedChoices, admin.ModelAdmin):
    """The admin of a team-owned model (or of teams): rows, choices and changes limited to the user's teams,
    relations into another team's rows named by their kind only (`OtherTeamsRelations`), the others linked only where
    their page opens for the user (`LinksThatOpen`), and history pages naming only the user's teammates
    (`TeammatesInHistory`). `seeing_teams` names the
    teams whose rows the user sees here (all of theirs; their owned ones: `OwnersOnly`)."""

    seeing_teams = staticmethod(Team.for_user)
    visible_rows = staticmethod(visible_to)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        teams = self.seeing_teams(request.user)
        paths = getattr(self.model, "team_paths", ())
        if len(paths) == 1:
            # One chain of foreign keys: a join, no row twice. An id subquery made PostgreSQL read a million scans'
            # ids for each page's count, twice (3.6 s for a team's rollups; bench/RESULTS.md).
            return qs.filter(**{f"{paths[0]}__in": teams})
        # A subquery rather than for_user() itself: it keeps this admin's ordering and select_related, and a
        # model with several team paths (distinct rows) still deletes in bulk.
        return qs.filter(pk__in=in_teams(self.model, teams).values("pk"))

    def has_add_permission(self, request) -> bool:
        return super().has_add_permission(request) and may_change_here(request, None, self.changing_teams)

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and may_change_here(request, obj, self.changing_teams)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and may_change_here(request, obj, self.changing_teams)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (OneTeamForm, form), {"kept_names": staticmethod(partial(self.kept_names, request))})

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
                return of_another_team(type(obj))
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


class OwnersOnly:
    """Put before `TeamScopedAdmin` for what only a team's owners see and manage, as on the site and in the API
    (invitations: the key to joining the team; webhooks: they send its data elsewhere): staff who are not superusers
    see and change only the rows of the teams they own."""

    seeing_teams = changing_teams = staticmethod(owned_teams)


class SuperusersOnlyFields:
    """Put before `TeamScopedAdmin` (or any `ModelAdmin`) for fields only a superuser reads (`superusers_only`): staff,
    viewers among them, see the rows without them, on the detail page, in the list's columns, its search and its
    filters, and a lookup on one in the list's URL is refused (`?client_hash__startswith=c0` showing a row or not
    would spell the value out one guess at a time). The one home of such rules: a labeling item's token, old scans'
    visitor hash, what a verifier model was fitted to."""

    superusers_only: tuple[str, ...] = ()

    def _shown(self, request: HttpRequest, names) -> list:
        """`names` (fields, columns, search fields as "=field__part", filters as a name or a (name, class) pair)
        less those that read a superusers-only field, for anyone but a superuser."""
        if request.user.is_superuser:
            return list(names)
        return [name for name in names if not self._reads_hidden(name)]

    def _reads_hidden(self, name) -> bool:
        if isinstance(name, (tuple, list)):
            name = name[0]
        return isinstance(name, str) and first_step(name) in self._hidden_names()

    def _hidden_names(self) -> set[str]:
        """`superusers_only` and the column of each relation among them: Django allows a lookup on any of the model's
        own columns (`?created_by_id=7`), which filtered the list by the hidden relation as `?created_by=7` did."""
        names = set(self.superusers_only)
        for name in self.superusers_only:
            try:
                names.add(self.model._meta.get_field(name).attname)
            except (FieldDoesNotExist, AttributeError):  # a column's callable, or a reverse relation (no column)
                pass
        return names

    def get_fields(self, request, obj=None):
        return self._shown(request, super().get_fields(request, obj))

    def get_list_display(self, request):
        return self._shown(request, super().get_list_display(request))

    def get_search_fields(self, request):
        return self._shown(request, super().get_search_fields(request))

    def get_list_filter(self, request):
        return self._shown(request, super().get_list_filter(request))

    def lookup_allowed(self, lookup, value, request=None) -> bool:
        if (request is None or not request.user.is_superuser) and self._reads_hidden(lookup):
            return False
        return super().lookup_allowed(lookup, value, request)


class ColumnNamedFields(forms.BaseFormSet):
    """A tabular inline's rows, each field named by its column. Django's table names its columns in its head, and no
    <label> ties a row's fields to them: a screen reader announced each as a bare "edit text", "combo box" or "check
    box" (axe: label, select-name), the "Delete" box included."""

    def add_fields(self, form, index) -> None:
        super().add_fields(form, index)
        for field in form.fields.values():
            widget = field.widget
            if isinstance(widget, widgets.RelatedFieldWidgetWrapper):
                widget = widget.widget  # a relation's select is drawn by the widget inside the admin's wrapper
            if field.label and not widget.is_hidden:
                widget.attrs.setdefault("aria-label", capfirst(field.label))


class TeamScopedInline(ScopedChoices, admin.TabularInline):
    """An inline of a team-owned model: rows and choices scoped like its page's; only those who may change the
    parent object add, change or delete its rows."""

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(pk__in=visible_to(self.model, request.user).values("pk"))

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        return type(formset.__name__, (ColumnNamedFields, formset), {})

    def has_add_permission(self, request, obj) -> bool:
        return super().has_add_permission(request, obj) and may_change_here(request, obj, self.changing_teams)

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and may_change_here(request, obj, self.changing_teams)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and may_change_here(request, obj, self.changing_teams)
