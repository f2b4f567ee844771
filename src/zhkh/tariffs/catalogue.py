"""The services of a bill and their units (DOMAIN.md codes). Pure: no I/O.

The catalogue is law and convention, not regional data: which services exist, what they are
measured in and what they are called on a bill. Prices, norms and multipliers are data.
"""

from __future__ import annotations

from enum import StrEnum


class ServiceCode(StrEnum):
    MAINTENANCE = "maintenance"  # содержание жилого помещения, per m²
    CAPITAL_REPAIR = "capital_repair"  # взнос на капитальный ремонт, per m²
    COLD_WATER = "cold_water"
    HOT_WATER = "hot_water"
    WASTEWATER = "wastewater"
    ELECTRICITY = "electricity"
    HEATING = "heating"
    GAS = "gas"
    WASTE = "waste"  # обращение с ТКО, per person or per m²
    COMMON_COLD_WATER = "common_cold_water"  # КР на СОИ
    COMMON_HOT_WATER = "common_hot_water"
    COMMON_WASTEWATER = "common_wastewater"
    COMMON_ELECTRICITY = "common_electricity"


class Unit(StrEnum):
    M3 = "m3"
    KWH = "kWh"
    GCAL = "Gcal"
    M2 = "m2"
    PERSON = "person"


# What a norm is about besides services: the social norm of living area per person, which limits
# area-based benefits (e.g. 33 m² for one, 21 m² each for two, 18 m² each for three or more).
SOCIAL_AREA = "social_area"

RESOURCE_UNIT = {
    ServiceCode.COLD_WATER: Unit.M3,
    ServiceCode.HOT_WATER: Unit.M3,
    ServiceCode.WASTEWATER: Unit.M3,
    ServiceCode.ELECTRICITY: Unit.KWH,
    ServiceCode.HEATING: Unit.GCAL,
    ServiceCode.GAS: Unit.M3,
    ServiceCode.COMMON_COLD_WATER: Unit.M3,
    ServiceCode.COMMON_HOT_WATER: Unit.M3,
    ServiceCode.COMMON_WASTEWATER: Unit.M3,
    ServiceCode.COMMON_ELECTRICITY: Unit.KWH,
}
# The units a tariff of each service may be priced in.
TARIFF_UNITS: dict[ServiceCode, tuple[Unit, ...]] = {
    **{service: (unit,) for service, unit in RESOURCE_UNIT.items()},
    ServiceCode.MAINTENANCE: (Unit.M2,),
    ServiceCode.CAPITAL_REPAIR: (Unit.M2,),
    ServiceCode.WASTE: (Unit.PERSON, Unit.M2),
}
# The unit of each norm: a resource per person a month; heating per m² of the premises; КР на СОИ
# per m² of the common property; the social norm of area in m² per person.
NORM_UNITS: dict[str, tuple[Unit, Unit]] = {
    ServiceCode.COLD_WATER: (Unit.M3, Unit.PERSON),
    ServiceCode.HOT_WATER: (Unit.M3, Unit.PERSON),
    ServiceCode.WASTEWATER: (Unit.M3, Unit.PERSON),
    ServiceCode.ELECTRICITY: (Unit.KWH, Unit.PERSON),
    ServiceCode.GAS: (Unit.M3, Unit.PERSON),
    ServiceCode.HEATING: (Unit.GCAL, Unit.M2),
    ServiceCode.COMMON_COLD_WATER: (Unit.M3, Unit.M2),
    ServiceCode.COMMON_HOT_WATER: (Unit.M3, Unit.M2),
    ServiceCode.COMMON_WASTEWATER: (Unit.M3, Unit.M2),
    ServiceCode.COMMON_ELECTRICITY: (Unit.KWH, Unit.M2),
    SOCIAL_AREA: (Unit.M2, Unit.PERSON),
}
# The resource each КР на СОИ service is the common part of (wastewater: the sum of both waters).
COMMON_OF = {
    ServiceCode.COMMON_COLD_WATER: ServiceCode.COLD_WATER,
    ServiceCode.COMMON_HOT_WATER: ServiceCode.HOT_WATER,
    ServiceCode.COMMON_ELECTRICITY: ServiceCode.ELECTRICITY,
}

