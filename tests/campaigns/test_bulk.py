from __future__ import annotations

import csv
import io
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns import bulk
from campaigns.models import Campaign, Placement
from tests.campaigns.rollup_data import event

HEADER = "name,kind,location,printed_quantity,printed_width_cm,scan_distance_m,destination_override\n"
GOOD = (HEADER + "Station poster,poster,Platform 2,200,30,1.5,https://shop.example.com/station\n"
        "Flyer A,Flyer,Market,5000,,,\n")


def errors_of(checked: bulk.CheckedFile) -> set[tuple[int, str]]:
    return {(error.row, error.column) for error in checked.errors}


@pytest.mark.django_db
class TestCheck:
    def test_it_reads_a_good_file_and_stores_nothing(self, campaign):
        checked = bulk.check(campaign, GOOD.encode())
        assert checked.ok and checked.rows == 2 and checked.errors == []
        assert [form.cleaned_data["kind"] for form in checked.forms] == ["poster", "flyer"]
        assert checked.forms[0].cleaned_data["printed_width_cm"] == 30.0
        assert Placement.objects.count() == 0

    def test_it_stores_every_row_in_one_go(self, campaign):
        placements = bulk.store(bulk.check(campaign, GOOD.encode()))
        assert [p.name for p in placements] == ["Station poster", "Flyer A"]
        poster = Placement.objects.get(name="Station poster")
        assert (poster.campaign, poster.printed_quantity, poster.scan_distance_m, poster.destination_override) == (
            campaign, 200, 1.5, "https://shop.example.com/station")
        assert len({p.slug for p in placements}) == 2 and all(p.slug for p in placements)

    def test_it_stores_nothing_when_a_row_fails_while_storing(self, campaign, monkeypatch):
        checked = bulk.check(campaign, GOOD.encode())
        saved = Placement.save

        def fail_second(self, *args, **kwargs):
            if self.name == "Flyer A":
                raise RuntimeError("disk full")
            return saved(self, *args, **kwargs)

        monkeypatch.setattr(Placement, "save", fail_second)
        with pytest.raises(RuntimeError):
            bulk.store(checked)
        assert Placement.objects.count() == 0

    def test_it_refuses_to_store_a_file_with_errors(self, campaign):
        checked = bulk.check(campaign, (HEADER + ",poster\n").encode())
        with pytest.raises(ValueError):
            bulk.store(checked)

    def test_it_reports_every_bad_row_with_its_row_and_column(self, campaign):
        Placement.objects.create(campaign=campaign, name="Old poster")
        text = HEADER + "\n".join([
            "Good one,poster,,,,,",
            ",poster,,,,,",  # 3: no name
            "Bad kind,sticker,,,,,",  # 4
            "Bad quantity,poster,,many,,,",  # 5
            "Negative quantity,poster,,-5,,,",  # 6
            "Too wide,poster,,,900,,",  # 7
            "Too near,poster,,,,0.01,",  # 8
            "Script,poster,,,,,javascript:alert(1)",  # 9
            "Relative,poster,,,,,/offer",  # 10
            "old POSTER,poster,,,,,",  # 11: taken in the campaign
            "Good one,flyer,,,,,",  # 12: same name as row 2
            "Too,many,cells,,,,,,",  # 13
            "x" * 201 + ",poster,,,,,",  # 14
        ]) + "\n"
        checked = bulk.check(campaign, text.encode())
        assert not checked.ok and checked.rows == 13
        assert errors_of(checked) == {
            (3, "name"), (4, "kind"), (5, "printed_quantity"), (6, "printed_quantity"), (7, "printed_width_cm"),
            (8, "scan_distance_m"), (9, "destination_override"), (10, "destination_override"), (11, "name"),
            (12, "name"), (13, ""), (14, "name")}
        messages = {(e.row, e.column): e.message for e in checked.errors}
        assert messages[(9, "destination_override")] == "The destination must start with http:// or https://."
        assert messages[(12, "name")] == "Row 2 has the same name."
        assert messages[(11, "name")] == "The campaign already has a placement with this name."  # said once
        assert "sticker" in messages[(4, "kind")] and "the kinds are poster, " in messages[(4, "kind")]

    def test_it_refuses_a_quantity_over_a_hundred_million_with_the_limit(self, campaign):
        checked = bulk.check(campaign, (HEADER + "Huge run,flyer,,1000000000000,,,\n"
                                                 "Largest run,flyer,,100000000,,,\n").encode())
        assert [(e.row, e.column) for e in checked.errors] == [(2, "printed_quantity")]
        assert "100,000,000" in checked.errors[0].message

    def test_it_refuses_numbers_written_in_other_digits_or_with_underscores(self, campaign):
        # int() and float() read them: "1_000" was stored as 1000, "５０" (full width) as 50.
        checked = bulk.check(campaign, (HEADER + "Run,flyer,,1_000,,,\n"
                                                 "Wide,flyer,,,５０,,\n").encode())
        assert {(e.row, e.column, e.message) for e in checked.errors} == {
            (2, "printed_quantity", "Enter a whole number."), (3, "printed_width_cm", "Enter a number.")}

    def test_it_reads_headers_as_people_write_them(self, campaign):
        text = ("\ufeffName,KIND,Printed quantity,Printed width (cm),Distance (m),Destination override,short_url\r\n"
                "Poster,poster,10,20,2,,https://qart.example/r/AAAAAAAA\r\n")
        checked = bulk.check(campaign, text.encode())
        assert checked.ok, checked.errors
        data = checked.forms[0].cleaned_data
        assert (data["name"], data["printed_quantity"], data["printed_width_cm"], data["scan_distance_m"]) == (
            "Poster", 10, 20.0, 2.0)
        assert checked.ignored == ["short_url"]

    def test_it_tolerates_a_byte_order_mark_and_semicolons(self, campaign):
        checked = bulk.check(campaign, "\ufeffname;kind\nPoster;billboard\n".encode())
        assert checked.ok and checked.forms[0].cleaned_data["kind"] == "billboard"

    def test_it_leaves_the_kind_to_the_model_default_when_empty(self, campaign):
        checked = bulk.check(campaign, b"name\nPoster\n")
        assert checked.ok and checked.forms[0].cleaned_data["kind"] == "poster"

    @pytest.mark.parametrize(("data", "message"), [
        (b"", "The file is empty."),
        (b"\n\n", "The file is empty."),
        (b"kind,location\nposter,x\n", "with at least “name”"),
        (b"name,colour\nA,red\n", "Unknown column “colour”"),
        (b"name,Name\nA,B\n", "appears twice"),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00", "This is not a CSV file"),
        ("name\nCafé\n".encode("latin-1"), "not UTF-8"),
        (b"name\n" + b"a\n" * (bulk.MAX_ROWS + 1), f"{bulk.MAX_ROWS + 1:,} rows"),
        (b"name\n" + b"a" * bulk.MAX_BYTES, "files up to 1 MB"),
    ])
    def test_it_refuses_a_file_it_cannot_read_with_one_message(self, campaign, data, message):
        with pytest.raises(bulk.FileRefused, match=message):
            bulk.check(campaign, data)

    def test_it_refuses_any_file_for_an_archived_campaign(self, campaign):
        campaign.set_archived(True)
        with pytest.raises(bulk.FileRefused, match="archived: bring it back before adding placements"):
            bulk.check(campaign, b"name\nPoster\n")

    def test_it_stores_nothing_for_a_campaign_archived_since_the_check(self, campaign):
        checked = bulk.check(campaign, b"name\nPoster\nFlyer\n")
        assert checked.ok
        Campaign.objects.filter(pk=campaign.pk).update(archived=True)  # another tab archived it meanwhile
        with pytest.raises(bulk.FileRefused, match="archived: bring it back before adding placements"):
            bulk.store(checked)
        assert not campaign.placements.exists()

    def test_it_refuses_an_unclosed_quote_instead_of_merging_rows(self, campaign):
        text = 'name,location\nA,"Platform 2\nB,Gate\nC,Hall\n'
        with pytest.raises(bulk.FileRefused, match="cannot be read as CSV: a quoted cell is never closed"):
            bulk.check(campaign, text.encode())

    @pytest.mark.parametrize(("text", "words"), [
        ("name\n" + "x" * 140_000 + "\n", "a cell on line 2 is longer than 131,072 characters"),
        ('name,location\nA,"Gate"B\n', 'on line 2, a quote inside a quoted cell must be doubled'),
    ])
    def test_it_says_what_it_cannot_read_in_a_spreadsheet_users_words(self, campaign, text, words):
        # Python's own words were "field larger than field limit (131072)" and "',' expected after '\"'"
        with pytest.raises(bulk.FileRefused, match=re.escape(words)):
            bulk.check(campaign, text.encode())

    def test_it_reads_decimal_commas_in_a_semicolon_file(self, campaign):
        text = "name;printed_width_cm;scan_distance_m;location\nPoster;12,5;1,25;Hall 1,2\n"
        checked = bulk.check(campaign, text.encode())
        assert checked.ok, checked.errors
        data = checked.forms[0].cleaned_data
        assert (data["printed_width_cm"], data["scan_distance_m"], data["location"]) == (12.5, 1.25, "Hall 1,2")

    def test_names_that_look_the_same_are_the_same(self, campaign):
        # "é" as one character and as "e" + accent, and a hidden zero-width space, passed as different names.
        Placement.objects.create(campaign=campaign, name="Caf\u00e9 poster")
        text = "name\nCafe\u0301 poster\nHall\u200b A\nhall a\n"
        errors = bulk.check(campaign, text.encode()).errors
        assert [(e.row, e.column) for e in errors] == [(2, "name"), (4, "name")]

    def test_it_reads_a_semicolon_file_with_old_mac_line_ends(self, campaign):
        text = "name;printed_width_cm\rPoster;12,5\r"  # the header was the whole file to the delimiter's guess
        checked = bulk.check(campaign, text.encode())
        assert checked.ok, checked.errors
        assert checked.forms[0].cleaned_data["printed_width_cm"] == 12.5

    def test_it_names_the_row_a_spreadsheet_shows_past_blank_rows(self, campaign):
        # Blank rows were skipped and not counted: the error named row 3 for the fifth row of the sheet.
        text = "name,kind\nGood,poster\n\n,,\nBad kind,sticker\n"
        [error] = bulk.check(campaign, text.encode()).errors
        assert error.row == 5 and error.column == "kind"

    def test_it_ignores_a_trailing_empty_column_while_its_cells_are_empty(self, campaign):
        checked = bulk.check(campaign, b"name,kind,\nPoster,poster,\nFlyer,flyer\n")
        assert checked.ok, checked.errors
        assert [form.cleaned_data["name"] for form in checked.forms] == ["Poster", "Flyer"]
        checked = bulk.check(campaign, b"name,kind,\nPoster,poster,extra\n")
        assert errors_of(checked) == {(2, "")}

    def test_it_reads_cells_the_export_quoted_as_they_were_written(self, campaign):
        checked = bulk.check(campaign, b"name,location\n'=1+1,'-2nd floor\n'Tis the season,'plain\n")
        assert checked.ok, checked.errors
        assert [(form.cleaned_data["name"], form.cleaned_data["location"]) for form in checked.forms] == [
            ("=1+1", "-2nd floor"), ("'Tis the season", "'plain")]

    def test_it_stores_nothing_when_another_import_took_a_name_meanwhile(self, campaign):
        first, second = bulk.check(campaign, GOOD.encode()), bulk.check(campaign, GOOD.encode())
        assert first.ok and second.ok  # both checked before either stored, as two requests at once
        bulk.store(first)
        with pytest.raises(bulk.NamesTaken, match="Station poster, Flyer A"):
            bulk.store(second)
        assert campaign.placements.count() == 2

    def test_it_locks_the_campaign_while_storing(self, campaign):
        checked = bulk.check(campaign, GOOD.encode())
        with CaptureQueriesContext(connection) as queries:
            bulk.store(checked)
        locks = [q["sql"] for q in queries.captured_queries if 'FROM "campaigns_campaign"' in q["sql"]]
        # SQLite has no FOR UPDATE (its writers are serialised anyway): the campaign is still read first.
        assert locks and (not connection.features.has_select_for_update or "FOR NO KEY UPDATE" in locks[0])

    def test_it_refuses_a_header_without_rows(self, campaign):
        # The page said "0 problems in 0 of 0 rows" of it; the API had its own words
        with pytest.raises(bulk.FileRefused, match=r"^The file has a header but no rows\.$"):
            bulk.check(campaign, HEADER.encode())

    @pytest.mark.parametrize(("text", "message"), [
        ("\n\n", "The text is empty. The first row names the columns"),
        (HEADER, "The text has a header but no rows."),
        ('name\n"Gate poster\n', "The text cannot be read as CSV: a quoted cell is never closed (a \" with no "
                                  "closing \"), so the text ends inside it."),
        ("name\n{many rows}", f"The text has {bulk.MAX_ROWS + 1:,} rows; up to"),
        ("name\n{too long}", "The text is over 1 MB; up to 1 MB (1,000 rows) is accepted. Split it and try again."),
    ])
    def test_it_says_the_text_of_rows_sent_as_text(self, campaign, text, message):
        text = text.format(**{"many rows": "a\n" * (bulk.MAX_ROWS + 1), "too long": "a" * bulk.MAX_BYTES})
        with pytest.raises(bulk.FileRefused) as refused:
            bulk.check(campaign, bulk.pasted(text))
        assert str(refused.value).startswith(message) and "file" not in str(refused.value)


