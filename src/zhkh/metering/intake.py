"""The one pipeline every reading goes through, whatever brought it (file, API, resident, MQTT,
waterius over HTTP): resolve the meter, judge the reading against its neighbours in time, store
it with its provenance, quarantine what belongs to no live meter.

Set-based: a batch of readings costs a fixed handful of queries, not one per reading.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    and_,
    bindparam,
    func,
    literal,
    select,
    true,
    type_coerce,
    union_all,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from zhkh.core.bulk import insert_new_rows
from zhkh.core.clock import utc_now
from zhkh.core.config import get_settings
from zhkh.core.db import one_of
from zhkh.core.outbox import emit
from zhkh.core.periods import Period, local_date
from zhkh.core.types import UtcDateTime
from zhkh.metering.fastpath import LockedMeters, accept_plain, lock_meters
from zhkh.metering.models import (
    Device,
    DeviceBinding,
    FlowLimit,
    Meter,
    MeterScope,
    QuarantinedReading,
    Reading,
    ReadingStatus,
)
from zhkh.metering.validation import (
    MIN_JUMP_WINDOW,
    Decision,
    MeterFacts,
    Point,
    Verdict,
    judge,
    well_formed_moment,
    well_formed_name,
    well_formed_value,
)

CHUNK = 5_000


class Status(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    QUARANTINED = "quarantined"


@dataclass(frozen=True, slots=True)
class DeviceChannel:
    """A reading's origin when it came from a device: the device and the channel of its model's
    mapping (``ch0``, ``volume_m3``, ``t1``...). The binding in force at the reading's time says
    which meter and zone that was."""

    format: str
    external_id: str
    channel: str


# Not frozen: one is built for every reading, and a frozen dataclass's __init__ (every field set
# through object.__setattr__) costs more than the checks below. Nothing changes one once built.
@dataclass(slots=True)
class IncomingReading:
    taken_at: datetime
    value: Decimal
    zone: int = 1
    serial: str | None = None
    device: DeviceChannel | None = None
    source: str = "api"
    source_ref: str | None = None

    def __post_init__(self) -> None:
        """Refuse (``MalformedReading``) what no reading can be, whichever path built it: the
        database must never see an infinite value, a year-9999 time or a 10 KiB serial."""
        self.value = well_formed_value(self.value, "value")
        self.taken_at = well_formed_moment(self.taken_at, "taken_at")
        if self.serial is not None:
            self.serial = well_formed_name(self.serial, "serial")


@dataclass(slots=True)  # not frozen, like IncomingReading: one is built for every reading
class Outcome:
    status: Status
    reason: str | None = None
    detail: str | None = None
    reading_id: int | None = None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Target:
    meter_id: int
    zone: int
    facts: MeterFacts
    archived_on: date | None


@dataclass
class IntakeReport:
    """What happened to a batch, in the order the readings came."""

    outcomes: list[Outcome] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        totals: dict[str, int] = defaultdict(int)
        for outcome in self.outcomes:
            totals[outcome.status] += 1
        return dict(totals)

    def rejected_by_reason(self) -> dict[str, int]:
        totals: dict[str, int] = defaultdict(int)
        for outcome in self.outcomes:
            if outcome.status in (Status.REJECTED, Status.QUARANTINED):
                totals[outcome.reason or "unknown"] += 1
        return dict(totals)


def ingest(session: Session, readings: Sequence[IncomingReading], *, now: datetime | None = None) -> IntakeReport:
    """Judge and store ``readings``; returns one outcome per reading, in order."""
    report = IntakeReport()
    for start in range(0, len(readings), CHUNK):
        report.outcomes += _ingest_chunk(session, readings[start : start + CHUNK], now or utc_now())
    return report


def _ingest_chunk(session: Session, readings: Sequence[IncomingReading], now: datetime) -> list[Outcome]:
    outcomes: list[Outcome | None] = [None] * len(readings)
    arrived: set[int] = set()
    rest = list(range(len(readings)))
    if session.get_bind().dialect.name == "postgresql":
        serials = {r.serial for r in readings if r.serial is not None}
        meters = lock_meters(session, serials) if serials else {}
        rest = _accept_plain(session, readings, meters, now, outcomes, arrived)
    if rest:
        subset = [readings[i] for i in rest]
        for position, outcome in enumerate(_judge_and_store(session, subset, now, arrived)):
            outcomes[rest[position]] = outcome
    _announce(session, arrived, readings, outcomes, now)
    assert all(outcome is not None for outcome in outcomes)
    return [outcome for outcome in outcomes if outcome is not None]


def _accept_plain(
    session: Session,
    readings: Sequence[IncomingReading],
    meters: LockedMeters,
    now: datetime,
    outcomes: list[Outcome | None],
    arrived: set[int],
) -> list[int]:
    """The fast path (fastpath.py) takes readings of the locked meters by serial whose meter and
    zone occur once in the batch; returns the indices it did not accept, for the judge."""
    seen: dict[tuple[str, int], int] = {}
    repeated: set[tuple[str, int]] = set()
    for index, reading in enumerate(readings):
        if reading.serial is not None:
            key = (reading.serial, reading.zone)
            if key in seen:
                repeated.add(key)
            seen[key] = index
    candidates = [
        (index, r.serial, r.zone, r.taken_at, r.value, r.source, r.source_ref)
        for index, r in enumerate(readings)
        if r.serial is not None and (r.serial, r.zone) not in repeated
    ]
    if candidates and meters:
        limits = _flow_limits(session)

        def flow_limit(service: str, diameter_mm: int | None, individual: bool) -> Decimal | None:
            return _flow_limit(limits, service, diameter_mm, individual=individual)

        for index, reading_id, meter_id, flags in accept_plain(session, candidates, meters, flow_limit, now):
            outcomes[index] = Outcome(
                Status.ACCEPTED, reading_id=reading_id, flags=tuple(flags.split(",")) if flags else ()
            )
            arrived.add(meter_id)
    return [index for index, outcome in enumerate(outcomes) if outcome is None]


def _judge_and_store(
    session: Session, readings: Sequence[IncomingReading], now: datetime, arrived: set[int]
) -> list[Outcome]:
    """The general path: resolve, judge each reading against its neighbours, store, quarantine."""
    zone_info = get_settings().zone
    targets = _resolve(session, readings)
    device_meters = {t.meter_id for t, r in zip(targets, readings, strict=True) if isinstance(t, _Target) and r.device}
    if device_meters and session.get_bind().dialect.name == "postgresql":
        _lock_meters(session, one_of(Meter.id, device_meters, session))
    outcomes: list[Outcome | None] = [None] * len(readings)
    quarantine: list[tuple[int, str, str]] = []
    by_group: dict[tuple[int, int], list[int]] = defaultdict(list)
    for index, (reading, target) in enumerate(zip(readings, targets, strict=True)):
        if isinstance(target, tuple):
            quarantine.append((index, *target))
        elif target.archived_on is not None and local_date(reading.taken_at, zone_info) > target.archived_on:
            detail = f"meter {target.facts.serial} was archived on {target.archived_on}"
            quarantine.append((index, "archived_meter", detail))
        else:
            by_group[(target.meter_id, target.zone)].append(index)

    known = _known_points(session, readings, by_group)
    decisions = _judge_groups(readings, targets, by_group, known, zone_info, now)
    for index, outcome in _store(session, readings, targets, decisions).items():
        outcomes[index] = outcome
    for index, outcome in _quarantine(session, readings, quarantine).items():
        outcomes[index] = outcome
    for index, decision in decisions.items():
        target = targets[index]
        if decision.verdict is Verdict.ACCEPTED and isinstance(target, _Target):
            arrived.add(target.meter_id)
    assert all(outcome is not None for outcome in outcomes)
    return [outcome for outcome in outcomes if outcome is not None]


def _lock_meters(session: Session, condition: Any) -> None:
    """Hold the meters a batch writes to until it commits. A reading is judged against the
    meter's stored readings; two transactions judging readings of one meter at once would each
    miss the other's and could both accept (200 and 150 at one moment). Locked in id order, so
    two batches never wait for each other in a circle. (SQLite has one writer at a time.)"""
    session.execute(select(Meter.id).where(condition).order_by(Meter.id).with_for_update(key_share=True))


def judge_correction(session: Session, original: Reading, value: Decimal, now: datetime | None = None) -> Decision:
    """How the judge sees ``value`` put in place of ``original``: against the accepted readings
    around it in time, the original itself left out. A correction must fit its neighbours like
    any reading, or it would turn a typo into a phantom rollover."""
    serial = session.scalar(select(Meter.serial).where(Meter.id == original.meter_id))
    assert serial is not None
    candidate = IncomingReading(original.taken_at, value, original.zone, serial, source="operator")
    [target] = _resolve(session, [candidate])
    assert isinstance(target, _Target)
    if session.get_bind().dialect.name == "postgresql":
        _lock_meters(session, Meter.id == target.meter_id)
    group = (target.meter_id, target.zone)
    points = _known_points(session, [candidate], {group: [0]})[group]
    if original.status is ReadingStatus.ACCEPTED and original.superseded_by_id is None:
        points.remove(original.taken_at)
    previous, same, following = points.around(original.taken_at)
    day_before, day_after = points.day_span(original.taken_at)
    return judge(
        target.facts,
        target.zone,
        Point(original.taken_at, value),
        previous=previous,
        following=following,
        same_moment=same,
        local_day=local_date(original.taken_at, get_settings().zone),
        now=now or utc_now(),
        day_before=day_before,
        day_after=day_after,
    )


# --- which meter ------------------------------------------------------------------------------


def _resolve(session: Session, readings: Sequence[IncomingReading]) -> list[_Target | tuple[str, str]]:
    """Each reading's meter and zone, or (reason, detail) for quarantine."""
    limits = _flow_limits(session)
    serials = {r.serial for r in readings if r.serial is not None}
    meters = _meters(session, one_of(Meter.serial, serials, session), limits) if serials else {}
    by_serial = {facts.serial: (meter_id, facts, archived) for meter_id, (facts, archived) in meters.items()}
    bindings = _bindings(session, {r.device for r in readings if r.device is not None})
    bound_ids = {meter_id for rows in bindings.values() for _, meter_id, _, _ in rows}
    bound_meters = _meters(session, one_of(Meter.id, bound_ids, session), limits) if bound_ids else {}

    resolved: list[_Target | tuple[str, str]] = []
    for reading in readings:
        if reading.serial is not None:
            found = by_serial.get(reading.serial)
            if found is None:
                resolved.append(("unknown_meter", f"no meter with serial {reading.serial!r}"))
                continue
            meter_id, facts, archived = found
            resolved.append(_Target(meter_id, reading.zone, facts, archived))
            continue
        assert reading.device is not None
        resolved.append(_resolve_device(reading, bindings, bound_meters))
    return resolved


