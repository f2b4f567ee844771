"""The bill of a real billed account: lines from the run, debt and payments from the books, and
the QR code read back from the rendered PDF says exactly what is to be paid."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pypdfium2 as pdfium  # type: ignore[import-untyped]
import pytest
import zxingcpp
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.builders import MANAGER_INN, SUPPLIER_INN
from tests.integration.billing.conftest import APRIL, MARCH
from tests.unit.billing.test_epd import page_texts
from zhkh.billing.bills import bill_documents, issue_ledger_keys
from zhkh.billing.epd import render_bill, render_bills_to_directory
from zhkh.billing.errors import PeriodNotClosed
from zhkh.billing.payment_qr import parse_payload
from zhkh.billing.service import close_period, export_rows, run_billing
from zhkh.core.errors import NotFound
from zhkh.core.money import parse_rubles
from zhkh.housing.models import Account
from zhkh.ledger.commitments import salts
from zhkh.ledger.models import AccountSalt
from zhkh.payments.models import PaymentSource
from zhkh.payments.service import Incoming, take_in


def test_the_bill_shows_the_runs_lines_the_payments_and_a_qr_code_for_the_rest(
    session: Session, march_readings: None, tmp_path: Path
) -> None:
    run_billing(session, MARCH)
    with pytest.raises(PeriodNotClosed, match="2026-03 is not closed"):
        next(bill_documents(session, MARCH, "1001"))
    close_period(session, MARCH)
    take_in(session, PaymentSource.CASH_DESK, [Incoming("b-1", 100000, date(2026, 3, 20), "1001")])

    (bill,) = bill_documents(session, MARCH, "1001")
    lines = list(export_rows(session, MARCH, "1001"))
    charged = sum(parse_rubles(row["amount"]) for row in lines)
    assert bill.charged_kopecks == charged == 413904  # 4139.04, see test_billing_api
    assert (bill.opening_debt_kopecks, bill.paid_kopecks, bill.penalty_kopecks) == (0, 100000, 0)
    assert bill.total_to_pay_kopecks == charged - 100000
    assert bill.due_date == date(2026, 4, 15)
    assert {r.inn for r in bill.recipients} == {MANAGER_INN, SUPPLIER_INN}

    image = pdfium.PdfDocument(render_bill(bill))[0].render(scale=3).to_pil()
    (code,) = zxingcpp.read_barcodes(image)
    fields = parse_payload(code.text)
    assert (fields["Sum"], fields["PersAcc"], fields["PaymPeriod"], fields["TechCode"]) == (
        str(charged - 100000),
        "1001",
        "032026",
        "02",
    )
    assert fields["PayeeINN"] == MANAGER_INN

    written = render_bills_to_directory(bill_documents(session, MARCH), tmp_path, jobs=2)
    assert sorted(p.name for p in written) == ["2026-03_1001.pdf", "2026-03_1002.pdf", "2026-03_1003.pdf"]
    assert all(p.read_bytes().startswith(b"%PDF") for p in written)


def test_bills_of_an_unbilled_account_or_period(session: Session, march_readings: None) -> None:
    with pytest.raises(PeriodNotClosed):
        next(bill_documents(session, APRIL))
    run_billing(session, MARCH)
    close_period(session, MARCH)
    with pytest.raises(NotFound, match="account 4242 was not billed in 2026-03"):
        next(bill_documents(session, MARCH, "4242"))


def test_the_bill_says_where_the_ledger_is_and_prints_the_accounts_key_to_it(
    session: Session, march_readings: None
) -> None:
    run_billing(session, MARCH)
    close_period(session, MARCH)
    assert issue_ledger_keys(session, MARCH, "1001") == 1
    assert session.scalar(select(func.count()).select_from(AccountSalt)) == 1, "only the account asked for"
    assert issue_ledger_keys(session, MARCH) == 3
    (bill,) = bill_documents(session, MARCH, "1001", ledger_url="https://zhkh.example.org/ledger")
    account_id = session.scalar(select(Account.id).where(Account.number == "1001"))
    assert account_id is not None
    salt = salts(session, [account_id])[account_id]
    assert (bill.verify_url, bill.ledger_key) == ("https://zhkh.example.org/ledger", salt.hex())
    printed = "".join(page_texts(render_bill(bill))).replace("\r", "").replace("\n", "")
    assert "https://zhkh.example.org/ledger" in printed
    assert salt.hex() in printed
    (plain,) = bill_documents(session, MARCH, "1001")
    assert (plain.verify_url, plain.ledger_key) == (None, None)
