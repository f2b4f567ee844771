"""Billing periods (calendar months) and local time. Pure: no I/O.

Readings, bills and penalties are about the local calendar of the buildings, while instants are
stored in UTC. A period is a calendar month, written "2026-03".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, order=True, slots=True)
class Period:
    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 1900 <= self.year <= 9999:
            raise ValueError(f"not a period: {self.year}-{self.month}")

    @classmethod
    def parse(cls, text: str) -> Period:
        match = _PERIOD.match(text.strip())
        if not match:
            raise ValueError(f"a period is written YYYY-MM, got {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, day: date) -> Period:
        return cls(day.year, day.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    def next(self) -> Period:
        return Period(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Period:
        return Period(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    @property
    def last_day(self) -> date:
        return date.fromordinal(self.next().first_day.toordinal() - 1)

    def day(self, number: int) -> date:
        """The given day of the month, clamped to its length (day 31 of April is the 30th)."""
        return date(self.year, self.month, min(number, self.last_day.day))

    def start(self, zone: ZoneInfo) -> datetime:
        """The first instant of the period in ``zone``, as UTC."""
        return local_midnight(self.first_day, zone)

    def end(self, zone: ZoneInfo) -> datetime:
        """The first instant after the period (the start of the next one), as UTC."""
        return self.next().start(zone)


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def local_date(instant: datetime, zone: ZoneInfo) -> date:
    return instant.astimezone(zone).date()


# ЖК РФ ст.155 ч.1 as amended: from the bills for March 2026, payment is due by the 15th of the
# following month; before, by the 10th.
FIFTEENTH_FROM_PERIOD = Period(2026, 3)


def payment_due_date(period: Period) -> date:
    """The last day to pay the bill of ``period``, without moving it off a weekend."""
    day = 15 if period >= FIFTEENTH_FROM_PERIOD else 10
    return period.next().day(day)
