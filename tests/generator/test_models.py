"""The app's models, as Django loads them: every one importable from `generator.models`, in its order."""

from __future__ import annotations

from django.apps import apps

from generator import models


def test_every_model_of_the_app_is_imported_from_here_in_its_order():
    # Other modules and the admin import every model from generator.models, though generation's and the evals' are
    # defined in their own modules; the order is the registry's, which reverse relations (and so the order of a
    # cascade's deletes) follow: the order the models had before they were split by subject.
    registered = list(apps.get_app_config("generator").get_models())
    assert [getattr(models, model.__name__) for model in registered] == registered
    assert [model.__name__ for model in registered] == [
        "Prompt", "GenerationJob", "Candidate", "LabelingSession", "LabelingItem", "HumanScanResult", "EvalRun",
        "EvalSample", "GenerationPreset", "VerifierModel", "VerifierActivation",
    ]
