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


@pytest.mark.django_db
def test_an_imported_sheet_of_a_session_answers_its_items(team_users):
    # Imported with --session, the labels stayed loose: the session still counted its codes as unanswered.
    from pathlib import PurePath

    from generator.evals import sessions
    from tests.generator.test_api import make_job

    job = make_job(team_users.team, team_users.owner, ranks=(1, 2))
    first, second = job.candidates.order_by("rank")
    session = sessions.create_session(team_users.team, team_users.owner, "sitting", [first, second], 300, seed=1)
    sheet = f"image,scanned\n{PurePath(first.image.name).name},yes\n"
    outcome = label_csv.import_csv(io.StringIO(sheet), session=session)
    assert len(outcome.created) == 1
    assert session.items.get(candidate=first).result == outcome.created[0]
    assert sessions.next_item(session).candidate == second