def _resolve_device(
    reading: IncomingReading,
    bindings: dict[DeviceChannel, list[tuple[datetime, int, int, datetime | None]]],
    meters: dict[int, tuple[MeterFacts, date | None]],
) -> _Target | tuple[str, str]:
    assert reading.device is not None
    device = reading.device
    rows = bindings.get(device)
    if rows is None:
        return ("unknown_device", f"no {device.format} device {device.external_id!r} is registered")
    for bound_from, meter_id, zone, bound_to in rows:
        if bound_from <= reading.taken_at and (bound_to is None or reading.taken_at < bound_to):
            facts, archived = meters[meter_id]
            return _Target(meter_id, zone, facts, archived)
    return ("unbound_channel", f"channel {device.channel!r} of device {device.external_id!r} is bound to no meter then")


def _meters(
    session: Session, condition: Any, limits: dict[tuple[str, int | None], Decimal]
) -> dict[int, tuple[MeterFacts, date | None]]:
    zone = get_settings().zone
    # Core rows as plain tuples, enums as their text: this runs for every batch of readings.
    rows = session.connection().execute(
        select(
            Meter.id,
            Meter.serial,
            Meter.zones,
            Meter.digits,
            Meter.installed_on,
            Meter.verified_until,
            Meter.archived_on,
            type_coerce(Meter.service, String),
            Meter.diameter_mm,
            type_coerce(Meter.scope, String),
        ).where(condition)
    )
    individual = MeterScope.INDIVIDUAL.value
    return {
        meter_id: (
            MeterFacts(
                serial,
                zones,
                digits,
                installed_on,
                verified_until,
                _flow_limit(limits, service, diameter, individual=scope == individual),
                zone=zone,
            ),
            archived_on,
        )
        for (
            meter_id,
            serial,
            zones,
            digits,
            installed_on,
            verified_until,
            archived_on,
            service,
            diameter,
            scope,
        ) in rows.all()
    }


