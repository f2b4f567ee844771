"""The calculation rules of ПП 354 for one building and period. Pure: no I/O.

The run (``billing/run.py``) loads a building's inputs with a few set-based queries, hands them
to ``bill_building`` and writes the lines it returns. Every line keeps its method, quantity,
unit, price, multiplier and the inputs it came from, so ``explain`` can say why each kopeck is
there. Quantities stay exact Decimals; where a rule divides (an average, a share of a building's
volume) the quantity is rounded half-up to a millionth; each line's amount becomes kopecks once,
half-up (``to_kopecks``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from zhkh.core.money import to_kopecks
from zhkh.tariffs.catalogue import RESOURCE_UNIT, ServiceCode, Unit

QUANTUM = Decimal("0.000001")
# ПП 354 п.59: the average covers at most 3 periods; it is taken over at most the last 6 periods
# with readings and needs at least 3 of them (a younger meter is billed by norm).
MAX_ESTIMATED_PERIODS = 3
AVERAGE_OVER = 6
AVERAGE_AT_LEAST = 3
# п.90-91: temporary absence counts when more than 5 full days (the run applies this).
ABSENCE_MORE_THAN = 5

METERED = (ServiceCode.COLD_WATER, ServiceCode.HOT_WATER, ServiceCode.ELECTRICITY, ServiceCode.GAS)
BY_AREA = (ServiceCode.MAINTENANCE, ServiceCode.CAPITAL_REPAIR)
WATER = (ServiceCode.COLD_WATER, ServiceCode.HOT_WATER)
COMMON_RESOURCE = {
    ServiceCode.COMMON_COLD_WATER: ServiceCode.COLD_WATER,
    ServiceCode.COMMON_HOT_WATER: ServiceCode.HOT_WATER,
    ServiceCode.COMMON_ELECTRICITY: ServiceCode.ELECTRICITY,
}
# The order lines are computed and shown in: wastewater after the waters it sums, КР на СОИ
# after every premises' own volumes.
ORDER = (
    ServiceCode.MAINTENANCE,
    ServiceCode.CAPITAL_REPAIR,
    ServiceCode.HEATING,
    ServiceCode.COLD_WATER,
    ServiceCode.HOT_WATER,
    ServiceCode.WASTEWATER,
    ServiceCode.ELECTRICITY,
    ServiceCode.GAS,
    ServiceCode.WASTE,
    ServiceCode.COMMON_COLD_WATER,
    ServiceCode.COMMON_HOT_WATER,
    ServiceCode.COMMON_WASTEWATER,
    ServiceCode.COMMON_ELECTRICITY,
)


class Method(StrEnum):
    METER = "meter"  # formula 1: V × T
    AVERAGE = "average"  # п.59: average of past periods
    NORM = "norm"  # formula 4 / 2: n × N × T, S × N × T
    NORM_MULTIPLIED = "norm_multiplied"  # formula 4(1): n × N × K × T
    AREA = "area"  # S × rate
    PERSONS = "persons"  # n × rate
    BUILDING_METER_SHARE = "building_meter_share"  # heating formula 3: V × S / S_total × T
    COMMON_SHARE = "common_share"  # КР на СОИ by building meter, capped by the norm
    WATER_SUM = "water_sum"  # wastewater: cold + hot water volumes
    BENEFIT = "benefit"


class LineKind(StrEnum):
    CHARGE = "charge"
    BENEFIT = "benefit"
    RECALCULATION = "recalculation"


class LimitKind(StrEnum):
    SOCIAL_NORM = "social_norm"
    CONSUMPTION_NORM = "consumption_norm"


@dataclass(frozen=True, slots=True)
class Price:
    value: Decimal
    unit: Unit


@dataclass(frozen=True, slots=True)
class Rates:
    """What is in force for one building in the period (the run resolves validity)."""

    suppliers: Mapping[ServiceCode, int]
    prices: Mapping[tuple[ServiceCode, int], Price]  # zone 0: single-rate
    norms: Mapping[ServiceCode, Decimal]
    social_area: Mapping[int, Decimal]  # m² per person by household size; key 0: any other size
    multipliers: Mapping[ServiceCode, Decimal]


@dataclass(frozen=True, slots=True)
class MeterZone:
    """One zone of an individual meter, with what the run knows of its past."""

    meter_id: int
    serial: str
    service: ServiceCode
    zone: int
    zones: int
    provenance: str | None  # reading / interpolated / missing; None: no consumption computed
    volume: Decimal | None
    start: Decimal | None = None
    end: Decimal | None = None
    # Volumes of the preceding periods that had readings, newest first (at most 6 are used).
    history: tuple[Decimal, ...] = ()
    # Consecutive preceding periods without readings (billed as estimates).
    missing_streak: int = 0
    # Periods since the verification expired, this one included; 0 while verified.
    out_of_order_periods: int = 0
    # The reading this volume starts from is older than the previous period: the volume covers
    # the estimated periods too, and what they were billed (``billed_estimates``) is deducted.
    spans_missing: bool = False
    billed_estimates: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class BenefitInput:
    benefit_id: int
    service: ServiceCode
    percent: Decimal
    limit: LimitKind
    persons: int | None
    granted_by_id: int


@dataclass(frozen=True, slots=True)
class AccountInput:
    account_id: int
    area: Decimal
    residents: int
    owners: int
    meter_possible: bool
    # Σ over residents away of their full days away in the period (absences of more than 5 full
    # days only: ``absent_person_days``), which reduces per-person norms (п.86-90).
    absent_person_days: int = 0
    meters: tuple[MeterZone, ...] = ()
    benefits: tuple[BenefitInput, ...] = ()

    @property
    def persons(self) -> int:
        """n of formula 4: residents registered, the owners when nobody is."""
        return self.residents or self.owners


@dataclass(frozen=True, slots=True)
class BuildingInput:
    building_id: int
    total_area: Decimal  # S_total: all premises
    common_area: Decimal | None
    days_in_period: int
    rates: Rates
    accounts: Sequence[AccountInput]
    # Volume per resource of the building meters; None: a building meter without a volume.
    building_meters: Mapping[ServiceCode, Decimal | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Line:
    account_id: int
    service: ServiceCode
    zone: int
    supplier_id: int
    kind: LineKind
    method: Method
    quantity: Decimal
    unit: Unit
    price: Decimal | None
    multiplier: Decimal | None
    amount: int  # kopecks
    inputs: Mapping[str, Any]
    meter_id: int | None = None
    benefit_id: int | None = None
    granted_by_id: int | None = None


@dataclass(frozen=True, slots=True)
class BillingProblem:
    account_id: int
    service: ServiceCode
    code: str
    message: str


@dataclass
class _Result:
    lines: list[Line] = field(default_factory=list)
    problems: list[BillingProblem] = field(default_factory=list)


def text(value: Decimal) -> str:
    """A quantity for the inputs: plain, without exponent or trailing zeros."""
    normalized = format(value.normalize(), "f")
    return "0" if normalized in ("-0", "0") else normalized


def quantize(value: Decimal) -> Decimal:
    return value.quantize(QUANTUM, rounding=ROUND_HALF_UP)


def amount_of(quantity: Decimal, price: Decimal, multiplier: Decimal | None = None) -> int:
    return to_kopecks(quantity * price * (multiplier if multiplier is not None else 1))


# --- the building ------------------------------------------------------------------------------


def bill_building(building: BuildingInput) -> tuple[list[Line], list[BillingProblem]]:
    """Every account's lines for the period: own services first, then КР на СОИ (which needs the
    volumes of every premises), then benefits."""
    result = _Result()
    own: dict[int, list[Line]] = {}
    for account in building.accounts:
        own[account.account_id] = _own_services(building, account, result)
    individual = _individual_volumes(own.values())
    for account in building.accounts:
        lines = own[account.account_id] + _common_services(building, account, individual, result)
        result.lines.extend(lines)
        result.lines.extend(_benefits(building, account, lines))
    return result.lines, result.problems


def _price(
    building: BuildingInput, account: AccountInput, service: ServiceCode, zone: int, result: _Result
) -> Price | None:
    rates = building.rates.prices
    price = rates.get((service, zone)) or (rates.get((service, 0)) if zone else None)
    if price is None:
        what = f"zone {zone} of {service}" if zone else str(service)
        result.problems.append(
            BillingProblem(account.account_id, service, "no_tariff", f"no tariff in force for {what}")
        )
    return price


def _norm(building: BuildingInput, account: AccountInput, service: ServiceCode, result: _Result) -> Decimal | None:
    norm = building.rates.norms.get(service)
    if norm is None:
        result.problems.append(
            BillingProblem(account.account_id, service, "no_norm", f"no consumption norm in force for {service}")
        )
    return norm


def _own_services(building: BuildingInput, account: AccountInput, result: _Result) -> list[Line]:
    lines: list[Line] = []
    for service in ORDER:
        supplier = building.rates.suppliers.get(service)
        if supplier is None:
            if service in METERED and any(m.service is service for m in account.meters):
                result.problems.append(
                    BillingProblem(
                        account.account_id, service, "no_supplier", f"a {service} meter, but nobody supplies {service}"
                    )
                )
            continue
        if service in BY_AREA or service is ServiceCode.WASTE:
            lines += _by_area_or_persons(building, account, service, supplier, result)
        elif service is ServiceCode.HEATING:
            lines += _heating(building, account, supplier, result)
        elif service in METERED:
            lines += _resource(building, account, service, supplier, result)
        elif service is ServiceCode.WASTEWATER:
            lines += _wastewater(building, account, supplier, lines, result)
    return lines


def _line(
    account: AccountInput,
    service: ServiceCode,
    supplier: int,
    method: Method,
    quantity: Decimal,
    price: Price,
    inputs: Mapping[str, Any],
    *,
    zone: int = 0,
    multiplier: Decimal | None = None,
    unit: Unit | None = None,
    meter_id: int | None = None,
) -> Line:
    return Line(
        account_id=account.account_id,
        service=service,
        zone=zone,
        supplier_id=supplier,
        kind=LineKind.CHARGE,
        method=method,
        quantity=quantity,
        unit=unit or price.unit,
        price=price.value,
        multiplier=multiplier,
        amount=amount_of(quantity, price.value, multiplier),
        inputs=dict(inputs),
        meter_id=meter_id,
    )


def _absence_factor(building: BuildingInput, account: AccountInput) -> tuple[Decimal, dict[str, Any]]:
    """п.86-90: per-person services of premises where a meter cannot be installed are reduced
    by the person-days away: n × N × (n × D − days away) / (n × D)."""
    if account.meter_possible or not account.absent_person_days or not account.persons:
        return Decimal(1), {}
    person_days = account.persons * building.days_in_period
    away = min(account.absent_person_days, person_days)
    return Decimal(person_days - away) / Decimal(person_days), {
        "absent_person_days": away,
        "days": building.days_in_period,
    }


def _by_area_or_persons(
    building: BuildingInput, account: AccountInput, service: ServiceCode, supplier: int, result: _Result
) -> list[Line]:
    price = _price(building, account, service, 0, result)
    if price is None:
        return []
    if price.unit is Unit.PERSON:
        factor, absence = _absence_factor(building, account)
        quantity = quantize(account.persons * factor) if absence else Decimal(account.persons)
        inputs = {"persons": account.persons, **absence}
        return [_line(account, service, supplier, Method.PERSONS, quantity, price, inputs)]
    return [_line(account, service, supplier, Method.AREA, account.area, price, {"area": text(account.area)})]


def _heating(building: BuildingInput, account: AccountInput, supplier: int, result: _Result) -> list[Line]:
    """Formula 3 with a building heat meter (its volume shared by area), formula 2 without."""
    price = _price(building, account, ServiceCode.HEATING, 0, result)
    if price is None:
        return []
    volume = building.building_meters.get(ServiceCode.HEATING)
    if volume is not None:
        quantity = quantize(volume * account.area / building.total_area)
        inputs = {"building_volume": text(volume), "area": text(account.area), "total_area": text(building.total_area)}
        return [_line(account, ServiceCode.HEATING, supplier, Method.BUILDING_METER_SHARE, quantity, price, inputs)]
    norm = _norm(building, account, ServiceCode.HEATING, result)
    if norm is None:
        return []
    inputs = {"area": text(account.area), "norm": text(norm), "norm_per": "m2"}
    if ServiceCode.HEATING in building.building_meters:
        inputs["building_meter"] = "no_volume"
    return [_line(account, ServiceCode.HEATING, supplier, Method.NORM, account.area * norm, price, inputs)]


def _resource(
    building: BuildingInput, account: AccountInput, service: ServiceCode, supplier: int, result: _Result
) -> list[Line]:
    """Cold and hot water, electricity, gas: by meter, by average, or by norm."""
    meters = [m for m in account.meters if m.service is service]
    if not meters:
        reason = "no_meter_possible" if account.meter_possible else "meter_impossible"
        return _by_norm(building, account, service, supplier, result, reason, multiplied=account.meter_possible)
    lines: list[Line] = []
    for meter in meters:
        decision = _meter_decision(meter)
        if decision[0] is not Method.METER and decision[0] is not Method.AVERAGE:
            # One meter of the service fell back to the norm: the norm covers the whole premises.
            method, reason = decision
            return _by_norm(
                building, account, service, supplier, result, reason, multiplied=method is Method.NORM_MULTIPLIED
            )
        price = _price(building, account, service, meter.zone if meter.zones > 1 else 0, result)
        if price is None:
            return []
        zone = meter.zone if meter.zones > 1 else 0
        lines.append(_metered_line(account, service, supplier, meter, decision[1], price, zone))
    return lines


def _meter_decision(meter: MeterZone) -> tuple[Method, str]:
    """How one meter zone is billed this period, and why."""
    if meter.out_of_order_periods:
        if meter.out_of_order_periods <= MAX_ESTIMATED_PERIODS and _average(meter) is not None:
            return Method.AVERAGE, "out_of_order"
        return Method.NORM_MULTIPLIED, "out_of_order"
    if meter.provenance in ("reading", "interpolated") and meter.volume is not None:
        return Method.METER, meter.provenance
    if meter.missing_streak < MAX_ESTIMATED_PERIODS and _average(meter) is not None:
        return Method.AVERAGE, "no_reading"
    return Method.NORM, "no_reading_after_average" if _average(meter) is not None else "no_reading_no_history"


def _average(meter: MeterZone) -> tuple[Decimal, int] | None:
    used = meter.history[:AVERAGE_OVER]
    if len(used) < AVERAGE_AT_LEAST:
        return None
    return quantize(sum(used, Decimal(0)) / len(used)), len(used)


def _metered_line(
    account: AccountInput,
    service: ServiceCode,
    supplier: int,
    meter: MeterZone,
    reason: str,
    price: Price,
    zone: int,
) -> Line:
    if reason in ("reading", "interpolated"):
        assert meter.volume is not None
        quantity = meter.volume
        inputs: dict[str, Any] = {"serial": meter.serial, "provenance": reason, "volume": text(meter.volume)}
        if meter.start is not None and meter.end is not None:
            inputs |= {"start": text(meter.start), "end": text(meter.end)}
        if meter.spans_missing and meter.billed_estimates:
            quantity = meter.volume - meter.billed_estimates
            inputs["billed_as_estimate"] = text(meter.billed_estimates)
        method = Method.METER
    else:
        average = _average(meter)
        assert average is not None
        quantity, method = average[0], Method.AVERAGE
        inputs = {"serial": meter.serial, "reason": reason, "periods": average[1], "average": text(average[0])}
    return _line(account, service, supplier, method, quantity, price, inputs, zone=zone, meter_id=meter.meter_id)


def _by_norm(
    building: BuildingInput,
    account: AccountInput,
    service: ServiceCode,
    supplier: int,
    result: _Result,
    reason: str,
    *,
    multiplied: bool,
) -> list[Line]:
    price = _price(building, account, service, 0, result)
    norm = _norm(building, account, service, result) if price is not None else None
    if price is None or norm is None:
        return []
    multiplier = building.rates.multipliers.get(service) if multiplied else None
    factor, absence = _absence_factor(building, account) if not multiplied else (Decimal(1), {})
    quantity = account.persons * norm * factor
    if absence:
        quantity = quantize(quantity)
    inputs = {"persons": account.persons, "norm": text(norm), "reason": reason, **absence}
    method = Method.NORM_MULTIPLIED if multiplier is not None else Method.NORM
    return [_line(account, service, supplier, method, quantity, price, inputs, multiplier=multiplier)]


def _wastewater(
    building: BuildingInput, account: AccountInput, supplier: int, own: Sequence[Line], result: _Result
) -> list[Line]:
    """Wastewater is the cold and hot water the premises took (without multipliers); with no
    water billed at all, its own norm."""
    water = [line for line in own if line.service in WATER]
    price = _price(building, account, ServiceCode.WASTEWATER, 0, result)
    if price is None:
        return []
    if not water:
        factor, absence = _absence_factor(building, account)
        norm = _norm(building, account, ServiceCode.WASTEWATER, result)
        if norm is None:
            return []
        quantity = account.persons * norm * factor
        inputs = {"persons": account.persons, "norm": text(norm), "reason": "no_water_billed", **absence}
        return [_line(account, ServiceCode.WASTEWATER, supplier, Method.NORM, quantize(quantity), price, inputs)]
    parts: dict[str, Decimal] = {}
    for line in water:
        parts[line.service.value] = parts.get(line.service.value, Decimal(0)) + line.quantity
    quantity = sum(parts.values(), Decimal(0))
    inputs = {service: text(volume) for service, volume in parts.items()}
    return [_line(account, ServiceCode.WASTEWATER, supplier, Method.WATER_SUM, quantity, price, inputs)]


def _individual_volumes(accounts_lines: Any) -> dict[ServiceCode, Decimal]:
    """Σ V of every premises per resource (readings, averages and norms; multipliers aside)."""
    totals: dict[ServiceCode, Decimal] = {}
    for lines in accounts_lines:
        for line in lines:
            if line.service in COMMON_RESOURCE.values():
                totals[line.service] = totals.get(line.service, Decimal(0)) + line.quantity
    return totals


def _common_services(
    building: BuildingInput, account: AccountInput, individual: Mapping[ServiceCode, Decimal], result: _Result
) -> list[Line]:
    lines: list[Line] = []
    for service in (ServiceCode.COMMON_COLD_WATER, ServiceCode.COMMON_HOT_WATER, ServiceCode.COMMON_ELECTRICITY):
        supplier = building.rates.suppliers.get(service)
        if supplier is not None:
            lines += _common(building, account, service, supplier, individual, result)
    supplier = building.rates.suppliers.get(ServiceCode.COMMON_WASTEWATER)
    if supplier is not None:
        lines += _common_wastewater(building, account, supplier, lines, result)
    return lines


def _common(
    building: BuildingInput,
    account: AccountInput,
    service: ServiceCode,
    supplier: int,
    individual: Mapping[ServiceCode, Decimal],
    result: _Result,
) -> list[Line]:
    """КР на СОИ: V_common = V_building − Σ V_individual, shared by area, capped by the norm
    × common area × S / S_total; by that norm alone without a building meter; never negative."""
    if building.common_area is None:
        result.problems.append(
            BillingProblem(account.account_id, service, "no_common_area", "the building's common area is not known")
        )
        return []
    price = _price(building, account, service, 0, result)
    norm = _norm(building, account, service, result)
    if price is None or norm is None:
        return []
    share = account.area / building.total_area
    cap = quantize(norm * building.common_area * share)
    base = {
        "area": text(account.area),
        "total_area": text(building.total_area),
        "common_area": text(building.common_area),
        "norm": text(norm),
    }
    building_volume = building.building_meters.get(COMMON_RESOURCE[service])
    if building_volume is None:
        return [_line(account, service, supplier, Method.NORM, cap, price, base)]
    individual_volume = individual.get(COMMON_RESOURCE[service], Decimal(0))
    common = max(building_volume - individual_volume, Decimal(0))
    quantity = quantize(common * share)
    inputs = {
        **base,
        "building_volume": text(building_volume),
        "individual_volume": text(individual_volume),
        "common_volume": text(common),
        "cap": text(cap),
        "capped": quantity > cap,
    }
    return [_line(account, service, supplier, Method.COMMON_SHARE, min(quantity, cap), price, inputs)]


def _common_wastewater(
    building: BuildingInput, account: AccountInput, supplier: int, common: Sequence[Line], result: _Result
) -> list[Line]:
    water = [line for line in common if line.service in (ServiceCode.COMMON_COLD_WATER, ServiceCode.COMMON_HOT_WATER)]
    if not water:
        return []
    price = _price(building, account, ServiceCode.COMMON_WASTEWATER, 0, result)
    if price is None:
        return []
    inputs = {str(line.service): text(line.quantity) for line in water}
    quantity = sum((line.quantity for line in water), Decimal(0))
    return [_line(account, ServiceCode.COMMON_WASTEWATER, supplier, Method.WATER_SUM, quantity, price, inputs)]


# --- benefits ----------------------------------------------------------------------------------


def _benefits(building: BuildingInput, account: AccountInput, lines: Sequence[Line]) -> list[Line]:
    found: list[Line] = []
    for benefit in account.benefits:
        charged = [line for line in lines if line.service is benefit.service]
        if charged:
            line = _benefit_line(building, account, benefit, charged)
            if line is not None:
                found.append(line)
    return found


def _benefit_line(
    building: BuildingInput, account: AccountInput, benefit: BenefitInput, charged: Sequence[Line]
) -> Line | None:
    """``percent`` of the service's charge on the beneficiaries' share of it (persons of
    residents), no more than the norm allows them: the social norm of area for area-based
    services, the consumption norm for resources."""
    residents = account.residents or account.persons or 1
    persons = min(benefit.persons or residents, residents)
    base = sum(line.amount for line in charged)
    if base <= 0:
        return None
    if benefit.limit is LimitKind.SOCIAL_NORM:
        basis, unit = account.area, Unit.M2
        per_person = building.rates.social_area.get(residents, building.rates.social_area.get(0))
        limit = per_person * persons if per_person is not None else None
    else:
        basis, unit = sum((line.quantity for line in charged), Decimal(0)), RESOURCE_UNIT[benefit.service]
        norm = building.rates.norms.get(benefit.service)
        limit = norm * persons if norm is not None else None
    if basis <= 0:
        return None
    share = basis * persons / residents
    eligible = min(share, limit) if limit is not None else share
    amount = -to_kopecks(Decimal(base) / 100 * eligible / basis * benefit.percent / 100)
    inputs = {
        "percent": text(benefit.percent),
        "limit": benefit.limit.value,
        "persons": persons,
        "residents": residents,
        "basis": text(basis),
        "eligible": text(quantize(eligible)),
        "limit_quantity": text(limit) if limit is not None else None,
        "charged": base,
    }
    return Line(
        account_id=account.account_id,
        service=benefit.service,
        zone=0,
        supplier_id=charged[0].supplier_id,
        kind=LineKind.BENEFIT,
        method=Method.BENEFIT,
        quantity=quantize(eligible),
        unit=unit,
        price=None,
        multiplier=None,
        amount=amount,
        inputs=inputs,
        benefit_id=benefit.benefit_id,
        granted_by_id=benefit.granted_by_id,
    )
