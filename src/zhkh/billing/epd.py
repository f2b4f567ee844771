"""The single payment document (ЕПД) as a PDF with its payment QR code, from plain data.

The layout follows the sample form of Приказ Минстроя России от 26.01.2018 № 43/пр:

1. the payer and the executor (who issues the bill and collects the money);
2. what to pay to whom: each recipient with its requisites and services, and the QR code
   (ГОСТ Р 56042-2014) for the whole amount, payable to the executor;
3. the calculation: per service the volume, unit, tariff, multiplier, accrued amount,
   recalculation, benefit and total, with totals; then the reasons of the recalculations; the
   debt or advance at the start of the period, what was paid, penalties, the total to pay and the
   due date; and where to verify the bill in the public ledger.

No database here: the caller builds a :class:`BillDocument`. Money is integer kopecks and becomes
"1 234,56" only when drawn. The document is checked when built (each line's total and the total
to pay must add up), so a bill whose figures do not reconcile is never printed.

Fonts (DejaVu Sans, bundled in ``fonts/``) are registered once per process, on first use.
Output is deterministic (reportlab's invariant mode): the same document gives the same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from typing import Any

import segno
from reportlab.lib import colors  # type: ignore[import-untyped]
from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.lib.utils import simpleSplit  # type: ignore[import-untyped]
from reportlab.pdfbase import pdfmetrics  # type: ignore[import-untyped]
from reportlab.pdfbase.ttfonts import TTFont  # type: ignore[import-untyped]
from reportlab.pdfgen.canvas import Canvas  # type: ignore[import-untyped]
from reportlab.platypus import BaseDocTemplate, Flowable, Frame, PageTemplate, Spacer, Table, TableStyle  # type: ignore[import-untyped]

from zhkh.billing.payment_qr import PaymentQr, build_payload

FONT = "ZhkhDejaVuSans"
FONT_BOLD = "ZhkhDejaVuSans-Bold"
FONTS_DIR = Path(__file__).with_name("fonts")

MONTHS = (
    "январь",
    "февраль",
    "март",
    "апрель",
    "май",
    "июнь",
    "июль",
    "август",
    "сентябрь",
    "октябрь",
    "ноябрь",
    "декабрь",
)

SECTION_1 = "Раздел 1. Сведения о плательщике и исполнителе услуг"
SECTION_2 = "Раздел 2. Информация для внесения платы получателям платежей"
SECTION_3 = "Раздел 3. Расчёт размера платы за содержание жилого помещения и коммунальные услуги"
SECTION_4 = "Раздел 4. Сведения о перерасчётах"
TOTAL_TO_PAY = "Итого к оплате"

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 10 * mm
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN
QR_SIDE = 40 * mm  # the symbol with its quiet zone; about 0.45 mm a module for a bill's payload
QR_MIN_MODULE = 0.4 * mm
QR_QUIET_ZONE = 4  # modules, as ISO/IEC 18004 requires
GRID = colors.Color(0.55, 0.55, 0.55)
SHADE = colors.Color(0.92, 0.92, 0.92)


# --- the data -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BillParty:
    """The executor (исполнитель, or the payment agent) who issues the bill and collects the money;
    the QR code pays into its account."""

    name: str
    inn: str
    kpp: str
    address: str
    phone: str
    bank_account: str
    bank_name: str
    bic: str
    corr_account: str


@dataclass(frozen=True, slots=True)
class BillRecipient:
    """A recipient of the money (the manager itself or a resource supplier) and the services it
    receives payment for. Lines belong to a recipient through ``BillLine.supplier_inn``; when
    ``services`` is empty, the names of those lines are printed."""

    name: str
    inn: str
    kpp: str
    bank_account: str
    bank_name: str
    bic: str
    corr_account: str
    services: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BillLine:
    """One service on the bill. ``total_kopecks`` = accrued + recalculation + benefit, where the
    recalculation is signed (+ extra charge, − reduction) and the benefit is 0 or negative."""

    service_name: str
    supplier_inn: str
    volume: Decimal | None
    unit: str
    tariff: Decimal | None
    multiplier: Decimal | None
    accrued_kopecks: int
    recalculation_kopecks: int
    recalculation_reason: str
    benefit_kopecks: int
    total_kopecks: int

    def __post_init__(self) -> None:
        if self.benefit_kopecks > 0:
            raise ValueError(f"{self.service_name}: a benefit reduces the charge, so it is 0 or negative")
        expected = self.accrued_kopecks + self.recalculation_kopecks + self.benefit_kopecks
        if self.total_kopecks != expected:
            raise ValueError(
                f"{self.service_name}: total {self.total_kopecks} is not accrued + recalculation + benefit"
                f" = {expected} kopecks"
            )
        if self.recalculation_kopecks and not self.recalculation_reason.strip():
            raise ValueError(f"{self.service_name}: a recalculation needs its reason")


@dataclass(frozen=True, slots=True)
class BillDocument:
    """Everything printed on one bill. ``opening_debt_kopecks`` is the debt at the start of the
    period (negative: an advance), ``paid_kopecks`` what was paid during the period;
    ``total_to_pay_kopecks`` must equal opening debt − paid + Σ line totals + penalty (zero or
    negative means nothing to pay, and the bill has no QR code)."""

    period: date
    account: str
    payer_name: str
    address: str
    area: Decimal | None
    residents: int | None
    executor: BillParty
    recipients: tuple[BillRecipient, ...]
    lines: tuple[BillLine, ...]
    opening_debt_kopecks: int
    paid_kopecks: int
    penalty_kopecks: int
    total_to_pay_kopecks: int
    due_date: date
    verify_url: str | None = None  # where the public ledger is
    ledger_key: str | None = None  # the account's key to its entries there (hex salt of its commitment)

    def __post_init__(self) -> None:
        if self.period.day != 1:
            raise ValueError(f"the period is given by the first day of its month, got {self.period}")
        if not self.account.strip():
            raise ValueError("the bill needs a personal account number")
        if not self.recipients:
            raise ValueError("the bill needs at least one recipient of the payment")
        inns = {recipient.inn for recipient in self.recipients}
        strays = sorted({line.service_name for line in self.lines if line.supplier_inn not in inns})
        if strays:
            raise ValueError(f"lines whose supplier is not among the recipients: {', '.join(strays)}")
        expected = self.opening_debt_kopecks - self.paid_kopecks + self.charged_kopecks + self.penalty_kopecks
        if self.total_to_pay_kopecks != expected:
            raise ValueError(
                f"total to pay {self.total_to_pay_kopecks} is not opening debt − paid + charges + penalty"
                f" = {expected} kopecks"
            )

    @property
    def charged_kopecks(self) -> int:
        """The period's charges after recalculations and benefits: the sum of line totals."""
        return sum(line.total_kopecks for line in self.lines)


