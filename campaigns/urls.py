"""Dashboard routes under /campaigns/ (the short-link redirect itself is /r/<slug>, in qartsite/urls.py)."""

from __future__ import annotations

from django.urls import path

from campaigns import pages

app_name = "campaigns"

urlpatterns = [
    path("", pages.campaign_list, name="list"),
    path("new/", pages.campaign_new, name="new"),
    path("<int:campaign_id>/", pages.campaign_detail, name="detail"),
    path("<int:campaign_id>/edit/", pages.campaign_edit, name="edit"),
    path("<int:campaign_id>/placements/new/", pages.placement_new, name="placement_new"),
    path("<int:campaign_id>/scans.csv", pages.campaign_scans_csv, name="scans_csv"),
    path("placements/<int:placement_id>/", pages.placement_detail, name="placement"),
    path("placements/<int:placement_id>/edit/", pages.placement_edit, name="placement_edit"),
    path("placements/<int:placement_id>/code.svg", pages.placement_code_svg, name="placement_code_svg"),
    path("placements/<int:placement_id>/code.png", pages.placement_code_png, name="placement_code_png"),
    path("placements/<int:placement_id>/scans.csv", pages.placement_scans_csv, name="placement_scans_csv"),
]
