"""Penalties (пени) on one debt under ЖК РФ ст.155 ч.14 and ч.14.1.

Pure: no I/O, no database. Money is integer kopecks in and out; rates are ``Decimal`` percent.

The rules (docs/payments.md "Penalties"):

- Delay day 1 is the day after the due date.
- Housing and communal services (ч.14): delay days 1–30 accrue nothing; days 31–90 accrue
  debt × rate/300 per day; day 91 onward debt × rate/130 per day.
- Capital repair contributions (ч.14.1): debt × rate/300 per day from delay day 1, no grace, no
  1/130 step.
- A payment reduces the debt from the day after it is made; the payment day itself still counts
  the old debt ("по день фактической выплаты включительно"). Payments above the debt leave it at
  zero (where the rest goes is the allocation's business, not this one's).
- No accrual on moratorium days. The delay-day counter keeps running through a moratorium: delay
  days are calendar days counted from the due date, and a moratorium only suppresses accrual on
  the days it covers. So a debt that was on day 40 when a moratorium began comes out of it on day
  40 + the moratorium's length, already at 1/130 if that is past day 90. The alternative (the
  counter paused during a moratorium) is not what the text says: ч.14 counts "каждый день
  просрочки", and a moratorium suspends the accrual, not the delay. The independent
  implementation aleoreh/penalty-calc-corp counts the same way (its 835.05 example needs it).
- One rate for the whole calculation: the rate "in effect on the day of payment" (ч.14). With
  ``rate=None`` that is ``penalty_rate_on(until)``: the key rate on ``until``, capped at 9.5 % for
  28.02.2022–31.12.2026; ``until`` is the day of payment or, for a debt still unpaid, the day the
  calculation is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Literal

from zhkh.core.money import format_rubles, to_kopecks
from zhkh.core.periods import Period, payment_due_date
from zhkh.payments.rates import MORATORIA, Moratorium, penalty_rate_on

Fraction = Literal["1/300", "1/130"]

GRACE_DAYS = 30  # delay days 1–30 accrue nothing (ч.14)
LAST_ONE_300_DAY = 90  # delay days 31–90 at 1/300, from day 91 at 1/130 (ч.14)
_DENOMINATORS: dict[Fraction, int] = {"1/300": 300, "1/130": 130}
_ONE_DAY = timedelta(days=1)


class PenaltyInputError(ValueError):
    """The inputs of a penalty calculation do not make sense; the message says which and why."""


@dataclass(frozen=True, slots=True)
class DebtPayment:
    """``amount_kopecks`` paid towards the debt on ``paid_on``."""

    paid_on: date
    amount_kopecks: int


@dataclass(frozen=True, slots=True)
class PenaltySubPeriod:
    """A maximal run of consecutive accruing days with the same debt, fraction and rate.

    ``amount`` is the exact penalty in rubles (debt × rate % / 100 × fraction × days), unrounded;
    ``amount_kopecks`` is that rounded half-up to the kopeck.
    """

    first_day: date
    last_day: date
    days: int
    debt_kopecks: int
    fraction: Fraction
    rate: Decimal
    amount: Decimal
    amount_kopecks: int


@dataclass(frozen=True, slots=True)
class PenaltyCalculation:
    sub_periods: tuple[PenaltySubPeriod, ...]
    total_kopecks: int
    rate: Decimal


def due_date_for(period_first_day: date) -> date:
    """The last day to pay for a billing period: the 10th of the following month for periods
    before March 2026, the 15th for periods from March 2026 (so February 2026 is due 10.03.2026
    and March 2026 is due 15.04.2026).

    A due date on a weekend or holiday is not moved here (ГК РФ ст.193 would move it to the next
    working day); there is no holiday calendar in the platform yet, so a caller who needs that
    passes the moved date to ``calculate_penalty`` itself.
    """
    if period_first_day.day != 1:
        raise PenaltyInputError(f"a billing period starts on the 1st of a month, not {period_first_day.isoformat()}")
    return payment_due_date(Period.of(period_first_day))


def calculate_penalty(
    debt_kopecks: int,
    due_date: date,
    until: date,
    payments: Sequence[DebtPayment] = (),
    *,
    rate: Decimal | None = None,
    moratoria: Sequence[Moratorium] = MORATORIA,
    capital_repair: bool = False,
    window: tuple[date, date] | None = None,
) -> PenaltyCalculation:
    """The penalty on ``debt_kopecks`` that was due on ``due_date``, counted up to ``until``
    inclusive, with ``payments`` made towards it.

    ``rate`` is % per year; ``None`` means ``penalty_rate_on(until)`` for the whole calculation
    (the rate on the day of payment, ч.14). ``window=(first, last)`` counts only the days from
    ``first`` to ``last`` inclusive: the penalty accrued in one month is the calculation with
    that month as the window (sub-periods are cut at the window's edges).

    Rounding: each sub-period's exact amount is rounded half-up to the kopeck once, and the total
    is the sum of the rounded sub-periods, so the total always equals what the sub-period rows
    printed on a bill add up to.
    """
    _validate(debt_kopecks, due_date, until, payments, rate, window)
    used_rate = penalty_rate_on(until) if rate is None else rate

    # The days that can accrue: after the grace, up to ``until``, inside the window.
    first = due_date + timedelta(days=1 if capital_repair else GRACE_DAYS + 1)
    last = until
    if window is not None:
        first, last = max(first, window[0]), min(last, window[1])
    if first > last or debt_kopecks == 0:
        return PenaltyCalculation((), 0, used_rate)
    one_130_from = None if capital_repair else due_date + timedelta(days=LAST_ONE_300_DAY + 1)

    # Every day on which something may change starts a new segment; inside a segment the debt,
    # the fraction and being in a moratorium or not are all constant.
    starts = {first, last + _ONE_DAY}
    if one_130_from is not None:
        starts.add(one_130_from)
    starts.update(payment.paid_on + _ONE_DAY for payment in payments)
    for moratorium in moratoria:
        starts.update((moratorium.first_day, moratorium.last_day + _ONE_DAY))
    bounds = sorted(day for day in starts if first <= day <= last + _ONE_DAY)

    runs: list[tuple[date, date, int, Fraction]] = []  # first day, last day, debt, fraction
    for segment_first, next_first in pairwise(bounds):
        if any(moratorium.contains(segment_first) for moratorium in moratoria):
            continue
        paid = sum(payment.amount_kopecks for payment in payments if payment.paid_on < segment_first)
        debt = max(debt_kopecks - paid, 0)
        if debt == 0:
            continue
        fraction: Fraction = "1/130" if one_130_from is not None and segment_first >= one_130_from else "1/300"
        segment_last = next_first - _ONE_DAY
        if runs and runs[-1][1] + _ONE_DAY == segment_first and runs[-1][2:] == (debt, fraction):
            runs[-1] = (runs[-1][0], segment_last, debt, fraction)
        else:
            runs.append((segment_first, segment_last, debt, fraction))

    sub_periods = tuple(
        _sub_period(run_first, run_last, debt, fraction, used_rate) for run_first, run_last, debt, fraction in runs
    )
    return PenaltyCalculation(sub_periods, sum(sub.amount_kopecks for sub in sub_periods), used_rate)


@dataclass(frozen=True, slots=True)
class IntegerTerm:
    """One sub-period's penalty on a debt ``D`` that stays the same, in integer arithmetic:
    ``(D * multiplier + half) // divisor`` kopecks, which is exactly ``_sub_period``'s
    ``to_kopecks(D × days × rate / (100 × 100 × denominator))`` (rounded half-up). A database
    can evaluate it on millions of debts in one statement (``penalties._constant_debt_penalties``)."""

    multiplier: int
    half: int
    divisor: int

    def of(self, debt_kopecks: int) -> int:
        return (debt_kopecks * self.multiplier + self.half) // self.divisor


@dataclass(frozen=True, slots=True)
class AccrualRun:
    """A run of accruing days at one fraction, as a debt that stays the same sees it: from
    ``first_day`` to ``last_day``. Any part of it, ``days`` long, on a debt ``D`` accrues
    ``(D * days * per_day + half) // divisor`` kopecks: the calculator's half-up rounding in
    integers. A payment inside a run cuts it into parts, each rounded on its own, as
    ``calculate_penalty`` does (the debt differs on each side of the payment)."""

    first_day: date
    last_day: date
    per_day: int
    half: int
    divisor: int

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def term(self) -> IntegerTerm:
        return IntegerTerm(self.days * self.per_day, self.half, self.divisor)


def accrual_runs(
    due_date: date,
    until: date,
    rate: Decimal,
    *,
    moratoria: Sequence[Moratorium] = MORATORIA,
    capital_repair: bool = False,
    window: tuple[date, date] | None = None,
) -> tuple[AccrualRun, ...]:
    """The runs of ``calculate_penalty(D, due_date, until, (), rate=rate, ...)`` for any debt
    ``D > 0`` no payment reduces: with a constant debt the sub-periods (their days and
    fractions) do not depend on ``D``, so they are found once, on a debt of one kopeck."""
    sample = calculate_penalty(
        1, due_date, until, (), rate=rate, moratoria=moratoria, capital_repair=capital_repair, window=window
    )
    numerator, denominator = rate.as_integer_ratio()
    runs = []
    for sub in sample.sub_periods:
        # D × days × (numerator / denominator) / (100 × fraction's denominator), rounded half-up:
        # floor((2 × D × days × numerator + q) / 2q) with q = 100 × fraction's denominator × denominator.
        q = 100 * _DENOMINATORS[sub.fraction] * denominator
        runs.append(AccrualRun(sub.first_day, sub.last_day, 2 * numerator, q, 2 * q))
    return tuple(runs)


def constant_debt_terms(
    due_date: date,
    until: date,
    rate: Decimal,
    *,
    moratoria: Sequence[Moratorium] = MORATORIA,
    capital_repair: bool = False,
    window: tuple[date, date] | None = None,
) -> tuple[IntegerTerm, ...]:
    """The terms whose sum is ``calculate_penalty(D, due_date, until, (), rate=rate, ...)`` for
    every debt ``D > 0`` that no payment reduces: one per run of ``accrual_runs``."""
    runs = accrual_runs(due_date, until, rate, moratoria=moratoria, capital_repair=capital_repair, window=window)
    return tuple(run.term() for run in runs)


def _sub_period(first: date, last: date, debt_kopecks: int, fraction: Fraction, rate: Decimal) -> PenaltySubPeriod:
    days = (last - first).days + 1
    # kopecks / 100 = rubles, rate / 100 = share; one division, so the result is exact to 28 digits.
    amount = Decimal(debt_kopecks * days) * rate / Decimal(100 * 100 * _DENOMINATORS[fraction])
    return PenaltySubPeriod(first, last, days, debt_kopecks, fraction, rate, amount, to_kopecks(amount))


def _validate(
    debt_kopecks: int,
    due_date: date,
    until: date,
    payments: Sequence[DebtPayment],
    rate: Decimal | None,
    window: tuple[date, date] | None,
) -> None:
    if debt_kopecks < 0:
        raise PenaltyInputError(f"the debt must not be negative, got {format_rubles(debt_kopecks)} rubles")
    if until < due_date:
        raise PenaltyInputError(
            f"the calculation day {until.isoformat()} is before the due date {due_date.isoformat()}"
        )
    for payment in payments:
        if payment.amount_kopecks <= 0:
            raise PenaltyInputError(
                f"the payment of {payment.paid_on.isoformat()} must be a positive amount, "
                f"got {format_rubles(payment.amount_kopecks)} rubles"
            )
        if payment.paid_on > until:
            raise PenaltyInputError(
                f"the payment of {payment.paid_on.isoformat()} is after the calculation day {until.isoformat()}"
            )
    if rate is not None and (not rate.is_finite() or rate < 0):
        raise PenaltyInputError(f"the rate must be a non-negative percentage, got {rate}")
    if window is not None and window[1] < window[0]:
        raise PenaltyInputError(f"the window ends ({window[1].isoformat()}) before it starts ({window[0].isoformat()})")
