"""Russian payment requisites: INN, KPP, BIC and bank account numbers, with their check digits.

Pure: no I/O. The check-digit rules are those of the Federal Tax Service (INN) and of the Bank of
Russia (the control key of an account, Положение ЦБ РФ №579-П, appendix on the key calculation).
"""

from __future__ import annotations

import re

_INN10_WEIGHTS = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12_WEIGHTS_11 = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12_WEIGHTS_12 = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_ACCOUNT_WEIGHTS = ((7, 1, 3) * 8)[:23]  # 3 digits from the BIC, then the 20 of the account
_KPP = re.compile(r"^\d{4}[\dA-Z]{2}\d{3}$")


def _weighted_check(digits: str, weights: tuple[int, ...]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights, strict=False)) % 11 % 10


def inn_problem(inn: str) -> str | None:
    """Why ``inn`` is not a valid INN, or None when it is."""
    if not inn.isdigit() or len(inn) not in (10, 12):
        return f"INN must be 10 digits (organisation) or 12 (individual), got {inn!r}"
    if len(inn) == 10:
        valid = _weighted_check(inn, _INN10_WEIGHTS) == int(inn[9])
    else:
        valid = _weighted_check(inn, _INN12_WEIGHTS_11) == int(inn[10]) and _weighted_check(
            inn, _INN12_WEIGHTS_12
        ) == int(inn[11])
    return None if valid else f"INN {inn} has a wrong check digit"


def kpp_problem(kpp: str) -> str | None:
    if not _KPP.match(kpp):
        return f"KPP must be 9 characters (4 digits, 2 digits or capital letters, 3 digits), got {kpp!r}"
    return None


def bic_problem(bic: str) -> str | None:
    if not (bic.isdigit() and len(bic) == 9):
        return f"BIC must be 9 digits, got {bic!r}"
    return None


def _account_key_ok(prefix3: str, account: str) -> bool:
    digits = prefix3 + account
    return sum(int(d) * w % 10 for d, w in zip(digits, _ACCOUNT_WEIGHTS, strict=True)) % 10 == 0


def bank_account_problem(account: str, bic: str) -> str | None:
    """A settlement account (расчётный счёт) checked against the BIC of its bank."""
    if not (account.isdigit() and len(account) == 20):
        return f"bank account must be 20 digits, got {account!r}"
    if bic_problem(bic):
        return None  # the BIC is reported on its own; the key cannot be checked without it
    # Accounts opened at a Bank of Russia unit (BIC ending 000-002) are keyed like corr accounts.
    prefixes = [bic[-3:]] + (["0" + bic[4:6]] if bic[-3:] in ("000", "001", "002") else [])
    if not any(_account_key_ok(prefix, account) for prefix in prefixes):
        return f"bank account {account} does not match BIC {bic} (wrong control key)"
    return None


def corr_account_problem(corr_account: str, bic: str) -> str | None:
    """A correspondent account (корр. счёт) of a bank, checked against its BIC."""
    if not (corr_account.isdigit() and len(corr_account) == 20):
        return f"correspondent account must be 20 digits, got {corr_account!r}"
    if not corr_account.startswith("301"):
        return f"correspondent account must start with 301, got {corr_account!r}"
    if bic_problem(bic):
        return None
    if not _account_key_ok("0" + bic[4:6], corr_account):
        return f"correspondent account {corr_account} does not match BIC {bic} (wrong control key)"
    return None


def with_inn_check_digits(prefix: str) -> str:
    """Complete a 9-digit (organisation) or 10-digit (individual) prefix to a valid INN."""
    if len(prefix) == 9:
        return prefix + str(_weighted_check(prefix, _INN10_WEIGHTS))
    if len(prefix) == 10:
        eleven = prefix + str(_weighted_check(prefix, _INN12_WEIGHTS_11))
        return eleven + str(_weighted_check(eleven, _INN12_WEIGHTS_12))
    raise ValueError("an INN prefix has 9 or 10 digits")


def with_account_key(account: str, bic: str, *, correspondent: bool = False) -> str:
    """Set the control key (the 9th digit) of a 20-digit account so it matches ``bic``."""
    prefix = "0" + bic[4:6] if correspondent else bic[-3:]
    for key in "0123456789":
        candidate = account[:8] + key + account[9:]
        if _account_key_ok(prefix, candidate):
            return candidate
    raise AssertionError("unreachable: one key digit always satisfies the check")  # pragma: no cover
