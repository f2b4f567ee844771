"""The ПП 354 rules, one worked example each. The expected figures are computed by hand in each
docstring, not taken from the code."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D  # noqa: N817 - the worked examples read better short
from typing import Any

from zhkh.billing.rules import (
    AccountInput,
    BenefitInput,
    BuildingInput,
    LimitKind,
    Line,
    LineKind,
    MeterZone,
    Method,
    Price,
    Rates,
    bill_building,
)
from zhkh.tariffs.catalogue import ServiceCode as S
from zhkh.tariffs.catalogue import Unit

MANAGER, WATER_CO, SOCIAL = 1, 2, 3
M3 = Unit.M3


def rates(**overrides: Any) -> Rates:
    values: dict[str, Any] = {
        "suppliers": {S.COLD_WATER: WATER_CO},
        "prices": {(S.COLD_WATER, 0): Price(D("55.12"), M3)},
        "norms": {S.COLD_WATER: D("6.935")},
        "social_area": {1: D("33"), 2: D("21"), 0: D("18")},
        "multipliers": {S.COLD_WATER: D("3")},
    }
    return Rates(**(values | overrides))


def account(**overrides: Any) -> AccountInput:
    values: dict[str, Any] = {"account_id": 10, "area": D("45.6"), "residents": 3, "owners": 1, "meter_possible": True}
    return AccountInput(**(values | overrides))


def building(*accounts: AccountInput, **overrides: Any) -> BuildingInput:
    values: dict[str, Any] = {
        "building_id": 1,
        "total_area": D("1000"),
        "common_area": D("200"),
        "days_in_period": 30,
        "rates": rates(),
        "accounts": accounts or (account(),),
    }
    return BuildingInput(**(values | overrides))


def cold_meter(**overrides: Any) -> MeterZone:
    values: dict[str, Any] = {
        "meter_id": 7,
        "serial": "CW-1",
        "service": S.COLD_WATER,
        "zone": 1,
        "zones": 1,
        "provenance": "reading",
        "volume": D("7"),
        "start": D("123.456"),
        "end": D("130.456"),
    }
    return MeterZone(**(values | overrides))


def lines_of(b: BuildingInput, service: S | None = None) -> list[Line]:
    lines, problems = bill_building(b)
    assert problems == []
    return [line for line in lines if service is None or line.service is service]


def only(b: BuildingInput, service: S) -> Line:
    found = lines_of(b, service)
    assert len(found) == 1, found
    return found[0]


def test_by_meter_formula_1() -> None:
    """123.456 → 130.456 = 7 m³ × 55.12 = 385.84 ₽."""
    line = only(building(account(meters=(cold_meter(),))), S.COLD_WATER)
    assert (line.method, line.quantity, line.price, line.amount) == (Method.METER, D("7"), D("55.12"), 38584)
    assert line.inputs["start"] == "123.456"
    assert line.inputs["end"] == "130.456"
    assert line.meter_id == 7
    assert line.supplier_id == WATER_CO


def test_two_zone_electricity_each_zone_at_its_price() -> None:
    """t1 150 kWh × 7.12 = 1068.00 ₽; t2 80 kWh × 3.48 = 278.40 ₽."""
    prices = {(S.ELECTRICITY, 1): Price(D("7.12"), Unit.KWH), (S.ELECTRICITY, 2): Price(D("3.48"), Unit.KWH)}
    meters = tuple(
        cold_meter(service=S.ELECTRICITY, serial="EL", zones=2, zone=zone, volume=D(volume), start=None, end=None)
        for zone, volume in ((1, "150"), (2, "80"))
    )
    b = building(account(meters=meters), rates=rates(suppliers={S.ELECTRICITY: MANAGER}, prices=prices))
    found = lines_of(b, S.ELECTRICITY)
    assert [(line.zone, line.amount) for line in found] == [(1, 106800), (2, 27840)]


def test_missing_reading_is_billed_by_the_average_of_up_to_six_periods() -> None:
    """History 6, 7, 8, 5, 6, 7 (and an older 100 left out): 39 / 6 = 6.5 m³ × 55.12 = 358.28 ₽."""
    history = tuple(D(v) for v in ("6", "7", "8", "5", "6", "7", "100"))
    meter = cold_meter(provenance="missing", volume=None, history=history)
    line = only(building(account(meters=(meter,))), S.COLD_WATER)
    assert (line.method, line.quantity, line.amount) == (Method.AVERAGE, D("6.5"), 35828)
    assert line.inputs["periods"] == 6


def test_the_average_is_rounded_to_a_millionth() -> None:
    """(1 + 1 + 2) / 3 = 1.333333 m³ × 55.12 = 73.493315 → 73.49 ₽."""
    meter = cold_meter(provenance="missing", volume=None, history=(D(1), D(1), D(2)))
    line = only(building(account(meters=(meter,))), S.COLD_WATER)
    assert (line.quantity, line.amount) == (D("1.333333"), 7349)


def test_after_three_estimated_periods_the_norm_without_multiplier() -> None:
    """Fourth period without readings: 3 persons × 6.935 = 20.805 m³ × 55.12 = 1146.77 ₽ (no K)."""
    meter = cold_meter(provenance="missing", volume=None, history=(D(1),) * 6, missing_streak=3)
    line = only(building(account(meters=(meter,))), S.COLD_WATER)
    assert (line.method, line.quantity, line.multiplier, line.amount) == (Method.NORM, D("20.805"), None, 114677)


def test_a_young_meter_without_three_periods_of_history_goes_to_the_norm() -> None:
    meter = cold_meter(provenance="missing", volume=None, history=(D(1), D(2)))
    assert only(building(account(meters=(meter,))), S.COLD_WATER).method is Method.NORM


def test_out_of_order_meter_average_then_norm_times_multiplier() -> None:
    """Verification expired 4 periods ago: 3 × 6.935 = 20.805 m³ × 3 × 55.12 = 3440.3148 → 3440.31 ₽."""
    history = (D(5),) * 6
    early = cold_meter(out_of_order_periods=2, history=history)
    assert only(building(account(meters=(early,))), S.COLD_WATER).method is Method.AVERAGE
    late = cold_meter(out_of_order_periods=4, history=history)
    line = only(building(account(meters=(late,))), S.COLD_WATER)
    assert (line.method, line.quantity, line.multiplier, line.amount) == (
        Method.NORM_MULTIPLIED,
        D("20.805"),
        D("3"),
        344031,
    )


def test_no_meter_where_possible_norm_times_multiplier_and_where_impossible_plain_norm() -> None:
    """Possible: 3 × 6.935 × 3 × 55.12 = 3440.31 ₽. Impossible: 3 × 6.935 × 55.12 = 1146.77 ₽."""
    possible = only(building(account()), S.COLD_WATER)
    assert (possible.method, possible.amount, possible.inputs["reason"]) == (
        Method.NORM_MULTIPLIED,
        344031,
        "no_meter_possible",
    )
    impossible = only(building(account(meter_possible=False)), S.COLD_WATER)
    assert (impossible.method, impossible.amount) == (Method.NORM, 114677)


def test_nobody_registered_owners_are_counted() -> None:
    """0 residents, 2 owners, no meter possible: 2 × 6.935 = 13.87 m³ × 55.12 = 764.51 ₽."""
    line = only(building(account(residents=0, owners=2, meter_possible=False)), S.COLD_WATER)
    assert (line.quantity, line.amount) == (D("13.87"), 76451)


def test_temporary_absence_reduces_per_person_norms_by_the_person_days_away() -> None:
    """Meter impossible, 3 residents, 30 days. All three away 10 full days (30 person-days):
    3 × 6.935 × (90 − 30) / 90 = 13.87 m³ × 55.12 = 764.51 ₽. One away 10 days:
    20.805 × 80 / 90 = 18.493333 m³ × 55.12 = 1019.35 ₽ (1019.352515). Where a meter is possible
    absence changes nothing."""
    line = only(building(account(meter_possible=False, absent_person_days=30)), S.COLD_WATER)
    assert (line.quantity, line.amount, line.inputs["absent_person_days"]) == (D("13.87"), 76451, 30)
    one = only(building(account(meter_possible=False, absent_person_days=10)), S.COLD_WATER)
    assert (one.quantity, one.amount) == (D("18.493333"), 101935)
    metered = only(building(account(absent_person_days=30)), S.COLD_WATER)
    assert metered.amount == 344031


def test_late_reading_after_estimates_is_billed_net_of_them() -> None:
    """Two periods billed at the 6.5 m³ average (13 m³); the reading now covers three periods,
    30 m³: billed 30 − 13 = 17 m³ × 55.12 = 937.04 ₽."""
    meter = cold_meter(volume=D("30"), spans_missing=True, billed_estimates=D("13"))
    line = only(building(account(meters=(meter,))), S.COLD_WATER)
    assert (line.quantity, line.amount, line.inputs["billed_as_estimate"]) == (D("17"), 93704, "13")


def test_maintenance_capital_repair_and_waste() -> None:
    """45.6 m² × 32.40 = 1477.44 ₽; × 14.27 = 650.712 → 650.71 ₽; waste 3 persons × 185.30 = 555.90 ₽."""
    prices = {
        (S.MAINTENANCE, 0): Price(D("32.40"), Unit.M2),
        (S.CAPITAL_REPAIR, 0): Price(D("14.27"), Unit.M2),
        (S.WASTE, 0): Price(D("185.30"), Unit.PERSON),
    }
    suppliers = {S.MAINTENANCE: MANAGER, S.CAPITAL_REPAIR: MANAGER, S.WASTE: MANAGER}
    found = lines_of(building(rates=rates(prices=prices, suppliers=suppliers)))
    assert [(line.service, line.method, line.amount) for line in found] == [
        (S.MAINTENANCE, Method.AREA, 147744),
        (S.CAPITAL_REPAIR, Method.AREA, 65071),
        (S.WASTE, Method.PERSONS, 55590),
    ]


def test_heating_formula_2_and_formula_3() -> None:
    """Formula 2: 45.6 m² × 0.0208 Gcal/m² = 0.94848 Gcal × 2987.45 = 2833.54 ₽ (2688.705 + 144.8316 = 2833.5366).
    Formula 3: building 120 Gcal × 45.6 / 1000 = 5.472 Gcal × 2987.45 = 16347.33 ₽ (16347.3264)."""
    heating = rates(
        suppliers={S.HEATING: MANAGER},
        prices={(S.HEATING, 0): Price(D("2987.45"), Unit.GCAL)},
        norms={S.HEATING: D("0.0208")},
    )
    by_norm = only(building(rates=heating), S.HEATING)
    assert (by_norm.method, by_norm.quantity, by_norm.amount) == (Method.NORM, D("0.94848"), 283354)
    by_meter = only(building(rates=heating, building_meters={S.COLD_WATER: None, S.HEATING: D("120")}), S.HEATING)
    assert (by_meter.method, by_meter.quantity, by_meter.amount) == (Method.BUILDING_METER_SHARE, D("5.472"), 1634733)


def test_wastewater_is_the_sum_of_both_waters() -> None:
    """Cold 7 m³ by meter + hot 20.805 m³... here hot by meter 3 m³: 10 m³ × 41.36 = 413.60 ₽."""
    meters = (cold_meter(), cold_meter(meter_id=8, serial="HW-1", service=S.HOT_WATER, volume=D(3)))
    r = rates(
        suppliers={S.COLD_WATER: WATER_CO, S.HOT_WATER: WATER_CO, S.WASTEWATER: WATER_CO},
        prices={
            (S.COLD_WATER, 0): Price(D("55.12"), M3),
            (S.HOT_WATER, 0): Price(D("242.18"), M3),
            (S.WASTEWATER, 0): Price(D("41.36"), M3),
        },
    )
    line = only(building(account(meters=meters), rates=r), S.WASTEWATER)
    assert (line.method, line.quantity, line.amount) == (Method.WATER_SUM, D("10"), 41360)
    assert line.inputs == {"cold_water": "7", "hot_water": "3"}


def common_rates() -> Rates:
    return rates(
        suppliers={S.COLD_WATER: WATER_CO, S.COMMON_COLD_WATER: WATER_CO},
        prices={(S.COLD_WATER, 0): Price(D("55.12"), M3), (S.COMMON_COLD_WATER, 0): Price(D("55.12"), M3)},
        norms={S.COLD_WATER: D("6.935"), S.COMMON_COLD_WATER: D("0.0269")},
    )


def test_common_property_share_capped_by_the_norm() -> None:
    """Two premises, 400 + 600 m² of 1000, common area 200 m², both read 10 m³. Building meter
    25 m³: V_common = 25 − 20 = 5 m³; shares 2 and 3 m³; caps 0.0269 × 200 × 0.4 = 2.152 and
    3.228 m³: not capped. 2 × 55.12 = 110.24 ₽ and 3 × 55.12 = 165.36 ₽.
    Building meter 40 m³: V_common 20 → shares 8 and 12 m³, capped to 2.152 (118.62 ₽: 118.61824)
    and 3.228 (177.93 ₽: 177.92736)."""
    a = account(account_id=1, area=D(400), meters=(cold_meter(volume=D(10)),))
    b = account(account_id=2, area=D(600), meters=(cold_meter(meter_id=9, volume=D(10)),))
    low = lines_of(building(a, b, rates=common_rates(), building_meters={S.COLD_WATER: D(25)}), S.COMMON_COLD_WATER)
    assert [(line.method, line.quantity, line.amount) for line in low] == [
        (Method.COMMON_SHARE, D(2), 11024),
        (Method.COMMON_SHARE, D(3), 16536),
    ]
    high = lines_of(building(a, b, rates=common_rates(), building_meters={S.COLD_WATER: D(40)}), S.COMMON_COLD_WATER)
    assert [(line.quantity, line.amount, line.inputs["capped"]) for line in high] == [
        (D("2.152"), 11862, True),
        (D("3.228"), 17793, True),
    ]


def test_common_property_negative_is_not_billed_and_without_building_meter_by_norm() -> None:
    """Building meter 15 m³ < 20 m³ individual: 0. No building meter: the cap, 2.152 m³ = 118.62 ₽."""
    a = account(account_id=1, area=D(400), meters=(cold_meter(volume=D(10)),))
    b = account(account_id=2, area=D(600), meters=(cold_meter(meter_id=9, volume=D(10)),))
    negative = lines_of(
        building(a, b, rates=common_rates(), building_meters={S.COLD_WATER: D(15)}), S.COMMON_COLD_WATER
    )
    assert [(line.quantity, line.amount) for line in negative] == [(D(0), 0), (D(0), 0)]
    by_norm = lines_of(building(a, b, rates=common_rates()), S.COMMON_COLD_WATER)
    assert [(line.method, line.amount) for line in by_norm] == [(Method.NORM, 11862), (Method.NORM, 17793)]


def test_area_benefit_limited_by_the_social_norm() -> None:
    """One resident, 45.6 m², maintenance 45.6 × 32.40 = 1477.44 ₽; social norm 33 m²; 50 %:
    1477.44 × 33 / 45.6 × 0.5 = 534.60 ₽ off."""
    benefit = BenefitInput(1, S.MAINTENANCE, D(50), LimitKind.SOCIAL_NORM, None, SOCIAL)
    r = rates(suppliers={S.MAINTENANCE: MANAGER}, prices={(S.MAINTENANCE, 0): Price(D("32.40"), Unit.M2)})
    found = lines_of(building(account(residents=1, benefits=(benefit,)), rates=r))
    charge, off = found
    assert charge.amount == 147744
    assert (off.kind, off.method, off.amount, off.granted_by_id, off.supplier_id) == (
        LineKind.BENEFIT,
        Method.BENEFIT,
        -53460,
        SOCIAL,
        MANAGER,
    )
    assert off.quantity == D(33)


def test_resource_benefit_for_one_of_three_residents_limited_by_the_norm() -> None:
    """3 residents read 30 m³ (1653.60 ₽); one beneficiary: share 10 m³, norm 6.935 m³ → 6.935;
    30 %: 1653.60 × 6.935 / 30 × 0.3 = 114.68 ₽ (114.6775…) off."""
    benefit = BenefitInput(2, S.COLD_WATER, D(30), LimitKind.CONSUMPTION_NORM, 1, SOCIAL)
    b = building(account(meters=(cold_meter(volume=D(30)),), benefits=(benefit,)))
    off = [line for line in lines_of(b) if line.kind is LineKind.BENEFIT]
    assert [(line.quantity, line.amount) for line in off] == [(D("6.935"), -11468)]


def test_no_tariff_or_no_supplier_is_a_problem_and_the_rest_is_billed() -> None:
    r = rates(
        suppliers={S.COLD_WATER: WATER_CO, S.MAINTENANCE: MANAGER},
        prices={(S.MAINTENANCE, 0): Price(D("32.40"), Unit.M2)},
    )
    lines, problems = bill_building(building(account(meters=(cold_meter(service=S.GAS),)), rates=r))
    assert [line.service for line in lines] == [S.MAINTENANCE]
    assert [(p.service, p.code) for p in problems] == [(S.COLD_WATER, "no_tariff"), (S.GAS, "no_supplier")]


def test_every_line_is_rounded_half_up_to_the_kopeck() -> None:
    """0.5 kopeck rounds up: 1 m³ × 0.005 ₽ = 0.005 → 0.01 ₽; 1 m³ × 0.0149 → 0.01 ₽."""
    half = rates(prices={(S.COLD_WATER, 0): Price(D("0.005"), M3)})
    assert only(building(account(meters=(cold_meter(volume=D(1)),)), rates=half), S.COLD_WATER).amount == 1
    below = replace(half, prices={(S.COLD_WATER, 0): Price(D("0.0149"), M3)})
    assert only(building(account(meters=(cold_meter(volume=D(1)),)), rates=below), S.COLD_WATER).amount == 1
