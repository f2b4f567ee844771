"""Allocation of a payment to debts: named period first, earliest period, proportional within a
period with kopecks by largest remainder, penalties after principal, the rest an advance."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhkh.payments.allocation import PENALTY, PRINCIPAL, Debt, Part, allocate_payment

APRIL, MAY, JUNE = date(2026, 4, 1), date(2026, 5, 1), date(2026, 6, 1)


def debt(period: date, service: str, amount: int, component: str = PRINCIPAL, supplier: int = 1) -> Debt:
    return Debt(period, service, supplier, component, amount)


def by_key(parts: Iterable[Part]) -> dict[tuple[date, str, str], int]:
    return {(p.debt.period, p.debt.service, p.debt.component): p.amount for p in parts}


def test_earliest_period_is_paid_first_in_full() -> None:
    debts = [debt(MAY, "cold_water", 30000), debt(APRIL, "cold_water", 10000), debt(APRIL, "heating", 20000)]
    result = allocate_payment(35000, debts)
    assert by_key(result.parts) == {
        (APRIL, "cold_water", PRINCIPAL): 10000,
        (APRIL, "heating", PRINCIPAL): 20000,
        (MAY, "cold_water", PRINCIPAL): 5000,
    }
    assert result.advance == 0


def test_partial_payment_of_a_period_is_proportional_with_kopecks_by_largest_remainder() -> None:
    # 100 kopecks over three debts of 100 kopecks: exact shares 33⅓ each;
    # the leftover kopeck goes to the first (ties go to the earlier debt in key order).
    debts = [debt(MAY, "cold_water", 100), debt(MAY, "electricity", 100), debt(MAY, "heating", 100)]
    result = allocate_payment(100, debts)
    assert by_key(result.parts) == {
        (MAY, "cold_water", PRINCIPAL): 34,
        (MAY, "electricity", PRINCIPAL): 33,
        (MAY, "heating", PRINCIPAL): 33,
    }


def test_proportions_follow_the_amounts() -> None:
    # 1000 over 3000 and 1000: exact shares 750 and 250.
    result = allocate_payment(1000, [debt(MAY, "heating", 3000), debt(MAY, "waste", 1000)])
    assert by_key(result.parts) == {(MAY, "heating", PRINCIPAL): 750, (MAY, "waste", PRINCIPAL): 250}


def test_penalties_are_paid_after_all_principal() -> None:
    debts = [debt(APRIL, "heating", 500, PENALTY), debt(APRIL, "heating", 1000), debt(MAY, "heating", 2000)]
    result = allocate_payment(3200, debts)
    assert by_key(result.parts) == {
        (APRIL, "heating", PRINCIPAL): 1000,
        (MAY, "heating", PRINCIPAL): 2000,
        (APRIL, "heating", PENALTY): 200,
    }


def test_overpayment_becomes_an_advance() -> None:
    result = allocate_payment(5000, [debt(MAY, "heating", 1200)])
    assert result.allocated == 1200
    assert result.advance == 3800


def test_no_debt_at_all_is_all_advance() -> None:
    result = allocate_payment(700, [])
    assert result.parts == ()
    assert result.advance == 700


def test_a_named_period_goes_first_even_if_earlier_ones_are_unpaid() -> None:
    debts = [debt(APRIL, "heating", 1000), debt(MAY, "heating", 1500)]
    result = allocate_payment(2000, debts, period=MAY)
    # May in full, the rest to the earliest unpaid (April).
    assert by_key(result.parts) == {(MAY, "heating", PRINCIPAL): 1500, (APRIL, "heating", PRINCIPAL): 500}


def test_named_services_go_first() -> None:
    debts = [debt(MAY, "heating", 1000), debt(MAY, "cold_water", 1000), debt(APRIL, "waste", 300)]
    result = allocate_payment(1200, debts, services=["cold_water"])
    assert by_key(result.parts) == {(MAY, "cold_water", PRINCIPAL): 1000, (APRIL, "waste", PRINCIPAL): 200}


def test_a_named_period_with_nothing_owed_falls_back_to_the_general_rule() -> None:
    result = allocate_payment(400, [debt(APRIL, "heating", 1000)], period=JUNE)
    assert by_key(result.parts) == {(APRIL, "heating", PRINCIPAL): 400}


def test_a_debt_paid_by_the_named_rule_and_the_general_rule_is_one_part() -> None:
    debts = [debt(MAY, "heating", 1000), debt(MAY, "waste", 1000)]
    result = allocate_payment(1500, debts, services=["heating"])
    assert by_key(result.parts) == {(MAY, "heating", PRINCIPAL): 1000, (MAY, "waste", PRINCIPAL): 500}
    assert len(result.parts) == 2


@pytest.mark.parametrize("amount", [0, -100])
def test_a_payment_must_be_positive(amount: int) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        allocate_payment(amount, [debt(MAY, "heating", 1000)])


debts_strategy = st.lists(
    st.builds(
        Debt,
        st.sampled_from([APRIL, MAY, JUNE]),
        st.sampled_from(["cold_water", "heating", "waste"]),
        st.integers(1, 3),
        st.sampled_from([PRINCIPAL, PENALTY]),
        st.integers(1, 10**7),
    ),
    max_size=12,
    unique_by=lambda d: d.key,
)


@given(st.integers(1, 10**8), debts_strategy, st.sampled_from([None, APRIL, MAY]))
def test_money_is_never_lost_or_overpaid(amount: int, debts: list[Debt], period: date | None) -> None:
    result = allocate_payment(amount, debts, period=period)
    assert result.allocated + result.advance == amount
    owed = {d.key: d.amount for d in debts}
    for part in result.parts:
        assert 0 < part.amount <= owed[part.debt.key]
    # An advance is left only when every debt is paid in full.
    if result.advance:
        assert result.allocated == sum(owed.values())


@given(st.integers(1, 10**8), debts_strategy)
def test_no_penalty_is_paid_while_principal_is_owed(amount: int, debts: list[Debt]) -> None:
    result = allocate_payment(amount, debts)
    paid = {p.debt.key: p.amount for p in result.parts}
    if any(p.debt.component == PENALTY for p in result.parts):
        for d in debts:
            if d.component == PRINCIPAL:
                assert paid.get(d.key) == d.amount
