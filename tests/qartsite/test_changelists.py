"""The admin's lists read their page numbers, orderings and filters' numbers as the site does
(`qartsite.changelists`)."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.http import QueryDict

from campaigns.models import Campaign
from qartsite.changelists import REFUSED, plainly_asked
from tests.qartsite.admin_pages import url
from tests.qartsite.inputs import ARABIC_INDIC, FULL_WIDTH


def many_campaigns(team, count: int) -> None:
    Campaign.objects.bulk_create(Campaign(team=team, name=f"Run {i:03d}", destination="https://example.com/")
                                 for i in range(count))


class TestChangeLists:
    @pytest.mark.parametrize("query", [
        {"p": "2".translate(FULL_WIDTH)},  # page 2
        {"p": "1_0"},  # page 10: past the end, but read
        {"o": "1".translate(ARABIC_INDIC)},  # sorted by the second column
        {"team__id__exact": "{team}"},  # the team's rows, its id in full-width digits
        {"team": "{team}"},
        {"id__in": "{campaign},{campaign}"},
        {"team": "9" * 400},  # an OverflowError's 500 on SQLite
    ])
    def test_it_refuses_numbers_not_written_in_digits_0_9_with_one_message(self, client, cast, query):
        many_campaigns(cast.team, 150)
        campaign = Campaign.objects.filter(team=cast.team).first()
        written = {key: value.format(team=str(cast.team.pk).translate(FULL_WIDTH),
                                     campaign=str(campaign.pk).translate(ARABIC_INDIC)) for key, value in query.items()}
        client.force_login(cast.owner)
        response = client.get(url(Campaign), written)
        assert response.status_code == 302 and response["Location"] == url(Campaign) + "?e=1"
        assert [str(m) for m in get_messages(response.wsgi_request)] == [REFUSED]

    def test_it_reads_numbers_written_in_digits_0_9(self, client, cast):
        many_campaigns(cast.team, 150)
        client.force_login(cast.owner)
        response = client.get(url(Campaign), {"p": "2", "o": "-1.2", "team__id__exact": str(cast.team.pk)})
        assert response.status_code == 200 and response.context["cl"].page_num == 2
        assert list(get_messages(response.wsgi_request)) == []

    @pytest.mark.parametrize("query, plain", [
        ({"aesthetic_vote__exact": "-1"}, True),  # a vote's choice
        ({"aesthetic_vote__exact": "-١"}, False),
        ({"scanned__exact": "1"}, True),
        ({"session__id__exact": "3", "device": "Pixel ８"}, True),  # a text field's value is text
        ({"session__isnull": "True"}, True),
        ({"created__gte": "2026-05-01"}, True),
        ({"created__gte": "２０２６-05-01"}, False),
        ({"p": "0"}, False),
        ({"o": "2.-x"}, False),
    ])
    def test_it_reads_filters_by_their_fields(self, query, plain):
        from generator.models import HumanScanResult

        sent = QueryDict(mutable=True)
        sent.update(query)
        assert plainly_asked(HumanScanResult, sent) is plain
