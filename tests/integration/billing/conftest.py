"""A small billed town for the billing tests: building B-1 with three flats (metered_registry),
a water company, a manager, social protection, and a catalogue whose figures the tests use."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.builders import MANAGER_INN, SUPPLIER_INN, import_rows, metered_registry, organisation
from zhkh.core.outbox import OutboxMessage
from zhkh.core.periods import Period
from zhkh.core.requisites import with_inn_check_digits
from zhkh.housing.imports import OrganisationsImport
from zhkh.metering.alarm_checks import on_readings_arrived
from zhkh.metering.intake import IncomingReading, ingest
from zhkh.tariffs.imports import NormsImport, SuppliersImport, TariffsImport

SOCIAL_INN = with_inn_check_digits("770000003")
MARCH, APRIL, MAY = Period(2026, 3), Period(2026, 4), Period(2026, 5)
NOW = datetime(2026, 4, 28, tzinfo=UTC)  # April: what is read is in the past
MSK = timedelta(hours=3)

SUPPLIED = {
    "maintenance": MANAGER_INN,
    "electricity": MANAGER_INN,
    "common_cold_water": MANAGER_INN,
    "cold_water": SUPPLIER_INN,
    "hot_water": SUPPLIER_INN,
    "wastewater": SUPPLIER_INN,
}
TARIFFS = [
    ("maintenance", "", "30", "m2"),
    ("cold_water", "", "50", "m3"),
    ("hot_water", "", "200", "m3"),
    ("wastewater", "", "40", "m3"),
    ("electricity", "1", "6", "kWh"),
    ("electricity", "2", "3", "kWh"),
    ("electricity", "", "5", "kWh"),
    ("common_cold_water", "", "50", "m3"),
]
NORMS = [
    ("cold_water", "6.935", "m3/person"),
    ("hot_water", "4.745", "m3/person"),
    ("wastewater", "11.68", "m3/person"),
    ("electricity", "110", "kWh/person"),
    ("common_cold_water", "0.0269", "m3/m2"),
    ("social_area", "18", "m2/person"),
]


def local(day: int, month: int, hour: int = 12, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC) - MSK


def tariff_row(service: str, zone: str, price: str, unit: str, **overrides: Any) -> dict[str, Any]:
    row = {
        "service": service,
        "zone": zone,
        "price": price,
        "unit": unit,
        "valid_from": "2025-01-01",
        "valid_to": "",
        "building_id": "",
    }
    return row | overrides


@pytest.fixture
def town(session: Session, tmp_path: Path) -> None:
    """Accounts 1001 (cold and hot water meters), 1002 (two-zone electricity meter), 1003 (no
    meters), each 45.6 m² with 2 residents and one owner, meters possible; a building cold water
    meter B-CW. Building 3000.5 m², common area 540 m²."""
    metered_registry(session, tmp_path)
    import_rows(
        session,
        tmp_path,
        OrganisationsImport(),
        [
            organisation(),
            organisation(inn=SUPPLIER_INN, role="supplier", name="АО «Водоканал»"),
            organisation(
                inn=SOCIAL_INN,
                role="social_protection",
                name="ГКУ «Соцзащита»",
                bank_account="",
                bic="",
                bank_name="",
                corr_account="",
            ),
        ],
    )
    import_catalogue(session, tmp_path)


def import_catalogue(session: Session, tmp_path: Path) -> None:
    """The billing catalogue of these tests: who supplies what to B-1, tariffs, norms."""
    suppliers = [
        {"building_id": "B-1", "service": service, "supplier_inn": inn, "valid_from": "2025-01-01", "valid_to": ""}
        for service, inn in SUPPLIED.items()
    ]
    import_rows(session, tmp_path, SuppliersImport(), suppliers)
    import_rows(session, tmp_path, TariffsImport(), [tariff_row(*row) for row in TARIFFS])
    norms = [
        {"service": s, "value": v, "unit": u, "valid_from": "2017-01-01", "valid_to": "", "building_id": ""}
        for s, v, u in NORMS
    ]
    import_rows(session, tmp_path, NormsImport(), norms)


Read = Callable[..., None]


@pytest.fixture
def read(session: Session) -> Read:
    """Store readings as the pipeline does, and let the worker bring consumption up to date:
    ``read(serial, value, when[, zone])`` or ``read([(serial, value, when, zone), ...])``."""

    def read_(*reading: Any) -> None:
        batch = reading[0] if isinstance(reading[0], list) else [reading]
        incoming = [IncomingReading(r[2], Decimal(r[1]), r[3] if len(r) > 3 else 1, r[0], source="test") for r in batch]
        report = ingest(session, incoming, now=NOW)
        assert all(outcome.status.value == "accepted" for outcome in report.outcomes), report.outcomes
        for message in session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.topic == "metering.readings_arrived", OutboxMessage.delivered_at.is_(None)
            )
        ):
            on_readings_arrived(session, message.payload, NOW)
            message.delivered_at = NOW

    return read_


@pytest.fixture
def march_readings(town: None, read: Read) -> None:
    """CW-1001 100 → 107, HW-1001 50 → 52, EL-1002 t1 1000 → 1150 and t2 500 → 580 (Feb 20 →
    Mar 20); the building meter B-CW 10000 → 10100 (Feb 28 → Mar 31)."""
    batch = []
    for serial, zone, before, after in (
        ("CW-1001", 1, "100", "107"),
        ("HW-1001", 1, "50", "52"),
        ("EL-1002", 1, "1000", "1150"),
        ("EL-1002", 2, "500", "580"),
    ):
        batch += [(serial, before, local(20, 2), zone), (serial, after, local(20, 3), zone)]
    batch += [("B-CW", "10000", local(28, 2, 20), 1), ("B-CW", "10100", local(31, 3, 20), 1)]
    read(batch)
