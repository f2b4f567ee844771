"""Meter and readings files on both databases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.builders import import_file, import_rows, meter, registry
from zhkh.core.errors import ProblemsFound
from zhkh.core.tabular import open_table
from zhkh.metering.imports import READINGS_SPEC, MetersImport, check_readings_file, import_readings
from zhkh.metering.models import Meter, MeterScope, Reading, ReadingStatus

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
WriteFile = Callable[..., Path]


def test_meters_import_with_defaults_and_building_meters(session: Session, tmp_path: Path) -> None:
    registry(session, tmp_path, premises=2)
    rows = [
        meter(),
        meter(serial="EL-1", service="Электроэнергия", account="1002", zones="2"),
        meter(serial="ODPU", account=""),
    ]
    summary = import_rows(session, tmp_path, MetersImport(), rows)
    assert (summary.created, summary.unchanged) == (3, 0)
    stored = {m.serial: m for m in session.scalars(select(Meter))}
    assert (stored["EL-1"].service.value, stored["EL-1"].digits, stored["EL-1"].zones) == ("electricity", 6, 2)
    assert stored["ODPU"].scope is MeterScope.BUILDING
    assert stored["ODPU"].account_id is None
    assert import_rows(session, tmp_path, MetersImport(), rows).unchanged == 3
    rows[0]["verified_until"] = "2031-01-15"
    assert import_rows(session, tmp_path, MetersImport(), rows).updated == 1
    assert session.scalar(select(Meter.verified_until).where(Meter.serial == "CW-1001")) == date(2031, 1, 15)


def test_bad_meters_are_all_reported(session: Session, tmp_path: Path) -> None:
    registry(session, tmp_path, premises=2)
    from tests.builders import building
    from tests.builders import import_rows as rows_import
    from zhkh.housing.imports import BuildingsImport

    rows_import(session, tmp_path, BuildingsImport(), [building(building_id="B-2", address="другой дом")])
    rows = [
        meter(serial="A", service="steam"),
        meter(serial="B", zones="2"),
        meter(serial="C", building_id="B-9"),
        meter(serial="D", account="9999"),
        meter(serial="E", building_id="B-2"),
        meter(serial="F", verified_until="2020-01-01"),
        meter(serial="F"),
    ]
    with pytest.raises(ProblemsFound) as excinfo:
        import_rows(session, tmp_path, MetersImport(), rows)
    assert [str(p) for p in excinfo.value.problems] == [
        "line 2: service: unknown service 'steam'; expected one of cold_water, hot_water, electricity, heating, gas",
        "line 3: zones: 2 zones: 1 for cold_water, 1 to 3 for electricity",
        "line 4: building_id: no building 'B-9'",
        "line 5: account: no personal account '9999'",
        "line 6: account 1001 is not in building B-2",
        "line 7: verified_until: 2020-01-01 is before the installation on 2024-01-15",
    ]


def test_readings_file_counts_by_outcome_and_reason(session: Session, tmp_path: Path, write_file: WriteFile) -> None:
    registry(session, tmp_path, premises=2)
    import_rows(
        session,
        tmp_path,
        MetersImport(),
        [meter(), meter(serial="EL-1", service="electricity", account="1002", zones="2")],
    )
    content = (
        "serial;date;value;value_t1;value_t2\n"
        "CW-1001;2026-02-24;100;;\n"
        "CW-1001;25.03.2026;107,5;;\n"
        "CW-1001;2026-03-26;99;;\n"
        "EL-1;2026-03-25;;4521,7;1873,25\n"
        "NOPE;2026-03-25;1;;\n"
        "CW-1001;2026-03-25;107,5;;\n"
    )
    path = write_file("readings.csv", content, "cp1251")
    with open_table(path, READINGS_SPEC) as reader:
        assert check_readings_file(reader) == 6
    with open_table(path, READINGS_SPEC) as reader:
        summary = import_readings(session, reader)
    assert summary.describe() == (
        "readings: 6 rows, 7 readings: 4 accepted, 1 duplicate, 1 rejected, 1 quarantined "
        "(below_previous: 1, unknown_meter: 1)"
    )
    rejected = session.scalar(select(Reading).where(Reading.status == ReadingStatus.REJECTED))
    assert rejected is not None
    assert rejected.detail == "99 is less than the previous reading 107.5 of 2026-03-25"


def test_malformed_readings_file_is_refused_whole(write_file: WriteFile) -> None:
    content = (
        "serial,date,value,value_t1\nCW-1,2026-03-25,1,\nCW-1,yesterday,2,\nCW-1,2026-03-25,,\nCW-1,2026-03-25,1,2\n"
        f"CW-1,9999-12-31 23:00+00:00,1,\n{'S' * 80},2026-03-25,1,\nCW-1,2026-03-25,1234567890123,\n"
    )
    with pytest.raises(ProblemsFound) as excinfo, open_table(write_file("r.csv", content), READINGS_SPEC) as reader:
        check_readings_file(reader)
    assert [str(p) for p in excinfo.value.problems] == [
        "line 3: date: not a date in the form 2026-03-01 or 01.03.2026: 'yesterday'",
        "line 4: no reading: value (or value_t1...) is empty",
        "line 5: give either value or value_t1, value_t2, value_t3, not both",
        "line 6: taken_at must be between 1970 and 2099, got 9999-12-31T23:00:00+00:00",
        f"line 7: serial is longer than 64 characters: {'S' * 64}…",
        "line 8: value has more than 12 digits before the decimal point: 1234567890123",
    ]


def test_example_files(session: Session, tmp_path: Path) -> None:
    from tests.builders import import_file as registry_file
    from zhkh.housing.imports import BuildingsImport, OrganisationsImport, PremisesImport

    for name, importer in [
        ("organisations.csv", OrganisationsImport()),
        ("buildings.csv", BuildingsImport()),
        ("premises.csv", PremisesImport()),
    ]:
        registry_file(session, EXAMPLES / name, importer)
    assert import_file(session, EXAMPLES / "meters.csv", MetersImport()).created == 5
    with open_table(EXAMPLES / "readings.csv", READINGS_SPEC) as reader:
        check_readings_file(reader)
    with open_table(EXAMPLES / "readings.csv", READINGS_SPEC) as reader:
        summary = import_readings(session, reader)
    assert summary.report.counts() == {"accepted": 7}
