"""The admin lists' clipped columns: a cell of a long name, address, prompt or related object in one line clipped to
a width (static/qart/admin.css, which templates/admin/base_site.html loads on every admin page), the whole of it in
a title. Django keeps a foreign key's and a date's cell on one line, and a long one-word name or address pushed the
last columns of a list off a 1280 px screen (with the admin's menu folded, `static/qart/admin-sidebar.js`).

`clipped_column` makes such a column of any field; `ClippedColumns` holds those several admins share.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin
from django.utils.html import format_html

from qartsite.admin_relations import shows_relation


def clipped(value) -> str | None:
    """`value` in one clipped line, whole in its title.

    Args:
        value: what the cell shows (a model is shown by its `str`).

    Returns:
        The cell's HTML; None (the admin's "-") when there is no value.
    """
    if value is None or value == "":
        return None
    shown = str(value)
    return format_html('<span class="clipped" title="{}">{}</span>', shown, shown)


def clipped_column(field: str, description: str | None = None, ordering: str | None = None,
                   sortable: bool = True) -> Callable:
    """A list column (for `list_display`, as a method of the admin) showing `field` of each row clipped.

    Args:
        field: the attribute shown (a field, a relation, a property).
        description: the column's title; defaults to `field` in words ("created_by": "created by").
        ordering: what sorting by the column orders by; defaults to `field`.
        sortable: whether the column sorts at all (a destination change's before and after do not).

    Returns:
        The admin method drawing the cell.
    """
    @admin.display(description=description or field.replace("_", " "),
                   ordering=(ordering or field) if sortable else None)
    def cell(self, obj) -> str | None:
        return clipped(getattr(obj, field))

    cell.__name__ = f"{field}_cell"
    return shows_relation(field)(cell)  # a relation's column names another team's row by its kind


class ClippedColumns:
    """The clipped columns of the lists whose names, addresses, people and related rows run long: campaigns,
    placements, destination changes, alerts and share links; scans, rollups and alerts by "campaign: placement"; the
    generator's prompts, jobs, candidates, labels and sweeps by their prompts, links and people."""

    clipped = staticmethod(clipped)
    name_cell = clipped_column("name")
    owner_cell = clipped_column("owner", ordering="owner__username")
    # People: a username may be a long e-mail address, one unbroken word.
    created_by_cell = clipped_column("created_by", ordering="created_by__username")
    changed_by_cell = clipped_column("changed_by", ordering="changed_by__username")
    dismissed_by_cell = clipped_column("dismissed_by", ordering="dismissed_by__username")
    labeler_cell = clipped_column("labeler", ordering="labeler__username")
    campaign_cell = clipped_column("campaign")
    placement_cell = clipped_column("placement")
    location_cell = clipped_column("location")
    destination_cell = clipped_column("destination")
    before_cell = clipped_column("before", sortable=False)
    after_cell = clipped_column("after", sortable=False)
    label_cell = clipped_column("label")
    prompt_cell = clipped_column("prompt")
    content_cell = clipped_column("content")
    job_cell = clipped_column("job")
    session_cell = clipped_column("session")
    candidate_cell = clipped_column("candidate")
    result_cell = clipped_column("result")
    run_cell = clipped_column("run")
    source_run_cell = clipped_column("source_run")
    config_key_cell = clipped_column("config_key")
    code_version_cell = clipped_column("code_version")

    @admin.display(description="campaign: placement", ordering="campaign")
    @shows_relation("placement")  # a placement moved since into another team's campaign is named by its kind
    def where_cell(self, obj) -> str | None:
        """A change's placement ("campaign: placement"), else its campaign: one column for what two said twice."""
        return clipped(obj.placement or obj.campaign)
