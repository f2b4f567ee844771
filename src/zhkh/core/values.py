"""Parsing the values people type into spreadsheets. Pure: no I/O.

Each parser takes the cell text and returns a typed value or raises ``ValueError`` whose message
says what was expected, so an import can report "line 7: area_m2: ...".
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from fractions import Fraction

_SPACES = re.compile(r"[\s\u00a0\u202f]+")
_DECIMAL = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_TRUE = {"yes", "y", "true", "1", "да", "д", "+", "есть"}
_FALSE = {"no", "n", "false", "0", "нет", "н", "-", "отсутствует"}


def parse_decimal(text: str) -> Decimal:
    """ "1234.5", "1234,5", "1 234,5" -> Decimal("1234.5"). A value with both a comma and a dot
    is refused: whether "1,234.5" means a thousands separator cannot be known for sure."""
    cleaned = _SPACES.sub("", text)
    if "," in cleaned and "." in cleaned:
        raise ValueError(f"ambiguous number {text!r}: use either a decimal comma or a dot")
    cleaned = cleaned.replace(",", ".")
    if not _DECIMAL.match(cleaned):
        raise ValueError(f"not a number: {text!r}")
    try:
        return Decimal(cleaned)
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only valid text
        raise ValueError(f"not a number: {text!r}") from exc


def parse_positive_decimal(text: str) -> Decimal:
    value = parse_decimal(text)
    if value <= 0:
        raise ValueError(f"must be greater than zero, got {text!r}")
    return value


def parse_non_negative_decimal(text: str) -> Decimal:
    value = parse_decimal(text)
    if value < 0:
        raise ValueError(f"must not be negative, got {text!r}")
    return value


def parse_int(text: str) -> int:
    value = parse_decimal(text)
    if value != value.to_integral_value():
        raise ValueError(f"not a whole number: {text!r}")
    return int(value)


def parse_non_negative_int(text: str) -> int:
    value = parse_int(text)
    if value < 0:
        raise ValueError(f"must not be negative, got {text!r}")
    return value


def parse_bool(text: str) -> bool:
    key = text.strip().lower()
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    raise ValueError(f"expected yes or no (да/нет), got {text!r}")


def parse_share(text: str) -> Fraction:
    """An ownership share: "1/3", "1", "0.5", "0,5" or "50%"; more than 0 and at most 1."""
    cleaned = _SPACES.sub("", text)
    try:
        if cleaned.endswith("%"):
            share = Fraction(parse_decimal(cleaned[:-1])) / 100
        elif "/" in cleaned:
            numerator, _, denominator = cleaned.partition("/")
            share = Fraction(int(numerator), int(denominator))
        else:
            share = Fraction(parse_decimal(cleaned))
    except (ValueError, ZeroDivisionError) as exc:
        raise ValueError(f"not a share such as 1/3, 0.5 or 50%: {text!r}") from exc
    if share.denominator > 10**6:
        # A spreadsheet shows 1/3 but holds 0.333333333333333: take the simple fraction it means.
        simple = share.limit_denominator(1000)
        if abs(simple - share) > Fraction(1, 10**9):
            raise ValueError(f"a share this precise cannot be exact; write it as a fraction such as 1/3: {text!r}")
        share = simple
    if not 0 < share <= 1:
        raise ValueError(f"a share must be more than 0 and at most 1, got {text!r}")
    return share


def format_share(share: Fraction) -> str:
    return str(share.numerator) if share.denominator == 1 else f"{share.numerator}/{share.denominator}"


def parse_date(text: str) -> date:
    """ "2026-03-01" or "01.03.2026" (how Russian spreadsheets write it)."""
    cleaned = text.strip()
    for pattern in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return datetime.strptime(cleaned, pattern).date()  # noqa: DTZ007 - a calendar date, no time zone
        except ValueError:
            continue
    raise ValueError(f"not a date in the form 2026-03-01 or 01.03.2026: {text!r}")


def canonical_decimal(value: Decimal) -> Decimal:
    """The decimal whose ``str`` is ``decimal_to_text(value)`` ("45.60" -> 45.6, "1E+2" -> 100,
    "-0.0" -> 0), without going through text: every number read from the database passes here."""
    if not value.is_finite():
        raise ValueError(f"not a finite decimal: {value}")
    normalized = value.normalize()
    if not normalized:
        return Decimal(0)
    # normalize() writes whole numbers with a positive exponent (1E+2); through int, exactly, at
    # any size, they get exponent 0
    return Decimal(int(normalized)) if normalized == normalized.to_integral_value() else normalized


def decimal_to_text(value: Decimal) -> str:
    """The canonical text of a decimal: no exponent, no trailing zeros ("45.60" -> "45.6",
    "1E+2" -> "100"). Equal numbers get equal text, so SQLite can compare them as strings."""
    if not value.is_finite():
        raise ValueError(f"not a finite decimal: {value}")
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text
