"""The demo town pays its bills, through the same intake paths banks and agents use: most pay on
time through a payment agent's registry, some partly, some late (so penalties appear), some pay
at the cash desk, and a bank statement brings one payment nobody can match. Then penalties are
charged, advances applied, collected money remitted to suppliers, and the bills rendered."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from zhkh.billing.bills import bill_documents, issue_ledger_keys
from zhkh.billing.epd import render_bills_to_directory
from zhkh.billing.models import AccrualLine, BillingPeriod, PeriodStatus
from zhkh.core.clock import utc_now
from zhkh.core.config import get_settings
from zhkh.core.db import session_scope
from zhkh.core.errors import Conflict
from zhkh.core.money import format_rubles
from zhkh.core.periods import Period, payment_due_date
from zhkh.demo.town import MANAGER_INN
from zhkh.housing.models import Account, Organisation
from zhkh.payments.intake import import_agent_registry, import_bank_statement, record_cash
from zhkh.payments.models import Payment
from zhkh.payments.penalties import charge_penalties
from zhkh.payments.remittance import RemittanceBatch, reconciliation, remit
from zhkh.payments.service import apply_advances
from zhkh.payments.statement import StatementRow, account_statement
from zhkh.payments.workdays import next_working_day

BILLS_DIR = Path("var/demo-bills")


@dataclass
class PaymentsReport:
    registries: list[str] = field(default_factory=list)  # one line per registry
    statement: str = ""
    cash: int = 0
    unmatched: int = 0
    penalties: list[tuple[str, int]] = field(default_factory=list)  # month, kopecks
    advances_applied: int = 0
    remittances: list[tuple[str, str, int]] = field(default_factory=list)  # supplier, INN, kopecks
    held: list[str] = field(default_factory=list)
    bills: int = 0
    bills_dir: str = ""
    statement_account: str = ""
    statement_rows: list[StatementRow] = field(default_factory=list)


def run_payments_demo(engine: Engine, bills_dir: Path = BILLS_DIR) -> PaymentsReport:
    report = PaymentsReport()
    with session_scope(engine) as session:
        closed = [
            Period.of(p)
            for p in session.scalars(
                select(BillingPeriod.period)
                .where(BillingPeriod.status == PeriodStatus.CLOSED)
                .order_by(BillingPeriod.period)
            )
        ]
        bills = _bill_totals(session, closed)
    for period in closed:
        with session_scope(engine) as session:
            _pay(session, period, bills[period], report)
    with session_scope(engine) as session:
        _bank_statement(session, closed[-1], report)
    for month in _finished_months(closed):
        with session_scope(engine) as session:
            try:
                run = charge_penalties(session, month)
            except Conflict:
                continue  # the demo ran before: this month is charged already
            report.penalties.append((str(month), run.total))
    with session_scope(engine) as session:
        report.advances_applied = apply_advances(session)
        day = next_working_day(session.scalar(select(func.max(Payment.paid_on))) or utc_now().date())
        _remit(remit(session, day), report)
        report.held = [
            f"{r.name}: {format_rubles(r.outstanding)} ₽" for r in reconciliation(session, day) if r.held_too_long
        ]
    with session_scope(engine) as session:
        issue_ledger_keys(session, closed[-1])
    with session_scope(engine) as session:
        report.bills = len(
            render_bills_to_directory(
                bill_documents(session, closed[-1], ledger_url=get_settings().ledger_url), bills_dir, jobs=2
            )
        )
        report.bills_dir = str(bills_dir)
        report.statement_account = min(bills[closed[-1]])
        report.statement_rows = account_statement(
            session, report.statement_account, closed[-3] if len(closed) > 2 else None
        )
    return report


def _bill_totals(session: Session, periods: list[Period]) -> dict[Period, dict[str, int]]:
    """Each account's total of each period's bill, by account number."""
    totals: dict[Period, dict[str, int]] = {}
    for period in periods:
        rows = session.execute(
            select(Account.number, func.sum(AccrualLine.amount))
            .join(Account, Account.id == AccrualLine.account_id)
            .where(AccrualLine.period == period.first_day)
            .group_by(Account.number)
        )
        totals[period] = {number: int(amount) for number, amount in rows}
    return totals


def _pay(session: Session, period: Period, bills: dict[str, int], report: PaymentsReport) -> None:
    """Account by account, a habit: every 7th never pays, every 5th pays half, every 6th pays a
    five weeks late; every 11th pays at the cash desk; the rest pay on time via the agent."""
    due = payment_due_date(period)
    lines, cash = [], []
    for index, (account, amount) in enumerate(sorted(bills.items())):
        if amount <= 0 or index % 7 == 0:
            continue
        paid_on, paid = due - timedelta(days=5), amount
        if index % 5 == 0:
            paid = amount // 2
        elif index % 6 == 0:
            paid_on = due + timedelta(days=35)
        if index % 11 == 0:
            cash.append((account, paid, paid_on))
            continue
        operation = f"PB-{period}-{index:05d}"
        lines.append(f"{operation};{paid_on:%d.%m.%Y};{account};{period.month:02d}{period.year};{format_rubles(paid)}")
    total = sum(int(line.rsplit(";", 1)[1].replace(".", "")) for line in lines)
    text = "\n".join(
        [f"# Реестр платежей ПАО «Почта Банк» за {period}", *lines, f"={len(lines)};{format_rubles(total)}"]
    )
    intake = import_agent_registry(session, text.encode("cp1251"), f"pochta-{period}.txt", recorded_by="demo")
    report.registries.append(f"pochta-{period}.txt: {intake.payments_in_file} payments, {format_rubles(total)} ₽")
    for account, paid, paid_on in cash:
        report.cash += len(
            record_cash(session, account, paid, paid_on, f"КО-{period}-{account}", operator="demo").recorded
        )


def _bank_statement(session: Session, period: Period, report: PaymentsReport) -> None:
    """A statement of the manager's account with a resident's transfer and one with no account."""
    manager = session.scalars(select(Organisation).where(Organisation.inn == MANAGER_INN)).one()
    account = session.scalars(select(Account.number).order_by(Account.number)).first()
    day = payment_due_date(period) - timedelta(days=3)
    documents = [
        _document(
            1,
            day,
            "1500.00",
            f"Оплата ЖКУ ЛС {account} за {period.month:02d}.{period.year}",
            manager.bank_account or "",
        ),
        _document(2, day, "777.00", "Оплата за квартиру", manager.bank_account or "", payer="Неизвестный Плательщик"),
    ]
    text = "\r\n".join([
        "1CClientBankExchange", "ВерсияФормата=1.03", "Кодировка=Windows", f"РасчСчет={manager.bank_account}",
        "СекцияРасчСчет", f"РасчСчет={manager.bank_account}", "НачальныйОстаток=0.00", "ВсегоПоступило=2277.00",
        "ВсегоСписано=0.00", "КонечныйОстаток=2277.00", "КонецРасчСчет", *documents, "КонецФайла",
    ])  # fmt: skip
    intake = import_bank_statement(session, text.encode("cp1251"), f"statement-{period}.txt", recorded_by="demo")
    report.statement = (
        f"statement-{period}.txt: {intake.payments_in_file} payments, {len(intake.result.recorded)} matched,"
        f" {intake.result.duplicates} already imported"
    )
    report.unmatched = intake.result.queued


def _document(number: int, day: date, amount: str, purpose: str, payee: str, payer: str = "Жилец") -> str:
    return "\r\n".join([
        "СекцияДокумент=Платежное поручение", f"Номер={number}", f"Дата={day:%d.%m.%Y}", f"Сумма={amount}",
        f"ПлательщикСчет=4081781000000000{number:04d}", f"Плательщик={payer}", "ПлательщикБИК=044525225",
        f"ПолучательСчет={payee}", f"ДатаСписано={day:%d.%m.%Y}", f"НазначениеПлатежа={purpose}", "КонецДокумента",
    ])  # fmt: skip


def _finished_months(closed: list[Period]) -> list[Period]:
    """Months whose penalties can be charged: from the second closed period up to the last."""
    months, month = [], closed[0].next()
    while month <= closed[-1]:
        months.append(month)
        month = month.next()
    return months


def _remit(batch: RemittanceBatch, report: PaymentsReport) -> None:
    for item in batch.remittances:
        report.remittances.append((item.supplier.name, item.supplier.inn, item.remittance.amount))