def _flow_limit(
    limits: dict[tuple[str, int | None], Decimal], service: str, diameter_mm: int | None, *, individual: bool
) -> Decimal | None:
    """The row for the meter's diameter; the service's default row only for flat meters (a
    building meter's pipe is far larger than a flat's)."""
    if (service, diameter_mm) in limits and diameter_mm is not None:
        return limits[(service, diameter_mm)]
    return limits.get((service, None)) if individual else None


def _flow_limits(session: Session) -> dict[tuple[str, int | None], Decimal]:
    limits = FlowLimit.__table__.c  # Core, not ORM: read for every batch of readings
    return {
        (str(service), diameter): limit
        for service, diameter, limit in session.connection().execute(
            select(limits.service, limits.diameter_mm, limits.max_per_hour)
        )
    }


def _bindings(
    session: Session, channels: Iterable[DeviceChannel]
) -> dict[DeviceChannel, list[tuple[datetime, int, int, datetime | None]]]:
    wanted = set(channels)
    if not wanted:
        return {}
    devices = {(d.format, d.external_id) for d in wanted}
    rows = session.execute(
        select(
            Device.format,
            Device.external_id,
            DeviceBinding.channel,
            DeviceBinding.bound_from,
            DeviceBinding.meter_id,
            DeviceBinding.zone,
            DeviceBinding.bound_to,
        )
        .join(DeviceBinding, DeviceBinding.device_id == Device.id, isouter=True)
        .where(Device.external_id.in_({external for _, external in devices}))
    )
    found: dict[DeviceChannel, list[tuple[datetime, int, int, datetime | None]]] = {}
    registered: set[tuple[str, str]] = set()
    for row in rows:
        if (row.format, row.external_id) not in devices:
            continue
        registered.add((row.format, row.external_id))
        if row.channel is not None:
            key = DeviceChannel(row.format, row.external_id, row.channel)
            found.setdefault(key, []).append((row.bound_from, row.meter_id, row.zone, row.bound_to))
    for channel in wanted:
        if (channel.format, channel.external_id) in registered:
            found.setdefault(channel, [])  # registered, but this channel is bound to nothing
    return found


