"""Loading a billing period's inputs, a chunk of buildings at a time, with a handful of
set-based queries (never one per account), into the plain inputs of ``billing.rules``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from zhkh.billing.models import AccrualLine, BilledAccount, TemporaryAbsence
from zhkh.billing.rules import (
    ABSENCE_MORE_THAN,
    AccountInput,
    BenefitInput,
    BuildingInput,
    LimitKind,
    MeterZone,
    Price,
    Rates,
)
from zhkh.core.config import get_settings
from zhkh.core.db import one_of
from zhkh.core.periods import Period
from zhkh.housing.models import Account, Building, Ownership, Premise
from zhkh.metering.models import Consumption, Meter, MeterScope
from zhkh.tariffs.catalogue import SOCIAL_AREA, ServiceCode, Unit
from zhkh.tariffs.models import Benefit, Multiplier, Norm, ServiceSupplier, Tariff

HISTORY_PERIODS = 12  # how far back averages and runs of estimates are looked for
ESTIMATED_METHODS = ("average", "norm")


def months(period: Period) -> int:
    return period.year * 12 + period.month


def in_force(model: Any, day: date) -> Any:
    return and_(model.valid_from <= day, or_(model.valid_to.is_(None), model.valid_to >= day))


# --- rates -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Catalogue:
    """Everything of the tariff catalogue in force on the period's first day, for every building;
    a few hundred rows, loaded once per run. ``rates(building)`` resolves one building."""

    suppliers: Mapping[int, Mapping[ServiceCode, int]]
    prices: Mapping[int | None, Mapping[tuple[ServiceCode, int], Price]]
    norms: Mapping[int | None, Mapping[str, Mapping[int, Decimal]]]
    multipliers: Mapping[ServiceCode, Decimal]

    def rates(self, building_id: int) -> Rates:
        prices = {**self.prices.get(None, {}), **self.prices.get(building_id, {})}
        norms_by_service = {**self.norms.get(None, {}), **self.norms.get(building_id, {})}
        norms = {
            ServiceCode(s): values[0] for s, values in norms_by_service.items() if s != SOCIAL_AREA and 0 in values
        }
        return Rates(
            suppliers=self.suppliers.get(building_id, {}),
            prices=prices,
            norms=norms,
            social_area=norms_by_service.get(SOCIAL_AREA, {}),
            multipliers=self.multipliers,
        )


def load_catalogue(session: Session, period: Period) -> Catalogue:
    """What is in force on the period's first day: the latest ``valid_from`` wins (rows are read
    oldest first, later ones overwrite), and a value for one building beats the value for all
    (``Catalogue.rates``)."""
    day = period.first_day
    return Catalogue(_suppliers(session, day), _prices(session, day), _norms(session, day), _multipliers(session, day))


def _suppliers(session: Session, day: date) -> dict[int, dict[ServiceCode, int]]:
    found: dict[int, dict[ServiceCode, int]] = defaultdict(dict)
    rows = session.execute(
        select(ServiceSupplier.building_id, ServiceSupplier.service, ServiceSupplier.supplier_id)
        .where(in_force(ServiceSupplier, day))
        .order_by(ServiceSupplier.valid_from)
    )
    for building_id, service, supplier_id in rows:
        found[building_id][ServiceCode(service)] = supplier_id
    return found


def _prices(session: Session, day: date) -> dict[int | None, dict[tuple[ServiceCode, int], Price]]:
    found: dict[int | None, dict[tuple[ServiceCode, int], Price]] = defaultdict(dict)
    rows = session.execute(
        select(Tariff.building_id, Tariff.service, Tariff.zone, Tariff.price, Tariff.unit)
        .where(in_force(Tariff, day))
        .order_by(Tariff.valid_from)
    )
    for building_id, service, zone, price, unit in rows:
        found[building_id][(ServiceCode(service), zone)] = Price(price, Unit(unit))
    return found


def _norms(session: Session, day: date) -> dict[int | None, dict[str, dict[int, Decimal]]]:
    found: dict[int | None, dict[str, dict[int, Decimal]]] = defaultdict(lambda: defaultdict(dict))
    rows = session.execute(
        select(Norm.building_id, Norm.service, Norm.residents, Norm.value)
        .where(in_force(Norm, day))
        .order_by(Norm.valid_from)
    )
    for building_id, service, residents, value in rows:
        found[building_id][service][residents or 0] = value
    return {building_id: dict(by_service) for building_id, by_service in found.items()}  # picklable


def _multipliers(session: Session, day: date) -> dict[ServiceCode, Decimal]:
    rows = session.execute(
        select(Multiplier.service, Multiplier.value).where(in_force(Multiplier, day)).order_by(Multiplier.valid_from)
    )
    return {ServiceCode(service): value for service, value in rows}


# --- buildings ---------------------------------------------------------------------------------


def building_ids(session: Session, code: str | None = None) -> list[int]:
    statement = select(Building.id).order_by(Building.id)
    if code is not None:
        statement = statement.where(Building.code == code)
    return list(session.scalars(statement))


@dataclass(frozen=True)
class Snapshot:
    """The registry an account is billed with: today's, or the one its period was billed with."""

    building_id: int
    area: Decimal
    residents: int
    owners: int
    meter_possible: bool


