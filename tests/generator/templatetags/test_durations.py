"""generator.templatetags.durations: the `seconds_in_words` filter (the words are `generator.durations`')."""

from __future__ import annotations

from django.template import Context, Template


def test_the_filter_says_the_words_and_nothing_for_no_time():
    template = Template("{% load durations %}[{{ a|seconds_in_words }}|{{ b|seconds_in_words }}]")
    assert template.render(Context({"a": 93, "b": None})) == "[1 min 33 s|]"
