"""``zhkh payments``: bank statements, agent registries, the cash desk, the review queue,
allocation of advances, remittances to suppliers and their reconciliation (docs/payments.md)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from zhkh.cli.options import date_value, period_value, rubles_value
from zhkh.cli.output import console

app = typer.Typer(help="Payments: intake, review queue, allocation, remittance (docs/payments.md).")

FileArgument = typer.Argument(..., exists=True, dir_okay=False, readable=True, show_default=False)


def _operator() -> str:
    import getpass

    return f"cli:{getpass.getuser()}"


def _print_intake(what: str, intake: object) -> None:
    from zhkh.core.money import format_rubles
    from zhkh.payments.intake import FileIntake

    assert isinstance(intake, FileIntake)
    counts = intake.result.counts()
    console.print(
        f"{what} {intake.name}: {intake.payments_in_file} payments, recorded {counts['recorded']},"
        f" duplicates {counts['duplicates']}, waiting for review {counts['queued']}"
        f" ({format_rubles(intake.result.amount)} ₽ new)"
    )
    if intake.ignored:
        console.print(f"  {intake.ignored} documents are not incoming payments and were left alone")
    if counts["queued"]:
        console.print("  see them with: zhkh payments unmatched")


@app.command("import-statement")
def import_statement(path: Path = FileArgument) -> None:
    """A bank statement (1CClientBankExchange, Windows-1251 or UTF-8): its incoming payments."""
    from zhkh.core.db import session_scope
    from zhkh.payments.intake import import_bank_statement

    with session_scope() as session:
        intake = import_bank_statement(session, path.read_bytes(), path.name, recorded_by=_operator())
    _print_intake("statement", intake)


@app.command("import-registry")
def import_registry(path: Path = FileArgument) -> None:
    """A payment agent's registry (docs/formats.md, "Payment-agent registry")."""
    from zhkh.core.db import session_scope
    from zhkh.payments.intake import import_agent_registry

    with session_scope() as session:
        intake = import_agent_registry(session, path.read_bytes(), path.name, recorded_by=_operator())
    _print_intake("registry", intake)


@app.command("cash")
def cash(
    account: str = typer.Option(..., "--account", help="the personal account number", show_default=False),
    amount: str = typer.Option(..., "--amount", help="rubles, e.g. 1234.56", show_default=False),
    paid_on: str = typer.Option(..., "--date", help="the day it was paid, YYYY-MM-DD", show_default=False),
    receipt: str = typer.Option(..., "--receipt", help="the cash receipt number", show_default=False),
    period: str | None = typer.Option(None, "--period", help="the period it pays for, YYYY-MM"),
) -> None:
    """A payment taken at the cash desk."""
    from zhkh.core.db import session_scope
    from zhkh.payments.intake import record_cash

    with session_scope() as session:
        result = record_cash(
            session,
            account,
            rubles_value(amount, "--amount"),
            date_value(paid_on, "--date"),
            receipt,
            operator=_operator(),
            period=period_value(period).first_day if period else None,
        )
    console.print("already recorded (same receipt)" if result.duplicates else f"recorded payment {result.recorded[0]}")


@app.command("unmatched")
def unmatched() -> None:
    """Payments waiting for an operator to say whose they are, with the reason."""
    from sqlalchemy import select

    from zhkh.core.db import session_scope
    from zhkh.core.money import format_rubles
    from zhkh.payments.models import ReviewState, UnmatchedPayment

    table = Table(title="Payments waiting for review")
    for column in ("id", "paid on", "amount, ₽", "payer", "purpose", "reason"):
        table.add_column(column)
    with session_scope() as session:
        for item in session.scalars(
            select(UnmatchedPayment).where(UnmatchedPayment.state == ReviewState.WAITING).order_by(UnmatchedPayment.id)
        ):
            table.add_row(
                str(item.id), str(item.paid_on), format_rubles(item.amount), item.payer, item.purpose, item.reason
            )
    console.print(table)


@app.command("assign")
def assign_command(
    item: int = typer.Argument(..., help="the id shown by `zhkh payments unmatched`"),
    account: str = typer.Option(..., "--account", help="whose payment it is", show_default=False),
) -> None:
    """Assign a waiting payment to an account; it is allocated at once."""
    from zhkh.core.db import session_scope
    from zhkh.payments.service import assign

    with session_scope() as session:
        payment = assign(session, item, account, _operator())
        console.print(f"payment {payment.id} recorded for account {account}")


@app.command("allocate")
def allocate() -> None:
    """Apply every account's advance to what it owes now (run after closing a period)."""
    from zhkh.core.db import session_scope
    from zhkh.core.money import format_rubles
    from zhkh.payments.service import apply_advances

    with session_scope() as session:
        applied = apply_advances(session)
    console.print(f"advances applied to debts: {format_rubles(applied)} ₽")


@app.command("remit")
def remit_command(
    day: str = typer.Option(..., "--date", help="the day of the remittance, YYYY-MM-DD", show_default=False),
    out: Path = typer.Option(..., "--out", help="directory for the registries and payment orders", show_default=False),
    collector: str | None = typer.Option(None, "--collector", help="INN of the organisation that collected"),
) -> None:
    """Remit to each supplier what was collected for it: a registry CSV per supplier and one
    1CClientBankExchange file of payment orders for the bank."""
    from zhkh.core.db import session_scope
    from zhkh.core.money import format_rubles
    from zhkh.payments.remittance import remit

    when = date_value(day, "--date")
    out.mkdir(parents=True, exist_ok=True)
    table = Table(title=f"Remittances of {when}")
    for column in ("supplier", "INN", "payments", "amount, ₽", "registry"):
        table.add_column(column)
    with session_scope() as session:
        batch = remit(session, when, collector_inn=collector)
        for item in batch.remittances:
            registry = out / f"remittance-{when}-{item.supplier.inn}.csv"
            registry.write_text(item.registry_csv(), encoding="utf-8")
            table.add_row(
                item.supplier.name,
                item.supplier.inn,
                str(item.remittance.payments),
                format_rubles(item.remittance.amount),
                registry.name,
            )
        if batch.remittances:
            orders = out / f"payment-orders-{when}.txt"
            orders.write_bytes(batch.payment_orders())
    console.print(table)
    if batch.remittances:
        console.print(f"payment orders for the bank: {orders} (total {format_rubles(batch.total)} ₽)")
    else:
        console.print("nothing to remit")


@app.command("reconcile")
def reconcile(
    as_of: str | None = typer.Option(None, "--as-of", help="the day to judge delays on, YYYY-MM-DD (today)"),
) -> None:
    """Per supplier: collected, remitted, outstanding; money held past the next working day is flagged."""
    from zhkh.core.db import session_scope
    from zhkh.core.money import format_rubles
    from zhkh.payments.remittance import reconciliation

    table = Table(title="Reconciliation with suppliers")
    for column in ("supplier", "INN", "collected, ₽", "remitted, ₽", "outstanding, ₽", "held since", "flag"):
        table.add_column(column)
    with session_scope() as session:
        report = reconciliation(session, date_value(as_of, "--as-of") if as_of else None)
    for row in report:
        table.add_row(
            row.name,
            row.inn,
            format_rubles(row.collected),
            format_rubles(row.remitted),
            format_rubles(row.outstanding),
            str(row.oldest_unremitted or ""),
            "HELD TOO LONG" if row.held_too_long else "",
        )
    console.print(table)
