"""Every line of a bill in words a resident can check, in Russian or English. Pure: no I/O.

"Холодная вода (счётчик CW-1): показания 123,456 → 130,456 = 7,000 м³ × 55,12 ₽ = 385,84 ₽"
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from zhkh.tariffs.catalogue import NAMES, UNIT_NAMES, ServiceCode, Unit


@dataclass(frozen=True, slots=True)
class StoredLine:
    """A line as stored, with the names explain needs."""

    service: str
    zone: int
    kind: str
    method: str
    quantity: Decimal
    unit: str
    price: Decimal | None
    multiplier: Decimal | None
    amount: int
    inputs: Mapping[str, Any]
    supplier: str
    granted_by: str | None = None
    corrects_period: str | None = None


WORDS = {
    "ru": {
        "meter": "счётчик",
        "readings": "показания",
        "interpolated": "показания на границах периода рассчитаны по соседним",
        "estimate_deducted": "минус {volume} {unit}, начисленных ранее по среднему",
        "average": "по среднему за {periods} мес.",
        "no_reading": "показания не переданы",
        "out_of_order": "истёк срок поверки счётчика",
        "norm": "по нормативу",
        "norm_multiplied": "по нормативу с повышающим коэффициентом",
        "persons": "чел.",
        "absence": "с учётом отсутствия: {away} чел.-дн. из {total}",
        "building_meter": "по общедомовому счётчику",
        "cap": "не более норматива {cap} {unit}",
        "no_common": "не начисляется: общедомовой счётчик показал не больше, чем квартиры",
        "benefit": "Льгота {percent} %",
        "social_norm": "по социальной норме",
        "consumption_norm": "в пределах норматива",
        "of": "из",
        "recalculation": "Перерасчёт за {period}",
        "was": "было",
        "now": "стало",
        "total": "Итого",
        "reasons": {
            "new": "начисление появилось",
            "withdrawn": "начисление снято",
            "method": "изменился способ расчёта",
            "quantity": "изменился объём",
            "price": "изменился тариф",
            "multiplier": "изменился коэффициент",
            "amount": "изменилась сумма",
        },
        "zone": "зона",
        "supplier": "исполнитель",
        "cold_water": "холодная",
        "hot_water": "горячая",
        "common_cold_water": "холодная",
        "common_hot_water": "горячая",
    },
    "en": {
        "meter": "meter",
        "readings": "readings",
        "interpolated": "readings at the period's boundaries interpolated from the nearest",
        "estimate_deducted": "less {volume} {unit} billed before by average",
        "average": "by the average of {periods} months",
        "no_reading": "no readings submitted",
        "out_of_order": "meter verification expired",
        "norm": "by the norm",
        "norm_multiplied": "by the norm with the multiplier",
        "persons": "pers.",
        "absence": "allowing for absence: {away} person-days of {total}",
        "building_meter": "by the building meter",
        "cap": "at most the norm, {cap} {unit}",
        "no_common": "not billed: the building meter read no more than the premises",
        "benefit": "Benefit {percent} %",
        "social_norm": "by the social norm",
        "consumption_norm": "within the norm",
        "of": "of",
        "recalculation": "Recalculation of {period}",
        "was": "was",
        "now": "now",
        "total": "Total",
        "reasons": {
            "new": "a new charge",
            "withdrawn": "charge withdrawn",
            "method": "method changed",
            "quantity": "volume changed",
            "price": "tariff changed",
            "multiplier": "multiplier changed",
            "amount": "amount changed",
        },
        "zone": "zone",
        "supplier": "supplier",
        "cold_water": "cold",
        "hot_water": "hot",
        "common_cold_water": "cold",
        "common_hot_water": "hot",
    },
}


class Formatter:
    def __init__(self, language: str) -> None:
        if language not in WORDS:
            raise ValueError(f"no language {language!r}; ru or en")
        self.language = language
        self.words: dict[str, Any] = WORDS[language]
        self.comma = language == "ru"

    def number(self, value: Decimal | str | int, places: int | None = None) -> str:
        number = Decimal(value)
        if places is not None:
            number = number.quantize(Decimal(1).scaleb(-places))
        whole, _, fraction = format(number, "f").partition(".")
        sign = "-" if whole.startswith("-") else ""
        whole = whole.lstrip("-")
        grouped = " ".join(reversed([whole[max(i - 3, 0) : i] for i in range(len(whole), 0, -3)]))
        separator = "," if self.comma else "."
        return f"{sign}{grouped}{separator}{fraction}" if fraction else f"{sign}{grouped}"

    def quantity(self, value: Decimal | str) -> str:
        """At least three decimals, as meters are read ("7,000"), more when the value has them."""
        number = Decimal(value)
        return self.number(number, _places(number, 3))

    def money(self, kopecks: int) -> str:
        sign = "−" if kopecks < 0 else ""
        return f"{sign}{self.number(Decimal(abs(kopecks)) / 100, 2)} ₽"

    def rubles(self, price: Decimal) -> str:
        """A price with at least kopecks shown, more when it has them (a tariff of 7,1234 ₽)."""
        return f"{self.number(price, _places(price, 2))} ₽"

    def unit(self, unit: str) -> str:
        return UNIT_NAMES[self.language][Unit(unit)]

    def service(self, service: str) -> str:
        return NAMES[self.language][ServiceCode(service)]


def _places(value: Decimal, minimum: int) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(minimum, -exponent) if isinstance(exponent, int) else minimum


def explain_lines(lines: Sequence[StoredLine], language: str = "ru") -> list[str]:
    """One sentence per line and the total."""
    f = Formatter(language)
    sentences = [_sentence(f, line) for line in lines]
    total = sum(line.amount for line in lines)
    sentences.append(f"{f.words['total']}: {f.money(total)}")
    return sentences


def _sentence(f: Formatter, line: StoredLine) -> str:
    title = f.service(line.service)
    if line.zone:
        title += f" ({f.words['zone']} T{line.zone})"
    if line.kind == "benefit":
        return f"{title}: {_benefit(f, line)}"
    if line.kind == "recalculation":
        return f"{title}: {_recalculation(f, line)}"
    body = _METHODS.get(line.method, _generic)(f, line)
    return f"{title}: {body}"


def _priced(f: Formatter, line: StoredLine, quantity_text: str) -> str:
    assert line.price is not None
    multiplier = f" × {f.number(line.multiplier)}" if line.multiplier is not None else ""
    return f"{quantity_text}{multiplier} × {f.rubles(line.price)} = {f.money(line.amount)}"


def _q(f: Formatter, line: StoredLine, value: Decimal | str | None = None) -> str:
    """A quantity and its unit: meter-like (three decimals at least) unless it is an area."""
    number = value if value is not None else line.quantity
    shown = f.number(number) if line.unit in (Unit.M2, Unit.PERSON) else f.quantity(number)
    return f"{shown} {f.unit(line.unit)}"


def _meter(f: Formatter, line: StoredLine) -> str:
    inputs, w = line.inputs, f.words
    head = f"{w['meter']} {inputs.get('serial', '')}: "
    if "start" in inputs:
        head += f"{w['readings']} {f.quantity(inputs['start'])} → {f.quantity(inputs['end'])} = "
    if inputs.get("provenance") == "interpolated":
        head = f"{w['meter']} {inputs.get('serial', '')} ({w['interpolated']}): "
    if "billed_as_estimate" in inputs:
        deducted = w["estimate_deducted"].format(
            volume=f.quantity(inputs["billed_as_estimate"]), unit=f.unit(line.unit)
        )
        return head + f"{_q(f, line, inputs['volume'])}, {deducted} = " + _priced(f, line, _q(f, line))
    return head + _priced(f, line, _q(f, line))


def _average(f: Formatter, line: StoredLine) -> str:
    inputs, w = line.inputs, f.words
    why = w["out_of_order"] if inputs.get("reason") == "out_of_order" else w["no_reading"]
    return f"{w['average'].format(periods=inputs['periods'])} ({why}): " + _priced(f, line, _q(f, line))


def _norm(f: Formatter, line: StoredLine) -> str:
    inputs, w = line.inputs, f.words
    label = w["norm_multiplied"] if line.method == "norm_multiplied" else w["norm"]
    if "area" in inputs and "persons" not in inputs and "common_area" not in inputs:  # heating, formula 2
        basis = (
            f"{f.number(inputs['area'])} {f.unit('m2')} × {f.number(inputs['norm'])} {f.unit(line.unit)}/{f.unit('m2')}"
        )
    elif "common_area" in inputs:
        m2 = f.unit("m2")
        basis = (
            f"{f.number(inputs['norm'])} {f.unit(line.unit)}/{m2} × {f.number(inputs['common_area'])} {m2}"
            f" × {f.number(inputs['area'])} / {f.number(inputs['total_area'])} {m2}"
        )
    else:
        basis = f"{inputs['persons']} {w['persons']} × {f.number(inputs['norm'])} {f.unit(line.unit)}"
    if "absent_person_days" in inputs:
        total = int(inputs["persons"]) * int(inputs["days"])
        basis += f" ({w['absence'].format(away=inputs['absent_person_days'], total=total)})"
    return f"{label}: {basis} = " + _priced(f, line, _q(f, line))


def _area(f: Formatter, line: StoredLine) -> str:
    return _priced(f, line, _q(f, line))


def _persons(f: Formatter, line: StoredLine) -> str:
    inputs, w = line.inputs, f.words
    if "absent_person_days" in inputs:
        total = int(inputs["persons"]) * int(inputs["days"])
        note = w["absence"].format(away=inputs["absent_person_days"], total=total)
        return f"{inputs['persons']} {w['persons']} ({note}) = " + _priced(f, line, f.quantity(line.quantity))
    return _priced(f, line, f"{inputs['persons']} {w['persons']}")


def _building_share(f: Formatter, line: StoredLine) -> str:
    inputs, w = line.inputs, f.words
    basis = (
        f"{f.number(inputs['building_volume'])} {f.unit(line.unit)} × {f.number(inputs['area'])} {f.unit('m2')}"
        f" / {f.number(inputs['total_area'])} {f.unit('m2')}"
    )
    return f"{w['building_meter']}: {basis} = " + _priced(f, line, _q(f, line))


def _common_share(f: Formatter, line: StoredLine) -> str:
    inputs, w = line.inputs, f.words
    unit = f.unit(line.unit)
    readings = f"{f.number(inputs['building_volume'])} − {f.number(inputs['individual_volume'])} {unit}"
    if Decimal(inputs["common_volume"]) == 0:
        return f"{w['no_common']} ({readings}) = {f.money(0)}"
    basis = f"({readings}) × {f.number(inputs['area'])} / {f.number(inputs['total_area'])} {f.unit('m2')}"
    cap = f", {w['cap'].format(cap=f.quantity(inputs['cap']), unit=unit)}"
    return f"{basis}{cap} = " + _priced(f, line, _q(f, line))


def _water_sum(f: Formatter, line: StoredLine) -> str:
    w = line.inputs
    parts = " + ".join(f"{f.words.get(name, name)} {f.quantity(volume)}" for name, volume in w.items())
    return f"{parts} = " + _priced(f, line, _q(f, line))


def _generic(f: Formatter, line: StoredLine) -> str:
    return _priced(f, line, _q(f, line)) if line.price is not None else f.money(line.amount)


def _benefit(f: Formatter, line: StoredLine) -> str:
    inputs, w = line.inputs, f.words
    who = f" ({line.granted_by})" if line.granted_by else ""
    head = w["benefit"].format(percent=f.number(inputs["percent"])) + who
    limit = w[str(inputs["limit"])]
    basis = f"{_q(f, line, inputs['eligible'])} {w['of']} {_q(f, line, inputs['basis'])} {limit}"
    return f"{head}: {basis} = {f.money(line.amount)}"


def _recalculation(f: Formatter, line: StoredLine) -> str:
    inputs, w = line.inputs, f.words
    was, now = inputs["was"], inputs["now"]
    reasons = ", ".join(w["reasons"].get(code, code) for code in inputs.get("changes", []))
    before = f"{w['was']} {_q(f, line, was['quantity'])} = {f.money(int(was['amount']))}"
    after = f"{w['now']} {_q(f, line, now['quantity'])} = {f.money(int(now['amount']))}"
    sign = "+" if line.amount > 0 else ""
    head = w["recalculation"].format(period=line.corrects_period)
    return f"{head} ({reasons}): {before}, {after}: {sign}{f.money(line.amount)}"


_METHODS = {
    "meter": _meter,
    "average": _average,
    "norm": _norm,
    "norm_multiplied": _norm,
    "area": _area,
    "persons": _persons,
    "building_meter_share": _building_share,
    "common_share": _common_share,
    "water_sum": _water_sum,
}
