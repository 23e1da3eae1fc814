"""Placements in bulk: a CSV of placements read into checked rows, stored all at once; campaigns and placements
written back out as CSV.

The file's columns (a header row is required; names are case-insensitive and any run of spaces, brackets or hyphens
reads as `_`, so "Printed width (cm)" is `printed_width_cm`; `ALIASES` lists shorter names, like "Distance (m)"):

    name, kind, location, printed_quantity, printed_width_cm, scan_distance_m, destination_override

Only `name` is required as a column; a missing column leaves that field empty for every row (an empty kind is the
model's default, poster). Any other column is refused (a misspelt header would otherwise drop its data without a
word), except `short_url`, which the export writes and the import ignores: an imported placement always gets a new
short link. Cells are separated by commas, or by semicolons where the header has no comma (Excel's CSV in locales
whose decimal mark is a comma; there "12,5" in a numeric column reads as 12.5). Empty columns after the last header
(Excel's "name,kind,") are ignored while their cells are empty. A cell the export quoted so a spreadsheet would not
run it (`'=…`, `'-…`) reads as it was written (`qartsite.spreadsheets.csv_value`), so an export imports again.

Every row is checked by the placement page's own form (`campaigns.forms.PlacementForm`, so the model's validators
and `links.validate_destination` decide), and its errors come back as (row, column, message), the row numbered as a
spreadsheet numbers it (the header is row 1). Names must be new to the campaign and to the file. Nothing is stored
unless every row passes; then all rows are stored in one transaction, which checks the names again under a lock on
the campaign (two imports of one file at once would otherwise both pass their checks).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Count, Max, QuerySet, Sum

from campaigns import stats
from campaigns.forms import PlacementForm
from campaigns.models import ARCHIVED_NO_PLACEMENTS, Campaign, Placement, ScanRollup
from campaigns.names import name_key
from generator.core.codes.amounts import amount, over_cap
from generator.core.codes.echoes import echo
from qartsite.spreadsheets import csv_cell, csv_value

# A thousand rows with long addresses fit in a fraction of this. 1 MB as every size of the site reads
# (`generator.core.codes.amounts`: 2**20 bytes): the old 1,000,000 bytes would read "977 KB".
MAX_BYTES = 2**20
MAX_ROWS = 1000
COLUMNS = ("name", "kind", "location", "printed_quantity", "printed_width_cm", "scan_distance_m",
           "destination_override")
DECIMAL_COLUMNS = ("printed_width_cm", "scan_distance_m")
# The export's own columns, skipped by the import: a new placement gets a new short link, starts switched on, and has
# no scans of its own yet.
EXPORT_ONLY = ("active", "deployed_on", "latitude", "longitude", "notes", "created", "scans", "last_scan",
               "short_url")
# Headers people type for the same columns (after `column_key`).
ALIASES = {"printed_quantity": ("quantity", "printed"),
           "printed_width_cm": ("printed_width", "width", "width_cm"),
           "scan_distance_m": ("distance", "distance_m", "scan_distance", "scanning_distance", "scanning_distance_m"),
           "destination_override": ("destination", "override")}
CAMPAIGN_COLUMNS = ("id", "team", "name", "destination", "fallback_url", "starts_on", "ends_on", "dates_route",
                    "utm_source", "utm_medium", "utm_campaign", "archived", "created", "placements", "scans",
                    "daily_unique_visitors")
NOT_CSV = ("This is not a CSV file. Save the sheet as “CSV UTF-8 (comma delimited)” and upload that; spreadsheet "
           "(.xlsx, .ods) and other binary files are refused.")


class FileRefused(ValueError):
    """The file as a whole cannot be read (too large, not UTF-8 text, no header...): one message says why."""


class NamesTaken(ValueError):
    """Placements with some of the file's names were added after it was checked: nothing was stored; checking the
    file again says which rows."""


@dataclass(frozen=True)
class RowError:
    row: int  # as a spreadsheet numbers it: the header is row 1
    column: str  # "" when the error is about the whole row
    message: str


@dataclass
class CheckedFile:
    """A file's rows, each checked; `forms` holds the valid rows' bound forms, ready to save."""

    rows: int = 0
    forms: list[PlacementForm] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # columns read and left out (`EXPORT_ONLY`)

    @property
    def ok(self) -> bool:
        return self.rows > 0 and not self.errors

    @property
    def rows_with_errors(self) -> int:
        return len({error.row for error in self.errors})


class PlacementRowForm(PlacementForm):
    """One row: the placement form's rules for the CSV's columns (the artwork is chosen later, per placement)."""

    class Meta(PlacementForm.Meta):
        fields = list(COLUMNS)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The page's select shows the kinds; a file's cell does not: say them.
        self.fields["kind"].error_messages["invalid_choice"] = (
            f"“%(value)s” is not a kind of placement; the kinds are {', '.join(Placement.Kind.values)}.")


# Reading ----------------------------------------------------------------------------------------------------

def read_upload(upload) -> bytes:
    """The bytes of an uploaded file, refused before reading when it is over `MAX_BYTES`.

    Raises:
        FileRefused: the file is too large.
    """
    if upload.size is not None and upload.size > MAX_BYTES:
        raise FileRefused(too_large(upload.size))
    data = upload.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise FileRefused(too_large(None))
    return data


def cap_in_words() -> str:
    """The largest file accepted, as the import page and the API's documentation say it: "1 MB (1,000 rows)"."""
    return f"{amount(MAX_BYTES)} ({MAX_ROWS:,} rows)"


