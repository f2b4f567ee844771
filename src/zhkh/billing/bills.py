"""The bills (ЕПД) of a closed period: each account's lines, its debt or advance, payments and
penalties from the books, gathered set-based a chunk of accounts at a time into the plain
``epd.BillDocument`` that ``epd.render_bill`` prints."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhkh.billing.epd import BillDocument, BillLine, BillParty, BillRecipient
from zhkh.billing.errors import PeriodNotClosed
from zhkh.billing.models import AccrualLine, BilledAccount, BillingPeriod, PeriodStatus
from zhkh.core.db import one_of
from zhkh.core.errors import NotFound
from zhkh.core.periods import Period, payment_due_date
from zhkh.finance.balances import BillFigures, bill_figures
from zhkh.housing.models import Account, Building, Organisation, Premise
from zhkh.ledger.commitments import salts
from zhkh.tariffs.catalogue import NAMES, UNIT_NAMES, ServiceCode, Unit

CHUNK = 2000


def issue_ledger_keys(session: Session, period: Period, account: str | None = None) -> int:
    """Make sure every account billed in ``period`` (or just ``account``) has its ledger key (the
    salt of its commitment) before bills print it: run in a transaction of its own, committed
    before rendering, so no bill ever shows a key a failed rendering rolled back."""
    query = select(BilledAccount.account_id).where(BilledAccount.period == period.first_day)
    if account is not None:
        query = query.join(Account, Account.id == BilledAccount.account_id).where(Account.number == account)
    return len(salts(session, list(session.scalars(query))))


def bill_documents(
    session: Session, period: Period, account: str | None = None, *, ledger_url: str | None = None
) -> Iterator[BillDocument]:
    """The bills of ``period`` (closed), one per billed account, in account order. With
    ``ledger_url`` each bill says where the public ledger is and prints the account's key to its
    entries there (the salt of its commitment, ``ledger.commitments``)."""
    state = session.get(BillingPeriod, period.first_day)
    if state is None or state.status is not PeriodStatus.CLOSED:
        raise PeriodNotClosed(f"bills are issued for closed periods; {period} is not closed")
    organisations = {o.id: o for o in session.scalars(select(Organisation))}
    query = select(BilledAccount.account_id).where(BilledAccount.period == period.first_day)
    if account is not None:
        query = query.join(Account, Account.id == BilledAccount.account_id).where(Account.number == account)
    account_ids = sorted(session.scalars(query))
    if account is not None and not account_ids:
        raise NotFound(f"account {account} was not billed in {period}")
    for start in range(0, len(account_ids), CHUNK):
        yield from _chunk(session, period, account_ids[start : start + CHUNK], organisations, ledger_url)


@dataclass
class _Service:
    """One row of the calculation table: a service (and zone) of one supplier."""

    service: ServiceCode
    zone: int
    supplier_id: int
    volume: Decimal | None = None
    unit: str = ""
    price: Decimal | None = None
    multiplier: Decimal | None = None
    accrued: int = 0
    recalculation: int = 0
    benefit: int = 0
    reasons: list[str] = field(default_factory=list)

    def add(
        self, kind: str, quantity: Decimal, unit: str, price: Any, multiplier: Any, amount: int, reason: Any
    ) -> None:
        if kind == "charge":
            self.volume = (self.volume or Decimal(0)) + quantity
            self.unit, self.price, self.multiplier = unit, price, multiplier
            self.accrued += amount
        elif kind == "benefit":
            self.benefit += amount
        else:
            self.recalculation += amount
            if reason:
                self.reasons.append(str(reason))

    def line(self, inn: str) -> BillLine:
        name = NAMES["ru"][self.service] + (f", зона T{self.zone}" if self.zone else "")
        return BillLine(
            service_name=name,
            supplier_inn=inn,
            volume=self.volume,
            unit=UNIT_NAMES["ru"].get(Unit(self.unit), self.unit) if self.unit else "",
            tariff=self.price,
            multiplier=self.multiplier,
            accrued_kopecks=self.accrued,
            recalculation_kopecks=self.recalculation,
            recalculation_reason="; ".join(dict.fromkeys(self.reasons)) or ("перерасчёт" if self.recalculation else ""),
            benefit_kopecks=self.benefit,
            total_kopecks=self.accrued + self.recalculation + self.benefit,
        )


def _chunk(
    session: Session,
    period: Period,
    account_ids: Sequence[int],
    organisations: dict[int, Organisation],
    ledger_url: str | None,
) -> Iterator[BillDocument]:
    heads = _heads(session, period, account_ids)
    services = _services(session, period, account_ids)
    figures = bill_figures(session, account_ids, period.first_day, period.last_day)
    keys = salts(session, account_ids) if ledger_url else {}
    for account_id in account_ids:
        head = heads[account_id]
        rows = services.get(account_id, [])
        lines = tuple(row.line(organisations[row.supplier_id].inn) for row in rows)
        document = _document(period, head, lines, {row.supplier_id for row in rows}, figures[account_id], organisations)
        if ledger_url:
            document = replace(document, verify_url=ledger_url, ledger_key=keys[account_id].hex())
        yield document


def _heads(session: Session, period: Period, account_ids: Sequence[int]) -> dict[int, Any]:
    rows: Iterable[Any] = session.execute(
        select(
            Account.id,
            Account.number,
            Account.payer,
            Premise.number.label("premise"),
            Building.address,
            Building.manager_id,
            BilledAccount.area,
            BilledAccount.residents,
        )
        .join(Premise, Premise.id == Account.premise_id)
        .join(Building, Building.id == Premise.building_id)
        .join(BilledAccount, (BilledAccount.account_id == Account.id) & (BilledAccount.period == period.first_day))
        .where(one_of(Account.id, account_ids, session))
    )
    return {row.id: row for row in rows}


def _services(session: Session, period: Period, account_ids: Sequence[int]) -> dict[int, list[_Service]]:
    rows: Iterable[Any] = session.execute(
        select(
            AccrualLine.account_id,
            AccrualLine.service,
            AccrualLine.zone,
            AccrualLine.supplier_id,
            AccrualLine.kind,
            AccrualLine.quantity,
            AccrualLine.unit,
            AccrualLine.price,
            AccrualLine.multiplier,
            AccrualLine.amount,
            AccrualLine.reason,
        )
        .where(AccrualLine.period == period.first_day, one_of(AccrualLine.account_id, account_ids, session))
        .order_by(AccrualLine.account_id, AccrualLine.id)
    )
    found: dict[int, dict[tuple[str, int, int], _Service]] = defaultdict(dict)
    for account_id, service, zone, supplier_id, kind, quantity, unit, price, multiplier, amount, reason in rows:
        key = (service, zone, supplier_id)
        row = found[account_id].get(key) or _Service(ServiceCode(service), zone, supplier_id)
        found[account_id][key] = row
        row.add(kind, quantity, unit, price, multiplier, amount, reason)
    order = list(ServiceCode)
    return {
        account_id: sorted(rows_.values(), key=lambda r: (order.index(r.service), r.zone))
        for account_id, rows_ in found.items()
    }


def _document(
    period: Period,
    head: Any,
    lines: tuple[BillLine, ...],
    suppliers: set[int],
    figures: BillFigures,
    organisations: dict[int, Organisation],
) -> BillDocument:
    executor = organisations.get(head.manager_id) if head.manager_id else None
    if executor is None:
        raise NotFound(f"account {head.number}: its building has no managing organisation to issue the bill")
    charged = sum(line.total_kopecks for line in lines)
    recipients = tuple(_recipient(organisations[s], lines) for s in sorted(suppliers | {executor.id}))
    return BillDocument(
        period=period.first_day,
        account=head.number,
        payer_name=head.payer or "",
        address=f"{head.address}, кв. {head.premise}",
        area=head.area,
        residents=head.residents,
        executor=_party(executor),
        recipients=recipients,
        lines=lines,
        opening_debt_kopecks=figures.opening,
        paid_kopecks=figures.paid,
        penalty_kopecks=figures.penalty,
        total_to_pay_kopecks=figures.opening - figures.paid + charged + figures.penalty,
        due_date=payment_due_date(period),
    )


def _party(organisation: Organisation) -> BillParty:
    return BillParty(
        name=organisation.name,
        inn=organisation.inn,
        kpp=organisation.kpp or "",
        address="",
        phone="",
        bank_account=organisation.bank_account or "",
        bank_name=organisation.bank_name or "",
        bic=organisation.bic or "",
        corr_account=organisation.corr_account or "",
    )


def _recipient(organisation: Organisation, lines: Sequence[BillLine]) -> BillRecipient:
    return BillRecipient(
        name=organisation.name,
        inn=organisation.inn,
        kpp=organisation.kpp or "",
        bank_account=organisation.bank_account or "",
        bank_name=organisation.bank_name or "",
        bic=organisation.bic or "",
        corr_account=organisation.corr_account or "",
        services=tuple(line.service_name for line in lines if line.supplier_inn == organisation.inn),
    )
