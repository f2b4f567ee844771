"""Bank files in the 1CClientBankExchange format (versions 1.02 and 1.03). Pure: no I/O.

1CClientBankExchange is the de-facto exchange format between Russian banks and accounting
software ("обмен с клиент-банком"): a text file, usually Windows-1251, that starts with the line
``1CClientBankExchange``, then ``Key=Value`` header lines, then account sections
(``СекцияРасчСчет … КонецРасчСчет``: the period, the account, its balances and turnovers), then
documents (``СекцияДокумент=<kind> … КонецДокумента``), and ends with ``КонецФайла``.

Two directions are supported:

* ``parse_statement`` reads a statement downloaded from the bank (выписка) into a
  ``BankStatement``; the whole file is refused with every problem (line number and reason) when
  anything is wrong, because a half-read statement would lose or double payments.
* ``write_payment_orders`` writes outgoing payment orders as an accounting program uploads them to
  the bank (выгрузка платёжных поручений), for example the remittances to suppliers.

Money is integer kopecks; amounts in the file are rubles with a dot (a comma is accepted).
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from zhkh.core.errors import Problem, ProblemsFound
from zhkh.core.money import format_rubles, parse_rubles
from zhkh.core.requisites import bank_account_problem, bic_problem, corr_account_problem, inn_problem, kpp_problem

FIRST_LINE = "1CClientBankExchange"
PAYMENT_ORDER = "Платежное поручение"
MAX_PURPOSE_LENGTH = 210  # field 24 of a payment order (Положение ЦБ РФ №762-П)

_ENCODING_KEY = "Кодировка"
# The header's encoding names (the format knows only these two) and the Python codecs for them.
_DECLARED_CODECS = {"windows": "cp1251", "dos": "cp866"}
_CODEC_NAMES = {"cp1251": "Windows-1251", "cp866": "DOS (CP866)", "utf-8": "UTF-8", "utf-8-sig": "UTF-8"}
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_OTHER_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")  # where str.splitlines also breaks
_KEY = re.compile(r"^[0-9A-Za-zА-Яа-яЁё_]+$")
_DATE = re.compile(r"^(\d{2})\.(\d{2})\.(\d{4})$")
_INN_PREFIX = re.compile(r"^ИНН\s*\d*\s+")

_Date = date  # for annotations in classes that have a field named ``date``

_SECTION_ACCOUNT = "СекцияРасчСчет"
_END_ACCOUNT = "КонецРасчСчет"
_SECTION_DOCUMENT = "СекцияДокумент"
_END_DOCUMENT = "КонецДокумента"
_END_FILE = "КонецФайла"


class BankFileError(ProblemsFound, ValueError):
    """The bank file was refused as a whole; ``problems`` says every line that is wrong and why."""

    def __init__(self, problems: list[Problem], name: str) -> None:
        super().__init__(problems, what=name)

    def __str__(self) -> str:
        return "\n".join([self.message, *(str(p) for p in self.problems)])


@dataclass(frozen=True, slots=True)
class Party:
    """The payer or the payee of a document, as the bank file states them (empty when absent)."""

    name: str
    inn: str = ""
    kpp: str = ""
    account: str = ""
    bic: str = ""
    corr_account: str = ""
    bank: str = ""  # Банк1: the bank's name
    bank_city: str = ""  # Банк2: the bank's city


@dataclass(frozen=True, slots=True)
class BankDocument:
    """One document of a statement; ``line`` is the line of its ``СекцияДокумент``."""

    kind: str
    number: str
    date: date
    amount_kopecks: int
    payer: Party
    payee: Party
    purpose: str
    received_on: _Date | None  # ДатаПоступило: credited to the payee's account
    withdrawn_on: _Date | None  # ДатаСписано: debited from the payer's account
    line: int
    fields: Mapping[str, str] = field(hash=False)

    @property
    def external_id(self) -> str:
        """A stable id of the payment for idempotent import of overlapping statements.

        A payment order is identified by its payer's account (unique within the payer's bank,
        hence the BIC), the order's number (numbered by the payer, restarting at most yearly) and
        its date (which separates the restarts). The amount is added because some payers (banks
        forwarding cash payments, small organisations) reuse numbers, and two different sums can
        never be one payment. The same document in tomorrow's statement gets the same id, so
        importing it again changes nothing; the payee's side is left out because an incoming and
        an outgoing view of one payment are the same payment.
        """
        return f"{self.payer.bic}:{self.payer.account}:{self.number}:{self.date.isoformat()}:{self.amount_kopecks}"


@dataclass(frozen=True, slots=True)
class AccountSection:
    """A ``СекцияРасчСчет``: one account's period, balances and turnovers (None when absent)."""

    account: str
    date_from: date | None
    date_to: date | None
    opening_kopecks: int | None
    incoming_kopecks: int | None
    outgoing_kopecks: int | None
    closing_kopecks: int | None
    line: int
    fields: Mapping[str, str] = field(hash=False)


