"""Routes of human scan labeling: the one-time links phones open (`/l/<token>`) and the labeling pages."""

from __future__ import annotations

app_name = "labeling"

urlpatterns: list = []
