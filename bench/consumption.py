"""Benchmark: consumption of every meter of a region for one period, on PostgreSQL.

    python bench/region.py --accounts 1000000 --database zhkh_bench_1m     # once, a few minutes
    python bench/consumption.py --database zhkh_bench_1m

Puts two readings on every meter (in the previous and in this period's reading window), and
one automatic meter in ten also hourly readings around the period's boundaries, then times
compute_consumption() for the period: the lookups, the arithmetic, writing the rows. Prints the
time and the peak RSS of this process. Never asserts.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from datetime import UTC, datetime

from sqlalchemy import text

from zhkh.core.db import create_db_engine, session_scope
from zhkh.core.periods import Period
from zhkh.metering.consumption import compute_consumption

PERIOD = Period(2026, 10)


def seed(url: str) -> int:
    """Readings made by SQL, not through the pipeline: this benchmark is about consumption."""
    engine = create_db_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "TRUNCATE readings, quarantined_readings, consumption, outbox, device_bindings, devices, device_models"
            )
        )
        connection.execute(text("UPDATE meters SET automatic = (id % 10 = 0)"))
        # A meter is read automatically in a period when a device was bound to it then.
        connection.execute(
            text(
                """
                INSERT INTO device_models (id, name, format, mapping) VALUES (1, 'bench', 'platform', '{}');
                INSERT INTO devices (id, format, external_id, model_id)
                SELECT id, 'platform', 'bench-' || id, 1 FROM meters WHERE automatic;
                INSERT INTO device_bindings (device_id, channel, meter_id, zone, bound_from)
                SELECT id, 'value', id, 1, TIMESTAMPTZ '2026-01-01 00:00+03' FROM meters WHERE automatic;
                """
            )
        )
        connection.execute(
            text(
                """
                INSERT INTO readings (meter_id, zone, taken_at, value, status, source)
                SELECT id, 1, TIMESTAMPTZ '2026-09-20 09:00+03', 100 + id % 50, 'accepted', 'bench' FROM meters
                UNION ALL
                SELECT id, 1, TIMESTAMPTZ '2026-10-20 09:00+03', 100 + id % 50 + id % 7 + 1, 'accepted', 'bench'
                FROM meters
                """
            )
        )
        # automatic meters: readings an hour either side of both boundaries
        connection.execute(
            text(
                """
                INSERT INTO readings (meter_id, zone, taken_at, value, status, source)
                SELECT id, 1, moment,
                       100 + id % 50 + extract(epoch FROM moment - TIMESTAMPTZ '2026-09-01 00:00+03') / 864000,
                       'accepted', 'bench'
                FROM meters, unnest(ARRAY[
                    TIMESTAMPTZ '2026-09-30 23:00+03', TIMESTAMPTZ '2026-10-01 01:00+03',
                    TIMESTAMPTZ '2026-10-31 23:00+03', TIMESTAMPTZ '2026-11-01 01:00+03'
                ]) AS moment
                WHERE automatic
                """
            )
        )
        connection.execute(text("ANALYZE readings"))
        connection.execute(text("ANALYZE meters"))
        meters = connection.execute(text("SELECT count(*) FROM meters")).scalar_one()
    engine.dispose()
    return int(meters)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--server", default=os.environ.get("ZHKH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--database", default="zhkh_bench_1m")
    args = parser.parse_args()
    url = args.server.rsplit("/", 1)[0] + f"/{args.database}"
    started = time.perf_counter()
    meters = seed(url)
    print(f"seeded readings for {meters:,} meters in {time.perf_counter() - started:.1f} s")
    engine = create_db_engine(url)
    started = time.perf_counter()
    with session_scope(engine) as session:
        summary = compute_consumption(session, PERIOD)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"consumption {PERIOD}: {summary.rows:,} meter zones in {seconds:.1f} s ({summary.rows / seconds:,.0f}/s), "
        f"{summary.by_provenance}; peak RSS {peak:.0f} MiB "
        f"({platform.machine()}, {os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d})"
    )


if __name__ == "__main__":
    main()