_UNIT_ALIASES = {
    **{unit.value.lower(): unit for unit in Unit},
    "м3": Unit.M3,
    "м³": Unit.M3,
    "куб.м": Unit.M3,
    "кубометр": Unit.M3,
    "квт·ч": Unit.KWH,
    "квт*ч": Unit.KWH,
    "квтч": Unit.KWH,
    "квт.ч": Unit.KWH,
    "kwh": Unit.KWH,
    "гкал": Unit.GCAL,
    "м2": Unit.M2,
    "м²": Unit.M2,
    "кв.м": Unit.M2,
    "чел": Unit.PERSON,
    "чел.": Unit.PERSON,
    "человек": Unit.PERSON,
    "persons": Unit.PERSON,
}

_SERVICE_ALIASES = {
    **{service.value: service for service in ServiceCode},
    "содержание": ServiceCode.MAINTENANCE,
    "содержание жилого помещения": ServiceCode.MAINTENANCE,
    "капремонт": ServiceCode.CAPITAL_REPAIR,
    "капитальный ремонт": ServiceCode.CAPITAL_REPAIR,
    "хвс": ServiceCode.COLD_WATER,
    "холодная вода": ServiceCode.COLD_WATER,
    "гвс": ServiceCode.HOT_WATER,
    "горячая вода": ServiceCode.HOT_WATER,
    "водоотведение": ServiceCode.WASTEWATER,
    "электроэнергия": ServiceCode.ELECTRICITY,
    "отопление": ServiceCode.HEATING,
    "газ": ServiceCode.GAS,
    "тко": ServiceCode.WASTE,
    "вывоз тко": ServiceCode.WASTE,
}

NAMES = {
    "ru": {
        ServiceCode.MAINTENANCE: "Содержание жилого помещения",
        ServiceCode.CAPITAL_REPAIR: "Взнос на капитальный ремонт",
        ServiceCode.COLD_WATER: "Холодная вода",
        ServiceCode.HOT_WATER: "Горячая вода",
        ServiceCode.WASTEWATER: "Водоотведение",
        ServiceCode.ELECTRICITY: "Электроэнергия",
        ServiceCode.HEATING: "Отопление",
        ServiceCode.GAS: "Газ",
        ServiceCode.WASTE: "Обращение с ТКО",
        ServiceCode.COMMON_COLD_WATER: "Холодная вода на СОИ",
        ServiceCode.COMMON_HOT_WATER: "Горячая вода на СОИ",
        ServiceCode.COMMON_WASTEWATER: "Водоотведение на СОИ",
        ServiceCode.COMMON_ELECTRICITY: "Электроэнергия на СОИ",
    },
    "en": {
        ServiceCode.MAINTENANCE: "Maintenance",
        ServiceCode.CAPITAL_REPAIR: "Capital repair contribution",
        ServiceCode.COLD_WATER: "Cold water",
        ServiceCode.HOT_WATER: "Hot water",
        ServiceCode.WASTEWATER: "Wastewater",
        ServiceCode.ELECTRICITY: "Electricity",
        ServiceCode.HEATING: "Heating",
        ServiceCode.GAS: "Gas",
        ServiceCode.WASTE: "Solid waste",
        ServiceCode.COMMON_COLD_WATER: "Cold water, common property",
        ServiceCode.COMMON_HOT_WATER: "Hot water, common property",
        ServiceCode.COMMON_WASTEWATER: "Wastewater, common property",
        ServiceCode.COMMON_ELECTRICITY: "Electricity, common property",
    },
}
UNIT_NAMES = {
    "ru": {Unit.M3: "м³", Unit.KWH: "кВт·ч", Unit.GCAL: "Гкал", Unit.M2: "м²", Unit.PERSON: "чел."},
    "en": {Unit.M3: "m³", Unit.KWH: "kWh", Unit.GCAL: "Gcal", Unit.M2: "m²", Unit.PERSON: "pers."},
}


def parse_service(text: str) -> ServiceCode:
    service = _SERVICE_ALIASES.get(" ".join(text.strip().lower().split()))
    if service is None:
        raise ValueError(f"unknown service {text!r}; expected one of {', '.join(ServiceCode)}")
    return service


def parse_unit(text: str) -> Unit:
    unit = _UNIT_ALIASES.get(text.strip().lower().replace(" ", ""))
    if unit is None:
        raise ValueError(f"unknown unit {text!r}; expected one of {', '.join(Unit)} (or м3, кВт·ч, Гкал, м2, чел)")
    return unit


def parse_norm_unit(text: str) -> tuple[Unit, Unit]:
    """ "m3/person", "м3/чел", "Гкал/м2" -> (quantity unit, per unit)."""
    quantity, slash, per = text.partition("/")
    if not slash:
        raise ValueError(f"a norm's unit is a quantity per unit, like m3/person or Гкал/м2, got {text!r}")
    return parse_unit(quantity), parse_unit(per)
