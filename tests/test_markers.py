"""The `worker` and `browser` markers sit on exactly the tests that start a worker process or Chromium, and every
fault drill (tests/drills) carries `drill`, so `make test-fast` (-m "not worker and not browser and not drill") leaves
out all of those."""

from __future__ import annotations

from types import SimpleNamespace

# marker -> the fixture through which a test starts that process
STARTERS = {"worker": "start_worker", "browser": "browser"}


def marker_mismatches(items) -> list[str]:
    """'<test id>: <why>' for each collected test whose markers disagree with the fixtures it uses."""
    problems = []
    for item in items:
        for marker, fixture in STARTERS.items():
            marked = item.get_closest_marker(marker) is not None
            starts = fixture in item.fixturenames
            if starts and not marked:
                problems.append(f"{item.nodeid}: uses {fixture} without @pytest.mark.{marker}")
            elif marked and not starts:
                problems.append(f"{item.nodeid}: has @pytest.mark.{marker} but does not use {fixture}")
    return problems


def test_the_markers_match_the_fixtures_of_every_collected_test(request):
    assert marker_mismatches(request.session.items) == []


def test_the_check_reports_a_missing_and_a_stray_marker():
    def fake(nodeid, fixtures, markers):
        return SimpleNamespace(nodeid=nodeid, fixturenames=fixtures,
                               get_closest_marker=lambda name: name if name in markers else None)

    items = [fake("a", ["start_worker"], []), fake("b", [], ["browser"]), fake("c", ["browser"], ["browser"])]
    problems = marker_mismatches(items)
    assert len(problems) == 2
    assert problems[0].startswith("a: uses start_worker without @pytest.mark.worker")
    assert problems[1].startswith("b: has @pytest.mark.browser but does not use browser")


def test_every_fault_drill_is_marked_so_the_quick_loop_leaves_it_out(request):
    unmarked = [item.nodeid for item in request.session.items
                if item.nodeid.startswith("tests/drills/") and item.get_closest_marker("drill") is None]
    assert unmarked == []
