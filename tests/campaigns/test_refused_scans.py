"""Where the drainer keeps the scans the database refused (`campaigns.refused_scans`)."""

from __future__ import annotations

import logging

import pytest
from django.utils import timezone

from campaigns import refused_scans
from campaigns.scan_buffer import scan_event
from tests.campaigns.refusals import refused_logs
from tests.conftest import disk_full_after


def test_a_scan_set_aside_twice_is_kept_and_logged_once(scan_redis, caplog):
    # a drainer that died between setting a scan aside and acknowledging it sets it aside again at its next pass
    made = scan_event(1, timezone.now())
    for _ in range(2):
        assert refused_scans.set_aside(made, "value too long", scan_redis) == "redis"
        assert refused_scans.set_aside(made, "value too long", None) == "file"
    assert [one.event for one in refused_scans.listed(scan_redis)] == [made]
    assert len(refused_logs(caplog)) == 2  # once where each keeps it
    assert refused_scans.collect(scan_redis) == 1 and [one.event for one in refused_scans.listed(scan_redis)] == [made]


def test_an_unreadable_file_is_said_once_and_set_apart(scan_redis, caplog):
    folder = refused_scans.folder()
    folder.mkdir(parents=True)
    (folder / f"{'0' * 32}{refused_scans.FILE_SUFFIX}").write_text('{"event": {"id": "no')  # cut short
    with caplog.at_level(logging.ERROR):
        assert refused_scans.collect(scan_redis) == 0 and refused_scans.collect(scan_redis) == 0
    assert len([r for r in caplog.records if "cannot be read" in r.getMessage()]) == 1
    assert [path.name for path in folder.iterdir()] == [f"{'0' * 32}.json{refused_scans.UNREADABLE_SUFFIX}"]
    assert refused_scans.listed(scan_redis) == []


def test_the_reason_is_the_databases_first_line_without_the_value_it_quotes():
    error = Exception("value too long for type character varying(500)\n"
                      'CONTEXT:  COPY x, line 1, column referer: "https://a/?token=s"')
    assert refused_scans.reason_of(error) == "value too long for type character varying(500)"


def test_a_scan_that_cannot_be_set_aside_on_a_full_disk_leaves_no_file(caplog):
    # Redis away and the disk full: the caller acknowledges nothing (the scan stays in its spool), and no cut-short
    # file is left for `collect` to find unreadable, holding the space the next try needs
    made = scan_event(1, timezone.now(), referer="https://a.example/" + "p" * 4000)
    with disk_full_after(1000), pytest.raises(OSError):
        refused_scans.set_aside(made, "value too long", None)
    assert list(refused_scans.folder().iterdir()) == []
    assert refused_scans.set_aside(made, "value too long", None) == "file"
    assert [refused.event for _, refused in refused_scans.files()] == [made]
