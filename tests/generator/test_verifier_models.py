"""The verifier's decision models on the Django side: the active one, activation and rollback, verdicts in words."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from generator import verifier_models
from generator.core.codes import decision, qr, scan
from generator.core.evals import calibration
from generator.models import Candidate, GenerationJob, Prompt, VerifierModel

pytestmark = pytest.mark.django_db
CONTENT = "https://qart.example/r/AbC123"
FIGURES = calibration.Figures(0.9, 0.88, 0.95)


def fitted(bias: float = -4.0, scanned: int = 40, not_scanned: int = 40) -> calibration.Calibration:
    model = decision.DecisionModel(bias, (("o_any", 1.0), ("f_share", 8.0)), decision.DEFAULT_MODEL.form)
    return calibration.Calibration(model=model, labels=scanned + not_scanned, scanned=scanned, folds=5,
                                   threshold=0.5, current_model=decision.MODEL, current=FIGURES,
                                   cross_validated=FIGURES, warning="")


@pytest.fixture
def root():
    return get_user_model().objects.create_superuser("root", password="pw-root-1")


@pytest.fixture
def staff():
    return get_user_model().objects.create_user("staff", password="pw-staff-1", is_staff=True)


def png_of(image) -> ContentFile:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return ContentFile(buffer.getvalue(), name="art.png")


@pytest.fixture
def candidate(team_users) -> Candidate:
    """A clean code carrying its job's content, judged by no recorded model."""
    prompt = Prompt.objects.create(owner=team_users.owner, team=team_users.team, text="a lighthouse")
    job = GenerationJob.objects.create(owner=team_users.owner, team=team_users.team, prompt=prompt, content=CONTENT)
    return Candidate.objects.create(job=job, index=0, seed=1, rank=1, scan_probability=0.1, verdict="fail",
                                    image=png_of(qr.render_control_image(qr.encode(CONTENT), 240)),
                                    scan_details={"pixels": "kept"})


class TestActiveModel:
    def test_it_is_the_shipped_default_while_none_is_active(self):
        assert verifier_models.active_row() is None
        assert verifier_models.active_model() == decision.DEFAULT_MODEL

    def test_it_is_the_active_rows_model(self, root):
        row = verifier_models.store(fitted(), root, "sessions #1 Friday", ["result 1"])
        verifier_models.activate(row, root)
        assert verifier_models.active_model() == fitted().model
        assert verifier_models.active_model().id == row.model_id

    def test_it_keeps_the_weights_order_and_values_through_the_database(self, root):
        row = verifier_models.store(fitted(), root, "images in /tmp/x", [])
        row.refresh_from_db()
        assert verifier_models.decision_model(row) == fitted().model

    def test_it_records_who_made_a_model_from_which_labels_and_its_figures(self, root):
        row = verifier_models.store(fitted(scanned=31, not_scanned=49), root, "sessions #3 Friday", ["result 7"])
        assert (row.created_by, row.source, row.labels) == (root, "sessions #3 Friday", ["result 7"])
        assert (row.label_count, row.scanned_count, row.not_scanned_count) == (80, 31, 49)
        assert row.figures["cross_validated"]["balanced_accuracy"] == 0.88 and not row.is_active


