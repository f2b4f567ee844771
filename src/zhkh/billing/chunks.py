"""One chunk of a billing run's buildings: its consumption brought up to date, its inputs loaded
set-based, its lines computed by the pure rules (``bill_chunk``), then written in bulk
(``write_chunk``), or encoded in one process for the transaction of another to write
(``encode_chunk`` and ``write_encoded``, see ``billing.processes``)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, and_, or_, select
from sqlalchemy.orm import Session

from zhkh.billing.models import AccrualLine, BilledAccount, BillingProblemRow
from zhkh.billing.repository import Catalogue, Snapshot, current_registry, load_buildings
from zhkh.billing.rules import BillingProblem, Line, bill_building
from zhkh.core.bulk import bulk_insert, copy_encoded, copy_rows, encode_copy_rows
from zhkh.core.config import get_settings
from zhkh.core.db import one_of
from zhkh.core.outbox import OutboxMessage
from zhkh.core.periods import Period
from zhkh.metering.consumption import compute_consumption, measured_by_device
from zhkh.metering.models import Consumption, Meter


@dataclass
class RunSummary:
    period: Period
    accounts: int = 0
    lines: int = 0
    recalculations: int = 0
    total: int = 0  # kopecks, all lines
    by_supplier: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    problems: list[BillingProblem] = field(default_factory=list)
    # Seconds per stage. When chunks are billed in worker processes, the workers' stages are
    # summed over the workers (process-seconds, more than the wall time); "waiting" is the run's
    # own process waiting for them.
    stages: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def count(self, lines: Sequence[Line | dict[str, Any]]) -> None:
        for line in lines:
            amount = line.amount if isinstance(line, Line) else line["amount"]
            supplier = line.supplier_id if isinstance(line, Line) else line["supplier_id"]
            self.total += amount
            self.by_supplier[supplier] += amount
            self.lines += 1

    def absorb(self, other: RunSummary) -> None:
        """Add what ``other`` (a chunk's summary) counted."""
        self.accounts += other.accounts
        self.lines += other.lines
        self.recalculations += other.recalculations
        self.total += other.total
        for supplier, amount in other.by_supplier.items():
            self.by_supplier[supplier] += amount
        self.problems += other.problems
        for stage, seconds in other.stages.items():
            self.stages[stage] += seconds


class Stopwatch:
    """Adds the time since the last lap to ``summary.stages[name]`` (the benchmark prints them)."""

    def __init__(self, summary: RunSummary) -> None:
        self.summary = summary
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.summary.stages[name] += now - self.last
        self.last = now


@dataclass
class ChunkBill:
    """A chunk's accounts as billed (the registry they were billed with), lines and problems."""

    registry: dict[int, Snapshot]
    lines: list[Line]
    problems: list[BillingProblem]


def bill_chunk(
    session: Session,
    period: Period,
    chunk: list[int],
    catalogue: Catalogue,
    pending: set[int] | None,
    clock: Stopwatch,
) -> ChunkBill:
    """Bill one chunk of buildings. ``pending``: meters the worker has not caught up with (None:
    recompute every meter's consumption)."""
    if pending is None:
        refresh_consumption(session, period, chunk)
    else:
        complete_consumption(session, period, chunk, pending)
    clock.lap("consumption")
    registry = current_registry(session, chunk)
    inputs = load_buildings(session, period, chunk, registry, catalogue)
    clock.lap("loading")
    lines: list[Line] = []
    problems: list[BillingProblem] = []
    for building in inputs:
        found, trouble = bill_building(building)
        lines += found
        problems += trouble
    clock.lap("computing")
    return ChunkBill(registry, lines, problems)


def record(summary: RunSummary, bill: ChunkBill) -> None:
    summary.problems += bill.problems
    summary.accounts += len(bill.registry)
    summary.count(bill.lines)


def refresh_consumption(session: Session, period: Period, buildings: Collection[int]) -> None:
    """Recompute the period's consumption of every meter of ``buildings``."""
    meters = list(session.scalars(select(Meter.id).where(one_of(Meter.building_id, buildings, session))))
    if meters:
        compute_consumption(session, period, meters)


def pending_arrivals(session: Session) -> set[int]:
    """Meters with readings the worker has not yet brought into consumption."""
    meters: set[int] = set()
    for payload in session.scalars(
        select(OutboxMessage.payload).where(
            OutboxMessage.topic == "metering.readings_arrived", OutboxMessage.delivered_at.is_(None)
        )
    ):
        meters.update(int(meter) for meter in payload.get("meter_ids", ()))
    return meters


def complete_consumption(session: Session, period: Period, buildings: Collection[int], pending: set[int]) -> None:
    """The worker keeps consumption current as readings arrive; the run computes what it has
    not: meters without a row for the period, meters with readings the worker has yet to
    process, and automatic meters still ``missing`` (their period is complete only once a
    reading after its end exists, and the worker, given that reading, computes the period it
    falls in). A hand-read meter's ``missing`` stands until a reading for the period arrives,
    and then the worker recomputes it: recomputing it here (a million meters at the scale of a
    region) would change nothing."""
    meters = session.scalars(
        select(Meter.id).where(
            one_of(Meter.building_id, buildings, session),
            Meter.installed_on <= period.last_day,
            or_(Meter.archived_on.is_(None), Meter.archived_on >= period.previous().first_day),
        )
    ).all()
    if not meters:
        return
    # The period's rows by the meters' ids, not by a join: the period being billed is the newest,
    # its statistics lag, and a join estimated at a few rows scanned the whole period's
    # consumption for every chunk (0.8 s a chunk at a million accounts). The device lookup only
    # for rows still missing (the planner puts the subquery last).
    waits_for_device = and_(
        Consumption.provenance == "missing", measured_by_device(period, get_settings().zone, Consumption.meter_id)
    )
    rows = session.execute(
        select(Consumption.meter_id, waits_for_device).where(
            one_of(Consumption.meter_id, meters, session), Consumption.period == period.first_day
        )
    )
    stale = set(meters) & pending
    computed: set[int] = set()
    for meter, waiting in rows:
        computed.add(meter)
        if waiting:
            stale.add(meter)
    stale.update(meter for meter in meters if meter not in computed)
    if stale:
        compute_consumption(session, period, sorted(stale))


# --- writing -----------------------------------------------------------------------------------


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


SNAPSHOT_COLUMNS = ("period", "account_id", "building_id", "area", "residents", "owners", "meter_possible")
LINE_COLUMNS = (
    "period",
    "account_id",
    "service",
    "zone",
    "supplier_id",
    "kind",
    "method",
    "quantity",
    "unit",
    "price",
    "multiplier",
    "amount",
    "inputs",
    "meter_id",
    "benefit_id",
    "granted_by_id",
)


def write_chunk(session: Session, period: Period, bill: ChunkBill) -> None:
    copy_rows(session, _table(BilledAccount), SNAPSHOT_COLUMNS, _snapshot_rows(period, bill.registry))
    copy_rows(session, _table(AccrualLine), LINE_COLUMNS, _line_rows(period, bill.lines))
    write_problems(session, period, bill.problems)


@dataclass(frozen=True)
class EncodedChunk:
    """A chunk billed in a worker process: its summary, and its rows encoded for COPY."""

    summary: RunSummary
    snapshot: bytes
    lines: bytes


def encode_chunk(session: Session, period: Period, bill: ChunkBill, summary: RunSummary) -> EncodedChunk:
    """``bill`` ready for ``write_encoded`` in another process; the problems travel as they are
    (a few rows)."""
    record(summary, bill)
    snapshot = encode_copy_rows(session, _table(BilledAccount), SNAPSHOT_COLUMNS, _snapshot_rows(period, bill.registry))
    lines = encode_copy_rows(session, _table(AccrualLine), LINE_COLUMNS, _line_rows(period, bill.lines))
    return EncodedChunk(summary, snapshot, lines)


def write_encoded(session: Session, encoded: EncodedChunk) -> None:
    copy_encoded(session, _table(BilledAccount), SNAPSHOT_COLUMNS, encoded.snapshot)
    copy_encoded(session, _table(AccrualLine), LINE_COLUMNS, encoded.lines)
    write_problems(session, encoded.summary.period, encoded.summary.problems)


def _snapshot_rows(period: Period, registry: Mapping[int, Snapshot]) -> Iterable[tuple[Any, ...]]:
    day = period.first_day
    return (
        (day, account_id, s.building_id, s.area, s.residents, s.owners, s.meter_possible)
        for account_id, s in registry.items()
    )


def _line_rows(period: Period, lines: Iterable[Line]) -> Iterable[tuple[Any, ...]]:
    day = period.first_day
    return (
        (
            day,
            line.account_id,
            line.service.value,
            line.zone,
            line.supplier_id,
            line.kind.value,
            line.method.value,
            line.quantity,
            line.unit.value,
            line.price,
            line.multiplier,
            line.amount,
            line.inputs,
            line.meter_id,
            line.benefit_id,
            line.granted_by_id,
        )
        for line in lines
    )


def write_problems(session: Session, period: Period, problems: Iterable[BillingProblem]) -> None:
    rows = [
        {
            "period": period.first_day,
            "account_id": problem.account_id,
            "service": problem.service.value,
            "code": problem.code,
            "message": problem.message,
        }
        for problem in problems
    ]
    bulk_insert(session, _table(BillingProblemRow), rows)
