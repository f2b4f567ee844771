"""How a payment is applied to what an account owes. Pure: no database.

The rules (ГК РФ ст.319.1, ПП 354 п.118, DOMAIN.md "Payments"):

1. A payment that names a period (and/or services) goes to those debts first.
2. Otherwise, and with whatever is left: principal, the earliest unpaid period first.
3. Within one period, when the money does not cover all of it, it is spread over the period's
   debts (service × supplier) in proportion to their amounts. Kopecks left over by the
   proportional split go one each to the debts with the largest remainders, ties to the one
   listed first (by service code in alphabetical order, then supplier id): ``core.money.allocate``. The parts
   always sum to the money spread, and a debt never gets more than it is.
4. Penalties after all principal, again earliest period first, proportionally within a period.
5. What is left is an advance, applied to the next bills.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from itertools import groupby
from operator import attrgetter
from typing import NamedTuple

from zhkh.core.money import allocate

PRINCIPAL = "principal"
PENALTY = "penalty"

DebtKey = tuple[date, str, int, str]  # period, service, supplier id, component


class Debt(NamedTuple):
    """What an account owes on one receivable: ``amount`` kopecks, positive. A tuple whose
    first four fields are its key, so debts sort by key in C (a batch sorts millions)."""

    period: date
    service: str
    supplier_id: int
    component: str  # principal or penalty
    amount: int

    @property
    def key(self) -> DebtKey:
        return self[:4]


class Part(NamedTuple):
    debt: Debt
    amount: int


class Allocation(NamedTuple):
    parts: tuple[Part, ...]
    advance: int  # what is left over, kept as an advance

    @property
    def allocated(self) -> int:
        return sum(part.amount for part in self.parts)


_PERIOD = attrgetter("period")


def allocate_payment(
    amount: int, debts: Iterable[Debt], *, period: date | None = None, services: Sequence[str] = ()
) -> Allocation:
    """Apply ``amount`` kopecks to ``debts`` by the rules above."""
    if amount <= 0:
        raise ValueError(f"a payment to allocate must be positive, got {amount}")
    outstanding = [debt for debt in debts if debt.amount > 0]
    named = [debt for debt in outstanding if _is_named(debt, period, services)] if period or services else []
    parts: list[Part] = []
    left = _spread_in_order(amount, named, parts)
    paid_named = bool(parts)
    if paid_named:
        paid = _paid_so_far(parts)
        outstanding = [_less(debt, paid.get(debt.key, 0)) for debt in outstanding]
    left = _spread_in_order(left, [debt for debt in outstanding if debt.component == PRINCIPAL], parts)
    left = _spread_in_order(left, [debt for debt in outstanding if debt.component == PENALTY], parts)
    # Without named debts paid first, each debt got at most one part: nothing to merge.
    return Allocation(tuple(_merged(parts) if paid_named else parts), left)


def _is_named(debt: Debt, period: date | None, services: Sequence[str]) -> bool:
    return (
        debt.component == PRINCIPAL
        and (period is None or debt.period == period)
        and (not services or debt.service in services)
    )


def _spread_in_order(amount: int, debts: Sequence[Debt], parts: list[Part]) -> int:
    """Cover ``debts`` period by period, earliest first; a period the money does not cover in
    full gets it in proportion. Returns what is left."""
    # By key: keys are unique among an account's debts, so the amount never decides the order.
    ordered = sorted([debt for debt in debts if debt.amount > 0])
    for _period, group in groupby(ordered, key=_PERIOD):
        if amount == 0:
            break
        period_debts = list(group)
        owed = sum(debt.amount for debt in period_debts)
        if amount >= owed:
            parts.extend(Part(debt, debt.amount) for debt in period_debts)
            amount -= owed
            continue
        # Proportional shares never exceed a debt: share_i = amount × d_i / owed < d_i.
        shares = allocate(amount, [debt.amount for debt in period_debts])
        parts.extend(Part(debt, share) for debt, share in zip(period_debts, shares, strict=True) if share)
        amount = 0
    return amount


def _paid_so_far(parts: Iterable[Part]) -> dict[DebtKey, int]:
    paid: dict[DebtKey, int] = {}
    for part in parts:
        paid[part.debt.key] = paid.get(part.debt.key, 0) + part.amount
    return paid


def _less(debt: Debt, paid: int) -> Debt:
    return debt._replace(amount=debt.amount - paid) if paid else debt


def _merged(parts: Iterable[Part]) -> list[Part]:
    """One part per debt, even when a named period and the general rule both paid into it."""
    totals: dict[DebtKey, tuple[Debt, int]] = {}
    for part in parts:
        debt, amount = totals.get(part.debt.key, (part.debt, 0))
        totals[part.debt.key] = (debt, amount + part.amount)
    return [Part(debt, amount) for debt, amount in totals.values()]
