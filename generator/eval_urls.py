"""Routes of the staff eval pages, under /evals/: alignment, sweeps and their reports."""

from __future__ import annotations

from django.urls import path

from generator import alignment_pages, labeling, reports

app_name = "evals"

urlpatterns: list = [
    # Sweep reports (generator/reports.py)
    path("runs/", reports.run_list, name="runs"),
    path("runs/<int:pk>/", reports.run_detail, name="run"),
    path("runs/<int:pk>/plots/<slug:name>.png", reports.plot_png, name="plot"),
    path("runs/<int:pk>/default/", reports.make_default_view, name="make_default"),
    # Human scan labeling and the verifier's alignment with it (generator/labeling.py, alignment_pages.py)
    path("labeling/", labeling.session_list, name="labeling"),
    path("labeling/<int:pk>/run/", labeling.session_run, name="labeling_run"),
    path("labeling/<int:pk>/done/", labeling.session_done, name="labeling_done"),
    path("labeling/<int:pk>/items/<int:item_pk>/status", labeling.item_status, name="labeling_status"),
    path("labeling/<int:pk>/items/<int:item_pk>/shown", labeling.item_shown, name="labeling_shown"),
    path("labeling/<int:pk>/items/<int:item_pk>/label", labeling.item_label, name="labeling_label"),
    path("alignment/", alignment_pages.alignment_page, name="alignment"),
    path("alignment/<slug:name>.png", alignment_pages.alignment_plot, name="alignment_plot"),
]
