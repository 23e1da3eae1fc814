"""The admin's lists of scans and rollups at 1280 px: a placement named in one long word (the underscore style many
teams name by) keeps every column in view. Its "campaign: placement" column pushed the last ones off the screen.

Headless Chromium (Debian's) against pytest-django's live server.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import DESKTOP, sign_in

pytestmark = pytest.mark.django_db(transaction=True)
NAME = "SS26_DE_BER_OOH_Poster_UBahn_Mitte_Alexanderplatz_Q2_Final_v3_approved"


@pytest.mark.browser
def test_a_long_placement_name_leaves_every_column_of_the_scan_and_rollup_lists_in_view(new_page, team_users):
    from django.utils import timezone

    from campaigns.models import Campaign, Placement, ScanEvent, ScanRollup
    from tests.conftest import make_staff

    make_staff(team_users.owner)
    campaign = Campaign.objects.create(team=team_users.team, name=NAME, destination="https://example.com/spring")
    placement = Placement.objects.create(campaign=campaign, name=f"{NAME}_flyer")
    ScanEvent.objects.create(placement=placement, device_class="mobile", os="Android", browser="Chrome Mobile",
                             country="DE")
    ScanRollup.objects.create(placement=placement, day=timezone.now().date(), scans=1, first_scan=timezone.now(),
                              last_scan=timezone.now())
    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "owner")
    for url in ("/admin/campaigns/scanevent/", "/admin/campaigns/scanrollup/"):
        page.goto(url)
        last = page.locator("#result_list tbody tr").first.locator("td").last
        assert last.evaluate("(el) => el.getBoundingClientRect().right <= window.innerWidth"), url
        assert page.locator("#result_list .clipped").first.get_attribute("title") == str(placement)
    assert failures == []
