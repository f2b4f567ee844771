"""Alarm rules over telemetry series. Pure: no I/O.

A series is a list of samples of one channel (a cumulative meter register, a battery voltage, a
CO2 level), sorted by time. The rules know nothing about meters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

# Hourly data may be late or miss an hour; a gap longer than this breaks "continuous".
MAX_SAMPLE_GAP = timedelta(hours=2)


@dataclass(frozen=True, slots=True)
class Sample:
    at: datetime
    value: Decimal


def continuous_flow(samples: Sequence[Sample], window: timedelta, now: datetime) -> bool:
    """A cumulative register that rose between every pair of consecutive samples over the whole
    ``window`` before ``now``: water that never stopped running for a day is a leak (a household
    has hours without use every night). Needs samples covering the window without long gaps."""
    start = now - window
    recent = [s for s in samples if s.at >= start - MAX_SAMPLE_GAP]
    if len(recent) < 2 or recent[0].at > start or now - recent[-1].at > MAX_SAMPLE_GAP:
        return False
    return all(
        later.value > earlier.value and later.at - earlier.at <= MAX_SAMPLE_GAP for earlier, later in pairwise(recent)
    )


def daily_rate(earlier: Sample, later: Sample) -> Decimal | None:
    """Average use per day between two register samples (None for less than an hour apart)."""
    seconds = int((later.at - earlier.at).total_seconds())
    if seconds < 3600:
        return None
    return (later.value - earlier.value) * 86400 / seconds


def spike(current: Decimal, typical: Decimal | None, *, factor: Decimal, floor: Decimal) -> bool:
    """Use ``factor`` times the typical rate and more than ``floor`` (so a meter that usually shows
    nothing does not alarm on its first cup of water)."""
    if typical is None:
        return False
    return current > floor and current > typical * factor


def silent(last_at: datetime | None, now: datetime, limit: timedelta) -> bool:
    return last_at is None or now - last_at > limit


def expiring(until: date | None, today: date, within: timedelta) -> bool:
    return until is not None and until - today <= within


def window_closing(today: date, window_end: date, before: timedelta, has_reading: bool) -> bool:
    """The reading window ends within ``before`` days (or today) and no reading came yet."""
    return not has_reading and timedelta(0) <= window_end - today <= before
