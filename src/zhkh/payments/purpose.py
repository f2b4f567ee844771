"""Hints in a payment's purpose (НазначениеПлатежа): personal accounts, the period, services.

Pure: no I/O. The hints are candidates, not facts: the caller matches the accounts against the
accounts it knows (and the payer's details), and a payment that matches nothing goes to a review
queue. So this module prefers to find nothing over finding something wrong:

* an account is only taken after a label (``PersAcc=``, ``ЛС``, ``Л/С``, ``л.с.``, ``л/сч``,
  ``лицевой счёт №``, ``лиц. счет``, …), never from a bare number, and never when the number
  looks like an INN (10 or 12 digits), a bank account (20 digits) or a date;
* a period is ``PaymPeriod=MMYYYY`` (ГОСТ Р 56042, which banks copy from the bill's QR code into
  the purpose), else the human forms ``за 05.2026``, ``за 05/2026``, ``период 052026``,
  ``период 0526``, ``за май 2026`` (nominative or genitive month, any case), or a bare
  ``05.2026``; a month name after a day number (``от 15 мая 2026``) is a date, not a period.
  ``PaymPeriod`` wins; otherwise two different periods (``за апрель-май 2026``) give none, since
  the payment then does not say which month it is for;
* a service only from an explicit code such as ``service=cold_water`` (DOMAIN.md codes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from zhkh.tariffs.catalogue import ServiceCode

_MONTHS = {
    "январь": 1,
    "января": 1,
    "февраль": 2,
    "февраля": 2,
    "март": 3,
    "марта": 3,
    "апрель": 4,
    "апреля": 4,
    "май": 5,
    "мая": 5,
    "июнь": 6,
    "июня": 6,
    "июль": 7,
    "июля": 7,
    "август": 8,
    "августа": 8,
    "сентябрь": 9,
    "сентября": 9,
    "октябрь": 10,
    "октября": 10,
    "ноябрь": 11,
    "ноября": 11,
    "декабрь": 12,
    "декабря": 12,
}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_WORD_CHARS = r"[0-9A-Za-zА-Яа-яЁё./\\-]+"

# ГОСТ Р 56042 keys, in any case; values end at "|", ";" or a space.
_GOST = re.compile(r"(?<![\w])(PersAcc|PaymPeriod|service)\s*=\s*([^|;\s]*)", re.IGNORECASE)
_LABEL = re.compile(
    r"(?<![\w])(?:"
    r"лиц(?:ев\w*)?\.?\s*сч(?:[её]т\w*|\.)?"  # лицевой счёт, лицевого счета, лиц. счет, лиц.сч.
    r"|л\s?[./]?\s?с(?:ч(?:[её]т\w*)?)?\.?"  # ЛС, Л/С, л.с., л/сч, л/счет, лс.
    r")"
    r"[\s:№#-]*(?:N[\s:.]*)?"  # "№", "N", ":", "-" or spaces between the label and the number
    rf"({_WORD_CHARS})",
    re.IGNORECASE,
)
_PERIOD_WORD = r"(?<![\w])(?:период\w*(?:\s+оплаты)?|пер\.)\s*:?\s*"
# "за 05.2026", "за 5/2026", "период 05-2026"
_NUMERIC_PERIOD = re.compile(
    rf"(?:(?<![\w])за\s+(?:{_PERIOD_WORD})?|{_PERIOD_WORD})(\d{{1,2}})[./-](\d{{4}})(?![\d/-]|\.\d)", re.IGNORECASE
)
# "период 052026", "период 0526": digits only after the word период, where nothing else is meant
_DIGITS_PERIOD = re.compile(rf"{_PERIOD_WORD}(\d{{2}})(\d{{4}}|\d{{2}})(?![\d/-]|\.\d)", re.IGNORECASE)
_BARE_PERIOD = re.compile(r"(?<![\w./-])(0[1-9]|1[0-2])[./](20\d{2})(?![\w/-]|\.\d)")
_WORD_PERIOD = re.compile(
    rf"(?<![\w])(?:({_MONTH})\s*(?:-|–|—|,|\s+и)\s*)?({_MONTH})\s*(\d{{4}})(?!\d)",
    re.IGNORECASE,
)
_ACCOUNT = re.compile(r"^[0-9A-Za-zА-Яа-яЁё-]*\d[0-9A-Za-zА-Яа-яЁё-]*$")
_SERVICES = {code.value for code in ServiceCode}


@dataclass(frozen=True, slots=True)
class PurposeHints:
    accounts: tuple[str, ...]  # candidate personal accounts, in order of appearance, no repeats
    period: date | None  # the first day of the month paid for
    services: tuple[str, ...]  # service codes named explicitly


def account_candidate(token: str) -> str | None:
    """``token`` as a personal account, or None when it cannot be one (an INN, a bank account,
    a date or anything without a digit)."""
    token = token.rstrip(".-")
    if not _ACCOUNT.match(token):  # dots and slashes: a date or a period such as 05.2026
        return None
    if token.isdigit() and len(token) in (10, 12):
        return None  # an INN
    if token.isdigit() and len(token) >= 20:
        return None  # a bank account
    if len(token) > 32:
        return None
    return token


def _month(month: int, year: int) -> date | None:
    if 1 <= month <= 12 and 2000 <= year <= 2099:
        return date(year, month, 1)
    return None


def _gost_period(value: str) -> date | None:
    match = re.fullmatch(r"(\d{2})\.?(\d{4})", value)
    return _month(int(match.group(1)), int(match.group(2))) if match else None


def _human_periods(purpose: str) -> list[tuple[int, date]]:
    found: list[tuple[int, date]] = []
    taken: list[tuple[int, int]] = []
    for pattern in (_NUMERIC_PERIOD, _DIGITS_PERIOD):
        for match in pattern.finditer(purpose):
            month, year = match.groups()
            period = _month(int(month), int(year) + (2000 if len(year) == 2 else 0))
            if period:
                found.append((match.start(), period))
                taken.append(match.span())
    for match in _BARE_PERIOD.finditer(purpose):
        if not any(start <= match.start() < end for start, end in taken):
            period = _month(int(match.group(1)), int(match.group(2)))
            if period:
                found.append((match.start(), period))
    for match in _WORD_PERIOD.finditer(purpose):
        if re.search(r"\d\s*$", purpose[: match.start()]):
            continue  # "15 мая 2026" is a date
        year = int(match.group(3))
        for name in (match.group(1), match.group(2)):
            if name:
                period = _month(_MONTHS[name.lower()], year)
                if period:
                    found.append((match.start(), period))
    return sorted(found, key=lambda item: item[0])


def purpose_hints(purpose: str) -> PurposeHints:
    """The accounts, period and services a payment purpose names; see the module's notes."""
    accounts: list[tuple[int, str]] = []
    gost_periods: list[date] = []
    services: list[str] = []
    for match in _GOST.finditer(purpose):
        key, value = match.group(1).lower(), match.group(2)
        if key == "persacc":
            account = account_candidate(value)
            if account:
                accounts.append((match.start(), account))
        elif key == "paymperiod":
            period = _gost_period(value)
            if period:
                gost_periods.append(period)
        else:
            services.extend(code for code in value.lower().split(",") if code in _SERVICES)
    for match in _LABEL.finditer(purpose):
        account = account_candidate(match.group(1))
        if account:
            accounts.append((match.start(), account))

    distinct = list(dict.fromkeys(gost_periods or [period for _, period in _human_periods(purpose)]))
    return PurposeHints(
        accounts=tuple(dict.fromkeys(account for _, account in sorted(accounts, key=lambda item: item[0]))),
        period=distinct[0] if len(distinct) == 1 else None,
        services=tuple(dict.fromkeys(services)),
    )
