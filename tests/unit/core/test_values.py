from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhkh.core.values import (
    canonical_decimal,
    decimal_to_text,
    format_share,
    parse_bool,
    parse_date,
    parse_decimal,
    parse_int,
    parse_positive_decimal,
    parse_share,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("45.6", "45.6"),
        ("45,6", "45.6"),
        ("1 234,5", "1234.5"),
        ("1\u00a0234.5", "1234.5"),
        ("-3", "-3"),
        (".5", "0.5"),
    ],
)
def test_parse_decimal_accepts_both_decimal_marks(text: str, value: str) -> None:
    assert parse_decimal(text) == Decimal(value)


@pytest.mark.parametrize(
    ("text", "message"), [("1,234.5", "ambiguous"), ("abc", "not a number"), ("1e5", "not a number")]
)
def test_parse_decimal_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_decimal(text)


@pytest.mark.parametrize("text", ["0", "-1", "0,0"])
def test_positive_decimal_refuses_zero_and_negative(text: str) -> None:
    with pytest.raises(ValueError, match="greater than zero"):
        parse_positive_decimal(text)


def test_parse_int() -> None:
    assert parse_int("3") == 3
    assert parse_int("3,0") == 3
    with pytest.raises(ValueError, match="whole number"):
        parse_int("2.5")


@pytest.mark.parametrize(("text", "value"), [("yes", True), ("Да", True), ("1", True), ("нет", False), ("no", False)])
def test_parse_bool(text: str, value: bool) -> None:
    assert parse_bool(text) is value


def test_parse_bool_refuses_other_words() -> None:
    with pytest.raises(ValueError, match="yes or no"):
        parse_bool("maybe")


@pytest.mark.parametrize(
    ("text", "share"),
    [
        ("1/3", Fraction(1, 3)),
        ("1", Fraction(1)),
        ("0.5", Fraction(1, 2)),
        ("0,25", Fraction(1, 4)),
        ("50%", Fraction(1, 2)),
    ],
)
def test_parse_share_is_exact(text: str, share: Fraction) -> None:
    assert parse_share(text) == share


def test_share_from_a_spreadsheet_fraction_cell() -> None:
    """Excel shows 1/3 but stores 0.333333333333333 (15 digits)."""
    assert parse_share("0.333333333333333") == Fraction(1, 3)
    assert parse_share("0.666666666666667") == Fraction(2, 3)


@pytest.mark.parametrize("text", ["0", "4/3", "1/0", "abc", "-1/2", "150%", "0.7071067811865"])
def test_parse_share_refuses_out_of_range_or_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="share"):
        parse_share(text)


def test_format_share() -> None:
    assert format_share(Fraction(2, 6)) == "1/3"
    assert format_share(Fraction(1)) == "1"


@pytest.mark.parametrize(("text", "value"), [("2026-03-01", date(2026, 3, 1)), ("01.03.2026", date(2026, 3, 1))])
def test_parse_date(text: str, value: date) -> None:
    assert parse_date(text) == value


def test_parse_date_refuses_us_order() -> None:
    with pytest.raises(ValueError, match="not a date"):
        parse_date("03/01/2026")


@pytest.mark.parametrize(
    ("value", "text"), [("45.60", "45.6"), ("1E+2", "100"), ("-0.0", "0"), ("0.000001", "0.000001")]
)
def test_decimal_to_text_is_canonical(value: str, text: str) -> None:
    assert decimal_to_text(Decimal(value)) == text


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_canonical_decimal_is_the_decimal_of_the_canonical_text(value: Decimal) -> None:
    # the same sign, digits and exponent: not just equal, written alike
    assert canonical_decimal(value).as_tuple() == Decimal(decimal_to_text(value)).as_tuple()
    assert decimal_to_text(canonical_decimal(value)) == decimal_to_text(value)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_canonical_decimal_refuses_what_is_not_a_number(value: str) -> None:
    with pytest.raises(ValueError, match="not a finite decimal"):
        canonical_decimal(Decimal(value))