# --- what is already known around each reading -------------------------------------------------

_GROUPS = Table(
    "intake_groups",
    MetaData(),
    Column("meter_id", Integer),
    Column("zone", SmallInteger),
    Column("min_t", UtcDateTime),
    Column("max_t", UtcDateTime),
    prefixes=["TEMPORARY"],
)


@dataclass
class _Known:
    """A group's accepted readings around the batch (sorted by time), and every stored
    (time, value) pair in the batch's time span, whatever its status, to spot exact repeats."""

    times: list[datetime] = field(default_factory=list)
    values: list[Decimal] = field(default_factory=list)
    stored: set[tuple[datetime, Decimal]] = field(default_factory=set)

    def add(self, taken_at: datetime, value: Decimal) -> None:
        position = bisect.bisect_left(self.times, taken_at)
        self.times.insert(position, taken_at)
        self.values.insert(position, value)

    def remove(self, taken_at: datetime) -> None:
        position = bisect.bisect_left(self.times, taken_at)
        if position < len(self.times) and self.times[position] == taken_at:
            del self.times[position], self.values[position]

    def day_span(self, taken_at: datetime) -> tuple[Point | None, Point | None]:
        """The earliest accepted reading in the 24 hours before ``taken_at``, and the latest in
        the 24 hours after it."""
        first = bisect.bisect_left(self.times, taken_at - MIN_JUMP_WINDOW)
        before = bisect.bisect_left(self.times, taken_at)
        after = bisect.bisect_right(self.times, taken_at)
        last = bisect.bisect_right(self.times, taken_at + MIN_JUMP_WINDOW)
        earliest = Point(self.times[first], self.values[first]) if first < before else None
        latest = Point(self.times[last - 1], self.values[last - 1]) if last > after else None
        return earliest, latest

    def around(self, taken_at: datetime) -> tuple[Point | None, Point | None, Point | None]:
        """The accepted readings just before, at and just after ``taken_at``."""
        left = bisect.bisect_left(self.times, taken_at)
        right = bisect.bisect_right(self.times, taken_at)
        previous = Point(self.times[left - 1], self.values[left - 1]) if left else None
        same = Point(self.times[left], self.values[left]) if right > left else None
        following = Point(self.times[right], self.values[right]) if right < len(self.times) else None
        return previous, same, following


