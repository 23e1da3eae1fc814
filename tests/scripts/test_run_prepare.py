"""`make run`'s preparation (scripts/run_prepare.py), run as run.sh runs it."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import django

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "run_prepare.py"


def test_it_stops_on_ctrl_c_without_a_traceback(monkeypatch, capsys):
    # Ctrl-C in the first seconds of `make run` lands here, most often while Django loads: 40 lines of traceback.
    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(sys, "argv", [str(SCRIPT)])
    monkeypatch.setattr(django, "setup", interrupted)
    ended = None
    try:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    except BaseException as exc:  # noqa: BLE001 (a KeyboardInterrupt let through would stop pytest itself)
        ended = exc
    assert isinstance(ended, SystemExit) and ended.code == 130
    assert capsys.readouterr() == ("", "")
