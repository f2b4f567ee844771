"""Penalties under ЖК РФ ст.155 ч.14 and ч.14.1, one worked example each.

Every expected figure is computed by hand in the comments (rubles × rate % × days / 300 or 130),
not taken from the code. Most examples pass ``rate=9.5`` explicitly so that they do not depend on
the key-rate table; the table and the cap have tests of their own.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D  # noqa: N817 - the worked examples read better short

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhkh.payments.penalty import (
    DebtPayment,
    PenaltyInputError,
    PenaltySubPeriod,
    calculate_penalty,
    constant_debt_terms,
    due_date_for,
)
from zhkh.payments.rates import KEY_RATES, MORATORIA, Moratorium, key_rate_on, penalty_rate_on

RATE = D("9.5")
DUE = date(2026, 4, 15)  # the due date of March 2026 (the 15th of April)


def rows(subs: tuple[PenaltySubPeriod, ...]) -> list[tuple[str, str, int, int, str, int]]:
    return [
        (s.first_day.isoformat(), s.last_day.isoformat(), s.days, s.debt_kopecks, s.fraction, s.amount_kopecks)
        for s in subs
    ]


# --- the grace period -------------------------------------------------------------------------


def test_inside_the_30_day_grace_nothing_accrues() -> None:
    # Due 15.04.2026: delay day 1 = 16.04, day 15 = 30.04, day 30 = 15.05.
    result = calculate_penalty(100_000, DUE, date(2026, 5, 15), rate=RATE)
    assert result.sub_periods == ()
    assert result.total_kopecks == 0


def test_delay_day_31_is_the_first_accruing_day() -> None:
    # 16.05.2026 is delay day 31: one day of 1,000.00 × 9.5 % / 300 = 95 / 300 = 0.31666… → 0.32.
    result = calculate_penalty(100_000, DUE, date(2026, 5, 16), rate=RATE)
    assert rows(result.sub_periods) == [("2026-05-16", "2026-05-16", 1, 100_000, "1/300", 32)]
    assert result.sub_periods[0].amount == D(95) / D(300)
    assert result.total_kopecks == 32


# --- 1/300 then 1/130 -------------------------------------------------------------------------


def test_one_300_from_day_31_and_one_130_from_day_91() -> None:
    # Delay day 31 = 16.05.2026 (30.04 is day 15, 16.05 is day 15 + 16 = 31).
    # Day 90 = 14.07.2026 (31.05 is day 46, 30.06 is day 76, 14.07 is day 90).
    # 1/300: 16.05–14.07 = 16 + 30 + 14 = 60 days: 1,000.00 × 0.095 × 60 / 300 = 19.00.
    # 1/130: 15.07–31.08 = 17 + 31 = 48 days: 95 × 48 / 130 = 4560 / 130 = 35.0769… → 35.08.
    # Total 19.00 + 35.08 = 54.08.
    result = calculate_penalty(100_000, DUE, date(2026, 8, 31), rate=RATE)
    assert rows(result.sub_periods) == [
        ("2026-05-16", "2026-07-14", 60, 100_000, "1/300", 1900),
        ("2026-07-15", "2026-08-31", 48, 100_000, "1/130", 3508),
    ]
    assert result.total_kopecks == 5408
    assert result.sub_periods[1].amount == D(4560) / D(130)  # kept unrounded


def test_rate_none_takes_the_capped_rate_on_the_calculation_day() -> None:
    # Debt for November 2021, due 10.12.2021; counted to 31.10.2022 with rate=None: the key rate
    # on 31.10.2022 is 7.5 % (since 19.09.2022), below the 9.5 % cap, so 7.5 % for every day.
    # Day 1 = 11.12.2021, day 21 = 31.12, day 31 = 10.01.2022, day 90 = 10.03.2022.
    # 1/300: 10.01–10.03.2022 = 22 + 28 + 10 = 60 days: 1,000 × 0.075 × 60 / 300 = 15.00.
    # 1/130: 11.03–31.03.2022 = 21 days: 75 × 21 / 130 = 1575 / 130 = 12.1153… → 12.12.
    # Moratorium 01.04–01.10.2022: nothing; the 1/130 run is cut there.
    # 1/130: 02.10–31.10.2022 = 30 days: 75 × 30 / 130 = 2250 / 130 = 17.3076… → 17.31.
    # Total 15.00 + 12.12 + 17.31 = 44.43.
    result = calculate_penalty(100_000, date(2021, 12, 10), date(2022, 10, 31))
    assert result.rate == D("7.50")
    assert rows(result.sub_periods) == [
        ("2022-01-10", "2022-03-10", 60, 100_000, "1/300", 1500),
        ("2022-03-11", "2022-03-31", 21, 100_000, "1/130", 1212),
        ("2022-10-02", "2022-10-31", 30, 100_000, "1/130", 1731),
    ]
    assert result.total_kopecks == 4443


# --- payments ---------------------------------------------------------------------------------


def test_a_partial_payment_reduces_the_debt_from_the_next_day() -> None:
    # 500.00 paid on 01.06.2026: 01.06 still counts 1,000.00, 02.06 onward 500.00.
    # 1/300 on 1,000.00: 16.05–01.06 = 16 + 1 = 17 days: 95 × 17 / 300 = 1615 / 300 = 5.3833… → 5.38.
    # 1/300 on 500.00: 02.06–14.07 = 29 + 14 = 43 days: 47.5 × 43 / 300 = 2042.5 / 300 = 6.8083… → 6.81.
    # 1/130 on 500.00: 15.07–31.08 = 48 days: 47.5 × 48 / 130 = 2280 / 130 = 17.5384… → 17.54.
    # Total 5.38 + 6.81 + 17.54 = 29.73.
    result = calculate_penalty(100_000, DUE, date(2026, 8, 31), [DebtPayment(date(2026, 6, 1), 50_000)], rate=RATE)
    assert rows(result.sub_periods) == [
        ("2026-05-16", "2026-06-01", 17, 100_000, "1/300", 538),
        ("2026-06-02", "2026-07-14", 43, 50_000, "1/300", 681),
        ("2026-07-15", "2026-08-31", 48, 50_000, "1/130", 1754),
    ]
    assert result.total_kopecks == 2973


def test_paying_everything_stops_the_penalty_the_next_day_and_overpayment_leaves_zero() -> None:
    # 1,200.00 paid on 20.05.2026 against 1,000.00: 16.05–20.05 = 5 days at 1/300 on 1,000.00:
    # 95 × 5 / 300 = 1.5833… → 1.58; nothing afterwards (the debt is 0, not -200).
    result = calculate_penalty(100_000, DUE, date(2026, 8, 31), [DebtPayment(date(2026, 5, 20), 120_000)], rate=RATE)
    assert rows(result.sub_periods) == [("2026-05-16", "2026-05-20", 5, 100_000, "1/300", 158)]


def test_a_payment_inside_the_grace_counts_from_the_next_day() -> None:
    # 400.00 paid on 10.05.2026 (delay day 25): from day 31 the debt is 600.00.
    # 1/300: 60 days: 600 × 0.095 × 60 / 300 = 11.40; 1/130 to 20.07 = 6 days: 57 × 6 / 130 = 2.6307… → 2.63.
    result = calculate_penalty(100_000, DUE, date(2026, 7, 20), [DebtPayment(date(2026, 5, 10), 40_000)], rate=RATE)
    assert rows(result.sub_periods) == [
        ("2026-05-16", "2026-07-14", 60, 60_000, "1/300", 1140),
        ("2026-07-15", "2026-07-20", 6, 60_000, "1/130", 263),
    ]


# --- moratoria --------------------------------------------------------------------------------


def test_a_moratorium_cuts_a_sub_period_and_the_delay_counter_keeps_running() -> None:
    # Due 15.04.2026, a made-up moratorium 01.06–10.06.2026 (delay days 47–56).
    # 1/300: 16.05–31.05 = 16 days: 95 × 16 / 300 = 5.0666… → 5.07.
    # (moratorium, 10 days, nothing)
    # 1/300: 11.06–14.07 = 20 + 14 = 34 days: 95 × 34 / 300 = 10.7666… → 10.77. Day 90 is still
    # 14.07: the moratorium did not push the 1/130 step later.
    # 1/130: 15.07–20.07 = 6 days: 95 × 6 / 130 = 4.3846… → 4.38.
    # Total 5.07 + 10.77 + 4.38 = 20.22.
    pause = (Moratorium(date(2026, 6, 1), date(2026, 6, 10)),)
    result = calculate_penalty(100_000, DUE, date(2026, 7, 20), rate=RATE, moratoria=pause)
    assert rows(result.sub_periods) == [
        ("2026-05-16", "2026-05-31", 16, 100_000, "1/300", 507),
        ("2026-06-11", "2026-07-14", 34, 100_000, "1/300", 1077),
        ("2026-07-15", "2026-07-20", 6, 100_000, "1/130", 438),
    ]
    assert result.total_kopecks == 2022


def test_the_2020_moratorium_is_in_the_data() -> None:
    # Debt for January 2020, due 10.02.2020: day 1 = 11.02, 29.02 (a leap year) is day 19,
    # 11.03 is day 30, 12.03 is day 31.
    # 1/300: 12.03–05.04.2020 = 20 + 5 = 25 days: 95 × 25 / 300 = 7.9166… → 7.92, then the
    # moratorium 06.04–31.12.2020. Counted to 31.12.2020: nothing else.
    result = calculate_penalty(100_000, date(2020, 2, 10), date(2020, 12, 31), rate=RATE)
    assert rows(result.sub_periods) == [("2020-03-12", "2020-04-05", 25, 100_000, "1/300", 792)]
    # On 01.01.2021 the debt is long past day 90: 1/130, 95 / 130 = 0.7307… → 0.73.
    later = calculate_penalty(100_000, date(2020, 2, 10), date(2021, 1, 1), rate=RATE)
    assert rows(later.sub_periods)[-1] == ("2021-01-01", "2021-01-01", 1, 100_000, "1/130", 73)


# --- capital repair (ч.14.1) ------------------------------------------------------------------


def test_capital_repair_is_one_300_from_the_first_delay_day_without_a_step() -> None:
    # 16.04–31.08.2026 = 15 + 31 + 30 + 31 + 31 = 138 days at 1/300, no 1/130:
    # 95 × 138 / 300 = 13110 / 300 = 43.70.
    result = calculate_penalty(100_000, DUE, date(2026, 8, 31), rate=RATE, capital_repair=True)
    assert rows(result.sub_periods) == [("2026-04-16", "2026-08-31", 138, 100_000, "1/300", 4370)]
    # Inside what would be the grace for other services: 16.04–15.05 = 30 days: 95 × 30 / 300 = 9.50.
    early = calculate_penalty(100_000, DUE, date(2026, 5, 15), rate=RATE, capital_repair=True)
    assert early.total_kopecks == 950


# --- the window of a monthly run --------------------------------------------------------------


def test_a_window_gives_the_penalty_accrued_inside_it() -> None:
    # June 2026 of the partial-payment example: 01.06 on 1,000.00 (95 / 300 = 0.3166… → 0.32),
    # 02.06–30.06 = 29 days on 500.00 (47.5 × 29 / 300 = 4.5916… → 4.59). Total 4.91.
    result = calculate_penalty(
        100_000,
        DUE,
        date(2026, 6, 30),
        [DebtPayment(date(2026, 6, 1), 50_000)],
        rate=RATE,
        window=(date(2026, 6, 1), date(2026, 6, 30)),
    )
    assert rows(result.sub_periods) == [
        ("2026-06-01", "2026-06-01", 1, 100_000, "1/300", 32),
        ("2026-06-02", "2026-06-30", 29, 50_000, "1/300", 459),
    ]
    assert result.total_kopecks == 491
    # A window wholly inside the grace, or after the debt was paid, is empty.
    april = calculate_penalty(100_000, DUE, date(2026, 4, 30), rate=RATE, window=(date(2026, 4, 1), date(2026, 4, 30)))
    assert april.sub_periods == ()


# --- due dates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "due"),
    [
        (date(2019, 5, 1), date(2019, 6, 10)),
        (date(2025, 12, 1), date(2026, 1, 10)),  # December: due in January of the next year
        (date(2026, 2, 1), date(2026, 3, 10)),  # the last period due on the 10th
        (date(2026, 3, 1), date(2026, 4, 15)),  # the first period due on the 15th
        (date(2026, 12, 1), date(2027, 1, 15)),
    ],
)
def test_due_date_is_the_10th_before_march_2026_and_the_15th_from_it(period: date, due: date) -> None:
    assert due_date_for(period) == due


def test_due_date_needs_the_first_day_of_a_period() -> None:
    with pytest.raises(PenaltyInputError, match="starts on the 1st of a month, not 2026-03-05"):
        due_date_for(date(2026, 3, 5))


# --- bad inputs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"debt_kopecks": -1}, "the debt must not be negative, got -0.01 rubles"),
        ({"until": date(2026, 4, 14)}, "the calculation day 2026-04-14 is before the due date 2026-04-15"),
        (
            {"payments": [DebtPayment(date(2026, 6, 1), -500)]},
            "the payment of 2026-06-01 must be a positive amount, got -5.00 rubles",
        ),
        (
            {"payments": [DebtPayment(date(2026, 6, 1), 0)]},
            "the payment of 2026-06-01 must be a positive amount, got 0.00 rubles",
        ),
        (
            {"payments": [DebtPayment(date(2026, 9, 1), 100)]},
            "the payment of 2026-09-01 is after the calculation day 2026-08-31",
        ),
        ({"rate": D("-1")}, "the rate must be a non-negative percentage, got -1"),
        (
            {"window": (date(2026, 6, 30), date(2026, 6, 1))},
            "the window ends \\(2026-06-01\\) before it starts \\(2026-06-30\\)",
        ),
    ],
)
def test_bad_inputs_are_refused_with_a_clear_message(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"debt_kopecks": 100_000, "due_date": DUE, "until": date(2026, 8, 31)} | kwargs
    with pytest.raises(PenaltyInputError, match=f"^{message}$"):
        calculate_penalty(**arguments)  # type: ignore[arg-type]
    assert issubclass(PenaltyInputError, ValueError)


def test_a_moratorium_cannot_end_before_it_starts() -> None:
    with pytest.raises(ValueError, match="cannot end"):
        Moratorium(date(2022, 10, 1), date(2022, 4, 1))


# --- rates and the cap ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "key", "penalty"),
    [
        (date(2013, 9, 13), "5.50", "5.50"),  # the first day of the key rate
        (date(2019, 6, 10), "7.75", "7.75"),
        (date(2022, 2, 27), "9.50", "9.50"),  # the key rate of 27.02.2022 that the cap refers to
        (date(2022, 2, 28), "20.00", "9.50"),  # 20 % from 28.02.2022, capped
        (date(2022, 9, 19), "7.50", "7.50"),  # below the cap: the key rate itself
        (date(2024, 10, 28), "21.00", "9.50"),
    ],
)
def test_key_rate_and_penalty_rate(day: date, key: str, penalty: str) -> None:
    assert key_rate_on(day) == D(key)
    assert penalty_rate_on(day) == D(penalty)


def test_the_cap_ends_on_31_december_2026() -> None:
    # Written so that it holds whatever the table says about 2026-2027.
    assert penalty_rate_on(date(2026, 12, 31)) == min(key_rate_on(date(2026, 12, 31)), D("9.5"))
    assert penalty_rate_on(date(2027, 1, 1)) == key_rate_on(date(2027, 1, 1))


def test_no_key_rate_before_it_existed() -> None:
    with pytest.raises(ValueError, match="no key rate for 2013-09-12"):
        key_rate_on(date(2013, 9, 12))


def test_rate_and_moratorium_data_are_ordered() -> None:
    days = [day for day, _ in KEY_RATES]
    assert days == sorted(days)
    assert len(set(days)) == len(days)
    assert KEY_RATES[0][0] == date(2013, 9, 13)
    assert KEY_RATES[-1][0].year >= 2025
    expected = (Moratorium(date(2020, 4, 6), date(2020, 12, 31)), Moratorium(date(2022, 4, 1), date(2022, 10, 1)))
    assert expected == MORATORIA


# --- the independent cross-check ----------------------------------------------------------------

# aleoreh/penalty-calc-corp, src/domain/domain.spec/calculator.spec.ts: 1,000.00 owed for May 2019,
# 100.00 paid on 01.01.2020, counted to 18.04.2024 inclusive (its calculationDate 19.04.2024 is
# exclusive), 9.5 % throughout, its moratoria 06.04.2020–01.01.2021 and 31.03.2022–01.10.2022
# (both ends inclusive: it counts 271 + 185 moratorium days). Its "dueDate" 11.06.2019 is our
# delay day 1, i.e. our due date 10.06.2019. It expects 835.05 (103.04 on 1,000.00 and 732.01 on
# 900.00), and per-day amounts summed without rounding.
THEIR_MORATORIA = (Moratorium(date(2020, 4, 6), date(2021, 1, 1)), Moratorium(date(2022, 3, 31), date(2022, 10, 1)))
CROSS_CHECK_PAYMENT = (DebtPayment(date(2020, 1, 1), 10_000),)


def test_cross_check_with_penalty_calc_corp_gives_835_05() -> None:
    # Day 1 = 11.06.2019, day 31 = 11.07.2019, day 90 = 08.09.2019.
    # 1/300 on 1,000.00: 11.07–08.09.2019 = 21 + 31 + 8 = 60 days: 95 × 60 / 300 = 19.00.
    # 1/130 on 1,000.00: 09.09.2019–01.01.2020 = 22 + 31 + 30 + 31 + 1 = 115 days:
    #   95 × 115 / 130 = 10925 / 130 = 84.0384… → 84.04.   (19.0000 + 84.0385 = 103.04 as theirs)
    # 1/130 on 900.00 (85.5 a year × 1/130 a day):
    #   02.01–05.04.2020 = 30 + 29 + 31 + 5 = 95 days: 8122.5 / 130 = 62.4807… → 62.48
    #   02.01.2021–30.03.2022 = 364 + 31 + 28 + 30 = 453 days: 38731.5 / 130 = 297.9346… → 297.93
    #   02.10.2022–18.04.2024 = 91 + 365 + 109 = 565 days: 48307.5 / 130 = 371.5961… → 371.60
    #   95 + 453 + 565 = 1113 days = their 1569 days on 900.00 less 456 moratorium days;
    #   unrounded 85.5 × 1113 / 130 = 732.0115… = their 732.01.
    # Total: 19.00 + 84.04 + 62.48 + 297.93 + 371.60 = 835.05. The unrounded sum is exactly
    # 835.05 too, so rounding per sub-period and their unrounded per-day sum agree here.
    result = calculate_penalty(
        100_000, date(2019, 6, 10), date(2024, 4, 18), CROSS_CHECK_PAYMENT, rate=RATE, moratoria=THEIR_MORATORIA
    )
    assert rows(result.sub_periods) == [
        ("2019-07-11", "2019-09-08", 60, 100_000, "1/300", 1900),
        ("2019-09-09", "2020-01-01", 115, 100_000, "1/130", 8404),
        ("2020-01-02", "2020-04-05", 95, 90_000, "1/130", 6248),
        ("2021-01-02", "2022-03-30", 453, 90_000, "1/130", 29793),
        ("2022-10-02", "2024-04-18", 565, 90_000, "1/130", 37160),
    ]
    assert result.total_kopecks == 83505
    # (to 10 decimals: each unrounded amount carries 28 significant digits)
    assert sum((s.amount for s in result.sub_periods), D(0)).quantize(D("1E-10")) == D("835.05")


def test_the_same_debt_with_our_moratoria_accrues_two_more_days() -> None:
    # Our data ends the 2020 moratorium on 31.12.2020 (ПП №424: until 01.01.2021) and starts the
    # 2022 one on 01.04.2022 (ПП №497), so 01.01.2021 and 31.03.2022 accrue:
    # 02.01.2021–30.03.2022 becomes 01.01.2021–31.03.2022 = 455 days: 38902.5 / 130 = 299.25.
    # Total 19.00 + 84.04 + 62.48 + 299.25 + 371.60 = 836.37.
    result = calculate_penalty(
        100_000, due_date_for(date(2019, 5, 1)), date(2024, 4, 18), CROSS_CHECK_PAYMENT, rate=RATE
    )
    assert rows(result.sub_periods)[3] == ("2021-01-01", "2022-03-31", 455, 90_000, "1/130", 29925)
    assert result.total_kopecks == 83637


# --- properties -----------------------------------------------------------------------------

days_after = st.integers(min_value=0, max_value=1500)


@st.composite
def debts(draw: st.DrawFn) -> tuple[int, date, list[DebtPayment], bool]:
    debt = draw(st.integers(min_value=0, max_value=10_000_000))
    due = date(2019, 1, 10) + timedelta(days=draw(st.integers(min_value=0, max_value=2500)))
    payments = [
        DebtPayment(due + timedelta(days=offset), amount)
        for offset, amount in draw(
            st.lists(st.tuples(st.integers(min_value=-20, max_value=400), st.integers(1, 5_000_000)), max_size=4)
        )
    ]
    return debt, due, payments, draw(st.booleans())


@given(debts(), days_after, days_after, st.sampled_from([D("4.25"), D("9.5"), D("21")]))
def test_the_penalty_never_decreases_when_until_moves_later(
    debt: tuple[int, date, list[DebtPayment], bool], first: int, second: int, rate: D
) -> None:
    # With a fixed rate. With rate=None a later ``until`` may take a lower key rate for the whole
    # calculation, and then the penalty can go down: that is the law (the rate on the day of
    # payment), not a bug.
    amount, due, payments, capital_repair = debt
    early, late = sorted((first, second))
    last_payment = max((p.paid_on for p in payments), default=due)
    start = max(due, last_payment)
    earlier = calculate_penalty(
        amount, due, start + timedelta(days=early), payments, rate=rate, capital_repair=capital_repair
    )
    later = calculate_penalty(
        amount, due, start + timedelta(days=late), payments, rate=rate, capital_repair=capital_repair
    )
    assert later.total_kopecks >= earlier.total_kopecks


@given(debts(), st.integers(min_value=0, max_value=30))
def test_no_penalty_within_30_days_of_the_due_date(
    debt: tuple[int, date, list[DebtPayment], bool], offset: int
) -> None:
    amount, due, payments, _ = debt
    until = due + timedelta(days=offset)
    result = calculate_penalty(amount, due, until, [p for p in payments if p.paid_on <= until], rate=RATE)
    assert result.total_kopecks == 0
    assert result.sub_periods == ()


@given(debts(), days_after)
def test_sub_periods_are_ordered_disjoint_and_sum_to_the_total(
    debt: tuple[int, date, list[DebtPayment], bool], offset: int
) -> None:
    amount, due, payments, capital_repair = debt
    until = max([due, *(p.paid_on for p in payments)]) + timedelta(days=offset)
    result = calculate_penalty(amount, due, until, payments, rate=RATE, capital_repair=capital_repair)
    assert result.total_kopecks == sum(s.amount_kopecks for s in result.sub_periods)
    for sub in result.sub_periods:
        assert sub.days == (sub.last_day - sub.first_day).days + 1 > 0
        assert sub.debt_kopecks > 0
        assert not any(m.contains(sub.first_day) or m.contains(sub.last_day) for m in MORATORIA)
    for before, after in zip(result.sub_periods, result.sub_periods[1:], strict=False):
        assert before.last_day < after.first_day


rates = st.sampled_from([D("0"), D("4.25"), D("9.5"), D("16.75"), D("21")])


@given(
    st.integers(min_value=1, max_value=10**13),
    st.integers(min_value=0, max_value=2500),
    st.integers(min_value=0, max_value=400),
    st.integers(min_value=0, max_value=45),
    rates,
    st.booleans(),
)
def test_integer_terms_give_the_calculation_of_a_debt_no_payment_reduces(
    debt: int, due_offset: int, window_offset: int, window_days: int, rate: D, capital_repair: bool
) -> None:
    # The set-based penalty run evaluates these terms in SQL; they must agree to the kopeck with
    # the calculator for any debt, any window (moratoria and the 1/130 step included) and rate.
    due = date(2019, 1, 10) + timedelta(days=due_offset)
    first = due + timedelta(days=window_offset)
    window = (first, first + timedelta(days=window_days))
    terms = constant_debt_terms(due, window[1], rate, capital_repair=capital_repair, window=window)
    expected = calculate_penalty(debt, due, window[1], (), rate=rate, capital_repair=capital_repair, window=window)
    assert len(terms) == len(expected.sub_periods)
    assert [term.of(debt) for term in terms] == [sub.amount_kopecks for sub in expected.sub_periods]


def test_integer_terms_of_a_month_at_both_fractions() -> None:
    # March 2026 due 15.04.2026: in July 2026 delay days 77–107, so 1–14 July at 1/300 (14 days)
    # and 15–31 July at 1/130 (17 days). 1,000.00 × 9.5 % × 14 / 300 = 4.4333… → 4.43;
    # 1,000.00 × 9.5 % × 17 / 130 = 12.4230… → 12.42.
    window = (date(2026, 7, 1), date(2026, 7, 31))
    terms = constant_debt_terms(DUE, window[1], RATE, window=window)
    assert [term.of(100000) for term in terms] == [443, 1242]
