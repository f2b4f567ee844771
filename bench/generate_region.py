"""Generate a synthetic region of N personal accounts as import files.

    python bench/generate_region.py --accounts 1000000 --out bench/data/region-1m

Writes organisations.csv, buildings.csv (one building per 100 accounts) and premises.csv
(one row per account), streamed, so any N fits in memory. Deterministic for a given --seed.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from zhkh.core.requisites import with_account_key, with_inn_check_digits

ACCOUNTS_PER_BUILDING = 100
BIC = "046577964"


def write_region(out: Path, accounts: int, seed: int = 1) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    manager_inn = with_inn_check_digits("990000001")
    corr = with_account_key("30101810000000000964", BIC, correspondent=True)
    paths = {name: out / f"{name}.csv" for name in ("organisations", "buildings", "premises")}

    with paths["organisations"].open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["inn", "kpp", "name", "role", "bank_account", "bic", "bank_name", "corr_account"])
        account = with_account_key("40702810000000000001", BIC)
        writer.writerow([manager_inn, "990001001", "ООО «Региональная УК»", "manager", account, BIC, "Банк", corr])

    buildings = max(1, -(-accounts // ACCOUNTS_PER_BUILDING))
    with paths["buildings"].open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["building_id", "address", "total_area_m2", "common_area_m2", "manager_inn"])
        for number in range(buildings):
            writer.writerow(
                [f"R{number:07d}", f"г. Регион, ул. Синтетическая, д. {number}", "5000", "900", manager_inn]
            )

    with paths["premises"].open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["account", "building_id", "premise", "area_m2", "residents", "payer", "kind", "meter_possible"]
        )
        for number in range(accounts):
            building, flat = divmod(number, ACCOUNTS_PER_BUILDING)
            area = f"{rng.randrange(250, 950) / 10:.1f}"
            writer.writerow(
                [
                    f"{number + 10_000_000}",
                    f"R{building:07d}",
                    str(flat + 1),
                    area,
                    rng.randrange(0, 6),
                    f"Плательщик {number}",
                    "residential",
                    "yes" if rng.random() > 0.05 else "no",
                ]
            )
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=Path("bench/data/region"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    paths = write_region(args.out, args.accounts, args.seed)
    for name, path in paths.items():
        print(f"{name}: {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
