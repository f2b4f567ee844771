"""The intake paths: a bank statement, an agent's registry, the cash desk. Each reads its input
whole (a bad file imports nothing), turns it into ``Incoming`` payments and hands them to
``service.take_in``, which makes the same file twice add nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhkh.core.db import lookup_chunk, one_of
from zhkh.core.errors import InvalidInput, NotFound
from zhkh.core.runtime import cycle_collector_paused
from zhkh.housing.models import Account, Organisation
from zhkh.payments.agent_registry import parse_agent_registry
from zhkh.payments.bankfiles import BankDocument, parse_statement
from zhkh.payments.models import PaymentIntake, PaymentSource
from zhkh.payments.purpose import purpose_hints
from zhkh.payments.service import Incoming, IntakeResult, account_ids, take_in


@dataclass(frozen=True)
class FileIntake:
    name: str
    intake_id: int
    result: IntakeResult
    payments_in_file: int
    ignored: int = 0  # documents of the file that are not incoming payments (outgoing orders)


@cycle_collector_paused()
def import_bank_statement(session: Session, data: bytes, name: str, *, recorded_by: str = "") -> FileIntake:
    """Incoming payment orders of a 1CClientBankExchange statement, credited to a bank account of
    an organisation in the registry, matched to personal accounts from their purpose and payer."""
    statement = parse_statement(data, name)
    ours = _registered_bank_accounts(session, [section.account for section in statement.accounts])
    strangers = [section.account for section in statement.accounts if section.account not in ours]
    if strangers:
        raise InvalidInput(
            f"{name}: account {', '.join(strangers)} of this statement is not the bank account of any"
            " organisation in the registry; nothing was imported"
        )
    documents = [doc for section in statement.accounts for doc in statement.incoming(section.account)]
    incoming = _match(session, documents)
    intake = _intake(session, PaymentSource.BANK_STATEMENT, name, data)
    result = take_in(session, PaymentSource.BANK_STATEMENT, incoming, intake_id=intake.id, recorded_by=recorded_by)
    intake.counts = result.counts()
    return FileIntake(name, intake.id, result, len(documents), len(statement.documents) - len(documents))


@cycle_collector_paused()
def import_agent_registry(session: Session, data: bytes, name: str, *, recorded_by: str = "") -> FileIntake:
    """An agent's daily registry; a payment for an account not in the registry waits for review."""
    registry = parse_agent_registry(data, name)
    incoming = [
        Incoming(
            external_id=p.operation_id,
            amount=p.amount_kopecks,
            paid_on=p.paid_on,
            account=p.account,
            period=p.period,
            payer=p.payer,
            purpose=f"{name}, line {p.line}",
        )
        for p in registry.payments
    ]
    intake = _intake(session, PaymentSource.AGENT_REGISTRY, name, data)
    result = take_in(session, PaymentSource.AGENT_REGISTRY, incoming, intake_id=intake.id, recorded_by=recorded_by)
    intake.counts = result.counts()
    return FileIntake(name, intake.id, result, len(incoming))


def record_cash(
    session: Session,
    account: str,
    amount: int,
    paid_on: date,
    receipt: str,
    *,
    operator: str,
    period: date | None = None,
) -> IntakeResult:
    """A payment taken at the cash desk by ``operator`` against receipt number ``receipt``."""
    if not receipt.strip():
        raise InvalidInput("a cash payment needs the receipt number it was taken against")
    if session.scalar(select(Account.id).where(Account.number == account)) is None:
        raise NotFound(f"account {account} is not in the registry")
    payment = Incoming(receipt.strip(), amount, paid_on, account, period=period, purpose=f"cash desk, {operator}")
    return take_in(session, PaymentSource.CASH_DESK, [payment], recorded_by=operator)


def _intake(session: Session, source: PaymentSource, name: str, data: bytes) -> PaymentIntake:
    intake = PaymentIntake(source=source, name=name, sha256=hashlib.sha256(data).hexdigest(), counts={})
    session.add(intake)
    session.flush()
    return intake


def _registered_bank_accounts(session: Session, accounts: Sequence[str]) -> set[str]:
    query = select(Organisation.bank_account).where(one_of(Organisation.bank_account, accounts, session))
    return {account for account in session.scalars(query) if account}


# --- matching a payment order to a personal account ---------------------------------------------


def _match(session: Session, documents: Sequence[BankDocument]) -> list[Incoming]:
    """Each document's purpose names candidate accounts (a ЛС number, the QR code's PersAcc);
    the one that exists in the registry is the payer's. With none named, a payer whose name is
    the payer of exactly one account is matched by name. Everything else waits for review."""
    hints = [purpose_hints(doc.purpose) for doc in documents]
    known = account_ids(session, {number for hint in hints for number in hint.accounts})
    unnamed = {doc.payer.name for doc, hint in zip(documents, hints, strict=True) if not hint.accounts}
    by_payer = _accounts_by_payer(session, unnamed)
    matched = []
    for doc, hint in zip(documents, hints, strict=True):
        existing = [number for number in hint.accounts if number in known]
        account, reason = None, ""
        if len(existing) == 1:
            account = existing[0]
        elif existing:
            reason = f"the purpose names several accounts: {', '.join(existing)}"
        elif hint.accounts:
            reason = f"account {', '.join(hint.accounts)} named in the purpose is not in the registry"
        elif len(by_payer.get(_name_key(doc.payer.name), ())) == 1:
            account = by_payer[_name_key(doc.payer.name)][0]
        else:
            reason = "no personal account in the purpose, and the payer's name identifies no single account"
        matched.append(_incoming(doc, account, hint.period, hint.services, reason))
    return matched


def _incoming(
    doc: BankDocument, account: str | None, period: date | None, services: tuple[str, ...], reason: str
) -> Incoming:
    return Incoming(
        external_id=doc.external_id,
        amount=doc.amount_kopecks,
        paid_on=doc.withdrawn_on or doc.date,  # the day the payer paid, which stops the penalty
        account=account,
        period=period,
        services=services,
        payer=doc.payer.name,
        payer_inn=doc.payer.inn,
        purpose=doc.purpose,
        unmatched_reason=reason,
    )


def _name_key(name: str) -> str:
    return " ".join(name.lower().replace("ё", "е").split())


def _accounts_by_payer(session: Session, names: set[str]) -> dict[str, list[str]]:
    """Accounts whose payer is one of ``names``, compared case-insensitively and with ё = е.
    Banks often write names in capitals; SQLite lowers only Latin letters, so the spellings a
    name is likely stored in are looked up and compared in Python."""
    spellings = sorted({variant for name in names if name.strip() for variant in _spellings(name)})
    found: dict[str, set[str]] = {}
    size = lookup_chunk(session)
    for start in range(0, len(spellings), size):
        chunk = spellings[start : start + size]
        for payer, number in session.execute(
            select(Account.payer, Account.number).where(one_of(Account.payer, chunk, session))
        ):
            found.setdefault(_name_key(payer or ""), set()).add(number)
    return {key: sorted(numbers) for key, numbers in found.items()}


def _spellings(name: str) -> set[str]:
    plain = " ".join(name.split())
    return {plain, plain.title(), plain.upper(), plain.replace("ё", "е").title(), plain.title().replace("Е", "Ё", 1)}