class TestActivate:
    def test_it_lets_only_a_superuser_activate(self, root, staff):
        row = verifier_models.store(fitted(), root, "x", [])
        for user in (staff, None):
            with pytest.raises(PermissionDenied, match="Only a superuser"):
                verifier_models.activate(row, user)
        assert verifier_models.active_row() is None

    def test_it_refuses_a_model_fitted_on_few_labels_unless_forced(self, root):
        row = verifier_models.store(fitted(scanned=20), root, "x", [])
        with pytest.raises(ValueError, match="20 scanned and 40 not scanned labels, fewer than 30"):
            verifier_models.activate(row, root)
        assert verifier_models.active_row() is None
        verifier_models.activate(row, root, force=True)
        assert verifier_models.active_row() == row

    def test_it_refuses_a_model_of_another_feature_set_unless_forced(self, root):
        row = verifier_models.store(fitted(), root, "x", [])
        VerifierModel.objects.filter(pk=row.pk).update(form="logistic-v0")
        row.refresh_from_db()
        with pytest.raises(ValueError, match="fitted to the verifier's features of logistic-v0"):
            verifier_models.activate(row, root)
        verifier_models.activate(row, root, force=True)
        assert verifier_models.active_row() == row

    def test_it_keeps_one_model_active(self, root):
        first = verifier_models.store(fitted(-4.0), root, "x", [])
        second = verifier_models.store(fitted(-3.0), root, "y", [])
        verifier_models.activate(first, root)
        verifier_models.activate(second, root)
        assert list(VerifierModel.objects.filter(is_active=True)) == [second]
        second.refresh_from_db()
        assert second.activated_by == root and second.activated_at is not None
        assert [(a.model, a.activated_by, a.undone_at) for a in verifier_models.history()] == [
            (second, root, None), (first, root, None)]

    def test_activating_the_active_model_again_changes_nothing(self, root):
        row = verifier_models.store(fitted(), root, "x", [])
        verifier_models.activate(row, root)
        verifier_models.activate(row, root)  # a double-submitted form
        assert len(verifier_models.history()) == 1 and verifier_models.active_row() == row

    def test_the_database_refuses_a_second_active_model(self, root):
        VerifierModel.objects.create(model_id="a", form="f", bias=0, is_active=True)
        with pytest.raises(IntegrityError), transaction.atomic():
            VerifierModel.objects.create(model_id="b", form="f", bias=0, is_active=True)


class TestRollback:
    def test_it_goes_back_one_model_at_a_time_then_to_the_shipped_default(self, root):
        first = verifier_models.store(fitted(-4.0), root, "x", [])
        second = verifier_models.store(fitted(-3.0), root, "y", [])
        verifier_models.activate(first, root)
        verifier_models.activate(second, root)
        assert verifier_models.rollback(root) == first
        assert verifier_models.active_model() == fitted(-4.0).model
        assert verifier_models.rollback(root) is None
        assert verifier_models.active_model() == decision.DEFAULT_MODEL

    def test_it_walks_back_through_a_model_activated_twice_and_ends_at_the_shipped_default(self, root, staff):
        first = verifier_models.store(fitted(-4.0), root, "x", [])
        second = verifier_models.store(fitted(-3.0), root, "y", [])
        for row in (first, second, first):  # the shipped default, then first, second, first again
            verifier_models.activate(row, root)
        assert verifier_models.rollback_target() == second
        assert [verifier_models.rollback(root) for _ in range(3)] == [second, first, None]
        assert verifier_models.active_model() == decision.DEFAULT_MODEL
        assert [a.undone_by for a in verifier_models.history()] == [root] * 3
        with pytest.raises(ValueError, match="nothing to roll back"):
            verifier_models.rollback(root)

    def test_a_model_a_rollback_may_return_to_is_in_use(self, root):
        first = verifier_models.store(fitted(-4.0), root, "x", [])
        second = verifier_models.store(fitted(-3.0), root, "y", [])
        unused = verifier_models.store(fitted(-2.0), root, "z", [])
        verifier_models.activate(first, root)
        verifier_models.activate(second, root)
        assert verifier_models.in_use(first) and verifier_models.in_use(second) and not verifier_models.in_use(unused)
        verifier_models.rollback(root)
        second.refresh_from_db()
        assert not verifier_models.in_use(second)  # rolled back: no rollback returns to it

    def test_it_says_when_there_is_nothing_to_roll_back(self, root):
        with pytest.raises(ValueError, match="nothing to roll back"):
            verifier_models.rollback(root)

    def test_it_lets_only_a_superuser_roll_back(self, root, staff):
        row = verifier_models.store(fitted(), root, "x", [])
        verifier_models.activate(row, root)
        with pytest.raises(PermissionDenied):
            verifier_models.rollback(staff)
        assert verifier_models.active_row() == row


