"""qart_calibrate: the verifier's decision model fitted to people's labels, stored, activated and rolled back.

The labelled images are made here: clean codes people scanned, noise and blank pictures they could not.
"""

from __future__ import annotations

import io
import json
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from PIL import Image

from generator import verifier_models
from generator.core.codes import decision, qr, scan
from generator.models import (
    Candidate,
    GenerationJob,
    HumanScanResult,
    LabelingItem,
    LabelingSession,
    Prompt,
    VerifierModel,
)

pytestmark = pytest.mark.django_db
CONTENT = "https://qart.example/r/AbC123"
PHONES = ("iPhone 13", "Pixel 7", "Galaxy S21")


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("qart_calibrate", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def refused(*args: str) -> str:
    """The one message a refused run gives (exit 2); nothing may be stored."""
    before = VerifierModel.objects.count()
    with pytest.raises(CommandError) as exc:
        run(*args)
    # argparse's own refusals ("Error: ...") exit 2 from the shell; through call_command they carry Django's 1.
    assert exc.value.returncode == (1 if str(exc.value).startswith("Error: ") else 2)
    assert VerifierModel.objects.count() == before
    return str(exc.value)


def code_image(text: str, size: int = 128) -> Image.Image:
    return qr.render_control_image(qr.encode(text), size)


def broken_image(seed: int, size: int = 128) -> Image.Image:
    """Noise, or (every third) a blank page: nothing a phone reads."""
    if seed % 3 == 0:
        return Image.new("RGB", (size, size), "white")
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8), "L")


def png(image: Image.Image, name: str) -> ContentFile:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return ContentFile(buffer.getvalue(), name=name)


def sorted_folder(root: Path, scanned: int, not_scanned: int) -> Path:
    (root / "valid").mkdir(parents=True)
    (root / "invalid").mkdir()
    for i in range(scanned):
        code_image(f"https://qart.example/r/c{i}").save(root / "valid" / f"code{i:02d}.png")
    for i in range(not_scanned):
        broken_image(i).save(root / "invalid" / f"broken{i:02d}.png")
    return root


_verified: dict = {}


@pytest.fixture(autouse=True)
def verify_each_image_once(monkeypatch):
    """The real verifier, remembered per image across this module: many tests run over the same pictures."""
    verify = scan.verify

    def remembered(image, expected=None, **kwargs):
        key = (image.tobytes(), image.size, expected, tuple(sorted(kwargs.items())))
        if key not in _verified:
            _verified[key] = verify(image, expected, **kwargs)
        return _verified[key]

    monkeypatch.setattr(scan, "verify", remembered)


@pytest.fixture(scope="module")
def some(tmp_path_factory) -> Path:
    """16 scanned and 16 not: enough to fit, too few to activate without force."""
    return sorted_folder(tmp_path_factory.mktemp("some"), 16, 16)


@pytest.fixture(scope="module")
def few(tmp_path_factory) -> Path:
    return sorted_folder(tmp_path_factory.mktemp("few"), 14, 20)


@pytest.fixture
def root():
    return get_user_model().objects.create_superuser("root", password="pw-root-1")


@pytest.fixture
def session(team_users) -> LabelingSession:
    """A sitting: 11 clean codes and 10 broken pictures, each tried on three phones (the Galaxy failed twice on a
    clean code), one item shown re-rendered, and one imported label whose image is not stored."""
    owner = team_users.owner
    prompt = Prompt.objects.create(owner=owner, team=team_users.team, text="a lighthouse")
    job = GenerationJob.objects.create(owner=owner, team=team_users.team, prompt=prompt, content=CONTENT)
    session = LabelingSession.objects.create(name="Friday", team=team_users.team, created_by=owner)
    for index in range(21):
        clean = index < 11
        image = code_image(CONTENT, 120 + 4 * index) if clean else broken_image(index)
        candidate = Candidate.objects.create(job=job, index=index, seed=index, scan_probability=0.5, verdict="pass",
                                             image=png(image, f"art{index}.png"))
        results = [HumanScanResult.objects.create(session=session, candidate=candidate, device=phone,
                                                  scanned=clean and not (phone == "Galaxy S21" and index < 2))
                   for phone in PHONES]
        if index == 0:  # shown carrying its one-time link: that picture is the one the phones saw
            LabelingItem.objects.create(session=session, candidate=candidate, result=results[0],
                                        image=png(code_image("https://qart.example/l/tok123", 140), "item.png"))
    HumanScanResult.objects.create(session=session, image_name="printed-elsewhere.png", scanned=True)
    return session


