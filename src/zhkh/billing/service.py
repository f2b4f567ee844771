"""Use cases of billing: run a period, close it, recalculate closed periods.

``run_billing`` bills every account of a period (or of one building) a chunk of buildings at a
time: consumption brought up to date, inputs loaded set-based (``repository``), lines computed
by the pure rules, written in bulk. Running an open period again replaces its draft. Closing
freezes it and sends each account's money facts to the outbox. A later change to what a closed
period was computed from (a late reading, a corrected tariff, a new benefit or absence) becomes
recalculation lines in the period being run, each referencing what it corrects and saying why.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, delete, func, literal, null, or_, select
from sqlalchemy.orm import Session

from zhkh.billing.chunks import (
    RunSummary,
    Stopwatch,
    bill_chunk,
    pending_arrivals,
    record,
    refresh_consumption,
    write_chunk,
)
from zhkh.billing.errors import PeriodClosed, PeriodOutOfOrder
from zhkh.billing.explain import StoredLine
from zhkh.billing.models import (
    AccrualLine,
    BilledAccount,
    BillingPeriod,
    BillingProblemRow,
    PeriodStatus,
    TemporaryAbsence,
)
from zhkh.billing.processes import bill_in_processes
from zhkh.billing.repository import (
    HISTORY_PERIODS,
    Catalogue,
    billed_registry,
    building_ids,
    chunks,
    load_buildings,
    load_catalogue,
)
from zhkh.billing.rules import LineKind, bill_building, text
from zhkh.core.bulk import bulk_insert
from zhkh.core.clock import utc_now
from zhkh.core.db import is_sqlite, one_of
from zhkh.core.errors import InvalidInput, NotFound
from zhkh.core.money import format_rubles
from zhkh.core.outbox import OutboxMessage, emit
from zhkh.core.periods import Period
from zhkh.core.runtime import cycle_collector_paused
from zhkh.core.values import decimal_to_text
from zhkh.finance import service as books
from zhkh.finance.models import Book, Component, TransactionKind
from zhkh.housing.models import Account, Organisation, Premise
from zhkh.metering.models import Meter

ABSENCE_RECORDED = "billing.absence_recorded"
# Buildings billed together: one set of queries and one bulk write per chunk. SQLite binds each
# id as its own parameter, so it gets smaller chunks.
CHUNK_BUILDINGS = 500
SQLITE_CHUNK_BUILDINGS = 50
# Chunks handed to worker processes are smaller: the run's process writes one while the workers
# compute the next, and the last one's computing is not overlapped by anything.
WORKER_CHUNK_BUILDINGS = 100


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


# --- periods -----------------------------------------------------------------------------------


def period_state(session: Session, period: Period, *, for_update: bool = False) -> BillingPeriod | None:
    return session.get(BillingPeriod, period.first_day, with_for_update=for_update)


def _open_for_run(session: Session, period: Period) -> BillingPeriod:
    state = period_state(session, period)
    if state is not None and state.status is PeriodStatus.CLOSED:
        raise PeriodClosed(
            f"period {period} is closed; its lines are final. Changes to it are recalculated in the next open period"
        )
    later_closed = session.scalar(
        select(func.max(BillingPeriod.period)).where(
            BillingPeriod.status == PeriodStatus.CLOSED, BillingPeriod.period > period.first_day
        )
    )
    if later_closed is not None:
        raise PeriodOutOfOrder(f"period {Period.of(later_closed)} is already closed; {period} comes before it")
    if state is None:
        state = BillingPeriod(period=period.first_day, status=PeriodStatus.OPEN)
        session.add(state)
    return state


def closed_periods(session: Session, before: Period) -> list[tuple[Period, int]]:
    """Closed periods within the recalculation horizon before ``before``, oldest first, with
    the outbox position at their closing."""
    oldest = before
    for _ in range(HISTORY_PERIODS):
        oldest = oldest.previous()
    rows = session.execute(
        select(BillingPeriod.period, BillingPeriod.closed_outbox_id)
        .where(
            BillingPeriod.status == PeriodStatus.CLOSED,
            BillingPeriod.period >= oldest.first_day,
            BillingPeriod.period < before.first_day,
        )
        .order_by(BillingPeriod.period)
    )
    return [(Period.of(day), mark or 0) for day, mark in rows]


# --- the run -----------------------------------------------------------------------------------


@cycle_collector_paused()
def run_billing(
    session: Session,
    period: Period,
    building: str | None = None,
    *,
    recompute_consumption: bool = False,
    jobs: int = 1,
) -> RunSummary:
    """Bill ``period`` for every building, or for the building with code ``building``.
    ``recompute_consumption``: recompute every meter's consumption of the period first, not
    only what the worker has not brought up to date. ``jobs``: worker processes computing the
    chunks on PostgreSQL (``billing.processes``; they read committed data only, so the session
    must not hold uncommitted inputs of the run); 1 computes them in this process."""
    state = _open_for_run(session, period)
    buildings = building_ids(session, building)
    if building is not None and not buildings:
        raise NotFound(f"no building {building!r}")
    _delete_draft(session, period, buildings if building is not None else None)
    summary = RunSummary(period)
    catalogue = load_catalogue(session, period)
    size = SQLITE_CHUNK_BUILDINGS if is_sqlite(session) else CHUNK_BUILDINGS
    pending = None if recompute_consumption else pending_arrivals(session)
    in_processes = jobs > 1 and not is_sqlite(session) and len(buildings) > WORKER_CHUNK_BUILDINGS
    if in_processes:
        parts = list(chunks(buildings, WORKER_CHUNK_BUILDINGS))
        bill_in_processes(session, period, parts, catalogue, pending, summary, jobs=jobs)
    else:
        for chunk in chunks(buildings, size):
            clock = Stopwatch(summary)
            bill = bill_chunk(session, period, chunk, catalogue, pending, clock)
            write_chunk(session, period, bill)
            clock.lap("writing")
            record(summary, bill)
    for past, since in closed_periods(session, period):
        changed = sorted(changed_buildings(session, past, since) & set(buildings))
        past_catalogue = load_catalogue(session, past)
        for chunk in chunks(changed, size):
            _recalculate(session, period, past, chunk, past_catalogue, summary)
    state.last_run_at = utc_now()
    session.flush()
    return summary


def _delete_draft(session: Session, period: Period, buildings: Collection[int] | None) -> None:
    """The open period's lines are a draft: a new run replaces them (the period's own lines and
    the recalculations it carries)."""
    day = period.first_day
    for model in (AccrualLine, BillingProblemRow, BilledAccount):
        statement = delete(model).where(model.period == day)
        if buildings is not None:
            accounts = select(Account.id).join(Premise, Premise.id == Account.premise_id)
            accounts = accounts.where(one_of(Premise.building_id, buildings, session))
            statement = statement.where(model.account_id.in_(accounts))
        session.execute(statement)


# --- recalculation of closed periods -----------------------------------------------------------


# What the outbox says changed, by topic: meters (with the period their consumption is stale
# from), buildings (None: every building), or accounts.
CHANGE_TOPICS = ("metering.readings_arrived", "metering.meters_changed", "tariffs.changed", ABSENCE_RECORDED)


def changed_buildings(session: Session, past: Period, since_outbox_id: int) -> set[int]:
    """Buildings where something ``past`` was billed from changed after it was closed, as
    announced in the outbox since then: a reading dated in or before it (late or corrected), a
    meter's record, the tariff catalogue, a benefit, an absence. Reading the announcements (a
    few per thousand readings) is much cheaper than comparing the period's inputs."""
    meters: set[int] = set()
    buildings: set[int] = set()
    accounts: set[int] = set()
    messages = session.scalars(
        select(OutboxMessage.payload).where(OutboxMessage.id > since_outbox_id, OutboxMessage.topic.in_(CHANGE_TOPICS))
    )
    for payload in messages:
        stale = payload.get("stale_from") or {}
        meters.update(int(meter) for meter, first in stale.items() if Period.parse(first) <= past)
        if "buildings" in payload:
            if payload["buildings"] is None:
                return set(building_ids(session))
            buildings.update(payload["buildings"])
        accounts.update(payload.get("accounts", ()))
        if "account_id" in payload:
            accounts.add(payload["account_id"])
    for chunk in chunks(sorted(meters), 10_000):
        buildings.update(session.scalars(select(Meter.building_id).where(Meter.id.in_(chunk))))
    for chunk in chunks(sorted(accounts), 10_000):
        buildings.update(
            session.scalars(
                select(Premise.building_id).join(Account, Account.premise_id == Premise.id).where(Account.id.in_(chunk))
            )
        )
    return buildings


