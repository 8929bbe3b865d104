"""Shared input bounds: one place for the limits every form, API schema and service applies.

A value outside these bounds is refused with a 4xx naming the field and the rule (422 JSON
for the API, a field error on the web); none may reach the database or a page, where it
would raise (``OverflowError`` on a year-1 datetime shifted to the clinic's time zone,
``decimal.InvalidOperation`` on ``1E+999999999``, an integer out of the database's range).

These are sanity bounds on input, not clinical limits: clinical limits (weight 25-350 kg,
blood-pressure ranges, dose maxima) live in ``ketaflow.clinical`` and are applied on top.

Used three ways:

* Django forms: every form derives from ``BoundedForm``/``BoundedModelForm``, which give each
  field the bounds it lacks (``bound_form_fields``); ``date_field(...)`` makes a date field
  with the clinic window;
* Django Ninja query, path and body parameters: ``Id``, ``Offset``, ``ClinicDate`` and
  ``bounded_int(...)`` (``typing.Annotated`` types; the bounds appear in the OpenAPI schema);
* services: ``check_decimal``, ``check_past_datetime``, ``check_planning_date``,
  ``check_clinic_date`` (they raise ``ValueError`` with the rule; the caller names the field).
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Annotated, Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from pydantic import AfterValidator, Field

# ---------------------------------------------------------------------------
# The limits
# ---------------------------------------------------------------------------

#: Largest value of the databases' 64-bit signed integer columns (ids, counters).
DB_INT_MAX = 2**63 - 1
DB_INT_MIN = -(2**63)
#: Largest value of a plain integer form field (a count or quantity, stored in a 32-bit
#: integer column on PostgreSQL; ids are chosen from lists, not typed).
FORM_INT_MAX = 2**31 - 1
#: Largest list offset: leaves room for ``offset + limit + 1`` within 64 bits.
OFFSET_MAX = 2**62
#: Any date or datetime a form accepts, whatever the field (narrower bounds per field on top):
#: no record of a living patient or of this clinic's work falls outside.
ANY_DATE_MAX = datetime.date(2199, 12, 31)
#: Dates of birth: 1900-01-01 (as the patient and intake forms always had) to today.
BIRTH_DATE_MIN = datetime.date(1900, 1, 1)
#: Earliest clinical event (a vital sign, a questionnaire, an appointment, a plan start): the
#: software and the records it holds are from this century; anything earlier is a typing error.
CLINICAL_DATE_MIN = datetime.date(2000, 1, 1)
#: How far ahead plans, appointments and calendar queries may reach (planning horizon).
PLANNING_YEARS = 5
#: Allowed clock skew for "not in the future" (a client's clock a little ahead of the server's;
#: the treatment chart has always allowed 2 minutes).
CLOCK_SKEW = datetime.timedelta(minutes=2)
#: How long before a session's check-in a reading may be timed (taken in the waiting room and
#: entered after check-in): a visit lasts hours, never a day.
VISIT_LOOKBACK = datetime.timedelta(hours=24)
#: Digits a decimal input may carry: more than any clinical quantity needs, few enough that
#: arithmetic on it stays exact in ``decimal``'s default 28-digit context.
DECIMAL_MAX_DIGITS = 12
DECIMAL_MAX_PLACES = 6
#: Request bodies (forms and JSON): no ketaflow form or API body comes near this.
MAX_BODY_BYTES = 2_621_440  # 2.5 MiB, Django's default DATA_UPLOAD_MAX_MEMORY_SIZE
#: Characters no text field may contain: NUL (PostgreSQL refuses it in text) and lone UTF-16
#: surrogates (cannot be encoded as UTF-8, so neither stored nor rendered).
FORBIDDEN_CHARACTERS = "NUL and unpaired surrogate characters"


def today() -> datetime.date:
    return timezone.localdate()


def clinical_floor() -> datetime.datetime:
    """CLINICAL_DATE_MIN as an aware datetime (UTC midnight)."""
    return datetime.datetime.combine(CLINICAL_DATE_MIN, datetime.time(0), tzinfo=datetime.UTC)


def planning_max() -> datetime.date:
    """The last date plans, appointments and calendar queries may reach."""
    t = today()
    try:
        return t.replace(year=t.year + PLANNING_YEARS)
    except ValueError:  # 29 February
        return t.replace(year=t.year + PLANNING_YEARS, day=28)


def _iso(d: datetime.date) -> str:
    return d.isoformat()


# ---------------------------------------------------------------------------
# Checks (raise ValueError with the rule; forms and schemas wrap them)
# ---------------------------------------------------------------------------


def bad_text(value: str) -> str | None:
    """The rule a text breaks (NUL or an unpaired surrogate), or None."""
    if "\x00" in value:
        return "must not contain NUL characters"
    for ch in value:
        if "\ud800" <= ch <= "\udfff":
            return "must not contain unpaired surrogate characters"
    return None


def check_text(value: Any) -> Any:
    if isinstance(value, str) and (rule := bad_text(value)):
        raise ValueError(rule)
    return value


def check_date_between(value, low: datetime.date, high: datetime.date, what: str = "date"):
    """``value`` (a date or an aware/naive datetime) within [low, high], or ValueError."""
    day = value.date() if isinstance(value, datetime.datetime) else value
    if day < low or day > high:
        raise ValueError(f"{what} must be between {_iso(low)} and {_iso(high)}")
    return value


def check_clinic_date(value):
    """A calendar or clinical date: 2000-01-01 to today + the planning horizon."""
    return check_date_between(value, CLINICAL_DATE_MIN, planning_max())


def check_planning_date(value):
    return check_clinic_date(value)


def check_birth_date(value):
    return check_date_between(value, BIRTH_DATE_MIN, today(), "date of birth")


def check_past_datetime(value: datetime.datetime, *, not_before=None, what="time"):
    """A moment that has happened: not before ``not_before`` (default 2000-01-01), not in the
    future (beyond the clock skew)."""
    floor = not_before or clinical_floor()
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    if value < floor:
        raise ValueError(f"{what} cannot be before {floor.isoformat(timespec='minutes')}")
    if value > timezone.now() + CLOCK_SKEW:
        raise ValueError(f"{what} cannot be in the future")
    return value


def check_decimal(value: Decimal, *, low=None, high=None, what="value") -> Decimal:
    """Finite, at most DECIMAL_MAX_DIGITS digits, within [low, high] when given."""
    if not isinstance(value, Decimal):
        value = Decimal(str(value))
    if not value.is_finite():
        raise ValueError(f"{what} must be a finite number")
    whole, places = magnitude(value)
    if whole > DECIMAL_MAX_DIGITS or places > DECIMAL_MAX_PLACES:
        raise ValueError(
            f"{what} must have at most {DECIMAL_MAX_DIGITS} digits before the decimal point "
            f"and {DECIMAL_MAX_PLACES} after it"
        )
    if low is not None and value < low:
        raise ValueError(f"{what} must be at least {low}")
    if high is not None and value > high:
        raise ValueError(f"{what} must be at most {high}")
    return value


def magnitude(value: Decimal) -> tuple[int, int]:
    """(digits before the point, digits after it) of a finite Decimal, trailing zeros ignored.

    Computed from the digit tuple, never through a decimal context (``normalize()`` on
    ``1E+999999999`` raises ``decimal.Overflow``)."""
    _, digits, exponent = value.as_tuple()
    n = len(digits)
    while n > 1 and digits[n - 1] == 0:
        n -= 1
        exponent += 1
    if n == 1 and digits[0] == 0:
        return 0, 0
    return max(n + exponent, 0), max(-exponent, 0)


def _django(check):
    """A Django validator from a ValueError-raising check."""

    def validate(value):
        if value in (None, ""):
            return
        try:
            check(value)
        except ValueError as exc:
            raise ValidationError(str(exc)[:1].upper() + str(exc)[1:] + ".") from None

    return validate


def check_any_date(value):
    return check_date_between(value, BIRTH_DATE_MIN, ANY_DATE_MAX)


validate_text = _django(check_text)
validate_any_date = _django(check_any_date)
validate_clinic_date = _django(check_clinic_date)
validate_birth_date = _django(check_birth_date)


# ---------------------------------------------------------------------------
# Django form fields
# ---------------------------------------------------------------------------


def date_field(*, birth: bool = False, **kwargs) -> forms.DateField:
    """A DateField bounded to the clinic window (or, ``birth=True``, 1900..today)."""
    validator = validate_birth_date if birth else validate_clinic_date
    kwargs.setdefault("widget", forms.DateInput(attrs={"type": "date"}))
    field = forms.DateField(**kwargs)
    field.validators.append(validator)
    return field


def bound_form_fields(form: forms.BaseForm) -> None:
    """Give every field of ``form`` the shared sanity bounds it lacks.

    Text fields refuse NUL and lone surrogates; integer fields stay within 32 bits
    (FORM_INT_MAX); decimal fields get a digit limit; date and datetime fields 1900-01-01 to
    2199-12-31, unless they carry a window of their own (``date_field``) or the form checks
    them in ``clean_<name>`` (dates of birth). Narrower limits set on a field are kept.
    """
    for name, field in form.fields.items():
        dated = isinstance(field, forms.DateField | forms.DateTimeField)
        own_rule = hasattr(form, f"clean_{name}")  # e.g. dates of birth: 1900..today
        windows = (validate_any_date, validate_clinic_date, validate_birth_date)
        has_window = any(v in field.validators for v in windows)
        if dated and not own_rule and not has_window:
            field.validators.append(validate_any_date)
        if isinstance(field, forms.CharField) and validate_text not in field.validators:
            field.validators.append(validate_text)
        if isinstance(field, forms.IntegerField) and not isinstance(field, forms.DecimalField):
            _bound_integer(field, FORM_INT_MAX)
        if isinstance(field, forms.DecimalField) and field.max_digits is None:
            field.max_digits = DECIMAL_MAX_DIGITS + DECIMAL_MAX_PLACES
            field.decimal_places = field.decimal_places or DECIMAL_MAX_PLACES
            from django.core.validators import DecimalValidator

            field.validators.append(DecimalValidator(field.max_digits, field.decimal_places))
        if isinstance(field, forms.FloatField) and not isinstance(field, forms.DecimalField):
            _bound_integer(field, limit=10**DECIMAL_MAX_DIGITS)


class BoundedFormMixin:
    """A form whose fields all carry the shared sanity bounds (``bound_form_fields``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        bound_form_fields(self)


class BoundedForm(BoundedFormMixin, forms.Form):
    pass


class BoundedModelForm(BoundedFormMixin, forms.ModelForm):
    pass


def _bound_integer(field, limit=DB_INT_MAX):
    from django.core.validators import MaxValueValidator, MinValueValidator

    if field.max_value is None:
        field.max_value = limit
        field.validators.append(MaxValueValidator(limit))
    if field.min_value is None:
        field.min_value = -limit
        field.validators.append(MinValueValidator(-limit))


# ---------------------------------------------------------------------------
# Django Ninja / pydantic types
# ---------------------------------------------------------------------------

#: A database id (path, query or body): any value a 64-bit signed column can hold, so that a
#: lookup answers (404, or 422 for an id in a body) and nothing overflows. 0 and negative ids
#: are in range and simply not found, so the permission check still comes first for them.
Id = Annotated[int, Field(ge=DB_INT_MIN, le=DB_INT_MAX)]
#: A list offset.
Offset = Annotated[int, Field(ge=0, le=OFFSET_MAX)]
#: A calendar or clinical date: 2000-01-01 .. today + 5 years.
ClinicDate = Annotated[datetime.date, AfterValidator(check_clinic_date)]


def bounded_int(*, ge=-DB_INT_MAX, le=DB_INT_MAX, **field):
    return Annotated[int, Field(ge=ge, le=le, **field)]
