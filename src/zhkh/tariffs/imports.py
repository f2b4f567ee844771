"""Imports of the tariff catalogue (docs/formats.md): suppliers of services, tariffs, norms,
multipliers and benefits. All or nothing, like every registry import; each merges by its natural
key (what the row is about and the day it takes effect), so a new price from July is a new row
and re-importing a file changes nothing."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, ClassVar, cast

from sqlalchemy import Column, Date, SmallInteger, String, Table, and_, select
from sqlalchemy.orm import Session

from zhkh.core.errors import Problem
from zhkh.core.importing import Importer, ImportSummary, RowError, Upsert, duplicate_problems, parsed, required
from zhkh.core.outbox import emit
from zhkh.core.requisites import inn_problem
from zhkh.core.tabular import Column as FileColumn
from zhkh.core.tabular import TableSpec
from zhkh.core.types import ExactDecimal
from zhkh.core.values import parse_date, parse_decimal, parse_int
from zhkh.housing.models import Account, Building, Organisation, OrganisationRole
from zhkh.tariffs.catalogue import (
    NORM_UNITS,
    RESOURCE_UNIT,
    SOCIAL_AREA,
    TARIFF_UNITS,
    ServiceCode,
    parse_norm_unit,
    parse_service,
    parse_unit,
)
from zhkh.tariffs.models import Benefit, BenefitLimit, Multiplier, Norm, ServiceSupplier, Tariff

_BUILDING = FileColumn("building_id", ("Код дома", "ID дома", "Идентификатор дома", "Дом"))
_SERVICE = FileColumn("service", ("Услуга", "Код услуги"))
_VALID_FROM = FileColumn("valid_from", ("Действует с", "Дата начала", "С"))
_VALID_TO = FileColumn("valid_to", ("Действует по", "Дата окончания", "По"))


CHANGED = "tariffs.changed"


def _announced(session: Session, summary: ImportSummary, payload: dict[str, Any]) -> ImportSummary:
    """Tell billing that the catalogue changed (``tariffs.changed``): a closed period billed with
    the old values gets recalculated on the next run. Nothing changed, nothing said."""
    if summary.changed_anything:
        emit(session, CHANGED, {"table": summary.what, **payload})
    return summary


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


def _validity(values: Mapping[str, str]) -> dict[str, date | None]:
    valid_from = parsed(values, "valid_from", parse_date)
    valid_to = parsed(values, "valid_to", parse_date, optional=True)
    if valid_to is not None and valid_to < valid_from:
        raise RowError(f"{valid_to} is before valid_from {valid_from}", "valid_to")
    return {"valid_from": valid_from, "valid_to": valid_to}


def _service(values: Mapping[str, str], allowed: Any = None) -> ServiceCode:
    service = parsed(values, "service", parse_service)
    if allowed is not None and service not in allowed:
        raise RowError(f"{service} has no {allowed.describe}", "service")
    return service  # type: ignore[no-any-return]


def _inn(values: Mapping[str, str], column: str) -> str:
    inn = required(values, column)
    problem = inn_problem(inn)
    if problem:
        raise RowError(problem, column)
    return inn


def _unknown(session: Session, query: Any, message: str) -> list[Problem]:
    """A problem for every staged row ``query`` selects (columns: line, then the values named in
    ``message``)."""
    return [Problem(row.line, "unknown_reference", message.format(*row[1:])) for row in session.execute(query)]


class _BuildingScoped(Importer):
    """Rows that name a building (empty for a tariff or norm of every building)."""

    building_required: ClassVar[bool] = True

    def _building_problems(self, session: Session) -> list[Problem]:
        stage = self.staging
        return _unknown(
            session,
            select(stage.c.line, stage.c.building_code)
            .select_from(stage.outerjoin(Building, Building.code == stage.c.building_code))
            .where(stage.c.building_code.is_not(None), Building.id.is_(None))
            .order_by(stage.c.line),
            "building_id: no building {!r}; import buildings first",
        )

    def _with_building(self, *columns: Any) -> Any:
        stage = self.staging
        return (
            select(*columns, Building.id.label("building_id"))
            .select_from(stage.outerjoin(Building, Building.code == stage.c.building_code))
            .subquery()
        )


class SuppliersImport(_BuildingScoped):
    """Who supplies each service to each building: ``building_id,service,supplier_inn,valid_from,valid_to``."""

    file_names: ClassVar[Mapping[str, str]] = {"building_code": "building_id"}
    spec = TableSpec(
        "suppliers",
        (
            _BUILDING,
            _SERVICE,
            FileColumn("supplier_inn", ("ИНН поставщика", "ИНН РСО", "ИНН исполнителя")),
            _VALID_FROM,
            _VALID_TO,
        ),
    )

    def staging_columns(self) -> list[Column[Any]]:
        return [
            Column("building_code", String(64)),
            Column("service", String(32)),
            Column("supplier_inn", String(12)),
            Column("valid_from", Date),
            Column("valid_to", Date),
        ]

    def parse(self, values: Mapping[str, str]) -> dict[str, Any]:
        return {
            "building_code": required(values, "building_id"),
            "service": _service(values).value,
            "supplier_inn": _inn(values, "supplier_inn"),
            **_validity(values),
        }

    def check(self, session: Session) -> list[Problem]:
        stage = self.staging
        key = [stage.c.building_code, stage.c.service, stage.c.valid_from]
        problems = duplicate_problems(session, stage, key, "building / service / valid_from")
        problems += self._building_problems(session)
        problems += _unknown(
            session,
            select(stage.c.line, stage.c.supplier_inn)
            .select_from(stage.outerjoin(Organisation, Organisation.inn == stage.c.supplier_inn))
            .where(Organisation.id.is_(None))
            .order_by(stage.c.line),
            "supplier_inn: no organisation with INN {}; import organisations first",
        )
        return sorted(problems, key=lambda problem: problem.row or 0)

    def merge(self, session: Session) -> ImportSummary:
        stage = self.staging
        source = (
            select(
                Building.id.label("building_id"),
                stage.c.service,
                Organisation.id.label("supplier_id"),
                stage.c.valid_from,
                stage.c.valid_to,
            )
            .select_from(
                stage.join(Building, Building.code == stage.c.building_code).join(
                    Organisation, Organisation.inn == stage.c.supplier_inn
                )
            )
            .subquery()
        )
        key = ("building_id", "service", "valid_from")
        summary = Upsert(_table(ServiceSupplier), source, key, ("supplier_id", "valid_to")).run(session, "suppliers")
        return _announced(session, summary, {"buildings": None})


class _Allowed(frozenset[ServiceCode]):
    describe: str

    def __new__(cls, members: Any, describe: str) -> _Allowed:
        instance = super().__new__(cls, members)
        instance.describe = describe
        return instance


class TariffsImport(_BuildingScoped):
    """Prices: ``service,zone,price,unit,valid_from,valid_to,building_id``."""

    file_names: ClassVar[Mapping[str, str]] = {"building_code": "building_id"}
    spec = TableSpec(
        "tariffs",
        (
            _SERVICE,
            FileColumn("zone", ("Зона", "Тарифная зона")),
            FileColumn("price", ("Тариф", "Цена")),
            FileColumn("unit", ("Единица", "Ед. изм.", "Единица измерения")),
            _VALID_FROM,
            _VALID_TO,
            FileColumn("building_id", _BUILDING.aliases),
        ),
    )

    def staging_columns(self) -> list[Column[Any]]:
        return [
            Column("service", String(32)),
            Column("zone", SmallInteger),
            Column("price", ExactDecimal),
            Column("unit", String(16)),
            Column("valid_from", Date),
            Column("valid_to", Date),
            Column("building_code", String(64)),
        ]

    def parse(self, values: Mapping[str, str]) -> dict[str, Any]:
        service = _service(values)
        zone = _zone(values.get("zone", ""), service)
        price = parsed(values, "price", parse_decimal)
        if price < 0:
            raise RowError(f"{price} is negative", "price")
        unit = parsed(values, "unit", parse_unit)
        if unit not in TARIFF_UNITS[service]:
            expected = " or ".join(TARIFF_UNITS[service])
            raise RowError(f"{service} is priced per {expected}, not per {unit}", "unit")
        return {
            "service": service.value,
            "zone": zone,
            "price": price,
            "unit": unit.value,
            **_validity(values),
            "building_code": values.get("building_id") or None,
        }

    def check(self, session: Session) -> list[Problem]:
        stage = self.staging
        key = [stage.c.service, stage.c.zone, stage.c.building_code, stage.c.valid_from]
        problems = duplicate_problems(session, stage, key, "service / zone / building / valid_from")
        return sorted(problems + self._building_problems(session), key=lambda problem: problem.row or 0)

    def merge(self, session: Session) -> ImportSummary:
        stage = self.staging
        source = self._with_building(
            stage.c.service, stage.c.zone, stage.c.price, stage.c.unit, stage.c.valid_from, stage.c.valid_to
        )
        key = ("service", "zone", "building_id", "valid_from")
        upsert = Upsert(_table(Tariff), source, key, ("price", "unit", "valid_to"), nullable_key=True)
        return _announced(session, upsert.run(session, "tariffs"), {"buildings": None})


def _zone(text: str, service: ServiceCode) -> int:
    """Empty (or 0) is a single-rate price; 1-3 (or t1-t3, T1-T3) a zone of electricity."""
    cleaned = text.strip().lower().removeprefix("t").removeprefix("т")
    if not cleaned:
        return 0
    try:
        zone = parse_int(cleaned)
    except ValueError as exc:
        raise RowError(f"not a zone: {text!r}; empty for single-rate, or 1 to 3", "zone") from exc
    if zone and service is not ServiceCode.ELECTRICITY:
        raise RowError(f"zone {zone}: only electricity has zones; leave it empty for {service}", "zone")
    if not 0 <= zone <= 3:
        raise RowError(f"zone {zone}: empty for single-rate, or 1 to 3", "zone")
    return zone


class NormsImport(_BuildingScoped):
    """Consumption norms: ``service,value,unit,valid_from,valid_to,building_id`` (+ ``residents``
    for the social norm of area by household size)."""

    file_names: ClassVar[Mapping[str, str]] = {"building_code": "building_id"}
    spec = TableSpec(
        "norms",
        (
            _SERVICE,
            FileColumn("value", ("Норматив", "Значение")),
            FileColumn("unit", ("Единица", "Ед. изм.", "Единица измерения")),
            _VALID_FROM,
            _VALID_TO,
            FileColumn("building_id", _BUILDING.aliases),
            FileColumn("residents", ("Проживающих", "Состав семьи"), required=False),
        ),
    )

    def staging_columns(self) -> list[Column[Any]]:
        return [
            Column("service", String(32)),
            Column("value", ExactDecimal),
            Column("unit", String(16)),
            Column("valid_from", Date),
            Column("valid_to", Date),
            Column("building_code", String(64)),
            Column("residents", SmallInteger),
        ]

    def parse(self, values: Mapping[str, str]) -> dict[str, Any]:
        text = required(values, "service").strip().lower()
        service = SOCIAL_AREA if text in (SOCIAL_AREA, "социальная норма", "соцнорма") else _service(values).value
        expected = NORM_UNITS.get(service)
        if expected is None:
            raise RowError(f"{service} has no consumption norm; it is billed by its tariff", "service")
        value = parsed(values, "value", parse_decimal)
        if value < 0:
            raise RowError(f"{value} is negative", "value")
        unit = parsed(values, "unit", parse_norm_unit)
        if unit != expected:
            raise RowError(f"the norm of {service} is in {expected[0]}/{expected[1]}, not {unit[0]}/{unit[1]}", "unit")
        residents = parsed(values, "residents", parse_int, optional=True)
        if residents is not None and (service != SOCIAL_AREA or residents < 1):
            raise RowError("only the social norm of area is set per household size (1 or more)", "residents")
        return {
            "service": service,
            "value": value,
            "unit": f"{unit[0]}/{unit[1]}",
            **_validity(values),
            "building_code": values.get("building_id") or None,
            "residents": residents,
        }

    def check(self, session: Session) -> list[Problem]:
        stage = self.staging
        key = [stage.c.service, stage.c.building_code, stage.c.residents, stage.c.valid_from]
        problems = duplicate_problems(session, stage, key, "service / building / residents / valid_from")
        return sorted(problems + self._building_problems(session), key=lambda problem: problem.row or 0)

    def merge(self, session: Session) -> ImportSummary:
        stage = self.staging
        source = self._with_building(
            stage.c.service, stage.c.value, stage.c.unit, stage.c.valid_from, stage.c.valid_to, stage.c.residents
        )
        key = ("service", "building_id", "residents", "valid_from")
        upsert = Upsert(_table(Norm), source, key, ("value", "unit", "valid_to"), nullable_key=True)
        return _announced(session, upsert.run(session, "norms"), {"buildings": None})


# Services whose norm may be multiplied (ПП 354 формула 4(1)); not wastewater or gas.
MULTIPLIED = _Allowed(
    (ServiceCode.COLD_WATER, ServiceCode.HOT_WATER, ServiceCode.ELECTRICITY, ServiceCode.HEATING),
    "multiplier (ПП 354: only cold and hot water, electricity and heating)",
)


class MultipliersImport(Importer):
    """Multipliers: ``service,value,valid_from,valid_to``. The federal ones come with the schema."""

    spec = TableSpec(
        "multipliers",
        (_SERVICE, FileColumn("value", ("Коэффициент", "Повышающий коэффициент")), _VALID_FROM, _VALID_TO),
    )

    def staging_columns(self) -> list[Column[Any]]:
        return [
            Column("service", String(32)),
            Column("value", ExactDecimal),
            Column("valid_from", Date),
            Column("valid_to", Date),
        ]

    def parse(self, values: Mapping[str, str]) -> dict[str, Any]:
        service = _service(values, MULTIPLIED)
        value = parsed(values, "value", parse_decimal)
        if value < 1:
            raise RowError(f"{value} is below 1; a multiplier raises the norm", "value")
        return {"service": service.value, "value": value, **_validity(values)}

    def check(self, session: Session) -> list[Problem]:
        stage = self.staging
        return duplicate_problems(session, stage, [stage.c.service, stage.c.valid_from], "service / valid_from")

    def merge(self, session: Session) -> ImportSummary:
        source = select(self.staging).subquery()
        upsert = Upsert(_table(Multiplier), source, ("service", "valid_from"), ("value", "valid_to"))
        return _announced(session, upsert.run(session, "multipliers"), {"buildings": None})


# Which services each limit can apply to.
LIMITED_BY = {
    BenefitLimit.SOCIAL_NORM: _Allowed(
        (ServiceCode.MAINTENANCE, ServiceCode.CAPITAL_REPAIR, ServiceCode.HEATING, ServiceCode.WASTE),
        "area to limit by the social norm (maintenance, capital_repair, heating, waste)",
    ),
    BenefitLimit.CONSUMPTION_NORM: _Allowed(
        tuple(service for service in RESOURCE_UNIT if service is not ServiceCode.HEATING),
        "consumption norm per person to limit by",
    ),
}


class BenefitsImport(Importer):
    """Benefits: ``account,service,percent,limit,valid_from,valid_to,granted_by_inn`` (+ ``persons``)."""

    file_names: ClassVar[Mapping[str, str]] = {"limit_kind": "limit"}
    spec = TableSpec(
        "benefits",
        (
            FileColumn("account", ("Лицевой счет", "ЛС")),
            _SERVICE,
            FileColumn("percent", ("Процент", "Размер льготы, %")),
            FileColumn("limit", ("Ограничение", "Предел")),
            _VALID_FROM,
            _VALID_TO,
            FileColumn("granted_by_inn", ("ИНН ОСЗН", "ИНН органа соцзащиты")),
            FileColumn("persons", ("Льготников", "Число льготников"), required=False),
        ),
    )

    def staging_columns(self) -> list[Column[Any]]:
        return [
            Column("account", String(32)),
            Column("service", String(32)),
            Column("percent", ExactDecimal),
            Column("limit_kind", String(32)),
            Column("valid_from", Date),
            Column("valid_to", Date),
            Column("granted_by_inn", String(12)),
            Column("persons", SmallInteger),
        ]

    def parse(self, values: Mapping[str, str]) -> dict[str, Any]:
        try:
            limit = BenefitLimit(required(values, "limit").strip().lower())
        except ValueError as exc:
            raise RowError(f"{values['limit']!r}; expected social_norm or consumption_norm", "limit") from exc
        service = _service(values, LIMITED_BY[limit])
        percent = parsed(values, "percent", parse_decimal)
        if not 0 < percent <= 100:
            raise RowError(f"{percent} is not a percentage above 0 and at most 100", "percent")
        persons = parsed(values, "persons", parse_int, optional=True)
        if persons is not None and persons < 1:
            raise RowError(f"{persons}: a benefit covers at least one person", "persons")
        return {
            "account": required(values, "account"),
            "service": service.value,
            "percent": percent,
            "limit_kind": limit.value,
            **_validity(values),
            "granted_by_inn": _inn(values, "granted_by_inn"),
            "persons": persons,
        }

    def check(self, session: Session) -> list[Problem]:
        stage = self.staging
        key = [stage.c.account, stage.c.service, stage.c.granted_by_inn, stage.c.valid_from]
        problems = duplicate_problems(session, stage, key, "account / service / granted_by / valid_from")
        problems += _unknown(
            session,
            select(stage.c.line, stage.c.account)
            .select_from(stage.outerjoin(Account, Account.number == stage.c.account))
            .where(Account.id.is_(None))
            .order_by(stage.c.line),
            "account: no personal account {!r}",
        )
        social_protection = and_(
            Organisation.inn == stage.c.granted_by_inn, Organisation.role == OrganisationRole.SOCIAL_PROTECTION
        )
        problems += _unknown(
            session,
            select(stage.c.line, stage.c.granted_by_inn)
            .select_from(stage.outerjoin(Organisation, social_protection))
            .where(Organisation.id.is_(None))
            .order_by(stage.c.line),
            "granted_by_inn: no social protection organisation with INN {}; import it with role social_protection",
        )
        return sorted(problems, key=lambda problem: problem.row or 0)

    def merge(self, session: Session) -> ImportSummary:
        stage = self.staging
        source = (
            select(
                Account.id.label("account_id"),
                stage.c.service,
                stage.c.percent,
                stage.c.limit_kind.label("limit"),
                stage.c.persons,
                stage.c.valid_from,
                stage.c.valid_to,
                Organisation.id.label("granted_by_id"),
            )
            .select_from(
                stage.join(Account, Account.number == stage.c.account).join(
                    Organisation, Organisation.inn == stage.c.granted_by_inn
                )
            )
            .subquery()
        )
        key = ("account_id", "service", "granted_by_id", "valid_from")
        upsert = Upsert(_table(Benefit), source, key, ("percent", "limit", "persons", "valid_to"))
        accounts = sorted(session.scalars(select(source.c.account_id).distinct()))
        return _announced(session, upsert.run(session, "benefits"), {"accounts": accounts})


__all__ = [
    "BenefitsImport",
    "MultipliersImport",
    "NormsImport",
    "SuppliersImport",
    "TariffsImport",
]
