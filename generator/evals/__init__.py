"""The Django side of /evals/ and /l/: labeling sessions and their phone page, human labels as CSV, the
verifier's alignment with people, parameter sweeps and their reports. The figures come from `generator.core.evals`;
the models live in `generator.models` (app label `generator`, so migrations and admin URLs stay)."""