class _Upload:
    def __init__(self, data: bytes, size: int | None = None) -> None:
        self.data, self.size, self.read_sizes = data, len(data) if size is None else size, []

    def read(self, size: int = -1) -> bytes:
        self.read_sizes.append(size)
        return self.data if size < 0 else self.data[:size]


class TestReadUpload:
    def test_it_refuses_a_large_file_before_reading_it(self):
        upload = _Upload(b"x", size=5 * 2**20)
        with pytest.raises(bulk.FileRefused, match="The file is 5 MB"):
            bulk.read_upload(upload)
        assert upload.read_sizes == []

    def test_it_says_sizes_as_every_refusal_of_the_site_does(self):
        # Decimal megabytes of its own read "The file is 1.0 MB; files up to 1 MB" of a file over the cap
        # (and 1.0 MB where the site's other refusals would say 0.95 MB).
        with pytest.raises(bulk.FileRefused) as refused:
            bulk.read_upload(_Upload(b"x", size=2**20 + 42_000))
        assert str(refused.value) == ("The file is 1.04 MB; files up to 1 MB (1,000 rows) are accepted. Split it and "
                                      "try again.")

    def test_it_reads_no_more_than_the_cap_when_the_size_is_unknown(self):
        upload = _Upload(b"x" * (bulk.MAX_BYTES + 10), size=None)
        upload.size = None
        with pytest.raises(bulk.FileRefused):
            bulk.read_upload(upload)
        assert upload.read_sizes == [bulk.MAX_BYTES + 1]