def current_registry(session: Session, buildings: Collection[int]) -> dict[int, Snapshot]:
    owners = (
        select(Ownership.premise_id, func.count().label("owners")).group_by(Ownership.premise_id).subquery("owners")
    )
    rows = session.connection().execute(
        select(
            Account.id,
            Premise.building_id,
            Premise.area_m2,
            Account.residents,
            func.coalesce(owners.c.owners, 0),
            Premise.meter_possible,
        )
        .join(Premise, Premise.id == Account.premise_id)
        .outerjoin(owners, owners.c.premise_id == Premise.id)
        .where(one_of(Premise.building_id, buildings, session))
        .order_by(Account.id)
    )
    return {row[0]: Snapshot(*row[1:]) for row in rows}


def billed_registry(session: Session, period: Period, buildings: Collection[int]) -> dict[int, Snapshot]:
    rows = session.connection().execute(
        select(
            BilledAccount.account_id,
            BilledAccount.building_id,
            BilledAccount.area,
            BilledAccount.residents,
            BilledAccount.owners,
            BilledAccount.meter_possible,
        )
        .where(BilledAccount.period == period.first_day, one_of(BilledAccount.building_id, buildings, session))
        .order_by(BilledAccount.account_id)
    )
    return {row[0]: Snapshot(*row[1:]) for row in rows}


def load_buildings(
    session: Session,
    period: Period,
    buildings: Collection[int],
    registry: Mapping[int, Snapshot],
    catalogue: Catalogue,
) -> list[BuildingInput]:
    """The inputs of ``bill_building`` for each of ``buildings`` (those with accounts)."""
    meters = _meter_zones(session, period, buildings)
    benefits = _benefits(session, period, buildings)
    absences = _absent_person_days(session, period, buildings)
    building_volumes = _building_meter_volumes(session, period, buildings)
    areas = {
        row.id: (row.total_area_m2, row.common_area_m2)
        for row in session.execute(
            select(Building.id, Building.total_area_m2, Building.common_area_m2).where(
                one_of(Building.id, buildings, session)
            )
        )
    }
    by_building: dict[int, list[AccountInput]] = defaultdict(list)
    for account_id, snapshot in registry.items():
        by_building[snapshot.building_id].append(
            AccountInput(
                account_id=account_id,
                area=snapshot.area,
                residents=snapshot.residents,
                owners=snapshot.owners,
                meter_possible=snapshot.meter_possible,
                absent_person_days=absences.get(account_id, 0),
                meters=tuple(meters.get(account_id, ())),
                benefits=tuple(benefits.get(account_id, ())),
            )
        )
    days = (period.last_day - period.first_day).days + 1
    result = []
    for building_id in sorted(by_building):
        accounts = by_building[building_id]
        total_area, common_area = areas[building_id]
        result.append(
            BuildingInput(
                building_id=building_id,
                total_area=total_area or sum((a.area for a in accounts), Decimal(0)),
                common_area=common_area,
                days_in_period=days,
                rates=catalogue.rates(building_id),
                accounts=accounts,
                building_meters=building_volumes.get(building_id, {}),
            )
        )
    return result


