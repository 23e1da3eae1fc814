"""What the evals record: labels people gave (`generator.eval_models`)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from generator.eval_models import HumanScanResult
from tests.generator.factories import job_with_ranks


class TestHumanScanResult:
    def test_it_needs_a_candidate_or_an_image_name(self):
        # The admin saved "candidate None: not scanned (unknown device)": a label of nothing.
        with pytest.raises(ValidationError) as refused:
            HumanScanResult(scanned=False, image_name="  ").full_clean()
        assert refused.value.messages == ["Choose the candidate that was scanned, or give the image's file name."]
        HumanScanResult(scanned=True, image_name="poster-3.png").full_clean()

    @pytest.mark.django_db
    def test_a_candidate_is_enough(self, team_users):
        candidate = job_with_ranks(team_users.team, team_users.owner, ranks=(1,)).candidates.get()
        HumanScanResult(scanned=True, candidate=candidate).full_clean()
