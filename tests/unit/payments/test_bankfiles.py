from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zhkh.core.money import parse_rubles
from zhkh.payments.bankfiles import (
    BankDocument,
    BankFileError,
    Party,
    PaymentOrder,
    parse_statement,
    write_payment_orders,
)

MOSCOW = ZoneInfo("Europe/Moscow")
EXAMPLE = Path(__file__).parents[3] / "examples" / "bank-statement.txt"

UK = "40702810500000001234"  # the management company's account at Sberbank (044525225)
EXAMPLE_UK = "40702810316540001234"  # the example manager of examples/organisations.csv
RESIDENT = "40817810400000005678"
SUPPLIER = "40702810900000009876"  # at Alfa-Bank (044525593)

UK_PARTY = Party(
    name='ООО "УК Наш Дом"',
    inn="7701234560",
    kpp="770101001",
    account=UK,
    bic="044525225",
    corr_account="30101810400000000225",
    bank="ПАО СБЕРБАНК",
    bank_city="г. Москва",
)
SUPPLIER_PARTY = Party(
    name='ООО "Водоканал-Сервис"',
    inn="7712345671",
    kpp="771201001",
    account=SUPPLIER,
    bic="044525593",
    corr_account="30101810200000000593",
    bank='АО "АЛЬФА-БАНК"',
    bank_city="г. Москва",
)


# --- building statements -------------------------------------------------------------------


def document(
    number: str = "1",
    day: str = "26.05.2026",
    amount: str = "100.00",
    payer_account: str = RESIDENT,
    payee_account: str = UK,
    purpose: str = "Оплата ЖКУ ЛС 1000001 за 05.2026",
    *,
    end: bool = True,
    kind: str = "Платежное поручение",
) -> list[str]:
    lines = [
        f"СекцияДокумент={kind}",
        f"Номер={number}",
        f"Дата={day}",
        f"Сумма={amount}",
        f"ПлательщикСчет={payer_account}",
        "Плательщик=Иванов Иван Иванович",
        "ПлательщикИНН=770123456703",
        "ПлательщикБИК=044525225",
        f"ПолучательСчет={payee_account}",
        "Получатель=ИНН 7701234560 ООО УК Наш Дом",
        "ПолучательИНН=7701234560",
        "ПолучательКПП=770101001",
        "ПолучательБИК=044525225",
        f"ДатаПоступило={day}",
        "ВидОплаты=01",
        f"НазначениеПлатежа={purpose}",
    ]
    return [*lines, "КонецДокумента"] if end else lines


def statement_text(
    *documents: list[str],
    opening: str = "1000.00",
    incoming: str | None = None,
    outgoing: str | None = None,
    closing: str | None = None,
    encoding_line: str | None = "Кодировка=Windows",
    end: bool = True,
) -> str:
    """A small statement of account UK; the totals are computed from the documents unless given."""

    def total(side: str) -> int:
        count = 0
        for doc in documents:
            values = dict(line.split("=", 1) for line in doc if "=" in line)
            if values.get(side) == UK:
                with contextlib.suppress(ValueError):  # a test of a bad amount gives its totals itself
                    count += parse_rubles(values["Сумма"])
        return count

    def rubles(kopecks: int) -> str:
        return f"{kopecks // 100}.{kopecks % 100:02d}"

    opening_k = int(opening.replace(".", ""))
    incoming = incoming or rubles(total("ПолучательСчет"))
    outgoing = outgoing or rubles(total("ПлательщикСчет"))
    closing = closing or rubles(opening_k + total("ПолучательСчет") - total("ПлательщикСчет"))
    lines = ["1CClientBankExchange", "ВерсияФормата=1.03"]
    if encoding_line:
        lines.append(encoding_line)
    lines += [
        "Отправитель=Тестовый банк",
        "ДатаНачала=25.05.2026",
        "ДатаКонца=31.05.2026",
        f"РасчСчет={UK}",
        "СекцияРасчСчет",
        "ДатаНачала=25.05.2026",
        "ДатаКонца=31.05.2026",
        f"РасчСчет={UK}",
        f"НачальныйОстаток={opening}",
        f"ВсегоПоступило={incoming}",
        f"ВсегоСписано={outgoing}",
        f"КонечныйОстаток={closing}",
        "КонецРасчСчет",
    ]
    for doc in documents:
        lines += doc
    if end:
        lines.append("КонецФайла")
    return "\r\n".join(lines) + "\r\n"


