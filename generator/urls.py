"""Routes of the generation pages, under /generate/."""

from __future__ import annotations

from django.urls import path

from generator import action_views, views

app_name = "generator"

urlpatterns = [
    path("", views.generate, name="generate"),
    path("placements.json", views.placement_search, name="placement_search"),
    path("jobs/", views.job_list, name="jobs"),
    path("jobs/<int:pk>/", views.job_detail, name="job"),
    path("jobs/<int:pk>/status.json", views.job_status, name="job_status"),
    path("jobs/<int:pk>/cancel/", action_views.cancel_job, name="cancel"),
    path("jobs/<int:pk>/delete/", action_views.delete_job, name="delete"),
    path("jobs/<int:pk>/code.svg", views.code_svg, name="code_svg"),
    path("candidates/<int:pk>/use/", action_views.use_candidate, name="use_candidate"),
    path("candidates/<int:pk>/download.png", views.candidate_png, name="candidate_png"),
]
