"""Keyword-default builders of test data: valid unless a test says otherwise."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from zhkh.core.importing import Importer, ImportSummary, run_import
from zhkh.core.requisites import with_account_key, with_inn_check_digits
from zhkh.core.tabular import open_table
from zhkh.housing.imports import BuildingsImport, OrganisationsImport, OwnersImport, PremisesImport

BIC = "044525225"
CORR = "30101810400000000225"
MANAGER_INN = with_inn_check_digits("770000001")
SUPPLIER_INN = with_inn_check_digits("770000002")


def organisation(**overrides: Any) -> dict[str, Any]:
    inn = overrides.get("inn", MANAGER_INN)
    row = {
        "inn": inn,
        "kpp": "770001001",
        "name": f"ООО «Организация {inn}»",
        "role": "manager",
        "bank_account": with_account_key(f"40702810{inn[-10:]:0>10}00", BIC),
        "bic": BIC,
        "bank_name": "ПАО Сбербанк",
        "corr_account": CORR,
    }
    return row | overrides


def building(**overrides: Any) -> dict[str, Any]:
    row = {
        "building_id": "B-1",
        "address": "г. Тестовск, ул. Первая, д. 1",
        "total_area_m2": "3000.5",
        "common_area_m2": "540",
        "manager_inn": MANAGER_INN,
    }
    return row | overrides


def premise(**overrides: Any) -> dict[str, Any]:
    row = {
        "account": "1001",
        "building_id": "B-1",
        "premise": "1",
        "area_m2": "45.6",
        "residents": "2",
        "payer": "Иванов Иван Иванович",
        "kind": "residential",
        "meter_possible": "yes",
    }
    return row | overrides


def owner(**overrides: Any) -> dict[str, Any]:
    row = {"building_id": "B-1", "premise": "1", "owner": "Иванов Иван Иванович", "share": "1"}
    return row | overrides


def csv_text(rows: Iterable[Mapping[str, Any]], delimiter: str = ",", header: list[str] | None = None) -> str:
    rows = list(rows)
    columns = header or list(dict.fromkeys(key for row in rows for key in row))  # every key, in order
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, delimiter=delimiter, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def import_file(session: Session, path: Path, importer: Importer) -> ImportSummary:
    with open_table(path, importer.spec) as reader:
        return run_import(session, reader, importer)


def import_rows(
    session: Session, tmp_path: Path, importer: Importer, rows: Iterable[Mapping[str, Any]]
) -> ImportSummary:
    path = tmp_path / f"{importer.spec.what}.csv"
    path.write_text(csv_text(rows), encoding="utf-8")
    return import_file(session, path, importer)


def registry(session: Session, tmp_path: Path, premises: int = 3) -> None:
    """A manager, a building and ``premises`` premises with one owner each."""
    import_rows(session, tmp_path, OrganisationsImport(), [organisation()])
    import_rows(session, tmp_path, BuildingsImport(), [building()])
    if not premises:
        return
    import_rows(
        session,
        tmp_path,
        PremisesImport(),
        [premise(account=str(1000 + n), premise=str(n)) for n in range(1, premises + 1)],
    )
    import_rows(session, tmp_path, OwnersImport(), [owner(premise=str(n)) for n in range(1, premises + 1)])


def meter(**overrides: Any) -> dict[str, Any]:
    row = {
        "serial": "CW-1001",
        "service": "cold_water",
        "building_id": "B-1",
        "account": "1001",
        "zones": "1",
        "installed_on": "2024-01-15",
        "verified_until": "2030-01-15",
    }
    return row | overrides


def metered_registry(session: Session, tmp_path: Path) -> None:
    """``registry`` with three premises, plus: cold and hot water meters of account 1001, a
    two-zone electricity meter of 1002, and a building cold water meter."""
    from zhkh.metering.imports import MetersImport

    registry(session, tmp_path, premises=3)
    rows = [
        meter(),
        meter(serial="HW-1001", service="hot_water"),
        meter(serial="EL-1002", service="electricity", account="1002", zones="2"),
        meter(serial="B-CW", account="", diameter_mm="50", digits="7"),
    ]
    import_rows(session, tmp_path, MetersImport(), rows)


IOT_EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "iot"
# The platform examples name the meters of examples/meters.csv; these are their twins in
# ``metered_registry``.
_EXAMPLE_TWINS = {b"CW-100101": b"CW-1001", b"HW-100101": b"HW-1001", b"EL-100101": b"EL-1002"}


def platform_example(name: str) -> bytes:
    """An examples/iot platform message, naming the meters of ``metered_registry``."""
    payload = (IOT_EXAMPLES / name).read_bytes()
    for example, twin in _EXAMPLE_TWINS.items():
        payload = payload.replace(example, twin)
    return payload


def device_models(session: Session) -> None:
    """The example device models of examples/iot/models.json."""
    import json

    from zhkh.metering.service import save_device_model

    for name, model in json.loads((IOT_EXAMPLES / "models.json").read_text()).items():
        save_device_model(session, name, model["format"], model["mapping"])
