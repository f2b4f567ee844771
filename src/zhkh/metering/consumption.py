"""Consumption per meter, zone and billing period, from cumulative readings, exact in Decimal.

- A meter read by people: the period's volume is the reading accepted for the period (the latest
  one dated up to the end of the manager's reading window, default the 25th) minus the reading
  used for the previous period. No reading in the period's window: provenance ``missing``, and
  billing estimates. The first period of a meter starts from its first reading (installation).
- An automatic meter (bound to a device): the register is interpolated linearly in time at the
  period's boundaries (local midnight of the first day and of the next month's first day).
  Provenance ``reading`` when both boundaries had a reading exactly, ``interpolated`` otherwise,
  ``missing`` while a boundary has no reading on one side.
- A counter that rolled over (the end below the start) adds 10^digits.

Derived data: recomputing a period replaces its rows. The result depends only on the stored
readings, never on the order they arrived in.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Date,
    DateTime,
    Numeric,
    SmallInteger,
    case,
    delete,
    func,
    literal,
    null,
    or_,
    select,
    true,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import Session

from zhkh.core.bulk import bulk_insert
from zhkh.core.config import get_settings
from zhkh.core.db import one_of
from zhkh.core.periods import Period, local_midnight
from zhkh.core.types import UtcDateTime
from zhkh.housing.models import Building, Organisation
from zhkh.metering.models import Consumption, DeviceBinding, Meter, MeterScope, Provenance, Reading, ReadingStatus

DEFAULT_WINDOW_END_DAY = 25
INTERPOLATION_QUANTUM = Decimal("0.000001")
CHUNK = 50_000


@dataclass(frozen=True, slots=True)
class Point:
    at: datetime
    value: Decimal


@dataclass(frozen=True, slots=True)
class Result:
    provenance: Provenance
    start: Point | None
    end: Point | None
    volume: Decimal | None


@dataclass(frozen=True, slots=True)
class Summary:
    period: Period
    rows: int
    by_provenance: dict[str, int]


# --- pure arithmetic ---------------------------------------------------------------------------


def difference(start: Decimal, end: Decimal, digits: int) -> Decimal:
    """end - start, across a rollover of a counter with ``digits`` digits before the point."""
    return end - start if end >= start else end + Decimal(10) ** digits - start


def interpolate(before: Point, after: Point, at: datetime, digits: int) -> Decimal:
    """The register at ``at``, on the straight line between two readings, to a millionth. If the
    counter rolled over between them (accepted readings only fall as a rollover), the line runs
    through the wrap: 99,990 -> 10 passes 0, not 50,000."""
    if after.at == before.at:
        return before.value
    share = Decimal(int((at - before.at).total_seconds())) / Decimal(int((after.at - before.at).total_seconds()))
    rise = difference(before.value, after.value, digits) * share
    value = (before.value + rise).quantize(INTERPOLATION_QUANTUM, rounding=ROUND_HALF_UP)
    capacity = Decimal(10) ** digits
    return value - capacity if value >= capacity else value


def manual_result(
    previous: Point | None, current: Point | None, first: Point | None, window_start: datetime, digits: int
) -> Result:
    """``current``: the latest reading before this window's end; ``previous``: before the previous
    window's end; ``first``: the meter's first reading ever."""
    if current is None or current.at < window_start:
        return Result(Provenance.MISSING, previous, current, None)
    start = previous or first
    assert start is not None  # current exists, so some first reading does too
    return Result(Provenance.READING, start, current, difference(start.value, current.value, digits))


def boundary_value(before: Point | None, after: Point | None, at: datetime, digits: int) -> tuple[Decimal | None, bool]:
    """The register at a boundary and whether it was read exactly there."""
    if before is not None and before.at == at:
        return before.value, True
    if before is None or after is None:
        return None, False
    return interpolate(before, after, at, digits), False


def automatic_result(
    start_before: Point | None,
    start_after: Point | None,
    end_before: Point | None,
    end_after: Point | None,
    period_start: datetime,
    period_end: datetime,
    digits: int,
    removed: bool = False,
) -> Result:
    """``removed``: the meter was taken off by the end of the period; it then ends at its last
    reading (the removal reading), as a meter installed during the period starts at its first."""
    start_value, start_exact = boundary_value(start_before, start_after, period_start, digits)
    if start_value is None and start_before is None and start_after is not None and start_after.at < period_end:
        # Installed during the period: it starts from its first reading.
        start_value, start_exact, period_start = start_after.value, True, start_after.at
    end_value, end_exact = boundary_value(end_before, end_after, period_end, digits)
    if end_value is None and removed and end_before is not None and end_before.at >= period_start:
        end_value, end_exact, period_end = end_before.value, True, end_before.at
    start = Point(period_start, start_value) if start_value is not None else None
    end = Point(period_end, end_value) if end_value is not None else None
    if start is None or end is None:
        return Result(Provenance.MISSING, start, end, None)
    provenance = Provenance.READING if start_exact and end_exact else Provenance.INTERPOLATED
    return Result(provenance, start, end, difference(start.value, end.value, digits))


# --- the computation ---------------------------------------------------------------------------


def compute_consumption(session: Session, period: Period, meter_ids: Collection[int] | None = None) -> Summary:
    """Compute (or recompute) ``period`` for every live meter, or for ``meter_ids``."""
    zone = get_settings().zone
    existing = delete(Consumption).where(Consumption.period == period.first_day)
    if meter_ids is not None:
        existing = existing.where(one_of(Consumption.meter_id, meter_ids, session))
    session.execute(existing)
    targets = _targets(session, period, zone, meter_ids)
    counts: dict[str, int] = {}
    rows = 0
    for chunk in _results(session, targets, period, zone):
        bulk_insert(session, Consumption.__table__, chunk)  # type: ignore[arg-type]
        rows += len(chunk)
        for row in chunk:
            counts[row["provenance"]] = counts.get(row["provenance"], 0) + 1
    return Summary(period, rows, counts)


def _targets(session: Session, period: Period, zone: ZoneInfo, meter_ids: Collection[int] | None) -> Any:
    """One row per live meter and zone, with the two instants its lookups are about (x0, x1),
    as a query: the instants depend only on the meter's kind and reading window, so a table of a
    few dozen windows is joined instead of computing a row per meter in Python."""
    previous = period.previous()
    windows = union_all(
        _window(True, 0, period.start(zone), period.end(zone), period.first_day),
        *(
            _window(False, day, _window_end(previous, day, zone), _window_end(period, day, zone), previous.day(day))
            for day in range(1, 32)
        ),
    ).subquery("windows")
    zones = union_all(*(select(literal(number).label("zone")) for number in (1, 2, 3))).subquery("zones")
    automatic = measured_by_device(period, zone)
    # A building meter is read by the operator at the month's end: its window is the whole month.
    day = case(
        (automatic, 0),
        (Meter.scope == MeterScope.BUILDING, 31),
        else_=func.coalesce(Organisation.reading_window_to, DEFAULT_WINDOW_END_DAY),
    )
    statement = (
        select(
            Meter.id.label("meter_id"),
            zones.c.zone,
            Meter.digits,
            Meter.archived_on,
            windows.c.automatic,
            windows.c.x0,
            windows.c.x1,
        )
        .join(Building, Building.id == Meter.building_id)
        .outerjoin(Organisation, Organisation.id == Building.manager_id)
        .join(windows, windows.c.day == day)
        .join(zones, zones.c.zone <= Meter.zones)
        .where(Meter.installed_on < period.next().first_day)
        # Taken off before the window began: nothing to measure.
        .where(or_(Meter.archived_on.is_(None), Meter.archived_on >= windows.c.first_day))
    )
    if meter_ids is not None:
        statement = statement.where(one_of(Meter.id, meter_ids, session))
    return statement.subquery("targets")


def measured_by_device(period: Period, zone: ZoneInfo, meter_id: Any = Meter.id) -> Any:
    """Whether the meter ``meter_id`` (a column: ``Meter.id`` unless given) is automatic for
    ``period``: a device measured it at some time during the period. Binding a device in
    November does not turn February's hand readings into interpolations."""
    return (
        select(DeviceBinding.id)
        .where(
            DeviceBinding.meter_id == meter_id,
            DeviceBinding.bound_from < period.end(zone),
            or_(DeviceBinding.bound_to.is_(None), DeviceBinding.bound_to > period.start(zone)),
        )
        .exists()
    )


