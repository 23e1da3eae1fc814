from __future__ import annotations

import pytest

from qartsite.plurals import counted, possessive


@pytest.mark.parametrize(("count", "words"), [(0, "0 scans"), (1, "1 scan"), (2, "2 scans"), (1234, "1,234 scans")])
def test_it_agrees_the_noun_with_the_count(count, words):
    assert counted(count, "scan") == words


def test_it_takes_an_irregular_plural():
    assert (counted(1, "entry", "entries"), counted(3, "entry", "entries")) == ("1 entry", "3 entries")


@pytest.mark.parametrize(("name", "words"), [("Acme", "Acme's"), ("Acme Coffee Roasters", "Acme Coffee Roasters'"),
                                              ("ATLAS", "ATLAS'"), ("", "'s")])
def test_it_gives_a_name_its_possessive(name, words):
    assert possessive(name) == words


def test_the_template_filter_escapes_the_name_and_not_its_ending():
    from django.template import Context, Template

    page = Template("{% load words %}{{ name|possessive }} codes")
    assert page.render(Context({"name": "<i>Tea & Roasters"})) == "&lt;i&gt;Tea &amp; Roasters' codes"
    assert page.render(Context({"name": "Acme"})) == "Acme's codes"
