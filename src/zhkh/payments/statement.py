"""The account statement residents and courts ask for: per month and service, the supplier, the
opening balance, what was accrued (with benefits and recalculations), paid, charged as penalty,
and the closing balance. Derived from the books."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhkh.core.errors import InvalidInput, NotFound
from zhkh.core.money import format_rubles
from zhkh.core.periods import Period
from zhkh.finance.balances import Movement, receivable_movements
from zhkh.housing.models import Account, Organisation

COLUMNS = ("period", "service", "supplier_inn", "opening", "accrued", "paid", "penalty", "closing")


@dataclass(frozen=True)
class StatementRow:
    period: Period
    service: str
    supplier_inn: str
    opening: int
    accrued: int
    paid: int
    penalty: int

    @property
    def closing(self) -> int:
        return self.opening + self.accrued - self.paid + self.penalty

    def as_text(self) -> dict[str, str]:
        money = (self.opening, self.accrued, self.paid, self.penalty, self.closing)
        return dict(
            zip(COLUMNS, (str(self.period), self.service, self.supplier_inn, *map(format_rubles, money)), strict=True)
        )


def account_statement(
    session: Session, number: str, first: Period | None = None, last: Period | None = None
) -> list[StatementRow]:
    if first and last and first.first_day > last.first_day:
        raise InvalidInput(f"the statement starts at {first}, after its end {last}")
    account_id = session.scalar(select(Account.id).where(Account.number == number))
    if account_id is None:
        raise NotFound(f"account {number} is not in the registry")
    movements = receivable_movements(session, account_id)
    inns = dict(session.execute(select(Organisation.id, Organisation.inn)).all())
    return list(_rows(movements, inns, first, last))


def _rows(
    movements: list[Movement], inns: dict[int, str], first: Period | None, last: Period | None
) -> Iterator[StatementRow]:
    """Month by month, running balances per service and supplier: a month lists every service
    that moved or still has a balance; months before ``first`` only make the openings."""
    if not movements:
        return
    by_month: dict[Period, list[Movement]] = defaultdict(list)
    for movement in movements:
        by_month[Period.of(movement.month)].append(movement)
    balance: dict[tuple[str, int], int] = {}
    month, end = min(by_month), last or max(by_month)
    while month.first_day <= end.first_day:
        moved = {(m.service, m.supplier_id): m for m in by_month.get(month, [])}
        for key in sorted(balance.keys() | moved.keys()):
            opening = balance.get(key, 0)
            change = moved.get(key)
            accrued, paid, penalty = (change.accrued, change.paid, change.penalty) if change else (0, 0, 0)
            balance[key] = opening + accrued - paid + penalty
            if (change or opening) and (first is None or month.first_day >= first.first_day):
                yield StatementRow(month, key[0], inns[key[1]], opening, accrued, paid, penalty)
        month = month.next()
