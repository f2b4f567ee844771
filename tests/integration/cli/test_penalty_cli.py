"""``zhkh penalty calc``: the stand-alone calculator prints its sub-periods and total, and refuses
bad input with one line and exit code 1. No database is involved.

The figures are the worked example of tests/unit/payments/test_penalty.py
(test_a_partial_payment_reduces_the_debt_from_the_next_day), computed by hand there.
"""

from __future__ import annotations

import re

import pytest

from zhkh.cli.main import run

EXAMPLE = ["penalty", "calc", "--debt", "1000.00", "--due", "2026-04-15", "--until", "2026-08-31"]


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def cells(out: str) -> list[list[str]]:
    """The table's rows (the heading first) as lists of cell texts."""
    return [
        [cell.strip() for cell in re.split("[│┃]", line.strip("│┃ "))]
        for line in out.splitlines()
        if line.startswith(("│", "┃"))
    ]


def test_calc_prints_sub_periods_and_the_total(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, *EXAMPLE, "--payment", "2026-06-01=500.00", "--rate", "9.5", "--lang", "en")
    assert (code, err) == (0, "")
    assert "Penalty: 29.73 ₽ at 9.5 %" in out
    assert cells(out) == [
        ["from", "to", "days", "debt, ₽", "fraction", "rate, %", "penalty, ₽"],
        ["2026-05-16", "2026-06-01", "17", "1000.00", "1/300", "9.5", "5.38"],
        ["2026-06-02", "2026-07-14", "43", "500.00", "1/300", "9.5", "6.81"],
        ["2026-07-15", "2026-08-31", "48", "500.00", "1/130", "9.5", "17.54"],
        ["total", "", "", "", "", "", "29.73"],
    ]


def test_calc_in_russian_with_the_default_rate_and_capital_repair(capsys: pytest.CaptureFixture[str]) -> None:
    # Without --rate: the key rate on 31.08.2026 capped at 9.5 % (28.02.2022–31.12.2026). Capital
    # repair: 16.04–31.08.2026 = 138 days at 1/300: 1,000 × 0.095 × 138 / 300 = 43.70.
    code, out, err = cli(capsys, *EXAMPLE, "--capital-repair")
    assert (code, err) == (0, "")
    assert "Пени: 43.70 ₽ по ставке 9.50 %" in out
    assert cells(out)[1:] == [
        ["2026-04-16", "2026-08-31", "138", "1000.00", "1/300", "9.50", "43.70"],
        ["итого", "", "", "", "", "", "43.70"],
    ]


def test_calc_inside_the_grace_prints_a_zero_total(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "penalty", "calc", "--debt", "1000", "--due", "2026-04-15", "--until", "2026-05-15")
    assert code == 0
    assert cells(out)[1:] == [["итого", "", "", "", "", "", "0.00"]]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--payment", "2026-06-01=-5"], "the payment of 2026-06-01 must be a positive amount, got -5.00 rubles"),
        (["--payment", "2026-06-01"], "--payment: '2026-06-01' is not DATE=RUBLES (for example 2026-06-01=500.00)"),
        (["--payment", "2026-09-01=5"], "the payment of 2026-09-01 is after the calculation day 2026-08-31"),
        (["--until", "2026-04-01"], "the calculation day 2026-04-01 is before the due date 2026-04-15"),
        (["--debt", "10.001"], "--debt: not an amount in rubles with at most 2 decimals: '10.001'"),
        (["--rate", "abc"], "--rate: not a percentage per year: 'abc' (for example 9.5)"),
        (["--lang", "de"], "--lang: 'de'; ru or en"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str], extra: list[str], message: str) -> None:
    # A later option replaces an earlier one (--until, --debt), so EXAMPLE + extra is the bad input.
    code, out, err = cli(capsys, *EXAMPLE, *extra)
    assert code == 1
    assert out == ""
    assert err == f"error: {message}\n"
    assert "Traceback" not in err
