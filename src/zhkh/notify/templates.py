"""What notifications say, in Russian (the default) and English. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from string import Formatter
from typing import Any

LANGUAGES = ("ru", "en")

# kind (or "kind/reporter" when the details say who reported it) -> language -> (subject, body).
# Placeholders come from the alarm's details plus {address}, {account} and {subject}; a missing
# one is shown as a dash, never an error.
ALARM_TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "leak": {
        "ru": (
            "Возможная протечка: счётчик {meter}",
            "Счётчик {meter} ({address}) непрерывно показывает расход более {hours} ч. Проверьте краны и трубы; при протечке перекройте воду и позвоните в аварийную службу.",
        ),
        "en": (
            "Possible leak: meter {meter}",
            "Meter {meter} ({address}) has shown continuous flow for more than {hours} h. Check taps and pipes; if water is leaking, shut it off and call the emergency service.",
        ),
    },
    # A leak the device itself reports (its own leak detection), rather than the flow rule.
    "leak/device": {
        "ru": (
            "Возможная протечка: счётчик {meter}",
            "Устройство {device} на счётчике {meter} ({address}) сообщает о протечке. Проверьте краны и трубы; при протечке перекройте воду и позвоните в аварийную службу.",
        ),
        "en": (
            "Possible leak: meter {meter}",
            "Device {device} on meter {meter} ({address}) reports a leak. Check taps and pipes; if water is leaking, shut it off and call the emergency service.",
        ),
    },
    "spike": {
        "ru": (
            "Необычно большой расход: счётчик {meter}",
            "Расход по счётчику {meter} ({address}) — {rate} в сутки, в {factor} раза выше обычного ({typical}). Проверьте показание или сантехнику.",
        ),
        "en": (
            "Unusually high use: meter {meter}",
            "Meter {meter} ({address}) shows {rate} a day, {factor} times the usual {typical}. Check the reading or the plumbing.",
        ),
    },
    "no_data": {
        "ru": (
            "Нет данных от счётчика {meter}",
            "Автоматический счётчик {meter} ({address}) не передаёт показания с {last_seen}.",
        ),
        "en": (
            "No data from meter {meter}",
            "Automatic meter {meter} ({address}) has sent no readings since {last_seen}.",
        ),
    },
    "tamper": {
        "ru": (
            "Вскрытие прибора {device}",
            "Устройство {device} (счётчик {meter}, {address}) сообщает о вскрытии или вмешательстве.",
        ),
        "en": ("Tampering on device {device}", "Device {device} (meter {meter}, {address}) reports tampering."),
    },
    "magnet": {
        "ru": (
            "Воздействие магнитом на прибор {device}",
            "Устройство {device} (счётчик {meter}, {address}) зафиксировало воздействие магнитом.",
        ),
        "en": ("Magnet on device {device}", "Device {device} (meter {meter}, {address}) detected a magnet."),
    },
    "low_battery": {
        "ru": (
            "Разряжена батарея устройства {device}",
            "У устройства {device} (счётчик {meter}, {address}) садится батарея; замените её, чтобы показания продолжали поступать.",
        ),
        "en": (
            "Low battery on device {device}",
            "Device {device} (meter {meter}, {address}) is running low on battery; replace it to keep readings coming.",
        ),
    },
    "verification_expiring": {
        "ru": (
            "Срок поверки счётчика {meter} истекает {until}",
            "Поверка счётчика {meter} ({address}) действительна до {until}. После этой даты начисление пойдёт по среднему, затем по нормативу с повышающим коэффициентом. Закажите поверку или замену.",
        ),
        "en": (
            "Meter {meter} verification expires on {until}",
            "The verification of meter {meter} ({address}) is valid until {until}. After that, charges use the average and then the norm with a multiplier. Order a verification or a replacement.",
        ),
    },
    "reading_missing": {
        "ru": (
            "Передайте показания счётчика {meter} до {window_end}",
            "Показания счётчика {meter} (лицевой счёт {account}, {address}) ещё не переданы. Приём показаний заканчивается {window_end}; без них начисление будет по среднему.",
        ),
        "en": (
            "Send the reading of meter {meter} by {window_end}",
            "No reading of meter {meter} (account {account}, {address}) has come yet. Readings are taken until {window_end}; without one, the charge uses the average.",
        ),
    },
}


class _Lenient(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "—"


def render_alarm(kind: str, language: str, values: Mapping[str, Any]) -> tuple[str, str]:
    texts = ALARM_TEXTS.get(f"{kind}/{values.get('reported_by')}") or ALARM_TEXTS.get(kind)
    if texts is None:
        return (f"Alarm: {kind}", ", ".join(f"{key}: {value}" for key, value in values.items()))
    subject, body = texts.get(language) or texts["ru"]
    filled = _Lenient({key: value for key, value in values.items() if value is not None})
    formatter = Formatter()
    return formatter.vformat(subject, (), filled), formatter.vformat(body, (), filled)
