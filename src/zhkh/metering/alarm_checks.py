"""The metering alarm rules applied to meters: on arrival of readings (leak, spike) and on a
schedule (no data, verification expiring, reading window closing, leak)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zhkh.alarms.models import AlarmKind
from zhkh.alarms.rules import MAX_SAMPLE_GAP, Sample, continuous_flow, expiring, silent, spike, window_closing
from zhkh.alarms.service import Finding, reconcile
from zhkh.core.clock import utc_now
from zhkh.core.config import get_settings
from zhkh.core.periods import Period, local_date, local_midnight
from zhkh.housing.models import Building, Organisation
from zhkh.metering.consumption import DEFAULT_WINDOW_END_DAY, compute_consumption
from zhkh.metering.models import Consumption, Meter, MeterScope, Provenance, Reading, ReadingStatus

HISTORY_PERIODS = 6


def _live(statement: Any) -> Any:
    return statement.where(Reading.status == ReadingStatus.ACCEPTED, Reading.superseded_by_id.is_(None))


def _meters(session: Session, meter_ids: Collection[int] | None = None, **conditions: Any) -> list[Any]:
    statement = select(Meter.id, Meter.serial, Meter.building_id, Meter.account_id, Meter.automatic).where(
        Meter.archived_on.is_(None)
    )
    if meter_ids is not None:
        statement = statement.where(Meter.id.in_(meter_ids))
    for name, value in conditions.items():
        statement = statement.where(getattr(Meter, name) == value)
    return list(session.execute(statement))


def _batches(meters: Sequence[Any], size: int = 5_000) -> Iterator[list[int]]:
    """Meter ids in slices, so a query's IN list stays a reasonable size on a region's scale."""
    for start in range(0, len(meters), size):
        yield [m.id for m in meters[start : start + size]]


def _subject(meter: Any) -> str:
    return f"meter:{meter.serial}"


def _finding(meter: Any, **details: Any) -> Finding:
    return Finding(meter.building_id, meter.account_id, {"meter": meter.serial, **details})


# --- on arrival --------------------------------------------------------------------------------


def on_readings_arrived(session: Session, payload: Mapping[str, Any], now: datetime | None = None) -> None:
    """Handler of ``metering.readings_arrived``: bring the meters' consumption up to date (from
    the stale period on, for late readings) and check them for leaks and spikes."""
    moment = now or utc_now()
    meter_ids = [int(m) for m in payload["meter_ids"]]
    current = Period.of(local_date(moment, get_settings().zone))
    by_period: dict[Period, set[int]] = defaultdict(set)
    by_period[current].update(meter_ids)
    for meter_id, first in dict(payload.get("stale_from", {})).items():
        period = Period.parse(first)
        while period <= current:
            by_period[period].add(int(meter_id))
            period = period.next()
    for period in sorted(by_period):
        compute_consumption(session, period, by_period[period])
    meters = _meters(session, meter_ids)
    check_spikes(session, meters, current)
    check_leaks(session, [m for m in meters if m.automatic], moment)


def check_leaks(session: Session, meters: list[Any], now: datetime) -> dict[str, int]:
    """Leak: an automatic meter whose register rose between every two readings of the window."""
    if not meters:
        return {}
    window = timedelta(hours=get_settings().alarm_leak_hours)
    series: dict[int, list[Sample]] = defaultdict(list)
    for ids in _batches(meters):
        rows = session.execute(
            _live(select(Reading.meter_id, Reading.taken_at, Reading.value))
            .where(Reading.meter_id.in_(ids), Reading.zone == 1)
            .where(Reading.taken_at >= now - window - MAX_SAMPLE_GAP, Reading.taken_at <= now)
            .order_by(Reading.meter_id, Reading.taken_at)
        )
        for meter_id, taken_at, value in rows:
            series[meter_id].append(Sample(taken_at, value))
    hours = int(window.total_seconds()) // 3600
    holding = {
        _subject(m): _finding(m, hours=hours) for m in meters if continuous_flow(series.get(m.id, []), window, now)
    }
    return reconcile(session, AlarmKind.LEAK, holding, {_subject(m) for m in meters}, now)


def check_spikes(session: Session, meters: list[Any], period: Period) -> dict[str, int]:
    """Spike: this period's use per day is ``alarm_spike_factor`` times the meter's own average
    over its last six measured periods (and above a floor)."""
    if not meters:
        return {}
    settings = get_settings()
    first = period
    for _ in range(HISTORY_PERIODS):
        first = first.previous()
    rows = session.execute(
        select(Consumption.meter_id, Consumption.period, Consumption.volume, Consumption.start_at, Consumption.end_at)
        .where(Consumption.meter_id.in_([m.id for m in meters]), Consumption.zone == 1)
        .where(Consumption.period >= first.first_day, Consumption.period <= period.first_day)
        .where(Consumption.provenance != Provenance.MISSING)
    )
    current: dict[int, Decimal] = {}
    history: dict[int, tuple[Decimal, Decimal]] = defaultdict(lambda: (Decimal(0), Decimal(0)))
    for meter_id, row_period, volume, start_at, end_at in rows:
        if volume is None:
            continue
        days = Decimal(int((end_at - start_at).total_seconds())) / 86400 if start_at and end_at else Decimal(0)
        if days < 1:
            continue
        if row_period == period.first_day:
            current[meter_id] = volume / days
        else:
            total, span = history[meter_id]
            history[meter_id] = (total + volume, span + days)
    holding = {}
    evaluated = set()
    for meter in meters:
        if meter.id not in current:
            continue
        evaluated.add(_subject(meter))
        total, span = history.get(meter.id, (Decimal(0), Decimal(0)))
        typical = total / span if span >= 28 else None
        rate = current[meter.id]
        if spike(rate, typical, factor=settings.alarm_spike_factor, floor=settings.alarm_spike_floor_per_day):
            assert typical is not None
            holding[_subject(meter)] = _finding(
                meter, rate=_rounded(rate), typical=_rounded(typical), factor=str(settings.alarm_spike_factor)
            )
    return reconcile(session, AlarmKind.SPIKE, holding, evaluated)


def _rounded(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.001")))


# --- on a schedule -----------------------------------------------------------------------------


def run_scheduled_checks(session: Session, now: datetime | None = None) -> dict[str, dict[str, int]]:
    moment = now or utc_now()
    automatic = _meters(session, automatic=True)
    return {
        "no_data": check_silence(session, automatic, moment),
        "leak": check_leaks(session, automatic, moment),
        "verification_expiring": check_verification(session, moment),
        "reading_missing": check_missing_readings(session, moment),
    }


def check_silence(session: Session, meters: list[Any], now: datetime) -> dict[str, int]:
    if not meters:
        return {}
    limit = timedelta(days=get_settings().alarm_no_data_days)
    last: dict[int, datetime] = {}
    for ids in _batches(meters):
        last.update(
            session.execute(
                _live(select(Reading.meter_id, func.max(Reading.taken_at)))
                .where(Reading.meter_id.in_(ids), Reading.zone == 1)
                .group_by(Reading.meter_id)
            ).all()
        )
    zone = get_settings().zone
    holding = {}
    for meter in meters:
        seen = last.get(meter.id)
        if silent(seen, now, limit):
            shown = local_date(seen, zone).isoformat() if seen else "—"
            holding[_subject(meter)] = _finding(meter, last_seen=shown)
    return reconcile(session, AlarmKind.NO_DATA, holding, {_subject(m) for m in meters}, now)


def check_verification(session: Session, now: datetime) -> dict[str, int]:
    """Verification expiring within ``alarm_verification_days`` (or already expired)."""
    settings = get_settings()
    today = local_date(now, settings.zone)
    within = timedelta(days=settings.alarm_verification_days)
    # Only meters near the date are loaded; every other open alarm of this kind is cleared.
    rows = session.execute(
        select(Meter.id, Meter.serial, Meter.building_id, Meter.account_id, Meter.verified_until).where(
            Meter.archived_on.is_(None), Meter.verified_until <= today + within
        )
    )
    holding = {
        _subject(m): _finding(m, until=m.verified_until.isoformat())
        for m in rows
        if expiring(m.verified_until, today, within)
    }
    return reconcile(session, AlarmKind.VERIFICATION_EXPIRING, holding, None, now)


def check_missing_readings(session: Session, now: datetime) -> dict[str, int]:
    """A resident's meter with no reading yet in a reading window that closes within
    ``alarm_window_closing_days``: remind them while there is still time."""
    settings = get_settings()
    zone = settings.zone
    today = local_date(now, zone)
    period = Period.of(today)
    before = timedelta(days=settings.alarm_window_closing_days)
    window_day = func.coalesce(Organisation.reading_window_to, DEFAULT_WINDOW_END_DAY)
    meters = session.execute(
        select(Meter.id, Meter.serial, Meter.building_id, Meter.account_id, window_day.label("day"))
        .join(Building, Building.id == Meter.building_id)
        .outerjoin(Organisation, Organisation.id == Building.manager_id)
        .where(Meter.archived_on.is_(None), Meter.automatic.is_(False), Meter.scope == MeterScope.INDIVIDUAL)
    ).all()
    if not meters:
        return {}
    since = min(local_midnight(period.previous().day(m.day), zone) + timedelta(days=1) for m in meters)
    latest: dict[int, datetime] = {}
    for ids in _batches(meters):
        latest.update(
            session.execute(
                _live(select(Reading.meter_id, func.max(Reading.taken_at)))
                .where(Reading.meter_id.in_(ids), Reading.taken_at >= since)
                .group_by(Reading.meter_id)
            ).all()
        )
    holding = {}
    for meter in meters:
        window_start = local_midnight(period.previous().day(meter.day), zone) + timedelta(days=1)
        seen = latest.get(meter.id)
        has_reading = seen is not None and seen >= window_start
        if window_closing(today, period.day(meter.day), before, has_reading):
            holding[_subject(meter)] = _finding(meter, window_end=period.day(meter.day).isoformat())
    return reconcile(session, AlarmKind.READING_MISSING, holding, None, now)
