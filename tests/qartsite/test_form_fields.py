"""The forms' number, date and id fields (`qartsite.form_fields`), and that every form and admin of the project uses
them."""

from __future__ import annotations

import warnings
from datetime import date

import pytest
from django import forms
from django.contrib import admin
from django.db import models
from django.test import RequestFactory

from qartsite import form_fields
from qartsite.models import Team
from tests.qartsite.inputs import ARABIC_INDIC, FULL_WIDTH, project_subclasses

# Django's fields that read numbers, dates or ids with Python's int()/float()/Decimal()/strptime (FloatField and
# DecimalField are IntegerFields, ModelMultipleChoiceField a ModelChoiceField), and this project's for each.
READERS = (forms.IntegerField, forms.DateField, forms.DateTimeField, forms.TimeField, forms.SplitDateTimeField,
           forms.ModelChoiceField)
PLAIN = (form_fields.IntegerField, form_fields.FloatField, form_fields.DecimalField, form_fields.DateField,
         form_fields.DateTimeField, form_fields.TimeField, form_fields.SplitDateTimeField,
         form_fields.ModelChoiceField, form_fields.ModelMultipleChoiceField)


YEAR = "2026".translate(FULL_WIDTH)
HOUR = "1" + "0".translate(ARABIC_INDIC) + ":00"


def cleaned(field: forms.Field, value):
    try:
        return field.clean(value)
    except forms.ValidationError as exc:
        return exc.messages


class TestFields:
    @pytest.mark.parametrize("field, value, expected", [
        (form_fields.IntegerField(), "1_000", ["Enter a whole number."]),
        (form_fields.IntegerField(), "123".translate(FULL_WIDTH), ["Enter a whole number."]),
        (form_fields.IntegerField(), "3".translate(ARABIC_INDIC), ["Enter a whole number."]),
        (form_fields.IntegerField(), " 123 ", 123),
        (form_fields.FloatField(), "3.5".translate(ARABIC_INDIC), ["Enter a number."]),
        (form_fields.FloatField(), "1_0.5", ["Enter a number."]),
        (form_fields.FloatField(), "-3.5", -3.5),
        (form_fields.DecimalField(), "2".translate(FULL_WIDTH), ["Enter a number."]),
        (form_fields.DecimalField(), "2.25", pytest.approx(2.25)),
        # strptime reads other digits where its pattern says \d: a year, an hour's second digit.
        (form_fields.DateField(), YEAR + "-05-01", ["Enter a date like 2026-03-01."]),
        # Django's English formats: 1 May to Django, 5 January to much of the world; ISO forms no client sends
        (form_fields.DateField(), "05/01/2026", ["Enter a date like 2026-03-01."]),
        (form_fields.DateField(), "2026-5-1", ["Enter a date like 2026-03-01."]),
        (form_fields.DateField(), "20260501", ["Enter a date like 2026-03-01."]),
        (form_fields.DateField(required=False), "", None),
        (form_fields.SplitDateTimeField(), ["05/01/2026", "10:00"], ["Enter a valid date."]),
        (form_fields.DateTimeField(), "2026-05-01 " + HOUR, ["Enter a valid date/time."]),
        (form_fields.TimeField(), HOUR, ["Enter a valid time."]),
        (form_fields.SplitDateTimeField(), [YEAR + "-05-01", "10:00"], ["Enter a valid date."]),
        (form_fields.SplitDateTimeField(), ["2026-05-01", HOUR], ["Enter a valid time."]),
        (form_fields.DateField(), "2026-05-01", date(2026, 5, 1)),
    ])
    def test_it_reads_numbers_and_dates_in_ascii_digits_only(self, field, value, expected):
        assert cleaned(field, value) == expected

    def test_it_keeps_a_forms_own_message(self):
        field = form_fields.IntegerField(error_messages={"invalid": "Type the days in digits."})
        assert cleaned(field, "1_0") == ["Type the days in digits."]

    @pytest.mark.django_db
    def test_it_takes_ids_in_ascii_digits_only(self):
        team = Team.objects.create(name="Acme")
        one = form_fields.ModelChoiceField(queryset=Team.objects.all())
        many = form_fields.ModelMultipleChoiceField(queryset=Team.objects.all())
        for sent in (str(team.pk).translate(ARABIC_INDIC), f"0_{team.pk}", "9" * 30):
            assert cleaned(one, sent) == ["Select a valid choice. That choice is not one of the available choices."]
            assert len(cleaned(many, [sent])) == 1
        assert cleaned(one, str(team.pk)) == team
        assert list(cleaned(many, [str(team.pk)])) == [team]

    def test_it_gives_a_model_form_this_modules_fields(self):
        class Settings(form_fields.ModelForm):
            class Meta:
                model = Team
                fields = ["scan_retention_days"]

        class Renamed(Settings):
            class Meta:  # a Meta written anew, not Settings.Meta's subclass
                model = Team
                fields = ["scan_retention_days"]

        for form in (Settings, Renamed):
            assert isinstance(form.base_fields["scan_retention_days"], form_fields.IntegerField)