def cp1251(text: str) -> bytes:
    return text.encode("cp1251")


def line_of(text: str, start: str, nth: int = 1) -> int:
    """The 1-based number of the ``nth`` line of ``text`` that starts with ``start``."""
    found = [n for n, line in enumerate(text.splitlines(), start=1) if line.startswith(start)]
    return found[nth - 1]


def problems(data: bytes) -> list[tuple[int | None, str]]:
    with pytest.raises(BankFileError) as caught:
        parse_statement(data, name="test.txt")
    return [(p.row, p.message) for p in caught.value.problems]


# --- the example file -------------------------------------------------------------------


def test_example_statement_parses() -> None:
    data = EXAMPLE.read_bytes()
    assert b"\r\n" in data
    assert "Кодировка=Windows".encode("cp1251") in data
    statement = parse_statement(data, name="bank-statement.txt")

    assert statement.encoding == "cp1251"
    assert statement.version == "1.03"
    assert len(statement.documents) == 5
    (section,) = statement.accounts
    assert section.account == EXAMPLE_UK
    assert (section.date_from, section.date_to) == (date(2026, 5, 25), date(2026, 5, 31))
    assert section.opening_kopecks == 15_000_000
    assert section.incoming_kopecks == 1_550_825
    assert section.outgoing_kopecks == 1_200_000
    assert section.closing_kopecks == 15_350_825

    incoming = statement.incoming(EXAMPLE_UK)
    assert [d.amount_kopecks for d in incoming] == [352_040, 410_000, 287_515, 501_270]
    assert all(d.payee.name == 'ООО "УК Пример"' for d in incoming)
    first = incoming[0]
    assert first.kind == "Платежное поручение"
    assert first.number == "112"
    assert first.date == date(2026, 5, 26)
    assert first.received_on == date(2026, 5, 26)
    assert first.withdrawn_on is None
    assert first.purpose == "Оплата ЖКУ ЛС 100101 за 05.2026"
    assert first.payer == Party(
        name="Иванов Иван Иванович",
        inn="770123456703",
        account=RESIDENT,
        bic="044525225",
        corr_account="30101810400000000225",
        bank="ПАО СБЕРБАНК",
        bank_city="г. Москва",
    )
    assert first.fields["ВидОплаты"] == "01"
    assert first.external_id == f"044525225:{RESIDENT}:112:2026-05-26:352040"

    (outgoing,) = statement.outgoing(EXAMPLE_UK)
    assert outgoing.payee.account == SUPPLIER
    assert outgoing.payer.name == 'ООО "УК Пример"'  # Плательщик1, not "ИНН … ООО …"
    assert outgoing.withdrawn_on == date(2026, 5, 30)


def test_incoming_of_an_account_not_in_the_file_is_empty() -> None:
    statement = parse_statement(EXAMPLE.read_bytes())
    assert statement.incoming("40702810000000000000") == ()


def test_small_statement_with_defaults() -> None:
    statement = parse_statement(cp1251(statement_text(document("1"), document("2", amount="50,5"))))
    assert [d.amount_kopecks for d in statement.documents] == [10_000, 5_050]  # a decimal comma too
    assert statement.documents[0].line == line_of(statement_text(document("1")), "СекцияДокумент")
    doc = statement.documents[0]
    assert doc.payee.name == "ООО УК Наш Дом"  # "ИНН 7701234560 " is dropped when Получатель1 is absent
    assert doc.payer.kpp == ""


def test_external_id_is_stable_and_tells_documents_apart() -> None:
    one = parse_statement(cp1251(statement_text(document("1"), document("2"))))
    again = parse_statement(cp1251(statement_text(document("2"), document("1"))))
    assert {d.external_id for d in one.documents} == {d.external_id for d in again.documents}
    assert len({d.external_id for d in one.documents}) == 2


# --- encodings -------------------------------------------------------------------------


