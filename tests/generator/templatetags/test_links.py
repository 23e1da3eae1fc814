"""generator.templatetags.links: the `breaks_after_slashes` filter."""

from __future__ import annotations

from django.template import Context, Template


def render(text: str) -> str:
    return Template("{% load links %}{{ text|breaks_after_slashes }}").render(Context({"text": text}))


def test_it_offers_a_break_after_each_slash_only():
    assert render("qart.example/r/AbC12345") == "qart.example/<wbr>r/<wbr>AbC12345"
    assert render("qart.example/r/") == "qart.example/<wbr>r/"  # no break offered after the last character
    assert render("a.example/?to=https://b.example") == "a.example/<wbr>?to=https://<wbr>b.example"  # "//" whole


def test_it_escapes_the_text_around_the_breaks():
    assert render('a.example/<b>"x"&/y') == "a.example/<wbr>&lt;b&gt;&quot;x&quot;&amp;/<wbr>y"
