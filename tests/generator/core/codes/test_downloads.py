"""Downloads: the print size asked for in a query string."""

from __future__ import annotations

import pytest

from generator.core.codes import downloads


def test_it_reads_a_print_size_and_defaults_to_the_smallest():
    assert downloads.parse_size("2048") == 2048 and downloads.parse_size(None) == downloads.PRINT_SIZES[0]


def test_it_quotes_a_size_it_refuses_as_the_sites_messages_do():
    # repr wrote 'big\tsize' in single quotes with its own escapes; the site's messages write “…” (`echoes.echo`).
    with pytest.raises(ValueError) as exc:
        downloads.parse_size("big\tsize")
    assert str(exc.value) == "Download sizes are 1024, 2048, 4096 pixels; “big\\u0009size” is not one of them."
