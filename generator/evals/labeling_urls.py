"""Routes of human scan labeling: the one-time links phones open (`/l/<token>`); the staff pages are under
/evals/labeling/ (generator/evals/urls.py)."""

from __future__ import annotations

from django.urls import path

from generator.evals import labeling_views

app_name = "labeling"

urlpatterns: list = [
    path("<str:token>", labeling_views.hit, name="hit"),
]
