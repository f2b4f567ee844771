"""The payment-agent registry: a bank's or post office's daily list of accepted payments.

Pure: no I/O. The format (documented in docs/formats.md, example in examples/agent-registry.txt):

* text in UTF-8 (with or without BOM) or Windows-1251, detected: a BOM or valid UTF-8 is UTF-8,
  anything else Windows-1251;
* blank lines and comment lines starting with ``#`` are skipped;
* one line per payment, fields separated by ``;``::

      operation_id;paid_on;account;period;amount[;payer]

  ``operation_id`` the agent's unique id of the payment; ``paid_on`` ``dd.mm.yyyy`` (or ISO
  ``yyyy-mm-dd``); ``account`` the personal account; ``period`` the billing month paid for,
  ``MMYYYY`` or ``MM.YYYY``, or empty; ``amount`` rubles with ``.`` or ``,`` decimal; ``payer``
  optional free text;
* the last line is the summary ``=COUNT;TOTAL``: the number of payments and their sum in rubles.

The whole registry is refused (``RegistryError`` with every problem) when anything is wrong:
money received by an agent must arrive whole or not at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from zhkh.core.errors import Problem, ProblemsFound
from zhkh.core.money import format_rubles, parse_rubles
from zhkh.payments.bankfiles import decode_text

SEPARATOR = ";"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_RU_DATE = re.compile(r"^(\d{2})\.(\d{2})\.(\d{4})$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_PERIOD = re.compile(r"^(\d{2})\.?(\d{4})$")
_FORMAT = "operation_id;paid_on;account;period;amount[;payer]"


class RegistryError(ProblemsFound, ValueError):
    """The registry was refused as a whole; ``problems`` says every line that is wrong and why."""

    def __init__(self, problems: list[Problem], name: str) -> None:
        super().__init__(problems, what=name)

    def __str__(self) -> str:
        return "\n".join([self.message, *(str(p) for p in self.problems)])


@dataclass(frozen=True, slots=True)
class AgentPayment:
    line: int
    operation_id: str
    paid_on: date
    account: str
    period: date | None  # the first day of the billing month paid for, or None when not stated
    amount_kopecks: int
    payer: str


@dataclass(frozen=True, slots=True)
class AgentRegistry:
    payments: tuple[AgentPayment, ...]
    count: int
    total_kopecks: int


def parse_paid_on(text: str) -> date:
    """``dd.mm.yyyy`` or ``yyyy-mm-dd`` -> date."""
    text = text.strip()
    ru, iso = _RU_DATE.match(text), _ISO_DATE.match(text)
    if ru:
        day, month, year = (int(g) for g in ru.groups())
    elif iso:
        year, month, day = (int(g) for g in iso.groups())
    else:
        raise ValueError(f"paid_on: not a date dd.mm.yyyy or yyyy-mm-dd: {text!r}")
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError(f"paid_on: no such date: {text!r}") from None


def parse_period(text: str) -> date | None:
    """``MMYYYY`` or ``MM.YYYY`` -> the first day of that month; empty -> None."""
    text = text.strip()
    if not text:
        return None
    match = _PERIOD.match(text)
    if not match:
        raise ValueError(f"period: not a month MMYYYY or MM.YYYY: {text!r}")
    month, year = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12 or year < 1900:
        raise ValueError(f"period: no such month: {text!r}")
    return date(year, month, 1)


def _amount(text: str, what: str) -> int:
    try:
        return parse_rubles(text)
    except ValueError:
        raise ValueError(f"{what}: not an amount in rubles with at most 2 decimals: {text.strip()!r}") from None


def parse_agent_registry(data: bytes, name: str = "registry") -> AgentRegistry:
    """Read a payment-agent registry; raise ``RegistryError`` with every problem found."""
    try:
        text, _ = decode_text(data)
    except ValueError as exc:
        raise RegistryError([Problem(None, "encoding", str(exc))], name) from None

    problems: list[Problem] = []
    payments: list[AgentPayment] = []
    payment_lines = 0  # payment lines, read or not, for the count check
    amounts_read = True  # every payment line's amount could be read, so the total can be checked
    amount_sum = 0  # of every amount read, even on a line refused for another field
    first_seen: dict[str, int] = {}
    summary: tuple[int, int, int] | None = None  # line, count, total
    last_line = 0
    for number, raw in enumerate(_LINE_BREAK.split(text), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        last_line = number
        if line.startswith("="):
            if summary is not None:
                problems.append(
                    Problem(number, "second_summary", f"a second summary line (the first is line {summary[0]})")
                )
                continue
            try:
                summary = _summary(number, line)
            except ValueError as exc:
                problems.append(Problem(number, "bad_summary", str(exc)))
                summary = (number, -1, -1)
            continue
        payment_lines += 1
        if summary is not None:
            message = f"a payment after the summary line {summary[0]}: the summary must be the last line"
            problems.append(Problem(number, "after_summary", message))
        fields = [f.strip() for f in line.split(SEPARATOR)]
        if len(fields) not in (5, 6):
            message = f"has {len(fields)} fields, expected 5 or 6 ({_FORMAT})"
            problems.append(Problem(number, "field_count", message))
            amounts_read = False
            continue
        operation_id, paid_on, account, period, amount = fields[:5]
        payer = fields[5] if len(fields) == 6 else ""
        line_problems: list[str] = []
        if not operation_id:
            line_problems.append("operation_id is empty")
        elif operation_id in first_seen:
            line_problems.append(f"operation_id {operation_id} already appears on line {first_seen[operation_id]}")
        else:
            first_seen[operation_id] = number
        if not account:
            line_problems.append("account is empty")
        parsed: dict[str, object] = {}
        for key, parse, value in (("paid_on", parse_paid_on, paid_on), ("period", parse_period, period)):
            try:
                parsed[key] = parse(value)
            except ValueError as exc:
                line_problems.append(str(exc))
        kopecks: int | None = None
        try:
            kopecks = _amount(amount, "amount")
        except ValueError as exc:
            line_problems.append(str(exc))
            amounts_read = False
        if kopecks is not None:
            amount_sum += kopecks
            if kopecks <= 0:
                line_problems.append(f"amount must be greater than zero, got {amount}")
        problems.extend(Problem(number, "bad_value", message) for message in line_problems)
        if line_problems or kopecks is None:
            continue
        paid = parsed["paid_on"]
        month = parsed["period"]
        assert isinstance(paid, date)
        assert month is None or isinstance(month, date)
        payments.append(AgentPayment(number, operation_id, paid, account, month, kopecks, payer))

    if summary is None:
        where = last_line or None
        problems.append(Problem(where, "missing_summary", "no summary line =COUNT;TOTAL at the end of the registry"))
    elif summary[1] >= 0:
        line, count, total = summary
        if count != payment_lines:
            message = f"the summary says {count} payments but the registry has {payment_lines}"
            problems.append(Problem(line, "count_mismatch", message))
        if amounts_read and total != amount_sum:
            message = (
                f"the summary says a total of {format_rubles(total)} "
                f"but the payments add up to {format_rubles(amount_sum)}"
            )
            problems.append(Problem(line, "total_mismatch", message))
    if problems:
        raise RegistryError(problems, name)
    return AgentRegistry(tuple(payments), len(payments), sum(p.amount_kopecks for p in payments))


def _summary(number: int, line: str) -> tuple[int, int, int]:
    fields = [f.strip() for f in line[1:].split(SEPARATOR)]
    if len(fields) != 2 or not fields[0].isdigit():
        raise ValueError(f"the summary line must be =COUNT;TOTAL, got {line!r}")
    return number, int(fields[0]), _amount(fields[1], "summary total")