def payment_qr(doc: BillDocument) -> PaymentQr:
    """The QR code's requisites: the whole amount, paid to the executor's account."""
    executor = doc.executor
    period = f"{doc.period.month:02d}.{doc.period.year}"
    surname = doc.payer_name.split()[0] if doc.payer_name.split() else ""
    return PaymentQr(
        name=executor.name,
        personal_acc=executor.bank_account,
        bank_name=executor.bank_name,
        bic=executor.bic,
        corresp_acc=executor.corr_account,
        payee_inn=executor.inn,
        kpp=executor.kpp,
        sum_kopecks=doc.total_to_pay_kopecks,
        purpose=f"Оплата ЖКУ ЛС {doc.account} за {period}",
        pers_acc=doc.account,
        paym_period=f"{doc.period.month:02d}{doc.period.year}",
        last_name=surname,
        payer_address=doc.address,
    )


# --- formatting ---------------------------------------------------------------------------------


def format_money(kopecks: int) -> str:
    """123456 -> "1 234,56"; -5 -> "-0,05" (thousands separated by a space)."""
    sign = "-" if kopecks < 0 else ""
    rubles, cents = divmod(abs(kopecks), 100)
    return f"{sign}{rubles:,}".replace(",", " ") + f",{cents:02d}"


def format_decimal(value: Decimal | None) -> str:
    """Decimal("12.500") -> "12,500" (as given, never in exponent form); None -> "—"."""
    if value is None:
        return "—"
    return format(value, "f").replace(".", ",")


def format_date(day: date) -> str:
    return f"{day.day:02d}.{day.month:02d}.{day.year}"


def period_title(period: date) -> str:
    return f"{MONTHS[period.month - 1]} {period.year} г."


