"""A registry of three accounts (1001–1003) and a way to put debts on them straight into the
books, so payment tests do not depend on a billing run."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.builders import registry
from zhkh.core.periods import Period
from zhkh.finance import service as books
from zhkh.finance.models import Book, Component, TransactionKind
from zhkh.housing.models import Account, Organisation

Charge = Callable[..., None]


@pytest.fixture
def accounts(session: Session, tmp_path: Path) -> dict[str, int]:
    registry(session, tmp_path, premises=3)
    return {row.number: row.id for row in session.execute(select(Account.number, Account.id))}


@pytest.fixture
def supplier(session: Session, accounts: dict[str, int]) -> int:
    return session.execute(select(Organisation.id)).scalars().first()  # type: ignore[return-value]


@pytest.fixture
def charge(session: Session, accounts: dict[str, int], supplier: int) -> Charge:
    """charge("1001", "2026-04", cold_water=10000, heating=20000): an accrual in the books."""

    def charge_(account: str, period: str, supplier_id: int | None = None, **services: int) -> None:
        month = Period.parse(period)
        who = supplier_id or supplier
        entries = []
        for service, amount in services.items():
            entries.append(
                books.receivable(accounts[account], service, who, month.first_day, amount, Component.PRINCIPAL)
            )
            entries.append(books.Entry(Book.ACCRUED, -amount, service=service, supplier_id=who))
        books.record(session, TransactionKind.ACCRUAL, month.last_day, "test", None, f"accruals {period}", entries)

    return charge_


def day(text: str) -> date:
    return date.fromisoformat(text)
