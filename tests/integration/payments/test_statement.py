"""The account statement: running balances per month and service, from the books."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from tests.builders import MANAGER_INN
from tests.integration.payments.conftest import Charge, day
from zhkh.core.errors import InvalidInput, NotFound
from zhkh.core.periods import Period
from zhkh.payments.models import PaymentSource
from zhkh.payments.penalties import charge_penalties
from zhkh.payments.service import Incoming, take_in
from zhkh.payments.statement import account_statement


def test_a_statement_carries_balances_month_to_month(
    session: Session, accounts: dict[str, int], charge: Charge
) -> None:
    charge("1001", "2026-04", heating=100000)  # posted on 30 April
    charge("1001", "2026-05", heating=80000)
    take_in(session, PaymentSource.CASH_DESK, [Incoming("s-1", 30000, day("2026-05-20"), "1001")])
    charge_penalties(session, Period(2026, 6))  # April's heating: 1000.00 → 700.00 after 20 May
    rows = [row.as_text() for row in account_statement(session, "1001")]
    # June: 700.00 × 16 days (15–30 June) × 9.5 % / 300 = 3.5466… → 3.55
    assert rows == [
        {"period": "2026-04", "service": "heating", "supplier_inn": MANAGER_INN, "opening": "0.00",
         "accrued": "1000.00", "paid": "0.00", "penalty": "0.00", "closing": "1000.00"},
        {"period": "2026-05", "service": "heating", "supplier_inn": MANAGER_INN, "opening": "1000.00",
         "accrued": "800.00", "paid": "300.00", "penalty": "0.00", "closing": "1500.00"},
        {"period": "2026-06", "service": "heating", "supplier_inn": MANAGER_INN, "opening": "1500.00",
         "accrued": "0.00", "paid": "0.00", "penalty": "3.55", "closing": "1503.55"},
    ]  # fmt: skip
    june_only = account_statement(session, "1001", Period(2026, 6), Period(2026, 6))
    assert [(str(r.period), r.opening, r.closing) for r in june_only] == [("2026-06", 150000, 150355)]


def test_statement_errors(session: Session, accounts: dict[str, int]) -> None:
    with pytest.raises(NotFound, match="account 4242 is not in the registry"):
        account_statement(session, "4242")
    with pytest.raises(InvalidInput, match="starts at 2026-06, after its end 2026-05"):
        account_statement(session, "1001", Period(2026, 6), Period(2026, 5))
    assert account_statement(session, "1002") == []
