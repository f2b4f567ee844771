"""The dated data behind penalties (ЖК РФ ст.155 ч.14, 14.1): the Bank of Russia key rate, the
9.5 % cap, and the moratoria on penalties.

Pure: no I/O, no database. Everything here is data with dates; the rules that use it live in
``zhkh.payments.penalty``.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

# The Bank of Russia key rate, % per year, as (the first day it applies, the rate).
#
# Source: the decisions of the Board of Directors of the Bank of Russia ("Ключевая ставка Банка
# России", cbr.ru/hd_base/KeyRate and the press releases), transcribed by hand from those
# decisions. The key rate was introduced on 13.09.2013. Verify a figure against cbr.ru before
# relying on it in a court claim.
#
# EXTEND THIS TABLE whenever the Bank of Russia changes the rate: append one line with the day the
# new rate takes effect. A day after the last entry gets the last entry's rate, so a stale table
# silently keeps an old rate.
#
# Penalties before 01.01.2016 were counted from the refinancing rate (ставка рефинансирования,
# 8.25 % from 14.09.2012 to 31.12.2015), not from the key rate; from 01.01.2016 the refinancing
# rate equals the key rate (Указание Банка России №3894-У). For a debt paid before 2016 pass the
# rate to ``calculate_penalty`` explicitly.
KEY_RATES: tuple[tuple[date, Decimal], ...] = (
    (date(2013, 9, 13), Decimal("5.50")),
    (date(2014, 3, 3), Decimal("7.00")),
    (date(2014, 4, 28), Decimal("7.50")),
    (date(2014, 7, 28), Decimal("8.00")),
    (date(2014, 11, 5), Decimal("9.50")),
    (date(2014, 12, 12), Decimal("10.50")),
    (date(2014, 12, 16), Decimal("17.00")),
    (date(2015, 2, 2), Decimal("15.00")),
    (date(2015, 3, 16), Decimal("14.00")),
    (date(2015, 5, 5), Decimal("12.50")),
    (date(2015, 6, 16), Decimal("11.50")),
    (date(2015, 8, 3), Decimal("11.00")),
    (date(2016, 6, 14), Decimal("10.50")),
    (date(2016, 9, 19), Decimal("10.00")),
    (date(2017, 3, 27), Decimal("9.75")),
    (date(2017, 5, 2), Decimal("9.25")),
    (date(2017, 6, 19), Decimal("9.00")),
    (date(2017, 9, 18), Decimal("8.50")),
    (date(2017, 10, 30), Decimal("8.25")),
    (date(2017, 12, 18), Decimal("7.75")),
    (date(2018, 2, 12), Decimal("7.50")),
    (date(2018, 3, 26), Decimal("7.25")),
    (date(2018, 9, 17), Decimal("7.50")),
    (date(2018, 12, 17), Decimal("7.75")),
    (date(2019, 6, 17), Decimal("7.50")),
    (date(2019, 7, 29), Decimal("7.25")),
    (date(2019, 9, 9), Decimal("7.00")),
    (date(2019, 10, 28), Decimal("6.50")),
    (date(2019, 12, 16), Decimal("6.25")),
    (date(2020, 2, 10), Decimal("6.00")),
    (date(2020, 4, 27), Decimal("5.50")),
    (date(2020, 6, 22), Decimal("4.50")),
    (date(2020, 7, 27), Decimal("4.25")),
    (date(2021, 3, 22), Decimal("4.50")),
    (date(2021, 4, 26), Decimal("5.00")),
    (date(2021, 6, 15), Decimal("5.50")),
    (date(2021, 7, 26), Decimal("6.50")),
    (date(2021, 9, 13), Decimal("6.75")),
    (date(2021, 10, 25), Decimal("7.50")),
    (date(2021, 12, 20), Decimal("8.50")),
    (date(2022, 2, 14), Decimal("9.50")),
    (date(2022, 2, 28), Decimal("20.00")),
    (date(2022, 4, 11), Decimal("17.00")),
    (date(2022, 5, 4), Decimal("14.00")),
    (date(2022, 5, 27), Decimal("11.00")),
    (date(2022, 6, 14), Decimal("9.50")),
    (date(2022, 7, 25), Decimal("8.00")),
    (date(2022, 9, 19), Decimal("7.50")),
    (date(2023, 7, 24), Decimal("8.50")),
    (date(2023, 8, 15), Decimal("12.00")),
    (date(2023, 9, 18), Decimal("13.00")),
    (date(2023, 10, 30), Decimal("15.00")),
    (date(2023, 12, 18), Decimal("16.00")),
    (date(2024, 7, 29), Decimal("18.00")),
    (date(2024, 9, 16), Decimal("19.00")),
    (date(2024, 10, 28), Decimal("21.00")),
    (date(2025, 6, 9), Decimal("20.00")),
    (date(2025, 7, 28), Decimal("18.00")),
    (date(2025, 9, 15), Decimal("17.00")),
    (date(2025, 10, 27), Decimal("16.50")),
    (date(2025, 12, 22), Decimal("16.00")),
)

_KEY_RATE_DAYS = [day for day, _ in KEY_RATES]


@dataclass(frozen=True, slots=True)
class RateCap:
    """From ``first_day`` to ``last_day`` inclusive the penalty rate is the lesser of the key rate
    and ``percent``."""

    first_day: date
    last_day: date
    percent: Decimal

    def contains(self, day: date) -> bool:
        return self.first_day <= day <= self.last_day


# ПП РФ №474 от 26.03.2022, as amended (lastly by ПП №329): penalties for housing and
# communal services are counted from the lesser of the key rate on 27.02.2022 (9.5 %) and the key
# rate on the day of payment, for 28.02.2022–31.12.2026.
RATE_CAPS: tuple[RateCap, ...] = (RateCap(date(2022, 2, 28), date(2026, 12, 31), Decimal("9.50")),)


@dataclass(frozen=True, slots=True)
class Moratorium:
    """Days on which no penalty accrues, ``first_day`` to ``last_day`` inclusive."""

    first_day: date
    last_day: date

    def __post_init__(self) -> None:
        if self.last_day < self.first_day:
            raise ValueError(f"a moratorium cannot end ({self.last_day}) before it starts ({self.first_day})")

    def contains(self, day: date) -> bool:
        return self.first_day <= day <= self.last_day


# ПП РФ №424 от 02.04.2020 (in force 06.04.2020, penalties for housing and communal services
# suspended until 01.01.2021, so the last day without accrual is 31.12.2020) and the bankruptcy
# moratorium of ПП РФ №497 от 28.03.2022 (01.04.2022 for six months, to 01.10.2022 inclusive;
# under Закон о банкротстве ст.9.1 п.3 no penalties accrue while it lasts). Dates as given in
# docs DOMAIN.md "Penalties"; a new moratorium is one more line here.
MORATORIA: tuple[Moratorium, ...] = (
    Moratorium(date(2020, 4, 6), date(2020, 12, 31)),
    Moratorium(date(2022, 4, 1), date(2022, 10, 1)),
)


def key_rate_on(day: date) -> Decimal:
    """The Bank of Russia key rate, % per year, in effect on ``day``."""
    index = bisect.bisect_right(_KEY_RATE_DAYS, day) - 1
    if index < 0:
        raise ValueError(
            f"no key rate for {day.isoformat()}: the key rate exists from {KEY_RATES[0][0].isoformat()} "
            "(before 2016 penalties used the refinancing rate; pass the rate explicitly)"
        )
    return KEY_RATES[index][1]


def penalty_rate_on(day: date, caps: tuple[RateCap, ...] = RATE_CAPS) -> Decimal:
    """The rate, % per year, a penalty is counted from when ``day`` is the day of payment: the key
    rate, but not more than the cap in force that day (9.5 % for 28.02.2022–31.12.2026)."""
    rate = key_rate_on(day)
    for cap in caps:
        if cap.contains(day):
            rate = min(rate, cap.percent)
    return rate
