"""Working days in Russia, for the remittance deadline (ПП №253: collected money is handed on to
the supplier by the next working day). Pure.

Non-working days besides weekends are dated data from the Government's yearly decree on
transferred days off. Only the years listed are known; extend ``HOLIDAYS`` each autumn when the
next year's decree is published. A year not listed counts weekends only.
"""

from __future__ import annotations

from datetime import date, timedelta

# Постановление Правительства РФ от 04.09.2025 № 1358 (days off in 2026), incl. transfers
# (3 January → 9 January, 4 January → 31 December).
HOLIDAYS: frozenset[date] = frozenset(
    [date(2026, 1, day) for day in range(1, 10)]
    + [
        date(2026, 2, 23),
        date(2026, 3, 9),
        date(2026, 5, 1),
        date(2026, 5, 11),
        date(2026, 6, 12),
        date(2026, 11, 4),
        date(2026, 12, 31),
    ]
)
# Working Saturdays made by transfers, if a decree makes any (none in 2026).
WORKING_WEEKENDS: frozenset[date] = frozenset()


def is_working_day(day: date) -> bool:
    if day in WORKING_WEEKENDS:
        return True
    return day.weekday() < 5 and day not in HOLIDAYS


def next_working_day(day: date) -> date:
    """The first working day after ``day``."""
    following = day + timedelta(days=1)
    while not is_working_day(following):
        following += timedelta(days=1)
    return following