Key = tuple[int, str, int, int, str, int | None]  # account, service, zone, supplier, charge|benefit, granted by


@dataclass
class _Net:
    """What a key of a closed period came to: its lines and every recalculation of them so far."""

    quantity: Decimal = Decimal(0)
    amount: int = 0
    method: str | None = None
    unit: str | None = None
    price: Decimal | None = None
    multiplier: Decimal | None = None
    first_line_id: int | None = None


def _recalculate(
    session: Session, period: Period, past: Period, chunk: list[int], catalogue: Catalogue, summary: RunSummary
) -> None:
    refresh_consumption(session, past, chunk)  # a late reading may not have reached the worker yet
    registry = billed_registry(session, past, chunk)
    inputs = load_buildings(session, past, chunk, registry, catalogue)
    now: dict[Key, _Net] = defaultdict(_Net)
    for building in inputs:
        for line in bill_building(building)[0]:
            key = _key(line.account_id, line.service, line.zone, line.supplier_id, line.kind, line.granted_by_id)
            _add(now[key], line.quantity, line.amount, line.method, line.unit, line.price, line.multiplier, None)
    was = _net_billed(session, period, past, chunk)
    rows = [
        row
        for key in sorted(set(now) | set(was), key=str)
        if (row := _recalculation_row(period, past, key, was.get(key, _Net()), now.get(key, _Net()))) is not None
    ]
    bulk_insert(session, _table(AccrualLine), rows)
    summary.recalculations += len(rows)
    summary.count(rows)


