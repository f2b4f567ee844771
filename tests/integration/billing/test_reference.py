"""The production engine against the plain reference (tests/billing_reference.py) on random
towns: every line of every period the same, compared line by line, not by totals."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tests.billing_reference import reference_lines
from zhkh.billing.models import AccrualLine, TemporaryAbsence
from zhkh.billing.service import close_period, run_billing
from zhkh.core.periods import Period
from zhkh.housing.models import Account, Building, Organisation, OrganisationRole, Ownership, Premise, PremiseKind
from zhkh.metering.models import Meter, MeterScope, Reading, ReadingStatus
from zhkh.tariffs.models import Benefit, Norm, ServiceSupplier, Tariff

# Seven periods, so that averages (three periods of history at least), three estimated periods
# in a row and the norm after them all happen; readings from the month before the first.
PERIODS = [Period(2025, 10), Period(2025, 11), Period(2025, 12), *(Period(2026, month) for month in (1, 2, 3, 4))]
READ_MONTHS = [Period(2025, 9), *PERIODS]
MSK = timedelta(hours=3)

money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("300"), places=2)
fine_price = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("50"), places=4)
area = st.decimals(min_value=Decimal("12"), max_value=Decimal("140"), places=1)
step = st.decimals(min_value=Decimal("0"), max_value=Decimal("25"), places=3)

meter_spec = st.fixed_dictionaries(
    {
        "service": st.sampled_from(["cold_water", "hot_water", "electricity"]),
        "zones": st.integers(1, 2),
        "expires": st.sampled_from([None, None, date(2026, 1, 10), date(2026, 2, 28), date(2025, 9, 1)]),
        "read": st.lists(st.booleans(), min_size=len(READ_MONTHS), max_size=len(READ_MONTHS)),
        "steps": st.lists(step, min_size=len(READ_MONTHS), max_size=len(READ_MONTHS)),
    }
)
account_spec = st.fixed_dictionaries(
    {
        "area": area,
        "residents": st.integers(0, 4),
        "owners": st.integers(1, 2),
        "meter_possible": st.booleans(),
        "meters": st.lists(meter_spec, max_size=3),
        "benefit": st.one_of(
            st.none(),
            st.tuples(st.sampled_from(["maintenance", "cold_water"]), st.integers(10, 100), st.sampled_from([None, 1])),
        ),
        "absence": st.one_of(st.none(), st.tuples(st.integers(0, 200), st.integers(2, 40), st.integers(1, 2))),
    }
)
building_spec = st.fixed_dictionaries(
    {
        "total_area": st.booleans(),
        "heat_meter": st.booleans(),
        "cold_meter": st.booleans(),
        "own_maintenance": st.one_of(st.none(), money),
        "accounts": st.lists(account_spec, min_size=1, max_size=4),
    }
)
town_spec = st.fixed_dictionaries(
    {
        "buildings": st.lists(building_spec, min_size=1, max_size=2),
        "prices": st.fixed_dictionaries(
            {
                "maintenance": money,
                "cold_water": money,
                "hot_water": money,
                "wastewater": money,
                "electricity": fine_price,
                "electricity_1": fine_price,
                "electricity_2": fine_price,
                "heating": money,
                "waste": money,
                "common_cold_water": money,
            }
        ),
        "waste_per": st.sampled_from(["person", "m2"]),
        "norms": st.fixed_dictionaries(
            {
                "cold_water": st.decimals(min_value=Decimal("1"), max_value=Decimal("9"), places=3),
                "heating": st.decimals(min_value=Decimal("0.01"), max_value=Decimal("0.05"), places=4),
                "common_cold_water": st.decimals(min_value=Decimal("0.01"), max_value=Decimal("0.2"), places=4),
            }
        ),
    }
)
UNIT = {
    "maintenance": "m2",
    "cold_water": "m3",
    "hot_water": "m3",
    "wastewater": "m3",
    "electricity": "kWh",
    "heating": "Gcal",
    "common_cold_water": "m3",
}
OTHER_NORMS = {"hot_water": "4.745", "wastewater": "11.68", "electricity": "110", "social_area": "18"}
NORM_UNIT = {
    "cold_water": "m3/person",
    "hot_water": "m3/person",
    "wastewater": "m3/person",
    "electricity": "kWh/person",
    "heating": "Gcal/m2",
    "common_cold_water": "m3/m2",
    "social_area": "m2/person",
}


def at(period: Period, day: int, hour: int = 12) -> datetime:
    return datetime(period.year, period.month, day, hour, tzinfo=UTC) - MSK


class TownBuilder:
    def __init__(self, session: Session) -> None:
        self.s = session
        self.serial = 0
        self.manager = self.organisation("7700000001", OrganisationRole.MANAGER)
        self.supplier = self.organisation("7700000002", OrganisationRole.SUPPLIER)
        self.social = self.organisation("7700000003", OrganisationRole.SOCIAL_PROTECTION)

    def organisation(self, inn: str, role: OrganisationRole) -> Organisation:
        organisation = Organisation(inn=inn, kpp="770001001", name=f"org {inn}", role=role)
        self.s.add(organisation)
        self.s.flush()
        return organisation

    def add(self, row: Any) -> Any:
        self.s.add(row)
        self.s.flush()
        return row

    def readings(self, meter: Meter, zone: int, spec: dict[str, Any], day: int = 20, hour: int = 12) -> None:
        value = Decimal(100 * zone)
        self.add(
            Reading(
                meter_id=meter.id,
                zone=zone,
                taken_at=at(Period(2025, 8), 20),
                value=value,
                status=ReadingStatus.ACCEPTED,
                source="test",
            )
        )
        for month, (read, rise) in enumerate(zip(spec["read"], spec["steps"], strict=True)):
            value += rise
            if read:
                period = READ_MONTHS[month]
                when = at(period, min(day, period.last_day.day), hour)
                self.add(
                    Reading(
                        meter_id=meter.id,
                        zone=zone,
                        taken_at=when,
                        value=value,
                        status=ReadingStatus.ACCEPTED,
                        source="test",
                    )
                )

    def meter(
        self, building: Building, account: Account | None, service: str, zones: int, expires: date | None
    ) -> Meter:
        self.serial += 1
        meter: Meter = self.add(
            Meter(
                serial=f"M-{self.serial}",
                service=service,
                scope=MeterScope.INDIVIDUAL if account else MeterScope.BUILDING,
                building_id=building.id,
                account_id=account.id if account else None,
                zones=zones,
                digits=7,
                installed_on=date(2025, 1, 1),
                verified_until=expires,
            )
        )
        return meter

    def catalogue(self, spec: dict[str, Any]) -> None:
        for service, price in spec["prices"].items():
            zone = service.rpartition("_")[2]
            if service.startswith("electricity_"):
                self.add(
                    Tariff(service="electricity", zone=int(zone), price=price, unit="kWh", valid_from=date(2025, 1, 1))
                )
            elif service == "waste":
                self.add(
                    Tariff(service="waste", zone=0, price=price, unit=spec["waste_per"], valid_from=date(2025, 1, 1))
                )
            else:
                self.add(Tariff(service=service, zone=0, price=price, unit=UNIT[service], valid_from=date(2025, 1, 1)))
        norms = {**OTHER_NORMS, **{k: str(v) for k, v in spec["norms"].items()}}
        for service, value in norms.items():
            self.add(Norm(service=service, value=Decimal(value), unit=NORM_UNIT[service], valid_from=date(2017, 1, 1)))
        self.add(
            Norm(service="social_area", value=Decimal(33), unit="m2/person", valid_from=date(2017, 1, 1), residents=1)
        )

    def building(self, number: int, spec: dict[str, Any]) -> None:
        building = self.add(
            Building(
                code=f"B-{number}",
                address=f"ул. {number}",
                total_area_m2=Decimal(5000) if spec["total_area"] else None,
                common_area_m2=Decimal(600),
                manager_id=self.manager.id,
            )
        )
        for service in ("maintenance", "waste", "heating", "electricity", "common_cold_water"):
            self.add(
                ServiceSupplier(
                    building_id=building.id, service=service, supplier_id=self.manager.id, valid_from=date(2025, 1, 1)
                )
            )
        for service in ("cold_water", "hot_water", "wastewater"):
            self.add(
                ServiceSupplier(
                    building_id=building.id, service=service, supplier_id=self.supplier.id, valid_from=date(2025, 1, 1)
                )
            )
        if spec["own_maintenance"] is not None:
            self.add(
                Tariff(
                    service="maintenance",
                    zone=0,
                    price=spec["own_maintenance"],
                    unit="m2",
                    valid_from=date(2025, 6, 1),
                    building_id=building.id,
                )
            )
        for service, wanted in (("heating", spec["heat_meter"]), ("cold_water", spec["cold_meter"])):
            if wanted:
                meter = self.meter(building, None, service, 1, None)
                self.readings(
                    meter,
                    1,
                    {
                        "read": [True] * len(READ_MONTHS),
                        "steps": [Decimal(90 + 7 * i) for i in range(len(READ_MONTHS))],
                    },
                    day=28,
                    hour=20,
                )
        for index, account_spec_ in enumerate(spec["accounts"]):
            self.account(building, number * 100 + index, account_spec_)

    def account(self, building: Building, number: int, spec: dict[str, Any]) -> None:
        premise = self.add(
            Premise(
                building_id=building.id,
                number=str(number),
                kind=PremiseKind.RESIDENTIAL,
                area_m2=spec["area"],
                meter_possible=spec["meter_possible"],
            )
        )
        account = self.add(Account(number=str(number), premise_id=premise.id, residents=spec["residents"]))
        for owner in range(spec["owners"]):
            self.add(
                Ownership(
                    premise_id=premise.id, owner=f"owner {owner}", share_numerator=1, share_denominator=spec["owners"]
                )
            )
        for meter_spec_ in spec["meters"]:
            zones = meter_spec_["zones"] if meter_spec_["service"] == "electricity" else 1
            meter = self.meter(building, account, meter_spec_["service"], zones, meter_spec_["expires"])
            for zone in range(1, zones + 1):
                self.readings(meter, zone, meter_spec_)
        if spec["benefit"] is not None:
            service, percent, persons = spec["benefit"]
            limit = "social_norm" if service == "maintenance" else "consumption_norm"
            self.add(
                Benefit(
                    account_id=account.id,
                    service=service,
                    percent=Decimal(percent),
                    limit=limit,
                    persons=persons,
                    valid_from=date(2026, 2, 1),
                    granted_by_id=self.social.id,
                )
            )
        if spec["absence"] is not None:
            start, length, persons = spec["absence"]
            departed = date(2025, 10, 1) + timedelta(days=start)
            self.add(
                TemporaryAbsence(
                    account_id=account.id,
                    departed_on=departed,
                    returned_on=departed + timedelta(days=length),
                    persons=persons,
                )
            )


def production_lines(session: Session, period: Period) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(AccrualLine).where(AccrualLine.period == period.first_day, AccrualLine.kind != "recalculation")
    )
    return [
        {
            "account_id": line.account_id,
            "service": line.service,
            "zone": line.zone,
            "kind": line.kind,
            "method": line.method,
            "quantity": line.quantity,
            "price": line.price,
            "multiplier": line.multiplier,
            "amount": line.amount,
            "supplier_id": line.supplier_id,
        }
        for line in rows
    ]


def comparable(lines: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    fields = (
        "account_id",
        "service",
        "zone",
        "kind",
        "method",
        "quantity",
        "price",
        "multiplier",
        "amount",
        "supplier_id",
    )
    rows = [tuple(str(line[f]) if f in ("service", "kind", "method") else line[f] for f in fields) for line in lines]
    return sorted(rows, key=repr)


@contextmanager
def fresh_session(engine: Engine) -> Iterator[Session]:
    connection = engine.connect()
    transaction = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        transaction.rollback()
        connection.close()


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(town=town_spec)
def test_the_engine_bills_random_towns_exactly_like_the_reference(engine: Engine, town: dict[str, Any]) -> None:
    with fresh_session(engine) as session:
        builder = TownBuilder(session)
        builder.catalogue(town)
        for number, building in enumerate(town["buildings"], start=1):
            builder.building(number, building)
        for period in PERIODS:
            run_billing(session, period)
            expected = reference_lines(session, period)
            assert comparable(production_lines(session, period)) == comparable(expected), period
            close_period(session, period)
