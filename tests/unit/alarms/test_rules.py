from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from zhkh.alarms.rules import Sample, continuous_flow, daily_rate, expiring, silent, spike, window_closing

NOW = datetime(2026, 3, 20, 12, tzinfo=UTC)


def hourly(values: list[str]) -> list[Sample]:
    start = NOW - timedelta(hours=len(values) - 1)
    return [Sample(start + timedelta(hours=i), Decimal(v)) for i, v in enumerate(values)]


def test_flow_every_hour_for_a_day_is_a_leak() -> None:
    rising = [str(100 + i * Decimal("0.01")) for i in range(26)]
    assert continuous_flow(hourly(rising), timedelta(hours=24), NOW)


def test_one_quiet_hour_is_no_leak() -> None:
    values = [str(100 + i * Decimal("0.01")) for i in range(26)]
    values[10] = values[9]  # nobody used water between 2 and 3 at night
    assert not continuous_flow(hourly(values), timedelta(hours=24), NOW)


def test_too_little_data_is_no_leak() -> None:
    assert not continuous_flow(hourly(["1", "2", "3"]), timedelta(hours=24), NOW)
    gappy = hourly([str(i) for i in range(26)])
    del gappy[5:9]  # four hours missing
    assert not continuous_flow(gappy, timedelta(hours=24), NOW)


def test_spike() -> None:
    """Typical 0.3 m3/day; 1.2 a day is 4 times that."""
    assert spike(Decimal("1.2"), Decimal("0.3"), factor=Decimal(3), floor=Decimal("0.5"))
    assert not spike(Decimal("0.8"), Decimal("0.3"), factor=Decimal(3), floor=Decimal("0.5"))
    assert not spike(Decimal("0.4"), Decimal("0.01"), factor=Decimal(3), floor=Decimal("0.5")), "below the floor"
    assert not spike(Decimal("9"), None, factor=Decimal(3), floor=Decimal("0.5")), "no history"


def test_daily_rate() -> None:
    assert daily_rate(Sample(NOW - timedelta(days=2), Decimal("10")), Sample(NOW, Decimal("11"))) == Decimal("0.5")
    assert daily_rate(Sample(NOW - timedelta(minutes=5), Decimal("10")), Sample(NOW, Decimal("11"))) is None


def test_silence_expiry_and_window() -> None:
    assert silent(NOW - timedelta(days=4), NOW, timedelta(days=3))
    assert not silent(NOW - timedelta(days=2), NOW, timedelta(days=3))
    assert silent(None, NOW, timedelta(days=3))
    assert expiring(date(2026, 4, 10), date(2026, 3, 20), timedelta(days=30))
    assert not expiring(date(2026, 6, 10), date(2026, 3, 20), timedelta(days=30))
    assert window_closing(date(2026, 3, 23), date(2026, 3, 25), timedelta(days=3), has_reading=False)
    assert not window_closing(date(2026, 3, 23), date(2026, 3, 25), timedelta(days=3), has_reading=True)
    assert not window_closing(date(2026, 3, 10), date(2026, 3, 25), timedelta(days=3), has_reading=False)
    assert not window_closing(date(2026, 3, 26), date(2026, 3, 25), timedelta(days=3), has_reading=False)