def _key(account: int, service: str, zone: int, supplier: int, kind: str, granted_by: int | None) -> Key:
    return (account, service, zone, supplier, kind, granted_by)


def _add(
    net: _Net,
    quantity: Decimal,
    amount: int,
    method: str,
    unit: str,
    price: Decimal | None,
    multiplier: Decimal | None,
    line_id: int | None,
) -> None:
    net.quantity += quantity
    net.amount += amount
    net.method, net.unit = net.method or method, net.unit or unit
    net.price = net.price if net.price is not None else price
    net.multiplier = net.multiplier if net.multiplier is not None else multiplier
    net.first_line_id = net.first_line_id or line_id


def _net_billed(session: Session, period: Period, past: Period, chunk: list[int]) -> dict[Key, _Net]:
    accounts = select(Account.id).join(Premise, Premise.id == Account.premise_id)
    accounts = accounts.where(one_of(Premise.building_id, chunk, session))
    rows = session.execute(
        select(AccrualLine)
        .where(
            AccrualLine.account_id.in_(accounts),
            or_(
                AccrualLine.period == past.first_day,
                (AccrualLine.corrects_period == past.first_day) & (AccrualLine.period != period.first_day),
            ),
        )
        .order_by(AccrualLine.id)
    )
    found: dict[Key, _Net] = defaultdict(_Net)
    for (line,) in rows:
        if line.kind == LineKind.RECALCULATION:
            kind, original = str(line.inputs["corrects"]), None
        else:
            kind, original = line.kind, line.id
        key = _key(line.account_id, line.service, line.zone, line.supplier_id, kind, line.granted_by_id)
        _add(found[key], line.quantity, line.amount, line.method, line.unit, line.price, line.multiplier, original)
    return found


def _recalculation_row(period: Period, past: Period, key: Key, was: _Net, now: _Net) -> dict[str, Any] | None:
    difference = now.amount - was.amount
    if difference == 0:
        return None
    account, service, zone, supplier, kind, granted_by = key
    changes = _changes(was, now)
    return {
        "period": period.first_day,
        "account_id": account,
        "service": service,
        "zone": zone,
        "supplier_id": supplier,
        "kind": LineKind.RECALCULATION.value,
        "method": now.method or was.method,
        "quantity": now.quantity - was.quantity,
        "unit": now.unit or was.unit,
        "price": now.price if now.price is not None else was.price,
        "multiplier": now.multiplier if now.multiplier is not None else was.multiplier,
        "amount": difference,
        "inputs": {
            "corrects": kind,
            "was": _summary(was),
            "now": _summary(now),
            "changes": changes,
        },
        "meter_id": None,
        "benefit_id": None,
        "granted_by_id": granted_by,
        "corrects_period": past.first_day,
        "corrects_line_id": was.first_line_id,
        "reason": ", ".join(changes),
    }


def _summary(net: _Net) -> dict[str, Any]:
    return {
        "method": net.method,
        "quantity": text(net.quantity),
        "price": text(net.price) if net.price is not None else None,
        "multiplier": text(net.multiplier) if net.multiplier is not None else None,
        "amount": net.amount,
    }


def _changes(was: _Net, now: _Net) -> list[str]:
    """Why a closed period's amount changed, as stable codes (explain puts them in words)."""
    if was.method is None:
        return ["new"]
    if now.method is None:
        return ["withdrawn"]
    changes = [
        name
        for name, before, after in (
            ("method", was.method, now.method),
            ("quantity", was.quantity, now.quantity),
            ("price", was.price, now.price),
            ("multiplier", was.multiplier, now.multiplier),
        )
        if before != after
    ]
    return changes or ["amount"]


