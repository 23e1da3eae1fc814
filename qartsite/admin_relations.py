"""A team-scoped admin's relations that may lead to another team's rows, named by their kind only to staff.

A row's team is decided by the first step of its model's `team_paths`; its other relations (a placement's artwork,
a job's placement, a sample's job, a preset's source run, a labeling item's candidate and label, a session's
candidates) point wherever they pointed when the row was made, and rows made before the admin's one-team forms
(`scoped_admin.OneTeamForm`) may point into another team. Django shows such a relation by its object's name, with
a link, in read-only fields (every field, to a viewer) and list columns: our job's page named the other team's
placement ("Rival campaign: Rival poster"), our preset list its sweep. Here staff see "Placement: one of another
team" instead, the words the delete confirmations use (`TeamScopedAdmin.get_deleted_objects`). So do an admin's own
methods that read the row beyond such a relation, once they say which (`shows_relation`): our placement list's
"print" column read the other team's candidate's verdict ("WILL NOT SCAN").

Editable relations offer the user's own teams' rows only (`scoped_admin.ScopedChoices`), so such a row's current
value was no choice: saving its page to change another field answered "Select a valid choice" (a raw-id input), or
cleared the relation without a word (a select, drawn with its empty choice). `KeepsItsRelations` keeps what a row
holds, named as a read-only field would name it, and still refuses any other row that is no choice of the user's.

Every admin's read-only relations link only to pages their user may open (`LinksThatOpen`); another row is named as
plain text: a row's maker who has left the team by their username, as the list's column names them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from django.contrib.admin.utils import flatten_fieldsets, get_fields_from_path
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Case, F, Field, Model, Q, QuerySet, When
from django.db.models.constants import LOOKUP_SEP
from django.db.models.expressions import OrderBy
from django.http import HttpRequest
from django.utils.text import capfirst

from qartsite.models import named


def of_another_team(model: type[Model]) -> str:
    """How a row of `model` that the user may not see is named to them: by its kind only.

    Args:
        model: the row's model.

    Returns:
        "<Kind>: one of another team".
    """
    return f"{capfirst(model._meta.verbose_name)}: one of another team"


def shows_relation(relation: str) -> Callable[[Callable], Callable]:
    """Declare that an admin method, a list column or a read-only field, shows something of the row beyond
    `relation` (a placement's print state is its artwork's verdict): where that row is another team's, the cell
    names it by its kind instead (`OtherTeamsRelations`), as a column of the relation itself would.

    Args:
        relation: the name of the model's relation the method follows.

    Returns:
        A decorator that marks the method and returns it.
    """
    def mark(method: Callable) -> Callable:
        method.shows = relation
        return method

    return mark


class OtherTeamsRelations:
    """Put in a team-scoped admin (`TeamScopedAdmin` is one): read-only relations and list columns that lead to rows
    the user may not see name them by their kind (`of_another_team`). `visible_rows(model, user)` says which rows a
    user sees."""

    def visible_rows(self, model: type[Model], user) -> QuerySet:
        raise NotImplementedError

    def shown_rows(self, model: type[Model], user) -> QuerySet:
        """The rows of `model` a relation names as they are to `user`: those the user sees, and those of no team (a
        sweep's or a halftone job's prompt, kept off the team's gallery), which are no other team's."""
        of_no_team = Q(**{f"{path}__isnull": True for path in model.team_paths})
        return model.objects.filter(Q(pk__in=self.visible_rows(model, user).values("pk")) | of_no_team)

    def crossing_relations(self) -> dict[str, Field]:
        """This model's relations, by name, to team-owned models other than the one that decides its team."""
        own = {path.split(LOOKUP_SEP)[0] for path in getattr(self.model, "team_paths", ())}
        return {field.name: field for field in self.model._meta.get_fields()
                if field.is_relation and field.concrete and field.name not in own
                and hasattr(field.related_model, "team_paths")}

    def _hidden(self, request: HttpRequest, field: Field, obj: Model) -> bool:
        """Whether `obj`'s `field` leads to a row (or, many-to-many, any row) the user may not see."""
        if field.many_to_many:
            ids = set(getattr(obj, field.name).values_list("pk", flat=True))
        else:
            ids = {getattr(obj, field.attname)} - {None}
        seen = self._seen(request, field.related_model, ids)
        return not all(seen[pk] for pk in ids)

    def _seen(self, request: HttpRequest, model: type[Model], ids: set) -> dict:
        """Whether the user sees each row of `model` (by id), asked once a request for any id among `ids`."""
        seen = request.__dict__.setdefault("_visible_rows", {}).setdefault(model, {})
        unknown = ids - seen.keys()
        if unknown:
            visible = set(self.shown_rows(model, request.user).filter(pk__in=unknown).values_list("pk", flat=True))
            seen.update({pk: pk in visible for pk in unknown})
        return seen

    def kept_names(self, request: HttpRequest, rows: list[Model]) -> list[str]:
        """How an editable relation names the rows it holds that are no choice of the user's (`KeepsItsRelations`):
        another team's by their kind, as a read-only field names them; others by their names (a row of no team;
        someone who left the team, whom the list's column names too). `rows` are of one model."""
        model = type(rows[0]) if rows else None
        seen = self._seen(request, model, {row.pk for row in rows}) if hasattr(model, "team_paths") else {}
        return [str(row) if seen.get(row.pk, True) else of_another_team(model) for row in rows]

    # Read-only fields: on the page as drawn (add, change, or the form again), a hidden relation's read-only field, or
    # a read-only method that shows one (`shows_relation`), is replaced by a read-only callable of the same name and
    # label, whatever the admin's own `get_readonly_fields`.

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        adminform = context.get("adminform")
        if adminform is not None and obj is not None and obj.pk is not None and not request.user.is_superuser:
            crossing = self.crossing_relations()
            fields = {name: self._relation_shown(name, crossing) for name in adminform.readonly_fields
                      if isinstance(name, str)}
            put_in_place(adminform, {
                name: read_only_as(name, getattr(getattr(self, name, None), "short_description", None)
                                   or field.verbose_name, of_another_team(field.related_model))
                for name, field in fields.items() if field is not None and self._hidden(request, field, obj)})
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _relation_shown(self, name: str, crossing: dict[str, Field]) -> Field | None:
        """The crossing relation a read-only field or a list column named `name` shows: the field of that name, or the
        one its method declares (`shows_relation`; a `clipped_column` declares its own), else None."""
        return crossing.get(getattr(getattr(self, name, None), "shows", None) or name)

    # List columns: a column of a crossing relation (a field's name, a `clipped_column` of one, or a method that
    # shows something of the row beyond it: `shows_relation`) checks its page's rows in one query per column
    # (`get_changelist_instance`), then names each hidden row's by its kind.

    def get_list_display(self, request):
        columns = super().get_list_display(request)
        if request.user.is_superuser:
            return columns
        # One callable per column and request: Django finds a list's sortable columns (`get_sortable_by`, which asks
        # for the columns again) by equality.
        made = request.__dict__.setdefault("_masked_columns", {})
        crossing = self.crossing_relations()
        return [made.setdefault((type(self), column), self._masked_column(request, column, crossing))
                if isinstance(column, str) else column for column in columns]

    def _masked_column(self, request: HttpRequest, column, crossing: dict[str, Field]):
        cell = getattr(self, column, None)
        field = self._relation_shown(column, crossing)
        if field is None or field.many_to_many:
            return column

        def shown(obj: Model):
            if self._hidden(request, field, obj):
                return of_another_team(field.related_model)
            return cell(obj) if callable(cell) else getattr(obj, field.name)

        shown.__name__ = column
        shown.crossing = field
        shown.short_description = getattr(cell, "short_description", field.verbose_name)
        # A method's column sorts as the method says (not at all, without `ordering`); a field's, by the field.
        order = getattr(cell, "admin_order_field", None) if callable(cell) else field.name
        shown.admin_order_field = self._masked_order(request, field, order)
        return shown

    def _masked_order(self, request: HttpRequest, field: Field, order):
        """What sorting by a masked column orders by: `order` (a field path, as Django's `admin_order_field`) for rows
        whose relation the user sees, nothing for the others, which sort together after every named row (before,
        Django put another team's sweep among ours by its hidden date, and the order hinted at it). A row without the
        relation hides nothing: a history's change of a campaign (no placement) sorts by its campaign."""
        if not isinstance(order, str):
            return order  # not sortable, or an expression of the admin's own: left as it is
        shown = self.shown_rows(field.related_model, request.user).values("pk")
        seen = Q(**{f"{field.attname}__isnull": True}) | Q(**{f"{field.attname}__in": shown})
        return HiddenLast(seen, sort_paths(self.model, order.lstrip("-"), order.startswith("-")))

    def get_changelist(self, request, **kwargs):
        return sorting_hidden_last(super().get_changelist(request, **kwargs))

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        fields = {column.crossing for column in changelist.list_display if hasattr(column, "crossing")}
        if fields:
            rows = list(changelist.result_list)  # the page's rows, read once: the template reads them from the cache
            for field in fields:
                self._seen(request, field.related_model, {getattr(row, field.attname) for row in rows} - {None})
        return changelist

    # Search: a list's search through a crossing relation (the job list searches its prompts' text) found our row by
    # the words of another team's row, spelling them out one guess at a time (found or not) where the row's name and
    # column no longer show them. A row whose relation is hidden is searched without such fields.

    def get_search_results(self, request, queryset, search_term):
        found, duplicates = super().get_search_results(request, queryset, search_term)
        crossing = self.crossing_relations()
        through = {first_step(name) for name in self.get_search_fields(request)} & {
            name for name, field in crossing.items() if not field.many_to_many}
        if request.user.is_superuser or not search_term or not through:
            return found, duplicates
        hidden = Q()
        for name in through:
            attname, model = crossing[name].attname, crossing[name].related_model
            hidden |= Q(**{f"{attname}__isnull": False}) & ~Q(**{f"{attname}__in": self.shown_rows(
                model, request.user).values("pk")})
        request._searching_without = through
        try:
            narrowed, more = (super().get_search_results(request, queryset.filter(hidden), search_term)
                              if self.get_search_fields(request) else (queryset.none(), False))
        finally:
            del request._searching_without
        return found.exclude(hidden) | narrowed, duplicates or more

    def get_search_fields(self, request):
        fields = super().get_search_fields(request)
        leaving = getattr(request, "_searching_without", ())
        return [name for name in fields if first_step(name) not in leaving] if leaving else fields


class LinksThatOpen:
    """Put in any admin: on a change page, a read-only relation links to its row's page only where that page opens for
    the user (`opens`); elsewhere it names the row as plain text, by its name, as the list's column does.

    Django links every read-only relation whose model has an admin (`AdminReadonlyField.get_admin_url` asks only
    whether the address exists, never the related admin's permissions or rows): a change's "changed by", a prompt's
    owner, who have left the team since, linked staff to a user page that answered "... doesn't exist. Perhaps it was
    deleted?"; the verifier model's "activated by", a superuser, likewise. A relation into another team's rows is
    named by its kind before this is asked (`OtherTeamsRelations`, ahead of this class in a `TeamScopedAdmin`)."""

    def opens(self, request: HttpRequest, row: Model) -> bool:
        """Whether `row`'s change page opens for the request's user, asked as that page asks: its model's admin finds
        it among the rows it shows them (`get_queryset`) and lets them view or change it.

        Args:
            request: the request drawing the page that would link to `row`.
            row: the row a relation of the page's object holds.

        Returns:
            True where the link would answer the page; False where it would refuse or send the user back to the index
            (Django draws no link at all for a model without an admin).
        """
        model_admin = self.admin_site._registry.get(type(row))
        return (model_admin is not None and model_admin.get_queryset(request).filter(pk=row.pk).exists()
                and model_admin.has_view_or_change_permission(request, row))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        adminform = context.get("adminform")
        if adminform is not None and obj is not None and obj.pk is not None and not request.user.is_superuser:
            unopened = {}
            # The fields still drawn: one that `OtherTeamsRelations` names by its kind has its stand-in in its place.
            drawn = set(flatten_fieldsets(adminform.fieldsets))
            for name in drawn & set(adminform.readonly_fields):
                field = self._linked_relation(name)
                row = getattr(obj, name) if field is not None and getattr(obj, field.attname) is not None else None
                if row is not None and not self.opens(request, row):
                    unopened[name] = read_only_as(name, field.verbose_name, str(row))
            put_in_place(adminform, unopened)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _linked_relation(self, name) -> Field | None:
        """The model's field that a read-only field named `name` shows where Django would link it (a foreign key or
        a one-to-one field); None for anything else (a method, a plain field, a many-to-many field: named without
        links)."""
        if not isinstance(name, str):
            return None
        try:
            field = self.model._meta.get_field(name)
        except FieldDoesNotExist:
            return None
        return field if field.concrete and (field.many_to_one or field.one_to_one) else None


def read_only_as(name: str, description: str, text: str) -> Callable[[Model], str]:
    """A read-only callable that stands in for the read-only field `name` of one object's change page: labelled
    `description`, showing `text` as plain text (escaped, no link).

    Args:
        name: the read-only field's (or method's) name.
        description: its label.
        text: what the page shows in its place.

    Returns:
        The callable, to put in the page's fieldsets (`put_in_place`).
    """
    def stand_in(obj: Model) -> str:
        return text

    stand_in.__name__ = name  # the row's CSS class and help text are the field's (or the method's)
    stand_in.short_description = description
    return stand_in


def put_in_place(adminform, stand_ins: dict[str, Callable]) -> None:
    """Draw `adminform` (a change page's) with each read-only field named in `stand_ins` replaced by its stand-in,
    whatever the admin's own `get_readonly_fields`."""
    if stand_ins:
        adminform.readonly_fields = [*adminform.readonly_fields, *stand_ins.values()]
        adminform.fieldsets = [(title, {**options, "fields": masked(options["fields"], stand_ins)})
                               for title, options in adminform.fieldsets]


class HiddenLast(Case):
    """A masked column's sort key (`OtherTeamsRelations._masked_order`): empty for the rows whose relation is hidden
    (not `seen`), which sort last in either direction, on any database (SQLite puts empty values first, PostgreSQL
    last), so they stay together. `keys` are the paths it sorts by, each with whether it sorts descending
    (`sort_paths`); the first is this expression's, the others follow it in the list (`SortsHiddenLast`)."""

    def __init__(self, seen: Q, keys: list[tuple[str, bool]]) -> None:
        (path, self.reverse), self.seen, self.keys = keys[0], seen, keys
        super().__init__(When(seen, then=F(path)), default=None)

    def asc(self, **kwargs) -> OrderBy:
        return OrderBy(self, descending=self.reverse, nulls_last=True)

    def desc(self, **kwargs) -> OrderBy:
        return OrderBy(self, descending=not self.reverse, nulls_last=True)

    def order_bys(self, first: OrderBy) -> list[OrderBy]:
        """`first` (this key as the list asked for it: `asc` or `desc`) and the keys after it, in the same sense."""
        flipped = first.descending != self.reverse
        return [first, *(OrderBy(Case(When(self.seen, then=F(path)), default=None), descending=descending ^ flipped,
                                 nulls_last=True) for path, descending in self.keys[1:])]


@cache
def sorting_hidden_last(changelist: type) -> type:
    """`changelist` with `SortsHiddenLast` before it: one class per change list class, made once."""
    return type(changelist.__name__, (SortsHiddenLast, changelist), {})


class SortsHiddenLast:
    """A team-scoped admin's change list (`OtherTeamsRelations.get_changelist`): a masked column sorts by every key
    of its relation's ordering (`HiddenLast.keys`), where Django takes one expression per column: sorted by its
    first key alone, a history sorted by campaign ordered only by `archived`, and labeling items sorted by candidate
    by their candidates' jobs, not their ranks."""

    def get_ordering(self, request, queryset):
        return [part for key in super().get_ordering(request, queryset) for part in (
            key.expression.order_bys(key) if isinstance(key, OrderBy) and isinstance(key.expression, HiddenLast)
            else [key])]


def sort_paths(model: type[Model], path: str, descending: bool = False, depth: int = 0) -> list[tuple[str, bool]]:
    """The columns that ordering `model`'s rows by `path` sorts by, each with whether descending, as Django orders by
    a relation: by every key of its model's `Meta.ordering` (a placement: by its campaign's, then its name), else by
    its id.

    Args:
        model: the rows' model.
        path: a field path ("source_run", "owner__username"), without a "-".
        descending: whether `path` itself sorts descending.
        depth: how many relations' orderings were followed to `path` (a model ordered by a relation to itself,
            through others, would loop).

    Returns:
        [(the path of a column, whether that column sorts descending), ...].
    """
    field = get_fields_from_path(model, path)[-1]
    if not field.is_relation:
        return [(path, descending)]
    keys = [key for key in field.related_model._meta.ordering if isinstance(key, str) and key.lstrip("-") != "?"]
    if not keys or depth == 8:
        return [(f"{path}{LOOKUP_SEP}pk", descending)]
    paths = []
    for key in keys:
        name, flipped = key.lstrip("-"), descending ^ key.startswith("-")
        paths += ([(f"{path}{LOOKUP_SEP}pk", flipped)] if name == "pk" else
                  sort_paths(model, f"{path}{LOOKUP_SEP}{name}", flipped, depth + 1))
    return paths


def first_step(search_field: str) -> str:
    """The relation or field a search field ("=prompt__text", "^name") starts from."""
    return str(search_field).lstrip("=^@").split(LOOKUP_SEP)[0]


def masked(names, masks: dict[str, Callable]) -> list:
    """A fieldset's `names` (nested in rows) with each of `masks` in its field's place."""
    return [masked(name, masks) if isinstance(name, (list, tuple)) else masks.get(name, name)
            if isinstance(name, str) else name for name in names]


class KeepsItsRelations:
    """A change form (`scoped_admin.OneTeamForm` is one) whose relations may keep the rows they hold now, though those
    are no choice of the user's: another team's row (one made before the one-team forms), someone who left the team.

    Each such row is added to its field's choices, named by `kept_names` (by its kind, when it is another team's: on a
    select's option and beside a raw-id input), so the page saved as drawn keeps it; the user may still choose one of
    their own rows, or none where the relation allows none. Any other row outside the choices is refused as before:
    only what the row already holds is added, and `holds` tells `scoped_admin.OneTeamForm`'s one-team check which
    values those are."""

    # How the kept rows are named, in their order: `OtherTeamsRelations.kept_names` for the form's request.
    kept_names: Callable[[list[Model]], list[str]] = staticmethod(lambda rows: [str(row) for row in rows])

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._held: dict[str, set] = {}
        if self.instance.pk is None:  # a new row (or "save as new") holds nothing yet
            return
        for name, field in self.fields.items():
            try:
                db_field = self.instance._meta.get_field(name)
            except FieldDoesNotExist:  # a form's own field (a placement's "print anyway")
                continue
            if getattr(field, "queryset", None) is not None and db_field.is_relation and db_field.concrete:
                self._keep(name, field, db_field)

    def _keep(self, name: str, field, db_field: Field) -> None:
        key = field.to_field_name or "pk"
        if db_field.many_to_many:
            held = set(getattr(self.instance, name).values_list(key, flat=True))
        else:
            held = {getattr(self.instance, db_field.attname)} - {None}
        self._held[name] = held
        if not held:
            return
        choices = field.queryset
        outside = held - set(choices.filter(**{f"{key}__in": held}).values_list(key, flat=True))
        if not outside:
            return
        model, kept = choices.model, Q(**{f"{key}__in": outside})
        rows = list(model._base_manager.filter(kept))
        names = dict(zip([getattr(row, key) for row in rows], self.kept_names(rows), strict=True))
        field.queryset = named(model._default_manager.filter(Q(pk__in=choices.values("pk")) | kept))
        label_of = field.label_from_instance
        field.label_from_instance = lambda row: names.get(getattr(row, key)) or label_of(row)
        widget = getattr(field.widget, "widget", field.widget)  # a select inside the admin's related-object wrapper
        if hasattr(widget, "kept"):  # a scoped raw-id input: the label beside it
            widget.kept = {str(value): label for value, label in names.items()}

    def holds(self, name: str, row: Model) -> bool:
        """Whether field `name` held `row` when the form was made (so it may keep it whoever's it is)."""
        key = self.fields[name].to_field_name or "pk"
        return getattr(row, key) in self._held.get(name, ())
