"""An online payment through the sandbox provider with `zhkh serve` running for real: the payer's
form post makes the sandbox call the platform's webhook over loopback HTTP, and the payment is
recorded and allocated in the database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.builders import registry
from tests.servers import free_port, wait_until_serving
from zhkh.core import db
from zhkh.core.clock import utc_now
from zhkh.core.config import Settings
from zhkh.core.periods import Period, local_date
from zhkh.finance import balances
from zhkh.finance import service as books
from zhkh.finance.models import Book, Component, TransactionKind
from zhkh.housing.models import Account, Organisation
from zhkh.identity.service import create_token
from zhkh.payments.models import OnlinePayment, OnlineState, Payment, PaymentSource

pytestmark = pytest.mark.e2e
RETURN = "https://resident.example/after-payment"


@dataclass(frozen=True)
class Served:
    base: str
    token: str
    account_id: int
    log: Path


def _prepare(url: str, tmp_path: Path) -> tuple[str, int]:
    """Accounts 1001-1003, a 1000.00 heating debt of 1001 for May 2026, and a payments token."""
    engine = db.create_db_engine(url)
    try:
        with Session(engine) as session:
            registry(session, tmp_path, premises=3)
            account_id = session.scalars(select(Account.id).where(Account.number == "1001")).one()
            supplier = session.scalars(select(Organisation.id)).first()
            assert supplier is not None
            may = Period.parse("2026-05")
            books.record(
                session,
                TransactionKind.ACCRUAL,
                may.last_day,
                "test",
                None,
                "accruals 2026-05",
                [
                    books.receivable(account_id, "heating", supplier, may.first_day, 100000, Component.PRINCIPAL),
                    books.Entry(Book.ACCRUED, -100000, service="heating", supplier_id=supplier),
                ],
            )
            secret = create_token(session, "e2e cashier", ["payments:write"]).secret
            session.commit()
    finally:
        engine.dispose()
    return secret, account_id


@pytest.fixture
def served(scratch_database: str, tmp_path: Path) -> Iterator[Served]:
    token, account_id = _prepare(scratch_database, tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    log = log_path.open("w")
    env = os.environ | {
        "ZHKH_DATABASE_URL": scratch_database,
        "ZHKH_PUBLIC_BASE_URL": base,
        "ZHKH_SANDBOX_WEBHOOK_SECRET": "e2e-sandbox-secret",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "zhkh", "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_until_serving(process, base, log_path)
        yield Served(base, token, account_id, log_path)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_paying_in_the_sandbox_records_and_allocates_the_payment(served: Served, scratch_database: str) -> None:
    auth = {"Authorization": f"Bearer {served.token}"}
    with httpx.Client(base_url=served.base, timeout=30) as client:
        body = {"account": "1001", "amount": "600.00", "period": "2026-05", "return_url": RETURN}
        created = client.post("/api/v1/payments/online", json=body, headers=auth)
        assert created.status_code == 201, created.text
        redirect = urlsplit(created.json()["redirect_url"])
        assert f"{redirect.scheme}://{redirect.netloc}" == served.base, "built on public_base_url"
        token = redirect.path.rsplit("/", 1)[-1]

        page = client.get(f"{redirect.path}?{redirect.query}")
        assert page.status_code == 200
        assert "ПЕСОЧНИЦА — ненастоящие деньги" in page.text

        query = parse_qs(redirect.query)
        form = {"action": "pay", "return_url": query["return_url"][0], "sig": query["sig"][0]}
        paid = client.post(redirect.path, data=form, follow_redirects=False)
        assert paid.status_code == 303, paid.text
        assert paid.headers["location"] == RETURN

    # The webhook came over real HTTP, from the sandbox to the platform's own listener.
    assert "POST /api/v1/payments/webhooks/sandbox HTTP/1.1" in served.log.read_text()
    engine = db.create_db_engine(scratch_database)
    try:
        with Session(engine) as session:
            online = session.scalars(select(OnlinePayment).where(OnlinePayment.provider_payment_id == token)).one()
            assert online.state is OnlineState.SUCCEEDED
            payment = session.get_one(Payment, online.payment_id)
            assert (payment.source, payment.external_id, payment.amount, payment.account_id) == (
                PaymentSource.ONLINE,
                f"sandbox:{token}",
                60000,
                served.account_id,
            )
            zone = Settings().zone
            assert local_date(online.created_at, zone) <= payment.paid_on <= local_date(utc_now(), zone)
            owed = balances.open_receivables(session, [served.account_id])[served.account_id]
            assert [r.balance for r in owed] == [40000], "the 600.00 paid the May debt down to 400.00"
            assert session.scalars(select(Payment.id)).all() == [payment.id]
    finally:
        engine.dispose()
