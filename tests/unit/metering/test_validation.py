"""Validation of single readings (VEE), each rule with a worked example."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import assume, given
from hypothesis import strategies as st

from zhkh.metering.validation import (
    Decision,
    Flag,
    MeterFacts,
    Point,
    Reason,
    Verdict,
    judge,
    well_formed_value,
)

WATER = MeterFacts(
    "CW-1",
    zones=1,
    digits=5,
    installed_on=date(2024, 1, 1),
    verified_until=date(2030, 1, 1),
    max_per_hour=Decimal("3.125"),
)
NOW = datetime(2026, 3, 26, 12, tzinfo=UTC)


def at(day: int, month: int = 3, hour: int = 0) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def decide(
    value: str,
    when: datetime,
    *,
    previous: Point | None = None,
    following: Point | None = None,
    same: Point | None = None,
    meter: MeterFacts = WATER,
    zone: int = 1,
) -> Decision:
    return judge(
        meter,
        zone,
        Point(when, Decimal(value)),
        previous=previous,
        following=following,
        same_moment=same,
        local_day=when.date(),
        now=NOW,
    )


def point(value: str, when: datetime) -> Point:
    return Point(when, Decimal(value))


def test_normal_reading_is_accepted() -> None:
    decision = decide("130.456", at(25), previous=point("123.456", at(25, 2)))
    assert decision.verdict is Verdict.ACCEPTED
    assert decision.flags == ()


def test_below_previous_is_rejected() -> None:
    decision = decide("120", at(25), previous=point("123.456", at(25, 2)))
    assert (decision.verdict, decision.reason) == (Verdict.REJECTED, Reason.BELOW_PREVIOUS)
    assert decision.detail == "120 is less than the previous reading 123.456 of 2026-02-25"


def test_rollover_of_a_five_digit_counter_is_accepted() -> None:
    """99998.5 on the 24th, 1.5 on the 25th: the counter passed 99999.999 and went on; it passed
    100000 - 99998.5 + 1.5 = 3 m3 in a day, within 3.125 m3/h x 24 h."""
    decision = decide("1.5", at(25), previous=point("99998.5", at(24)))
    assert decision.verdict is Verdict.ACCEPTED
    assert decision.flags == (Flag.ROLLOVER,)


def test_a_fall_far_from_the_top_is_not_a_rollover() -> None:
    decision = decide("1.5", at(25), previous=point("500", at(24)))
    assert decision.reason is Reason.BELOW_PREVIOUS


def test_rollover_without_flow_limit_needs_the_edges_of_the_range() -> None:
    unlimited = MeterFacts("X", 1, 5, date(2024, 1, 1), None)
    assert decide("100", at(25), previous=point("95000", at(24)), meter=unlimited).flags == (Flag.ROLLOVER,)
    assert decide("20000", at(25), previous=point("95000", at(24)), meter=unlimited).reason is Reason.BELOW_PREVIOUS


def test_impossible_jump() -> None:
    """A DN15 meter passes at most 3.125 m3/h; from 25 Feb to 25 Mar (28 days, 672 h) that is
    2100 m3. 123 -> 2300 is 2177 m3, more than it can; 123 -> 2223 is exactly the limit."""
    decision = decide("2300", at(25), previous=point("123", at(25, 2)))
    assert decision.reason is Reason.IMPOSSIBLE_JUMP
    assert decision.detail == "123 → 2300 in 28 days is more than meter CW-1 can pass (2100 at most)"
    assert decide("2223", at(25), previous=point("123", at(25, 2))).verdict is Verdict.ACCEPTED


def test_short_intervals_are_allowed_a_days_flow() -> None:
    """Two readings an hour apart: the limit is a day's flow (75 m3), not an hour's."""
    assert decide("170", at(25, hour=1), previous=point("100", at(25))).verdict is Verdict.ACCEPTED
    assert decide("180", at(25, hour=1), previous=point("100", at(25))).reason is Reason.IMPOSSIBLE_JUMP


def test_future_timestamp_is_rejected_but_clock_skew_is_tolerated() -> None:
    assert decide("1", NOW + timedelta(hours=1)).reason is Reason.FUTURE_TIMESTAMP
    assert decide("1", NOW + timedelta(minutes=2)).verdict is Verdict.ACCEPTED


def test_exact_repeat_is_a_duplicate_and_another_value_is_a_conflict() -> None:
    same = point("130", at(25))
    assert decide("130", at(25), same=same).verdict is Verdict.DUPLICATE
    conflict = decide("131", at(25), same=same)
    assert conflict.reason is Reason.CONFLICTING_READING


def test_late_reading_between_neighbours_is_accepted_and_flagged() -> None:
    decision = decide("125", at(10), previous=point("120", at(25, 2)), following=point("130", at(25)))
    assert decision.verdict is Verdict.ACCEPTED
    assert decision.flags == (Flag.LATE,)


def test_late_reading_above_the_next_is_rejected() -> None:
    decision = decide("135", at(10), previous=point("120", at(25, 2)), following=point("130", at(25)))
    assert decision.reason is Reason.ABOVE_NEXT


def test_expired_verification_is_accepted_with_a_flag() -> None:
    expired = MeterFacts("CW-2", 1, 5, date(2018, 1, 1), verified_until=date(2026, 3, 1))
    decision = decide("10", at(25), meter=expired)
    assert decision.verdict is Verdict.ACCEPTED
    assert decision.flags == (Flag.VERIFICATION_EXPIRED,)


def test_shape_rules() -> None:
    assert decide("-1", at(25)).reason is Reason.NEGATIVE_VALUE
    assert decide("1", at(25), zone=2).reason is Reason.UNKNOWN_ZONE
    assert decide("100000", at(25)).reason is Reason.TOO_MANY_DIGITS
    assert decide("1", datetime(2023, 12, 31, tzinfo=UTC)).reason is Reason.BEFORE_INSTALLATION


@given(
    st.integers(min_value=-(10**21), max_value=10**21),
    st.integers(min_value=-30, max_value=8),
)
def test_well_formed_values_keep_their_digits_down_to_a_nanounit(digits: int, exponent: int) -> None:
    """Within 12 integer digits a value keeps its exact representation (1.500 stays 1.500)
    unless it has digits below 1e-9, which are rounded half-up to 9 places."""
    value = Decimal(digits).scaleb(exponent)
    assume(value.adjusted() < 12)
    kept = well_formed_value(value, "value")
    if exponent >= -9:
        assert str(kept) == str(value)
    else:
        assert kept == value.quantize(Decimal("1e-9"), rounding="ROUND_HALF_UP")
        assert kept.as_tuple().exponent == -9
