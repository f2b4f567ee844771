"""Consumption per period from stored readings, on both databases."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.builders import device_models, import_rows, meter, metered_registry
from zhkh.core.outbox import OutboxMessage
from zhkh.core.periods import Period
from zhkh.metering.alarm_checks import on_readings_arrived
from zhkh.metering.consumption import compute_consumption
from zhkh.metering.errors import CorrectionRefused
from zhkh.metering.imports import MetersImport
from zhkh.metering.intake import IncomingReading, ingest
from zhkh.metering.models import Consumption, Meter, Provenance
from zhkh.metering.service import (
    bind_device,
    correct_reading,
    register_device,
    replace_meter,
    unbind_device,
)

NOW = datetime(2026, 5, 10, tzinfo=UTC)
MSK = timedelta(hours=3)


def local(day: int, month: int, hour: int = 12) -> datetime:
    """A Moscow wall-clock time as UTC."""
    return datetime(2026, month, day, hour, tzinfo=UTC) - MSK


def reading(serial: str, value: str, when: datetime, zone: int = 1) -> IncomingReading:
    return IncomingReading(when, Decimal(value), zone, serial, source="test")


def rows(session: Session, serial: str) -> list[tuple[str, int, str, Decimal | None]]:
    meter_id = session.scalar(select(Meter.id).where(Meter.serial == serial))
    result = session.execute(
        select(Consumption.period, Consumption.zone, Consumption.provenance, Consumption.volume)
        .where(Consumption.meter_id == meter_id)
        .order_by(Consumption.period, Consumption.zone)
    )
    return [(p.strftime("%Y-%m"), z, prov.value, v) for p, z, prov, v in result]


@pytest.fixture
def meters(session: Session, tmp_path: Path) -> None:
    metered_registry(session, tmp_path)


@pytest.mark.usefixtures("meters")
def test_manual_meter_by_reading_window(session: Session) -> None:
    """Window ends on the 25th. Feb 24: 100; Mar 25 (in March's window): 107; Mar 27 (after the
    window, so it counts for April): 108; nothing else in April's window until Apr 25: 112."""
    ingest(
        session,
        [
            reading("CW-1001", "100", local(24, 2)),
            reading("CW-1001", "107", local(25, 3, hour=23)),
            reading("CW-1001", "108", local(27, 3)),
            reading("CW-1001", "112", local(25, 4)),
        ],
        now=NOW,
    )
    for month in (3, 4, 5):
        compute_consumption(session, Period(2026, month), None)
    assert rows(session, "CW-1001") == [
        ("2026-03", 1, "reading", Decimal("7")),
        ("2026-04", 1, "reading", Decimal("5")),
        ("2026-05", 1, "missing", None),
    ]


@pytest.mark.usefixtures("meters")
def test_two_zone_meter_each_zone_separately(session: Session) -> None:
    ingest(
        session,
        [
            reading("EL-1002", "1000", local(20, 2), 1),
            reading("EL-1002", "400", local(20, 2), 2),
            reading("EL-1002", "1150.5", local(20, 3), 1),
            reading("EL-1002", "460.25", local(20, 3), 2),
        ],
        now=NOW,
    )
    compute_consumption(session, Period(2026, 3), None)
    assert rows(session, "EL-1002") == [
        ("2026-03", 1, "reading", Decimal("150.5")),
        ("2026-03", 2, "reading", Decimal("60.25")),
    ]


@pytest.mark.usefixtures("meters")
def test_late_reading_and_correction_are_reflected_on_recompute(session: Session) -> None:
    ingest(session, [reading("CW-1001", "100", local(20, 2)), reading("CW-1001", "110", local(20, 4))], now=NOW)
    compute_consumption(session, Period(2026, 3), None)
    assert rows(session, "CW-1001")[0][2:] == ("missing", None)
    late = ingest(session, [reading("CW-1001", "104", local(20, 3))], now=NOW).outcomes[0]
    compute_consumption(session, Period(2026, 3), None)
    assert rows(session, "CW-1001")[0][2:] == ("reading", Decimal("4"))
    correct_reading(session, late.reading_id or 0, Decimal("105"), "photo shows 105")
    compute_consumption(session, Period(2026, 3), None)
    assert rows(session, "CW-1001")[0][2:] == ("reading", Decimal("5"))


@pytest.mark.usefixtures("meters")
def test_automatic_meter_interpolated_at_midnight(session: Session) -> None:
    """A device sends every 6 hours at 03:00, 09:00, ... Moscow time; midnights are interpolated."""
    device_models(session)
    register_device(session, "iperl", "33225544")
    bind_device(session, "wmbusmeters", "33225544", "total_m3", "CW-1001", since=datetime(2026, 1, 1, tzinfo=UTC))
    start = local(28, 2, hour=3)
    batch = [
        reading("CW-1001", str(Decimal("100") + Decimal("0.25") * i), start + timedelta(hours=6 * i))
        for i in range(4 * 40)
    ]
    ingest(session, batch, now=NOW)
    compute_consumption(session, Period(2026, 3), None)
    # 0.25 per 6 hours = 1 a day, 31 days in March.
    assert rows(session, "CW-1001") == [("2026-03", 1, "interpolated", Decimal("31.000000"))]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.randoms(use_true_random=False))
