"""qart_report: the report folder (every plot, index.html), --select storing the team default, bad inputs."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from generator.core.evals import statistics
from generator.models import EvalRun, GenerationPreset
from tests.generator.sweep_data import key_of, make_run

PNG = b"\x89PNG\r\n\x1a\n"


def run(*args: str) -> str:
    out = StringIO()
    call_command("qart_report", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def fails(*args: str) -> str:
    with pytest.raises(CommandError) as caught:
        run(*args)
    assert caught.value.returncode == 2
    return str(caught.value)


@pytest.fixture
def sweep(team_users) -> EvalRun:
    return make_run(team_users.team, team_users.owner)


def test_it_writes_every_plot_and_an_index_that_shows_them(sweep, tmp_path):
    out = tmp_path / "report"
    printed = run(sweep.name, "-o", str(out))
    expected = {f"{name}.png" for name in statistics.PLOTS} | {"toast.png"}
    for name in expected:
        data = (out / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 1000, name
    page = (out / "index.html").read_text()
    for name in expected:
        assert f'src="{name}"' in page
    assert "conditioning_scale=1.5,control_start=0.25" in page and "87.5%" in page
    assert "“a misty forest” across conditioning_scale × control_start" in page
    assert "Wrote 7 files" in printed


def test_it_prints_the_summary_table(sweep, tmp_path):
    printed = run(str(sweep.pk), "-o", str(tmp_path))
    line = next(line for line in printed.splitlines() if line.startswith(key_of(1.0, 0.0)))
    # 3 of 8 candidates scan, from 2 finished samples (the failed and the queued one do not count).
    assert line.split()[1:4] == ["2", "8", "37.5%"]
    assert "8 finished sample(s) of 10" in printed
    assert f"Suggested default: {key_of(1.5, 0.25)}" in printed


def test_it_reports_json(sweep, tmp_path):
    data = json.loads(run(sweep.name, "-o", str(tmp_path), "--json"))
    rates = {c["config_key"]: c["scan_rate"] for c in data["configurations"]}
    assert rates == {key_of(1.0, 0.0): 3 / 8, key_of(1.0, 0.25): 0.5, key_of(1.5, 0.0): 7 / 8,
                     key_of(1.5, 0.25): 1.0}
    assert data["preset"] is None and len(data["files"]) == 7


def test_it_stores_the_best_configuration_as_the_team_default(sweep, tmp_path, team_users):
    printed = run(sweep.name, "-o", str(tmp_path), "--select", "best", "--min-scan-rate", "0.85")
    preset = GenerationPreset.objects.get(team=team_users.team, is_default=True)
    # 7/8 and 8/8 reach 85%; of those, cs 1.5 / start 0.0 looks better (5.0 against 4.0).
    # No seed, repair or max_batches: those are how the sweep measured, not what people's jobs should use.
    assert preset.params == {"steps": 20, "candidates_per_batch": 4, "conditioning_scale": 1.5, "control_start": 0.0}
    assert preset.source_run == sweep
    assert "best mean aesthetic score of the 2 configuration(s) scanning at least 85%" in printed


def test_it_says_when_no_configuration_reaches_the_target(sweep, tmp_path):
    printed = run(sweep.name, "-o", str(tmp_path), "--select", "best", "--min-scan-rate", "1")
    assert "no configuration" not in printed  # 8/8 reaches 100%
    other = make_run(sweep.team, name="harder")
    other.samples.filter(config_key=key_of(1.5, 0.25)).delete()
    printed = run("harder", "-o", str(tmp_path), "--select", "best", "--preset-name", "Strict")
    assert "no configuration scans at least 95%: highest scan rate instead" in printed
    assert GenerationPreset.objects.get(name="Strict").params["control_start"] == 0.0


def test_it_replaces_the_previous_default(sweep, tmp_path, team_users):
    run(sweep.name, "-o", str(tmp_path), "--select", key_of(1.0, 0.25), "--preset-name", "Old")
    run(sweep.name, "-o", str(tmp_path), "--select", key_of(1.5, 0.0), "--preset-name", "New")
    presets = {p.name: p.is_default for p in GenerationPreset.objects.filter(team=team_users.team)}
    assert presets == {"Old": False, "New": True}


@pytest.mark.parametrize(("args", "message"), [
    (["nope"], "no sweep run called “nope”"),
    (["spring sweep", "--team", "Nobody"], "no team “Nobody”"),
    (["spring sweep", "--prompt", "7"], "--prompt “7”: neither a prompt of this run nor an index from 0 to 2"),
    (["spring sweep", "--rows", "steps"], "--rows “steps” is not a swept parameter of this run"),
    (["spring sweep", "--rows", "it's\n"], "--rows “it's\\u000a” is not a swept parameter of this run"),
    (["spring sweep", "--rows", "control_start", "--cols", "control_start"], "must be different"),
    (["spring sweep", "--select", "cs=9"], "--select “cs=9”: no finished configuration with that key"),
    (["spring sweep", "--min-scan-rate", "2"], "--min-scan-rate must be between 0 and 1"),
])
def test_it_refuses_bad_input_with_one_message(sweep, tmp_path, args, message):
    assert message in fails(*args, "-o", str(tmp_path))
    assert not GenerationPreset.objects.exists()


def test_it_refuses_a_run_without_finished_samples(team_users, tmp_path):
    EvalRun.objects.create(name="fresh", team=team_users.team)
    out = tmp_path / "report"
    assert "run “fresh” has no finished samples yet (0 sample(s) in all)" in fails("fresh", "-o", str(out))
    assert not out.exists()


def test_it_asks_for_the_team_when_run_names_clash(sweep, team_users, tmp_path):
    make_run(team_users.other_team, name=sweep.name)
    assert "2 runs are called “spring sweep” (teams Acme, Rival" in fails(sweep.name, "-o", str(tmp_path))
    assert "Wrote 7 files" in run(sweep.name, "--team", "Rival", "-o", str(tmp_path))


def test_it_refuses_an_unwritable_folder(sweep, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert "cannot write the report there" in fails(sweep.name, "-o", str(blocker / "report"))


def test_it_says_a_file_is_no_folder(sweep, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert fails(sweep.name, "-o", str(blocker)) == f"{blocker}: is a file, not a folder"


def test_it_uses_the_chosen_prompt_and_axes(sweep, tmp_path):
    run(sweep.name, "-o", str(tmp_path), "--prompt", "a koi pond", "--rows", "control_start",
        "--cols", "conditioning_scale")
    assert "“a koi pond” across control_start × conditioning_scale" in (tmp_path / "index.html").read_text()
    assert Path(tmp_path / "toast.png").stat().st_size > 1000
