"""The pages' and the admin's form fields for numbers, dates and ids, read as the API reads them
(`qartsite.numbers.plainly_written`, `in_ascii`; the API's fields are `qartsite.api`'s).

Django's fields read what Python reads: `int()`, `float()` and `Decimal()` take other scripts' digits and underscores,
so a placement's printed quantity "1_000" was stored as 1000 and "１２３" (full width) as 123, a latitude "٣.٥"
(Arabic-Indic) as 3.5; `strptime` read "２０２６-05-01" as a date (a year is any four digits to it); a choice of
team by id "١" picked team 1.
Here such text gets the message Django gives any other text that is not a number, date or choice.

Every form of the project uses these: declared fields by name, a model form's generated fields through `ModelForm`
(`plain_formfield`), the admin's through `ADMIN_OVERRIDES` (`qartsite.scoped_admin.PlainFields`).
tests/qartsite/test_form_fields.py walks the forms and the admins and proves it.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.forms import formsets
from django.forms.models import ModelFormMetaclass
from django.utils.functional import cached_property

from generator.core.codes.echoes import echo
from qartsite.numbers import in_ascii, plain_date, plainly_written, whole


def refuse_unless(plain: bool, field: forms.Field, key: str = "invalid") -> None:
    """Raise `field`'s own `key` message ("Enter a whole number.", a form's own words where it has them)
    unless `plain`."""
    if not plain:
        raise ValidationError(field.error_messages[key], code=key)


class PlainlyWritten:
    """A Django field that refuses text `plain` says no client writes, with its own "invalid" message, before
    Django reads it."""

    plain = staticmethod(plainly_written)

    def to_python(self, value):
        refuse_unless(self.plain(value), self)
        return super().to_python(value)


class IntegerField(PlainlyWritten, forms.IntegerField):
    """Django's, refusing digits other than ASCII's and underscores: "Enter a whole number."."""


class FloatField(PlainlyWritten, forms.FloatField):
    """Django's, refusing digits other than ASCII's and underscores: "Enter a number."."""


class DecimalField(PlainlyWritten, forms.DecimalField):
    """Django's, refusing digits other than ASCII's and underscores: "Enter a number."."""


def written_as_a_day(value: object) -> bool:
    """Whether a date sent as text is written YYYY-MM-DD in ASCII digits (`qartsite.numbers.plain_date`), the one
    way the API reads dates too. Blank passes: the field's `required` says whether that will do.

    Django's English formats also read "05/01/2026" (1 May to Django, 5 January to much of the world, typed into the
    admin's date box) and "2026-5-1"; a date input and the admin's calendar send YYYY-MM-DD."""
    return not isinstance(value, str) or not value.strip() or plain_date(value.strip()) is not None


class DateField(PlainlyWritten, forms.DateField):
    """Django's, reading only YYYY-MM-DD in ASCII digits (`written_as_a_day`): "Enter a date like 2026-03-01."."""

    default_error_messages = {"invalid": "Enter a date like 2026-03-01."}
    plain = staticmethod(written_as_a_day)


class DateTimeField(PlainlyWritten, forms.DateTimeField):
    """Django's, refusing digits other than ASCII's: "Enter a valid date/time."."""

    plain = staticmethod(in_ascii)


class TimeField(PlainlyWritten, forms.TimeField):
    """Django's, refusing digits other than ASCII's: "Enter a valid time."."""

    plain = staticmethod(in_ascii)


class SplitDateTimeField(forms.SplitDateTimeField):
    """Django's date and time in two inputs (the admin's): the date YYYY-MM-DD (`written_as_a_day`), each in ASCII
    digits."""

    def clean(self, value):
        if isinstance(value, list | tuple) and len(value) == 2:
            refuse_unless(written_as_a_day(value[0]), self, "invalid_date")
            refuse_unless(in_ascii(value[1]), self, "invalid_time")
        return super().clean(value)


def plain_id(field: forms.ModelChoiceField, value) -> bool:
    """Whether `value`, sent for `field`, may be looked up: an id in ASCII digits (`qartsite.numbers.whole`) where the
    choices are keyed by a whole number; Django's lookup reads "١" as 1 and "1_0" as 10 (and 30 digits were an
    OverflowError, a 500). A key of text (a slug) takes any text."""
    if value in field.empty_values or isinstance(value, models.Model) or field.queryset is None:
        return True
    opts = field.queryset.model._meta
    key = opts.get_field(field.to_field_name) if field.to_field_name else opts.pk
    return not isinstance(key, models.IntegerField) or whole(value) is not None


class ModelChoiceField(forms.ModelChoiceField):
    """Django's ModelChoiceField, taking an id in ASCII digits only (`plain_id`): "Select a valid choice."."""

    def to_python(self, value):
        refuse_unless(plain_id(self, value), self, "invalid_choice")
        return super().to_python(value)


