"""Human scan labels as CSV (generator.evals.label_csv): the export a spreadsheet opens."""

from __future__ import annotations

import csv
import io

import pytest

from generator.evals import label_csv
from generator.models import HumanScanResult
from tests.generator.factories import job_with_ranks


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

    job = job_with_ranks(team_users.team, team_users.owner, ranks=(1, 2))
    first, second = job.candidates.order_by("rank")
    session = sessions.create_session(team_users.team, team_users.owner, "sitting", [first, second], 300, seed=1)
    sheet = f"image,scanned\n{PurePath(first.image.name).name},yes\n"
    outcome = label_csv.import_csv(io.StringIO(sheet), session=session)
    assert len(outcome.created) == 1
    assert session.items.get(candidate=first).result == outcome.created[0]
    assert sessions.next_item(session).candidate == second



@pytest.mark.django_db
def test_a_sessions_sheet_names_only_its_own_teams_codes(team_users):
    # A sheet's file names were matched in every team: a rival session's label sat on this team's code
    from pathlib import PurePath

    from generator.evals import sessions
    from generator.models import Candidate

    ours = job_with_ranks(team_users.team, team_users.owner, ranks=(1,)).candidates.get()
    theirs = job_with_ranks(team_users.other_team, team_users.outsider, ranks=(1,)).candidates.get()
    name = PurePath(ours.image.name).name
    Candidate.objects.filter(pk=theirs.pk).update(image="generations/rival/candidate-rival.png")  # not the name
    session = sessions.create_session(team_users.other_team, team_users.outsider, "rival sitting", [theirs], 300,
                                      seed=1)
    outcome = label_csv.import_csv(io.StringIO(f"image,scanned\n{name},yes\n"), session=session)
    [label] = outcome.created
    assert label.candidate is None and label.image_name == name  # kept as written, on no team's code
    assert not HumanScanResult.objects.filter(candidate=ours).exists()


@pytest.mark.django_db(transaction=True)  # PostgreSQL refused the whole file at the long row: no test transaction
def test_an_image_cell_longer_than_its_column_is_that_rows_message(team_users):
    long = "photos/" + "x" * 300 + ".jpg"
    sheet = f"image,scanned\nshort.jpg,yes\n{long},no\n"
    outcome = label_csv.import_csv(io.StringIO(sheet))
    assert [r.image_name for r in outcome.created] == ["short.jpg"]
    assert outcome.errors == ["line 3: image is 311 characters long; give the image's file name (at most 255)"]
    assert HumanScanResult.objects.count() == 1
