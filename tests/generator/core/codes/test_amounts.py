"""Sizes in words (generator.core.codes.amounts): the one rule for every message that names a size."""

from __future__ import annotations

import pytest

from generator.core.codes.amounts import amount, over_cap


@pytest.mark.parametrize(("size", "words"), [(640 * 1024, "640 KB"), (12_900_000, "12.3 MB"), (10 * 2**20, "10 MB"),
                                             (5 * 2**19, "2.5 MB"), (3 * 2**30, "3 GB"), (3 * 2**29, "1.5 GB"),
                                             (10**23, "90,949,470,177 TB")])
def test_it_says_a_size_in_words_a_person_reads(size, words):
    # A Content-Length of 10**23 was "The request is 95367431640624992.0 MB"; the default cap was "10.0 MB".
    assert amount(size) == words


@pytest.mark.parametrize(("size", "cap", "words"), [
    (12 * 2**20, 10 * 2**20, ("12 MB", "10 MB")),
    (10 * 2**20 + 42_000, 10 * 2**20, ("10.04 MB", "10 MB")),  # was "10 MB; pictures up to 10 MB"
    (int(10.07 * 2**20), int(10.06 * 2**20), ("10.07 MB", "10.06 MB")),  # both more precise: not "10.07" beside "10.1"
    (200 * 1024 + 400, 200 * 1024, ("200.4 KB", "200 KB")),
    (10 * 2**20 + 1, 10 * 2**20, ("over 10 MB", "10 MB")),  # one byte over reads as the cap to any decimal shown
])
def test_it_never_says_a_size_over_the_cap_is_the_cap(size, cap, words):
    assert over_cap(size, cap) == words
