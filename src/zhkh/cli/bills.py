"""``zhkh bills``: the single payment documents (ЕПД) of a closed period as PDF (docs/bill.md)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from zhkh.cli.options import period_value
from zhkh.cli.output import console

app = typer.Typer(help="Bills (ЕПД) with the payment QR code (docs/bill.md).")


@app.command("render")
def render(
    period: str = typer.Option(..., "--period", help="a closed billing period, YYYY-MM", show_default=False),
    out: Path = typer.Option(..., "--out", help="directory for the PDF files", show_default=False),
    account: str | None = typer.Option(None, "--account", help="only this personal account"),
    jobs: int = typer.Option(2, "--jobs", min=1, help="processes rendering in parallel"),
) -> None:
    """One PDF per account: <YYYY-MM>_<account>.pdf."""
    from sqlalchemy import func, select

    from zhkh.billing.bills import bill_documents, issue_ledger_keys
    from zhkh.billing.epd import render_bills_to_directory
    from zhkh.billing.models import BilledAccount
    from zhkh.core.config import get_settings
    from zhkh.core.db import session_scope

    month = period_value(period)
    with session_scope() as session:
        issue_ledger_keys(session, month, account)
    with session_scope() as session:
        total = (
            1
            if account
            else session.scalar(
                select(func.count()).select_from(BilledAccount).where(BilledAccount.period == month.first_day)
            )
        )
        columns = (TextColumn("bills"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("render", total=total)
            paths = render_bills_to_directory(
                bill_documents(session, month, account, ledger_url=get_settings().ledger_url),
                out,
                on_progress=lambda done: progress.update(task, completed=done),
                jobs=jobs,
            )
    console.print(f"{len(paths)} bills of {month} written to {out}")
