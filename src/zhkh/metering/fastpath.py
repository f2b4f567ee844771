"""PostgreSQL fast path of the reading pipeline: accept the plain readings in one statement.

Most readings are the newest of their meter and fit: a meter's next value, a little higher than
the last one. For those, the whole decision (meter known and live, value within the meter's
digits and physical flow, not in the future, after installation) is a set-based condition the
database evaluates for the whole batch while inserting them. Anything else (a reading the
condition does not accept, one older than a stored reading, a duplicate, an unknown meter)
is left to the Python judge in ``intake``, which explains each decision. So this path only
ever *accepts*, with the same flags the judge would give; tests compare the two on random data.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from zhkh.core.bulk import driver_cursor
from zhkh.core.config import get_settings
from zhkh.metering.validation import CLOCK_SKEW, DAY_SECONDS, Flag

# The statement reads the batch from a temporary table filled by COPY, each row with its
# meter's facts (locked and read just before, see lock_meters): no join with the meters or the
# flow limits per reading. ``later`` readings (at or after this one, whatever their status) send
# a reading to the judge: it may be late, a duplicate or a conflict. Jumps are compared
# multiplied out, exactly as validation.exceeds() does.
_ACCEPT = f"""
WITH incoming AS (
    SELECT i.idx, i.meter_id, i.zone, i.taken_at, i.value::numeric AS value, i.source, i.source_ref,
           i.zones, i.installed_on, i.verified_until, i.archived_on, i.max_per_hour::numeric AS max_per_hour,
           (i.taken_at AT TIME ZONE %(zone)s)::date AS day, power(10::numeric, i.digits) AS capacity
    FROM new_incoming i
), judged AS (
    SELECT n.idx, n.zone, n.taken_at, n.value, n.source, n.source_ref, n.meter_id, n.verified_until,
           n.max_per_hour, n.day, n.capacity, previous.taken_at AS previous_at, previous.value AS previous_value,
           day_start.value AS day_start_value,
           floor(extract(epoch FROM greatest(n.taken_at - previous.taken_at,
                                             interval '{DAY_SECONDS} seconds'))) AS seconds
    FROM incoming n
    -- One probe on the unique index of original readings (corrects_id IS NULL): the meter's newest
    -- reading of any status. If it is before this one and live, nothing is later than this reading
    -- (a correction shares its original's moment) and it is the previous reading; if it is at or
    -- after this one, or rejected, or corrected, the judge takes over.
    LEFT JOIN LATERAL (
        SELECT r.taken_at, r.value, r.status = 'accepted' AND r.superseded_by_id IS NULL AS live
        FROM readings r
        WHERE r.meter_id = n.meter_id AND r.zone = n.zone AND r.corrects_id IS NULL
        ORDER BY r.taken_at DESC LIMIT 1
    ) previous ON true
    -- With a flow limit and a previous reading less than a day old: the earliest accepted reading
    -- of the last 24 hours, since the meter passes at most a day's flow in any 24 hours (hourly
    -- steps each within the limit can add up to more). The condition on n and previous is
    -- checked once per row before the index is touched.
    LEFT JOIN LATERAL (
        SELECT r.value
        FROM readings r
        WHERE n.max_per_hour IS NOT NULL AND previous.taken_at > n.taken_at - interval '{DAY_SECONDS} seconds'
          AND r.meter_id = n.meter_id AND r.zone = n.zone
          AND r.status = 'accepted' AND r.superseded_by_id IS NULL
          AND r.taken_at >= n.taken_at - interval '{DAY_SECONDS} seconds'
        ORDER BY r.taken_at ASC LIMIT 1
    ) day_start ON true
    WHERE (previous.taken_at IS NULL OR (previous.taken_at < n.taken_at AND previous.live))
      AND (n.archived_on IS NULL OR n.day <= n.archived_on)
      AND n.value >= 0 AND n.zone BETWEEN 1 AND n.zones AND n.value < n.capacity
      AND n.taken_at <= %(latest)s AND n.day >= n.installed_on
), decided AS (
    SELECT j.*,
           j.previous_value IS NOT NULL AND j.value < j.previous_value AS rolled,
           CASE
             WHEN j.previous_value IS NULL THEN true
             WHEN j.value >= j.previous_value THEN
               j.max_per_hour IS NULL OR (j.value - j.previous_value) * 3600 <= j.max_per_hour * j.seconds
             WHEN j.max_per_hour IS NOT NULL THEN
               (j.value + j.capacity - j.previous_value) * 3600 <= j.max_per_hour * j.seconds
             ELSE j.previous_value >= j.capacity * 0.9 AND j.value < j.capacity * 0.1
           END
           AND (j.day_start_value IS NULL OR
                (CASE WHEN j.value >= j.day_start_value THEN j.value - j.day_start_value
                      ELSE j.value + j.capacity - j.day_start_value END) * 3600
                  <= j.max_per_hour * {DAY_SECONDS}) AS fits
    FROM judged j
)
-- No ON CONFLICT: the meter is locked and the reading is later than its newest original, so it
-- cannot collide with the unique key (meter, zone, time, value); PostgreSQL's speculative
-- insertion would cost one more WAL record per reading. The stored rows come back by (meter,
-- zone), unique in a batch, which the caller maps to its readings.
INSERT INTO readings (meter_id, zone, taken_at, value, status, flags, source, source_ref)
SELECT meter_id, zone, taken_at, value, 'accepted',
       NULLIF(concat_ws(',', CASE WHEN rolled THEN '{Flag.ROLLOVER.value}' END,
                             CASE WHEN verified_until IS NOT NULL AND day > verified_until
                                  THEN '{Flag.VERIFICATION_EXPIRED.value}' END), ''),
       source, source_ref
