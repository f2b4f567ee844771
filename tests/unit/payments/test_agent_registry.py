from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from zhkh.payments.agent_registry import AgentPayment, RegistryError, parse_agent_registry

EXAMPLES = Path(__file__).parents[3] / "examples"


def problems(text: str) -> list[tuple[int | None, str]]:
    with pytest.raises(RegistryError) as caught:
        parse_agent_registry(text.encode(), name="registry.txt")
    return [(p.row, p.message) for p in caught.value.problems]


def test_example_registry() -> None:
    registry = parse_agent_registry((EXAMPLES / "agent-registry.txt").read_bytes())
    assert registry.count == 5
    assert registry.total_kopecks == 1_675_825
    assert registry.payments[0] == AgentPayment(
        line=3,
        operation_id="PB-20260601-000117",
        paid_on=date(2026, 6, 1),
        account="100101",
        period=date(2026, 5, 1),
        amount_kopecks=352_040,
        payer="Иванов Иван Иванович",
    )
    second, third, fourth = registry.payments[1:4]
    assert (second.period, second.amount_kopecks) == (date(2026, 5, 1), 410_000)  # MM.YYYY, decimal comma
    assert third.period is None  # the period may be left empty
    assert (fourth.paid_on, fourth.payer) == (date(2026, 6, 1), "")  # ISO date, no payer
    assert sum(p.amount_kopecks for p in registry.payments) == registry.total_kopecks


def test_cp1251_example_reads_the_same() -> None:
    utf8 = (EXAMPLES / "agent-registry.txt").read_bytes()
    cp1251 = (EXAMPLES / "agent-registry-cp1251.txt").read_bytes()
    assert cp1251 == utf8.decode("utf-8").encode("cp1251")
    assert parse_agent_registry(cp1251) == parse_agent_registry(utf8)


def test_bom_crlf_and_blank_lines() -> None:
    text = "\ufeff# реестр\r\n\r\nop1;01.06.2026;1000001;052026;10.00;Иванов\r\n\r\n=1;10.00\r\n"
    registry = parse_agent_registry(text.encode("utf-8"))
    assert [(p.line, p.payer) for p in registry.payments] == [(3, "Иванов")]


def test_an_empty_registry_with_a_zero_summary() -> None:
    registry = parse_agent_registry(b"# no payments today\n=0;0.00\n")
    assert (registry.payments, registry.count, registry.total_kopecks) == ((), 0, 0)


def test_bytes_in_no_known_encoding() -> None:
    with pytest.raises(RegistryError) as caught:
        parse_agent_registry(b"op1;\x98;1000001;;1.00\n=1;1.00\n")
    assert "neither UTF-8 nor Windows-1251" in caught.value.problems[0].message


def test_missing_summary() -> None:
    assert problems("op1;01.06.2026;1000001;052026;10.00\nop2;01.06.2026;1000002;052026;5.00\n") == [
        (2, "no summary line =COUNT;TOTAL at the end of the registry")
    ]


def test_second_summary() -> None:
    found = problems("op1;01.06.2026;1000001;052026;10.00\n=1;10.00\n=1;10.00\n")
    assert found == [(3, "a second summary line (the first is line 2)")]


def test_payment_after_the_summary() -> None:
    found = problems("op1;01.06.2026;1000001;052026;10.00\n=1;10.00\nop2;01.06.2026;1000002;052026;5.00\n")
    assert (3, "a payment after the summary line 2: the summary must be the last line") in found
    assert (2, "the summary says 1 payments but the registry has 2") in found


def test_malformed_summary() -> None:
    assert problems("op1;01.06.2026;1000001;052026;10.00\n=one;10.00\n") == [
        (2, "the summary line must be =COUNT;TOTAL, got '=one;10.00'")
    ]
    assert problems("op1;01.06.2026;1000001;052026;10.00\n=1;ten\n") == [
        (2, "summary total: not an amount in rubles with at most 2 decimals: 'ten'")
    ]


def test_count_mismatch() -> None:
    assert problems("op1;01.06.2026;1000001;052026;10.00\n=2;10.00\n") == [
        (2, "the summary says 2 payments but the registry has 1")
    ]


