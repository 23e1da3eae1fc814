"""What holds for every template under templates/, read as text: no check here needs a page rendered."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "templates"
# A whole one-line comment: Django's `{# #}` ends on the line it starts on.
ONE_LINE_COMMENT = re.compile(r"\{#.*?#\}")


def unclosed_comments(text: str) -> list[int]:
    """The numbers of the lines where a `{#` comment has no `#}` after it on the same line."""
    return [number for number, line in enumerate(text.splitlines(), start=1)
            if "{#" in ONE_LINE_COMMENT.sub("", line)]


def test_it_finds_an_unclosed_comment():
    text = "<p>{# one line #}</p>\n{# a note that goes on\n   to the next line #}\n{# a #} {# b\n"
    assert unclosed_comments(text) == [2, 4]


def test_it_has_no_comment_that_runs_past_its_line():
    """Django shows a `{#` without `#}` on its line as text, on the page, to everyone: a comment over several lines
    is `{% comment %}…{% endcomment %}`."""
    paths = sorted(path for path in TEMPLATES.rglob("*") if path.is_file())  # the e-mails' .txt ones too
    found = [f"{path.relative_to(ROOT)}:{number}" for path in paths for number in unclosed_comments(path.read_text())]
    assert TEMPLATES.is_dir() and not found, f"comments shown as text: {', '.join(found)}"


def test_it_renders_a_field_of_choices_as_a_fieldset_with_a_legend():
    # A group of radios or checkboxes has no one input a <label for> can name: it rendered <label for="">.
    from django import forms
    from django.template.loader import render_to_string

    class Choices(forms.Form):
        source = forms.ChoiceField(choices=[("jobs", "Jobs"), ("sweep", "A sweep")], widget=forms.RadioSelect,
                                   help_text="Where the codes come from.")
        kinds = forms.MultipleChoiceField(choices=[("a", "A"), ("b", "B")], widget=forms.CheckboxSelectMultiple)
        name = forms.CharField()

    form = Choices({})
    for name, legend in (("source", "Source"), ("kinds", "Kinds")):
        html = render_to_string("generator/_field.html", {"field": form[name]})
        assert 'for=""' not in html and "<label for=\"id_" in html  # each choice keeps its own label
        assert re.search(rf'^<fieldset class="field error"[^>]*>\s*<legend>{legend}</legend>', html.strip())
    assert 'aria-describedby="id_source_helptext id_source_error"' in render_to_string(
        "generator/_field.html", {"field": form["source"]})
    text = render_to_string("generator/_field.html", {"field": form["name"]})
    assert '<label for="id_name">Name</label>' in text and "<fieldset" not in text


def test_the_error_summary_links_a_group_of_choices_to_its_first_option():
    # Its label names no one input (id_for_label is ""): the link was href="#", to the top of the page.
    from django import forms
    from django.template.loader import render_to_string

    class Choices(forms.Form):
        source = forms.ChoiceField(choices=[("jobs", "Jobs"), ("sweep", "A sweep")], widget=forms.RadioSelect)
        name = forms.CharField()

    form = Choices({})
    html = render_to_string("qartsite/_form_errors.html", {"form": form})
    assert '<a href="#id_source_0">Source</a>' in html and '<a href="#id_name">Name</a>' in html
    assert 'href="#"' not in html
    assert 'id="id_source_0"' in str(form["source"])  # the option the link leads to


DATE_FILTER = re.compile(r"""\|date\b(?::(["'])(?P<format>[^"']*)\1)?""")
HOUSE_FORMATS = {"DATE_FORMAT", "DATETIME_FORMAT", "c"}  # "c": ISO 8601, for a <time datetime> attribute


def test_it_shows_dates_in_the_house_formats_only():
    """Dates in one format and date-times in another on every page (qartsite/formats/en/formats.py): pages mixed
    "Y-m-d H:i", "j M Y, H:i", "D j M Y", "j M" and "3 hours ago"."""
    paths = sorted(TEMPLATES.rglob("*.html"))
    found = [f"{path.relative_to(ROOT)}: {match.group(0)}" for path in paths
             for match in DATE_FILTER.finditer(path.read_text()) if match.group("format") not in HOUSE_FORMATS]
    found += [f"{path.relative_to(ROOT)}: {name}" for path in paths for name in ("naturaltime", "naturalday")
              if f"|{name}" in path.read_text()]
    assert paths and not found, "\n".join(found)


def test_the_house_formats_read_day_month_year():
    from datetime import date, datetime

    from django.template import Context, Template

    shown = Template('{{ day|date:"DATE_FORMAT" }} · {{ moment|date:"DATETIME_FORMAT" }} · {{ moment }}').render(
        Context({"day": date(2026, 12, 6), "moment": datetime(2026, 12, 6, 14, 5)}))
    assert shown == "6 Dec 2026 · 6 Dec 2026 14:05 · 6 Dec 2026 14:05"  # a bare date-time too (the admin's)


# A form that asks before an action it says cannot be undone, up to its first submit button.
FOR_GOOD = re.compile(r'<form\b[^>]*data-confirm="[^"]*cannot be undone[^"]*"[^>]*>(.*?)</form>', re.S)
BUTTON_CLASSES = re.compile(r'<button\b[^>]*class="([^"]*)"')


def test_every_action_that_cannot_be_undone_looks_like_one():
    """Revoking a token was an outlined secondary button where revoking a share link, deleting a webhook and removing
    a teammate were red: one kind of action, two looks."""
    forms = [(path, form) for path in sorted(TEMPLATES.rglob("*.html")) for form in FOR_GOOD.findall(path.read_text())]
    plain = [f"{path.relative_to(ROOT)}" for path, form in forms
             if "danger" not in (BUTTON_CLASSES.search(form) or ["", ""])[1].split()]
    assert len(forms) >= 5 and plain == []
