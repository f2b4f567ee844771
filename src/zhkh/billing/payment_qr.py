"""The payment QR code printed on bills: the text of ГОСТ Р 56042-2014 ("Стандарты финансовых
операций. Символы двумерного штрихового кода для осуществления платежей физических лиц").

Pure: no I/O. This module builds and reads the text only; drawing the code is the bill's job.

The text is ``ST0001`` (format identifier and version), one digit for the encoding of the text
(``1`` Windows-1251, ``2`` UTF-8, ``3`` KOI8-R), one separator character, then ``Key=Value``
pairs joined by that separator. The five mandatory requisites come first and in this order:
``Name``, ``PersonalAcc``, ``BankName``, ``BIC``, ``CorrespAcc``; the others follow in any order.
For housing and communal services (ЖКУ) banks expect ``PayeeINN``, ``KPP``, ``Sum`` (kopecks),
``Purpose``, ``PersAcc`` (the personal account), ``PaymPeriod`` (MMYYYY), ``LastName``,
``PayerAddress`` and ``TechCode=02`` (the standard's code for ЖКУ payments).

We always write UTF-8 (``ST00012``). The separator is ``|`` unless some value contains it; then
it is the first of :data:`SEPARATORS` that no value contains, as the standard allows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from zhkh.core.requisites import bank_account_problem, bic_problem, corr_account_problem, inn_problem, kpp_problem

FORMAT_ID = "ST0001"
UTF8_FLAG = "2"
ENCODING_FLAGS = {"1": "cp1251", "2": "utf-8", "3": "koi8-r"}
"""The encoding flag after ``ST0001`` and the Python codec it names."""
ENCODING_KEY = "_encoding"
"""The key under which :func:`parse_payload` records the encoding flag ("1", "2" or "3"); the
leading underscore keeps it apart from the standard's requisite names."""
SEPARATORS = ("|", "#", ";", ":", "^", "~", "_", "!", "@", "$", "%", "&", "*", "+", "/", "\\", "<", ">")
"""Separator characters in order of preference; never ``=``, which separates key from value."""
TECH_CODE_HOUSING = "02"
"""ГОСТ Р 56042-2014, Appendix B (TechCode): 02 is "ЖКУ" (housing and communal services)."""

MANDATORY_KEYS = ("Name", "PersonalAcc", "BankName", "BIC", "CorrespAcc")
# Every requisite name of the standard (tables 1-3), so that a key written in another case is
# read back in the standard's spelling. Keys not in this list are kept as they were written.
KNOWN_KEYS = (
    *MANDATORY_KEYS,
    # table 2: additional requisites
    "Sum",
    "Purpose",
    "PayeeINN",
    "PayerINN",
    "DrawerStatus",
    "KPP",
    "CBC",
    "OKTMO",
    "PaytReason",
    "TaxPeriod",
    "DocNo",
    "DocDate",
    "TaxPaytKind",
    # table 3: other requisites
    "LastName",
    "FirstName",
    "MiddleName",
    "PayerAddress",
    "PersonalAccount",
    "DocIdx",
    "PensAcc",
    "Contract",
    "PersAcc",
    "Flat",
    "Phone",
    "PayerIdType",
    "PayerIdNum",
    "ChildFio",
    "BirthDate",
    "PaymTerm",
    "PaymPeriod",
    "Category",
    "ServiceName",
    "CounterId",
    "CounterVal",
    "QuittId",
    "QuittDate",
    "InstNum",
    "ClassNum",
    "SpecFio",
    "AddAmount",
    "RuleId",
    "ExecId",
    "RegType",
    "UIN",
    "TechCode",
)
_CANONICAL = {key.lower(): key for key in KNOWN_KEYS}

