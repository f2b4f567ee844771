"""Validation of one reading against what is known about its meter (VEE). Pure: no I/O.

Each decision carries a stable ``reason`` code and a sentence a person can act on. Order of
arrival does not matter: a reading is judged against its neighbours in *time* (the accepted
readings just before and just after it), so a late reading is checked like any other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

# Readings are often dated to a day, so any interval is allowed at least a day's maximum flow.
MIN_JUMP_WINDOW = timedelta(hours=24)
DAY_SECONDS = int(MIN_JUMP_WINDOW.total_seconds())
CLOCK_SKEW = timedelta(minutes=5)

# What a reading can be at all, before it is judged against its meter. Anything outside these
# is malformed input (refused at the door, never stored): no meter shows 13 digits, no reading
# predates 1970 or is dated after 2099, and a value's precision beyond a nanolitre-cubic-metre
# is floating-point noise from a device decoder (0.1 * 3 = 0.30000000000000004), rounded away.
MAX_INTEGER_DIGITS = 12
VALUE_QUANTUM = Decimal("1e-9")
_QUANTUM_EXPONENT = -9
EARLIEST_READING = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_READING = datetime(2100, 1, 1, tzinfo=UTC)
MAX_NAME_LENGTH = 64
_CONTROL = re.compile("[\x00-\x1f\x7f]")


class MalformedReading(ValueError):
    """A value, time or name no reading can have; the message says what and why."""


def well_formed_value(value: Decimal, what: str) -> Decimal:
    """``value`` as a reading value, with decoder float noise below 1e-9 rounded off."""
    if not value.is_finite():
        raise MalformedReading(f"{what} must be a finite number, got {_clip(value)}")
    if value.adjusted() >= MAX_INTEGER_DIGITS:
        raise MalformedReading(
            f"{what} has more than {MAX_INTEGER_DIGITS} digits before the decimal point: {_clip(value)}"
        )
    if _exponent(value) < _QUANTUM_EXPONENT:
        return value.quantize(VALUE_QUANTUM, rounding=ROUND_HALF_UP)
    return value


def _exponent(value: Decimal) -> int:
    """The exponent of a finite ``value`` (-3 for 1.500). Read from its text, which shows every
    digit after the point unless it is in scientific notation: ``as_tuple()`` builds a named
    tuple of all digits, and this runs for every reading."""
    text = str(value)
    if "E" in text:
        exponent = value.as_tuple().exponent
        assert isinstance(exponent, int)  # finite
        return exponent
    point = text.find(".")
    return 0 if point < 0 else point + 1 - len(text)


def well_formed_moment(moment: datetime, what: str) -> datetime:
    """``moment`` in UTC, if it is a time a reading can have been taken at."""
    if moment.tzinfo is None:
        raise MalformedReading(f"{what} needs its UTC offset: {moment.isoformat()}")
    try:
        in_utc = moment.astimezone(UTC)
    except OverflowError as exc:  # 9999-12-31T23:59:59-12:00 is past the end of the calendar
        raise MalformedReading(f"{what} is out of range: {moment.isoformat()}") from exc
    if not EARLIEST_READING <= in_utc < LATEST_READING:
        raise MalformedReading(f"{what} must be between 1970 and 2099, got {moment.isoformat()}")
    return in_utc


def well_formed_name(text: str, what: str) -> str:
    """A serial number or device id: trimmed, 1 to 64 printable characters."""
    name = text.strip()
    if not name:
        raise MalformedReading(f"{what} is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise MalformedReading(f"{what} is longer than {MAX_NAME_LENGTH} characters: {name[:MAX_NAME_LENGTH]}…")
    if _CONTROL.search(name):
        raise MalformedReading(f"{what} contains control characters: {name!r}")
    return name


def _clip(value: Decimal) -> str:
    text = str(value)
    return text if len(text) <= 40 else f"{text[:20]}…({len(text)} characters)"


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


class Reason(StrEnum):
    NEGATIVE_VALUE = "negative_value"
    UNKNOWN_ZONE = "unknown_zone"
    FUTURE_TIMESTAMP = "future_timestamp"
    BEFORE_INSTALLATION = "before_installation"
    CONFLICTING_READING = "conflicting_reading"
    BELOW_PREVIOUS = "below_previous"
    ABOVE_NEXT = "above_next"
    IMPOSSIBLE_JUMP = "impossible_jump"
    TOO_MANY_DIGITS = "too_many_digits"


class Flag(StrEnum):
    LATE = "late"  # older than the meter's newest reading: affected periods are recomputed
    ROLLOVER = "rollover"  # the counter passed its maximum and started again from zero
    VERIFICATION_EXPIRED = "verification_expired"  # accepted; billing treats the meter as out of order


@dataclass(frozen=True, slots=True)
class MeterFacts:
    serial: str
    zones: int
    digits: int
    installed_on: date
    verified_until: date | None
    max_per_hour: Decimal | None = None  # None: no physical limit is configured for this meter
    zone: ZoneInfo | None = None  # the buildings' time zone, for dates in messages


@dataclass(frozen=True, slots=True)
class Point:
    taken_at: datetime
    value: Decimal


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reason: Reason | None = None
    detail: str | None = None
    flags: tuple[Flag, ...] = field(default=())

    @property
    def flags_text(self) -> str | None:
        return ",".join(self.flags) or None


def judge(
    meter: MeterFacts,
    zone: int,
    candidate: Point,
    *,
    previous: Point | None,
    following: Point | None,
    same_moment: Point | None,
    local_day: date,
    now: datetime,
    day_before: Point | None = None,
    day_after: Point | None = None,
) -> Decision:
    """Decide on ``candidate`` given the accepted readings around it in time. ``local_day`` is
    the candidate's date in the buildings' time zone. ``day_before`` is the earliest accepted
    reading in the 24 hours before the candidate, ``day_after`` the latest in the 24 hours after
    it: each step is allowed a day's flow, so hourly steps are also checked as a day's total."""
    refusal = _shape_problem(meter, zone, candidate, local_day, now)
    if refusal:
        return refusal
    if same_moment is not None:
        if same_moment.value == candidate.value:
            return Decision(Verdict.DUPLICATE, detail="the same reading is already recorded")
        return _reject(
            Reason.CONFLICTING_READING,
            f"{_fmt(same_moment.value)} is already recorded for this moment; "
            "correct it instead of sending another value",
        )
    flags: list[Flag] = []
    if previous is not None:
        step = _step(meter, previous, candidate)
        if isinstance(step, Decision):
            return step
        if step:
            flags.append(Flag.ROLLOVER)
    if following is not None:
        step_after = _step(meter, candidate, following, late=True)
        if isinstance(step_after, Decision):
            return step_after
        flags.append(Flag.LATE)
    for earlier, later in ((day_before, candidate), (candidate, day_after)):
        if earlier is not None and later is not None:
            refusal = _day_total(meter, earlier, later)
            if refusal:
                return refusal
    if meter.verified_until is not None and local_day > meter.verified_until:
        flags.append(Flag.VERIFICATION_EXPIRED)
    return Decision(Verdict.ACCEPTED, flags=tuple(flags))


def _day_total(meter: MeterFacts, earlier: Point, later: Point) -> Decision | None:
    """What the meter passed between two readings less than a day apart, at most a day's flow."""
    rise = rise_between(meter.digits, earlier.value, later.value)
    if not exceeds(meter.max_per_hour, rise, DAY_SECONDS):
        return None
    assert meter.max_per_hour is not None
    return _reject(
        Reason.IMPOSSIBLE_JUMP,
        f"{_fmt(earlier.value)} → {_fmt(later.value)} within 24 h ({_hours(earlier, later)}) is more than meter "
        f"{meter.serial} can pass in a day ({_fmt(meter.max_per_hour * 24)} at most)",
    )