def too_large(size: int | None, what: str = "file") -> str:
    # Sizes by the site's one rule (decimal megabytes here read "The file is 1.0 MB; files up to 1 MB" of a file
    # over the cap), and a size just over the cap in words that differ from the cap's.
    sent = f"The {what} is {over_cap(size, MAX_BYTES)[0]}" if size else f"The {what} is too large"
    accepted = f"files up to {cap_in_words()} are" if what == "file" else f"up to {cap_in_words()} is"
    return f"{sent}; {accepted} accepted. Split it and try again."


def decode(data: bytes) -> str:
    """The file's text: UTF-8, with or without a byte-order mark (Excel writes one).

    Raises:
        FileRefused: too large, binary, or not UTF-8.
    """
    if len(data) > MAX_BYTES:
        raise FileRefused(too_large(len(data), sent_as(data)))
    if b"\x00" in data:
        raise FileRefused(NOT_CSV)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileRefused("The file is not UTF-8 text. Save it as “CSV UTF-8” and upload it again.") from None


class PastedRows(bytes):
    """The bytes of CSV rows sent as text (made by `pasted`), not as a file: the import's messages say "the text"
    of them. A kind of bytes rather than a flag beside them, so that every check of the same rows (the page's and the
    API's second check after `NamesTaken` included) says it without being told."""


def sent_as(data: bytes) -> str:
    """How the rows came, as the import's messages name it: "text" (`pasted`) or "file"."""
    return "text" if isinstance(data, PastedRows) else "file"


def pasted(text: str) -> PastedRows:
    """The bytes of a CSV sent as text (pasted on the page, `text` in the API) rather than as a file.

    Args:
        text: the rows as sent, the header row first.

    Returns:
        The text as UTF-8 (`PastedRows`), for `check` to read as it reads a file and speak of as text.

    Raises:
        FileRefused: the text holds a NUL, said of the text and its line: `decode`'s words for it are a binary
            file's ("save the sheet as CSV and upload that"), which pasted rows are not.
    """
    if "\x00" in text:
        number, line = next((number, line) for number, line in enumerate(re.split(r"\r\n|\r|\n", text), start=1)
                            if "\x00" in line)
        raise FileRefused(f"Line {number} of the text has a NUL character (\\u0000), which no CSV has: “{echo(line)}”. "
                          "Remove it and send the rows again.")
    return PastedRows(text.encode())


def column_key(header: str) -> str:
    """ "Printed width (cm)" -> "printed_width_cm"; "Destination override" -> "destination_override"."""
    return re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")


def column_of(header: str) -> str | None:
    """The column a header names (`COLUMNS` or `EXPORT_ONLY`), else None."""
    key = column_key(header)
    if key in COLUMNS or key in EXPORT_ONLY:
        return key
    return next((column for column, names in ALIASES.items() if key in names), None)


def csv_problem(error: str, line: int, delimiter: str, what: str = "file") -> str:
    """Python's csv error at `line` in a spreadsheet user's words (it said "field larger than field limit (131072)");
    `what` is "file" or "text" (`sent_as`)."""
    if error == "unexpected end of data":
        return f"a quoted cell is never closed (a \" with no closing \"), so the {what} ends inside it"
    if error.startswith("field larger than field limit"):
        return f"a cell on line {line} is longer than {csv.field_size_limit():,} characters"
    if error.endswith("expected after '\"'"):
        return (f"on line {line}, a quote inside a quoted cell must be doubled (\"\"), or the cell end at the quote "
                f"with a “{delimiter}”")
    return f"{error} (line {line})"