def test_shuffled_arrival_gives_identical_consumption(session: Session, tmp_path: Path, rng: random.Random) -> None:
    """The same readings arriving in any order, in any batches, give the same consumption: for
    meters read by people (CW-1001, both zones of EL-1002) and for an automatic one (HW-1001,
    a device sending every few hours, interpolated at the period boundaries)."""

    def run(order: list[IncomingReading], batches: int) -> dict[str, list[tuple[str, int, str, Decimal | None]]]:
        savepoint = session.begin_nested()
        metered_registry(session, tmp_path)
        device_models(session)
        register_device(session, "iperl", "33225544")
        bind_device(session, "wmbusmeters", "33225544", "total_m3", "HW-1001", since=datetime(2025, 12, 1, tzinfo=UTC))
        size = max(1, len(order) // batches)
        for begin in range(0, len(order), size):
            ingest(session, order[begin : begin + size], now=NOW)
        for month in (2, 3, 4):
            compute_consumption(session, Period(2026, month), None)
        result = {serial: rows(session, serial) for serial in ("CW-1001", "EL-1002", "HW-1001")}
        savepoint.rollback()
        return result

    series, value, t1, t2 = [], Decimal("50"), Decimal("900"), Decimal("300")
    for day in range(0, 100, rng.choice((3, 5, 7))):
        when = local(1, 1) + timedelta(days=day, hours=rng.randrange(24))
        value += Decimal(rng.randrange(0, 3000)) / 1000
        t1 += Decimal(rng.randrange(0, 20000)) / 100
        t2 += Decimal(rng.randrange(0, 9000)) / 100
        series += [
            reading("CW-1001", str(value), when),
            reading("EL-1002", str(t1), when, 1),
            reading("EL-1002", str(t2), when, 2),
        ]
    # The device's few hundred readings from a generator seeded by one draw: as separate draws
    # they are more data than hypothesis will generate for one example.
    device = random.Random(rng.getrandbits(32))
    # Never on a whole minute, so never exactly at a midnight: the boundaries are interpolated.
    hot, when = Decimal("20"), local(1, 1) + timedelta(minutes=device.randrange(600), seconds=device.randrange(1, 60))
    while when < local(1, 1) + timedelta(days=100):
        series.append(reading("HW-1001", str(hot), when))
        when += timedelta(hours=device.randrange(5, 13), minutes=device.randrange(60))
        hot += Decimal(device.randrange(0, 80)) / 1000
    in_order = run(series, 1)
    shuffled = series[:]
    rng.shuffle(shuffled)
    assert run(shuffled, rng.randrange(1, 8)) == in_order
    assert any(provenance == Provenance.READING.value for _, _, provenance, _ in in_order["CW-1001"])
    # The automatic meter's February and March are interpolated at both midnights; its April is
    # missing, since nothing was read after the month's end (a meter read by people would have
    # April's reading of the 11th in its window).
    automatic = [(period, provenance) for period, _, provenance, _ in in_order["HW-1001"]]
    assert automatic == [("2026-02", "interpolated"), ("2026-03", "interpolated"), ("2026-04", "missing")]


def handle_arrivals(session: Session, now: datetime) -> None:
    """What the worker does with the outbox: each readings_arrived message, once."""
    for message in session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.topic == "metering.readings_arrived", OutboxMessage.delivered_at.is_(None))
        .order_by(OutboxMessage.id)
    ):
        on_readings_arrived(session, message.payload, now)
        message.delivered_at = now


@pytest.mark.usefixtures("meters")
def test_last_months_reading_imported_on_the_first_updates_last_month(session: Session) -> None:
    """Not late (newer than every stored reading), but dated in October: October is recomputed."""
    now = datetime(2026, 11, 1, 9, tzinfo=UTC)
    ingest(session, [reading("CW-1001", "100", local(20, 9))], now=now)
    handle_arrivals(session, now)
    compute_consumption(session, Period(2026, 10), None)
    assert rows(session, "CW-1001")[-2][2:] == ("missing", None)
    outcome = ingest(session, [reading("CW-1001", "104", local(20, 10))], now=now).outcomes[0]
    assert not outcome.flags, "the newest reading: not late"
    handle_arrivals(session, now)
    assert ("2026-10", 1, "reading", Decimal("4")) in rows(session, "CW-1001")


@pytest.mark.usefixtures("meters")
def test_a_correction_is_judged_and_recomputes_its_periods(session: Session) -> None:
    """100 / 110 / 120 read on 20 Jan, Feb, Mar. Correcting 110 to 1100 is refused (March's 120
    would become a phantom rollover of 99,020 m³); correcting it to 112 recomputes Feb and Mar."""
    now = datetime(2026, 3, 28, tzinfo=UTC)
    outcomes = ingest(
        session,
        [reading("CW-1001", value, local(20, month)) for value, month in (("100", 1), ("110", 2), ("120", 3))],
        now=now,
    ).outcomes
    handle_arrivals(session, now)
    assert [r[3] for r in rows(session, "CW-1001")] == [Decimal("0"), Decimal("10"), Decimal("10")]
    february = outcomes[1].reading_id or 0
    with pytest.raises(CorrectionRefused, match="1100 is more than the later reading 120"):
        correct_reading(session, february, Decimal("1100"), "typo")
    correct_reading(session, february, Decimal("112"), "photo shows 112")
    handle_arrivals(session, now)
    assert [r[3] for r in rows(session, "CW-1001")] == [Decimal("0"), Decimal("12"), Decimal("8")]