def rise_between(digits: int, before: Decimal, after: Decimal) -> Decimal:
    """How far a counter of ``digits`` digits went from ``before`` to ``after``, through a
    rollover if it is lower (accepted readings only fall as a rollover)."""
    return after - before if after >= before else after + Decimal(10) ** digits - before


def _shape_problem(meter: MeterFacts, zone: int, candidate: Point, local_day: date, now: datetime) -> Decision | None:
    if candidate.value < 0:
        return _reject(Reason.NEGATIVE_VALUE, f"a reading cannot be negative: {_fmt(candidate.value)}")
    if not 1 <= zone <= meter.zones:
        return _reject(Reason.UNKNOWN_ZONE, f"meter {meter.serial} has {meter.zones} zone(s), not zone {zone}")
    if candidate.value >= Decimal(10) ** meter.digits:
        return _reject(
            Reason.TOO_MANY_DIGITS,
            f"{_fmt(candidate.value)} does not fit the {meter.digits} digits of meter {meter.serial}",
        )
    if candidate.taken_at > now + CLOCK_SKEW:
        return _reject(Reason.FUTURE_TIMESTAMP, f"taken at {candidate.taken_at.isoformat()}, which is in the future")
    if local_day < meter.installed_on:
        return _reject(
            Reason.BEFORE_INSTALLATION,
            f"dated {local_day.isoformat()}, before meter {meter.serial} was installed on "
            f"{meter.installed_on.isoformat()}",
        )
    return None


