"""Handing collected money on to suppliers, and the report that shows nothing is held back.

Everything allocated to a supplier's receivables since its last remittance is remitted at once:
a ``remittance`` transaction in the books (remitted +, collection −), a ``Remittance`` row that
remembers the last allocation posting it covers, a registry of the payments it is made of (CSV)
and a payment order for the bank (1CClientBankExchange).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from zhkh.core.bulk import copy_rows
from zhkh.core.clock import utc_now
from zhkh.core.errors import InvalidInput, NotFound
from zhkh.core.money import format_rubles
from zhkh.core.outbox import emit
from zhkh.finance import balances
from zhkh.finance import service as books
from zhkh.finance.models import Book, FinanceTransaction, Posting, TransactionKind
from zhkh.housing.models import Account, Organisation, OrganisationRole
from zhkh.payments.bankfiles import Party, PaymentOrder, write_payment_orders
from zhkh.payments.models import Remittance, RemittedPosting
from zhkh.payments.workdays import next_working_day

REMITTANCE_LOCK = 0x7A686B6801  # an arbitrary constant: the advisory lock taken by remit()
REGISTRY_COLUMNS = ("account", "paid_on", "period", "service", "component", "amount")


@dataclass
class SupplierRemittance:
    supplier: Organisation
    remittance: Remittance
    items: list[dict[str, str]] = field(default_factory=list)

    def registry_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, REGISTRY_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.items)
        return buffer.getvalue()


@dataclass
class RemittanceBatch:
    day: date
    collector: Organisation
    remittances: list[SupplierRemittance]

    @property
    def total(self) -> int:
        return sum(r.remittance.amount for r in self.remittances)

    def payment_orders(self, first_number: int = 1) -> bytes:
        """One payment order per supplier from the collection account, for upload to the bank."""
        payer = _party(self.collector)
        orders = [
            PaymentOrder(
                number=str(first_number + index),
                date=self.day,
                amount_kopecks=item.remittance.amount,
                payer=payer,
                payee=_party(item.supplier),
                purpose=(
                    f"Перечисление платежей за ЖКУ, собранных за период по {self.day:%d.%m.%Y}, "
                    f"реестр № {item.remittance.id}, {item.remittance.payments} платежей. Без НДС"
                ),
            )
            for index, item in enumerate(self.remittances)
        ]
        return write_payment_orders(
            orders,
            sender="zhkh",
            account=payer.account,
            date_from=self.day,
            date_to=self.day,
            created_at=datetime.combine(self.day, datetime.min.time()),
        )


def remit(session: Session, day: date, *, collector_inn: str | None = None) -> RemittanceBatch:
    """Remit to every supplier what was allocated to it and not yet remitted."""
    _one_remittance_at_a_time(session)
    collector = _collector(session, collector_inn)
    pending = _pending(session)
    suppliers = {o.id: o for o in session.scalars(select(Organisation).where(Organisation.id.in_(pending)))}
    done = []
    for supplier_id, items in sorted(pending.items()):
        amount = -sum(amount for *_rest, amount in items)
        if amount <= 0:
            continue
        done.append(_remit_one(session, day, suppliers[supplier_id], items, amount))
    return RemittanceBatch(day, collector, done)


def _one_remittance_at_a_time(session: Session) -> None:
    """Two remittances at once would both pay what neither has recorded yet (PostgreSQL: a
    transaction-scoped advisory lock; SQLite has a single writer)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(REMITTANCE_LOCK)))


def _collector(session: Session, inn: str | None) -> Organisation:
    """Whose bank account the money was collected on: the given INN or the only manager."""
    if inn:
        found = session.scalar(select(Organisation).where(Organisation.inn == inn))
        if found is None:
            raise NotFound(f"no organisation with INN {inn}")
        return found
    managers = list(session.scalars(select(Organisation).where(Organisation.role == OrganisationRole.MANAGER)))
    if len(managers) != 1:
        raise InvalidInput(
            f"{len(managers)} managing organisations are registered; say which one collected with --collector INN"
        )
    return managers[0]


Item = tuple[int, int, date, date, str, str, int]  # posting id, account id, paid on, period, service, component, amount


