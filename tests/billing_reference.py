"""A deliberately simple reference of the billing rules: one account at a time, plain loops over
Decimal, the ORM for every lookup. Slow and obvious on purpose; the property test checks that the
production engine (set-based loading, ``billing.rules``) gives the same lines, line by line.

Written from docs/billing.md, not from the engine's code."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from zhkh.billing.models import AccrualLine, TemporaryAbsence
from zhkh.core.periods import Period
from zhkh.housing.models import Account, Building, Ownership, Premise
from zhkh.metering.models import Consumption, Meter
from zhkh.tariffs.models import Benefit, Multiplier, Norm, ServiceSupplier, Tariff

Q = Decimal("0.000001")
RESOURCES = ("cold_water", "hot_water", "electricity", "gas")
UNITS = {"cold_water": "m3", "hot_water": "m3", "electricity": "kWh", "gas": "m3", "wastewater": "m3"}


def kopecks(rubles: Decimal) -> int:
    return int((rubles * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def q(value: Decimal) -> Decimal:
    return value.quantize(Q, rounding=ROUND_HALF_UP)


def valid(model: Any, day: date) -> Any:
    return (model.valid_from <= day) & or_(model.valid_to.is_(None), model.valid_to >= day)


class Reference:
    def __init__(self, session: Session, period: Period) -> None:
        self.s = session
        self.period = period
        self.day = period.first_day
        self.days = period.last_day.day

    # --- catalogue, one query per question ---

    def _latest(self, model: Any, *conditions: Any) -> Any:
        return self.s.scalars(
            select(model).where(valid(model, self.day), *conditions).order_by(model.valid_from.desc(), model.id.desc())
        ).first()

    def supplier(self, building: Building, service: str) -> int | None:
        row = self._latest(
            ServiceSupplier, ServiceSupplier.building_id == building.id, ServiceSupplier.service == service
        )
        return row.supplier_id if row else None

    def price(self, building: Building, service: str, zone: int) -> tuple[Decimal, str] | None:
        for wanted in [zone, 0] if zone else [0]:
            for where in (Tariff.building_id == building.id, Tariff.building_id.is_(None)):
                row = self._latest(Tariff, Tariff.service == service, Tariff.zone == wanted, where)
                if row:
                    return row.price, row.unit
        return None

    def norm(self, building: Building, service: str, residents: int = 0) -> Decimal | None:
        for where in (Norm.building_id == building.id, Norm.building_id.is_(None)):
            if self._latest(Norm, Norm.service == service, where) is None:
                continue  # this level says nothing of the service
            for household in [residents, None] if residents else [None]:
                row = self._latest(
                    Norm,
                    Norm.service == service,
                    where,
                    Norm.residents.is_(household) if household is None else Norm.residents == household,
                )
                if row:
                    value: Decimal = row.value
                    return value
            return None
        return None

    def multiplier(self, service: str) -> Decimal | None:
        row = self._latest(Multiplier, Multiplier.service == service)
        return row.value if row else None

    # --- one account ---

    def persons(self, account: Account) -> int:
        owners = self.s.scalar(select(func.count()).where(Ownership.premise_id == account.premise_id)) or 0
        return account.residents or owners

    def absent_person_days(self, account: Account) -> int:
        total = 0
        for absence in self.s.scalars(select(TemporaryAbsence).where(TemporaryAbsence.account_id == account.id)):
            day, away = absence.departed_on + timedelta(days=1), []
            while day < absence.returned_on:
                away.append(day)
                day += timedelta(days=1)
            if len(away) > 5:
                total += absence.persons * sum(1 for d in away if self.period.first_day <= d <= self.period.last_day)
        return total

    def consumption(self, meter: Meter, zone: int, period: Period) -> Consumption | None:
        return self.s.scalar(
            select(Consumption).where(
                Consumption.meter_id == meter.id, Consumption.zone == zone, Consumption.period == period.first_day
            )
        )

    def lines(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for building in self.s.scalars(select(Building).order_by(Building.id)):
            accounts = list(
                self.s.scalars(
                    select(Account).join(Premise).where(Premise.building_id == building.id).order_by(Account.id)
                )
            )
            if not accounts:
                continue
            own = {account.id: self.own(building, account) for account in accounts}
            for account in accounts:
                account_lines = own[account.id] + self.common(building, account, accounts, own)
                found += account_lines + self.benefits(building, account, account_lines)
        return found

    def line(
        self,
        account: Account,
        service: str,
        method: str,
        quantity: Decimal,
        price: tuple[Decimal, str],
        supplier: int,
        zone: int = 0,
        multiplier: Decimal | None = None,
    ) -> dict[str, Any]:
        amount = kopecks(quantity * price[0] * (multiplier or 1))
        return {
            "account_id": account.id,
            "service": service,
            "zone": zone,
            "kind": "charge",
            "method": method,
            "quantity": quantity,
            "price": price[0],
            "multiplier": multiplier,
            "amount": amount,
            "supplier_id": supplier,
        }

    def own(self, building: Building, account: Account) -> list[dict[str, Any]]:
        premise = account.premise
        result: list[dict[str, Any]] = []
        for service in (
            "maintenance",
            "capital_repair",
            "heating",
            "cold_water",
            "hot_water",
            "wastewater",
            "electricity",
            "gas",
            "waste",
        ):
            supplier = self.supplier(building, service)
            if supplier is None:
                continue
            if service in ("maintenance", "capital_repair", "waste"):
                price = self.price(building, service, 0)
                if price is None:
                    continue
                if price[1] == "person":
                    n = self.persons(account)
                    quantity = Decimal(n)
                    apd = self.absent_person_days(account) if not premise.meter_possible else 0
                    if apd and n:
                        quantity = q(Decimal(n) * (n * self.days - min(apd, n * self.days)) / (n * self.days))
                    result.append(self.line(account, service, "persons", quantity, price, supplier))
                else:
                    result.append(self.line(account, service, "area", premise.area_m2, price, supplier))
            elif service == "heating":
                result += self.heating(building, account, supplier)
            elif service in RESOURCES:
                result += self.resource(building, account, service, supplier)
            else:
                result += self.wastewater(building, account, supplier, result)
        return result

    def total_area(self, building: Building) -> Decimal:
        if building.total_area_m2:
            return building.total_area_m2
        areas = self.s.scalars(
            select(Premise.area_m2)
            .join(Account, Account.premise_id == Premise.id)
            .where(Premise.building_id == building.id)
        )
        return sum(areas, Decimal(0))

    def building_volume(self, building: Building, service: str) -> tuple[bool, Decimal | None]:
        meters = self.s.scalars(
            select(Meter).where(
                Meter.building_id == building.id,
                Meter.scope == "building",
                Meter.service == service,
                Meter.installed_on <= self.period.last_day,
                or_(Meter.archived_on.is_(None), Meter.archived_on >= self.day),
            )
        ).all()
        if not meters:
            return False, None
        total = Decimal(0)
        for meter in meters:
            row = self.consumption(meter, 1, self.period)
            if row is None or row.volume is None:
                return True, None
            total += row.volume
        return True, total

    def heating(self, building: Building, account: Account, supplier: int) -> list[dict[str, Any]]:
        price = self.price(building, "heating", 0)
        if price is None:
            return []
        area = account.premise.area_m2
        _, volume = self.building_volume(building, "heating")
        if volume is not None:
            return [
                self.line(
                    account,
                    "heating",
                    "building_meter_share",
                    q(volume * area / self.total_area(building)),
                    price,
                    supplier,
                )
            ]
        norm = self.norm(building, "heating")
        return [] if norm is None else [self.line(account, "heating", "norm", area * norm, price, supplier)]

    def average(self, meter: Meter, zone: int) -> Decimal | None:
        volumes, step = [], self.period
        for _ in range(12):
            step = step.previous()
            row = self.consumption(meter, zone, step)
            if row is not None and row.provenance != "missing" and row.volume is not None:
                volumes.append(row.volume)
        volumes = volumes[:6]
        return q(sum(volumes, Decimal(0)) / len(volumes)) if len(volumes) >= 3 else None

    def streak(self, meter: Meter, zone: int) -> int:
        count, step = 0, self.period.previous()
        while count < 12:
            row = self.consumption(meter, zone, step)
            if row is None or row.provenance != "missing":
                break
            count += 1
            step = step.previous()
        return count

    def resource(self, building: Building, account: Account, service: str, supplier: int) -> list[dict[str, Any]]:
        meters = self.s.scalars(
            select(Meter)
            .where(
                Meter.account_id == account.id,
                Meter.service == service,
                Meter.installed_on <= self.period.last_day,
                or_(Meter.archived_on.is_(None), Meter.archived_on >= self.day),
            )
            .order_by(Meter.id)
        ).all()
        if not meters:
            return self.by_norm(building, account, service, supplier, multiplied=account.premise.meter_possible)
        result = []
        for meter in meters:
            for zone in range(1, meter.zones + 1):
                line_zone = zone if meter.zones > 1 else 0
                row = self.consumption(meter, zone, self.period)
                average = self.average(meter, zone)
                expired = meter.verified_until if meter.verified_until and meter.verified_until < self.day else None
                if expired is not None:
                    months = (self.period.year * 12 + self.period.month) - (expired.year * 12 + expired.month)
                    if months <= 3 and average is not None:
                        method, quantity = "average", average
                    else:
                        return self.by_norm(building, account, service, supplier, multiplied=True)
                elif row is not None and row.provenance in ("reading", "interpolated") and row.volume is not None:
                    method, quantity = "meter", row.volume
                    streak = self.streak(meter, zone)
                    start_of_previous = self.period.previous().start(_zone())
                    if (
                        streak
                        and row.provenance == "reading"
                        and row.start_at is not None
                        and row.start_at < start_of_previous
                    ):
                        step = self.period
                        for _ in range(streak):
                            step = step.previous()
                            for billed in self.s.scalars(
                                select(AccrualLine).where(
                                    AccrualLine.meter_id == meter.id,
                                    AccrualLine.zone == line_zone,
                                    AccrualLine.period == step.first_day,
                                    AccrualLine.kind == "charge",
                                    AccrualLine.method.in_(("average", "norm")),
                                )
                            ):
                                quantity -= billed.quantity
                elif self.streak(meter, zone) < 3 and average is not None:
                    method, quantity = "average", average
                else:
                    return self.by_norm(building, account, service, supplier, multiplied=False)
                price = self.price(building, service, line_zone)
                if price is None:
                    return []
                line = self.line(account, service, method, quantity, price, supplier, zone=line_zone)
                line["meter_id"] = meter.id
                result.append(line)
        return result

    def by_norm(
        self, building: Building, account: Account, service: str, supplier: int, *, multiplied: bool
    ) -> list[dict[str, Any]]:
        price = self.price(building, service, 0)
        norm = self.norm(building, service) if price else None
        if price is None or norm is None:
            return []
        multiplier = self.multiplier(service) if multiplied else None
        n = self.persons(account)
        quantity = n * norm
        apd = self.absent_person_days(account) if not multiplied and not account.premise.meter_possible else 0
        if apd and n:
            quantity = q(quantity * (n * self.days - min(apd, n * self.days)) / (n * self.days))
        method = "norm_multiplied" if multiplier is not None else "norm"
        return [self.line(account, service, method, quantity, price, supplier, multiplier=multiplier)]

    def wastewater(
        self, building: Building, account: Account, supplier: int, own: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        price = self.price(building, "wastewater", 0)
        if price is None:
            return []
        water = [line for line in own if line["service"] in ("cold_water", "hot_water")]
        if water:
            return [
                self.line(
                    account,
                    "wastewater",
                    "water_sum",
                    sum((line["quantity"] for line in water), Decimal(0)),
                    price,
                    supplier,
                )
            ]
        norm = self.norm(building, "wastewater")
        if norm is None:
            return []
        n = self.persons(account)
        quantity = n * norm
        apd = self.absent_person_days(account) if not account.premise.meter_possible else 0
        if apd and n:
            quantity = quantity * (n * self.days - min(apd, n * self.days)) / (n * self.days)
        return [self.line(account, "wastewater", "norm", q(quantity), price, supplier)]

    def common(
        self, building: Building, account: Account, accounts: list[Account], own: dict[int, list[dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = []
        for service, resource in (
            ("common_cold_water", "cold_water"),
            ("common_hot_water", "hot_water"),
            ("common_electricity", "electricity"),
        ):
            supplier = self.supplier(building, service)
            if supplier is None or building.common_area_m2 is None:
                continue
            price = self.price(building, service, 0)
            norm = self.norm(building, service) if price else None
            if price is None or norm is None:
                continue
            share = account.premise.area_m2 / self.total_area(building)
            cap = q(norm * building.common_area_m2 * share)
            _, volume = self.building_volume(building, resource)
            if volume is None:
                result.append(self.line(account, service, "norm", cap, price, supplier))
                continue
            individual = sum(
                (line["quantity"] for a in accounts for line in own[a.id] if line["service"] == resource), Decimal(0)
            )
            quantity = q(max(volume - individual, Decimal(0)) * share)
            result.append(self.line(account, service, "common_share", min(quantity, cap), price, supplier))
        supplier = self.supplier(building, "common_wastewater")
        water = [line for line in result if line["service"] in ("common_cold_water", "common_hot_water")]
        if supplier is not None and water:
            price = self.price(building, "common_wastewater", 0)
            if price is not None:
                result.append(
                    self.line(
                        account,
                        "common_wastewater",
                        "water_sum",
                        sum((line["quantity"] for line in water), Decimal(0)),
                        price,
                        supplier,
                    )
                )
        return result

    def benefits(self, building: Building, account: Account, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        result = []
        for benefit in self.s.scalars(
            select(Benefit).where(Benefit.account_id == account.id, valid(Benefit, self.day)).order_by(Benefit.id)
        ):
            charged = [line for line in lines if line["service"] == benefit.service]
            base = sum(line["amount"] for line in charged)
            if not charged or base <= 0:
                continue
            residents = account.residents or self.persons(account) or 1
            persons = min(benefit.persons or residents, residents)
            if benefit.limit == "social_norm":
                basis = account.premise.area_m2
                per_person = self.norm(building, "social_area", residents)
                limit = per_person * persons if per_person is not None else None
            else:
                basis = sum((line["quantity"] for line in charged), Decimal(0))
                norm = self.norm(building, benefit.service)
                limit = norm * persons if norm is not None else None
            if basis <= 0:
                continue
            eligible = basis * persons / residents
            if limit is not None and limit < eligible:
                eligible = limit
            amount = -kopecks(Decimal(base) / 100 * eligible / basis * benefit.percent / 100)
            result.append(
                {
                    "account_id": account.id,
                    "service": benefit.service,
                    "zone": 0,
                    "kind": "benefit",
                    "method": "benefit",
                    "quantity": q(eligible),
                    "price": None,
                    "multiplier": None,
                    "amount": amount,
                    "supplier_id": charged[0]["supplier_id"],
                }
            )
        return result


def _zone() -> Any:
    from zhkh.core.config import get_settings

    return get_settings().zone


def reference_lines(session: Session, period: Period) -> list[dict[str, Any]]:
    return Reference(session, period).lines()