class TestLabelCounts:
    def test_it_refuses_fewer_than_15_labels_of_a_class_and_stores_nothing(self, few):
        message = refused("--images-dir", str(few))
        assert "at least 15 labels of each class" in message and "14 scanned and 20 not scanned" in message
        assert "Nothing was stored." in message

    def test_it_fits_15_to_29_with_a_warning_and_refuses_to_activate_without_force(self, some, root):
        out, err = StringIO(), StringIO()
        with pytest.raises(CommandError) as exc:
            call_command("qart_calibrate", "--images-dir", str(some), "--activate", "--user", "root", stdout=out,
                         stderr=err)
        assert "warning: Only 16 scanned and 16 not scanned" in err.getvalue()
        assert "not activated:" in str(exc.value) and "--activate --force" in str(exc.value)
        row = VerifierModel.objects.get(pk=int(out.getvalue().split("stored as verifier model #")[1].split(":")[0]))
        assert not row.is_active and verifier_models.active_model() == decision.DEFAULT_MODEL

    def test_it_activates_15_to_29_when_forced(self, some, root):
        data = json.loads(run("--images-dir", str(some), "--json", "--activate", "--force", "--user", "root")[0])
        assert data["active"] and verifier_models.active_model().id == data["model"]


class TestReport:
    def test_it_gives_the_figures_as_json(self, some):
        data = json.loads(run("--images-dir", str(some), "--json")[0])
        assert data["labels"] == 32 and data["scanned"] == 16 and data["folds"] == 5
        assert data["current"] == {"model": decision.MODEL, "accuracy": 1.0, "balanced_accuracy": 1.0, "roc_auc": 1.0}
        assert data["cross_validated"] == {"accuracy": 1.0, "balanced_accuracy": 1.0, "roc_auc": 1.0}
        assert data["model"].startswith(decision.DEFAULT_MODEL.form + "-")
        assert list(data["weights"]) == [name for name, _ in decision.DEFAULT_MODEL.weights]
        row = VerifierModel.objects.get(pk=data["stored"])
        assert (row.model_id, row.label_count, row.scanned_count) == (data["model"], 32, 16)
        assert row.source == f"images in {some}" and len(row.labels) == 32 and row.created_by is None
        assert row.figures["cross_validated"] == data["cross_validated"] and not data["active"]

    def test_it_prints_a_readable_report(self, some):
        out, _ = run("--images-dir", str(some), "--folds", "4")
        assert "on 32 labels (16 scanned, 16 not)" in out and "4-fold cross-validation" in out
        assert f"current  {decision.MODEL}" in out and "(out of fold)" in out
        assert "weights: bias" in out and "not active" in out


class TestSessions:
    def test_it_fits_the_sessions_labels(self, session, root):
        out, err = run("--session", str(session.pk), "--json", "--user", "root")
        data = json.loads(out)
        # 21 images x 3 phones; the imported label without an image is left out
        assert (data["labels"], data["scanned"], data["left_out"]) == (63, 31, 1)
        assert "1 result(s) left out" in err
        # Enough labels to activate, but three phones' labels of 21 pictures (one also shown re-rendered): rougher.
        assert "warning: The labels are of 12 scanned and 12 not scanned distinct images" in err
        assert "Only" not in err and data["images"] == {"scanned": 12, "not_scanned": 12}
        assert data["cross_validated"]["roc_auc"] > 0.9
        row = VerifierModel.objects.get(pk=data["stored"])
        assert row.created_by == root and row.source == f"sessions #{session.pk} Friday"
        assert row.labels[0].startswith("result ")

    def test_a_superuser_activates_it_and_the_next_job_uses_it(self, session, root):
        data = json.loads(run("--session", str(session.pk), "--json", "--user", "root", "--activate")[0])
        row = VerifierModel.objects.get(pk=data["stored"])
        assert data["active"] and row.is_active and row.activated_by == root
        assert verifier_models.active_model().id == data["model"] == row.model_id

    def test_it_rolls_back_to_the_model_active_before(self, session, root):
        run("--session", str(session.pk), "--user", "root", "--activate")
        out, _ = run("--rollback", "--user", "root")
        assert f"the shipped {decision.MODEL} judges again" in out
        assert verifier_models.active_model() == decision.DEFAULT_MODEL
        assert "nothing to roll back" in refused("--rollback", "--user", "root")

    def test_it_lets_only_a_superuser_activate_or_roll_back(self, session, team_users):
        assert "--activate needs --user naming a superuser" in refused("--session", str(session.pk), "--activate",
                                                                       "--user", "owner")
        assert "needs --user" in refused("--session", str(session.pk), "--activate")
        assert "Only a superuser" in refused("--rollback", "--user", "owner")


