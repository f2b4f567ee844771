"""A believable small town, generated deterministically: the same seed gives the same town, so
running the demo twice changes nothing.

Names, addresses and requisites are invented; INNs and bank accounts carry valid check digits
so they pass the same validation as real data.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from zhkh.core.requisites import with_account_key, with_inn_check_digits

TOWN = "г. Новоберёзовск"
MANAGER_INN = with_inn_check_digits("662300001")

_SURNAMES = [
    ("Иванов", "Иванова"),
    ("Смирнов", "Смирнова"),
    ("Кузнецов", "Кузнецова"),
    ("Попов", "Попова"),
    ("Васильев", "Васильева"),
    ("Петров", "Петрова"),
    ("Соколов", "Соколова"),
    ("Михайлов", "Михайлова"),
    ("Новиков", "Новикова"),
    ("Фёдоров", "Фёдорова"),
    ("Морозов", "Морозова"),
    ("Волков", "Волкова"),
    ("Алексеев", "Алексеева"),
    ("Лебедев", "Лебедева"),
    ("Семёнов", "Семёнова"),
    ("Егоров", "Егорова"),
    ("Павлов", "Павлова"),
    ("Козлов", "Козлова"),
    ("Степанов", "Степанова"),
    ("Николаев", "Николаева"),
    ("Орлов", "Орлова"),
    ("Андреев", "Андреева"),
    ("Макаров", "Макарова"),
    ("Никитин", "Никитина"),
    ("Захаров", "Захарова"),
    ("Зайцев", "Зайцева"),
    ("Соловьёв", "Соловьёва"),
    ("Борисов", "Борисова"),
]
_MEN = ["Александр", "Сергей", "Дмитрий", "Андрей", "Алексей", "Михаил", "Иван", "Николай", "Евгений", "Павел"]
_WOMEN = ["Елена", "Ольга", "Наталья", "Татьяна", "Ирина", "Светлана", "Анна", "Мария", "Екатерина", "Галина"]
_PATRONYMICS = [
    ("Александрович", "Александровна"),
    ("Сергеевич", "Сергеевна"),
    ("Иванович", "Ивановна"),
    ("Петрович", "Петровна"),
    ("Николаевич", "Николаевна"),
    ("Викторович", "Викторовна"),
]
MUNICIPALITY = "Муниципальное образование «Новоберёзовский городской округ»"

# Three banks (invented names, valid-format requisites) the organisations keep accounts with.
_BANKS = [
    ("046577001", "АО «Уральский расчётный банк»"),
    ("046577002", "ПАО «Банк Берёзовский»"),
    ("046577003", "АО «Северный кредит»"),
]


@dataclass(frozen=True)
class BuildingPlan:
    code: str
    street: str
    house: str
    entrances: int
    floors: int
    flats_per_floor: int
    built: int
    shops: int = 0
    # In old buildings some flats cannot take a meter (ПП 354: no multiplier then).
    meterless_share: float = 0.0


PLANS = [
    BuildingPlan("NB-001", "ул. Садовая", "12", entrances=4, floors=5, flats_per_floor=4, built=1978),
    BuildingPlan("NB-002", "пр. Строителей", "7к1", entrances=2, floors=9, flats_per_floor=4, built=1991, shops=2),
    BuildingPlan(
        "NB-003", "ул. Заводская", "3", entrances=5, floors=3, flats_per_floor=3, built=1956, meterless_share=0.2
    ),
]


@dataclass
class Town:
    organisations: list[dict[str, Any]] = field(default_factory=list)
    buildings: list[dict[str, Any]] = field(default_factory=list)
    premises: list[dict[str, Any]] = field(default_factory=list)
    owners: list[dict[str, Any]] = field(default_factory=list)


def _organisation(inn_prefix: str, name: str, role: str, bank: int, rng: random.Random) -> dict[str, Any]:
    inn = with_inn_check_digits(inn_prefix)
    bic, bank_name = _BANKS[bank]
    account = with_account_key(f"40702810{rng.randrange(10**12):012d}", bic)
    corr = with_account_key(f"301018100{'0' * 8}{bic[-3:]}", bic, correspondent=True)
    return {
        "inn": inn,
        "kpp": inn[:4] + "01001",
        "name": name,
        "role": role,
        "bank_account": account,
        "bic": bic,
        "bank_name": bank_name,
        "corr_account": corr,
    }


def _person(rng: random.Random, female: bool | None = None) -> str:
    female = rng.random() < 0.5 if female is None else female
    surname = rng.choice(_SURNAMES)[1 if female else 0]
    first = rng.choice(_WOMEN if female else _MEN)
    patronymic = rng.choice(_PATRONYMICS)[1 if female else 0]
    return f"{surname} {first} {patronymic}"


def _flat_area(rooms: int, rng: random.Random) -> Decimal:
    low, high = {1: (30, 38), 2: (42, 54), 3: (56, 72)}[rooms]
    return Decimal(rng.randrange(low * 10, high * 10)) / 10


def _owners(rng: random.Random, payer: str) -> list[tuple[str, str]]:
    """Who owns a flat and in what shares, as the register has it."""
    roll = rng.random()
    if roll < 0.08:
        return [(MUNICIPALITY, "1")]
    if roll < 0.55:
        return [(payer, "1")]
    if roll < 0.85:
        return [(payer, "1/2"), (_person(rng), "1/2")]
    if roll < 0.95:
        return [(payer, "1/3"), (_person(rng), "1/3"), (_person(rng), "1/3")]
    return [(payer, "3/4"), (_person(rng), "1/4")]


def _premises_of(
    plan: BuildingPlan, index: int, rng: random.Random
) -> Iterator[tuple[dict[str, Any], list[tuple[str, str]]]]:
    flat = 0
    for _entrance in range(plan.entrances):
        for _floor in range(plan.floors):
            for position in range(plan.flats_per_floor):
                flat += 1
                rooms = (1, 2, 3, 2)[position % 4]
                payer = _person(rng)
                owners = _owners(rng, payer)
                row = {
                    "account": f"5{index + 1:02d}0{flat:05d}",
                    "building_id": plan.code,
                    "premise": str(flat),
                    "area_m2": _flat_area(rooms, rng),
                    "residents": rng.choice((0, 1, 1, 2, 2, 2, 3, 3, 4, 5)) if rooms > 1 else rng.choice((0, 1, 1, 2)),
                    "payer": payer if owners[0][0] != MUNICIPALITY else f"{payer} (наниматель)",
                    "kind": "residential",
                    "meter_possible": "no" if rng.random() < plan.meterless_share else "yes",
                }
                yield row, owners
    for shop in range(plan.shops):
        owner = f"ООО «Магазин {('Берёзка', 'Продукты у дома')[shop % 2]}»"
        yield (
            {
                "account": f"5{index + 1:02d}9{shop + 1:05d}",
                "building_id": plan.code,
                "premise": f"н{shop + 1}",
                "area_m2": Decimal(rng.randrange(800, 1600)) / 10,
                "residents": 0,
                "payer": owner,
                "kind": "non_residential",
                "meter_possible": "yes",
            },
            [(owner, "1")],
        )


def build_town(seed: int = 2026) -> Town:
    rng = random.Random(seed)
    town = Town()
    town.organisations = [
        _organisation(MANAGER_INN[:9], "ООО «Управляющая компания „Берёзовый двор“»", "manager", 0, rng),
        _organisation("662300002", "АО «Новоберёзовский водоканал»", "supplier", 1, rng),
        _organisation("662300003", "АО «Теплосеть Новоберёзовска»", "supplier", 1, rng),
        _organisation("662300004", "АО «Энергосбыт Урала»", "supplier", 2, rng),
        _organisation("662300005", "ООО «Региональный оператор „Чистый город“»", "supplier", 2, rng),
        _organisation("662300006", "Фонд капитального ремонта общего имущества МКД", "supplier", 0, rng),
        {
            "inn": with_inn_check_digits("662300007"),
            "kpp": "662301001",
            "name": "ГКУ «Управление социальной политики по г. Новоберёзовску»",
            "role": "social_protection",
            "bank_account": "",
            "bic": "",
            "bank_name": "",
            "corr_account": "",
        },
    ]
    for index, plan in enumerate(PLANS):
        rows = list(_premises_of(plan, index, rng))
        total_area = sum((row["area_m2"] for row, _ in rows), Decimal(0))
        town.buildings.append(
            {
                "building_id": plan.code,
                "address": f"{TOWN}, {plan.street}, д. {plan.house}",
                "total_area_m2": total_area,
                "common_area_m2": (total_area * Decimal("0.18")).quantize(Decimal("0.1")),
                "manager_inn": MANAGER_INN,
            }
        )
        for row, owners in rows:
            town.premises.append(row)
            town.owners += [
                {"building_id": plan.code, "premise": row["premise"], "owner": owner, "share": share}
                for owner, share in owners
            ]
    return town