def _meter_zones(session: Session, period: Period, buildings: Collection[int]) -> dict[int, list[MeterZone]]:
    """Every live individual meter zone of the accounts, with its consumption this period and
    the history the estimates need."""
    first = period.first_day
    oldest = Period.of(first - timedelta(days=31 * HISTORY_PERIODS)).first_day
    live = (
        select(Meter.id, Meter.account_id, Meter.serial, Meter.service, Meter.zones, Meter.verified_until)
        .where(
            Meter.scope == MeterScope.INDIVIDUAL,
            one_of(Meter.building_id, buildings, session),
            Meter.installed_on <= period.last_day,
            or_(Meter.archived_on.is_(None), Meter.archived_on >= first),
        )
        .subquery("live")
    )
    connection = session.connection()  # Core rows: a million of them cost half as much as ORM rows
    meters = list(connection.execute(select(live).order_by(live.c.id)))
    consumption: dict[tuple[int, int], dict[date, Any]] = defaultdict(dict)
    # On PostgreSQL by the chunk's meter ids (an index probe each): a join the planner turns into
    # a scan of every meter's history for every chunk. SQLite binds each id separately, and its
    # planner probes the index for the join anyway.
    if connection.dialect.name == "postgresql":
        of_chunk = one_of(Consumption.meter_id, [meter.id for meter in meters], session)
    else:
        of_chunk = Consumption.meter_id.in_(select(live.c.id))
    for row in connection.execute(
        select(
            Consumption.meter_id,
            Consumption.zone,
            Consumption.period,
            Consumption.provenance,
            Consumption.volume,
            Consumption.start_value,
            Consumption.end_value,
            Consumption.start_at,
        ).where(
            of_chunk,
            Consumption.period >= oldest,
            Consumption.period <= first,
        )
    ):
        consumption[(row.meter_id, row.zone)][row.period] = row
    estimates = _billed_estimates(session, period, oldest, buildings)
    found: dict[int, list[MeterZone]] = defaultdict(list)
    for meter in meters:
        for zone in range(1, meter.zones + 1):
            found[meter.account_id].append(
                _meter_zone(period, meter, zone, consumption.get((meter.id, zone), {}), estimates)
            )
    return found


def _meter_zone(
    period: Period, meter: Any, zone: int, rows: Mapping[date, Any], estimates: Mapping[tuple[int, int, date], Decimal]
) -> MeterZone:
    current = rows.get(period.first_day)
    past = [rows.get(day) for day in _preceding_days(period)] if rows else []  # newest first
    streak = 0
    for row in past:
        if row is None or row.provenance != "missing":
            break
        streak += 1
    history = tuple(
        row.volume for row in past if row is not None and row.provenance != "missing" and row.volume is not None
    )
    expired = meter.verified_until is not None and meter.verified_until < period.first_day
    out_of_order = months(period) - months(Period.of(meter.verified_until)) if expired else 0
    line_zone = zone if meter.zones > 1 else 0
    spans = (
        current is not None
        and current.start_at is not None
        and streak > 0
        and current.provenance == "reading"
        and current.start_at < _start_of(period.previous())
    )
    billed = Decimal(0)
    if spans:
        for step in _preceding(period)[:streak]:
            billed += estimates.get((meter.id, line_zone, step.first_day), Decimal(0))
    return MeterZone(
        meter_id=meter.id,
        serial=meter.serial,
        service=ServiceCode(meter.service),
        zone=zone,
        zones=meter.zones,
        provenance=current.provenance if current is not None else None,
        volume=current.volume if current is not None else None,
        start=current.start_value if current is not None else None,
        end=current.end_value if current is not None else None,
        history=history,
        missing_streak=streak,
        out_of_order_periods=out_of_order,
        spans_missing=spans,
        billed_estimates=billed,
    )


@lru_cache(maxsize=64)
def _preceding(period: Period) -> tuple[Period, ...]:
    """The periods before ``period``, newest first, as far back as the history goes."""
    steps = [period.previous()]
    while len(steps) < HISTORY_PERIODS:
        steps.append(steps[-1].previous())
    return tuple(steps)


@lru_cache(maxsize=64)
def _preceding_days(period: Period) -> tuple[date, ...]:
    return tuple(step.first_day for step in _preceding(period))


@lru_cache(maxsize=64)
def _start_of(period: Period) -> datetime:
    return period.start(get_settings().zone)


def _billed_estimates(
    session: Session, period: Period, oldest: date, buildings: Collection[int]
) -> dict[tuple[int, int, date], Decimal]:
    """Volumes billed as estimates per meter, zone and period (with their recalculations), to be
    deducted when a reading finally covers those periods."""
    totals: dict[tuple[int, int, date], Decimal] = defaultdict(Decimal)
    rows = session.connection().execute(
        select(AccrualLine.meter_id, AccrualLine.zone, AccrualLine.period, AccrualLine.quantity)
        .join(Meter, Meter.id == AccrualLine.meter_id)
        .where(
            one_of(Meter.building_id, buildings, session),
            AccrualLine.period >= oldest,
            AccrualLine.period < period.first_day,
            AccrualLine.kind == "charge",
            AccrualLine.method.in_(ESTIMATED_METHODS),
        )
    )
    for meter_id, zone, billed_period, quantity in rows:
        if meter_id is not None:
            totals[(meter_id, zone, billed_period)] += quantity
    return totals


