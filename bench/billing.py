"""Benchmark: the monthly billing run over a region, on PostgreSQL (or SQLite).

    python bench/region.py --accounts 1000000 --database zhkh_bench_1m        # once, a few minutes
    python bench/billing.py --database zhkh_bench_1m
    python bench/region.py --accounts 100000 --server sqlite:///bench/data/billing.db
    python bench/billing.py --url sqlite:///bench/data/billing.db

Adds to the region (one cold water meter per account, a building meter per building) what a
month of billing needs: 8 services per account from two suppliers (maintenance, capital repair,
cold and hot water, wastewater, electricity, heating, КР на СОИ for cold water), hot water
meters on 70 % of accounts, two-zone electricity meters on 60 % (the others billed by norm ×
multiplier), a building heat meter in every other building (heating by formula 3 there, by
formula 2 elsewhere), readings of the previous and this period, and a benefit on 5 % of
accounts. Then brings consumption up to date (as the worker would) and times
``run_billing()``: loading inputs, computing, writing lines, each stage reported. Never asserts.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import sys
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Table, select, text
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.memory import ChildrenRss, peak_rss_mib, reset_peak_rss  # noqa: E402
from zhkh.billing.models import AccrualLine, BilledAccount, BillingPeriod, BillingProblemRow  # noqa: E402
from zhkh.billing.service import run_billing  # noqa: E402
from zhkh.core.bulk import bulk_insert  # noqa: E402
from zhkh.core.db import create_db_engine, session_scope  # noqa: E402
from zhkh.core.periods import Period  # noqa: E402
from zhkh.housing.models import Account, Building, Organisation, OrganisationRole, Premise  # noqa: E402
from zhkh.metering.consumption import compute_consumption  # noqa: E402
from zhkh.metering.models import Consumption, Meter, Reading  # noqa: E402
from zhkh.schema import upgrade  # noqa: E402
from zhkh.tariffs.models import Benefit, Norm, ServiceSupplier, Tariff  # noqa: E402

PERIOD = Period(2026, 10)
CHUNK = 50_000
SERVICES = (
    "maintenance",
    "capital_repair",
    "cold_water",
    "hot_water",
    "wastewater",
    "electricity",
    "heating",
    "common_cold_water",
)
WATER_COMPANY = ("cold_water", "hot_water", "wastewater", "common_cold_water")
TARIFFS = [
    ("maintenance", 0, "32.40", "m2"),
    ("capital_repair", 0, "14.27", "m2"),
    ("cold_water", 0, "55.12", "m3"),
    ("hot_water", 0, "242.18", "m3"),
    ("wastewater", 0, "41.36", "m3"),
    ("electricity", 0, "6.21", "kWh"),
    ("electricity", 1, "7.12", "kWh"),
    ("electricity", 2, "3.48", "kWh"),
    ("heating", 0, "2987.45", "Gcal"),
    ("common_cold_water", 0, "55.12", "m3"),
]
NORMS = [
    ("cold_water", "6.935", "m3/person"),
    ("hot_water", "4.745", "m3/person"),
    ("wastewater", "11.68", "m3/person"),
    ("electricity", "110", "kWh/person"),
    ("heating", "0.0208", "Gcal/m2"),
    ("common_cold_water", "0.0269", "m3/m2"),
    ("social_area", "18", "m2/person"),
]
MSK = 3


def moment(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour - MSK, tzinfo=UTC)


def table(model: Any) -> Table:
    result: Table = model.__table__
    return result


def clean(session: Session) -> None:
    """Billing's tables and the catalogue start empty; meters and readings seeded by an earlier
    run are kept (deleting readings is not something the platform ever does, nor is it fast)."""
    models = (AccrualLine, BilledAccount, BillingProblemRow, BillingPeriod, Benefit, Tariff, Norm, ServiceSupplier)
    if session.get_bind().dialect.name == "postgresql":  # DELETE would check every line's references
        session.execute(text(f"TRUNCATE {', '.join(table(model).name for model in models)}"))
    for model in models:
        session.execute(table(model).delete())
    session.execute(table(Consumption).delete().where(Consumption.period == PERIOD.first_day))


def catalogue(session: Session) -> None:
    manager = session.scalar(select(Organisation.id).where(Organisation.role == OrganisationRole.MANAGER))
    water = session.scalar(select(Organisation.id).where(Organisation.inn == "7700000002"))
    if water is None:
        water_company = Organisation(
            inn="7700000002", kpp="770001001", name="bench water", role=OrganisationRole.SUPPLIER
        )
        session.add(water_company)
        session.flush()
        water = water_company.id
    since = date(2024, 1, 1)
    buildings = list(session.scalars(select(Building.id)))
    rows = [
        {"building_id": b, "service": s, "supplier_id": water if s in WATER_COMPANY else manager, "valid_from": since}
        for b in buildings
        for s in SERVICES
    ]
    bulk_insert(session, table(ServiceSupplier), rows)
    for service, zone, price, unit in TARIFFS:
        session.add(Tariff(service=service, zone=zone, price=Decimal(price), unit=unit, valid_from=since))
    for service, value, unit in NORMS:
        session.add(Norm(service=service, value=Decimal(value), unit=unit, valid_from=date(2017, 1, 1)))
    if session.scalar(select(Organisation.id).where(Organisation.inn == "7700000003")) is None:
        session.add(
            Organisation(
                inn="7700000003", kpp="770001001", name="bench social", role=OrganisationRole.SOCIAL_PROTECTION
            )
        )
        session.flush()


def meters_and_readings(session: Session) -> int:
    """Hot water (70 %) and two-zone electricity (60 %) meters, heat meters in half the
    buildings, and two readings each (September's and October's windows)."""
    accounts = session.execute(
        select(Account.id, Premise.building_id).join(Premise, Premise.id == Account.premise_id).order_by(Account.id)
    ).all()
    new: list[dict[str, Any]] = []
    for account_id, building_id in accounts:
        base = {"scope": "individual", "building_id": building_id, "account_id": account_id, "digits": 6}
        dates = {"installed_on": date(2024, 1, 1), "verified_until": date(2030, 1, 1), "automatic": False}
        if account_id % 10 < 7:
            new.append({"serial": f"XH{account_id}", "service": "hot_water", "zones": 1, **base, **dates})
        if account_id % 10 < 6:
            new.append({"serial": f"XE{account_id}", "service": "electricity", "zones": 2, **base, **dates})
    for building_id in session.scalars(select(Building.id).where(Building.id % 2 == 0)):
        new.append(
            {
                "serial": f"XB{building_id}",
                "service": "heating",
                "scope": "building",
                "building_id": building_id,
                "account_id": None,
                "digits": 7,
                "zones": 1,
                "installed_on": date(2024, 1, 1),
                "verified_until": date(2030, 1, 1),
                "automatic": False,
            }
        )
    for offset in range(0, len(new), CHUNK):
        bulk_insert(session, table(Meter), new[offset : offset + CHUNK])
    readings: list[dict[str, Any]] = []
    count = 0
    extra = select(Meter.id, Meter.serial, Meter.zones).where(Meter.serial.like("X%"))
    for meter_id, serial, zones in session.execute(extra):
        building_meter = serial.startswith("XB")
        days = (date(2026, 9, 30), date(2026, 10, 31)) if building_meter else (date(2026, 9, 20), date(2026, 10, 20))
        for zone in range(1, zones + 1):
            start = Decimal(100 + meter_id % 50)
            rise = (
                Decimal(meter_id % 7 + zone)
                if not building_meter
                else Decimal(300 if serial.startswith("X") else 90_000)
            )
            for day, value in zip(days, (start, start + rise), strict=True):
                readings.append(
                    {
                        "meter_id": meter_id,
                        "zone": zone,
                        "taken_at": moment(day, 20 if building_meter else 12),
                        "value": value,
                        "status": "accepted",
                        "source": "bench-billing",
                    }
                )
        if len(readings) >= CHUNK:
            bulk_insert(session, table(Reading), readings)
            count += len(readings)
            readings = []
    bulk_insert(session, table(Reading), readings)
    return count + len(readings)


def benefits(session: Session) -> None:
    social = session.scalar(select(Organisation.id).where(Organisation.inn == "7700000003"))
    rows = [
        {
            "account_id": a,
            "service": "maintenance",
            "percent": Decimal(50),
            "limit": "social_norm",
            "persons": None,
            "valid_from": date(2026, 1, 1),
            "granted_by_id": social,
        }
        for a in session.scalars(select(Account.id).where(Account.id % 20 == 0))
    ]
    bulk_insert(session, table(Benefit), rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--server", default=os.environ.get("ZHKH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--database", default="zhkh_bench_1m")
    parser.add_argument("--url", help="a full database URL instead of --server/--database (e.g. sqlite:///FILE)")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the run to this file")
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="worker processes of the run (default: one per core)"
    )
    args = parser.parse_args()
    url = args.url or args.server.rsplit("/", 1)[0] + f"/{args.database}"
    engine = create_db_engine(url)
    upgrade(engine)  # a region built before billing existed gets its tables
    started = time.perf_counter()
    with session_scope(engine) as session:
        clean(session)
        catalogue(session)
        seeded = session.scalar(select(Meter.id).where(Meter.serial.like("X%")).limit(1)) is not None
        readings = 0 if seeded else meters_and_readings(session)
        benefits(session)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            for name in ("meters", "readings", "consumption", "accrual_lines", "service_suppliers", "benefits"):
                connection.execute(text(f"ANALYZE {name}"))
    print(f"seeded catalogue, meters and {readings:,} readings in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    with session_scope(engine) as session:
        summary = compute_consumption(session, PERIOD)
    seconds = time.perf_counter() - started
    print(f"consumption {PERIOD} (the worker's job, before the run): {summary.rows:,} meter zones in {seconds:.1f} s")
    if engine.dialect.name == "postgresql":
        # What autovacuum does once the worker has written a period's consumption (a tenth of the
        # table changed); this machine runs PostgreSQL with autovacuum off.
        with engine.begin() as connection:
            connection.execute(text("ANALYZE consumption"))

    started_mib = reset_peak_rss()  # the seeding's memory is not the run's
    started = time.perf_counter()
    profiler = cProfile.Profile() if args.profile else None
    with session_scope(engine) as session, ChildrenRss() as workers:
        if profiler:
            profiler.enable()
        run = run_billing(session, PERIOD, jobs=args.jobs)
        run_seconds = time.perf_counter() - started
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
    total = time.perf_counter() - started
    peak = peak_rss_mib()
    stages = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in run.stages.items())
    print(
        f"billing {PERIOD}: {run.accounts:,} accounts, {run.lines:,} lines, {len(run.problems)} problems in "
        f"{run_seconds:.1f} s ({total:.1f} s with the commit); {stages}; peak RSS {peak:.0f} MiB "
        f"(from {started_mib:.0f} MiB at the start), workers: {args.jobs}, up to {workers.peak_one:.0f} MiB PSS each, "
        f"{workers.peak_sum:.0f} MiB together "
        f"({engine.dialect.name}, {platform.machine()}, {os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d})"
    )


if __name__ == "__main__":
    main()