# --- drawing ------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _register_fonts() -> None:
    """Register the bundled fonts once per process (reportlab keeps them in a global registry)."""
    pdfmetrics.registerFont(TTFont(FONT, str(FONTS_DIR / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont(FONT_BOLD, str(FONTS_DIR / "DejaVuSans-Bold.ttf")))


class QrFlowable(Flowable):  # type: ignore[misc]  # reportlab has no type hints
    """A QR code drawn as vector rectangles (one per horizontal run of dark modules, all in one
    filled path), with its quiet zone left white."""

    def __init__(self, payload: str) -> None:
        super().__init__()
        qr = segno.make(payload, encoding="utf-8", error="m", micro=False)
        self.rows: list[bytes] = [bytes(row) for row in qr.matrix]
        count = len(self.rows) + 2 * QR_QUIET_ZONE
        self.module = max(QR_SIDE / count, QR_MIN_MODULE)
        self.side = self.module * count

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        return self.side, self.side

    def draw(self) -> None:
        # In module units the rectangles have integer corners, so the operators are written
        # directly: reportlab's number formatting per rectangle costs milliseconds per code.
        runs = []
        last = len(self.rows) - 1
        for y, row in enumerate(self.rows):
            for match in _DARK_RUN.finditer(row):
                start, end = match.span()
                runs.append(f"{start} {last - y} {end - start} 1 re")
        canvas: Canvas = self.canv
        canvas.saveState()
        canvas.translate(QR_QUIET_ZONE * self.module, QR_QUIET_ZONE * self.module)
        canvas.scale(self.module, self.module)
        canvas.setFillColor(colors.black)
        canvas.addLiteral("\n".join(runs) + "\nf")
        canvas.restoreState()


_DARK_RUN = re.compile(rb"\x01+")


@dataclass(frozen=True)
class _Styles:
    section: TableStyle
    info: TableStyle
    recipients: TableStyle
    calculation: TableStyle
    reasons: TableStyle
    summary: TableStyle
    outer: TableStyle


@lru_cache(maxsize=1)
def _styles() -> _Styles:
    _register_fonts()
    grid: list[tuple[Any, ...]] = [
        ("GRID", (0, 0), (-1, -1), 0.4, GRID),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("FONT", (0, 0), (-1, -1), FONT, 7, 8.4),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ("LEFTPADDING", (0, 0), (-1, -1), 2.5),
        ("RIGHTPADDING", (0, 0), (-1, -1), 2.5),
    ]
    header: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (-1, 0), FONT_BOLD, 6.5, 7.8),
        ("BACKGROUND", (0, 0), (-1, 0), SHADE),
        ("VALIGN", (0, 0), (-1, 0), "MIDDLE"),
        ("ALIGN", (0, 0), (-1, 0), "CENTER"),
    ]
    return _Styles(
        section=TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), FONT_BOLD, 8.5, 10),
                ("BACKGROUND", (0, 0), (-1, -1), SHADE),
                ("LEFTPADDING", (0, 0), (-1, -1), 3),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
            ]
        ),
        info=TableStyle(
            [
                *grid,
                ("FONT", (0, 0), (0, -1), FONT_BOLD, 7, 8.4),
                ("FONT", (2, 0), (2, -1), FONT_BOLD, 7, 8.4),
            ]
        ),
        recipients=TableStyle([*grid, *header, ("ALIGN", (-1, 1), (-1, -1), "RIGHT")]),
        calculation=TableStyle(
            [
                *grid,
                *header,
                ("ALIGN", (1, 1), (1, -1), "RIGHT"),
                ("ALIGN", (2, 1), (2, -1), "CENTER"),
                ("ALIGN", (3, 1), (-1, -1), "RIGHT"),
                ("FONT", (0, -1), (-1, -1), FONT_BOLD, 7, 8.4),
                ("BACKGROUND", (0, -1), (-1, -1), SHADE),
            ]
        ),
        reasons=TableStyle([*grid, *header, ("ALIGN", (-1, 1), (-1, -1), "RIGHT")]),
        summary=TableStyle(
            [
                *grid,
                ("ALIGN", (1, 0), (1, -1), "RIGHT"),
                ("FONT", (0, -2), (-1, -1), FONT_BOLD, 8, 9.6),
                ("BACKGROUND", (0, -2), (-1, -2), SHADE),
            ]
        ),
        outer=TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 0),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 0),
                ("ALIGN", (1, 0), (1, -1), "CENTER"),
            ]
        ),
    )


def _wrap(text: str, width: float, *, bold: bool = False, size: float = 7) -> str:
    """Break ``text`` into lines that fit ``width`` (less the cell padding); a table cell draws
    a string with line breaks as several lines, which is much cheaper than a Paragraph."""
    lines = simpleSplit(text, FONT_BOLD if bold else FONT, size, width - 5)
    return "\n".join(lines) if lines else ""