class TestCsv:
    def test_it_reads_files_beside_the_csv_and_reports_bad_rows(self, some, tmp_path):
        sheet = tmp_path / "labels.csv"
        rows = [f"{p},yes" for p in sorted((some / "valid").iterdir())]
        rows += [f"{p},no" for p in sorted((some / "invalid").iterdir())]
        sheet.write_text("image,scanned\n" + "\n".join(rows + ["nowhere.png,yes", "x.png,maybe"]) + "\n")
        out, err = run("--csv", str(sheet), "--json")
        data = json.loads(out)
        assert data["labels"] == 32 and data["left_out"] == 2
        assert "line 34: nowhere.png is neither a file beside the CSV nor a stored candidate's image" in err
        assert "line 35: scanned must be yes/no" in err

    def test_it_counts_repeated_rows_of_one_image_as_labels_and_warns_of_the_few_images(self, some, tmp_path, root):
        sheet = tmp_path / "labels.csv"
        valid, invalid = sorted((some / "valid").iterdir())[:5], sorted((some / "invalid").iterdir())[:5]
        rows = [f"{p},{answer},{phone}" for phone in ("iPhone", "Pixel", "Galaxy", "Moto", "Nokia", "Xperia")
                for paths, answer in ((valid, "yes"), (invalid, "no")) for p in paths]
        sheet.write_text("image,scanned,device\n" + "\n".join(rows) + "\n")
        out, err = run("--csv", str(sheet), "--json", "--activate", "--user", "root")
        data = json.loads(out)
        assert (data["labels"], data["images"]) == (60, {"scanned": 5, "not_scanned": 5}) and data["active"]
        assert "warning: The labels are of 5 scanned and 5 not scanned distinct images" in err

    def test_it_names_a_missing_file_or_column(self, tmp_path):
        assert "no such file" in refused("--csv", str(tmp_path / "gone.csv"))
        (tmp_path / "bad.csv").write_text("picture,scanned\nx.png,yes\n")
        assert "missing column(s) image" in refused("--csv", str(tmp_path / "bad.csv"))


class TestBadInput:
    def test_it_names_an_unknown_session(self, db):
        assert "no labelling session with id 999" in refused("--session", "999")
        huge = "9" * 23  # past the database's integers: no session either, not an overflow
        assert f"no labelling session with id {huge}" in refused("--session", huge)

    def test_it_reports_a_csv_row_whose_name_the_system_refuses(self, some, tmp_path):
        sheet = tmp_path / "labels.csv"
        rows = [f"{p},yes" for p in sorted((some / "valid").iterdir())]
        rows += [f"{p},no" for p in sorted((some / "invalid").iterdir())]
        sheet.write_text("image,scanned\n" + "\n".join(rows + ["x" * 5000 + ".png,yes"]) + "\n")
        out, err = run("--csv", str(sheet), "--json")
        assert json.loads(out)["left_out"] == 1 and "line 34: xxxx" in err and "Traceback" not in err

    def test_it_names_a_missing_folder(self, tmp_path):
        assert "no such folder" in refused("--images-dir", str(tmp_path / "nowhere"))

    def test_it_says_a_file_is_no_folder_and_a_folder_no_file(self, tmp_path):
        sheet = tmp_path / "labels.csv"
        sheet.write_text("image,scanned\n")
        assert refused("--images-dir", str(sheet)) == f"{sheet}: is a file, not a folder"
        assert refused("--csv", str(tmp_path)) == f"{tmp_path}: is a folder, not a CSV file"

    @pytest.mark.parametrize("folds, message", [
        ("1", "--folds must be at least 2, got 1"),
        ("abc", "invalid int value: 'abc'"),
        ("20", "20 folds need at least 20 images of each class"),
    ])
    def test_it_refuses_bad_folds(self, some, folds, message):
        assert message in refused("--images-dir", str(some), "--folds", folds)

    def test_it_asks_for_labels(self, db):
        assert "say which labels" in refused()

    def test_it_takes_one_source(self, some, tmp_path):
        assert "not allowed with argument" in refused("--images-dir", str(some), "--csv", str(tmp_path / "x.csv"))

    def test_it_names_an_unknown_user(self, some):
        assert "no user named nobody" in refused("--images-dir", str(some), "--user", "nobody")

    def test_it_skips_an_unreadable_image_with_its_name(self, some, tmp_path):
        folder = sorted_folder(tmp_path / "labels", 16, 16)
        (folder / "valid" / "broken.png").write_text("not a png")
        out, err = run("--images-dir", str(folder), "--json")
        assert "broken.png: not an image" in err and json.loads(out)["left_out"] == 1
