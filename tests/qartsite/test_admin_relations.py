"""Relations into another team's rows in the admin (qartsite.admin_relations): a read-only field or a list column
that leads to a row the user may not see names it by its kind, and sorts it with the others of its kind; an editable
relation keeps such a row when its page is saved; staff's own rows and superusers keep the names. A read-only relation
links only to a page its user may open, and names any other row as plain text (`LinksThatOpen`).
The cast and rows are tests/qartsite/test_admin.py's ("Acme ..." ours, "Rival ..." theirs; `linked`: ours pointing
into theirs).
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.html import strip_tags

from campaigns.models import DestinationChange, Placement
from generator.models import (
    Candidate,
    EvalRun,
    EvalSample,
    GenerationJob,
    GenerationPreset,
    LabelingItem,
    LabelingSession,
    Prompt,
    VerifierModel,
)
from qartsite.admin_relations import LinksThatOpen
from tests.qartsite.admin_pages import posted_back, url


def text_of(response) -> str:
    return " ".join(strip_tags(response.content.decode()).split())


@pytest.mark.django_db
class TestReadOnlyFields:
    @pytest.mark.parametrize("who", ["owner", "viewer"])
    def test_it_names_another_teams_row_by_its_kind(self, client, cast, linked, who):
        # Our started job's placement is read only to everyone, our sample's job too; a viewer reads every field.
        # Django named their placement ("Rival campaign: Rival poster"), their job (by their prompt) and their sweep.
        client.force_login(getattr(cast, who))
        ours = linked["ours"]
        job = text_of(client.get(url(GenerationJob, "change", ours[GenerationJob])))
        sample = text_of(client.get(url(EvalSample, "change", ours[EvalSample])))
        assert "Placement: Placement: one of another team" in job
        assert "Job: Generation job: one of another team" in sample
        for page in (job, sample):
            assert "Rival" not in page
        if who == "viewer":
            preset = text_of(client.get(url(GenerationPreset, "change", ours[GenerationPreset])))
            assert "Source run: Eval run: one of another team" in preset and "Rival" not in preset

    def test_it_still_names_the_teams_own_rows(self, client, cast, linked):
        ours = linked["ours"]
        GenerationPreset.objects.filter(pk=ours[GenerationPreset].pk).update(source_run=ours[EvalRun])
        client.force_login(cast.viewer)
        page = client.get(url(GenerationPreset, "change", ours[GenerationPreset])).content.decode()
        assert "Acme sweep" in page and url(EvalRun, "change", ours[EvalRun]) in page

    def test_superusers_see_every_name(self, client, linked):
        client.force_login(get_user_model().objects.create_superuser("root", password="pw-root-1"))
        page = text_of(client.get(url(GenerationJob, "change", linked["ours"][GenerationJob])))
        assert "Rival campaign: Rival poster" in page


@pytest.mark.django_db
class TestListColumns:
    def test_it_names_another_teams_row_by_its_kind(self, client, cast, linked):
        client.force_login(cast.owner)
        page = client.get(url(GenerationPreset))
        presets = text_of(page)
        assert "Eval run: one of another team" in presets and "Rival" not in presets
        assert [header["sortable"] for header in page.context["result_headers"]
                if header["class_attrib"] == ' class="sortable column-source_run_cell"'] == [True]  # as it was
        sorted_page = client.get(url(GenerationPreset) + "?o=4")  # by that column (the 0th: the checkboxes)
        assert "Eval run: one of another team" in text_of(sorted_page)
        assert 4 in sorted_page.context["cl"].get_ordering_field_columns()
        items = text_of(client.get(url(LabelingItem)))
        assert "Candidate: one of another team" in items and "Rival" not in items

    def test_sorting_by_it_hints_nothing_of_another_teams_rows(self, client, cast, linked):
        # Sorted by the preset's sweep, Django ordered by the sweeps' dates: our presets of their sweeps sat among
        # ours by those hidden dates, and moved when they changed. Now they sort together, after the named ones.
        from datetime import timedelta

        from django.utils import timezone

        ours, theirs = linked["ours"], linked["theirs"]
        start = timezone.now() - timedelta(days=10)
        runs = {name: EvalRun.objects.create(team=team, name=name) for name, team in (
            ("Acme first", cast.team), ("Acme second", cast.team), ("Rival second", cast.other_team))}
        for name, run in runs.items():
            GenerationPreset.objects.create(team=cast.team, name=f"Preset of {name}", source_run=run)
        hidden = {ours[GenerationPreset].pk, GenerationPreset.objects.get(name="Preset of Rival second").pk}

        def orders() -> list[list[int]]:
            return [[preset.pk for preset in client.get(url(GenerationPreset) + query).context["cl"].result_list]
                    for query in ("?o=4", "?o=-4")]

        def date_runs(days: dict) -> None:
            for run, day in days.items():
                EvalRun.objects.filter(pk=run.pk).update(created=start + timedelta(days=day))

        client.force_login(cast.owner)
        date_runs({runs["Acme first"]: 1, runs["Acme second"]: 3, theirs[EvalRun]: 2, runs["Rival second"]: 4})
        before = orders()
        date_runs({theirs[EvalRun]: 5, runs["Rival second"]: 0})
        assert orders() == before
        for order in before:
            assert set(order[-2:]) == hidden  # together, after ours
        assert before[0][:2] == list(reversed(before[1][:2]))  # ours still sorted, both ways

    def test_it_asks_once_a_page_whatever_its_rows(self, client, cast, linked):
        # One query for a column's related rows on the page, not one a row.
        ours = linked["ours"]
        job = GenerationJob.objects.get(pk=ours[GenerationJob].pk)
        for position in range(20):
            candidate = job.candidates.create(index=position + 1, seed=position, rank=position + 2,
                                              scan_probability=0.5)
            LabelingItem.objects.create(session=ours[LabelingSession], candidate=candidate, position=position + 10)
        client.force_login(cast.owner)
        with CaptureQueriesContext(connection) as many:
            client.get(url(LabelingItem))
        LabelingItem.objects.filter(session=ours[LabelingSession]).exclude(position__in=(0, 9)).delete()
        with CaptureQueriesContext(connection) as one:
            client.get(url(LabelingItem))
        assert len(many) == len(one)

    def test_superusers_see_every_name(self, client, linked):
        client.force_login(get_user_model().objects.create_superuser("root", password="pw-root-1"))
        assert "Rival sweep" in text_of(client.get(url(GenerationPreset)))


@pytest.mark.django_db
class TestColumnsOfTheRowBeyond:
    """An admin's own methods that read the row beyond a relation into another team's (`shows_relation`)."""

    @pytest.fixture
    def failing(self, cast, linked):
        """Their candidate, which our placement prints, and one of ours, which our second placement prints, both
        failing the scan check."""
        from campaigns.models import Campaign

        ours, theirs = linked["ours"], linked["theirs"]
        Candidate.objects.filter(pk__in=[ours[Candidate].pk, theirs[Candidate].pk]).update(verdict="fail")
        Placement.objects.create(campaign=Campaign.objects.get(pk=ours[Placement].campaign_id), name="Acme flyer",
                                 artwork=ours[Candidate])
        return linked

    def test_the_print_column_keeps_another_teams_verdict_to_itself(self, client, cast, failing):
        # Our placement printing their candidate (a row made before the one-team forms) read "WILL NOT SCAN — do not
        # print" from their candidate's verdict: the column now names it by its kind, as the artwork's own would.
        client.force_login(cast.owner)
        page = client.get(url(Placement))
        listed = text_of(page)
        assert "Candidate: one of another team" in listed
        assert listed.count("WILL NOT SCAN") == 1  # our flyer's, of our own candidate
        assert "print" not in [header["text"] for header in page.context["result_headers"] if header["sortable"]]

    def test_superusers_read_every_verdict(self, client, failing):
        client.force_login(get_user_model().objects.create_superuser("root", password="pw-root-1"))
        assert text_of(client.get(url(Placement) + "?q=Acme")).count("WILL NOT SCAN") == 2

    def test_a_read_only_method_of_it_is_named_by_its_kind(self, client, cast, failing, monkeypatch):
        from django.contrib import admin

        placements = admin.site._registry[Placement]
        monkeypatch.setattr(placements, "readonly_fields", (*placements.readonly_fields, "print_state"))
        client.force_login(cast.owner)
        ours = failing["ours"][Placement]
        page = text_of(client.get(url(Placement, "change", ours)))
        assert "Print: Candidate: one of another team" in page and "WILL NOT SCAN" not in page

    def test_every_method_that_reads_beyond_its_row_says_which_relation(self):
        # The sweep, kept: a list column or read-only method that reads no relation into another team's rows (its own
        # fields, its reverse relations, the relation that decides its team) is named here; any other declares the
        # relation it follows (`shows_relation`), or its cell would show their row unmasked, as "print" did.
        from django.contrib.admin.utils import flatten

        from tests.qartsite.admin_pages import scoped_admins

        own_rows = {"Campaign.placements_listed", "Placement.slug_cell", "GenerationJob.preview",
                    "Candidate.preview", "Candidate.large_preview",
                    "HumanScanResult.image_cell"}  # its candidate decides its team (of two teams: shown to neither)
        undeclared = set()
        for model, model_admin in scoped_admins():
            named = [*flatten(model_admin.list_display), *getattr(model_admin, "halftone_list_display", ()),
                     *model_admin.readonly_fields]
            displayed = [name for name in dir(type(model_admin)) if hasattr(getattr(model_admin, name),
                                                                            "short_description")]
            for name in {*named, *displayed} - {*(model_admin.actions or ()), "delete_selected"}:
                method = getattr(model_admin, name, None) if isinstance(name, str) else name
                if callable(method) and not hasattr(method, "shows"):
                    undeclared.add(f"{model.__name__}.{getattr(method, '__name__', name)}")
        assert undeclared == own_rows

    def test_a_history_of_a_placement_moved_to_another_team_names_it_by_its_kind(self, client, cast, linked):
        # A destination change stays with its campaign; its placement, moved since into their campaign (a superuser
        # may), was named in the history's "campaign: placement" column by their campaign's name.
        from campaigns.models import DestinationChange

        ours, theirs = linked["ours"], linked["theirs"]
        DestinationChange.objects.filter(campaign=ours[Placement].campaign_id).update(placement=theirs[Placement])
        client.force_login(cast.owner)
        page = text_of(client.get(url(DestinationChange)))
        assert "Placement: one of another team" in page and "Rival" not in page
        by_where = client.get(url(DestinationChange) + "?o=1")  # by that column (no actions: no checkboxes)
        assert 1 in by_where.context["cl"].get_ordering_field_columns()
        assert "Placement: one of another team" in text_of(by_where)


    def test_sorting_a_history_by_where_orders_it_by_campaign_as_django_does(self, client, cast, rows):
        # "campaign: placement" sorts by campaign, which Django orders by every key of the campaign's ordering (not
        # archived, then newest first). Sorted by the first key alone (`archived`), and with the changes of no
        # placement sorted as if their placement were hidden, the column ordered nothing.
        from datetime import timedelta

        from django.utils import timezone

        from campaigns.models import Campaign, DestinationChange

        older = rows["ours"][Campaign]
        Campaign.objects.filter(pk=older.pk).update(created=timezone.now() - timedelta(days=3))
        newer = Campaign.objects.create(team=cast.team, name="Acme later campaign", destination="https://example.com")
        for campaign in (newer, older):
            DestinationChange.objects.create(campaign=campaign, field="destination", after="https://example.com/b")
        client.force_login(cast.owner)

        def campaigns(query: str) -> list[int]:
            listed = client.get(url(DestinationChange) + query).context["cl"].result_list
            return [change.campaign_id for change in listed]

        assert campaigns("?o=1") == [newer.pk, older.pk, older.pk]
        assert campaigns("?o=-1") == [older.pk, older.pk, newer.pk]


@pytest.mark.django_db
class TestNames:
    @pytest.mark.parametrize("page", ["change", "history", "delete"])
    def test_it_keeps_another_teams_prompt_out_of_our_jobs_name(self, client, cast, linked, page):
        # A job is named by its prompt (`GenerationJob.__str__`), on its page's title and breadcrumbs, its history
        # and its delete confirmation: our job's prompt may be theirs, as its placement may.
        from generator.models import Prompt

        ours, theirs = linked["ours"], linked["theirs"]
        GenerationJob.objects.filter(pk=ours[GenerationJob].pk).update(prompt=theirs[Prompt])
        client.force_login(cast.owner)
        shown = text_of(client.get(url(GenerationJob, page, ours[GenerationJob])))
        assert f"#{ours[GenerationJob].pk}" in shown and "Rival" not in shown


@pytest.mark.django_db
class TestSearch:
    def test_it_does_not_find_our_row_by_another_teams_row(self, client, cast, linked):
        # The job list searches its prompts' text: our job whose prompt is theirs was found by their prompt's words,
        # which spelt that prompt out one guess at a time (found or not), where its name and column no longer show it.
        from generator.models import Prompt

        ours, theirs = linked["ours"], linked["theirs"]
        GenerationJob.objects.filter(pk=ours[GenerationJob].pk).update(prompt=theirs[Prompt])
        client.force_login(cast.owner)
        assert client.get(url(GenerationJob) + "?q=Rival+prompt").context["cl"].result_count == 0
        assert client.get(url(GenerationJob) + "?q=x.io/Acme").context["cl"].result_count == 1  # its own fields

    def test_it_still_finds_rows_by_the_teams_own_rows(self, client, cast, linked):
        client.force_login(cast.owner)
        assert client.get(url(GenerationJob) + "?q=Acme+prompt").context["cl"].result_count == 1


@pytest.mark.django_db
class TestRowsOfNoTeam:
    def test_it_names_a_row_of_no_team_as_it_is(self, client, cast, linked):
        # A sweep's jobs and a halftone job draw from prompts of no team (kept off the team's gallery:
        # `Prompt.remember(team=None)`): no other team's, yet its own team's staff read "Prompt: one of another team"
        # in the job list, and could not find the job by its prompt.
        from generator.models import Prompt

        job = linked["ours"][GenerationJob]
        GenerationJob.objects.filter(pk=job.pk).update(prompt=Prompt.objects.create(text="Misty sweep forest"))
        client.force_login(cast.owner)
        listed = text_of(client.get(url(GenerationJob)))
        assert "Misty sweep forest" in listed and "one of another team" not in listed
        assert client.get(url(GenerationJob) + "?q=Misty").context["cl"].result_count == 1
        assert "“Misty sweep forest”" in str(GenerationJob.objects.get(pk=job.pk))


@pytest.fixture
def kept(cast, linked):
    """Our rows whose editable relations lead into the other team's (`linked`), by model: a placement's artwork, a
    preset's source run and a labeling item's candidate (raw-id inputs), a session's candidates (ids in one input),
    and a job not started yet, whose placement and prompt are still editable."""
    ours, theirs = linked["ours"], linked["theirs"]
    job = GenerationJob.objects.create(owner=cast.owner, team=cast.team, prompt=theirs[Prompt],
                                       placement=theirs[Placement], content="https://x.io/Acme-queued")
    item = LabelingItem.objects.get(session=ours[LabelingSession], position=9)
    return {Placement: ours[Placement], GenerationPreset: ours[GenerationPreset], LabelingItem: item,
            LabelingSession: ours[LabelingSession], GenerationJob: job}


def relation_ids(obj, name: str) -> set:
    obj = type(obj).objects.get(pk=obj.pk)
    field = obj._meta.get_field(name)
    return set(getattr(obj, name).values_list("pk", flat=True)) if field.many_to_many else {getattr(obj, field.attname)}


# A field of each page that the staff member changes, and the relations into the other team it must keep.
EDITS = {
    Placement: ({"location": "Lobby"}, ["artwork"], "Candidate: one of another team"),
    GenerationPreset: ({"name": "Acme preset two"}, ["source_run"], "Eval run: one of another team"),
    LabelingItem: ({"position": "3"}, ["candidate"], "Candidate: one of another team"),
    LabelingSession: ({"notes": "Second sitting"}, ["candidates"], None),
    GenerationJob: ({"seed": "7"}, ["placement", "prompt"], "Placement: one of another team"),
}


@pytest.mark.django_db
class TestEditableRelations:
    @pytest.mark.parametrize("model", list(EDITS), ids=lambda model: model.__name__)
    def test_saving_other_fields_keeps_a_relation_into_another_team(self, client, cast, kept, model):
        # A row made before the one-team forms points into the other team: its current value was no choice of the
        # user's, and saving the page to change another field answered "Select a valid choice".
        obj, (changes, names, shown) = kept[model], EDITS[model]
        before = {name: relation_ids(obj, name) for name in names}
        client.force_login(cast.owner)
        page = client.get(url(model, "change", obj))
        assert "Rival" not in text_of(page)
        if shown:
            assert shown in text_of(page)
        response = client.post(url(model, "change", obj), {**posted_back(page), **changes})
        assert response.status_code == 302, response.context["adminform"].form.errors
        assert {name: relation_ids(obj, name) for name in names} == before
        field, value = next(iter(changes.items()))
        assert str(getattr(type(obj).objects.get(pk=obj.pk), field)) == value

    def test_a_select_keeps_someone_who_left_the_team(self, client, cast, rows):
        # A select of teammates had no option for the prompt's owner, who moved to the other team: the page showed
        # the empty choice, and saving it cleared the owner without a word.
        prompt = rows["ours"][Prompt]
        Prompt.objects.filter(pk=prompt.pk).update(owner=cast.outsider)
        client.force_login(cast.owner)
        page = client.get(url(Prompt, "change", prompt))
        response = client.post(url(Prompt, "change", prompt), {**posted_back(page), "negative_text": "blurry"})
        assert response.status_code == 302
        prompt.refresh_from_db()
        assert prompt.owner == cast.outsider and prompt.negative_text == "blurry"

    def test_it_changes_or_clears_it_within_the_team(self, client, cast, kept, linked):
        ours = linked["ours"]
        client.force_login(cast.owner)
        preset, item = kept[GenerationPreset], kept[LabelingItem]
        page = posted_back(client.get(url(GenerationPreset, "change", preset)))
        for value, expected in ((ours[EvalRun].pk, ours[EvalRun].pk), ("", None)):
            response = client.post(url(GenerationPreset, "change", preset), {**page, "source_run": value})
            assert response.status_code == 302
            assert relation_ids(preset, "source_run") == {expected}
        another = Candidate.objects.create(job=ours[GenerationJob], index=1, seed=2, rank=2, scan_probability=0.5)
        page = posted_back(client.get(url(LabelingItem, "change", item)))
        assert client.post(url(LabelingItem, "change", item), {**page, "candidate": another.pk}).status_code == 302
        assert relation_ids(item, "candidate") == {another.pk}

    def test_it_refuses_any_other_row_of_another_team(self, client, cast, kept, linked):
        # Only the row it holds is kept: a forged post naming another of theirs is refused, by a select or a list.
        theirs = linked["theirs"]
        other_run = EvalRun.objects.create(team=cast.other_team, name="Rival second sweep")
        other_candidate = Candidate.objects.create(job=theirs[GenerationJob], index=1, seed=2, rank=2,
                                                   scan_probability=0.5)
        client.force_login(cast.owner)
        for model, name, forged in ((GenerationPreset, "source_run", other_run.pk),
                                    (LabelingItem, "candidate", other_candidate.pk),
                                    (LabelingSession, "candidates", f"{theirs[Candidate].pk},{other_candidate.pk}")):
            obj = kept[model]
            before = relation_ids(obj, name)
            page = posted_back(client.get(url(model, "change", obj)))
            response = client.post(url(model, "change", obj), {**page, name: forged})
            assert response.status_code == 200 and name in response.context["adminform"].form.errors, model
            assert relation_ids(obj, name) == before
            assert "Rival" not in text_of(response)

    def test_a_superuser_saves_it_as_it_is(self, client, kept):
        # Their choices hold every team's rows, and the one-team check refused the relation the row already had.
        client.force_login(get_user_model().objects.create_superuser("root", password="pw-root-1"))
        preset = kept[GenerationPreset]
        before = relation_ids(preset, "source_run")
        page = client.get(url(GenerationPreset, "change", preset))
        response = client.post(url(GenerationPreset, "change", preset), {**posted_back(page), "name": "Renamed"})
        assert response.status_code == 302 and relation_ids(preset, "source_run") == before


@pytest.mark.django_db
class TestLinksThatOpen:
    @pytest.fixture
    def change(self, rows):
        """Our change of a destination, read only to everyone."""
        return rows["ours"][DestinationChange]

    def changed_by(self, change, user) -> None:
        DestinationChange.objects.filter(pk=change.pk).update(changed_by=user)

    def test_someone_who_left_the_team_is_named_without_a_link(self, client, cast, change):
        # Django linked the field to the user's page, which answered "... doesn't exist. Perhaps it was deleted?".
        leaver = get_user_model().objects.create_user("leaver", password="pw-leaver-1")
        self.changed_by(change, leaver)
        client.force_login(cast.viewer)
        page = client.get(url(DestinationChange, "change", change))
        assert "Changed by: leaver" in text_of(page)
        assert url(get_user_model(), "change", leaver) not in page.content.decode()
        assert client.get(url(get_user_model(), "change", leaver)).status_code == 302  # the page it led to

    def test_a_teammate_is_still_linked(self, client, cast, change):
        self.changed_by(change, cast.teammate)
        client.force_login(cast.viewer)
        page = client.get(url(DestinationChange, "change", change))
        assert "Changed by: teammate" in text_of(page)
        assert url(get_user_model(), "change", cast.teammate) in page.content.decode()

    def test_the_superuser_who_activated_the_verifier_model_is_named_to_staff_without_a_link(self, client, cast):
        operator = get_user_model().objects.create_superuser("operator", password="pw-operator-1")
        verifier = VerifierModel.objects.create(model_id="logistic-v1-aaaa1111", form="logistic-v1", bias=-4.0,
                                                is_active=True, activated_by=operator)
        client.force_login(cast.owner)
        page = client.get(url(VerifierModel, "change", verifier))
        assert "Activated by: operator" in text_of(page)
        assert url(get_user_model(), "change", operator) not in page.content.decode()

    def test_every_registered_admin_links_only_what_opens(self):
        # Django links a read-only relation wherever the related model has an admin, so every admin draws them.
        assert [type(model_admin).__name__ for model_admin in admin.site._registry.values()
                if not isinstance(model_admin, LinksThatOpen)] == []

    def test_superusers_keep_every_link(self, client, change):
        root = get_user_model().objects.create_superuser("root", password="pw-root-1")
        leaver = get_user_model().objects.create_user("leaver", password="pw-leaver-1")
        self.changed_by(change, leaver)
        client.force_login(root)
        assert url(get_user_model(), "change", leaver) in client.get(
            url(DestinationChange, "change", change)).content.decode()