def _known_points(
    session: Session, readings: Sequence[IncomingReading], by_group: dict[tuple[int, int], list[int]]
) -> dict[tuple[int, int], _Known]:
    """One query for every group of the batch: the accepted reading just before its earliest
    reading, the one just after its latest, and all stored readings in between."""
    known = {group: _Known() for group in by_group}
    if not by_group:
        return known
    spans = []
    for (meter_id, zone), indices in by_group.items():
        if len(indices) == 1:  # the usual case: one reading per meter in a batch
            first = last = readings[indices[0]].taken_at
        else:
            times = [readings[i].taken_at for i in indices]
            first, last = min(times), max(times)
        # A day either side: the judge checks what the meter passed within any 24 hours.
        spans.append((meter_id, zone, first - MIN_JUMP_WINDOW, last + MIN_JUMP_WINDOW))
    connection = session.connection()
    groups = _group_source(connection, spans)
    found = connection.execute(_neighbours_query(groups, lateral=connection.dialect.name == "postgresql")).all()
    for kind, meter_id, zone, taken_at, value, status, superseded in found:
        group = known[(meter_id, zone)]
        value = value if isinstance(value, Decimal) else Decimal(value)
        if kind == "within":
            group.stored.add((taken_at, value))
            if status != ReadingStatus.ACCEPTED or superseded:
                continue
        group.add(taken_at, value)
    if connection.dialect.name != "postgresql":
        connection.execute(_GROUPS.delete())
    return known


def _group_source(connection: Any, spans: list[tuple[int, int, datetime, datetime]]) -> Any:
    """The batch's (meter, zone, first time, last time) as a table to join: on PostgreSQL four
    arrays unnested in the query itself, elsewhere a temporary table."""
    if connection.dialect.name == "postgresql":
        meter_ids, zones, firsts, lasts = (list(column) for column in zip(*spans, strict=True))
        return (
            func.unnest(
                bindparam(None, meter_ids, type_=ARRAY(BigInteger)),
                bindparam(None, zones, type_=ARRAY(SmallInteger)),
                bindparam(None, firsts, type_=ARRAY(DateTime(timezone=True))),
                bindparam(None, lasts, type_=ARRAY(DateTime(timezone=True))),
            )
            .table_valued("meter_id", "zone", "min_t", "max_t", name="intake_groups")
            .render_derived()
        )
    _GROUPS.create(connection, checkfirst=True)
    rows = [{"meter_id": m, "zone": z, "min_t": first, "max_t": last} for m, z, first, last in spans]
    connection.execute(_GROUPS.insert(), rows)
    return _GROUPS


def _neighbours_query(groups: Any, lateral: bool) -> Any:
    """The accepted reading before each group's span, the one after it, and every stored reading
    within it. On PostgreSQL each part is a LATERAL subquery, so the plan is an index probe per
    group whatever the statistics say; SQLite runs correlated subqueries that way anyway."""
    readings = Reading.__table__
    if lateral:
        return union_all(*(_lateral_part(groups, kind) for kind in ("before", "after", "within")))
    inner = Reading.__table__.alias("nearest")

    def same_series(table: Any) -> Any:
        return and_(table.c.meter_id == groups.c.meter_id, table.c.zone == groups.c.zone)

    def nearest(kind: str, aggregate: Any, condition: Any) -> Any:
        moment = (
            select(aggregate(inner.c.taken_at)).where(same_series(inner), _live(inner), condition).correlate(groups)
        ).scalar_subquery()
        return (
            select(*_neighbour_columns(kind, readings))
            .select_from(groups.join(readings, and_(same_series(readings), readings.c.taken_at == moment)))
            .where(_live(readings))
        )

    within = (
        select(*_neighbour_columns("within", readings))
        .select_from(groups.join(readings, same_series(readings)))
        .where(readings.c.taken_at.between(groups.c.min_t, groups.c.max_t))
    )
    return union_all(
        nearest("before", func.max, inner.c.taken_at < groups.c.min_t),
        nearest("after", func.min, inner.c.taken_at > groups.c.max_t),
        within,
    )