# --- closing -----------------------------------------------------------------------------------

OUTBOX_CHUNK = 10_000


@dataclass
class CloseSummary:
    period: Period
    accounts: int
    lines: int
    total: int


PERIOD_CLOSED = "billing.closed"


def close_period(session: Session, period: Period) -> CloseSummary:
    """Freeze ``period``: its lines become final, and each account's money facts of the period
    go to the outbox (topic ``billing.accrued``, for the ledger) in this same transaction, with
    one ``billing.closed`` message (advances can pay the new bills)."""
    # Locked: two closes at once would otherwise both post the period's accruals.
    state = period_state(session, period, for_update=True)
    if state is None or state.last_run_at is None:
        raise NotFound(f"period {period} has not been run; run it first: zhkh billing run --period {period}")
    if state.status is PeriodStatus.CLOSED:
        raise PeriodClosed(f"period {period} is already closed (at {state.closed_at:%Y-%m-%d %H:%M} UTC)")
    earlier = session.scalar(
        select(func.min(BillingPeriod.period)).where(
            BillingPeriod.status == PeriodStatus.OPEN, BillingPeriod.period < period.first_day
        )
    )
    if earlier is not None:
        raise PeriodOutOfOrder(f"period {Period.of(earlier)} is still open; close periods in order")
    state.status = PeriodStatus.CLOSED
    state.closed_at = utc_now()
    accounts, lines, total = _announce_accruals(session, period, state.closed_at)
    _post_accruals(session, period)
    emit(session, PERIOD_CLOSED, {"period": str(period)})
    session.flush()
    state.closed_outbox_id = session.scalar(select(func.max(OutboxMessage.id))) or 0
    session.flush()
    return CloseSummary(period, accounts, lines, total)


def _post_accruals(session: Session, period: Period) -> None:
    """The period's lines into the books, in one transaction computed by the database: each
    account owes the sum of its lines per service and supplier (charges, benefits and
    recalculations together, as the bill shows them), against each supplier's accrued charges."""
    of_period = AccrualLine.period == period.first_day
    owed = func.sum(AccrualLine.amount)
    receivables = (
        select(
            literal(Book.RECEIVABLE.value),
            AccrualLine.account_id,
            AccrualLine.service,
            AccrualLine.supplier_id,
            literal(period.first_day),
            literal(Component.PRINCIPAL.value),
            owed,
        )
        .where(of_period)
        .group_by(AccrualLine.account_id, AccrualLine.service, AccrualLine.supplier_id)
        .having(owed != 0)
    )
    accrued = (
        select(
            literal(Book.ACCRUED.value),
            null(),
            AccrualLine.service,
            AccrualLine.supplier_id,
            null(),
            null(),
            -owed,
        )
        .where(of_period)
        .group_by(AccrualLine.service, AccrualLine.supplier_id)
        .having(owed != 0)
    )
    books.record_from_queries(
        session,
        TransactionKind.ACCRUAL,
        period.last_day,
        "billing_period",
        period.year * 100 + period.month,
        f"accruals of {period}",
        [receivables, accrued],
    )


def _announce_accruals(session: Session, period: Period, moment: datetime) -> tuple[int, int, int]:
    """One outbox message per account and period with its lines (ids, services, suppliers,
    amounts): what the ledger publishes. Streamed, written in chunks."""
    rows = session.execute(
        select(
            AccrualLine.id,
            AccrualLine.account_id,
            AccrualLine.service,
            AccrualLine.zone,
            AccrualLine.supplier_id,
            AccrualLine.kind,
            AccrualLine.amount,
            AccrualLine.corrects_period,
        )
        .where(AccrualLine.period == period.first_day)
        .order_by(AccrualLine.account_id, AccrualLine.id)
        .execution_options(yield_per=OUTBOX_CHUNK)
    )
    messages: list[dict[str, Any]] = []
    accounts = lines = total = 0
    current: dict[str, Any] | None = None
    for row in rows:
        if current is None or current["account_id"] != row.account_id:
            current = {"period": str(period), "account_id": row.account_id, "total": 0, "lines": []}
            messages.append(
                {
                    "topic": "billing.accrued",
                    "payload": current,
                    "created_at": moment,
                    "available_at": moment,
                    "attempts": 0,
                }
            )
            accounts += 1
            if len(messages) > OUTBOX_CHUNK:
                bulk_insert(session, _table(OutboxMessage), messages[:-1])
                messages = messages[-1:]
        current["lines"].append(
            {
                "line_id": row.id,
                "service": row.service,
                "zone": row.zone,
                "supplier_id": row.supplier_id,
                "kind": row.kind,
                "amount": row.amount,
                "corrects_period": str(Period.of(row.corrects_period)) if row.corrects_period else None,
            }
        )
        current["total"] += row.amount
        lines += 1
        total += row.amount
    bulk_insert(session, _table(OutboxMessage), messages)
    return accounts, lines, total


