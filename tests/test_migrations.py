"""Every app's models and migrations agree."""

from __future__ import annotations

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_every_change_to_the_models_has_its_migration():
    # A help text or a label is part of a field's migration state too: without its migration, the next person's
    # makemigrations picks up someone else's change. Exits 1 (SystemExit) when one is missing, in any app.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