def project_forms() -> set[type]:
    import qartsite.urls  # noqa: F401 (imports every page's module, so every form is defined)

    return project_subclasses(forms.BaseForm)


class TestEveryForm:
    def test_it_finds_the_forms(self):
        names = {form.__name__ for form in project_forms()}
        assert {"PlacementForm", "PlacementRowForm", "TeamSettingsForm", "GenerationForm", "LabelingSessionForm",
                "ShareForm", "PlacementAdminForm"} <= names

    def test_every_forms_numbers_dates_and_ids_are_read_in_ascii(self):
        # A form declaring Django's IntegerField, or a model form not built on `form_fields.ModelForm`, read "１２３"
        # as 123 and "1_000" as 1000.
        unplain = [f"{form.__module__}.{form.__name__}.{name}" for form in project_forms()
                   for name, field in form.base_fields.items()
                   if isinstance(field, READERS) and not isinstance(field, PLAIN)]
        assert unplain == []

    @pytest.mark.django_db
    def test_every_admins_fields_are_read_in_ascii(self, django_user_model):
        from qartsite.scoped_admin import PlainFields

        request = RequestFactory().get("/admin/")
        request.user = django_user_model.objects.create_superuser("root", password="pw-root-1")
        unplain = []
        for model, model_admin in admin.site._registry.items():
            admins = [model_admin] + [inline(model, admin.site) for inline in model_admin.inlines]
            for each in admins:
                assert isinstance(each, PlainFields), type(each)
                for db_field in each.model._meta.get_fields():
                    if not db_field.concrete or db_field.auto_created and not db_field.is_relation:
                        continue
                    field = each.formfield_for_dbfield(db_field, request)
                    if isinstance(field, READERS) and not isinstance(field, PLAIN):
                        unplain.append(f"{type(each).__name__}: {db_field.name}")
        assert unplain == []

    @pytest.mark.django_db
    def test_every_admins_and_model_forms_links_assume_https_without_a_warning(self, django_user_model):
        # Django 5 read "example.com" as http://example.com and warned, once per form built, that 6.0 changes it.
        request = RequestFactory().get("/admin/")
        request.user = django_user_model.objects.create_superuser("root", password="pw-root-1")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fields = [each.formfield_for_dbfield(db_field, request)
                      for model, each in admin.site._registry.items() for db_field in model._meta.get_fields()
                      if isinstance(db_field, models.URLField)]
            fields += [form.base_fields[name] for form in project_forms()
                       for name, field in form.base_fields.items() if isinstance(field, forms.URLField)]
        assert len(fields) >= 3  # a campaign's destination and fallback, a webhook's address at least
        assert {field.clean("example.com/spring") for field in fields} == {"https://example.com/spring"}

    @pytest.mark.django_db
    def test_every_admin_inlines_counts_are_read_in_ascii(self, django_user_model):
        from qartsite.changelists import PlainChangeList

        request = RequestFactory().get("/admin/")
        request.user = django_user_model.objects.create_superuser("root", password="pw-root-1")
        for model, model_admin in admin.site._registry.items():
            assert issubclass(model_admin.get_changelist(request), PlainChangeList), type(model_admin)
            for inline in model_admin.inlines:
                assert issubclass(inline(model, admin.site).get_formset(request), form_fields.PlainCounts), inline


class TestFormsetCounts:
    def members_sent(self, cast, total: str) -> dict:
        from qartsite.models import Membership

        memberships = list(Membership.objects.filter(team=cast.team).order_by("pk"))
        data = {"name": "Acme Inc", "time_zone": "UTC", "scan_retention_days": "", "memberships-TOTAL_FORMS": total,
                "memberships-INITIAL_FORMS": total, "memberships-MIN_NUM_FORMS": "0",
                "memberships-MAX_NUM_FORMS": "1000"}
        for i, membership in enumerate(memberships):
            data |= {f"memberships-{i}-id": membership.pk, f"memberships-{i}-team": cast.team.pk,
                     f"memberships-{i}-user": membership.user_id, f"memberships-{i}-role": "owner"}
        return data

    @pytest.mark.parametrize("digits", [FULL_WIDTH, ARABIC_INDIC])
    def test_it_refuses_counts_not_written_in_digits_0_9_and_saves_nothing(self, client, cast, digits):
        # Django's int() read "３" as 3: the rows were saved as if the counts were plain.
        from qartsite.models import Membership
        from tests.qartsite.admin_pages import url

        client.force_login(cast.owner)
        response = client.post(url(Team, "change", cast.team),
                               self.members_sent(cast, str(Membership.objects.filter(team=cast.team).count())
                                                 .translate(digits)))
        html = response.content.decode()
        assert response.status_code == 200 and "ManagementForm data is missing or has been tampered with" in html
        assert "needs an owner" not in html  # the team's rule said so of the rows it could not read
        cast.team.refresh_from_db()
        assert cast.team.name == "Acme" and Membership.role_of(cast.viewer, cast.team) == "viewer"
