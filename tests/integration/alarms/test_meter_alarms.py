"""Alarm rules applied to meters, on both databases: raised once, updated, acknowledged, cleared."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tests.builders import device_models, metered_registry
from zhkh.alarms.models import Alarm, AlarmKind, AlarmState
from zhkh.alarms.service import AlarmAlreadyCleared, acknowledge, clear_by_hand
from zhkh.core.outbox import OutboxMessage
from zhkh.core.periods import Period
from zhkh.metering.alarm_checks import (
    check_leaks,
    check_missing_readings,
    check_silence,
    check_spikes,
    check_verification,
    on_readings_arrived,
)
from zhkh.metering.consumption import compute_consumption
from zhkh.metering.intake import IncomingReading, ingest
from zhkh.metering.models import Meter
from zhkh.metering.service import bind_device, register_device


@pytest.fixture
def meters(session: Session, tmp_path: Path) -> None:
    metered_registry(session, tmp_path)


def automatic(session: Session, serial: str = "CW-1001") -> list[Any]:
    device_models(session)
    register_device(session, "iperl", "33225544")
    bind_device(session, "wmbusmeters", "33225544", "total_m3", serial, since=datetime(2026, 1, 1, tzinfo=UTC))
    return [m for m in _meters(session) if m.serial == serial]


def _meters(session: Session) -> list[Any]:
    return list(session.execute(select(Meter.id, Meter.serial, Meter.building_id, Meter.account_id, Meter.automatic)))


def alarms(session: Session, kind: AlarmKind) -> list[Alarm]:
    return list(session.scalars(select(Alarm).where(Alarm.kind == kind).order_by(Alarm.id)))


def hourly(serial: str, start: datetime, hours: int, step: str, first: str = "100") -> list[IncomingReading]:
    return [
        IncomingReading(start + timedelta(hours=h), Decimal(first) + Decimal(step) * h, 1, serial, source="test")
        for h in range(hours)
    ]


@pytest.mark.usefixtures("meters")
def test_leak_raised_once_then_updated_then_cleared(session: Session) -> None:
    meters = automatic(session)
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    ingest(session, hourly("CW-1001", now - timedelta(hours=30), 31, "0.01"), now=now)
    assert check_leaks(session, meters, now) == {"raised": 1, "updated": 0, "cleared": 0}
    assert check_leaks(session, meters, now) == {"raised": 0, "updated": 1, "cleared": 0}
    [alarm] = alarms(session, AlarmKind.LEAK)
    assert (alarm.state, alarm.occurrences, alarm.subject) == (AlarmState.ACTIVE, 2, "meter:CW-1001")
    raised = session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "alarm.raised")).all()
    assert len(raised) == 1, "a repeat updates the alarm instead of notifying again"
    acknowledge(session, alarm.id, "dispatcher")
    assert alarm.state is AlarmState.ACKNOWLEDGED
    # Water stopped for an hour: no more leak.
    later = now + timedelta(hours=2)
    ingest(
        session,
        [
            IncomingReading(later - timedelta(hours=1), Decimal("100.30"), 1, "CW-1001"),
            IncomingReading(later, Decimal("100.30"), 1, "CW-1001"),
        ],
        now=later,
    )
    check_leaks(session, meters, later + timedelta(hours=20))
    assert alarms(session, AlarmKind.LEAK)[0].state is AlarmState.CLEARED
    with pytest.raises(AlarmAlreadyCleared):
        acknowledge(session, alarm.id, "dispatcher")


@pytest.mark.usefixtures("meters")
def test_no_data_from_an_automatic_meter(session: Session) -> None:
    meters = automatic(session)
    now = datetime(2026, 3, 10, tzinfo=UTC)
    ingest(session, hourly("CW-1001", now - timedelta(days=5), 2, "0.01"), now=now)
    check_silence(session, meters, now)
    [alarm] = alarms(session, AlarmKind.NO_DATA)
    assert alarm.details["last_seen"] == "2026-03-05"
    ingest(session, hourly("CW-1001", now - timedelta(hours=1), 1, "0", first="101"), now=now)
    check_silence(session, meters, now)
    assert alarm.state is AlarmState.CLEARED


@pytest.mark.usefixtures("meters")
def test_verification_expiring_within_30_days(session: Session) -> None:
    session.execute(update(Meter).where(Meter.serial == "HW-1001").values(verified_until=date(2026, 4, 1)))
    check_verification(session, datetime(2026, 3, 20, tzinfo=UTC))
    assert [a.subject for a in alarms(session, AlarmKind.VERIFICATION_EXPIRING)] == ["meter:HW-1001"]
    session.execute(update(Meter).where(Meter.serial == "HW-1001").values(verified_until=date(2032, 4, 1)))
    check_verification(session, datetime(2026, 3, 21, tzinfo=UTC))
    assert alarms(session, AlarmKind.VERIFICATION_EXPIRING)[0].state is AlarmState.CLEARED


@pytest.mark.usefixtures("meters")
def test_reading_window_closing_without_a_reading(session: Session) -> None:
    """The window is the 15th-25th; three days before its end, residents without a reading for
    this period hear about it; a reading clears their alarm."""
    now = datetime(2026, 3, 22, 9, tzinfo=UTC)
    ingest(session, [IncomingReading(now, Decimal("10"), 1, "CW-1001")], now=now)
    check_missing_readings(session, now)
    subjects = {a.subject for a in alarms(session, AlarmKind.READING_MISSING)}
    assert subjects == {"meter:HW-1001", "meter:EL-1002"}, (
        "CW-1001 has its reading; the building meter is not a resident's"
    )
    ingest(session, [IncomingReading(now, Decimal("5"), 1, "HW-1001")], now=now)
    check_missing_readings(session, now)
    open_subjects = {a.subject for a in alarms(session, AlarmKind.READING_MISSING) if a.state is AlarmState.ACTIVE}
    assert open_subjects == {"meter:EL-1002"}
    assert check_missing_readings(session, datetime(2026, 3, 10, tzinfo=UTC))["cleared"] == 1, (
        "not yet the end of a window"
    )


@pytest.mark.usefixtures("meters")
def test_spike_against_the_meters_own_history(session: Session) -> None:
    """3 m3 a month from September to February: 15 m3 over the 153 days from 20 Sep to 20 Feb,
    0.098 a day. Then 30 m3 in March's 28 days, 1.071 a day: eleven times more."""
    readings, value = [], Decimal("100")
    for month in range(9, 13):
        value += 3
        readings.append(IncomingReading(datetime(2025, month, 20, tzinfo=UTC), value, 1, "CW-1001"))
    for month in (1, 2):
        value += 3
        readings.append(IncomingReading(datetime(2026, month, 20, tzinfo=UTC), value, 1, "CW-1001"))
    readings.append(IncomingReading(datetime(2026, 3, 20, tzinfo=UTC), value + 30, 1, "CW-1001"))
    ingest(session, readings, now=datetime(2026, 3, 21, tzinfo=UTC))
    period = Period(2025, 10)
    while period <= Period(2026, 3):
        compute_consumption(session, period, None)
        period = period.next()
    meters = [m for m in _meters(session) if m.serial == "CW-1001"]
    assert check_spikes(session, meters, Period(2026, 3))["raised"] == 1
    [alarm] = alarms(session, AlarmKind.SPIKE)
    assert (alarm.details["typical"], alarm.details["rate"]) == ("0.098", "1.071")
    assert check_spikes(session, meters, Period(2026, 2))["cleared"] == 1


