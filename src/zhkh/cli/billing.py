"""``zhkh billing``: the monthly run, closing a period, explanations, export, absences."""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import typer
from rich.table import Table

from zhkh.cli.options import date_value as _date
from zhkh.cli.options import period_value as _period
from zhkh.cli.output import console
from zhkh.core.errors import InvalidInput

app = typer.Typer(help="The monthly billing run under ПП 354: run, close, explain, export (docs/billing.md).")

PeriodOption = typer.Option(..., "--period", help="the billing period, YYYY-MM", show_default=False)


@app.command("run")
def run_command(
    period: str = PeriodOption,
    building: str | None = typer.Option(None, "--building", help="only this building (its building_id)"),
    recompute: bool = typer.Option(
        False, "--recompute", help="recompute every meter's consumption of the period, not only what is out of date"
    ),
    jobs: int = typer.Option(
        os.cpu_count() or 1,
        "--jobs",
        min=1,
        help="worker processes computing the lines (PostgreSQL, over 100 buildings); default: one per core",
    ),
) -> None:
    """Bill every account of the period (again: an open period's draft is replaced)."""
    from sqlalchemy import select

    from zhkh.billing.service import run_billing
    from zhkh.core.db import session_scope
    from zhkh.core.money import format_rubles
    from zhkh.housing.models import Organisation

    with session_scope() as session:
        summary = run_billing(session, _period(period), building, recompute_consumption=recompute, jobs=jobs)
        organisations = {
            row.id: row for row in session.execute(select(Organisation.id, Organisation.name, Organisation.inn))
        }
    table = Table(title=f"Billing {summary.period}: {summary.accounts} accounts, {summary.lines} lines")
    table.add_column("supplier")
    table.add_column("INN")
    table.add_column("total, ₽", justify="right")
    for supplier, amount in sorted(summary.by_supplier.items()):
        organisation = organisations[supplier]
        table.add_row(organisation.name, organisation.inn, format_rubles(amount))
    table.add_row("all", "", format_rubles(summary.total), style="bold")
    console.print(table)
    if summary.recalculations:
        console.print(f"recalculations of closed periods: {summary.recalculations} lines")
    if summary.problems:
        console.print(f"{len(summary.problems)} problems, not billed (zhkh billing problems --period {period}):")
        for problem in summary.problems[:20]:
            console.print(f"  account #{problem.account_id} {problem.service}: {problem.code}: {problem.message}")


@app.command("problems")
def problems_command(period: str = PeriodOption) -> None:
    """What the last run of the period could not bill, and why."""
    from sqlalchemy import select

    from zhkh.billing.models import BillingProblemRow
    from zhkh.core.db import session_scope
    from zhkh.housing.models import Account

    with session_scope() as session:
        rows = session.execute(
            select(Account.number, BillingProblemRow.service, BillingProblemRow.code, BillingProblemRow.message)
            .join(Account, Account.id == BillingProblemRow.account_id)
            .where(BillingProblemRow.period == _period(period).first_day)
            .order_by(Account.number, BillingProblemRow.service)
        ).all()
    for number, service, code, message in rows:
        console.print(f"{number}\t{service}\t{code}\t{message}")
    console.print(f"{len(rows)} problems")


@app.command("close")
def close_command(period: str = PeriodOption) -> None:
    """Freeze the period: its lines become final; later changes are recalculated in the next one."""
    from zhkh.billing.service import close_period
    from zhkh.core.db import session_scope
    from zhkh.core.money import format_rubles

    with session_scope() as session:
        summary = close_period(session, _period(period))
    console.print(
        f"period {summary.period} closed: {summary.accounts} accounts, {summary.lines} lines, "
        f"{format_rubles(summary.total)} ₽"
    )


@app.command("explain")
def explain_command(
    account: str = typer.Argument(..., help="personal account number"),
    period: str = PeriodOption,
    lang: str = typer.Option("ru", "--lang", help="ru or en"),
) -> None:
    """Every line of an account's bill, and why it is what it is."""
    from zhkh.billing.explain import explain_lines
    from zhkh.billing.service import account_lines
    from zhkh.core.db import session_scope

    if lang not in ("ru", "en"):
        raise InvalidInput(f"--lang: {lang!r}; ru or en")
    with session_scope() as session:
        lines = account_lines(session, _period(period), account)
    if not lines:
        raise InvalidInput(f"account {account} has no lines for {period}; has the period been run?")
    heading = f"Лицевой счёт {account}, {period}" if lang == "ru" else f"Account {account}, {period}"
    console.print(heading)
    for sentence in explain_lines(lines, lang):
        console.print(f"  {sentence}")


@app.command("export")
def export_command(
    period: str = PeriodOption,
    fmt: str = typer.Option("csv", "--format", help="csv"),
    out: Path | None = typer.Option(None, "--out", help="file to write; standard output if absent"),
) -> None:
    """Every line of the period, one CSV row each (columns in docs/billing.md)."""
    from zhkh.billing.service import EXPORT_COLUMNS, export_rows
    from zhkh.core.db import session_scope

    if fmt != "csv":
        raise InvalidInput(f"--format: {fmt!r}; only csv")
    with session_scope() as session:
        stream = out.open("w", encoding="utf-8", newline="") if out else sys.stdout
        try:
            writer = csv.DictWriter(stream, EXPORT_COLUMNS, lineterminator="\n")
            writer.writeheader()
            count = 0
            for row in export_rows(session, _period(period)):
                writer.writerow(row)
                count += 1
        finally:
            if out:
                stream.close()
    if out:
        console.print(f"{count} lines written to {out}")


@app.command("absence")
def absence_command(
    account: str = typer.Argument(..., help="personal account number"),
    departed: str = typer.Option(..., "--from", help="the day the resident left"),
    returned: str = typer.Option(..., "--to", help="the day they came back"),
    persons: int = typer.Option(1, "--persons", help="how many residents were away"),
) -> None:
    """Record a temporary absence (ПП 354 п.86-97): per-person norms are reduced for the full days away."""
    from zhkh.billing.service import record_absence
    from zhkh.core.db import session_scope

    with session_scope() as session:
        absence = record_absence(session, account, _date(departed, "--from"), _date(returned, "--to"), persons)
        days = (absence.returned_on - absence.departed_on).days - 1
    console.print(f"absence of {persons} from {departed} to {returned} recorded: {days} full days away")