def _step(meter: MeterFacts, earlier: Point, later: Point, *, late: bool = False) -> Decision | bool:
    """Check the step from ``earlier`` to ``later``: a Decision when it is impossible, otherwise
    whether the counter rolled over in between."""
    seconds = window_seconds(earlier.taken_at, later.taken_at)
    if later.value >= earlier.value:
        if exceeds(meter.max_per_hour, later.value - earlier.value, seconds):
            assert meter.max_per_hour is not None
            allowed = meter.max_per_hour * seconds / 3600
            return _reject(
                Reason.IMPOSSIBLE_JUMP,
                f"{_fmt(earlier.value)} → {_fmt(later.value)} in {_hours(earlier, later)} is more than meter "
                f"{meter.serial} can pass ({_fmt(allowed)} at most)",
            )
        return False
    if is_rollover(meter.digits, meter.max_per_hour, earlier.value, later.value, seconds):
        return True
    if late:
        return _reject(
            Reason.ABOVE_NEXT,
            f"{_fmt(earlier.value)} is more than the later reading {_fmt(later.value)} of {_day(later, meter)}",
        )
    return _reject(
        Reason.BELOW_PREVIOUS,
        f"{_fmt(later.value)} is less than the previous reading {_fmt(earlier.value)} of {_day(earlier, meter)}",
    )


def is_rollover(digits: int, max_per_hour: Decimal | None, before: Decimal, after: Decimal, seconds: int) -> bool:
    """A counter of N digits goes from near 10^N back to near zero. Without a flow limit, only the
    last and first tenth of the range count as "near"."""
    capacity = Decimal(10) ** digits
    passed = after + capacity - before
    if max_per_hour is not None:
        return not exceeds(max_per_hour, passed, seconds)
    return before >= capacity * Decimal("0.9") and after < capacity * Decimal("0.1")


def window_seconds(start: datetime, end: datetime) -> int:
    """Whole seconds between two readings, counted as at least a day."""
    return max(end - start, MIN_JUMP_WINDOW) // timedelta(seconds=1)


def exceeds(max_per_hour: Decimal | None, amount: Decimal, seconds: int) -> bool:
    """More than the meter can pass in ``seconds``: compared multiplied out, so no division
    rounds anything (the SQL fast path of intake compares the same way)."""
    return max_per_hour is not None and amount * 3600 > max_per_hour * seconds


def _hours(earlier: Point, later: Point) -> str:
    seconds = int((later.taken_at - earlier.taken_at).total_seconds())
    return f"{seconds // 3600} h" if seconds < 72 * 3600 else f"{seconds // 86400} days"


def _day(point: Point, meter: MeterFacts) -> str:
    return point.taken_at.astimezone(meter.zone).date().isoformat() if meter.zone else point.taken_at.date().isoformat()


def _reject(reason: Reason, detail: str) -> Decision:
    return Decision(Verdict.REJECTED, reason, detail)


def _fmt(value: Decimal) -> str:
    return format(value.normalize(), "f")
