"""Routes of the staff eval pages, under /evals/: overview, labeling sessions, alignment, sweeps and reports."""

from __future__ import annotations

from django.urls import path

from generator.evals import alignment_views, labeling_views, overview_views, report_views

app_name = "evals"

urlpatterns: list = [
    path("", overview_views.overview, name="overview"),
    # Sweep reports (report_views.py)
    path("runs/", report_views.run_list, name="runs"),
    path("runs/<int:pk>/", report_views.run_detail, name="run"),
    path("runs/<int:pk>/plots/<slug:name>.png", report_views.plot_png, name="plot"),
    path("runs/<int:pk>/default/", report_views.make_default_view, name="make_default"),
    # Human scan labeling and the verifier's alignment with it (labeling_views.py, alignment_views.py)
    path("labeling/", labeling_views.session_list, name="labeling"),
    path("labeling/<int:pk>/run/", labeling_views.session_run, name="labeling_run"),
    path("labeling/<int:pk>/done/", labeling_views.session_done, name="labeling_done"),
    path("labeling/<int:pk>/items/<int:item_pk>/status", labeling_views.item_status, name="labeling_status"),
    path("labeling/<int:pk>/items/<int:item_pk>/shown", labeling_views.item_shown, name="labeling_shown"),
    path("labeling/<int:pk>/items/<int:item_pk>/label", labeling_views.item_label, name="labeling_label"),
    path("alignment/", alignment_views.alignment_page, name="alignment"),
    path("alignment/<slug:name>.png", alignment_views.alignment_plot, name="alignment_plot"),
]
