"""Human scan labels as CSV (generator.evals.label_csv): the export a spreadsheet opens."""

from __future__ import annotations

import csv
import io

import pytest

from generator.evals import label_csv
from generator.models import HumanScanResult


@pytest.mark.django_db
class TestExport:
    def test_it_defuses_formulas_in_what_people_typed(self, team_users):
        result = HumanScanResult.objects.create(
            image_name="=cmd|' /C calc'!A0", device="+iPhone", app="@app", notes="-2+3", scanned=True,
            aesthetic_vote=-1, labeler=team_users.owner,
        )
        stream = io.StringIO()
        assert label_csv.export_csv([result], stream) == 1
        [row] = csv.DictReader(io.StringIO(stream.getvalue()))
        assert row["image"] == "'=cmd|' /C calc'!A0"
        assert (row["device"], row["app"], row["notes"]) == ("'+iPhone", "'@app", "'-2+3")
        assert row["aesthetic_vote"] == "-1" and row["labeler"] == "owner" and row["scanned"] == "yes"
