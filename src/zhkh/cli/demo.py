"""``zhkh demo``: the demo town in the embedded database."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table
from rich.text import Text

from zhkh.cli.output import bold, console
from zhkh.core.errors import InvalidInput

if TYPE_CHECKING:
    from zhkh.demo.billing import BillingReport
    from zhkh.demo.ledger import LedgerReport
    from zhkh.demo.metering import MeteringReport
    from zhkh.demo.payments import PaymentsReport
    from zhkh.demo.run import DemoReport


def demo(
    reset: bool = typer.Option(False, "--reset", help="drop everything and build the town again"),
    yes: bool = typer.Option(False, "--yes", help="confirm --reset on a database that is not the embedded SQLite"),
    bills: Path = typer.Option(Path("var/demo-bills"), "--bills", help="where the demo's bills (PDF) are written"),
    ledger: Path = typer.Option(
        Path("var/demo-ledger"), "--ledger", help="the demo ledger's witnesses, exported log and proofs"
    ),
) -> None:
    """Build a small demo town (3 buildings, ~200 premises with owners and residents). Safe to run again."""
    from zhkh.core.db import get_engine
    from zhkh.demo.run import run_demo  # the whole product: only for the demo

    engine = get_engine()
    if reset and engine.dialect.name != "sqlite" and not yes:
        raise InvalidInput(
            f"--reset drops every table of {engine.url.render_as_string(hide_password=True)}; add --yes if you mean it"
        )
    console.print(Text.assemble(bold("zhkh demo"), f" on {engine.url.render_as_string(hide_password=True)}"))
    report = run_demo(engine, reset=reset, bills_dir=bills, ledger_dir=ledger)
    _print(report)


def _print(report: DemoReport) -> None:
    console.rule("Imports")
    for summary in report.imports:
        console.print("  " + summary.describe())

    organisations = Table("Organisation", "Role", "INN", title="Organisations")
    for name, role, inn in report.organisations:
        organisations.add_row(name, role, inn)
    console.print(organisations)

    buildings = Table(
        "Building", "Address", "Premises", "Accounts", "Residents", "Owners", "Area, m²", title="Buildings"
    )
    for b in report.buildings:
        street = b.address.split(", ", 1)[-1]  # the town is the same for all
        buildings.add_row(b.code, street, str(b.premises), str(b.accounts), str(b.residents), str(b.owners), b.area_m2)
    buildings.add_row(
        "total",
        "",
        str(sum(b.premises for b in report.buildings)),
        str(sum(b.accounts for b in report.buildings)),
        str(sum(b.residents for b in report.buildings)),
        "",  # an owner of flats in two buildings would be counted twice
        str(sum((Decimal(b.area_m2) for b in report.buildings if b.area_m2), Decimal(0))),
        style="bold",
    )
    console.print(buildings)
    _print_metering(report.metering)
    _print_billing(report.billing)
    _print_payments(report.payments)
    _print_ledger(report.ledger)
    console.print(
        "Next: zhkh token create --name me --scope housing:read, then zhkh serve and open http://127.0.0.1:8000/docs"
    )


def _print_metering(report: MeteringReport) -> None:
    console.rule("Meters and readings")
    console.print("  " + report.meters)
    counts = report.readings.counts()
    reasons = report.readings.rejected_by_reason()
    console.print(
        f"  residents' and operators' readings: {counts.get('accepted', 0)} accepted, "
        f"{counts.get('duplicate', 0)} duplicate, {counts.get('rejected', 0)} rejected"
        + (f" ({', '.join(f'{k}: {v}' for k, v in sorted(reasons.items()))})" if reasons else "")
    )
    console.print(f"  device messages over {report.transport}:")
    for fmt, count in sorted(report.messages.items()):
        console.print(f"    {fmt}: {count} message(s) sent, {report.stored.get(fmt, 0)} reading(s) stored")
    console.print(f"  dead letters (unreadable messages kept for inspection): {report.dead_letters}")
    table = Table("Period", "By reading", "Interpolated", "Missing (billing estimates)", title="Consumption")
    for period, by in report.consumption.items():
        table.add_row(period, str(by.get("reading", 0)), str(by.get("interpolated", 0)), str(by.get("missing", 0)))
    console.print(table)
    console.print("  open alarms:")
    for alarm in report.alarms or ["none"]:
        console.print(f"    {alarm}")
    notifications = report.notifications.get("notifications", {})
    delivered = report.notifications.get("outbox", {})
    console.print(
        f"  worker: {delivered.get('delivered', 0)} outbox messages handled; e-mail/SMS sent "
        f"{notifications.get('sent', 0)}, waiting {notifications.get('retry', 0)} "
        "(set ZHKH_SMTP_HOST / ZHKH_SMS_GATEWAY_URL to send them)"
    )
    for channel, by_status in sorted(report.deliveries.items()):
        states = ", ".join(f"{status} {count}" for status, count in sorted(by_status.items()))
        console.print(f"    notifications by {channel}: {states}")


def _print_billing(report: BillingReport) -> None:
    from zhkh.core.money import format_rubles

    console.rule("Billing (ПП 354)")
    periods = Table("Period", "Status", "Accounts", "Lines", "Total, ₽", title="Billing periods")
    for period, status, accounts, lines, total in report.periods:
        periods.add_row(period, status, str(accounts), str(lines), format_rubles(total))
    console.print(periods)
    last = report.periods[-1][0] if report.periods else ""
    suppliers = Table("Supplier", "Total, ₽", title=f"Owed to each supplier for {last}")
    for name, amount in report.by_supplier:
        suppliers.add_row(name, format_rubles(amount))
    console.print(suppliers)
    console.print(
        f"  a benefit granted late recalculated the closed months: {report.recalculations} recalculation lines"
        + (f"; {report.problems} problems (zhkh billing problems --period {last})" if report.problems else "")
    )
    account = report.explained_account
    console.print(f"  account {account}, {last} (zhkh billing explain {account} --period {last}):")
    for sentence in report.explanation:
        console.print(f"    {sentence}")


def _print_payments(report: PaymentsReport) -> None:
    from zhkh.core.money import format_rubles

    console.rule("Payments, penalties, remittances, bills")
    for line in report.registries:
        console.print(f"  agent registry {line}")
    console.print(f"  cash desk: {report.cash} payments")
    console.print(f"  bank {report.statement}; waiting for review: {report.unmatched} (zhkh payments unmatched)")
    for month, amount in report.penalties:
        console.print(f"  penalties charged for {month}: {format_rubles(amount)} ₽")
    console.print(f"  advances applied to new bills: {format_rubles(report.advances_applied)} ₽")
    remitted = Table("Supplier", "INN", "Remitted, ₽", title="Remittances (zhkh payments reconcile)")
    for name, inn, amount in report.remittances:
        remitted.add_row(name, inn, format_rubles(amount))
    console.print(remitted)
    for line in report.held:
        console.print(f"  held too long: {line}")
    console.print(f"  {report.bills} bills (ЕПД, PDF with the payment QR code) in {report.bills_dir}/")
    statement = Table(
        "Period", "Service", "Opening", "Accrued", "Paid", "Penalty", "Closing",
        title=f"Statement of account {report.statement_account} (zhkh account statement {report.statement_account})",
    )  # fmt: skip
    for row in report.statement_rows:
        text = row.as_text()
        statement.add_row(
            text["period"], text["service"], text["opening"], text["accrued"], text["paid"], text["penalty"],
            text["closing"],
        )  # fmt: skip
    console.print(statement)


def _print_ledger(report: LedgerReport) -> None:
    console.rule("Transparent ledger")
    console.print(f"  log {report.origin}, verifier key {report.log_key}")
    for key in report.witness_keys:
        console.print(f"  witness {key}")
    console.print(
        f"  {report.appended} money facts appended; published checkpoint: {report.size} entries"
        + (f", cosigned now by {', '.join(report.cosigners)}" if report.cosigners else "")
    )
    console.print(f"  exported to {report.export_dir}/ ({report.exported} files new or changed)")
    console.print(f"  verified from the exported tiles: {report.verified}")
    console.print(f"  resident {report.proof_account}'s proofs (zhkh ledger verify-proof FILE --log-key ...):")
    for line in report.proofs or ["none"]:
        console.print(f"    {line}")
    witnesses = " ".join(f"--witness {key}" for key in report.witness_keys)
    console.print(
        f"  check it yourself: zhkh ledger verify --url {report.export_dir} --log-key {report.log_key} "
        f"{witnesses} --quorum 2"
    )