def test_total_mismatch() -> None:
    assert problems("op1;01.06.2026;1000001;052026;10.00\nop2;01.06.2026;1000001;052026;0.50\n=2;10.05\n") == [
        (3, "the summary says a total of 10.05 but the payments add up to 10.50")
    ]


@pytest.mark.parametrize(
    ("line", "count"),
    [("op1;01.06.2026;1000001;10.00", 4), ("op1;01.06.2026;1000001;052026;10.00;Иванов;лишнее", 7)],
)
def test_wrong_number_of_fields(line: str, count: int) -> None:
    assert problems(f"# header\n{line}\n=1;10.00\n") == [
        (2, f"has {count} fields, expected 5 or 6 (operation_id;paid_on;account;period;amount[;payer])")
    ]


@pytest.mark.parametrize(
    ("paid_on", "reason"),
    [
        ("1.06.2026", "paid_on: not a date dd.mm.yyyy or yyyy-mm-dd: '1.06.2026'"),
        ("31.06.2026", "paid_on: no such date: '31.06.2026'"),
        ("2026-13-01", "paid_on: no such date: '2026-13-01'"),
        ("", "paid_on: not a date dd.mm.yyyy or yyyy-mm-dd: ''"),
    ],
)
def test_bad_date(paid_on: str, reason: str) -> None:
    assert problems(f"op1;{paid_on};1000001;052026;10.00\n=1;10.00\n") == [(1, reason)]


@pytest.mark.parametrize(
    ("period", "reason"),
    [
        ("5.2026", "period: not a month MMYYYY or MM.YYYY: '5.2026'"),
        ("2026-05", "period: not a month MMYYYY or MM.YYYY: '2026-05'"),
        ("132026", "period: no such month: '132026'"),
        ("00.2026", "period: no such month: '00.2026'"),
    ],
)
def test_bad_period(period: str, reason: str) -> None:
    assert problems(f"op1;01.06.2026;1000001;{period};10.00\n=1;10.00\n") == [(1, reason)]


@pytest.mark.parametrize("amount", ["10.005", "десять", ""])
def test_bad_amount(amount: str) -> None:
    assert problems(f"op1;01.06.2026;1000001;052026;{amount}\n=1;10.00\n") == [
        (1, f"amount: not an amount in rubles with at most 2 decimals: {amount!r}")
    ]


@pytest.mark.parametrize("amount", ["0.00", "-10.00"])
def test_zero_or_negative_amount(amount: str) -> None:
    found = problems(f"op1;01.06.2026;1000001;052026;{amount}\n=1;{amount}\n")
    assert found == [(1, f"amount must be greater than zero, got {amount}")]


def test_empty_account() -> None:
    assert problems("op1;01.06.2026; ;052026;10.00\n=1;10.00\n") == [(1, "account is empty")]


def test_empty_operation_id() -> None:
    assert problems(";01.06.2026;1000001;052026;10.00\n=1;10.00\n") == [(1, "operation_id is empty")]


def test_duplicate_operation_id() -> None:
    text = "op1;01.06.2026;1000001;052026;10.00\n# again\nop1;01.06.2026;1000002;052026;10.00\n=2;20.00\n"
    assert problems(text) == [(3, "operation_id op1 already appears on line 1")]


def test_every_problem_is_reported_and_the_registry_refused() -> None:
    text = "op1;01.06.2026;1000001;052026;10.00\nop1;32.06.2026;;13.2026;-1\nop3;01.06.2026\n=5;1.00\n"
    with pytest.raises(RegistryError) as caught:
        parse_agent_registry(text.encode("cp1251"), name="june.txt")
    error = caught.value
    assert [(p.row, p.message) for p in error.problems] == [
        (2, "operation_id op1 already appears on line 1"),
        (2, "account is empty"),
        (2, "paid_on: no such date: '32.06.2026'"),
        (2, "period: no such month: '13.2026'"),
        (2, "amount must be greater than zero, got -1"),
        (3, "has 2 fields, expected 5 or 6 (operation_id;paid_on;account;period;amount[;payer])"),
        (4, "the summary says 5 payments but the registry has 3"),
    ]
    assert error.message == "june.txt: 7 problems found, nothing was written"
    assert isinstance(error, ValueError)