def _window(automatic: bool, day: int, x0: datetime, x1: datetime, first_day: date) -> Any:
    return select(
        literal(automatic).label("automatic"),
        literal(day, SmallInteger).label("day"),
        literal(x0, UtcDateTime).label("x0"),
        literal(x1, UtcDateTime).label("x1"),
        literal(first_day, Date).label("first_day"),
    )


def _window_end(period: Period, day: int, zone: ZoneInfo) -> datetime:
    """The last instant of the reading window: a reading counts if taken before the next midnight."""
    return local_midnight(period.day(day), zone) + timedelta(days=1) - timedelta(microseconds=1)


def _results(session: Session, targets: Any, period: Period, zone: ZoneInfo) -> Iterator[list[dict[str, Any]]]:
    start, end = period.start(zone), period.end(zone)
    chunk: list[dict[str, Any]] = []
    for row in _lookups(session, targets):
        if row.automatic:
            result = automatic_result(
                _point(row.a_at, row.a_value),
                _point(row.b_at, row.b_value),
                _point(row.c_at, row.c_value),
                _point(row.d_at, row.d_value),
                start,
                end,
                row.digits,
                removed=row.archived_on is not None and row.archived_on < period.next().first_day,
            )
        else:
            previous, current, first = (
                _point(row.a_at, row.a_value),
                _point(row.c_at, row.c_value),
                _point(row.e_at, row.e_value),
            )
            result = manual_result(previous, current, first, row.x0 + timedelta(microseconds=1), row.digits)
        chunk.append(_row(row.meter_id, row.zone, period, result))
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _point(at: datetime | None, value: Any) -> Point | None:
    if at is None or value is None:
        return None
    return Point(at, value if isinstance(value, Decimal) else Decimal(str(value)))