@dataclass(frozen=True, slots=True)
class BankStatement:
    name: str
    encoding: str  # the Python codec the text was read with
    header: tuple[tuple[str, str], ...]  # in file order; keys such as РасчСчет may repeat
    accounts: tuple[AccountSection, ...]
    documents: tuple[BankDocument, ...]

    def header_value(self, key: str) -> str | None:
        """The first header value of ``key``, or None."""
        return next((value for k, value in self.header if k == key), None)

    @property
    def version(self) -> str | None:
        return self.header_value("ВерсияФормата")

    def incoming(self, account: str) -> tuple[BankDocument, ...]:
        """The documents credited to ``account`` (its number is the payee's account)."""
        return tuple(d for d in self.documents if d.payee.account == account)

    def outgoing(self, account: str) -> tuple[BankDocument, ...]:
        """The documents debited from ``account`` (its number is the payer's account)."""
        return tuple(d for d in self.documents if d.payer.account == account)


# --- text and encoding ----------------------------------------------------------------------


def decode_text(data: bytes) -> tuple[str, str]:
    """Text of a file in UTF-8 (with or without BOM) or Windows-1251, and the codec used.

    A UTF-8 BOM or bytes that are valid UTF-8 mean UTF-8 (Windows-1251 Russian text is practically
    never valid UTF-8); anything else is Windows-1251. Bytes that are neither raise ``ValueError``.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data.decode("utf-8-sig"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            message = f"the file starts with a UTF-8 byte-order mark but is not UTF-8 (byte {exc.start})"
            raise ValueError(message) from exc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1251"), "cp1251"
    except UnicodeDecodeError as exc:
        raise ValueError(f"the file is neither UTF-8 nor Windows-1251 (byte {exc.start})") from exc


def _declared_encoding(data: bytes) -> tuple[str, str, str] | None:
    """The header's ``Кодировка=`` value, the codec it names, and the codec the key itself is
    written in (which is what the file really is), or None when the header has no such line."""
    for actual in ("cp1251", "cp866", "utf-8"):
        key = _ENCODING_KEY.encode(actual)
        match = re.search(rb"(?m)^" + re.escape(key) + rb"=([^\r\n]*)", data)
        if match:
            value = match.group(1).decode("ascii", errors="replace").strip()
            return value, _DECLARED_CODECS.get(value.lower(), ""), actual
    return None


def _decode_statement(data: bytes) -> tuple[str, str]:
    declared = _declared_encoding(data)
    if declared is None:
        return decode_text(data)
    value, codec, actual = declared
    if not codec:
        raise ValueError(f"{_ENCODING_KEY}={value} is not an encoding of the format (Windows or DOS)")
    if actual != codec:
        raise ValueError(
            f"the header says {_ENCODING_KEY}={value} ({_CODEC_NAMES[codec]}) but the file is written in "
            f"{_CODEC_NAMES[actual]}; it was re-encoded without changing the header: save it again in "
            f"{_CODEC_NAMES[codec]} or correct the {_ENCODING_KEY} line"
        )
    try:
        return data.decode(codec), codec
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"the header says {_ENCODING_KEY}={value} but byte {exc.start} is not {_CODEC_NAMES[codec]}"
        ) from exc


def _check_first_line(first: str) -> str | None:
    if first.strip() == FIRST_LINE:
        return None
    if first.startswith(("\ufeff", "п»ї")):  # a UTF-8 byte-order mark, read right or as Windows-1251
        return (
            f"the file starts with a UTF-8 byte-order mark but says {_ENCODING_KEY}=Windows: "
            "it is UTF-8 with a wrong header; save it again in Windows-1251"
        )
    shown = first if len(first) <= 40 else first[:40] + "…"
    return f"the first line must be {FIRST_LINE}, got {shown!r}: not a 1CClientBankExchange file"


# --- parsing -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)  # a statement's hundred thousand documents share a few dozen days
def parse_date(text: str) -> date:
    """``dd.MM.yyyy`` -> date."""
    match = _DATE.match(text.strip())
    if not match:
        raise ValueError(f"not a date dd.mm.yyyy: {text!r}")
    day, month, year = (int(g) for g in match.groups())
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError(f"no such date: {text!r}") from None


def format_date(day: date) -> str:
    return day.strftime("%d.%m.%Y")


@dataclass
class _Block:
    """Lines of a section being read: its ``Key=Value`` pairs with the line of each."""

    line: int
    kind: str = ""
    values: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)


class _Parser:
    def __init__(self, name: str) -> None:
        self.name = name
        self.problems: list[Problem] = []
        self.header: list[tuple[str, str]] = []
        self.accounts: list[AccountSection] = []
        self.documents: list[BankDocument] = []
        self.section: _Block | None = None  # the open section, account or document
        self.in_document = False
        self.seen_section = False
        self.ended_on: int | None = None
        self.account_lines: list[dict[str, int]] = []  # the line of each field, per account section
        # (payer account, payee account, amount) of every document whose amount could be read, even
        # when another of its fields could not, so one bad field does not also unbalance the totals.
        self.turnover: list[tuple[str, str, int]] = []
        self.unread_amounts = False
        self.keys: set[str] = set()  # field names already seen to be well formed

    def problem(self, line: int | None, code: str, message: str) -> None:
        self.problems.append(Problem(line, code, message))

    def feed_all(self, lines: Sequence[str], first: int) -> None:
        """Feed ``lines[1:]``, numbered from ``first``. Most lines are a new field of the open
        section under a name already seen: those are stored here, the rest go through ``feed``
        (a statement of 100,000 documents has three million lines)."""
        keys = self.keys
        for number, raw in enumerate(itertools.islice(lines, 1, None), start=first):
            section = self.section
            if section is not None:
                key, sep, value = raw.partition("=")
                key = key.strip()
                if sep and key in keys and key not in section.values:
                    section.values[key] = value.strip()
                    section.lines[key] = number
                    continue
            self.feed(number, raw)

    def feed(self, number: int, raw: str) -> None:
        text = raw.strip()
        if not text:
            return
        if self.ended_on is not None:
            self.problem(number, "after_end", f"text after {_END_FILE} (line {self.ended_on}): {text[:40]!r}")
            return
        key, sep, value = text.partition("=")
        if sep:
            key = key.rstrip()  # the line is stripped: only the end of the key can have spaces
            if key == _SECTION_DOCUMENT:
                self.open(number, value.strip(), document=True)
            elif key in self.keys or self.readable_key(key):
                self.pair(number, key, value.strip())
            else:
                self.unreadable(number, text)
        elif text in (_SECTION_ACCOUNT, _END_ACCOUNT, _END_DOCUMENT, _END_FILE):
            self.keyword(number, text)
        else:
            self.unreadable(number, text)

    def readable_key(self, key: str) -> bool:
        """Whether ``key`` is a field name; the names that are remember, since a statement repeats
        the same few dozen in every document (a regex per line was a third of parsing)."""
        if not _KEY.match(key):
            return False
        self.keys.add(key)
        return True

    def unreadable(self, number: int, text: str) -> None:
        shown = text if len(text) <= 60 else text[:60] + "…"
        self.problem(
            number, "unreadable_line", f"cannot read {shown!r}: expected Key=Value, a section line or {_END_FILE}"
        )

    def keyword(self, number: int, word: str) -> None:
        if word == _SECTION_ACCOUNT:
            self.open(number, "", document=False)
        elif word == _END_ACCOUNT:
            if self.section is None or self.in_document:
                self.problem(number, "unexpected_end", f"{_END_ACCOUNT} without an open {_SECTION_ACCOUNT}")
            else:
                self.close()
        elif word == _END_DOCUMENT:
            if self.section is None or not self.in_document:
                self.problem(number, "unexpected_end", f"{_END_DOCUMENT} without an open {_SECTION_DOCUMENT}")
            else:
                self.close()
        else:  # КонецФайла
            self.unclosed(number, _END_FILE)
            self.ended_on = number

    def open(self, number: int, kind: str, *, document: bool) -> None:
        self.unclosed(number, f"{_SECTION_DOCUMENT}={kind}" if document else _SECTION_ACCOUNT)
        if document and not kind:
            self.problem(number, "missing_kind", f"{_SECTION_DOCUMENT}= names no kind of document")
        self.section = _Block(number, kind)
        self.in_document = document
        self.seen_section = True

    def unclosed(self, number: int, what: str) -> None:
        """Close a section left open when ``what`` starts on line ``number``."""
        if self.section is None:
            return
        opened = self.section.line
        if self.in_document:
            self.problem(
                number, "missing_end", f"{_END_DOCUMENT} missing: the document of line {opened} is still open at {what}"
            )
        else:
            self.problem(
                number, "missing_end", f"{_END_ACCOUNT} missing: the section of line {opened} is still open at {what}"
            )
        self.close()

    def pair(self, number: int, key: str, value: str) -> None:
        if self.section is None:
            if self.seen_section:
                self.problem(
                    number,
                    "outside_section",
                    f"{key}={value[:40]} is outside any section (is a {_SECTION_DOCUMENT} line missing?)",
                )
            else:
                self.header.append((key, value))
            return
        values = self.section.values
        if key not in values:
            values[key] = value
            self.section.lines[key] = number
        elif values[key] != value:
            message = f"{key} is given twice with different values (first on line {self.section.lines[key]})"
            self.problem(number, "repeated_field", message)

    def close(self) -> None:
        block, document = self.section, self.in_document
        self.section = None
        self.in_document = False
        assert block is not None
        if document:
            self.finish_document(block)
        else:
            self.finish_account(block)

    def get_date(self, block: _Block, key: str, *, required: bool) -> date | None:
        text = block.values.get(key, "")
        if not text:
            if required:
                self.problem(block.line, "missing_field", f"{key} is missing in the section of line {block.line}")
            return None
        try:
            return parse_date(text)
        except ValueError as exc:
            self.problem(block.lines[key], "bad_date", f"{key}: {exc}")
            return None

    def get_amount(self, block: _Block, key: str, *, required: bool, positive: bool) -> int | None:
        text = block.values.get(key, "")
        if not text:
            if required:
                self.problem(block.line, "missing_field", f"{key} is missing in the section of line {block.line}")
            return None
        try:
            kopecks = parse_rubles(text)
        except ValueError:
            message = f"{key}: not an amount in rubles with at most 2 decimals: {text!r}"
            self.problem(block.lines[key], "bad_amount", message)
            return None
        if positive and kopecks <= 0:
            self.problem(block.lines[key], "bad_amount", f"{key}: a payment must be greater than zero, got {text}")
            return None
        return kopecks

    def finish_account(self, block: _Block) -> None:
        values = block.values
        account = values.get("РасчСчет", "")
        if not account:
            self.problem(block.line, "missing_field", f"РасчСчет is missing in the section of line {block.line}")
        self.accounts.append(
            AccountSection(
                account=account,
                date_from=self.get_date(block, "ДатаНачала", required=False),
                date_to=self.get_date(block, "ДатаКонца", required=False),
                opening_kopecks=self.get_amount(block, "НачальныйОстаток", required=False, positive=False),
                incoming_kopecks=self.get_amount(block, "ВсегоПоступило", required=False, positive=False),
                outgoing_kopecks=self.get_amount(block, "ВсегоСписано", required=False, positive=False),
                closing_kopecks=self.get_amount(block, "КонечныйОстаток", required=False, positive=False),
                line=block.line,
                fields=dict(values),
            )
        )
        self.account_lines.append(dict(block.lines))

    def finish_document(self, block: _Block) -> None:
        values = block.values
        number = values.get("Номер", "")
        if not number:
            self.problem(block.line, "missing_field", f"Номер is missing in the document of line {block.line}")
        day = self.get_date(block, "Дата", required=True)
        amount = self.get_amount(block, "Сумма", required=True, positive=True)
        received_on = self.get_date(block, "ДатаПоступило", required=False)
        withdrawn_on = self.get_date(block, "ДатаСписано", required=False)
        payer, payee = _party(values, "Плательщик"), _party(values, "Получатель")
        if amount is None:
            self.unread_amounts = True
        else:
            self.turnover.append((payer.account, payee.account, amount))
        if day is None or amount is None or not number:
            return
        self.documents.append(
            BankDocument(
                kind=block.kind,
                number=number,
                date=day,
                amount_kopecks=amount,
                payer=payer,
                payee=payee,
                purpose=values.get("НазначениеПлатежа", ""),
                received_on=received_on,
                withdrawn_on=withdrawn_on,
                line=block.line,
                fields=values,  # the block's own: it is done with
            )
        )

    def finish(self, last_line: int) -> None:
        if self.ended_on is None:
            self.unclosed(last_line, "the end of the file")
            self.problem(last_line, "missing_end_of_file", f"the file ends without {_END_FILE}: it may be cut short")
        self.check_duplicates()
        self.check_accounts()

    def check_duplicates(self) -> None:
        seen: dict[tuple[str, date, int, str], BankDocument] = {}
        for doc in self.documents:
            key = (doc.number, doc.date, doc.amount_kopecks, doc.payer.account)
            first = seen.setdefault(key, doc)
            if first is not doc:
                self.problem(
                    doc.line,
                    "duplicate",
                    f"document №{doc.number} of {format_date(doc.date)} for {format_rubles(doc.amount_kopecks)} "
                    f"from account {doc.payer.account or '(none)'} already appears on line {first.line}",
                )

    def check_accounts(self) -> None:
        for section, lines in zip(self.accounts, self.account_lines, strict=True):
            opening, incoming = section.opening_kopecks, section.incoming_kopecks
            outgoing, closing = section.outgoing_kopecks, section.closing_kopecks
            if opening is not None and incoming is not None and outgoing is not None and closing is not None:
                expected = opening + incoming - outgoing
                if expected != closing:
                    self.problem(
                        lines.get("КонечныйОстаток", section.line),
                        "balance_mismatch",
                        f"account {section.account}: НачальныйОстаток {format_rubles(opening)} + ВсегоПоступило "
                        f"{format_rubles(incoming)} - ВсегоСписано {format_rubles(outgoing)} = "
                        f"{format_rubles(expected)}, but КонечныйОстаток is {format_rubles(closing)}",
                    )
            if not section.account or self.unread_amounts:
                continue  # with an amount unread the sums cannot be compared; that amount is reported
            for key, total, side in (("ВсегоПоступило", incoming, "incoming"), ("ВсегоСписано", outgoing, "outgoing")):
                if total is None:
                    continue
                amounts = [
                    amount
                    for payer_account, payee_account, amount in self.turnover
                    if (payee_account if side == "incoming" else payer_account) == section.account
                ]
                found = sum(amounts)
                if found != total:
                    self.problem(
                        lines.get(key, section.line),
                        "turnover_mismatch",
                        f"account {section.account}: {key} is {format_rubles(total)} but the {len(amounts)} {side} "
                        f"documents of the file add up to {format_rubles(found)}",
                    )


def _party(values: Mapping[str, str], role: str) -> Party:
    name = values.get(f"{role}1", "")
    if not name:
        name = _INN_PREFIX.sub("", values.get(role, ""))  # 1C writes "ИНН 7700000000 ООО Ромашка"
    return Party(
        name=name.strip(),
        inn=values.get(f"{role}ИНН", ""),
        kpp=values.get(f"{role}КПП", ""),
        account=values.get(f"{role}Счет", "") or values.get(f"{role}РасчСчет", ""),
        bic=values.get(f"{role}БИК", ""),
        corr_account=values.get(f"{role}Корсчет", ""),
        bank=values.get(f"{role}Банк1", ""),
        bank_city=values.get(f"{role}Банк2", ""),
    )


def _lines(text: str) -> list[str]:
    """The lines of ``text`` broken at CR LF, CR or LF, as the format says. ``str.splitlines``
    does that in a fraction of a regex's time, but also breaks at a few control and separator
    characters, which a damaged file might hold: then the regex, so line numbers stay true."""
    if _OTHER_BREAKS.search(text):
        return _LINE_BREAK.split(text)
    lines = text.splitlines()
    if not text or text.endswith(("\r", "\n")):
        lines.append("")  # as the regex's split gives
    return lines


def parse_statement(data: bytes, name: str = "statement") -> BankStatement:
    """Read a 1CClientBankExchange file; raise ``BankFileError`` with every problem found.

    The encoding is the header's ``Кодировка`` (``Windows`` = Windows-1251, ``DOS`` = CP866) when
    there is one, else UTF-8 (BOM or valid UTF-8), else Windows-1251. A file whose text does not
    match its header is refused rather than read as garbage.
    """
    try:
        text, codec = _decode_statement(data)
    except ValueError as exc:
        raise BankFileError([Problem(None, "encoding", str(exc))], name) from None
    lines = _lines(text)
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or not text.strip():
        raise BankFileError([Problem(None, "empty", "the file is empty")], name)
    first_problem = _check_first_line(lines[0])
    if first_problem:
        raise BankFileError([Problem(1, "not_1c_exchange", first_problem)], name)

    parser = _Parser(name)
    parser.feed_all(lines, first=2)
    parser.finish(len(lines))
    if parser.problems:
        raise BankFileError(parser.problems, name)
    return BankStatement(
        name=name,
        encoding=codec,
        header=tuple(parser.header),
        accounts=tuple(parser.accounts),
        documents=tuple(parser.documents),
    )


# --- writing payment orders --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PaymentOrder:
    """An outgoing payment order (платёжное поручение) to upload to the bank."""

    number: str
    date: date
    amount_kopecks: int
    payer: Party
    payee: Party
    purpose: str
    priority: int = 5  # Очередность: 5 for ordinary payments (ГК ст.855)
    payment_kind: str = "01"  # ВидОплаты: 01 is a payment order


def _party_lines(role: str, party: Party) -> list[tuple[str, str]]:
    return [
        (f"{role}Счет", party.account),
        (role, party.name),
        (f"{role}ИНН", party.inn),
        (f"{role}КПП", party.kpp),
        (f"{role}1", party.name),
        (f"{role}РасчСчет", party.account),
        (f"{role}Банк1", party.bank),
        (f"{role}Банк2", party.bank_city),
        (f"{role}БИК", party.bic),
        (f"{role}Корсчет", party.corr_account),
    ]


def _party_problems(role: str, party: Party) -> Iterable[str]:
    if not party.name:
        yield f"{role}: the name is empty"
    for problem in (
        inn_problem(party.inn),
        kpp_problem(party.kpp) if party.kpp else None,
        bic_problem(party.bic),
        bank_account_problem(party.account, party.bic),
        corr_account_problem(party.corr_account, party.bic),
    ):
        if problem:
            yield f"{role}: {problem}"


def _order_problems(order: PaymentOrder, account: str, date_from: date, date_to: date) -> Iterable[str]:
    if not order.number.strip():
        yield "the number is empty"
    if order.amount_kopecks <= 0:
        yield f"the amount must be greater than zero, got {format_rubles(order.amount_kopecks)}"
    if not date_from <= order.date <= date_to:
        yield f"dated {format_date(order.date)}, outside {format_date(date_from)}–{format_date(date_to)}"
    if order.payer.account != account:
        yield f"the payer's account {order.payer.account} is not the file's account {account}"
    if not order.purpose.strip():
        yield "the purpose is empty"
    if len(order.purpose.strip()) > MAX_PURPOSE_LENGTH:
        yield f"the purpose is {len(order.purpose.strip())} characters, at most {MAX_PURPOSE_LENGTH} are allowed"
    if not 1 <= order.priority <= 5:
        yield f"Очередность must be 1 to 5, got {order.priority}"
    yield from _party_problems("payer", order.payer)
    yield from _party_problems("payee", order.payee)


def _value_problem(key: str, value: str) -> str | None:
    if "\r" in value or "\n" in value:
        return f"{key} contains a line break"
    try:
        value.encode("cp1251")
    except UnicodeEncodeError as exc:
        return f"{key}: {value[exc.start]!r} cannot be written in Windows-1251"
    return None


def write_payment_orders(
    orders: Sequence[PaymentOrder],
    *,
    sender: str,
    account: str,
    date_from: date,
    date_to: date,
    created_at: datetime,
    receiver: str = "",
) -> bytes:
    """A 1CClientBankExchange file (version 1.03, Windows-1251, CRLF) of ``orders`` from
    ``account``, as an accounting program uploads payment orders to the bank.

    Values are written trimmed of surrounding spaces. Orders that the bank would refuse (bad
    requisites, empty purpose, a purpose over 210 characters, text outside Windows-1251, an
    order from another account or dated outside the period, a duplicate) raise ``ValueError``
    listing every problem, and nothing is written.
    """
    problems: list[str] = []
    if date_from > date_to:
        problems.append(f"the period {format_date(date_from)}–{format_date(date_to)} ends before it starts")
    seen: dict[tuple[str, date, int], int] = {}
    for index, order in enumerate(orders, start=1):
        where = f"order {index} (№{order.number})"
        problems.extend(f"{where}: {p}" for p in _order_problems(order, account, date_from, date_to))
        first = seen.setdefault((order.number.strip(), order.date, order.amount_kopecks), index)
        if first != index:
            problems.append(f"{where}: the same number, date and amount as order {first}")

    pairs: list[tuple[str, str]] = [
        ("ВерсияФормата", "1.03"),
        (_ENCODING_KEY, "Windows"),
        ("Отправитель", sender),
        ("Получатель", receiver),
        ("ДатаСоздания", format_date(created_at.date())),
        ("ВремяСоздания", created_at.strftime("%H:%M:%S")),
        ("ДатаНачала", format_date(date_from)),
        ("ДатаКонца", format_date(date_to)),
        ("РасчСчет", account),
        ("Документ", PAYMENT_ORDER),
    ]
    out = [FIRST_LINE, *(f"{k}={v.strip()}" for k, v in pairs)]
    for index, order in enumerate(orders, start=1):
        document: list[tuple[str, str]] = [
            ("Номер", order.number),
            ("Дата", format_date(order.date)),
            ("Сумма", format_rubles(order.amount_kopecks)),
            *_party_lines("Плательщик", order.payer),
            *_party_lines("Получатель", order.payee),
            ("ВидОплаты", order.payment_kind),
            ("Очередность", str(order.priority)),
            ("НазначениеПлатежа", order.purpose),
        ]
        for key, value in document:
            problem = _value_problem(key, value)
            if problem:
                problems.append(f"order {index} (№{order.number}): {problem}")
        out.append(f"{_SECTION_DOCUMENT}={PAYMENT_ORDER}")
        out.extend(f"{k}={v.strip()}" for k, v in document)
        out.append(_END_DOCUMENT)
    out.append(_END_FILE)
    for key, value in pairs:
        problem = _value_problem(key, value)
        if problem:
            problems.append(problem)
    if problems:
        raise ValueError("payment orders not written:\n" + "\n".join(problems))
    return ("\r\n".join(out) + "\r\n").encode("cp1251")
