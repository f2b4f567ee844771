"""Consumption arithmetic, with worked examples."""

from datetime import UTC, datetime
from decimal import Decimal

from zhkh.metering.consumption import (
    Point,
    automatic_result,
    boundary_value,
    difference,
    interpolate,
    manual_result,
)
from zhkh.metering.models import Provenance

MARCH = datetime(2026, 3, 1, tzinfo=UTC)
APRIL = datetime(2026, 4, 1, tzinfo=UTC)


def p(day: int, value: str, month: int = 3, hour: int = 0) -> Point:
    return Point(datetime(2026, month, day, hour, tzinfo=UTC), Decimal(value))


def test_difference_across_a_rollover() -> None:
    """A 5-digit counter from 99998.5 to 1.5 passed 100000 - 99998.5 + 1.5 = 3."""
    assert difference(Decimal("99998.5"), Decimal("1.5"), 5) == Decimal("3.0")
    assert difference(Decimal("123.456"), Decimal("130.456"), 5) == Decimal("7.000")


def test_interpolate_linear_in_time() -> None:
    """Readings 100 on 28 Feb 00:00 and 130 on 3 Mar 00:00 (72 h, 3 days); at 1 Mar 00:00, 24 h
    after the first: 100 + 30 x 24/72 = 110."""
    assert interpolate(p(28, "100", month=2), p(3, "130"), MARCH, 5) == Decimal("110")


def test_interpolation_keeps_a_millionth() -> None:
    """100 -> 101 over 3 hours, one hour in: 100.333333(3) -> 100.333333."""
    assert interpolate(p(1, "100"), p(1, "101", hour=3), datetime(2026, 3, 1, 1, tzinfo=UTC), 5) == Decimal(
        "100.333333"
    )


def test_manual_reading_minus_previous_reading() -> None:
    """The reading used for February was 123.456, March's is 130.456: 7 m3."""
    result = manual_result(p(24, "123.456", month=2), p(25, "130.456"), p(1, "100", month=1), p(26, "0", month=2).at, 5)
    assert (result.provenance, result.volume) == (Provenance.READING, Decimal("7.000"))


def test_manual_without_reading_in_the_window_is_missing() -> None:
    """The latest reading is February's: nothing arrived in March's window."""
    previous = p(24, "123.456", month=2)
    result = manual_result(previous, previous, p(1, "100", month=1), p(26, "0", month=2).at, 5)
    assert (result.provenance, result.volume) == (Provenance.MISSING, None)


def test_manual_first_period_starts_from_the_installation_reading() -> None:
    installation = p(10, "0")
    result = manual_result(None, p(25, "4.2"), installation, p(26, "0", month=2).at, 5)
    assert (result.start, result.volume) == (installation, Decimal("4.2"))


def test_automatic_exact_boundaries_are_readings() -> None:
    result = automatic_result(
        Point(MARCH, Decimal("100")), p(2, "101"), Point(APRIL, Decimal("130")), p(2, "131", month=4), MARCH, APRIL, 5
    )
    assert (result.provenance, result.volume) == (Provenance.READING, Decimal("30"))


def test_automatic_interpolated_boundaries() -> None:
    """Hourly data around both midnights: 28 Feb 23:00 = 99, 1 Mar 01:00 = 101 -> 100 at midnight;
    31 Mar 23:00 = 129, 1 Apr 01:00 = 131 -> 130. Volume 30, interpolated."""
    result = automatic_result(
        p(28, "99", month=2, hour=23),
        p(1, "101", hour=1),
        p(31, "129", hour=23),
        p(1, "131", month=4, hour=1),
        MARCH,
        APRIL,
        5,
    )
    assert (result.provenance, result.volume) == (Provenance.INTERPOLATED, Decimal("30"))


def test_automatic_period_not_over_is_missing() -> None:
    result = automatic_result(Point(MARCH, Decimal("100")), p(2, "101"), p(20, "120"), None, MARCH, APRIL, 5)
    assert result.provenance is Provenance.MISSING


def test_automatic_installed_mid_period_starts_from_first_reading() -> None:
    result = automatic_result(None, p(10, "0"), p(31, "12", hour=23), p(1, "12.5", month=4, hour=1), MARCH, APRIL, 5)
    assert result.volume == Decimal("12.25")


def test_boundary_value() -> None:
    assert boundary_value(Point(MARCH, Decimal("5")), None, MARCH, 5) == (Decimal("5"), True)
    assert boundary_value(None, p(2, "1"), MARCH, 5) == (None, False)


def test_interpolation_runs_through_a_rollover() -> None:
    """A 5-digit counter: 99,990 on 28 Feb 23:00, 10 on 1 Mar 01:00 (it passed 20 in 2 h). At
    midnight, half way: 99,990 + 20 x 1/2 = 100,000, which the counter shows as 0. With 50 at
    03:00 instead (60 in 4 h): 99,990 + 60 x 1/4 = 100,005, shown as 5."""
    assert interpolate(p(28, "99990", month=2, hour=23), p(1, "10", hour=1), MARCH, 5) == Decimal("0")
    assert interpolate(p(28, "99990", month=2, hour=23), p(1, "50", hour=3), MARCH, 5) == Decimal("5")


def test_a_rollover_across_the_period_boundary_gives_the_true_volumes() -> None:
    """The reviewer's case, 5 digits: 99,000 on 1 Feb 00:00; 99,990 on 28 Feb 23:00; 10 on
    1 Mar 01:00; 1,010 on 1 Apr 00:00. February: 99,000 -> 0 at midnight (the wrap) = 1,000;
    March: 0 -> 1,010 = 1,010. Once these were 51,000 and 52,000."""
    february = automatic_result(
        Point(datetime(2026, 2, 1, tzinfo=UTC), Decimal("99000")),
        p(28, "99990", month=2, hour=23),
        p(28, "99990", month=2, hour=23),
        p(1, "10", hour=1),
        datetime(2026, 2, 1, tzinfo=UTC),
        MARCH,
        5,
    )
    assert (february.provenance, february.volume) == (Provenance.INTERPOLATED, Decimal("1000.000000"))
    march = automatic_result(
        p(28, "99990", month=2, hour=23), p(1, "10", hour=1), Point(APRIL, Decimal("1010")), None, MARCH, APRIL, 5
    )
    assert march.volume == Decimal("1010.000000")
