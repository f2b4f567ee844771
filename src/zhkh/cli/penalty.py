"""``zhkh penalty``: the stand-alone penalty calculator (ЖК РФ ст.155 ч.14, 14.1; docs/payments.md)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import typer
from rich.table import Table

from zhkh.cli.options import date_value as _date
from zhkh.cli.options import rubles_value as _rubles
from zhkh.cli.output import console
from zhkh.core.errors import InvalidInput

app = typer.Typer(help="Penalties (пени) under ЖК РФ ст.155 ч.14 and ч.14.1 (docs/payments.md).")

_HEADINGS = {
    "ru": ("с", "по", "дней", "долг, ₽", "доля ставки", "ставка, %", "пени, ₽", "итого", "Пени", "по ставке"),
    "en": ("from", "to", "days", "debt, ₽", "fraction", "rate, %", "penalty, ₽", "total", "Penalty", "at"),
}


def _rate(text: str) -> Decimal:
    try:
        rate = Decimal(text.strip().replace(",", "."))
    except InvalidOperation:
        rate = Decimal("NaN")
    if not rate.is_finite() or rate < 0:
        raise InvalidInput(f"--rate: not a percentage per year: {text!r} (for example 9.5)")
    return rate


@app.command("calc")
def calc_command(
    debt: str = typer.Option(..., "--debt", help="the amount owed, rubles (1000.00)", show_default=False),
    due: str = typer.Option(..., "--due", help="the last day to pay, 2026-04-15", show_default=False),
    until: str = typer.Option(..., "--until", help="count up to this day inclusive (the day of payment)"),
    payment: list[str] = typer.Option(
        [], "--payment", help="a payment towards the debt, DATE=RUBLES (2026-06-01=500.00); repeatable"
    ),
    rate: str | None = typer.Option(
        None, "--rate", help="% per year; default: the key rate on --until, at most 9.5 % in 28.02.2022–31.12.2026"
    ),
    capital_repair: bool = typer.Option(
        False, "--capital-repair", help="a capital repair contribution (ч.14.1): 1/300 from day 1"
    ),
    lang: str = typer.Option("ru", "--lang", help="ru or en"),
) -> None:
    """Penalty on one debt, sub-period by sub-period."""
    from zhkh.core.money import format_rubles
    from zhkh.payments.penalty import DebtPayment, PenaltyInputError, calculate_penalty

    if lang not in _HEADINGS:
        raise InvalidInput(f"--lang: {lang!r}; ru or en")
    payments = []
    for text in payment:
        day, sep, amount = text.partition("=")
        if not sep:
            raise InvalidInput(f"--payment: {text!r} is not DATE=RUBLES (for example 2026-06-01=500.00)")
        payments.append(DebtPayment(_date(day, "--payment"), _rubles(amount, f"--payment {text}")))
    try:
        result = calculate_penalty(
            _rubles(debt, "--debt"),
            _date(due, "--due"),
            _date(until, "--until"),
            payments,
            rate=None if rate is None else _rate(rate),
            capital_repair=capital_repair,
        )
    except PenaltyInputError as exc:
        raise InvalidInput(str(exc)) from exc
    except ValueError as exc:  # no key rate for --until: a date the table does not cover
        raise InvalidInput(f"{exc}") from exc

    first, last, days, debt_head, fraction, rate_head, amount_head, total, title, at = _HEADINGS[lang]
    table = Table(title=f"{title}: {format_rubles(result.total_kopecks)} ₽ {at} {result.rate:f} %")
    for heading in (first, last, days, debt_head, fraction, rate_head, amount_head):
        table.add_column(heading, justify="right", no_wrap=True)
    for sub in result.sub_periods:
        table.add_row(
            sub.first_day.isoformat(),
            sub.last_day.isoformat(),
            str(sub.days),
            format_rubles(sub.debt_kopecks),
            sub.fraction,
            f"{sub.rate:f}",
            format_rubles(sub.amount_kopecks),
        )
    table.add_row(total, "", "", "", "", "", format_rubles(result.total_kopecks), style="bold")
    console.print(table)


@app.command("run")
def run_command(
    month: str = typer.Option(..., "--month", help="the month to charge, YYYY-MM", show_default=False),
) -> None:
    """Charge the penalties accrued in a month on every overdue debt (once per month)."""
    from zhkh.cli.options import period_value
    from zhkh.core.db import session_scope
    from zhkh.core.money import format_rubles
    from zhkh.payments.penalties import charge_penalties

    with session_scope() as session:
        run = charge_penalties(session, period_value(month, "--month"))
    console.print(
        f"penalties of {run.month}: {format_rubles(run.total)} ₽ on {run.receivables} debts of {run.accounts} accounts"
    )
