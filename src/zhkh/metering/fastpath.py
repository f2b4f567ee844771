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

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from zhkh.core.config import get_settings
from zhkh.metering.validation import CLOCK_SKEW, DAY_SECONDS, Flag

# The statement reads the batch from a temporary table filled by COPY. ``later`` readings (at or
# after this one, whatever their status) send a reading to the judge: it may be late, a duplicate
# or a conflict. Jumps are compared multiplied out, exactly as validation.exceeds() does.
_ACCEPT = f"""
WITH incoming AS (
    SELECT i.idx, i.zone, i.taken_at, i.value, i.source, i.source_ref,
           m.id AS meter_id, m.zones, m.digits, m.installed_on, m.verified_until, m.archived_on,
           COALESCE(by_size.max_per_hour,
                    CASE WHEN m.scope = 'individual' THEN by_service.max_per_hour END) AS max_per_hour,
           (i.taken_at AT TIME ZONE %(zone)s)::date AS day,
           power(10::numeric, m.digits) AS capacity
    FROM new_incoming i
    JOIN meters m ON m.serial = i.serial
    LEFT JOIN flow_limits by_size ON by_size.service = m.service AND by_size.diameter_mm = m.diameter_mm
    LEFT JOIN flow_limits by_service ON by_service.service = m.service AND by_service.diameter_mm IS NULL
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
), stored AS (
    INSERT INTO readings (meter_id, zone, taken_at, value, status, flags, source, source_ref)
    SELECT meter_id, zone, taken_at, value, 'accepted',
           NULLIF(concat_ws(',', CASE WHEN rolled THEN '{Flag.ROLLOVER.value}' END,
                                 CASE WHEN verified_until IS NOT NULL AND day > verified_until
                                      THEN '{Flag.VERIFICATION_EXPIRED.value}' END), ''),
           source, source_ref
    FROM decided WHERE fits
    ON CONFLICT DO NOTHING
    RETURNING id, meter_id, zone, flags
)
-- Both sides go back to Python, which pairs them on (meter, zone), unique in a batch: joining the
-- two CTEs here would be planned as a nested loop over both, quadratic in the batch.
SELECT 'decided' AS kind, idx, meter_id, zone, NULL::bigint AS id, NULL::varchar AS flags FROM decided WHERE fits
UNION ALL
SELECT 'stored', NULL, meter_id, zone, id, flags FROM stored
"""

_SCRATCH = """
CREATE TEMPORARY TABLE IF NOT EXISTS new_incoming (
    idx integer, serial varchar(64), zone smallint, taken_at timestamptz, value numeric,
    source varchar(40), source_ref varchar(200)
) ON COMMIT DELETE ROWS
"""


def accept_plain(
    session: Session, readings: Sequence[tuple[int, str, int, datetime, object, str, str | None]], now: datetime
) -> list[tuple[int, int, int, str | None]]:
    """Accept what is plainly acceptable among ``readings`` (index, serial, zone, taken_at,
    value, source, source_ref), each meter and zone at most once. Returns (index, reading id,
    meter id, flags) of the readings accepted; the others are not touched."""
    if not readings:
        return []
    connection = session.connection()
    connection.exec_driver_sql(_SCRATCH)
    connection.exec_driver_sql("DELETE FROM new_incoming")
    raw = connection.connection.driver_connection
    assert raw is not None
    columns = "idx, serial, zone, taken_at, value, source, source_ref"
    with raw.cursor() as cursor:
        with cursor.copy(f"COPY new_incoming ({columns}) FROM STDIN") as copy:
            for row in readings:
                copy.write_row(row)
        # The driver's cursor, not a SQLAlchemy result: plain tuples, no Row object for each
        # of the batch's 2,000 result rows.
        cursor.execute(_ACCEPT, {"zone": get_settings().timezone, "latest": now + CLOCK_SKEW})
        result = cursor.fetchall()
    index = {(meter_id, zone): idx for kind, idx, meter_id, zone, _, _ in result if kind == "decided"}
    return [
        (index[(meter_id, zone)], reading_id, meter_id, flags)
        for kind, _, meter_id, zone, reading_id, flags in result
        if kind == "stored"
    ]
