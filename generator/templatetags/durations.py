"""The `seconds_in_words` filter: `generator.durations` in templates.

    {% load durations %}{{ state.eta|seconds_in_words }}  ->  "22 min 41 s"
"""

from __future__ import annotations

from django import template

from generator.durations import seconds_in_words_or_nothing

register = template.Library()
# Named as views call the words (`seconds_in_words`); it takes None too, as a template's missing time is "".
register.filter("seconds_in_words", seconds_in_words_or_nothing)