def _live(table: Any) -> Any:
    return and_(table.c.status == ReadingStatus.ACCEPTED.value, table.c.superseded_by_id.is_(None))


def _lateral_part(groups: Any, kind: str) -> Any:
    table = Reading.__table__.alias(f"r_{kind}")
    probe = select(table).where(table.c.meter_id == groups.c.meter_id, table.c.zone == groups.c.zone)
    if kind == "before":
        probe = probe.where(_live(table), table.c.taken_at < groups.c.min_t).order_by(table.c.taken_at.desc()).limit(1)
    elif kind == "after":
        probe = probe.where(_live(table), table.c.taken_at > groups.c.max_t).order_by(table.c.taken_at.asc()).limit(1)
    else:
        probe = probe.where(table.c.taken_at.between(groups.c.min_t, groups.c.max_t))
    found = probe.lateral(f"l_{kind}")
    return select(*_neighbour_columns(kind, found)).select_from(groups.join(found, true()))


def _neighbour_columns(kind: str, readings: Any) -> list[Any]:
    return [
        literal(kind).label("kind"),
        readings.c.meter_id,
        readings.c.zone,
        readings.c.taken_at,
        readings.c.value,
        readings.c.status,
        readings.c.superseded_by_id.is_not(None).label("superseded"),
    ]


# --- judging -----------------------------------------------------------------------------------


def _judge_groups(
    readings: Sequence[IncomingReading],
    targets: Sequence[_Target | tuple[str, str]],
    by_group: dict[tuple[int, int], list[int]],
    known: dict[tuple[int, int], _Known],
    zone_info: ZoneInfo,
    now: datetime,
) -> dict[int, Decision]:
    """Judge each group's readings in time order, each against what is known and what this
    batch accepted before it, so a batch is judged as if its readings had come one by one."""
    decisions: dict[int, Decision] = {}
    for group, indices in by_group.items():
        points = known[group]
        ordered = (
            indices if len(indices) == 1 else sorted(indices, key=lambda i: (readings[i].taken_at, readings[i].value))
        )
        for index in ordered:
            reading, target = readings[index], targets[index]
            assert isinstance(target, _Target)
            if (reading.taken_at, reading.value) in points.stored:
                decisions[index] = Decision(Verdict.DUPLICATE, detail="the same reading is already recorded")
                continue
            previous, same, following = points.around(reading.taken_at)
            day_before, day_after = points.day_span(reading.taken_at)
            decision = judge(
                target.facts,
                target.zone,
                Point(reading.taken_at, reading.value),
                previous=previous,
                following=following,
                same_moment=same,
                local_day=local_date(reading.taken_at, zone_info),
                now=now,
                day_before=day_before,
                day_after=day_after,
            )
            decisions[index] = decision
            points.stored.add((reading.taken_at, reading.value))
            if decision.verdict is Verdict.ACCEPTED:
                points.add(reading.taken_at, reading.value)
    return decisions


# --- storing -----------------------------------------------------------------------------------


