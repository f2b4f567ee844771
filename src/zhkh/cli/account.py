"""``zhkh account``: what residents and courts ask about one personal account."""

from __future__ import annotations

import csv
import sys

import typer
from rich.table import Table

from zhkh.cli.options import period_value
from zhkh.cli.output import console
from zhkh.core.errors import InvalidInput

app = typer.Typer(help="One personal account: its statement (docs/payments.md).")


@app.command("statement")
def statement(
    account: str = typer.Argument(..., help="the personal account number"),
    first: str | None = typer.Option(None, "--from", help="the first period, YYYY-MM"),
    last: str | None = typer.Option(None, "--to", help="the last period, YYYY-MM"),
    output: str = typer.Option("table", "--format", help="table or csv"),
) -> None:
    """Per period and service: supplier, opening, accrued, paid, penalty, closing."""
    from zhkh.core.db import session_scope
    from zhkh.payments.statement import COLUMNS, account_statement

    if output not in ("table", "csv"):
        raise InvalidInput(f"--format: table or csv, not {output!r}")
    with session_scope() as session:
        rows = account_statement(
            session,
            account,
            period_value(first, "--from") if first else None,
            period_value(last, "--to") if last else None,
        )
    if output == "csv":
        writer = csv.DictWriter(sys.stdout, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(row.as_text() for row in rows)
        return
    table = Table(title=f"Statement of account {account}")
    for column in COLUMNS:
        table.add_column(column, justify="right" if column not in ("period", "service", "supplier_inn") else "left")
    for row in rows:
        table.add_row(*row.as_text().values())
    console.print(table)
