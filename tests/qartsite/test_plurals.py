from __future__ import annotations

import pytest

from qartsite.plurals import counted


@pytest.mark.parametrize(("count", "words"), [(0, "0 scans"), (1, "1 scan"), (2, "2 scans"), (1234, "1,234 scans")])
def test_it_agrees_the_noun_with_the_count(count, words):
    assert counted(count, "scan") == words


def test_it_takes_an_irregular_plural():
    assert (counted(1, "entry", "entries"), counted(3, "entry", "entries")) == ("1 entry", "3 entries")