FROM decided WHERE fits
RETURNING meter_id, zone, id, flags
"""

_SCRATCH = """
CREATE TEMPORARY TABLE IF NOT EXISTS new_incoming (
    idx integer, meter_id bigint, zone smallint, taken_at timestamptz, value text,
    source varchar(40), source_ref varchar(200),
    zones smallint, digits smallint, installed_on date, verified_until date, archived_on date,
    max_per_hour text
) ON COMMIT DELETE ROWS
"""
_SCRATCH_COLUMNS = (
    "idx, meter_id, zone, taken_at, value, source, source_ref, "
    "zones, digits, installed_on, verified_until, archived_on, max_per_hour"
)
# Binary COPY: no text to format and parse for the integers, times and dates. The numbers go as
# their text (str of a Decimal is exact), cast in the statement: the driver's binary numeric
# dumper builds a Python named tuple of the digits (Decimal.as_tuple) for every value.
_SCRATCH_TYPES = (
    "int4", "int8", "int2", "timestamptz", "text", "varchar", "varchar",
    "int2", "int2", "date", "date", "date", "text",
)  # fmt: skip

# Serials travel as one string split on the server: a 5,000-element list parameter costs the
# driver more than the lookup costs the server. The separator (unit separator, 0x1f) cannot be
# in a serial: well_formed_name refuses control characters.
_SEPARATOR = "\x1f"
_LOCK = """
SELECT serial, id, zones, digits, installed_on, verified_until, archived_on, service, diameter_mm,
       scope = 'individual'
FROM meters WHERE serial = ANY(string_to_array(%s, chr(31))) ORDER BY id FOR NO KEY UPDATE
"""


# The meters of a batch by serial, locked until its transaction ends, with what the fast path
# needs of each: the rows of _LOCK as the driver gives them (this is read for every batch).
LockedMeters = dict[str, tuple[Any, ...]]


def lock_meters(session: Session, serials: Collection[str]) -> LockedMeters:
    """Lock the meters named by ``serials`` (see intake's ``_lock_meters``: in id order,
    ``FOR NO KEY UPDATE``) and read them, so the accepting statement needs no lookup of its
    own. Unknown serials are simply absent."""
    joined = _SEPARATOR.join(serials)
    if joined.count(_SEPARATOR) != len(serials) - 1:
        raise ValueError("a serial contains the separator 0x1f")  # well_formed_name prevents it
    with driver_cursor(session) as cursor:
        cursor.execute(_LOCK, [joined])
        return {row[0]: row for row in cursor.fetchall()}


def accept_plain(
    session: Session,
    readings: Sequence[tuple[int, str, int, datetime, Decimal, str, str | None]],
    meters: LockedMeters,
    flow_limit: Callable[[str, int | None, bool], Decimal | None],
    now: datetime,
) -> list[tuple[int, int, int, str | None]]:
    """Accept what is plainly acceptable among ``readings`` (index, serial, zone, taken_at,
    value, source, source_ref), each meter and zone at most once, of the locked ``meters``;
    ``flow_limit(service, diameter_mm, individual)`` is a meter's maximum flow per hour.
    Returns (index, reading id, meter id, flags) of the readings accepted; the others (an
    unknown serial among them) are not touched."""
    limits: dict[tuple[str, int | None, bool], str | None] = {}
    position: dict[tuple[int, int], int] = {}
    with driver_cursor(session) as cursor:
        cursor.execute(_SCRATCH)
        cursor.execute("DELETE FROM new_incoming")
        with cursor.copy(f"COPY new_incoming ({_SCRATCH_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_SCRATCH_TYPES)
            for index, serial, zone, taken_at, value, source, source_ref in readings:
                meter = meters.get(serial)
                if meter is None:
                    continue
                _, meter_id, zones, digits, installed_on, verified_until, archived_on, *kind = meter
                key = (kind[0], kind[1], kind[2])  # service, diameter, individual: a handful per batch
                if key not in limits:
                    limit = flow_limit(*key)
                    limits[key] = None if limit is None else str(limit)
                position[(meter_id, zone)] = index
                copy.write_row(
                    (
                        index, meter_id, zone, taken_at, str(value), source, source_ref,
                        zones, digits, installed_on, verified_until, archived_on, limits[key],
                    )
                )  # fmt: skip
        # The driver's cursor, not a SQLAlchemy result: plain tuples, no Row object per reading.
        cursor.execute(_ACCEPT, {"zone": get_settings().timezone, "latest": now + CLOCK_SKEW})
        stored = cursor.fetchall()
    return [(position[(meter_id, zone)], reading_id, meter_id, flags) for meter_id, zone, reading_id, flags in stored]
