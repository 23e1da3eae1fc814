from __future__ import annotations

import csv
import json
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from PIL import Image

from generator.core.codes import qr
from generator.models import Candidate, GenerationJob, HumanScanResult, LabelingSession, Prompt


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("qart_alignment", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def sorted_dir(tmp_path) -> Path:
    """Two clean codes people could scan, a blank and a noise image they could not."""
    root = tmp_path / "sorted"
    (root / "valid").mkdir(parents=True)
    (root / "invalid").mkdir()
    for i in range(2):
        qr.render_control_image(qr.encode(f"https://qart.example/r/{i}"), 200).save(root / "valid" / f"c{i}.png")
    Image.new("RGB", (200, 200), "white").save(root / "invalid" / "blank.png")
    noise = np.random.default_rng(0).integers(0, 256, (200, 200), dtype=np.uint8)
    Image.fromarray(noise, "L").save(root / "invalid" / "noise.png")
    return root


@pytest.fixture
def session(team_users) -> LabelingSession:
    """A session with two candidates (p 0.9 and 0.2) scanned on two phones."""
    prompt = Prompt.objects.create(owner=team_users.owner, text="a misty forest")
    job = GenerationJob.objects.create(owner=team_users.owner, team=team_users.team, prompt=prompt,
                                       content="https://x.io")
    session = LabelingSession.objects.create(name="Friday", team=team_users.team, created_by=team_users.owner)
    for index, p in enumerate((0.9, 0.2)):
        candidate = Candidate(job=job, index=index, seed=index, scan_probability=p, verdict="pass", rank=index)
        candidate.image.save(f"art{index}.png", ContentFile(b"\x89PNG"), save=True)
        session.candidates.add(candidate)
        HumanScanResult.objects.create(session=session, candidate=candidate, device="iPhone 13", app="Camera",
                                       scanned=p > 0.5)
        HumanScanResult.objects.create(session=session, candidate=candidate, device="Pixel 7", app="Lens",
                                       scanned=True)
    return session


@pytest.mark.django_db  # the images are judged by the active verifier model
class TestImagesDir:
    def test_it_agrees_with_folder_labels_on_clean_codes(self, sorted_dir):
        out, _ = run("--images-dir", str(sorted_dir), "--json")
        data = json.loads(out)
        assert data["count"] == 4 and data["scanned"] == 2
        assert data["accuracy"] == 1.0 and data["balanced_accuracy"] == 1.0 and data["roc_auc"] == 1.0
        assert [Path(i["path"]).name for i in data["items"]] == ["c0.png", "c1.png", "blank.png", "noise.png"]

    def test_it_prints_a_readable_report(self, sorted_dir):
        out, _ = run("--images-dir", str(sorted_dir))
        assert "4 images, 2 scanned by people" in out
        assert "accuracy            1.000" in out and "ROC AUC             1.000" in out
        assert "verifier pass                    2                0" in out

    def test_it_reports_a_bad_image_exits_2_and_counts_the_others(self, sorted_dir):
        (sorted_dir / "invalid" / "broken.png").write_text("not a png")
        out, err = StringIO(), StringIO()
        with pytest.raises(CommandError) as exc:
            call_command("qart_alignment", "--images-dir", str(sorted_dir), "--json", stdout=out, stderr=err)
        assert exc.value.returncode == 2 and "1 input(s) could not be used" in str(exc.value)
        assert "broken.png: not an image" in err.getvalue()
        assert json.loads(out.getvalue())["count"] == 4

    @pytest.mark.parametrize("make, message", [
        (lambda root: None, "no such folder"),
        (lambda root: root.write_text("image,scanned\n"), "labels: is a file, not a folder"),
        (lambda root: (root / "valid").mkdir(parents=True), "missing subfolder(s) invalid"),
    ])
    def test_it_names_a_missing_folder(self, tmp_path, make, message):
        root = tmp_path / "labels"
        make(root)
        with pytest.raises(CommandError) as exc:
            run("--images-dir", str(root))
        assert exc.value.returncode == 2 and message in str(exc.value)


@pytest.mark.django_db
class TestSessions:
    def test_it_reports_stored_results_by_device_and_app(self, session):
        data = json.loads(run("--session", str(session.pk), "--json")[0])
        assert data["count"] == 4 and data["scanned"] == 3
        assert data["confusion"] == {"true_positive": 2, "false_positive": 0, "false_negative": 1,
                                     "true_negative": 1}
        groups = {g["group"]: g for g in data["groups"]}
        assert groups["iPhone 13 / Camera"]["accuracy"] == 1.0 and groups["Pixel 7 / Lens"]["accuracy"] == 0.5
        # at 0.9 two of three scans pass and the one failure is caught: (2/3 + 1) / 2
        assert data["best_threshold"] == 0.9 and data["best_balanced_accuracy"] == pytest.approx(5 / 6)

    def test_it_has_json_keys_for_every_figure(self, session):
        data = json.loads(run("--session", str(session.pk), "--json")[0])
        assert {"source", "count", "scanned", "threshold", "confusion", "accuracy", "balanced_accuracy",
                "roc_auc", "best_threshold", "best_balanced_accuracy", "calibration", "groups",
                "items"} <= set(data)
        assert len(data["calibration"]) == 10

    def test_it_names_an_unknown_session(self, db):
        with pytest.raises(CommandError) as exc:
            run("--session", "999")
        assert exc.value.returncode == 2 and "no labelling session with id 999" in str(exc.value)

    def test_it_asks_for_something_to_do(self, db):
        with pytest.raises(CommandError) as exc:
            run()
        assert "nothing to do" in str(exc.value)


@pytest.mark.django_db
class TestCsv:
    def test_it_imports_good_rows_and_reports_bad_ones_by_line(self, session, tmp_path):
        sheet = tmp_path / "labels.csv"
        sheet.write_text("image,scanned,device,app,seconds,notes\n"
                         "art0.png,yes,iPhone SE,Camera,1.5,quick\n"
                         "paper-7.png,No,Pixel 7,Lens,,\n"
                         "paper-8.png,maybe,Pixel 7,Lens,,\n"
                         ",1,,,,\n"
                         "paper-9.png,1,Pixel 7,Lens,slow,\n")
        before = HumanScanResult.objects.count()
        with pytest.raises(CommandError) as exc:
            run("--csv-import", str(sheet))
        assert exc.value.returncode == 2
        created = HumanScanResult.objects.order_by("pk")[before:]
        assert [(r.image_name, r.scanned, r.seconds) for r in created] == [("art0.png", True, 1.5),
                                                                         ("paper-7.png", False, None)]
        assert created[0].candidate == session.candidates.get(index=0) and created[1].candidate is None

    def test_it_prints_each_bad_row_with_its_line(self, db, tmp_path):
        sheet = tmp_path / "labels.csv"
        sheet.write_text("image,scanned\na.png,yes\nb.png,maybe\n,1\n")
        err = StringIO()
        with pytest.raises(CommandError):
            call_command("qart_alignment", "--csv-import", str(sheet), stdout=StringIO(), stderr=err)
        assert "line 3: scanned must be yes/no/true/false/1/0, got “maybe”" in err.getvalue()
        assert "line 4: image is empty" in err.getvalue()
        assert "imported 1 label(s), 0 matched a stored candidate, 2 bad row(s) skipped, 0 already stored" \
               in err.getvalue()

    def test_it_refuses_a_sheet_without_the_columns(self, db, tmp_path):
        sheet = tmp_path / "labels.csv"
        sheet.write_text("file,ok\na.png,yes\n")
        err = StringIO()
        with pytest.raises(CommandError):
            call_command("qart_alignment", "--csv-import", str(sheet), stdout=StringIO(), stderr=err)
        assert "missing column(s) image, scanned" in err.getvalue()
        assert not HumanScanResult.objects.exists()

    @pytest.mark.parametrize("text", ["image,scanned\n", "image,scanned\n\n\n"])
    def test_it_refuses_a_sheet_without_rows(self, db, tmp_path, text):
        sheet = tmp_path / "labels.csv"
        sheet.write_text(text)
        err = StringIO()
        with pytest.raises(CommandError) as exc:
            call_command("qart_alignment", "--csv-import", str(sheet), stdout=StringIO(), stderr=err)
        assert exc.value.returncode == 2
        assert str(exc.value) == f"{sheet}: the file has no rows under its header, nothing to import"
        assert "imported" not in err.getvalue()

    def test_it_fails_when_every_row_is_bad(self, db, tmp_path):
        sheet = tmp_path / "labels.csv"
        sheet.write_text("image,scanned\na.png,maybe\n,yes\n")
        err = StringIO()
        with pytest.raises(CommandError) as exc:
            call_command("qart_alignment", "--csv-import", str(sheet), stdout=StringIO(), stderr=err)
        assert exc.value.returncode == 2 and str(exc.value) == "2 input(s) could not be used"
        assert "imported 0 label(s), 0 matched a stored candidate, 2 bad row(s) skipped" in err.getvalue()
        assert not HumanScanResult.objects.exists()

    def test_it_says_a_folder_is_no_csv_file(self, db, tmp_path):
        with pytest.raises(CommandError) as exc:
            run("--csv-import", str(tmp_path))
        assert exc.value.returncode == 2 and str(exc.value) == f"{tmp_path}: is a folder, not a CSV file"
        with pytest.raises(CommandError) as exc:
            run("--csv-export", str(tmp_path))
        assert str(exc.value) == f"{tmp_path}: is a folder; give the name of the CSV file to write"

    def test_it_imports_into_a_session(self, session, tmp_path):
        sheet = tmp_path / "labels.csv"
        sheet.write_text("image,scanned\nart1.png,true\n")
        run("--csv-import", str(sheet), "--session", str(session.pk))
        assert session.results.filter(image_name="art1.png", candidate__index=1).exists()

    def test_an_export_imported_again_adds_no_label(self, session, tmp_path):
        # Re-importing a session's export doubled its labels: 64 images on the alignment page, and enough labels of
        # each class for qart_calibrate to activate a model without --force.
        target = tmp_path / "out.csv"
        run("--csv-export", str(target))
        before = session.results.count()
        err = StringIO()
        call_command("qart_alignment", "--csv-import", str(target), "--session", str(session.pk), stdout=StringIO(),
                     stderr=err)
        assert session.results.count() == before and f"{before} already stored (skipped)" in err.getvalue()
        sheet = tmp_path / "more.csv"  # a new label next to the stored ones is still taken
        sheet.write_text("image,scanned,seconds\nart1.png,no,4\n")
        run("--csv-import", str(sheet), "--session", str(session.pk))
        assert session.results.count() == before + 1

    def test_an_export_with_formula_like_text_imported_again_adds_no_label(self, session, tmp_path):
        # The export quotes "- blurry" as "'- blurry" against spreadsheet formulas; read back quoted, it was new.
        session.results.update(notes="- blurry at 2 m", device="=iPhone")
        target = tmp_path / "out.csv"
        run("--csv-export", str(target))
        before = session.results.count()
        run("--csv-import", str(target), "--session", str(session.pk))
        assert session.results.count() == before

    def test_identical_hand_made_sheets_of_two_people_are_both_kept(self, session, tmp_path):
        # Only an export's rows (they carry its id) are matched to stored labels: two people's plain sheets that
        # read the same are two people's answers.
        sheet = tmp_path / "mine.csv"
        sheet.write_text("image,scanned\nart1.png,yes\nart2.png,no\n")
        before = session.results.count()
        run("--csv-import", str(sheet), "--session", str(session.pk))
        run("--csv-import", str(sheet), "--session", str(session.pk))
        assert session.results.count() == before + 4

    @pytest.mark.parametrize(("seconds", "message"), [("abc", "seconds must be a number, got “abc”"),
                                                      ("inf", "seconds must be a number of at least 0, got “inf”"),
                                                      ("nan", "seconds must be a number of at least 0, got “nan”"),
                                                      ("-1", "seconds must be a number of at least 0, got “-1”")])
    def test_it_refuses_seconds_that_are_not_a_time(self, db, tmp_path, seconds, message):
        sheet = tmp_path / "labels.csv"
        sheet.write_text(f"image,scanned,seconds\na.png,yes,{seconds}\n")
        err = StringIO()
        with pytest.raises(CommandError):
            call_command("qart_alignment", "--csv-import", str(sheet), stdout=StringIO(), stderr=err)
        assert f"line 2: {message}" in err.getvalue() and not HumanScanResult.objects.exists()

    def test_it_exports_every_result(self, session, tmp_path):
        target = tmp_path / "out.csv"
        run("--csv-export", str(target))
        rows = list(csv.DictReader(target.open()))
        assert len(rows) == 4
        assert {r["device"] for r in rows} == {"iPhone 13", "Pixel 7"}
        assert rows[0]["image"].startswith("art0") and rows[0]["scan_probability"] == "0.9"
        assert rows[0]["scanned"] == "yes"