def _section(title: str) -> Table:
    table = Table([[title]], colWidths=[CONTENT_WIDTH])
    table.setStyle(_styles().section)
    return table


def _part_one(doc: BillDocument) -> list[Flowable]:
    executor = doc.executor
    label, value = 30 * mm, CONTENT_WIDTH / 2 - 30 * mm
    left = [
        ("Плательщик", doc.payer_name),
        ("Адрес помещения", doc.address),
        ("Лицевой счёт", doc.account),
        ("Площадь, м²", format_decimal(doc.area)),
        ("Проживает, чел.", "—" if doc.residents is None else str(doc.residents)),
        ("Расчётный период", period_title(doc.period)),
    ]
    right = [
        ("Исполнитель", executor.name),
        ("Адрес", executor.address),
        ("Телефон", executor.phone),
        ("ИНН / КПП", f"{executor.inn} / {executor.kpp}" if executor.kpp else executor.inn),
        ("Расчётный счёт", executor.bank_account),
        ("Банк", f"{executor.bank_name}, БИК {executor.bic}, к/с {executor.corr_account}"),
    ]
    rows = [
        [_wrap(a, label, bold=True), _wrap(b, value), _wrap(c, label, bold=True), _wrap(d, value)]
        for (a, b), (c, d) in zip(left, right, strict=True)
    ]
    table = Table(rows, colWidths=[label, value, label, value])
    table.setStyle(_styles().info)
    return [_section(SECTION_1), table]


def _part_two(doc: BillDocument) -> list[Flowable]:
    qr_width = QR_SIDE + 6 * mm
    widths = [w * mm for w in (36, 19, 41, 0, 19)]
    widths[3] = CONTENT_WIDTH - qr_width - sum(widths)
    rows: list[list[str]] = [
        [
            "Получатель платежа",
            "ИНН / КПП",
            "Банковские реквизиты",
            "Виды услуг",
            "Начислено за\nпериод, руб.",
        ]
    ]
    for recipient in doc.recipients:
        lines = [line for line in doc.lines if line.supplier_inn == recipient.inn]
        services = recipient.services or tuple(dict.fromkeys(line.service_name for line in lines))
        bank = (
            f"р/с {recipient.bank_account}\n{_wrap(recipient.bank_name, widths[2])}\n"
            f"БИК {recipient.bic}\nк/с {recipient.corr_account}"
        )
        rows.append(
            [
                _wrap(recipient.name, widths[0]),
                f"{recipient.inn}\n{recipient.kpp}" if recipient.kpp else recipient.inn,
                bank,
                "\n".join(_wrap(service, widths[3]) for service in services),
                format_money(sum(line.total_kopecks for line in lines)),
            ]
        )
    recipients = Table(rows, colWidths=widths, repeatRows=1)
    recipients.setStyle(_styles().recipients)
    note = _wrap(
        f"Платёж по QR-коду зачисляется на счёт исполнителя ({doc.executor.name}), который перечисляет"
        " средства получателям по видам услуг.",
        sum(widths),
        size=7,
    )
    left = [recipients, _note(note)]
    if doc.total_to_pay_kopecks > 0:
        payload = build_payload(payment_qr(doc))
        right: list[Flowable] = [
            QrFlowable(payload),
            _caption(f"{TOTAL_TO_PAY}:\n{format_money(doc.total_to_pay_kopecks)} руб.\nдо {format_date(doc.due_date)}"),
        ]
    else:
        right = [_caption(f"{TOTAL_TO_PAY}:\n{format_money(0)} руб.\nОплата не требуется")]
    outer = Table([[left, right]], colWidths=[CONTENT_WIDTH - qr_width, qr_width])
    outer.setStyle(_styles().outer)
    return [_section(SECTION_2), outer]


def _note(text: str) -> Table:
    table = Table([[text]], colWidths=[None])
    table.setStyle(_NOTE_STYLE)
    return table


def _caption(text: str) -> Table:
    table = Table([[text]], colWidths=[None])
    table.setStyle(_CAPTION_STYLE)
    return table


