from __future__ import annotations

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from generator.core.codes import decision, grading, qr

ROOT = Path(__file__).resolve().parents[2]
URL = "https://qart.example/r/AbC123"


@pytest.fixture
def code_png(tmp_path) -> Path:
    path = tmp_path / "code.png"
    qr.render_control_image(qr.encode(URL), 512, style="rounded").save(path)
    return path


def scan(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("qart_scan", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
class TestQartScan:
    def test_it_prints_one_json_object_per_image(self, code_png, tmp_path):
        blank = tmp_path / "blank.png"
        Image.new("RGB", (300, 300), "white").save(blank)
        out, _ = scan(str(code_png), str(blank), "--expect", URL, "--json")
        lines = [json.loads(line) for line in out.strip().splitlines()]
        assert [line["path"] for line in lines] == [str(code_png), str(blank)]
        good, empty = lines
        assert set(good) == {"path", "decoded", "expected_match", "misread", "scan_probability", "verdict", "seconds",
                             "grades", "reasons", "model"}
        assert good["decoded"] == [URL] and good["expected_match"] is True and good["verdict"] == "pass"
        assert empty["decoded"] == [] and empty["expected_match"] is False and empty["verdict"] == "fail"
        assert 0.0 <= empty["scan_probability"] < good["scan_probability"] <= 1.0

    def test_it_says_why_in_json(self, code_png, tmp_path):
        edge = tmp_path / "edge.png"
        qr.render_control_image(qr.encode(URL), 512, border=0).save(edge)
        out, _ = scan(str(code_png), str(edge), "--expect", URL, "--json")
        good, tight = (json.loads(line) for line in out.strip().splitlines())
        assert good["grades"] == dict.fromkeys(grading.GRADE_NAMES, "A") and good["reasons"] == []
        assert good["model"] == tight["model"] == decision.MODEL
        assert tight["grades"]["fixed_pattern"] == "F"
        assert [r["code"] for r in tight["reasons"]] == ["quiet_zone"]

    def test_it_judges_with_the_active_model_as_jobs_do(self, code_png, tmp_path):
        from django.contrib.auth import get_user_model

        from generator import verifier_models
        from generator.models import VerifierModel

        edge = tmp_path / "edge.png"
        qr.render_control_image(qr.encode(URL), 512, border=0).save(edge)
        before = json.loads(scan(str(edge), "--expect", URL, "--json")[0])
        weights = dict(decision.DEFAULT_MODEL.weights)
        strict = decision.DecisionModel(decision.DEFAULT_MODEL.bias - 3.0, tuple(weights.items()),
                                        decision.DEFAULT_MODEL.form)
        row = VerifierModel.objects.create(model_id=strict.id, form=strict.form, bias=strict.bias,
                                           weights=[list(item) for item in strict.weights], label_count=60,
                                           scanned_count=30)
        verifier_models.activate(row, get_user_model().objects.create_superuser("root", password="pw-root-1"))
        after = json.loads(scan(str(edge), "--expect", URL, "--json")[0])
        assert before["model"] == decision.MODEL and after["model"] == strict.id != decision.MODEL
        assert after["scan_probability"] < before["scan_probability"]

    def test_it_prints_the_reasons_under_the_verdict(self, tmp_path):
        edge = tmp_path / "edge.png"
        qr.render_control_image(qr.encode(URL), 512, border=0).save(edge)
        first, *reasons = scan(str(edge), "--expect", URL)[0].strip().splitlines()
        assert first.startswith(f"{edge}: ")
        assert reasons == ["  - The white border around the code is narrower than 4 squares (none on the top side)."]

    def test_it_reports_a_misread(self, code_png):
        out, _ = scan(str(code_png), "--expect", "https://other.example", "--json")
        line = json.loads(out)
        assert line["misread"] is True and line["verdict"] == "fail" and line["expected_match"] is False

    def test_it_counts_any_text_without_expect(self, code_png):
        line = json.loads(scan(str(code_png), "--json")[0])
        assert line["expected_match"] is None and line["verdict"] == "pass"

    def test_it_prints_a_readable_line_without_json(self, code_png):
        out, _ = scan(str(code_png), "--expect", URL)
        assert out.startswith(f"{code_png}: PASS p=") and "zxing 7/7" in out and "wechat 1/1" in out

    def test_it_quotes_what_it_read_as_messages_quote(self, tmp_path):
        # A contact card's line breaks: repr wrote them as Python writes them, in Python's quotes.
        card, path = "BEGIN:VCARD\nFN:Ada\nEND:VCARD", tmp_path / "card.png"
        qr.render_control_image(qr.encode(card), 512).save(path)
        out, _ = scan(str(path), "--expect", card)
        assert " read “BEGIN:VCARD\\u000aFN:Ada\\u000aEND:VCARD” (" in out
        assert len(out.strip().splitlines()) == 1

    def test_it_prints_a_long_text_whole(self, tmp_path):
        # A link with its campaign's parameters runs past a message's 60 characters; a misread after them was cut off.
        link, path = "https://shop.example/spring?utm_source=qr&utm_medium=poster&utm_campaign=ss26", tmp_path / "l.png"
        qr.render_control_image(qr.encode(link, max_version=10), 512).save(path)
        out, _ = scan(str(path), "--expect", link)
        assert f" read “{link}” (" in out

    def test_it_reports_each_bad_input_and_keeps_going(self, code_png, tmp_path):
        empty = tmp_path / "empty.png"
        empty.write_bytes(b"")
        text = tmp_path / "text.png"
        text.write_text("hello")
        out = StringIO()
        err = StringIO()
        with pytest.raises(CommandError) as exc:
            call_command("qart_scan", str(empty), str(code_png), str(text), "--json", stdout=out, stderr=err)
        assert exc.value.returncode == 2
        assert "2 of 3 inputs could not be read" in str(exc.value)
        assert f"{empty}: the file is empty" in err.getvalue()
        assert f"{text}: not an image" in err.getvalue()
        assert json.loads(out.getvalue())["verdict"] == "pass"  # the good image is still verified

    def test_it_exits_2_without_a_traceback_from_the_shell(self, tmp_path):
        done = subprocess.run(
            [sys.executable, "manage.py", "qart_scan", str(tmp_path / "missing.png")],
            cwd=ROOT, capture_output=True, text=True,
        )
        assert done.returncode == 2
        assert "missing.png: no such file" in done.stderr
        assert "Traceback" not in done.stderr

    def test_it_refuses_a_bad_threshold(self, code_png):
        with pytest.raises(CommandError, match="--threshold"):
            scan(str(code_png), "--threshold", "2")