def _row(meter_id: int, zone: int, period: Period, result: Result) -> dict[str, Any]:
    return {
        "meter_id": meter_id,
        "zone": zone,
        "period": period.first_day,
        "provenance": result.provenance.value,
        "start_value": result.start.value if result.start else None,
        "start_at": result.start.at if result.start else None,
        "end_value": result.end.value if result.end else None,
        "end_at": result.end.at if result.end else None,
        "volume": result.volume,
    }


def _lookups(session: Session, targets: Any) -> Iterator[Any]:
    """For every target, the readings it needs, each an index probe on ix_readings_live: the live
    reading at or before x0 (a) and x1 (c); for automatic meters also the first after x0 (b) and
    after x1 (d); for manual meters the meter's first reading ever (e). On PostgreSQL each probe is
    a LATERAL subquery giving time and value at once; SQLite runs two scalar subqueries."""
    lateral = session.get_bind().dialect.name == "postgresql"
    for automatic, names in ((False, "ace"), (True, "abcd")):
        columns: list[Any] = []
        source: Any = targets
        for name in "abcde":
            if name not in names:
                columns += [null().label(f"{name}_at"), null().label(f"{name}_value")]
                continue
            readings = Reading.__table__.alias(f"r_{name}")
            probe = _probe(targets, readings, name)
            if lateral:
                found = probe.lateral(f"l_{name}")
                source = source.outerjoin(found, true())
                columns += [
                    type_coerce(found.c.taken_at, DateTime(timezone=True)).label(f"{name}_at"),
                    type_coerce(found.c.value, Numeric()).label(f"{name}_value"),
                ]
            else:
                columns += [
                    probe.with_only_columns(readings.c.taken_at).scalar_subquery().label(f"{name}_at"),
                    probe.with_only_columns(readings.c.value).scalar_subquery().label(f"{name}_value"),
                ]
        statement = select(targets, *columns).select_from(source).where(targets.c.automatic.is_(automatic))
        # A server-side cursor: a region's million rows stream through, never all in memory.
        yield from session.connection().execute(statement.execution_options(yield_per=CHUNK))


def _probe(targets: Any, readings: Any, name: str) -> Any:
    """The single reading lookup ``name`` (a-e, see _lookups) of each target."""
    conditions = {
        "a": readings.c.taken_at <= targets.c.x0,
        "b": readings.c.taken_at > targets.c.x0,
        "c": readings.c.taken_at <= targets.c.x1,
        "d": readings.c.taken_at > targets.c.x1,
        "e": true(),
    }
    newest_first = name in "ac"
    return (
        select(readings.c.taken_at, readings.c.value)
        .where(
            readings.c.meter_id == targets.c.meter_id,
            readings.c.zone == targets.c.zone,
            readings.c.status == ReadingStatus.ACCEPTED.value,
            readings.c.superseded_by_id.is_(None),
            conditions[name],
        )
        .order_by(readings.c.taken_at.desc() if newest_first else readings.c.taken_at.asc())
        .limit(1)
        .correlate(targets)
    )