@pytest.mark.usefixtures("meters")
def test_arrival_handler_updates_consumption_and_checks(session: Session) -> None:
    meter_id = session.scalar(select(Meter.id).where(Meter.serial == "CW-1001"))
    ingest(
        session,
        [
            IncomingReading(datetime(2026, 2, 20, tzinfo=UTC), Decimal("10"), 1, "CW-1001"),
            IncomingReading(datetime(2026, 3, 20, tzinfo=UTC), Decimal("12"), 1, "CW-1001"),
        ],
    )
    on_readings_arrived(
        session, {"meter_ids": [meter_id], "stale_from": {str(meter_id): "2026-02"}}, datetime(2026, 3, 21, tzinfo=UTC)
    )
    from zhkh.metering.models import Consumption

    periods = session.execute(
        select(Consumption.period, Consumption.volume)
        .where(Consumption.meter_id == meter_id)
        .order_by(Consumption.period)
    ).all()
    # February starts from the first reading ever (10), so its volume is 0; March: 12 - 10.
    assert [(p.isoformat(), v) for p, v in periods] == [("2026-02-01", Decimal("0")), ("2026-03-01", Decimal("2"))]


@pytest.mark.usefixtures("meters")
def test_clear_by_hand(session: Session) -> None:
    session.execute(update(Meter).where(Meter.serial == "HW-1001").values(verified_until=date(2026, 4, 1)))
    check_verification(session, datetime(2026, 3, 20, tzinfo=UTC))
    [alarm] = alarms(session, AlarmKind.VERIFICATION_EXPIRING)
    assert clear_by_hand(session, alarm.id).state is AlarmState.CLEARED