# --- reading the lines back --------------------------------------------------------------------

EXPORT_COLUMNS = (
    "account",
    "period",
    "service",
    "zone",
    "supplier_inn",
    "method",
    "quantity",
    "unit",
    "price",
    "multiplier",
    "amount",
    "benefit",
    "recalculation",
    "total",
)


def export_rows(session: Session, period: Period, account: str | None = None) -> Iterator[dict[str, str]]:
    """The period's lines as the export's rows (docs/billing.md): money in rubles with a dot, a
    line's amount in the column of its kind, ``total`` the line's effect on the bill."""
    statement = (
        select(AccrualLine, Account.number, Organisation.inn)
        .join(Account, Account.id == AccrualLine.account_id)
        .join(Organisation, Organisation.id == AccrualLine.supplier_id)
        .where(AccrualLine.period == period.first_day)
        .order_by(Account.number, AccrualLine.id)
    )
    if account is not None:
        statement = statement.where(Account.number == account)
    for line, number, inn in session.execute(statement.execution_options(yield_per=10_000)):
        by_kind = {kind: format_rubles(line.amount if line.kind == kind else 0) for kind in LineKind}
        yield {
            "account": number,
            "period": str(period),
            "service": line.service,
            "zone": str(line.zone) if line.zone else "",
            "supplier_inn": inn,
            "method": line.method,
            "quantity": decimal_to_text(line.quantity),
            "unit": line.unit,
            "price": decimal_to_text(line.price) if line.price is not None else "",
            "multiplier": decimal_to_text(line.multiplier) if line.multiplier is not None else "",
            "amount": by_kind[LineKind.CHARGE],
            "benefit": by_kind[LineKind.BENEFIT],
            "recalculation": by_kind[LineKind.RECALCULATION],
            "total": format_rubles(line.amount),
        }


def _account_id(session: Session, number: str) -> int:
    account_id = session.scalar(select(Account.id).where(Account.number == number))
    if account_id is None:
        raise NotFound(f"no personal account {number!r}")
    return account_id


def account_lines(session: Session, period: Period, number: str) -> list[StoredLine]:
    """One account's lines of a period with the names ``explain`` shows."""
    account_id = _account_id(session, number)
    supplier = Organisation.__table__.alias("supplier")
    granting = Organisation.__table__.alias("granting")
    rows = session.execute(
        select(AccrualLine, supplier.c.name, granting.c.name)
        .join(supplier, supplier.c.id == AccrualLine.supplier_id)
        .outerjoin(granting, granting.c.id == AccrualLine.granted_by_id)
        .where(AccrualLine.period == period.first_day, AccrualLine.account_id == account_id)
        .order_by(AccrualLine.id)
    )
    return [
        StoredLine(
            service=line.service,
            zone=line.zone,
            kind=line.kind,
            method=line.method,
            quantity=line.quantity,
            unit=line.unit,
            price=line.price,
            multiplier=line.multiplier,
            amount=line.amount,
            inputs=line.inputs,
            supplier=supplier_name,
            granted_by=granted_by,
            corrects_period=str(Period.of(line.corrects_period)) if line.corrects_period else None,
        )
        for line, supplier_name, granted_by in rows
    ]


def record_absence(session: Session, number: str, departed: date, returned: date, persons: int = 1) -> TemporaryAbsence:
    """A resident's temporary absence; a closed period it covers is recalculated on the next run."""
    account_id = _account_id(session, number)
    if returned <= departed:
        raise InvalidInput(f"returned on {returned}, which is not after the departure on {departed}")
    if persons < 1:
        raise InvalidInput(f"{persons} persons: an absence is of at least one resident")
    absence = TemporaryAbsence(account_id=account_id, departed_on=departed, returned_on=returned, persons=persons)
    session.add(absence)
    emit(session, ABSENCE_RECORDED, {"account_id": account_id, "from": str(departed), "to": str(returned)})
    session.flush()
    return absence
