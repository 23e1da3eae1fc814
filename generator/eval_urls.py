"""Routes of the staff eval pages, under /evals/: alignment, sweeps and their reports."""

from __future__ import annotations

app_name = "evals"

urlpatterns: list = []
