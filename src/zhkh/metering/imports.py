"""File imports of metering: the meter registry (all or nothing, like the registry imports) and
readings (malformed files refused whole; well-formed readings judged one by one)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from sqlalchemy import Column, Date, SmallInteger, String, case, select
from sqlalchemy.orm import Session

from zhkh.core.config import get_settings
from zhkh.core.errors import Problem, ProblemsFound
from zhkh.core.importing import Importer, ImportSummary, RowError, duplicate_problems, parsed, required
from zhkh.core.outbox import emit
from zhkh.core.periods import local_midnight
from zhkh.core.tabular import Column as FileColumn
from zhkh.core.tabular import FileRejected, TableReader, TableSpec
from zhkh.core.values import parse_date, parse_decimal, parse_int
from zhkh.housing.models import Account, Building, Premise
from zhkh.metering.intake import IncomingReading, IntakeReport, ingest
from zhkh.metering.models import Meter, MeterScope, Service
from zhkh.metering.validation import MalformedReading

# Digits before the decimal point when the file does not say: household water and gas meters
# count to 99999, electricity meters to 999999, flat heat meters to 9999 (Gcal).
DEFAULT_DIGITS = {
    Service.COLD_WATER: 5,
    Service.HOT_WATER: 5,
    Service.GAS: 5,
    Service.ELECTRICITY: 6,
    Service.HEATING: 4,
}
_SERVICE_ALIASES = {
    **{service.value: service for service in Service},
    "хвс": Service.COLD_WATER,
    "холодная вода": Service.COLD_WATER,
    "гвс": Service.HOT_WATER,
    "горячая вода": Service.HOT_WATER,
    "электроэнергия": Service.ELECTRICITY,
    "электричество": Service.ELECTRICITY,
    "отопление": Service.HEATING,
    "тепло": Service.HEATING,
    "газ": Service.GAS,
}
_BUILDING = ("Код дома", "ID дома", "Идентификатор дома", "Дом")


class MetersImport(Importer):
    """Meters by serial. An empty ``account`` is a building meter (ОДПУ)."""

    file_names: ClassVar[Mapping[str, str]] = {"building_code": "building_id"}

    spec = TableSpec(
        "meters",
        (
            FileColumn("serial", ("Заводской номер", "Серийный номер", "Номер счетчика", "Номер ПУ")),
            FileColumn("service", ("Услуга", "Ресурс", "Вид ресурса")),
            FileColumn("building_id", _BUILDING),
            FileColumn("account", ("Лицевой счет", "ЛС")),
            FileColumn("zones", ("Тарифность", "Число тарифов", "Зоны")),
            FileColumn("installed_on", ("Дата установки",)),
            FileColumn("verified_until", ("Дата следующей поверки", "Поверен до", "Дата поверки")),
            FileColumn("digits", ("Разрядность",), required=False),
            FileColumn("diameter_mm", ("Диаметр", "Ду"), required=False),
            FileColumn("seal", ("Пломба", "Номер пломбы"), required=False),
        ),
    )

    def staging_columns(self) -> list[Column[Any]]:
        return [
            Column("serial", String(64)),
            Column("service", String(32)),
            Column("building_code", String(64)),
            Column("account", String(32)),
            Column("zones", SmallInteger),
            Column("installed_on", Date),
            Column("verified_until", Date),
            Column("digits", SmallInteger),
            Column("diameter_mm", SmallInteger),
            Column("seal", String(64)),
        ]

    def parse(self, values: Mapping[str, str]) -> dict[str, Any]:
        service = _SERVICE_ALIASES.get(required(values, "service").lower())
        if service is None:
            raise RowError(f"unknown service {values['service']!r}; expected one of {', '.join(Service)}", "service")
        zones = parsed(values, "zones", parse_int)
        if not 1 <= zones <= 3 or (zones > 1 and service is not Service.ELECTRICITY):
            raise RowError(f"{zones} zones: 1 for {service}, 1 to 3 for electricity", "zones")
        installed_on = parsed(values, "installed_on", parse_date)
        verified_until = parsed(values, "verified_until", parse_date, optional=True)
        if verified_until is not None and verified_until < installed_on:
            raise RowError(f"{verified_until} is before the installation on {installed_on}", "verified_until")
        digits = parsed(values, "digits", parse_int, optional=True) or DEFAULT_DIGITS[service]
        if not 1 <= digits <= 12:
            raise RowError(f"{digits} digits; a meter has 1 to 12 before the decimal point", "digits")
        return {
            "serial": required(values, "serial"),
            "service": service.value,
            "building_code": required(values, "building_id"),
            "account": values.get("account") or None,
            "zones": zones,
            "installed_on": installed_on,
            "verified_until": verified_until,
            "digits": digits,
            "diameter_mm": parsed(values, "diameter_mm", parse_int, optional=True),
            "seal": values.get("seal") or None,
        }

    def _located(self) -> Any:
        stage = self.staging
        return (
            select(
                stage,
                Building.id.label("building_pk"),
                Account.id.label("account_pk"),
                Premise.building_id.label("account_building"),
            )
            .select_from(
                stage.outerjoin(Building, Building.code == stage.c.building_code)
                .outerjoin(Account, Account.number == stage.c.account)
                .outerjoin(Premise, Premise.id == Account.premise_id)
            )
            .subquery()
        )

    def check(self, session: Session) -> list[Problem]:
        problems = duplicate_problems(session, self.staging, [self.staging.c.serial], "serial")
        located = self._located()
        for row in session.execute(select(located).order_by(located.c.line)):
            if row.building_pk is None:
                problems.append(
                    Problem(row.line, "unknown_reference", f"building_id: no building {row.building_code!r}")
                )
            elif row.account is not None and row.account_pk is None:
                problems.append(Problem(row.line, "unknown_reference", f"account: no personal account {row.account!r}"))
            elif row.account is not None and row.account_building != row.building_pk:
                problems.append(
                    Problem(row.line, "conflict", f"account {row.account} is not in building {row.building_code}")
                )
        return problems

    def merge(self, session: Session) -> ImportSummary:
        located = self._located()
        source = select(
            located.c.serial,
            located.c.service,
            located.c.building_pk.label("building_id"),
            located.c.account_pk.label("account_id"),
            located.c.zones,
            located.c.installed_on,
            located.c.verified_until,
            located.c.digits,
            located.c.diameter_mm,
            located.c.seal,
            _scope(located).label("scope"),
        ).subquery()
        always = ("service", "building_id", "account_id", "zones", "installed_on", "verified_until", "scope")
        optional = {"digits": "digits", "diameter_mm": "diameter_mm", "seal": "seal"}
        summary = self.upsert(Meter.__table__, source, ("serial",), always, optional).run(session, "meters")
        if summary.changed_anything:
            # A meter's record (verification, zones, account) is what closed periods were billed
            # with: billing recalculates them for these buildings.
            buildings = sorted(session.scalars(select(source.c.building_id).distinct()))
            emit(session, "metering.meters_changed", {"buildings": buildings})
        return summary


def _scope(located: Any) -> Any:
    return case((located.c.account.is_(None), MeterScope.BUILDING.value), else_=MeterScope.INDIVIDUAL.value)


# --- readings ----------------------------------------------------------------------------------

READINGS_SPEC = TableSpec(
    "readings",
    (
        FileColumn("serial", ("Заводской номер", "Серийный номер", "Номер счетчика", "Номер ПУ")),
        FileColumn("date", ("Дата", "Дата показаний", "Дата снятия")),
        FileColumn("value", ("Показание", "Показания"), required=False),
        FileColumn("value_t1", ("Т1", "Показание Т1", "День"), required=False),
        FileColumn("value_t2", ("Т2", "Показание Т2", "Ночь"), required=False),
        FileColumn("value_t3", ("Т3", "Показание Т3", "Пик"), required=False),
        FileColumn("source", ("Источник",), required=False),
    ),
)
READING_CHUNK = 10_000
MAX_SOURCE_LENGTH = 40


def parse_moment(text: str, zone: ZoneInfo) -> datetime:
    """A date ("2026-03-25", "25.03.2026": local midnight) or a date and time ("2026-03-25 10:30",
    local unless it has an offset)."""
    cleaned = text.strip()
    if len(cleaned) <= 10:
        return local_midnight(parse_date(cleaned), zone)
    try:
        moment = datetime.fromisoformat(cleaned.replace(" ", "T", 1) if "T" not in cleaned else cleaned)
    except ValueError:
        try:
            moment = datetime.strptime(cleaned, "%d.%m.%Y %H:%M")  # noqa: DTZ007 - local, zone added below
        except ValueError as exc:
            raise ValueError(f"not a date or date and time: {text!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def reading_rows(values: Mapping[str, str], zone: ZoneInfo, default_source: str) -> list[IncomingReading]:
    """One row of a readings file -> one reading per zone it gives."""
    try:
        return _row_readings(values, zone, default_source)
    except MalformedReading as exc:  # a year-9999 date, a 13-digit value, an 80-character serial
        raise RowError(str(exc)) from exc


def _row_readings(values: Mapping[str, str], zone: ZoneInfo, default_source: str) -> list[IncomingReading]:
    serial = required(values, "serial")
    taken_at = parsed(values, "date", lambda text: parse_moment(text, zone))
    source = values.get("source") or default_source
    if len(source) > MAX_SOURCE_LENGTH:
        raise RowError(f"source is longer than {MAX_SOURCE_LENGTH} characters: {source[:MAX_SOURCE_LENGTH]}…")
    single = values.get("value", "")
    zoned = [(zone_number, values.get(f"value_t{zone_number}", "")) for zone_number in (1, 2, 3)]
    if single and any(text for _, text in zoned):
        raise RowError("give either value or value_t1, value_t2, value_t3, not both")
    if single:
        return [IncomingReading(taken_at, parsed(values, "value", parse_decimal), 1, serial, source=source)]
    given = [(number, text) for number, text in zoned if text]
    if not given:
        raise RowError("no reading: value (or value_t1...) is empty")
    return [
        IncomingReading(taken_at, parsed(values, f"value_t{number}", parse_decimal), number, serial, source=source)
        for number, _ in given
    ]


@dataclass
class ReadingsImportSummary:
    rows: int = 0
    readings: int = 0
    report: IntakeReport = field(default_factory=IntakeReport)

    def add(self, report: IntakeReport) -> None:
        self.readings += len(report.outcomes)
        self.report.outcomes += report.outcomes

    def describe(self) -> str:
        counts = self.report.counts()
        parts = [f"{counts.get(status, 0)} {status}" for status in ("accepted", "duplicate", "rejected", "quarantined")]
        text = f"readings: {self.rows} rows, {self.readings} readings: " + ", ".join(parts)
        reasons = self.report.rejected_by_reason()
        if reasons:
            text += " (" + ", ".join(f"{reason}: {count}" for reason, count in sorted(reasons.items())) + ")"
        return text


def check_readings_file(reader: TableReader) -> int:
    """First pass: refuse the file whole if any row is malformed. Returns the row count."""
    zone = get_settings().zone
    problems: list[Problem] = []
    rows = 0
    for row in reader:
        rows += 1
        try:
            reading_rows(row.values, zone, "file")
        except RowError as exc:
            problems.append(Problem(row.line, "malformed_row", str(exc)))
    problems = reader.problems + problems
    if problems:
        raise ProblemsFound(problems, what=f"{reader.name} (readings)")
    if rows == 0:
        raise FileRejected(f"{reader.name}: the file has a header but no data rows")
    return rows


def import_readings(session: Session, reader: TableReader, *, source: str = "file") -> ReadingsImportSummary:
    """Second pass: judge and store the readings in chunks (the file was checked first)."""
    zone = get_settings().zone
    summary = ReadingsImportSummary()
    chunk: list[IncomingReading] = []
    for row in reader:
        summary.rows += 1
        chunk += reading_rows(row.values, zone, source)
        if len(chunk) >= READING_CHUNK:
            summary.add(ingest(session, chunk))
            chunk = []
    if chunk:
        summary.add(ingest(session, chunk))
    return summary
