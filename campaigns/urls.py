"""Dashboard routes under /campaigns/ (the short-link redirect itself is /r/<slug>, in qartsite/urls.py)."""

from __future__ import annotations

from django.urls import path

from campaigns import (
    alert_views,
    bulk_views,
    placement_views,
    print_views,
    scan_export_views,
    share_views,
    views,
    webhook_views,
)

app_name = "campaigns"

urlpatterns = [
    path("", views.campaign_list, name="list"),
    path("new/", views.campaign_new, name="new"),
    path("<int:campaign_id>/", views.campaign_detail, name="detail"),
    path("<int:campaign_id>/edit/", views.campaign_edit, name="edit"),
    path("<int:campaign_id>/archive/", views.campaign_archive, name="archive"),
    path("<int:campaign_id>/placements/new/", placement_views.placement_new, name="placement_new"),
    path("<int:campaign_id>/scans.csv", scan_export_views.campaign_scans_csv, name="scans_csv"),
    path("<int:campaign_id>/placements/import/", bulk_views.placement_import, name="placement_import"),
    path("<int:campaign_id>/placements.csv", bulk_views.placements_csv, name="placements_csv"),
    path("<int:campaign_id>/generate/", bulk_views.generate_all, name="generate_all"),
    path("campaigns.csv", bulk_views.campaigns_csv, name="campaigns_csv"),
    path("placements/<int:placement_id>/", placement_views.placement_detail, name="placement"),
    path("placements/<int:placement_id>/edit/", placement_views.placement_edit, name="placement_edit"),
    path("placements/<int:placement_id>/archive/", placement_views.placement_archive, name="placement_archive"),
    path("placements/<int:placement_id>/code.svg", print_views.placement_code_svg, name="placement_code_svg"),
    path("placements/<int:placement_id>/code.png", print_views.placement_code_png, name="placement_code_png"),
    path("placements/<int:placement_id>/print", print_views.placement_print, name="placement_print"),
    path("destination-changes/<int:change_id>/revert/", views.destination_revert, name="destination_revert"),
    path("placements/<int:placement_id>/scans.csv", scan_export_views.placement_scans_csv, name="placement_scans_csv"),
    path("<int:campaign_id>/shares/", share_views.share_list, name="shares"),
    path("<int:campaign_id>/shares/new/", share_views.share_new, name="share_new"),
    path("shares/<int:share_id>/revoke/", share_views.share_revoke, name="share_revoke"),
    # No login: the token is the key (campaigns.shares).
    path("shared/<str:token>/", share_views.shared_report, name="shared_report"),
    path("alerts/<int:alert_id>/dismiss/", alert_views.alert_dismiss, name="alert_dismiss"),
    path("teams/<int:team_id>/webhooks/", webhook_views.webhook_list, name="webhooks"),
    path("teams/<int:team_id>/webhooks/<int:endpoint_id>/rotate/", webhook_views.webhook_rotate,
         name="webhook_rotate"),
    path("teams/<int:team_id>/webhooks/<int:endpoint_id>/test/", webhook_views.webhook_test, name="webhook_test"),
    path("teams/<int:team_id>/webhooks/<int:endpoint_id>/enable/", webhook_views.webhook_enable,
         name="webhook_enable"),
    path("teams/<int:team_id>/webhooks/<int:endpoint_id>/delete/", webhook_views.webhook_delete,
         name="webhook_delete"),
]
