"""Build a synthetic region in a fresh database, for the metering and billing benchmarks.

    python bench/region.py --accounts 100000 --database zhkh_bench_metering

Creates the database on the local PostgreSQL server (or takes --url sqlite:///FILE), migrates
it, and imports through the real importers: organisations, buildings (100 accounts each),
premises, and one cold water meter per account plus a building meter per building.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: make `bench` importable

from bench.generate_region import ACCOUNTS_PER_BUILDING, write_region  # noqa: E402
from bench.import_premises import recreate_database, zhkh  # noqa: E402


def write_meters(folder: Path, accounts: int) -> Path:
    path = folder / "meters.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["serial", "service", "building_id", "account", "zones", "installed_on", "verified_until", "diameter_mm"]
        )
        for number in range(accounts):
            building = number // ACCOUNTS_PER_BUILDING
            writer.writerow(
                [
                    f"M{number:08d}",
                    "cold_water",
                    f"R{building:07d}",
                    number + 10_000_000,
                    1,
                    "2024-01-01",
                    "2030-01-01",
                    15,
                ]
            )
        for building in range(-(-accounts // ACCOUNTS_PER_BUILDING)):
            writer.writerow(
                [f"B{building:07d}", "cold_water", f"R{building:07d}", "", 1, "2024-01-01", "2030-01-01", ""]
            )
    return path


def build(accounts: int, url: str, data: Path) -> None:
    folder = data / f"region-{accounts}"
    paths = write_region(folder, accounts)
    meters = write_meters(folder, accounts)
    zhkh(url, "db", "upgrade")
    for kind, path in [
        ("organisations", paths["organisations"]),
        ("buildings", paths["buildings"]),
        ("premises", paths["premises"]),
        ("meters", meters),
    ]:
        started = time.perf_counter()
        _, summary = zhkh(url, "import", kind, str(path))
        print(f"{kind:>13}: {time.perf_counter() - started:6.1f} s  {summary}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument(
        "--server", default=os.environ.get("ZHKH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--database", default="zhkh_bench_metering")
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / "data")
    args = parser.parse_args()
    url = recreate_database(args.server, args.database)
    build(args.accounts, url, args.data)
    print(f"region of {args.accounts:,} accounts in {url}")


if __name__ == "__main__":
    main()
