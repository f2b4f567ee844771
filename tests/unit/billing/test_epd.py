"""The bill PDF: rendered, rasterised with PDFium, its QR code read back with zxing-cpp."""

import dataclasses
from datetime import date
from decimal import Decimal
from pathlib import Path

import pypdfium2 as pdfium  # type: ignore[import-untyped]
import pytest
import zxingcpp

from zhkh.billing.epd import (
    BillDocument,
    BillLine,
    BillParty,
    BillRecipient,
    payment_qr,
    render_bill,
    render_bills_to_directory,
)
from zhkh.billing.payment_qr import ENCODING_KEY, parse_payload
from zhkh.core.requisites import with_account_key, with_inn_check_digits

BIC, CORR = "044525225", "30101810400000000225"  # Sberbank's public requisites
MANAGER_INN = with_inn_check_digits("770000001")
WATER_INN = with_inn_check_digits("770000002")

EXECUTOR = BillParty(
    name="ООО «УК Солнечный берег»",
    inn=MANAGER_INN,
    kpp="770101001",
    address="г. Москва, ул. Садовая, д. 1, офис 3",
    phone="+7 495 123-45-67",
    bank_account=with_account_key("40702810000000012345", BIC),
    bank_name="ПАО Сбербанк",
    bic=BIC,
    corr_account=CORR,
)
MANAGER = BillRecipient(
    name=EXECUTOR.name,
    inn=MANAGER_INN,
    kpp="770101001",
    bank_account=EXECUTOR.bank_account,
    bank_name="ПАО Сбербанк",
    bic=BIC,
    corr_account=CORR,
    services=("Содержание жилого помещения", "Взнос на капитальный ремонт"),
)
WATER = BillRecipient(
    name="АО «Водоканал»",
    inn=WATER_INN,
    kpp="770102001",
    bank_account=with_account_key("40702810000000054321", BIC),
    bank_name="ПАО Сбербанк",
    bic=BIC,
    corr_account=CORR,
    services=("Холодное водоснабжение", "Водоотведение"),
)


def line(
    service: str, inn: str, accrued: int, recalculation: int = 0, reason: str = "", benefit: int = 0, **kw: object
) -> BillLine:
    fields: dict[str, object] = {
        "service_name": service,
        "supplier_inn": inn,
        "volume": Decimal("1"),
        "unit": "м³",
        "tariff": Decimal("1.00"),
        "multiplier": None,
        "accrued_kopecks": accrued,
        "recalculation_kopecks": recalculation,
        "recalculation_reason": reason,
        "benefit_kopecks": benefit,
        "total_kopecks": accrued + recalculation + benefit,
    }
    fields.update(kw)
    return BillLine(**fields)  # type: ignore[arg-type]


LINES = (
    line(
        "Содержание жилого помещения", MANAGER_INN, 207_263, volume=Decimal("54.30"), unit="м²", tariff=Decimal("38.17")
    ),
    line(
        "Взнос на капитальный ремонт",
        MANAGER_INN,
        121_632,
        volume=Decimal("54.30"),
        unit="м²",
        tariff=Decimal("22.40"),
        benefit=-60_816,
    ),
    line(
        "Холодное водоснабжение",
        WATER_INN,
        49_689,
        recalculation=-11_042,
        reason="Показания ИПУ за февраль поступили после расчёта по среднему (п.59 «б» ПП 354)",
        volume=Decimal("6.000"),
        tariff=Decimal("55.21"),
        multiplier=Decimal("1.5"),
    ),
    line("Водоотведение", WATER_INN, 45_675, volume=Decimal("10.500"), tariff=Decimal("43.50")),
)
OPENING_DEBT, PAID, PENALTY = 150_000, 100_000, 1_234
# What the resident owes, computed here from the parts rather than trusted from the document.
TOTAL = (
    OPENING_DEBT - PAID + sum(x.accrued_kopecks + x.recalculation_kopecks + x.benefit_kopecks for x in LINES) + PENALTY
)


def make_doc(**overrides: object) -> BillDocument:
    fields: dict[str, object] = {
        "period": date(2026, 3, 1),
        "account": "1000234",
        "payer_name": "Иванова Мария Петровна",
        "address": "г. Москва, ул. Садовая, д. 5, кв. 12",
        "area": Decimal("54.30"),
        "residents": 3,
        "executor": EXECUTOR,
        "recipients": (MANAGER, WATER),
        "lines": LINES,
        "opening_debt_kopecks": OPENING_DEBT,
        "paid_kopecks": PAID,
        "penalty_kopecks": PENALTY,
        "total_to_pay_kopecks": TOTAL,
        "due_date": date(2026, 4, 15),
        "verify_url": "https://ledger.example.org/bills/2026-03/1000234",
    }
    fields.update(overrides)
    return BillDocument(**fields)  # type: ignore[arg-type]


def rubles(kopecks: int) -> str:
    """The test's own rendering of an amount: "4 036,35"."""
    whole, cents = divmod(kopecks, 100)
    return f"{whole:,}".replace(",", " ") + f",{cents:02d}"


def read_qr_codes(pdf: bytes) -> list[str]:
    page = pdfium.PdfDocument(pdf)[0]
    return [barcode.text for barcode in zxingcpp.read_barcodes(page.render(scale=3).to_pil())]


def page_texts(pdf: bytes) -> list[str]:
    document = pdfium.PdfDocument(pdf)
    return [document[i].get_textpage().get_text_range() for i in range(len(document))]


@pytest.fixture(scope="module")
def pdf() -> bytes:
    return render_bill(make_doc())