class ModelMultipleChoiceField(forms.ModelMultipleChoiceField):
    """Django's ModelMultipleChoiceField, taking ids in ASCII digits only (`plain_id`)."""

    def _check_values(self, value):
        for pk in value:
            if not plain_id(self, pk):
                raise ValidationError(self.error_messages["invalid_pk_value"], code="invalid_pk_value",
                                      params={"pk": echo(pk)})
        return super()._check_values(value)


# A model field's form field, by the model field's class (the first of its classes found here: a DateTimeField is
# also a DateField); `SplitDateTimeField` is the admin's, which shows a date and a time apart.
FORM_CLASSES: dict[type[models.Field], type[forms.Field]] = {
    models.IntegerField: IntegerField,  # and every integer and auto field
    models.FloatField: FloatField,
    models.DecimalField: DecimalField,
    models.DateTimeField: DateTimeField,
    models.DateField: DateField,
    models.TimeField: TimeField,
    models.ForeignKey: ModelChoiceField,  # and OneToOneField
    models.ManyToManyField: ModelMultipleChoiceField,
}


def form_class_for(db_field: models.Field) -> type[forms.Field] | None:
    """This module's form field for `db_field`, None where Django's reads no number, date or id."""
    return next((FORM_CLASSES[cls] for cls in type(db_field).__mro__ if cls in FORM_CLASSES), None)


def plain_formfield(db_field: models.Field, **kwargs) -> forms.Field | None:
    """A model form's field for `db_field` (Django's `formfield_callback`), with this module's classes. A field with
    choices stays Django's choice field: it compares the text sent with its choices' own."""
    form_class = form_class_for(db_field)
    if form_class is not None:
        kwargs.setdefault("form_class", form_class)
    if isinstance(db_field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return db_field.formfield(**kwargs)


# The admin's `formfield_overrides`, merged by Django with its own widgets (relations: `scoped_admin.PlainFields`).
# Django takes the first of a model field's classes it has an entry for: BigIntegerField has one of its own (a widget).
ADMIN_OVERRIDES = {
    models.IntegerField: {"form_class": IntegerField},
    models.BigIntegerField: {"form_class": IntegerField},
    models.FloatField: {"form_class": FloatField},
    models.DecimalField: {"form_class": DecimalField},
    models.DateTimeField: {"form_class": SplitDateTimeField},
    models.DateField: {"form_class": DateField},
    models.TimeField: {"form_class": TimeField},
    # A link typed without its scheme is read as https (Django 5 assumes http, with a deprecation warning each time).
    models.URLField: {"assume_scheme": "https"},
}


class PlainModelFormMetaclass(ModelFormMetaclass):
    """Gives a model form's `Meta` `plain_formfield` as its `formfield_callback` unless it names one: Django reads it
    from the form's own `Meta` only, which a subclass writing `class Meta:` anew would lose."""

    def __new__(mcs, name, bases, attrs):
        meta = attrs.get("Meta")
        if meta is not None and getattr(meta, "formfield_callback", None) is None:
            attrs["Meta"] = type("Meta", (meta,), {"formfield_callback": plain_formfield})
        return super().__new__(mcs, name, bases, attrs)


class ModelForm(forms.ModelForm, metaclass=PlainModelFormMetaclass):
    """The project's model forms' base: numbers, dates and ids read as the API reads them (`plain_formfield`)."""


class ManagementForm(formsets.ManagementForm):
    """Django's formset counts (TOTAL_FORMS, INITIAL_FORMS, ...) read by this module's `IntegerField`: Django's read
    "３" (full width) and "٣" (Arabic-Indic) as 3, and a formset took them as the count of its rows."""

    TOTAL_FORMS = IntegerField(widget=forms.HiddenInput)
    INITIAL_FORMS = IntegerField(widget=forms.HiddenInput)
    MIN_NUM_FORMS = IntegerField(required=False, widget=forms.HiddenInput)
    MAX_NUM_FORMS = IntegerField(required=False, widget=forms.HiddenInput)


class PlainCounts:
    """A formset whose sent counts are read by `ManagementForm`: anything else gets Django's own message for counts
    that are missing or tampered with, and no row is saved. The admin's inlines get it from
    `qartsite.scoped_admin.PlainFields`."""

    @cached_property
    def management_form(self):
        if not self.is_bound:
            return super().management_form  # drawn from the formset's own counts: nothing sent to read
        form = ManagementForm(self.data, auto_id=self.auto_id, prefix=self.prefix, renderer=self.renderer)
        form.full_clean()
        return form

    def clean(self) -> None:
        # Rows read without their counts are no rows to check: a formset's own rule ("Acme needs an owner") said so
        # of none, and its message replaced Django's about the counts.
        if self.management_form.is_valid():
            super().clean()