_CAPTION_STYLE = TableStyle(
    [
        ("FONT", (0, 0), (-1, -1), FONT_BOLD, 8.5, 10.5),
        ("ALIGN", (0, 0), (-1, -1), "CENTER"),
        ("TOPPADDING", (0, 0), (-1, -1), 0),
    ]
)
_NOTE_STYLE = TableStyle(
    [
        ("FONT", (0, 0), (-1, -1), FONT, 7, 8.4),
        ("LEFTPADDING", (0, 0), (-1, -1), 2.5),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 0),
    ]
)


def _part_three(doc: BillDocument) -> list[Flowable]:
    widths = [w * mm for w in (0, 18, 14, 18, 13, 21, 21, 19, 21)]
    widths[0] = CONTENT_WIDTH - sum(widths)
    header = [
        "Виды услуг",
        "Объём",
        "Ед.\nизм.",
        "Тариф,\nруб.",
        "Повыш.\nкоэфф.",
        "Начислено,\nруб.",
        "Перерасчёт,\nруб.",
        "Льготы,\nруб.",
        "Итого,\nруб.",
    ]
    rows: list[list[str]] = [header]
    reasons: list[tuple[int, BillLine]] = []
    for line in doc.lines:
        recalculation = format_money(line.recalculation_kopecks) if line.recalculation_kopecks else "—"
        if line.recalculation_kopecks:
            reasons.append((len(reasons) + 1, line))
            recalculation += f" ({len(reasons)})"
        rows.append(
            [
                _wrap(line.service_name, widths[0]),
                format_decimal(line.volume),
                _wrap(line.unit, widths[2]),
                format_decimal(line.tariff),
                format_decimal(line.multiplier),
                format_money(line.accrued_kopecks),
                recalculation,
                format_money(line.benefit_kopecks) if line.benefit_kopecks else "—",
                format_money(line.total_kopecks),
            ]
        )
    rows.append(
        [
            "Итого за расчётный период",
            "",
            "",
            "",
            "",
            format_money(sum(line.accrued_kopecks for line in doc.lines)),
            format_money(sum(line.recalculation_kopecks for line in doc.lines)),
            format_money(sum(line.benefit_kopecks for line in doc.lines)),
            format_money(doc.charged_kopecks),
        ]
    )
    calculation = Table(rows, colWidths=widths, repeatRows=1)
    calculation.setStyle(_styles().calculation)
    flowables: list[Flowable] = [_section(SECTION_3), calculation, Spacer(1, 2 * mm)]

    if reasons:
        reason_widths = [8 * mm, 55 * mm, 0, 24 * mm]
        reason_widths[2] = CONTENT_WIDTH - sum(w for w in reason_widths if w)
        reason_rows = [["№", "Вид услуги", "Основание перерасчёта", "Сумма, руб."]]
        reason_rows += [
            [
                str(number),
                _wrap(line.service_name, reason_widths[1]),
                _wrap(line.recalculation_reason, reason_widths[2]),
                format_money(line.recalculation_kopecks),
            ]
            for number, line in reasons
        ]
        table = Table(reason_rows, colWidths=reason_widths, repeatRows=1)
        table.setStyle(_styles().reasons)
        flowables += [_section(SECTION_4), table, Spacer(1, 2 * mm)]

    opening = (
        ("Задолженность на начало периода", format_money(doc.opening_debt_kopecks))
        if doc.opening_debt_kopecks >= 0
        else ("Аванс (переплата) на начало периода", format_money(-doc.opening_debt_kopecks))
    )
    summary_rows = [
        opening,
        ("Оплачено в расчётном периоде", format_money(doc.paid_kopecks)),
        ("Начислено за расчётный период", format_money(doc.charged_kopecks)),
        ("Пени", format_money(doc.penalty_kopecks)),
        (f"{TOTAL_TO_PAY}, руб.", format_money(doc.total_to_pay_kopecks)),
        ("Оплатить до", format_date(doc.due_date)),
    ]
    summary = Table([list(row) for row in summary_rows], colWidths=[70 * mm, 30 * mm], hAlign="RIGHT")
    summary.setStyle(_styles().summary)
    flowables.append(summary)
    if doc.verify_url:
        text = f"Проверить начисления и платежи в открытом реестре: {doc.verify_url}"
        if doc.ledger_key:
            text += f". Ключ лицевого счёта в реестре: {doc.ledger_key}"
        flowables += [Spacer(1, 2 * mm), _note(_wrap(text, CONTENT_WIDTH))]
    return flowables


