"""Payments into the books: every intake path ends in ``take_in``, which stores each payment once
(idempotent by source and external id), records it in the books, queues what it cannot match
and allocates the rest to debts, all set-based and in the caller's transaction."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from zhkh.core.bulk import bulk_insert, copy_rows, reserve_ids
from zhkh.core.clock import utc_now
from zhkh.core.db import lookup_chunk, one_of
from zhkh.core.errors import Conflict, InvalidInput, NotFound
from zhkh.core.money import format_rubles
from zhkh.core.outbox import OutboxMessage
from zhkh.core.periods import Period
from zhkh.finance import balances
from zhkh.finance import service as books
from zhkh.finance.models import Book, FinanceTransaction, TransactionKind
from zhkh.housing.models import Account
from zhkh.payments import set_allocation
from zhkh.payments.allocation import Allocation, Debt, DebtKey, allocate_payment
from zhkh.payments.models import Payment, PaymentSource, ReviewState, UnmatchedPayment

CHUNK = 5000  # accounts allocated together: their debts are held in memory


TRANSACTION_COLUMNS = ("id", "kind", "occurred_on", "source", "source_id", "description", "recorded_at")


@dataclass(frozen=True, slots=True)
class Incoming:
    """A payment as an intake path read it. ``account`` is the personal account number, or
    None when the intake could not find one (then ``unmatched_reason`` says why)."""

    external_id: str
    amount: int
    paid_on: date
    account: str | None
    period: date | None = None
    services: tuple[str, ...] = ()
    payer: str = ""
    payer_inn: str = ""
    purpose: str = ""
    unmatched_reason: str = ""


@dataclass
class IntakeResult:
    recorded: list[int] = field(default_factory=list)  # new payment ids
    duplicates: int = 0
    queued: int = 0  # unmatched, waiting for review
    amount: int = 0  # kopecks of the new payments and queued money

    def counts(self) -> dict[str, int]:
        return {"recorded": len(self.recorded), "duplicates": self.duplicates, "queued": self.queued}


def take_in(
    session: Session,
    source: PaymentSource,
    incoming: Sequence[Incoming],
    *,
    intake_id: int | None = None,
    recorded_by: str = "",
) -> IntakeResult:
    """Record ``incoming`` payments of one source. A payment already stored under the same
    external id is a duplicate and adds nothing; the same id with another amount refuses the
    whole batch (``Conflict``), since one of the two is wrong and a person must say which."""
    result = IntakeResult()
    fresh = _without_duplicates(session, source, incoming, result)
    accounts = account_ids(session, {p.account for p in fresh if p.account})
    matched = [p for p in fresh if p.account in accounts]
    unmatched = [_with_reason(p) for p in fresh if p.account not in accounts]
    payment_ids = _record_matched(session, source, matched, accounts, intake_id, recorded_by)
    _record_unmatched(session, source, unmatched, intake_id)
    result.recorded = payment_ids
    result.queued = len(unmatched)
    result.amount = sum(p.amount for p in fresh)
    allocate_payments(session, payment_ids)
    return result


def _without_duplicates(
    session: Session, source: PaymentSource, incoming: Sequence[Incoming], result: IntakeResult
) -> list[Incoming]:
    seen: dict[str, int] = {}
    fresh: list[Incoming] = []
    for payment in incoming:
        if payment.amount <= 0:
            raise InvalidInput(f"payment {payment.external_id}: amount must be positive, got {payment.amount}")
        earlier = seen.get(payment.external_id)
        if earlier is None:
            seen[payment.external_id] = payment.amount
            fresh.append(payment)
        elif earlier != payment.amount:
            raise _conflict(source, payment, earlier)
        else:
            result.duplicates += 1
    stored = _stored_amounts(session, source, list(seen))
    kept = []
    for payment in fresh:
        amount = stored.get(payment.external_id)
        if amount is None:
            kept.append(payment)
        elif amount != payment.amount:
            raise _conflict(source, payment, amount)
        else:
            result.duplicates += 1
    return kept


def _conflict(source: PaymentSource, payment: Incoming, earlier: int) -> Conflict:
    return Conflict(
        f"{source.value} payment {payment.external_id!r} is already recorded with {format_rubles(earlier)}"
        f" rubles, now it comes with {format_rubles(payment.amount)}; nothing was imported"
    )


def _stored_amounts(session: Session, source: PaymentSource, external_ids: list[str]) -> dict[str, int]:
    stored: dict[str, int] = {}
    size = lookup_chunk(session)
    for start in range(0, len(external_ids), size):
        chunk = external_ids[start : start + size]
        for model in (Payment, UnmatchedPayment):
            query = select(model.external_id, model.amount).where(
                model.source == source, one_of(model.external_id, chunk, session)
            )
            stored.update((external_id, amount) for external_id, amount in session.execute(query))
    return stored


def account_ids(session: Session, numbers: Collection[str | None]) -> dict[str | None, int]:
    """The ids of the accounts with these numbers; numbers not in the registry are left out."""
    found: dict[str | None, int] = {}
    wanted = [n for n in numbers if n]
    size = lookup_chunk(session)
    for start in range(0, len(wanted), size):
        chunk = wanted[start : start + size]
        query = select(Account.number, Account.id).where(one_of(Account.number, chunk, session))
        found.update((number, account_id) for number, account_id in session.execute(query))
    return found


def _with_reason(payment: Incoming) -> Incoming:
    if payment.unmatched_reason:
        return payment
    reason = f"account {payment.account} is not in the registry" if payment.account else "no personal account"
    return Incoming(**{**_fields(payment), "unmatched_reason": reason})


def _fields(payment: Incoming) -> dict[str, Any]:
    return {name: getattr(payment, name) for name in Incoming.__slots__}


def _transactions_table() -> Table:
    return cast(Table, FinanceTransaction.__table__)


PAYMENT_COLUMNS = (
    "id",
    "source",
    "external_id",
    "account_id",
    "amount",
    "paid_on",
    "period",
    "services",
    "payer",
    "purpose",
    "intake_id",
    "recorded_by",
    "transaction_id",
    "recorded_at",
)
COLLECTION, ADVANCE, RECEIVABLE = Book.COLLECTION.value, Book.ADVANCE.value, Book.RECEIVABLE.value


def _record_matched(
    session: Session,
    source: PaymentSource,
    payments: Sequence[Incoming],
    accounts: dict[str | None, int],
    intake_id: int | None,
    recorded_by: str,
) -> list[int]:
    """Each payment: a ``payment`` transaction (collection +, the account's advance −) and its
    row, all by COPY with ids reserved up front; one outbox message for the batch."""
    if not payments:
        return []
    now = utc_now()
    payment_ids = reserve_ids(session, cast(Table, Payment.__table__), len(payments))
    transaction_ids = reserve_ids(session, _transactions_table(), len(payments))
    transactions: list[tuple[Any, ...]] = []
    postings: list[tuple[Any, ...]] = []
    rows: list[tuple[Any, ...]] = []
    for payment, payment_id, transaction_id in zip(payments, payment_ids, transaction_ids, strict=True):
        account_id = accounts[payment.account]
        description = f"payment {source.value} {payment.external_id}"
        transactions.append(
            (transaction_id, TransactionKind.PAYMENT.value, payment.paid_on, "payment", payment_id, description, now)
        )
        postings.append((transaction_id, COLLECTION, None, None, None, None, None, payment.amount))
        postings.append((transaction_id, ADVANCE, account_id, None, None, None, None, -payment.amount))
        rows.append(
            (
                payment_id,
                source.value,
                payment.external_id,
                account_id,
                payment.amount,
                payment.paid_on,
                payment.period,
                list(payment.services) or None,
                payment.payer,
                payment.purpose,
                intake_id,
                recorded_by,
                transaction_id,
                now,
            )
        )
    copy_rows(session, _transactions_table(), TRANSACTION_COLUMNS, transactions)
    books.write_entries(session, postings)
    copy_rows(session, cast(Table, Payment.__table__), PAYMENT_COLUMNS, rows)
    announce(session, "payments.received", {"payment_ids": payment_ids, "transaction_ids": transaction_ids})
    return payment_ids


def announce(session: Session, topic: str, payload: dict[str, Any]) -> None:
    """One outbox message for a batch of money facts: it names the transactions, and the books
    hold the facts (accounts, services, suppliers, periods, amounts). A message per fact would
    cost as much as the fact itself at a million payments."""
    now = utc_now()
    bulk_insert(session, cast(Table, OutboxMessage.__table__), [_message(topic, payload, now)])


def _message(topic: str, payload: dict[str, Any], moment: Any) -> dict[str, Any]:
    return {"topic": topic, "payload": payload, "created_at": moment, "available_at": moment, "attempts": 0}


def _record_unmatched(
    session: Session, source: PaymentSource, payments: Sequence[Incoming], intake_id: int | None
) -> None:
    """Money nobody could match: in the books as ``unidentified`` until an operator assigns it;
    a queue row with the reason; an outbox message (the money arrived, whoever it is from)."""
    if not payments:
        return
    now = utc_now()
    item_ids = reserve_ids(session, cast(Table, UnmatchedPayment.__table__), len(payments))
    transaction_ids = reserve_ids(session, _transactions_table(), len(payments))
    transactions, postings, rows = [], [], []
    for payment, item_id, transaction_id in zip(payments, item_ids, transaction_ids, strict=True):
        description = f"unidentified payment {source.value} {payment.external_id}: {payment.unmatched_reason}"
        transactions.append(
            (
                transaction_id,
                TransactionKind.PAYMENT.value,
                payment.paid_on,
                "unmatched_payment",
                item_id,
                description,
                now,
            )
        )
        postings.append(books.Entry(Book.COLLECTION, payment.amount).row(transaction_id))
        postings.append(books.Entry(Book.UNIDENTIFIED, -payment.amount).row(transaction_id))
        rows.append(
            {
                "id": item_id,
                "source": source.value,
                "external_id": payment.external_id,
                "amount": payment.amount,
                "paid_on": payment.paid_on,
                "payer": payment.payer,
                "payer_inn": payment.payer_inn,
                "purpose": payment.purpose,
                "period": payment.period,
                "services": list(payment.services) or None,
                "reason": payment.unmatched_reason,
                "intake_id": intake_id,
                "transaction_id": transaction_id,
                "state": ReviewState.WAITING.value,
                "recorded_at": now,
            }
        )
    copy_rows(session, _transactions_table(), TRANSACTION_COLUMNS, transactions)
    books.write_entries(session, postings)
    bulk_insert(session, cast(Table, UnmatchedPayment.__table__), rows)
    announce(session, "payments.unidentified", {"unmatched_ids": item_ids, "transaction_ids": transaction_ids})


def assign(session: Session, unmatched_id: int, account_number: str, operator: str) -> Payment:
    """An operator says whose money a queued payment is: it becomes that account's payment,
    moves from ``unidentified`` to the account's advance, and is allocated."""
    item = session.get(UnmatchedPayment, unmatched_id, with_for_update=True)
    if item is None:
        raise NotFound(f"no unmatched payment {unmatched_id}")
    if item.state is not ReviewState.WAITING:
        raise Conflict(f"unmatched payment {unmatched_id} was already assigned (payment {item.payment_id})")
    account_id = account_ids(session, [account_number]).get(account_number)
    if account_id is None:
        raise NotFound(f"account {account_number} is not in the registry")
    transaction_id = books.record(
        session,
        TransactionKind.PAYMENT,
        item.paid_on,
        "unmatched_payment",
        item.id,
        f"unidentified payment {item.external_id} assigned to account {account_number} by {operator}",
        [
            books.Entry(Book.UNIDENTIFIED, item.amount),
            books.Entry(Book.ADVANCE, -item.amount, account_id=account_id),
        ],
    )
    payment = Payment(
        source=item.source,
        external_id=item.external_id,
        account_id=account_id,
        amount=item.amount,
        paid_on=item.paid_on,
        period=item.period,
        services=item.services,
        payer=item.payer,
        purpose=item.purpose,
        intake_id=item.intake_id,
        recorded_by=operator,
        transaction_id=transaction_id,
    )
    session.add(payment)
    session.flush()
    item.state, item.payment_id = ReviewState.ASSIGNED, payment.id
    item.resolved_by, item.resolved_at = operator, utc_now()
    announce(session, "payments.received", {"payment_ids": [payment.id], "transaction_ids": [transaction_id]})
    allocate_payments(session, [payment.id])
    return payment


def on_period_closed(session: Session, _payload: dict[str, Any]) -> None:
    """Outbox handler of ``billing.closed``: advances pay the new bills, for every account at
    once (the accounts with an advance are found by one query)."""
    apply_advances(session)


# --- allocation --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ToAllocate:
    source: str  # "payment" or "advance"
    source_id: int
    account_id: int
    amount: int
    occurred_on: date | None  # None (an advance): see ``_write_allocations``
    period: date | None = None
    services: tuple[str, ...] = ()
    not_before: date = date.min  # an advance: the day its newest money arrived


def allocate_payments(session: Session, payment_ids: Sequence[int]) -> int:
    """Allocate these just-recorded payments to their accounts' debts; returns kopecks applied.
    On PostgreSQL the database does it, set-based (``set_allocation``: the same rules, the same
    postings); on SQLite, ``allocation.allocate_payment`` in Python, a chunk of accounts at a time."""
    if session.get_bind().dialect.name == "postgresql":
        session.flush()  # the set-based statements read the payments from the table
        applied, transaction_ids = set_allocation.allocate_payments(session, payment_ids)
        if transaction_ids:
            announce(session, "payments.allocated", {"transaction_ids": transaction_ids})
        return applied
    return allocate_payments_in_python(session, payment_ids)


def allocate_payments_in_python(session: Session, payment_ids: Sequence[int]) -> int:
    """``allocate_payments`` by ``allocation.allocate_payment``: SQLite's path, and the reference
    the set-based one is tested against."""
    applied = 0
    for start in range(0, len(payment_ids), CHUNK):
        chunk = payment_ids[start : start + CHUNK]
        rows = session.execute(
            select(
                Payment.id, Payment.account_id, Payment.amount, Payment.paid_on, Payment.period, Payment.services
            ).where(one_of(Payment.id, chunk, session))
        )
        items = [
            _ToAllocate("payment", pid, account, amount, paid_on, period, tuple(services or ()))
            for pid, account, amount, paid_on, period, services in rows
        ]
        applied += _allocate(session, sorted(items, key=lambda item: (item.occurred_on or date.min, item.source_id)))
    return applied


def apply_advances(session: Session, account_ids: Collection[int] | None = None) -> int:
    """Apply the advances of these accounts (of every account when None) to what they owe now,
    after new bills; kopecks applied."""
    release_credits(session, account_ids)
    accounts = sorted(balances.advances(session, account_ids))
    applied = 0
    for start in range(0, len(accounts), CHUNK):
        chunk = accounts[start : start + CHUNK]
        _lock_accounts(session, chunk)
        held = balances.advances(session, chunk)  # again, under the lock: another run may have used it
        arrived = balances.advance_arrivals(session, list(held))
        items = [_ToAllocate("advance", a, a, amount, None, not_before=arrived[a]) for a, amount in held.items()]
        applied += _allocate(session, items)
    return applied


def release_credits(session: Session, account_ids: Collection[int] | None = None) -> int:
    """A receivable in credit (a recalculation took back more than was left to pay) becomes the
    account's advance, so it pays other debts and the next bills; kopecks released."""
    credits = balances.credits(session, account_ids)
    entries = [
        entry
        for r in credits
        for entry in (
            books.receivable(r.account_id, r.service, r.supplier_id, r.period, -r.balance, r.component),
            books.Entry(Book.ADVANCE, r.balance, account_id=r.account_id),
        )
    ]
    if entries:
        transaction_id = books.record(
            session, TransactionKind.ALLOCATION, utc_now().date(), "credit", None, "credits become advances", entries
        )
        announce(session, "payments.allocated", {"transaction_ids": [transaction_id]})
    return -sum(r.balance for r in credits)


def _lock_accounts(session: Session, account_ids: Collection[int]) -> None:
    """Allocations of one account run one at a time: each reads the debts and advance it then
    changes (PostgreSQL row locks, in id order against deadlocks; SQLite has a single writer)."""
    if account_ids and session.get_bind().dialect.name == "postgresql":
        session.execute(
            select(Account.id).where(one_of(Account.id, account_ids, session)).order_by(Account.id).with_for_update()
        ).all()


def _allocate(session: Session, items: Sequence[_ToAllocate]) -> int:
    """One ``allocation`` transaction per item that pays something: the account's advance +,
    each receivable it pays −. Debts are loaded once for the chunk and kept current in memory,
    so several payments of one account in a batch see each other."""
    _lock_accounts(session, sorted({item.account_id for item in items}))
    owed = balances.open_receivables(session, {item.account_id for item in items})
    debts: dict[int, dict[DebtKey, Debt]] = {
        account_id: {
            (r.period, r.service, r.supplier_id, r.component.value): Debt(
                r.period, r.service, r.supplier_id, r.component.value, r.balance
            )
            for r in receivables
        }
        for account_id, receivables in owed.items()
    }
    plans = []
    for item in items:
        account_debts = debts.get(item.account_id)
        if not account_debts:
            continue
        allocation = allocate_payment(item.amount, account_debts.values(), period=item.period, services=item.services)
        for debt, amount in allocation.parts:
            account_debts[debt.key] = debt._replace(amount=debt.amount - amount)
        if allocation.parts:
            plans.append((item, allocation))
    _write_allocations(session, plans)
    return sum(allocation.allocated for _item, allocation in plans)


def _write_allocations(session: Session, plans: Sequence[tuple[_ToAllocate, Allocation]]) -> None:
    """One ``allocation`` transaction per plan: the account's advance +, each receivable paid −;
    by COPY of tuples, one outbox message for the batch."""
    if not plans:
        return
    now = utc_now()
    transaction_ids = reserve_ids(session, _transactions_table(), len(plans))
    transactions: list[tuple[Any, ...]] = []
    postings: list[tuple[Any, ...]] = []
    for (item, allocation), transaction_id in zip(plans, transaction_ids, strict=True):
        # An advance pays a debt from the later of the day the debt was billed and the day the
        # money arrived: never before either, which would cut penalties that did accrue.
        occurred_on = item.occurred_on or max(
            item.not_before, *(Period.of(p.debt.period).last_day for p in allocation.parts)
        )
        description = f"allocation of {item.source} {item.source_id}"
        kind = TransactionKind.ALLOCATION.value
        transactions.append((transaction_id, kind, occurred_on, item.source, item.source_id, description, now))
        postings.append((transaction_id, ADVANCE, item.account_id, None, None, None, None, allocation.allocated))
        for part in allocation.parts:
            debt = part.debt
            postings.append(
                (
                    transaction_id,
                    RECEIVABLE,
                    item.account_id,
                    debt.service,
                    debt.supplier_id,
                    debt.period,
                    debt.component,
                    -part.amount,
                )
            )
    copy_rows(session, _transactions_table(), TRANSACTION_COLUMNS, transactions)
    books.write_entries(session, postings)
    announce(session, "payments.allocated", {"transaction_ids": transaction_ids})