def test_qr_code_on_the_printed_bill_carries_every_field(pdf: bytes) -> None:
    doc = make_doc()
    codes = read_qr_codes(pdf)
    assert len(codes) == 1
    assert codes[0].startswith("ST00012|")
    fields = parse_payload(codes[0])
    assert fields == {
        ENCODING_KEY: "2",
        "Name": "ООО «УК Солнечный берег»",
        "PersonalAcc": doc.executor.bank_account,
        "BankName": "ПАО Сбербанк",
        "BIC": "044525225",
        "CorrespAcc": "30101810400000000225",
        "PayeeINN": MANAGER_INN,
        "KPP": "770101001",
        "Sum": str(TOTAL),
        "Purpose": "Оплата ЖКУ ЛС 1000234 за 03.2026",
        "PersAcc": "1000234",
        "PaymPeriod": "032026",
        "LastName": "Иванова",
        "PayerAddress": "г. Москва, ул. Садовая, д. 5, кв. 12",
        "TechCode": "02",
    }
    assert TOTAL == 403_635


def test_page_text_has_sections_account_services_total_and_due_date(pdf: bytes) -> None:
    texts = page_texts(pdf)
    assert len(texts) == 1
    text = texts[0]
    for heading in (
        "ЕДИНЫЙ ПЛАТЁЖНЫЙ ДОКУМЕНТ",
        "Раздел 1. Сведения о плательщике и исполнителе услуг",
        "Раздел 2. Информация для внесения платы получателям платежей",
        "Раздел 3. Расчёт размера платы",
        "Раздел 4. Сведения о перерасчётах",
    ):
        assert heading in text
    assert "1000234" in text
    for service in (
        "Содержание жилого помещения",
        "Взнос на капитальный ремонт",
        "Холодное водоснабжение",
        "Водоотведение",
    ):
        assert service in text
    assert "Итого к оплате" in text
    assert rubles(TOTAL) == "4 036,35"
    assert rubles(TOTAL) in text
    assert "15.04.2026" in text
    assert "Задолженность на начало периода" in text
    assert "Пени" in text
    assert rubles(PENALTY) in text
    assert "-110,42" in text  # the recalculation
    assert "-608,16" in text  # the benefit
    assert LINES[2].recalculation_reason in " ".join(text.split())  # the reason, wrapped over lines
    assert "6,000" in text  # volumes keep their Decimal digits, with a comma
    assert "54,30" in text
    assert "АО «Водоканал»" in text
    assert "https://ledger.example.org/bills/2026-03/1000234" in text


def test_payment_qr_follows_the_document() -> None:
    qr = payment_qr(make_doc())
    assert qr.sum_kopecks == TOTAL
    assert qr.personal_acc == EXECUTOR.bank_account
    assert qr.tech_code == "02"


def test_rendering_is_deterministic() -> None:
    assert render_bill(make_doc()) == render_bill(make_doc())


def test_an_advance_gives_a_bill_without_qr_code() -> None:
    doc = make_doc(opening_debt_kopecks=-500_000, total_to_pay_kopecks=TOTAL - OPENING_DEBT - 500_000, verify_url=None)
    pdf = render_bill(doc)
    assert read_qr_codes(pdf) == []
    text = page_texts(pdf)[0]
    assert "Аванс (переплата) на начало периода" in text
    assert "Оплата не требуется" in text
    assert "ledger.example.org" not in text


def test_many_lines_flow_onto_a_second_page_with_the_qr_code_on_the_first() -> None:
    lines = tuple(line(f"Услуга {i:02d}", WATER_INN, 1_000 + i) for i in range(60))
    total = OPENING_DEBT - PAID + sum(x.total_kopecks for x in lines) + PENALTY
    pdf = render_bill(make_doc(lines=lines, total_to_pay_kopecks=total))
    texts = page_texts(pdf)
    assert len(texts) == 2
    assert "Услуга 59" in texts[1]
    assert "Виды услуг" in texts[1]  # the table's header is repeated
    assert parse_payload(read_qr_codes(pdf)[0])["Sum"] == str(total)


def test_a_document_whose_figures_do_not_add_up_is_refused() -> None:
    with pytest.raises(ValueError, match="total to pay"):
        make_doc(total_to_pay_kopecks=TOTAL + 1)
    with pytest.raises(ValueError, match="accrued \\+ recalculation \\+ benefit"):
        dataclasses.replace(LINES[0], total_kopecks=LINES[0].total_kopecks + 1)
    with pytest.raises(ValueError, match="benefit"):
        line("Водоотведение", WATER_INN, 100, benefit=5)
    with pytest.raises(ValueError, match="reason"):
        line("Водоотведение", WATER_INN, 100, recalculation=5)
    with pytest.raises(ValueError, match="not among the recipients"):
        make_doc(recipients=(MANAGER,))
    with pytest.raises(ValueError, match="first day"):
        make_doc(period=date(2026, 3, 2))


def test_render_bills_to_directory_writes_one_file_per_bill(tmp_path: Path) -> None:
    docs = [make_doc(account=account) for account in ("1000234", "1000235", "1000236")]
    progress: list[int] = []
    paths = render_bills_to_directory(docs, tmp_path / "bills", on_progress=progress.append)
    assert [path.name for path in paths] == ["2026-03_1000234.pdf", "2026-03_1000235.pdf", "2026-03_1000236.pdf"]
    assert sorted(p.name for p in (tmp_path / "bills").iterdir()) == [path.name for path in paths]
    assert progress == [1, 2, 3]
    for doc, path in zip(docs, paths, strict=True):
        assert parse_payload(read_qr_codes(path.read_bytes())[0])["PersAcc"] == doc.account


def test_render_bills_to_directory_refuses_two_bills_for_one_account(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="two bills"):
        render_bills_to_directory([make_doc(), make_doc()], tmp_path)
