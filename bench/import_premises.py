"""Benchmark: import N premises rows (default 1,000,000) into PostgreSQL with `zhkh import`.

    python bench/import_premises.py --rows 1000000

Creates a fresh database (default zhkh_bench on the local server), imports the region's
organisations and buildings, then times three runs of `zhkh import premises` as a separate
process: the first (every row created), the same file again (every row unchanged), and a file
with 1 % of the rows changed. Prints wall time, rows/s and the peak RSS of the importing process.
Never asserts: the figures go into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: make `bench` importable

from bench.generate_region import write_region  # noqa: E402


def recreate_database(server_url: str, name: str) -> str:
    if server_url.startswith("sqlite"):
        path = Path(server_url.removeprefix("sqlite:///"))
        for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            leftover.unlink(missing_ok=True)
        return server_url
    admin = create_engine(server_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def zhkh(database_url: str, *args: str) -> tuple[float, str]:
    """Run the real command line in its own process; return wall seconds and its output."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "zhkh", *args],
        env=os.environ | {"ZHKH_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"zhkh {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed, result.stdout.strip()


def changed_copy(source: Path, target: Path, every: int = 100) -> None:
    with source.open(encoding="utf-8", newline="") as src, target.open("w", encoding="utf-8", newline="") as dst:
        reader, writer = csv.reader(src), csv.writer(dst)
        writer.writerow(next(reader))
        for number, row in enumerate(reader):
            if number % every == 0:
                row[4] = str(int(row[4]) + 1)
            writer.writerow(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--server",
        default=os.environ.get("ZHKH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="PostgreSQL server URL (a fresh --database is made there), or a sqlite:///FILE URL",
    )
    parser.add_argument("--database", default="zhkh_bench")
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / "data")
    args = parser.parse_args()

    folder = args.data / f"region-{args.rows}"
    started = time.perf_counter()
    paths = write_region(folder, args.rows)
    changed = folder / "premises-changed.csv"
    changed_copy(paths["premises"], changed)
    print(f"generated {args.rows:,} rows in {time.perf_counter() - started:.1f} s ({folder})")

    url = recreate_database(args.server, args.database)
    zhkh(url, "db", "upgrade")
    zhkh(url, "import", "organisations", str(paths["organisations"]))
    seconds, _ = zhkh(url, "import", "buildings", str(paths["buildings"]))
    print(f"buildings: {seconds:.1f} s")

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    for label, path in [
        ("first import", paths["premises"]),
        ("same file again", paths["premises"]),
        ("1% changed", changed),
    ]:
        seconds, summary = zhkh(url, "import", "premises", str(path))
        print(f"{label:>16}: {seconds:6.1f} s  {args.rows / seconds:10,.0f} rows/s  | {summary}")
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS of the importing process: {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