def _building_meter_volumes(
    session: Session, period: Period, buildings: Collection[int]
) -> dict[int, dict[ServiceCode, Decimal | None]]:
    """Σ volume of the building meters per resource; None if one of them has no volume."""
    found: dict[int, dict[ServiceCode, Decimal | None]] = defaultdict(dict)
    connection = session.connection()
    meters = connection.execute(
        select(Meter.id, Meter.building_id, Meter.service).where(
            Meter.scope == MeterScope.BUILDING,
            one_of(Meter.building_id, buildings, session),
            Meter.installed_on <= period.last_day,
            or_(Meter.archived_on.is_(None), Meter.archived_on >= period.first_day),
        )
    ).all()
    # The volumes by the meters' ids, not by a join: the period being billed is the newest, so
    # the statistics rarely know its rows yet, and for a join estimated at one row PostgreSQL
    # scanned the period's whole consumption once per building meter (3 s for 100 buildings).
    volumes: dict[int, list[Decimal | None]] = defaultdict(list)
    if meters:
        for meter_id, volume in connection.execute(
            select(Consumption.meter_id, Consumption.volume).where(
                one_of(Consumption.meter_id, [meter.id for meter in meters], session),
                Consumption.period == period.first_day,
            )
        ):
            volumes[meter_id].append(volume)
    rows = (
        (building_id, service, volume)
        for meter_id, building_id, service in meters
        for volume in volumes.get(meter_id, [None])
    )
    for building_id, service, volume in rows:
        key = ServiceCode(service)
        known = found[building_id]
        if volume is None or (key in known and known[key] is None):
            known[key] = None
        else:
            known[key] = (known.get(key) or Decimal(0)) + volume
    return found


def _benefits(session: Session, period: Period, buildings: Collection[int]) -> dict[int, list[BenefitInput]]:
    found: dict[int, list[BenefitInput]] = defaultdict(list)
    rows = session.execute(
        select(Benefit)
        .join(Account, Account.id == Benefit.account_id)
        .join(Premise, Premise.id == Account.premise_id)
        .where(one_of(Premise.building_id, buildings, session), in_force(Benefit, period.first_day))
        .order_by(Benefit.id)
    )
    for (benefit,) in rows:
        found[benefit.account_id].append(
            BenefitInput(
                benefit_id=benefit.id,
                service=ServiceCode(benefit.service),
                percent=benefit.percent,
                limit=LimitKind(benefit.limit),
                persons=benefit.persons,
                granted_by_id=benefit.granted_by_id,
            )
        )
    return found


def absent_days_in(departed: date, returned: date, period: Period) -> int:
    """Full days away within ``period``: the days strictly between departure and return, when
    there are more than 5 of them in all (п.90)."""
    first_away, last_away = departed + timedelta(days=1), returned - timedelta(days=1)
    if (last_away - first_away).days + 1 <= ABSENCE_MORE_THAN:
        return 0
    start, end = max(first_away, period.first_day), min(last_away, period.last_day)
    return max((end - start).days + 1, 0)


def _absent_person_days(session: Session, period: Period, buildings: Collection[int]) -> dict[int, int]:
    found: dict[int, int] = defaultdict(int)
    rows = session.connection().execute(
        select(
            TemporaryAbsence.account_id,
            TemporaryAbsence.departed_on,
            TemporaryAbsence.returned_on,
            TemporaryAbsence.persons,
        )
        .join(Account, Account.id == TemporaryAbsence.account_id)
        .join(Premise, Premise.id == Account.premise_id)
        .where(
            one_of(Premise.building_id, buildings, session),
            TemporaryAbsence.departed_on < period.last_day,
            TemporaryAbsence.returned_on > period.first_day,
        )
    )
    for account_id, departed, returned, persons in rows:
        found[account_id] += persons * absent_days_in(departed, returned, period)
    return found


def chunks(items: Iterable[int], size: int) -> Iterable[list[int]]:
    chunk: list[int] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