def _title(doc: BillDocument) -> list[Flowable]:
    table = Table(
        [
            [
                "ЕДИНЫЙ ПЛАТЁЖНЫЙ ДОКУМЕНТ",
                f"за {period_title(doc.period)}    Лицевой счёт № {doc.account}",
            ]
        ],
        colWidths=[CONTENT_WIDTH / 2, CONTENT_WIDTH / 2],
    )
    table.setStyle(_TITLE_STYLE)
    return [table, Spacer(1, 1.5 * mm)]


_TITLE_STYLE = TableStyle(
    [
        ("FONT", (0, 0), (0, 0), FONT_BOLD, 12, 14),
        ("FONT", (1, 0), (1, 0), FONT_BOLD, 9, 14),
        ("ALIGN", (1, 0), (1, 0), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "BOTTOM"),
        ("LEFTPADDING", (0, 0), (-1, -1), 0),
        ("RIGHTPADDING", (0, 0), (-1, -1), 0),
    ]
)


def render_bill(doc: BillDocument) -> bytes:
    """The bill as a one- or two-page A4 PDF (Russian), with the payment QR code when there is
    something to pay."""
    _register_fonts()
    out = BytesIO()
    footer = f"ЕПД · лицевой счёт {doc.account} · {period_title(doc.period)}"

    def on_page(canvas: Canvas, _template: BaseDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 6.5)
        canvas.setFillColor(GRID)
        canvas.drawString(MARGIN, MARGIN / 2, footer)
        canvas.drawRightString(PAGE_WIDTH - MARGIN, MARGIN / 2, f"стр. {canvas.getPageNumber()}")
        canvas.restoreState()

    frame = Frame(
        MARGIN,
        MARGIN,
        CONTENT_WIDTH,
        PAGE_HEIGHT - 2 * MARGIN,
        leftPadding=0,
        rightPadding=0,
        topPadding=0,
        bottomPadding=0,
    )
    template = BaseDocTemplate(
        out,
        pagesize=A4,
        pageTemplates=[PageTemplate("bill", [frame], onPage=on_page)],
        title=f"ЕПД {doc.account} за {period_title(doc.period)}",
        author=doc.executor.name,
        creator="zhkh",
        invariant=1,
        lang="ru-RU",
    )
    story: list[Flowable] = [
        *_title(doc),
        *_part_one(doc),
        Spacer(1, 2.5 * mm),
        *_part_two(doc),
        Spacer(1, 2.5 * mm),
        *_part_three(doc),
    ]
    template.build(story)
    return out.getvalue()


def bill_file_name(doc: BillDocument) -> str:
    """``<period YYYY-MM>_<account>.pdf``, the account made safe for a file name."""
    account = re.sub(r"[^\w.-]", "_", doc.account.strip())
    return f"{doc.period.year:04d}-{doc.period.month:02d}_{account}.pdf"


def render_bills_to_directory(
    docs: Iterable[BillDocument],
    out_dir: Path,
    on_progress: Callable[[int], None] | None = None,
    *,
    jobs: int = 1,
) -> list[Path]:
    """Render each bill to ``out_dir/<YYYY-MM>_<account>.pdf`` (the directory is created; files
    are replaced). ``on_progress`` is called with the number of bills written so far after each
    one. ``jobs`` > 1 renders in that many processes (bills are independent; rendering is CPU
    work). Returns the paths in the order of ``docs``; two documents with the same period and
    account are refused, since the second would overwrite the first."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    seen: set[str] = set()

    def checked(all_docs: Iterable[BillDocument]) -> Iterator[BillDocument]:
        for doc in all_docs:
            name = bill_file_name(doc)
            if name in seen:
                raise ValueError(f"two bills for account {doc.account} in {doc.period:%Y-%m}")
            seen.add(name)
            paths.append(out_dir / name)
            yield doc

    with ExitStack() as stack:
        if jobs > 1:
            pool = stack.enter_context(ProcessPoolExecutor(max_workers=jobs))
            rendered: Iterable[bytes] = pool.map(render_bill, checked(docs), chunksize=32)
        else:
            rendered = map(render_bill, checked(docs))
        for written, pdf in enumerate(rendered, start=1):
            path = paths[written - 1]
            partial = path.with_suffix(".pdf.part")
            partial.write_bytes(pdf)
            partial.replace(path)  # a reader never sees half a bill
            if on_progress is not None:
                on_progress(written)
    return paths


__all__ = [
    "BillDocument",
    "BillLine",
    "BillParty",
    "BillRecipient",
    "format_money",
    "payment_qr",
    "render_bill",
    "render_bills_to_directory",
]
