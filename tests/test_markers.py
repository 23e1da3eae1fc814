"""The `worker`, `browser` and `s3` markers sit on exactly the tests that start a worker process or Chromium or store
media on an S3 server (make test's, or a drill's own), and every fault drill (tests/drills) carries `drill`, so
`make test-fast` (-m "not worker and not browser and not drill and not s3") leaves out all of those, and make test's
SQLite pass (-m "not s3") runs the S3 tests no second time."""

from __future__ import annotations

from types import SimpleNamespace


def starts_worker(item) -> bool:
    return "start_worker" in item.fixturenames


def drives_browser(item) -> bool:
    return "browser" in item.fixturenames


def stores_on_s3(item) -> bool:
    """On make test's S3 server (`media_storage`'s s3), or on a drill's own (`bucket_server`): the test runs once,
    in the PostgreSQL pass, as neither depends on the database."""
    callspec = getattr(item, "callspec", None)
    return ("bucket_server" in item.fixturenames
            or callspec is not None and callspec.params.get("media_storage") == "s3")


# marker -> (whether a test does that, what doing it means, said in the message)
STARTERS = {
    "worker": (starts_worker, "uses start_worker"),
    "browser": (drives_browser, "uses browser"),
    "s3": (stores_on_s3, "runs on media_storage's s3 or bucket_server"),
}


def marker_mismatches(items) -> list[str]:
    """'<test id>: <why>' for each collected test whose markers disagree with what it does."""
    problems = []
    for item in items:
        for marker, (does, doing) in STARTERS.items():
            marked = item.get_closest_marker(marker) is not None
            if does(item) and not marked:
                problems.append(f"{item.nodeid}: {doing} without @pytest.mark.{marker}")
            elif marked and not does(item):
                problems.append(f"{item.nodeid}: has @pytest.mark.{marker} but does not: {doing}")
    return problems


def test_the_markers_match_the_fixtures_of_every_collected_test(request):
    assert marker_mismatches(request.session.items) == []


def test_the_check_reports_a_missing_and_a_stray_marker():
    def fake(nodeid, fixtures, markers, params=None):
        item = SimpleNamespace(nodeid=nodeid, fixturenames=fixtures,
                               get_closest_marker=lambda name: name if name in markers else None)
        if params is not None:
            item.callspec = SimpleNamespace(params=params)
        return item

    items = [
        fake("a", ["start_worker"], []),
        fake("b", [], ["browser"]),
        fake("c", ["browser"], ["browser"]),
        fake("d", ["media_storage"], [], {"media_storage": "s3"}),
        fake("e", ["media_storage"], ["s3"], {"media_storage": "filesystem"}),
        fake("f", ["media_storage"], ["s3"], {"media_storage": "s3"}),
        fake("g", ["bucket_server"], []),
        fake("h", ["bucket_server"], ["s3"]),
    ]
    problems = marker_mismatches(items)
    assert problems == [
        "a: uses start_worker without @pytest.mark.worker",
        "b: has @pytest.mark.browser but does not: uses browser",
        "d: runs on media_storage's s3 or bucket_server without @pytest.mark.s3",
        "e: has @pytest.mark.s3 but does not: runs on media_storage's s3 or bucket_server",
        "g: runs on media_storage's s3 or bucket_server without @pytest.mark.s3",
    ]


def test_every_fault_drill_is_marked_so_the_quick_loop_leaves_it_out(request):
    unmarked = [item.nodeid for item in request.session.items
                if item.nodeid.startswith("tests/drills/") and item.get_closest_marker("drill") is None]
    assert unmarked == []