# Maximum lengths the standard sets for the free-text requisites we write.
_MAX_LENGTH = {"Name": 160, "BankName": 45, "Purpose": 210}
_PAYM_PERIOD = re.compile(r"^(0[1-9]|1[0-2])\d{4}$")
_TECH_CODE = re.compile(r"^(0[1-9]|1[0-5])$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, kw_only=True, slots=True)
class PaymentQr:
    """The requisites of one payment, in the standard's order; attribute -> key:

    ``name`` Name, ``personal_acc`` PersonalAcc (the payee's 20-digit bank account),
    ``bank_name`` BankName, ``bic`` BIC, ``corresp_acc`` CorrespAcc (the bank's correspondent
    account), ``payee_inn`` PayeeINN, ``kpp`` KPP, ``sum_kopecks`` Sum, ``purpose`` Purpose,
    ``pers_acc`` PersAcc (the payer's personal account with the payee), ``paym_period``
    PaymPeriod (MMYYYY), ``last_name`` LastName, ``payer_address`` PayerAddress,
    ``tech_code`` TechCode. Optional requisites left empty are not written.
    """

    name: str
    personal_acc: str
    bank_name: str
    bic: str
    corresp_acc: str
    payee_inn: str = ""
    kpp: str = ""
    sum_kopecks: int
    purpose: str = ""
    pers_acc: str = ""
    paym_period: str = ""
    last_name: str = ""
    payer_address: str = ""
    tech_code: str = TECH_CODE_HOUSING

    def pairs(self) -> list[tuple[str, str]]:
        """The ``(Key, Value)`` pairs to write, in order, empty optional values left out."""
        pairs = [
            ("Name", self.name),
            ("PersonalAcc", self.personal_acc),
            ("BankName", self.bank_name),
            ("BIC", self.bic),
            ("CorrespAcc", self.corresp_acc),
            ("PayeeINN", self.payee_inn),
            ("KPP", self.kpp),
            ("Sum", str(self.sum_kopecks)),
            ("Purpose", self.purpose),
            ("PersAcc", self.pers_acc),
            ("PaymPeriod", self.paym_period),
            ("LastName", self.last_name),
            ("PayerAddress", self.payer_address),
            ("TechCode", self.tech_code),
        ]
        return [(key, value) for key, value in pairs if key in MANDATORY_KEYS or value]


def _problems(qr: PaymentQr) -> list[str]:
    problems: list[str] = []
    if isinstance(qr.sum_kopecks, bool) or not isinstance(qr.sum_kopecks, int):
        problems.append(f"Sum must be an integer number of kopecks, got {qr.sum_kopecks!r}")
    elif qr.sum_kopecks <= 0:
        problems.append(f"Sum must be positive, got {qr.sum_kopecks} kopecks")
    for key, value in qr.pairs():
        if key in MANDATORY_KEYS and not value.strip():
            problems.append(f"{key} must not be empty")
        if _CONTROL.search(value):
            problems.append(f"{key} must not contain control characters (line breaks, tabs)")
        if key in _MAX_LENGTH and len(value) > _MAX_LENGTH[key]:
            problems.append(f"{key} must be at most {_MAX_LENGTH[key]} characters, got {len(value)}")
    requisite_checks = [
        ("BIC", bic_problem(qr.bic)),
        ("PersonalAcc", bank_account_problem(qr.personal_acc, qr.bic)),
        ("CorrespAcc", corr_account_problem(qr.corresp_acc, qr.bic)),
        ("PayeeINN", inn_problem(qr.payee_inn) if qr.payee_inn else None),
        ("KPP", kpp_problem(qr.kpp) if qr.kpp else None),
        (
            "PaymPeriod",
            f"must be MMYYYY, got {qr.paym_period!r}"
            if qr.paym_period and not _PAYM_PERIOD.match(qr.paym_period)
            else None,
        ),
        (
            "TechCode",
            f"must be two digits 01-15, got {qr.tech_code!r}"
            if qr.tech_code and not _TECH_CODE.match(qr.tech_code)
            else None,
        ),
    ]
    problems.extend(f"{key}: {problem}" for key, problem in requisite_checks if problem)
    return problems


def choose_separator(values: list[str]) -> str:
    """``|`` unless a value contains it, else the first of :data:`SEPARATORS` no value contains."""
    for candidate in SEPARATORS:
        if not any(candidate in value for value in values):
            return candidate
    raise ValueError(f"every separator character {''.join(SEPARATORS)} occurs in some value")


def build_payload(qr: PaymentQr) -> str:
    """The text to encode in the QR code (UTF-8 flag ``2``).

    Raises ``ValueError`` naming every malformed field: a Sum that is not positive, a BIC that
    is not 9 digits, accounts that are not 20 digits or do not match the BIC, an INN or KPP
    with a wrong form, a PaymPeriod that is not MMYYYY, an empty Name or BankName, an over-long
    free text, or a line break in any value.
    """
    problems = _problems(qr)
    if problems:
        raise ValueError("payment QR code: " + "; ".join(problems))
    pairs = qr.pairs()
    separator = choose_separator([value for _, value in pairs])
    return FORMAT_ID + UTF8_FLAG + separator + separator.join(f"{key}={value}" for key, value in pairs)


def parse_payload(text: str) -> dict[str, str]:
    """Read a payment QR text back: ``{"Name": ..., "Sum": ..., ENCODING_KEY: "2"}``.

    Keys are accepted in any case and returned in the standard's spelling (unknown keys as
    written); a trailing separator is allowed; the encoding flag (1, 2 or 3) is recorded under
    :data:`ENCODING_KEY` (``text`` is already decoded, so the flag is for the caller's
    information). Raises ``ValueError`` for text that does not start with ``ST0001``, has an
    unknown encoding flag, a pair without ``=``, a key given twice, or a missing mandatory key.
    """
    if not text.startswith(FORMAT_ID):
        raise ValueError(f"not a payment QR text: it must start with {FORMAT_ID}, got {text[:12]!r}")
    flag = text[len(FORMAT_ID) : len(FORMAT_ID) + 1]
    if flag not in ENCODING_FLAGS:
        raise ValueError(f"unknown encoding flag {flag!r} after {FORMAT_ID} (expected 1, 2 or 3)")
    separator = text[len(FORMAT_ID) + 1 : len(FORMAT_ID) + 2]
    if not separator or separator == "=":
        raise ValueError("payment QR text has no separator after the encoding flag")
    body = text[len(FORMAT_ID) + 2 :]
    pieces = body.split(separator)
    while pieces and pieces[-1] == "":
        pieces.pop()  # a trailing separator (some generators write one)
    result: dict[str, str] = {ENCODING_KEY: flag}
    for piece in pieces:
        key, equals, value = piece.partition("=")
        key = key.strip()
        if not equals or not key:
            raise ValueError(f"payment QR text has a part that is not Key=Value: {piece!r}")
        key = _CANONICAL.get(key.lower(), key)
        if key in result:
            raise ValueError(f"payment QR text gives {key} twice")
        result[key] = value
    missing = [key for key in MANDATORY_KEYS if key not in result]
    if missing:
        raise ValueError(f"payment QR text lacks the mandatory {', '.join(missing)}")
    return result