class TestCurrentVerdict:
    def test_it_verifies_again_a_candidate_another_model_judged(self, candidate):
        judged = verifier_models.current_verdict(candidate)
        candidate.refresh_from_db()
        assert candidate.verifier_model == decision.MODEL == judged.verifier_model
        assert candidate.verdict == "pass" and candidate.scan_probability > 0.9 and candidate.decoded_text == CONTENT
        assert set(candidate.scan_details) >= {"features", "grades", "reasons", "pixels"}  # the job's part kept

    def test_it_judges_by_the_active_model(self, candidate, root):
        strict = verifier_models.store(fitted(bias=-100.0), root, "x", [])
        verifier_models.activate(strict, root)
        verifier_models.current_verdict(candidate)
        candidate.refresh_from_db()
        assert candidate.verifier_model == strict.model_id and candidate.verdict == "fail"

    def test_it_leaves_a_candidate_the_active_model_judged(self, candidate):
        Candidate.objects.filter(pk=candidate.pk).update(verifier_model=decision.MODEL)
        candidate.refresh_from_db()
        default_storage.delete(candidate.image.name)  # were it verified again, the missing image would raise
        assert verifier_models.current_verdict(candidate).verdict == "fail"

    def test_it_says_plainly_when_the_image_is_gone(self, candidate):
        default_storage.delete(candidate.image.name)
        with pytest.raises(verifier_models.VerdictUnavailable, match="missing or unreadable"):
            verifier_models.current_verdict(candidate)


class TestScanVerdict:
    @staticmethod
    def judged(verdict: str = "pass", misread: bool = False, **details) -> Candidate:
        return Candidate(verdict=verdict, misread=misread, scan_details=details)

    def test_it_reads_details_that_are_not_an_object_as_none(self):
        for details in ([1, 2], "text", {"reasons": "a string"}, {"reasons": [{"text": 5}, "x"]}):
            candidate = Candidate(verdict="fail", misread=False, scan_details=details)
            assert verifier_models.scan_reasons(candidate) == []
            assert verifier_models.scan_verdict(candidate).startswith("May not scan")

    def test_it_says_a_passing_code_scans(self):
        assert verifier_models.scan_verdict(self.judged(reasons=[])) == "Scans reliably."

    def test_it_says_why_a_failing_code_may_not_scan(self):
        reasons = [{"code": "finder_damaged", "text": "The top-left finder pattern (the square) is damaged."},
                   {"code": "quiet_zone", "text": "The white border around the code is narrower than 4 squares."}]
        assert verifier_models.scan_verdict(self.judged("fail", reasons=reasons)) == (
            "May not scan: the top-left finder pattern (the square) is damaged. The white border around the code is "
            "narrower than 4 squares.")

    def test_it_keeps_a_caveat_of_a_passing_code(self):
        reasons = [{"code": "quiet_zone", "text": "The white border around the code is narrower than 4 squares."}]
        assert verifier_models.scan_verdict(self.judged(reasons=reasons)).startswith(
            "Scans reliably, though the white border")

    def test_it_calls_a_misread_unsafe(self):
        assert verifier_models.scan_verdict(self.judged("fail", misread=True, reasons=[])).startswith("Unsafe:")

    def test_it_says_no_more_than_the_verdict_for_candidates_stored_without_reasons(self):
        assert verifier_models.scan_verdict(self.judged("fail")) == "May not scan."
        assert verifier_models.scan_verdict(self.judged("fail", reasons=[])) == (
            "May not scan: phones read it in too few of the simulated captures.")

    def test_it_stores_what_explains_a_verdict(self):
        result = scan.verify(qr.render_control_image(qr.encode(CONTENT), 200), CONTENT)
        fields = verifier_models.judged_fields(result)
        assert fields["verifier_model"] == decision.MODEL and fields["verdict"] == "pass"
        assert set(fields["scan_details"]) == {"features", "grades", "reasons", "seconds"}
        assert fields["scan_details"]["grades"]["contrast"] == "A"
