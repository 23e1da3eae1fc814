"""qartsite.templatetags.words: the `breaks_in_name` filter (`possessive` is tested with qartsite.plurals)."""

from __future__ import annotations

from django.template import Context, Template


def render(name: str) -> str:
    return Template("{% load words %}{{ name|breaks_in_name }}").render(Context({"name": name}))


def test_it_offers_a_break_after_each_run_of_underscores_or_dots_only():
    assert render("SS26_DE_BER_v3.2") == "SS26_<wbr>DE_<wbr>BER_<wbr>v3.<wbr>2"
    assert render("Poster__A") == "Poster__<wbr>A"  # one break after a run, not inside it
    assert render("Poster_") == "Poster_"  # none after the last character
    assert render("Harbour festival") == "Harbour festival"  # spaces break already


def test_it_escapes_the_name_around_the_breaks():
    assert render('<b>_"x"&_y') == "&lt;b&gt;_<wbr>&quot;x&quot;&amp;_<wbr>y"