def _unremitted(*columns: Any) -> Any:
    """Allocation postings (money collected for a supplier) that no remittance covers yet."""
    return (
        select(*columns)
        .join(FinanceTransaction, FinanceTransaction.id == Posting.transaction_id)
        .outerjoin(RemittedPosting, RemittedPosting.posting_id == Posting.id)
        .where(
            FinanceTransaction.kind == TransactionKind.ALLOCATION,
            Posting.book == Book.RECEIVABLE,
            RemittedPosting.posting_id.is_(None),
        )
    )


def _pending(session: Session) -> dict[int, list[Item]]:
    rows: Iterable[Any] = session.execute(
        _unremitted(
            Posting.supplier_id,
            Posting.id,
            Posting.account_id,
            FinanceTransaction.occurred_on,
            Posting.period,
            Posting.service,
            Posting.component,
            Posting.amount,
        ).order_by(Posting.supplier_id, Posting.id)
    )
    pending: dict[int, list[Item]] = defaultdict(list)
    for supplier_id, *item in rows:
        pending[supplier_id].append(tuple(item))
    return pending


def _remit_one(
    session: Session, day: date, supplier: Organisation, items: Sequence[Item], amount: int
) -> SupplierRemittance:
    transaction_id = books.record(
        session,
        TransactionKind.REMITTANCE,
        day,
        "remittance",
        None,
        f"remittance to {supplier.name} (INN {supplier.inn})",
        [books.Entry(Book.REMITTED, amount, supplier_id=supplier.id), books.Entry(Book.COLLECTION, -amount)],
    )
    remittance = Remittance(
        supplier_id=supplier.id, remitted_on=day, amount=amount, payments=len(items), transaction_id=transaction_id
    )
    session.add(remittance)
    session.flush()
    covered = [(item[0], remittance.id) for item in items]
    copy_rows(session, cast(Table, RemittedPosting.__table__), ("posting_id", "remittance_id"), covered)
    emit(
        session,
        "payments.remitted",
        {
            "remittance_id": remittance.id,
            "transaction_id": transaction_id,
            "supplier_id": supplier.id,
            "amount": amount,
            "remitted_on": day.isoformat(),
        },
    )
    numbers = dict(
        session.execute(select(Account.id, Account.number).where(Account.id.in_({item[1] for item in items}))).all()
    )
    registry = [
        {
            "account": numbers[account_id],
            "paid_on": paid_on.isoformat(),
            "period": f"{period:%Y-%m}",
            "service": service,
            "component": str(component),
            "amount": format_rubles(-value),
        }
        for _posting, account_id, paid_on, period, service, component, value in items
    ]
    return SupplierRemittance(supplier, remittance, registry)


def _party(organisation: Organisation) -> Party:
    return Party(
        name=organisation.name,
        inn=organisation.inn,
        kpp=organisation.kpp or "",
        account=organisation.bank_account or "",
        bic=organisation.bic or "",
        corr_account=organisation.corr_account or "",
        bank=organisation.bank_name or "",
    )


# --- reconciliation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SupplierReconciliation:
    supplier_id: int
    inn: str
    name: str
    collected: int
    remitted: int
    oldest_unremitted: date | None  # the day the oldest money not yet remitted was paid
    held_too_long: bool  # kept past the next working day after it was collected

    @property
    def outstanding(self) -> int:
        return self.collected - self.remitted


def reconciliation(session: Session, as_of: date | None = None) -> list[SupplierReconciliation]:
    """Per supplier: collected, remitted, outstanding, and whether money is held too long."""
    today = as_of or utc_now().date()
    positions = balances.supplier_positions(session)
    oldest = _oldest_unremitted(session)
    organisations = {o.id: o for o in session.scalars(select(Organisation).where(Organisation.id.in_(positions)))}
    report = []
    for supplier_id, position in positions.items():
        first = oldest.get(supplier_id)
        organisation = organisations[supplier_id]
        report.append(
            SupplierReconciliation(
                supplier_id,
                organisation.inn,
                organisation.name,
                position.collected,
                position.remitted,
                first,
                first is not None and next_working_day(first) < today,
            )
        )
    return report


def _oldest_unremitted(session: Session) -> dict[int, date]:
    rows: Iterable[Any] = session.execute(
        _unremitted(Posting.supplier_id, func.min(FinanceTransaction.occurred_on)).group_by(Posting.supplier_id)
    )
    return {row[0]: row[1] for row in rows}  # (a Result is not a mapping to dict())