@pytest.mark.usefixtures("meters")
def test_a_rejected_conflicting_reading_cannot_be_corrected_into_a_second_live_one(session: Session) -> None:
    outcomes = ingest(
        session, [reading("CW-1001", "110", local(20, 2)), reading("CW-1001", "111", local(20, 2))], now=NOW
    ).outcomes
    assert outcomes[1].reason == "conflicting_reading"
    with pytest.raises(CorrectionRefused, match="110 is already recorded for this moment"):
        correct_reading(session, outcomes[1].reading_id or 0, Decimal("111"), "the second photo")


@pytest.mark.usefixtures("meters")
def test_binding_a_device_later_leaves_the_hand_read_periods_alone(session: Session) -> None:
    """Hand readings 100 / 130 / 131 on 20 Jan, Feb, Mar give February 30 by reading. A device
    bound from 1 April does not make February an interpolation (once it became 19.922619)."""
    ingest(session, [reading("CW-1001", v, local(20, m)) for v, m in (("100", 1), ("130", 2), ("131", 3))], now=NOW)
    device_models(session)
    register_device(session, "iperl", "33225544")
    bind_device(session, "wmbusmeters", "33225544", "total_m3", "CW-1001", since=local(1, 4, hour=0))
    compute_consumption(session, Period(2026, 2), None)
    assert rows(session, "CW-1001") == [("2026-02", 1, "reading", Decimal("30"))]
    meter = session.scalar(select(Meter).where(Meter.serial == "CW-1001"))
    assert meter is not None
    assert meter.automatic
    unbind_device(session, "wmbusmeters", "33225544", "total_m3", at=local(2, 5))
    assert not meter.automatic, "no device measures it any more"


@pytest.mark.usefixtures("meters")
def test_an_automatic_meter_replaced_mid_period_ends_at_its_removal_reading(session: Session, tmp_path: Path) -> None:
    """A device reads CW-1001 every 6 hours from 1 March 00:00 (100), 0.4 m³ a time. On 10 March
    at 14:00 (after the device's 06:00 reading of 114.8, the meter showing 115.5) it is replaced
    by CW-NEW, which starts at 0 and is read by the device from then on. March: the old meter
    100 -> 115.5 = 15.5 (once it stayed missing for good: no reading follows the removal)."""
    device_models(session)
    register_device(session, "iperl", "33225544")
    bind_device(session, "wmbusmeters", "33225544", "total_m3", "CW-1001", since=local(1, 2, hour=0))
    import_rows(session, tmp_path, MetersImport(), [meter(serial="CW-NEW", installed_on="2026-03-10")])
    start, old_series = local(1, 3, hour=0), []
    for step in range(38):  # 1 Mar 00:00 .. 10 Mar 06:00
        old_series.append(reading("CW-1001", str(100 + step * Decimal("0.4")), start + timedelta(hours=6 * step)))
    ingest(session, old_series, now=NOW)
    assert (old_series[-1].taken_at, old_series[-1].value) == (local(10, 3, hour=6), Decimal("114.8"))
    replace_meter(
        session, "CW-1001", "CW-NEW", date(2026, 3, 10), [Decimal("115.5")], [Decimal("0")], at=local(10, 3, hour=14)
    )
    new_series = [
        reading("CW-NEW", str(Decimal("0.4") * step), local(10, 3, hour=14) + timedelta(hours=6 * step))
        for step in range(1, 100)
    ]
    ingest(session, new_series, now=NOW)
    compute_consumption(session, Period(2026, 3), None)
    old_march = rows(session, "CW-1001")
    assert old_march == [("2026-03", 1, "reading", Decimal("15.5"))]
    [(_, _, provenance, volume)] = rows(session, "CW-NEW")
    assert provenance == "interpolated"
    assert volume is not None
    assert volume > 0


@pytest.mark.usefixtures("meters")
def test_a_replacement_must_measure_the_same_thing(session: Session, tmp_path: Path) -> None:
    import_rows(
        session,
        tmp_path,
        MetersImport(),
        [
            meter(serial="EL-X", service="electricity", installed_on="2026-03-10"),
            meter(serial="CW-B", account="", installed_on="2026-03-10"),
            meter(serial="CW-2", account="1002", installed_on="2026-03-10"),
        ],
    )
    for successor, what in (("EL-X", "service"), ("CW-B", "kind"), ("CW-2", "personal account")):
        with pytest.raises(CorrectionRefused, match=f"cannot replace CW-1001: its {what}"):
            replace_meter(session, "CW-1001", successor, date(2026, 3, 10), [Decimal("1")], [Decimal("0")])
