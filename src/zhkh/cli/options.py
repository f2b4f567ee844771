"""Turning option text into values, with errors that name the option: shared by command groups."""

from __future__ import annotations

from datetime import date

from zhkh.core.errors import InvalidInput
from zhkh.core.periods import Period


def period_value(text: str, what: str = "--period") -> Period:
    try:
        return Period.parse(text)
    except ValueError as exc:
        raise InvalidInput(f"{what}: {exc}") from exc


def date_value(text: str, what: str) -> date:
    from zhkh.core.values import parse_date

    try:
        return parse_date(text)
    except ValueError as exc:
        raise InvalidInput(f"{what}: {exc}") from exc


def rubles_value(text: str, what: str) -> int:
    from zhkh.core.money import parse_rubles

    try:
        return parse_rubles(text)
    except ValueError as exc:
        raise InvalidInput(f"{what}: {exc}") from exc