def records(text: str, what: str = "file") -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(the columns, the data rows) of the CSV text, each row with its number as a spreadsheet shows it (the header
    is row 1; blank rows are skipped but counted, so an error names the row a person sees).

    Args:
        text: the CSV.
        what: how it came, as the messages name it: "file" or "text" (`sent_as`).

    Raises:
        FileRefused: no header, an unknown or repeated column, no `name` column, a header and no rows, a file csv
            cannot read, or more than `MAX_ROWS` rows.
    """
    first = re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]  # old Mac files end lines with \r alone
    delimiter = ";" if ";" in first and "," not in first else ","  # Excel's CSV where the decimal mark is a comma
    # strict: an unclosed quote is refused, not read as one cell swallowing every row after it.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        read = [(number, row) for number, row in enumerate(reader, start=1) if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise FileRefused(f"The {what} cannot be read as CSV: "
                          f"{csv_problem(str(exc), reader.line_num, delimiter, what)}.") from None
    if not read:
        raise FileRefused(f"The {what} is empty. The first row names the columns: {', '.join(COLUMNS)}.")
    headers, rows = read[0][1], read[1:]
    width = len(headers)
    while headers and not headers[-1].strip():  # Excel's trailing separator ("name,kind,")
        headers.pop()
    if len(headers) < width:  # its cells are dropped while empty; a filled one is an error of its row (`check`)
        rows = [(number, row[:len(headers)] if len(row) <= width and not any(cell.strip() for cell in
                                                                           row[len(headers):]) else row)
                for number, row in rows]
    columns = []
    for header in headers:
        column = column_of(header)
        if column is None:
            raise FileRefused(f"Unknown column “{header.strip()}”. The columns are: {', '.join(COLUMNS)} (the first "
                              "row names them).")
        if column in columns:
            raise FileRefused(f"The column “{column}” appears twice.")
        columns.append(column)
    if "name" not in columns:
        raise FileRefused(f"The first row must name the columns, with at least “name”: {', '.join(COLUMNS)}.")
    if not rows:  # the page showed "0 problems in 0 of 0 rows", the API its own words: one message for both
        raise FileRefused(f"The {what} has a header but no rows.")
    if len(rows) > MAX_ROWS:
        raise FileRefused(f"The {what} has {len(rows):,} rows; up to {MAX_ROWS:,} are imported at once. Split it.")
    if delimiter == ";":
        decimal = [index for index, column in enumerate(columns) if column in DECIMAL_COLUMNS]
        rows = [(number, [decimal_point(cell) if index in decimal else cell for index, cell in enumerate(row)])
                for number, row in rows]
    return columns, rows


def decimal_point(cell: str) -> str:
    """ "12,5" -> "12.5": a number written with a decimal comma (semicolon-separated files); anything else as it is."""
    return cell.replace(",", ".") if re.fullmatch(r"\s*[-+]?\d*,\d+\s*", cell) else cell


# Checking and storing ---------------------------------------------------------------------------------------

def check(campaign: Campaign, data: bytes) -> CheckedFile:
    """Read and check every row of a CSV of placements for `campaign`; nothing is stored.

    Args:
        campaign (`Campaign`): where the placements would go.
        data (`bytes`): the file as uploaded, or rows sent as text (`pasted`), which the messages call "the text".

    Returns:
        `CheckedFile`: the row count, each valid row's form, and every error of every row.

    Raises:
        FileRefused: the campaign is archived, or the file as a whole cannot be read (see `decode` and `records`).
    """
    if campaign.archived:
        raise FileRefused(ARCHIVED_NO_PLACEMENTS)
    columns, rows = records(decode(data), sent_as(data))
    checked = CheckedFile(rows=len(rows), ignored=[c for c in columns if c in EXPORT_ONLY])
    taken = {name_key(name) for name in campaign.placements.values_list("name", flat=True)}  # read once, not a row
    seen: dict[str, int] = {}
    for number, cells in rows:
        if len(cells) > len(columns):
            checked.errors.append(RowError(number, "", f"The row has {len(cells)} cells; the header names "
                                                       f"{len(columns)} columns."))
            continue
        values = {column: csv_value(cell.strip()).strip() for column, cell in zip(columns, cells, strict=False)}
        values = {column: value for column, value in values.items() if column in COLUMNS}
        # "Poster" as a person types it; no kind: the model's default, as on the page.
        values["kind"] = values.get("kind", "").lower() or Placement._meta.get_field("kind").default
        form = PlacementRowForm(values, instance=Placement(campaign=campaign), team=campaign.team)
        form.taken_names = taken
        errors = [RowError(number, name if name != "__all__" else "", message)
                  for name, messages in form.errors.items() for message in messages]
        name = name_key(values.get("name", ""))  # one already in the campaign: the form's own error
        if name and name in seen and "name" not in form.errors:
            errors.append(RowError(number, "name", f"Row {seen[name]} has the same name."))
        seen.setdefault(name, number)
        if errors:
            checked.errors.extend(errors)
        else:
            checked.forms.append(form)
    return checked


def store(checked: CheckedFile) -> list[Placement]:
    """Store every row of a file that passed `check`, in one transaction: all of them or, on any failure, none.

    Raises:
        ValueError: the file did not pass.
        NamesTaken: the campaign got a placement with one of the file's names since `check`; nothing was stored.
        FileRefused: the campaign was archived since `check`; nothing was stored.
    """
    if not checked.ok:
        raise ValueError("Only a file whose every row passed can be imported.")
    campaign_id = checked.forms[0].instance.campaign_id
    with transaction.atomic():
        # Another import into this campaign waits here until this one commits, then sees its names.
        if Campaign.objects.select_for_update(no_key=True).only("pk", "archived").get(pk=campaign_id).archived:
            raise FileRefused(ARCHIVED_NO_PLACEMENTS)  # archived since the check
        taken = {name_key(name) for name in Placement.objects.filter(campaign_id=campaign_id)
                 .values_list("name", flat=True)}
        clashes = [form.cleaned_data["name"] for form in checked.forms if name_key(form.cleaned_data["name"]) in taken]
        if clashes:
            raise NamesTaken(f"The campaign got placements named {', '.join(clashes[:5])} meanwhile; nothing was "
                             "imported.")
        return [form.save() for form in checked.forms]


# Writing ----------------------------------------------------------------------------------------------------

def csv_line(values: Iterable) -> str:
    """One CSV line, each cell safe to open in a spreadsheet (`qartsite.spreadsheets.csv_cell`)."""
    out = io.StringIO()
    csv.writer(out).writerow([csv_cell(value) for value in values])
    return out.getvalue()


def placement_lines(placements: QuerySet[Placement], short_url) -> Iterator[str]:
    """The placements as CSV lines: the import's columns (so the file imports again) and `EXPORT_ONLY`: whether the
    code is switched on, where and when it went up, its notes, and its scans ever (bots left out, as on the pages).

    Args:
        placements: the placements to write, in the order given.
        short_url: placement -> the short link it carries (the request's site root decides it).
    """
    yield csv_line((*COLUMNS, *EXPORT_ONLY))
    ever = (stats.rollups_of(placements, ScanRollup.Dimension.TOTAL)
            .values("placement_id").annotate(scans=Sum("scans"), last=Max("last_scan")).order_by())
    scans = {row["placement_id"]: (row["scans"], row["last"]) for row in ever}
    for placement in placements.iterator(chunk_size=500):
        count, last = scans.get(placement.pk, (0, None))
        yield csv_line([*(getattr(placement, column) for column in COLUMNS),
                        "true" if placement.active else "false", placement.deployed_on, placement.latitude,
                        placement.longitude, placement.notes, placement.created.isoformat(), count,
                        last.isoformat() if last else "", short_url(placement)])


def campaign_lines(campaigns: QuerySet[Campaign]) -> Iterator[str]:
    """The campaigns as CSV lines (`CAMPAIGN_COLUMNS`), each with its number of placements, its scans ever and its
    unique visitors as the campaign list counts them (`stats.campaign_figures`): each placement's, day by day, added
    up, hence the column's name."""
    yield csv_line(CAMPAIGN_COLUMNS)
    figures = stats.campaign_figures(campaigns, None)
    rows = (campaigns.annotate(placement_count=Count("placements")).select_related("team")
            .order_by("team__name", "name", "pk"))
    for campaign in rows.iterator(chunk_size=500):
        ever = figures.get(campaign.pk, stats.CampaignFigures())
        yield csv_line([campaign.pk, campaign.team.name, campaign.name, campaign.destination, campaign.fallback_url,
                        campaign.starts_on, campaign.ends_on, "true" if campaign.dates_route else "false",
                        campaign.utm_source, campaign.utm_medium,
                        campaign.utm_campaign, "true" if campaign.archived else "false",
                        campaign.created.isoformat(), campaign.placement_count, ever.scans, ever.visitors])
