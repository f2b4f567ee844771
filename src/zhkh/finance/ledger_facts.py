"""The books' transactions as facts for the transparent ledger.

Payments, allocations, penalties and remittances are announced in the outbox as batches of
transaction ids (``payments.*`` topics); the books hold the facts. Each transaction becomes one
entry per account it moves, with that account's postings; a transaction of one account carries
its other side too (a payment: collection and the account's advance), so the entry balances. A
transaction of many accounts (a month's penalties) adds one entry of its supplier-side totals,
and one without accounts (a remittance) is one entry. Postings name suppliers by INN, never a
person.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any, cast

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from zhkh.core.db import lookup_chunk, one_of
from zhkh.finance.models import FinanceTransaction, Posting
from zhkh.housing.repository import account_numbers, organisation_inns
from zhkh.ledger.entries import Fact

TOPICS = (
    "payments.received",
    "payments.unidentified",
    "payments.allocated",
    "payments.penalty_charged",
    "payments.remitted",
)


# Rows rather than ORM objects: a million payments are two million postings.
POSTING_COLUMNS = (
    Posting.transaction_id,
    Posting.book,
    Posting.account_id,
    Posting.supplier_id,
    Posting.service,
    Posting.period,
    Posting.component,
    Posting.amount,
)


def transaction_ids(payloads: Sequence[dict[str, Any]]) -> list[int]:
    """The transactions the messages name, in the order they name them."""
    ids: list[int] = []
    for payload in payloads:
        if "transaction_ids" in payload:
            ids.extend(int(i) for i in payload["transaction_ids"])
        else:
            ids.append(int(payload["transaction_id"]))
    return ids


def read_facts(session: Session, payloads: Sequence[dict[str, Any]]) -> list[Fact]:
    """The outbox reader of the ``payments.*`` topics (``ledger.sequencer.FactReader``)."""
    ids = transaction_ids(payloads)
    transactions = _transactions(session, ids)
    missing = [i for i in ids if i not in transactions]
    if missing:
        raise LookupError(f"transactions {missing[:10]} are named in the outbox but are not in the books")
    postings = _postings(session, ids)
    numbers, inns = _names(session, [p for rows in postings.values() for p in rows])
    facts: list[Fact] = []
    for transaction_id in ids:
        kind, occurred_on = transactions[transaction_id]
        facts.extend(_facts_of(transaction_id, kind, occurred_on, postings[transaction_id], numbers, inns))
    return facts


def _facts_of(
    transaction_id: int,
    kind: str,
    occurred_on: date,
    postings: list[Row[Any]],
    numbers: dict[int, str],
    inns: dict[int, str],
) -> list[Fact]:
    by_account: dict[int | None, list[Row[Any]]] = defaultdict(list)
    for posting in postings:
        by_account[posting.account_id].append(posting)
    accounts = [a for a in by_account if a is not None]
    if len(accounts) == 1:  # one account: the whole transaction is its entry
        by_account = {accounts[0]: postings}
    header = {"transaction": transaction_id, "date": occurred_on.isoformat()}
    month = occurred_on.replace(day=1)
    facts = []
    for account_id, rows in by_account.items():
        body = {**header, "postings": [_posting(p, inns) for p in rows]}
        number = numbers[account_id] if account_id is not None else None
        facts.append(Fact(kind, body, account_id, number, month))
    return facts


def _posting(posting: Row[Any], inns: dict[int, str]) -> dict[str, Any]:
    """A posting as the entry shows it: its book and kopecks, and whichever of supplier (INN),
    service, period and component it has."""
    shown: dict[str, Any] = {"book": str(posting.book), "kopecks": posting.amount}
    if posting.supplier_id is not None:
        shown["supplier"] = inns[posting.supplier_id]
    if posting.service is not None:
        shown["service"] = posting.service
    if posting.period is not None:
        shown["period"] = f"{posting.period:%Y-%m}"
    if posting.component is not None:
        shown["component"] = str(posting.component)
    return shown


def _transactions(session: Session, ids: list[int]) -> dict[int, tuple[str, date]]:
    found: dict[int, tuple[str, date]] = {}
    size = lookup_chunk(session)
    for start in range(0, len(ids), size):
        query = select(FinanceTransaction.id, FinanceTransaction.kind, FinanceTransaction.occurred_on).where(
            one_of(FinanceTransaction.id, ids[start : start + size], session)
        )
        found.update((i, (str(kind), occurred_on)) for i, kind, occurred_on in session.execute(query))
    return found


def _postings(session: Session, ids: list[int]) -> dict[int, list[Row[Any]]]:
    found: dict[int, list[Row[Any]]] = defaultdict(list)
    size = lookup_chunk(session)
    for start in range(0, len(ids), size):
        query = (
            select(*POSTING_COLUMNS)
            .where(one_of(Posting.transaction_id, ids[start : start + size], session))
            .order_by(Posting.transaction_id, Posting.id)
        )
        for posting in session.execute(query):
            found[posting.transaction_id].append(cast(Row[Any], posting))
    return found


def _names(session: Session, postings: list[Row[Any]]) -> tuple[dict[int, str], dict[int, str]]:
    """Account numbers (for the commitments only) and suppliers' INNs."""
    numbers = account_numbers(session, {p.account_id for p in postings if p.account_id is not None})
    inns = organisation_inns(session, {p.supplier_id for p in postings if p.supplier_id is not None})
    return numbers, inns