@pytest.mark.django_db
class TestExport:
    def test_an_export_imports_again_into_another_campaign(self, campaign, team_users):
        bulk.store(bulk.check(campaign, GOOD.encode()))
        exported = "".join(bulk.placement_lines(campaign.placements.order_by("name"), lambda p: f"https://s/{p.slug}"))
        assert exported.splitlines()[0] == (HEADER.strip() + ",active,deployed_on,latitude,longitude,notes,created,"
                                            "scans,last_scan,short_url")
        other = Campaign.objects.create(team=team_users.team, name="Autumn", destination="https://shop.example.com/")
        checked = bulk.check(other, exported.encode())
        assert checked.ok, checked.errors
        bulk.store(checked)
        fields = ("name", "kind", "location", "printed_quantity", "printed_width_cm", "scan_distance_m",
                  "destination_override")
        assert (list(other.placements.order_by("name").values_list(*fields))
                == list(campaign.placements.order_by("name").values_list(*fields)))
        assert not set(other.placements.values_list("slug", flat=True)) & set(
            campaign.placements.values_list("slug", flat=True))

    def test_an_export_of_formula_like_cells_imports_as_it_was(self, campaign, team_users):
        Placement.objects.create(campaign=campaign, name="=1+1", location="-2nd floor")
        exported = "".join(bulk.placement_lines(campaign.placements.all(), lambda p: ""))
        assert "'=1+1,poster,'-2nd floor" in exported
        other = Campaign.objects.create(team=team_users.team, name="Autumn", destination="https://shop.example.com/")
        bulk.store(bulk.check(other, exported.encode()))
        assert list(other.placements.values_list("name", "location")) == [("=1+1", "-2nd floor")]

    def test_it_writes_cells_a_spreadsheet_will_not_run(self, campaign):
        Placement.objects.create(campaign=campaign, name="=HYPERLINK(\"https://evil.example\")")
        exported = "".join(bulk.placement_lines(campaign.placements.all(), lambda p: ""))
        assert "'=HYPERLINK" in exported

    def test_it_writes_campaigns_with_their_placement_counts(self, campaign):
        Placement.objects.create(campaign=campaign, name="A")
        Placement.objects.create(campaign=campaign, name="B")
        lines = list(bulk.campaign_lines(Campaign.objects.all()))
        assert lines[0].strip() == ",".join(bulk.CAMPAIGN_COLUMNS)
        assert lines[1].startswith(f"{campaign.pk},Acme,Spring Sale,https://shop.example.com/,,,,true,qr,print,")
        assert lines[1].strip().endswith(",false," + campaign.created.isoformat() + ",2,0,0")

    def test_the_exports_say_what_the_pages_show_switched_off_codes_and_scans(self, campaign, team_users):
        # A switched-off code's row looked live, and no export had a scan count: a team leaving could not take its
        # figures out as a file.
        from datetime import timedelta

        from django.utils import timezone

        from campaigns.drainer import store_events

        on = Placement.objects.create(campaign=campaign, name="A", notes="by the door")
        off = Placement.objects.create(campaign=campaign, name="B", active=False)
        now = timezone.now()
        store_events([event(on, now - timedelta(days=3), visitor="1" * 32), event(on, now, visitor="2" * 32),
                      event(off, now, visitor="3" * 32), event(on, now, visitor="4" * 32, is_bot=True)])
        rows = list(csv.DictReader(io.StringIO("".join(bulk.placement_lines(campaign.placements.order_by("name"),
                                                                             lambda p: "")))))
        assert [(r["name"], r["active"], r["scans"], r["notes"]) for r in rows] == [
            ("A", "true", "2", "by the door"), ("B", "false", "1", "")]
        assert rows[0]["last_scan"].startswith(str(now.date()))
        [row] = list(csv.DictReader(io.StringIO("".join(bulk.campaign_lines(Campaign.objects.all())))))
        assert (row["placements"], row["scans"], row["daily_unique_visitors"]) == ("2", "3", "3")
        # The export's own columns are skipped on import: new placements start switched on, without scans.
        other = Campaign.objects.create(team=team_users.team, name="Autumn", destination="https://shop.example.com/")
        exported = "".join(bulk.placement_lines(campaign.placements.all(), lambda p: ""))
        bulk.store(bulk.check(other, exported.encode()))
        assert list(other.placements.order_by("name").values_list("name", "active", "notes")) == [
            ("A", True, ""), ("B", True, "")]