def test_dos_encoding_is_honoured() -> None:
    text = statement_text(document(), encoding_line="Кодировка=DOS")
    statement = parse_statement(text.encode("cp866"))
    assert statement.encoding == "cp866"
    assert statement.documents[0].payer.name == "Иванов Иван Иванович"


@pytest.mark.parametrize(
    ("encoded", "codec"),
    [
        (lambda t: t.encode("utf-8"), "utf-8"),
        (lambda t: b"\xef\xbb\xbf" + t.encode("utf-8"), "utf-8-sig"),
        (lambda t: t.encode("cp1251"), "cp1251"),
    ],
)
def test_without_encoding_line_utf8_or_windows_1251_is_detected(encoded: Callable[[str], bytes], codec: str) -> None:
    statement = parse_statement(encoded(statement_text(document(), encoding_line=None)))
    assert statement.encoding == codec
    assert statement.documents[0].purpose == "Оплата ЖКУ ЛС 1000001 за 05.2026"


def test_utf8_file_announced_as_windows_is_refused() -> None:
    text = statement_text(document())
    [(line, message)] = problems(text.encode("utf-8"))
    assert line is None
    assert "Кодировка=Windows (Windows-1251) but the file is written in UTF-8" in message


def test_utf8_file_with_bom_announced_as_windows_is_refused() -> None:
    text = statement_text(document())
    [(_, message)] = problems(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert "written in UTF-8" in message


def test_windows_file_with_a_stray_utf8_bom_is_refused_on_line_1() -> None:
    text = statement_text(document())
    [(line, message)] = problems(b"\xef\xbb\xbf" + text.encode("cp1251"))
    assert line == 1
    assert "byte-order mark" in message


def test_unknown_encoding_name_is_refused() -> None:
    [(line, message)] = problems(cp1251(statement_text(document(), encoding_line="Кодировка=KOI8")))
    assert line is None
    assert "Кодировка=KOI8 is not an encoding of the format" in message


def test_not_a_1c_file_is_refused_on_line_1() -> None:
    [(line, message)] = problems(b"account;amount\r\n1000001;100.00\r\n")
    assert line == 1
    assert "first line must be 1CClientBankExchange" in message


def test_empty_file_is_refused() -> None:
    [(_, message)] = problems(b"")
    assert message == "the file is empty"


def test_bytes_that_are_neither_utf8_nor_windows_1251_are_refused() -> None:
    [(_, message)] = problems(b"1CClientBankExchange\r\n\x98\xff\r\n")
    assert "neither UTF-8 nor Windows-1251" in message


# --- structural errors -------------------------------------------------------------------


def test_missing_end_of_document_before_the_next_document() -> None:
    text = statement_text(document("1", end=False), document("2"))
    found = problems(cp1251(text))
    assert found == [
        (
            line_of(text, "СекцияДокумент", 2),
            f"КонецДокумента missing: the document of line {line_of(text, 'СекцияДокумент')} is still open at "
            "СекцияДокумент=Платежное поручение",
        )
    ]


def test_missing_end_of_document_before_the_end_of_file() -> None:
    text = statement_text(document("1", end=False))
    [(line, message)] = problems(cp1251(text))
    assert line == line_of(text, "КонецФайла")
    assert message.startswith("КонецДокумента missing: the document of line")
    assert message.endswith("still open at КонецФайла")


def test_missing_end_of_file() -> None:
    text = statement_text(document(), end=False)
    [(line, message)] = problems(cp1251(text))
    assert line == len(text.splitlines())
    assert message == "the file ends without КонецФайла: it may be cut short"


def test_cut_inside_a_document_reports_both() -> None:
    text = statement_text(document(end=False), end=False)
    messages = [m for _, m in problems(cp1251(text))]
    assert any("still open at the end of the file" in m for m in messages)
    assert any("without КонецФайла" in m for m in messages)


@pytest.mark.parametrize("garbled", ["Сумма 100.00", "=100.00", "Плат ельщик=x", "РЎРµРєС†РёСЏ†=1"])
def test_garbled_line(garbled: str) -> None:
    doc = document()
    doc.insert(3, garbled)
    text = statement_text(doc)
    [(line, message)] = problems(cp1251(text))
    assert line == line_of(text, garbled)
    assert message.startswith(f"cannot read {garbled!r}: expected Key=Value")


def test_text_after_end_of_file() -> None:
    text = statement_text(document()) + "Номер=5\r\n"
    [(line, message)] = problems(cp1251(text))
    assert line == line_of(text, "Номер=5")
    assert message == f"text after КонецФайла (line {line_of(text, 'КонецФайла')}): 'Номер=5'"


def test_field_outside_any_section() -> None:
    text = statement_text(document(), ["Сумма=5.00"])
    [(line, message)] = problems(cp1251(text))
    assert line == line_of(text, "Сумма=5.00")
    assert "outside any section (is a СекцияДокумент line missing?)" in message


def test_end_of_document_without_a_document() -> None:
    text = statement_text(document(), ["КонецДокумента"])
    [(line, message)] = problems(cp1251(text))
    assert line == line_of(text, "КонецДокумента", 2)
    assert message == "КонецДокумента without an open СекцияДокумент"


def test_missing_number_is_refused() -> None:
    doc = [line for line in document() if not line.startswith("Номер=")]
    text = statement_text(doc)
    [(line, message)] = problems(cp1251(text))
    assert line == line_of(text, "СекцияДокумент")
    assert message.startswith("Номер is missing")


def test_field_repeated_with_another_value() -> None:
    doc = document()
    doc.insert(4, "Сумма=200.00")
    text = statement_text(doc, incoming="100.00", closing="1100.00")  # the first value counts
    [(line, message)] = problems(cp1251(text))
    assert line == line_of(text, "Сумма=200.00")
    assert message == f"Сумма is given twice with different values (first on line {line_of(text, 'Сумма=100.00')})"


@pytest.mark.parametrize("separator", ["\x0c", "\x1e", "\u2028"])
def test_only_cr_and_lf_break_lines(separator: str) -> None:
    """``str.splitlines`` would also break at a form feed or a line separator; the format does
    not, so a purpose holding one stays one line and the lines after it keep their numbers."""
    doc = [
        f"НазначениеПлатежа=Оплата{separator}ЛС 1001" if line.startswith("Назначение") else line for line in document()
    ]
    doc.insert(len(doc) - 1, "Сумма 100.00")  # after the purpose
    text = statement_text(doc, encoding_line=None)
    [(line, _message)] = problems(text.encode("utf-8"))
    assert line == text.split("\r\n").index("Сумма 100.00") + 1
    repaired = text.replace("Сумма 100.00\r\n", "").encode("utf-8")
    [parsed] = parse_statement(repaired).documents
    assert parsed.purpose == f"Оплата{separator}ЛС 1001"


# --- values -----------------------------------------------------------------------------


@pytest.mark.parametrize("amount", ["100.001", "сто", "1.2.3", "100 руб"])
def test_unparseable_amount(amount: str) -> None:
    text = statement_text(document(amount=amount), incoming="0.00", closing="1000.00")
    [(line, message)] = problems(cp1251(text))
    assert line == line_of(text, f"Сумма={amount}")
    assert message == f"Сумма: not an amount in rubles with at most 2 decimals: {amount!r}"


@pytest.mark.parametrize("amount", ["0.00", "-5.00"])
def test_zero_or_negative_amount(amount: str) -> None:
    text = statement_text(document(amount=amount), incoming="0.00", closing="1000.00")
    [(line, message)] = problems(cp1251(text))
    assert line == line_of(text, f"Сумма={amount}")
    assert message == f"Сумма: a payment must be greater than zero, got {amount}"


@pytest.mark.parametrize(("day", "reason"), [("2026-05-26", "not a date dd.mm.yyyy"), ("31.02.2026", "no such date")])
def test_unparseable_date(day: str, reason: str) -> None:
    text = statement_text(document(day=day), incoming="0.00", closing="1000.00")
    found = problems(cp1251(text))
    assert (line_of(text, f"Дата={day}"), f"Дата: {reason}: {day!r}") in found
    assert (line_of(text, f"ДатаПоступило={day}"), f"ДатаПоступило: {reason}: {day!r}") in found


# --- totals -----------------------------------------------------------------------------


def test_closing_balance_that_does_not_add_up() -> None:
    text = statement_text(document(), closing="1200.00")
    [(line, message)] = problems(cp1251(text))
    assert line == line_of(text, "КонечныйОстаток")
    assert message == (
        f"account {UK}: НачальныйОстаток 1000.00 + ВсегоПоступило 100.00 - ВсегоСписано 0.00 = 1100.00, "
        "but КонечныйОстаток is 1200.00"
    )


def test_incoming_total_that_is_not_the_sum_of_the_documents() -> None:
    text = statement_text(document("1"), document("2"), incoming="300.00", closing="1300.00")
    [(line, message)] = problems(cp1251(text))
    assert line == line_of(text, "ВсегоПоступило")
    assert (
        message == f"account {UK}: ВсегоПоступило is 300.00 but the 2 incoming documents of the file add up to 200.00"
    )


def test_outgoing_total_that_is_not_the_sum_of_the_documents() -> None:
    out = document("9", amount="40.00", payer_account=UK, payee_account=SUPPLIER)
    text = statement_text(document("1"), out, outgoing="50.00", closing="1050.00")
    [(line, message)] = problems(cp1251(text))
    assert line == line_of(text, "ВсегоСписано")
    assert message == f"account {UK}: ВсегоСписано is 50.00 but the 1 outgoing documents of the file add up to 40.00"


def test_duplicate_document() -> None:
    text = statement_text(document("7"), document("7"))
    [(line, message)] = problems(cp1251(text))
    assert line == line_of(text, "СекцияДокумент", 2)
    assert message == (
        f"document №7 of 26.05.2026 for 100.00 from account {RESIDENT} already appears on line "
        f"{line_of(text, 'СекцияДокумент')}"
    )


def test_same_number_from_another_payer_is_not_a_duplicate() -> None:
    text = statement_text(document("7"), document("7", payer_account="40817810200000003333"))
    assert len(parse_statement(cp1251(text)).documents) == 2


def test_every_problem_is_reported_at_once() -> None:
    text = statement_text(document("1", amount="abc"), document("2", day="32.05.2026"), closing="5.00", end=False)
    with pytest.raises(BankFileError) as caught:
        parse_statement(cp1251(text), name="may.txt")
    error = caught.value
    codes = [p.code for p in error.problems]
    assert codes.count("bad_amount") == 1
    assert "bad_date" in codes
    assert "balance_mismatch" in codes
    assert "missing_end_of_file" in codes
    assert error.message == f"may.txt: {len(codes)} problems found, nothing was written"
    assert isinstance(error, ValueError)
    assert str(error).splitlines()[1:] == [str(p) for p in error.problems]


# --- writing payment orders -----------------------------------------------------------------


def order(
    number: str = "215", amount: int = 1_200_000, purpose: str = "Оплата за холодную воду за 05.2026"
) -> PaymentOrder:
    return PaymentOrder(
        number=number,
        date=date(2026, 5, 30),
        amount_kopecks=amount,
        payer=UK_PARTY,
        payee=SUPPLIER_PARTY,
        purpose=purpose,
    )


def write(orders: list[PaymentOrder]) -> bytes:
    return write_payment_orders(
        orders,
        sender="zhkh",
        account=UK,
        date_from=date(2026, 5, 1),
        date_to=date(2026, 5, 31),
        created_at=datetime(2026, 6, 1, 9, 5, 7, tzinfo=MOSCOW),
    )


def assert_same(documents: Sequence[BankDocument], orders: list[PaymentOrder]) -> None:
    assert len(documents) == len(orders)
    for doc, sent in zip(documents, orders, strict=True):
        assert doc.kind == "Платежное поручение"
        assert (doc.number, doc.date, doc.amount_kopecks) == (sent.number, sent.date, sent.amount_kopecks)
        assert (doc.payer, doc.payee, doc.purpose) == (sent.payer, sent.payee, sent.purpose)
        assert doc.fields["Очередность"] == str(sent.priority)
        assert doc.fields["ВидОплаты"] == "01"


def test_written_file_is_windows_1251_crlf_version_1_03() -> None:
    data = write([order()])
    text = data.decode("cp1251")
    assert text.startswith("1CClientBankExchange\r\nВерсияФормата=1.03\r\nКодировка=Windows\r\nОтправитель=zhkh\r\n")
    assert "\r\nДатаСоздания=01.06.2026\r\nВремяСоздания=09:05:07\r\n" in text
    assert "\r\nДатаНачала=01.05.2026\r\nДатаКонца=31.05.2026\r\n" in text
    assert f"\r\nРасчСчет={UK}\r\nДокумент=Платежное поручение\r\nСекцияДокумент=Платежное поручение\r\n" in text
    assert "\r\nСумма=12000.00\r\n" in text
    assert "\r\nОчередность=5\r\n" in text
    assert text.endswith("КонецДокумента\r\nКонецФайла\r\n")
    assert "\n" not in text.replace("\r\n", "")


def test_round_trip() -> None:
    orders = [order("1"), order("2", 5, 'Перечисление по договору № 12-ХВС; "вода" = 100%')]
    statement = parse_statement(write(orders))
    assert statement.header_value("РасчСчет") == UK
    assert statement.accounts == ()
    assert_same(statement.documents, orders)


def test_round_trip_of_no_orders() -> None:
    assert parse_statement(write([])).documents == ()


_PURPOSE_ALPHABET = st.sampled_from(
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯabcXYZ0123456789 .,;:№%\"'()/-=|+«»"
)


@settings(max_examples=60, deadline=None)
@given(
    amounts=st.lists(st.integers(min_value=1, max_value=10**13), min_size=1, max_size=4),
    purpose=st.text(_PURPOSE_ALPHABET, min_size=1, max_size=210).filter(lambda s: s == s.strip() and s != ""),
)
def test_round_trip_property(amounts: list[int], purpose: str) -> None:
    orders = [order(str(n), amount, purpose) for n, amount in enumerate(amounts, start=1)]
    assert_same(parse_statement(write(orders)).documents, orders)


def test_writer_refuses_what_the_bank_would_refuse() -> None:
    bad_payee = Party(name="", inn="7712345670", kpp="77120100", account="4070281090000000987", bic="04452559")
    orders = [
        order("1", 0),
        order("2", purpose="строка\nвторая"),
        order("3", purpose="оплата ☺"),
        order("4", purpose="x" * 211),
        PaymentOrder("5", date(2026, 6, 1), 100, SUPPLIER_PARTY, bad_payee, "за воду"),
        order("1", 0),
    ]
    with pytest.raises(ValueError, match="payment orders not written") as caught:
        write(orders)
    lines = str(caught.value).splitlines()[1:]
    expected = [
        "order 1 (№1): the amount must be greater than zero, got 0.00",
        "order 2 (№2): НазначениеПлатежа contains a line break",
        "order 3 (№3): НазначениеПлатежа: '☺' cannot be written in Windows-1251",
        "order 4 (№4): the purpose is 211 characters, at most 210 are allowed",
        "order 5 (№5): dated 01.06.2026, outside 01.05.2026–31.05.2026",
        f"order 5 (№5): the payer's account {SUPPLIER} is not the file's account {UK}",
        "order 5 (№5): payee: the name is empty",
        "order 5 (№5): payee: INN 7712345670 has a wrong check digit",
        "order 6 (№1): the same number, date and amount as order 1",
    ]
    for line in expected:
        assert line in lines
    assert any("payee: KPP must be 9 characters" in line for line in lines)
    assert any("payee: BIC must be 9 digits" in line for line in lines)
    assert any("payee: bank account must be 20 digits" in line for line in lines)


def test_writer_refuses_an_account_that_does_not_match_the_bic() -> None:
    payer = Party(
        name=UK_PARTY.name,
        inn=UK_PARTY.inn,
        kpp=UK_PARTY.kpp,
        account="40702810000000001234",
        bic=UK_PARTY.bic,
        corr_account=UK_PARTY.corr_account,
    )
    bad = PaymentOrder("1", date(2026, 5, 2), 100, payer, SUPPLIER_PARTY, "за воду")
    with pytest.raises(ValueError, match="does not match BIC 044525225"):
        write_payment_orders(
            [bad],
            sender="zhkh",
            account=payer.account,
            date_from=date(2026, 5, 1),
            date_to=date(2026, 5, 31),
            created_at=datetime(2026, 6, 1, 9, 0, tzinfo=MOSCOW),
        )