def _store(
    session: Session,
    readings: Sequence[IncomingReading],
    targets: Sequence[_Target | tuple[str, str]],
    decisions: dict[int, Decision],
) -> dict[int, Outcome]:
    """Insert accepted and rejected readings; a row another consumer stored meanwhile (the unique
    key meter, zone, time, value) is skipped and reported as a duplicate."""
    outcomes: dict[int, Outcome] = {}
    rows: list[dict[str, Any]] = []
    keys: list[int] = []
    for index, decision in decisions.items():
        if decision.verdict is Verdict.DUPLICATE:
            outcomes[index] = Outcome(Status.DUPLICATE, detail=decision.detail)
            continue
        reading, target = readings[index], targets[index]
        assert isinstance(target, _Target)
        accepted = decision.verdict is Verdict.ACCEPTED
        rows.append(
            {
                "meter_id": target.meter_id,
                "zone": target.zone,
                "taken_at": reading.taken_at,
                "value": reading.value,
                "status": (ReadingStatus.ACCEPTED if accepted else ReadingStatus.REJECTED).value,
                "reason": decision.reason.value if decision.reason else None,
                "detail": decision.detail,
                "flags": decision.flags_text,
                "source": reading.source,
                "source_ref": reading.source_ref,
            }
        )
        keys.append(index)
    inserted = _insert_new(session, rows)
    for index, row in zip(keys, rows, strict=True):
        decision = decisions[index]
        reading_id = inserted.get((row["meter_id"], row["zone"], row["taken_at"], Decimal(row["value"]).normalize()))
        if reading_id is None:
            outcomes[index] = Outcome(Status.DUPLICATE, detail="the same reading was stored meanwhile")
        elif decision.verdict is Verdict.ACCEPTED:
            outcomes[index] = Outcome(Status.ACCEPTED, reading_id=reading_id, flags=decision.flags)
        else:
            reason = decision.reason.value if decision.reason else None
            outcomes[index] = Outcome(Status.REJECTED, reason, decision.detail, reading_id)
    return outcomes


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> dict[tuple[int, int, datetime, Decimal], int]:
    if not rows:
        return {}
    result = insert_new_rows(
        session, Reading, rows, returning=(Reading.id, Reading.meter_id, Reading.zone, Reading.taken_at, Reading.value)
    )
    return {(r.meter_id, r.zone, r.taken_at, r.value.normalize()): r.id for r in result}


def _quarantine(
    session: Session, readings: Sequence[IncomingReading], quarantine: list[tuple[int, str, str]]
) -> dict[int, Outcome]:
    if not quarantine:
        return {}
    rows = []
    for index, reason, _detail in quarantine:
        reading = readings[index]
        rows.append(
            {
                "reason": reason,
                "serial": reading.serial,
                "device_format": reading.device.format if reading.device else None,
                "device_id": reading.device.external_id if reading.device else None,
                "channel": reading.device.channel if reading.device else None,
                "zone": reading.zone,
                "taken_at": reading.taken_at,
                "value": reading.value,
                "source": reading.source,
                "source_ref": reading.source_ref,
            }
        )
    session.execute(_insert_ignoring_repeats(session, QuarantinedReading), rows)
    return {index: Outcome(Status.QUARANTINED, reason, detail) for index, reason, detail in quarantine}


def _insert_ignoring_repeats(session: Session, model: type[Any]) -> Any:
    """INSERT that skips a row a unique index already has (the same reading quarantined again)."""
    dialect = session.get_bind().dialect.name
    statement = postgresql_insert(model) if dialect == "postgresql" else sqlite_insert(model)
    return statement.on_conflict_do_nothing()


def _announce(
    session: Session,
    arrived: set[int],
    readings: Sequence[IncomingReading],
    outcomes: Sequence[Outcome | None],
    now: datetime,
) -> None:
    """Tell the rest of the platform, through the outbox: alarms evaluate the meters that got
    readings; a reading dated in an earlier period (late, or simply last month's reading
    imported on the 1st) makes its meter's consumption stale from that period on."""
    if not arrived:
        return
    zone_info = get_settings().zone
    this_period_start = Period.of(local_date(now, zone_info)).start(zone_info)
    earlier = {
        outcome.reading_id: reading.taken_at
        for reading, outcome in zip(readings, outcomes, strict=True)
        if outcome is not None
        and outcome.status is Status.ACCEPTED
        and outcome.reading_id is not None
        and reading.taken_at < this_period_start  # one comparison for the usual, current reading
    }
    stale: dict[int, str] = {}
    if earlier:
        for reading_id, meter_id in session.execute(
            select(Reading.id, Reading.meter_id).where(one_of(Reading.id, earlier, session))
        ):
            period = str(Period.of(local_date(earlier[reading_id], zone_info)))
            stale[meter_id] = min(period, stale.get(meter_id, period))
    announce_readings(session, arrived, stale)


def announce_readings(session: Session, meter_ids: Iterable[int], stale_from: dict[int, str]) -> None:
    """``metering.readings_arrived``: these meters got readings; recompute each one's
    consumption from its ``stale_from`` period (``YYYY-MM``) on, and check it for alarms."""
    emit(session, "metering.readings_arrived", {"meter_ids": sorted(meter_ids), "stale_from": stale_from})
