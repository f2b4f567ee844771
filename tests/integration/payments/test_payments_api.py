"""The payments API over the test's transaction: online payments through the sandbox provider and
its webhook, the cash desk, the review queue. The sandbox's outgoing webhook goes to a recording
transport here; tests/e2e/test_sandbox_payment.py sends it over real HTTP."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.payments.conftest import Charge
from zhkh.app import create_app
from zhkh.core.config import Settings
from zhkh.finance import balances
from zhkh.identity.service import create_token
from zhkh.ledger import store
from zhkh.ledger.checkpoint import Checkpoint
from zhkh.ledger.note import generate_signer, sign_note
from zhkh.ledger.proofs import verify_resident_proof
from zhkh.ledger.sequencer import Sequencer
from zhkh.payments.api import get_providers
from zhkh.payments.models import OnlinePayment, OnlineState, Payment, PaymentSource, ReviewState, UnmatchedPayment
from zhkh.payments.online import PaymentProvider, SandboxProvider
from zhkh.payments.service import Incoming, take_in
from zhkh.payments.statement import account_statement
from zhkh.worker import fact_readers

SECRET = "test-sandbox-secret"
BASE = "http://platform.test"
RETURN = "https://resident.example/paid?from=sandbox"
WEBHOOK = "/api/v1/payments/webhooks/sandbox"


@dataclass
class Outgoing:
    """The sandbox's outgoing webhooks, caught instead of sent; ``status`` is what they get."""

    requests: list[httpx.Request] = field(default_factory=list)
    status: int = 200

    def handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return httpx.Response(self.status, text="ok" if self.status == 200 else "refused")


@pytest.fixture
def outgoing() -> Outgoing:
    return Outgoing()


@pytest.fixture
def client(session: Session, accounts: dict[str, int], outgoing: Outgoing) -> Iterator[TestClient]:
    factory = sessionmaker(bind=session.connection(), join_transaction_mode="create_savepoint")
    app = create_app(session_factory=factory, settings=Settings(public_base_url=BASE, sandbox_webhook_secret=SECRET))
    sandbox = SandboxProvider(SECRET, BASE, transport=httpx.MockTransport(outgoing.handle))

    def providers() -> dict[str, PaymentProvider]:
        return {"sandbox": sandbox}

    app.dependency_overrides[get_providers] = providers
    with TestClient(app) as test_client:
        yield test_client


_numbers = itertools.count()


def bearer(session: Session, scopes: list[str], subject: str | None = None) -> dict[str, str]:
    name = f"payments-{next(_numbers)}"
    return {"Authorization": f"Bearer {create_token(session, name, scopes, subject).secret}"}


def signed(body: dict[str, Any] | bytes, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"Content-Type": "application/json", "X-Sandbox-Signature": signature}


def start(client: TestClient, session: Session, account: str = "1001", amount: str = "1234.56") -> dict[str, Any]:
    body = {"account": account, "amount": amount, "period": "2026-05", "return_url": RETURN}
    response = client.post("/api/v1/payments/online", json=body, headers=bearer(session, ["payments:write"]))
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def token_of(answer: dict[str, Any]) -> str:
    url: str = answer["redirect_url"]
    return urlsplit(url).path.rsplit("/", 1)[-1]


def relative(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def event(
    token: str, kind: str = "payment.succeeded", amount: str = "1234.56", account: str = "1001"
) -> dict[str, str]:
    return {
        "event": kind,
        "payment_id": token,
        "amount": amount,
        "account": account,
        "paid_at": "2026-06-10T09:30:00+00:00",
    }


def online(session: Session, online_id: int) -> OnlinePayment:
    return session.scalars(
        select(OnlinePayment).where(OnlinePayment.id == online_id).execution_options(populate_existing=True)
    ).one()


def count_payments(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Payment)) or 0


# --- online payments ---------------------------------------------------------------------------


def test_an_online_payment_is_created_and_its_sandbox_page_shows_it(client: TestClient, session: Session) -> None:
    answer = start(client, session)
    assert answer["provider"] == "sandbox"
    assert answer["redirect_url"].startswith(f"{BASE}/sandbox/pay/")
    stored = online(session, answer["id"])
    assert (stored.provider, stored.amount, stored.period, stored.state) == (
        "sandbox",
        123456,
        date(2026, 5, 1),
        OnlineState.CREATED,
    )
    assert stored.provider_payment_id == token_of(answer)
    assert len(stored.provider_payment_id) >= 32

    page = client.get(relative(answer["redirect_url"]))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for text in ("ПЕСОЧНИЦА — ненастоящие деньги", "SANDBOX — not real money", "1001", "1234.56", "2026-05"):
        assert text in page.text
    assert 'value="pay"' in page.text
    assert 'value="decline"' in page.text
    assert 'name="return_url"' in page.text, "the signed return URL travels with the form"


def test_who_may_start_an_online_payment(client: TestClient, session: Session) -> None:
    body = {"account": "1001", "amount": "100.00", "return_url": RETURN}
    assert client.post("/api/v1/payments/online", json=body).status_code == 401
    reader = client.post("/api/v1/payments/online", json=body, headers=bearer(session, ["payments:read"]))
    assert reader.status_code == 403
    assert reader.json()["error"] == "MissingScope"
    resident = bearer(session, ["resident"], "account:1001")
    assert client.post("/api/v1/payments/online", json=body, headers=resident).status_code == 201
    other = client.post("/api/v1/payments/online", json=body | {"account": "1002"}, headers=resident)
    assert other.status_code == 403
    assert "own account" in other.json()["detail"]
    assert client.post("/api/v1/payments/online", json=body, headers=bearer(session, ["admin"])).status_code == 201


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"amount": "0"}, 400, "InvalidAmount"),
        ({"amount": "-5.00"}, 400, "InvalidAmount"),
        ({"amount": "12.345"}, 400, "InvalidAmount"),
        ({"amount": "ten"}, 400, "InvalidAmount"),
        ({"account": "9999"}, 404, "NotFound"),
        ({"period": "2026-13"}, 400, "InvalidInput"),
        ({"return_url": "javascript:alert(1)"}, 422, None),
        ({"amount": "1" * 17}, 422, None),
    ],
)
def test_bad_online_payments_are_refused_with_a_reason(
    client: TestClient, session: Session, change: dict[str, str], status: int, error: str | None
) -> None:
    body = {"account": "1001", "amount": "100.00", "return_url": RETURN} | change
    response = client.post("/api/v1/payments/online", json=body, headers=bearer(session, ["payments:write"]))
    assert response.status_code == status, response.text
    if error:
        assert response.json()["error"] == error
        assert response.json()["detail"]
    assert session.scalar(select(func.count()).select_from(OnlinePayment)) == 0


# --- the sandbox page and its webhook ----------------------------------------------------------


def test_paying_in_the_sandbox_sends_a_signed_webhook_that_records_the_payment_once(
    client: TestClient, session: Session, accounts: dict[str, int], charge: Charge, outgoing: Outgoing
) -> None:
    charge("1001", "2026-05", heating=100000)
    answer = start(client, session, amount="600.00")
    token = token_of(answer)
    query = parse_qs(urlsplit(answer["redirect_url"]).query)
    form = {"action": "pay", "return_url": query["return_url"][0], "sig": query["sig"][0]}

    paid = client.post(f"/sandbox/pay/{token}", data=form, follow_redirects=False)
    assert paid.status_code == 303
    assert paid.headers["location"] == RETURN

    (sent,) = outgoing.requests
    assert str(sent.url) == f"{BASE}{WEBHOOK}"
    expected = "sha256=" + hmac.new(SECRET.encode(), sent.content, hashlib.sha256).hexdigest()
    assert sent.headers["X-Sandbox-Signature"] == expected
    body = json.loads(sent.content)
    assert body["event"] == "payment.succeeded"
    assert (body["payment_id"], body["amount"], body["account"]) == (token, "600.00", "1001")
    assert body["paid_at"].endswith("+00:00")
    assert online(session, answer["id"]).state is OnlineState.CREATED, "only the webhook changes the state"

    delivered = client.post(WEBHOOK, content=sent.content, headers=dict(sent.headers))
    assert delivered.status_code == 200, delivered.text
    assert delivered.json()["repeated"] is False
    stored = online(session, answer["id"])
    assert stored.state is OnlineState.SUCCEEDED
    assert stored.completed_at is not None
    payment = session.get_one(Payment, stored.payment_id)
    assert (payment.source, payment.external_id, payment.amount, payment.account_id, payment.period) == (
        PaymentSource.ONLINE,
        f"sandbox:{token}",
        60000,
        accounts["1001"],
        date(2026, 5, 1),
    )
    owed = balances.open_receivables(session, [accounts["1001"]])[accounts["1001"]]
    assert [r.balance for r in owed] == [40000], "the payment was allocated to the debt"

    again = client.post(WEBHOOK, content=sent.content, headers=dict(sent.headers))
    assert again.status_code == 200
    assert again.json() == {"state": "succeeded", "payment_id": payment.id, "repeated": True}
    assert count_payments(session) == 1

    done = client.post(f"/sandbox/pay/{token}", data=form, follow_redirects=False)
    assert done.status_code == 409
    assert "уже завершён" in done.text
    assert len(outgoing.requests) == 1, "a completed payment sends nothing more"


def test_declining_marks_the_payment_failed_and_it_cannot_succeed_later(
    client: TestClient, session: Session, outgoing: Outgoing
) -> None:
    answer = start(client, session)
    token = token_of(answer)
    declined = client.post(f"/sandbox/pay/{token}", data={"action": "decline"}, follow_redirects=False)
    assert declined.status_code == 200, "no signed return URL: a page instead of a redirect"
    assert "Отклонено" in declined.text
    (sent,) = outgoing.requests
    assert json.loads(sent.content)["event"] == "payment.failed"
    failed = client.post(WEBHOOK, content=sent.content, headers=dict(sent.headers))
    assert failed.json() == {"state": "failed", "payment_id": None, "repeated": False}
    assert online(session, answer["id"]).state is OnlineState.FAILED

    late = client.post(WEBHOOK, **_signed_kwargs(event(token)))
    assert late.status_code == 409
    assert late.json()["error"] == "OnlinePaymentCompleted"
    assert count_payments(session) == 0


def _signed_kwargs(body: dict[str, Any] | bytes) -> dict[str, Any]:
    raw, headers = signed(body)
    return {"content": raw, "headers": headers}


def test_a_webhook_with_a_bad_or_missing_signature_is_refused_and_stores_nothing(
    client: TestClient, session: Session
) -> None:
    token = token_of(start(client, session))
    raw, _headers = signed(event(token))
    _other, forged = signed(event(token), secret="not-the-secret")
    bad = client.post(WEBHOOK, content=raw, headers=forged)
    assert bad.status_code == 401
    assert bad.json()["error"] == "BadSignature"
    assert "does not match" in bad.json()["detail"]
    missing = client.post(WEBHOOK, content=raw, headers={"Content-Type": "application/json"})
    assert missing.status_code == 401
    assert "X-Sandbox-Signature" in missing.json()["detail"]
    tampered_body, headers = signed(event(token, amount="1.00"))
    tampered = client.post(WEBHOOK, content=tampered_body.replace(b"1.00", b"9.00"), headers=headers)
    assert tampered.status_code == 401
    assert count_payments(session) == 0
    assert session.scalars(select(OnlinePayment.state)).all() == [OnlineState.CREATED]


def test_webhooks_for_unknown_payments_wrong_amounts_or_bad_bodies(client: TestClient, session: Session) -> None:
    token = token_of(start(client, session))
    unknown = client.post(WEBHOOK, **_signed_kwargs(event("no-such-payment")))
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "OnlinePaymentNotFound"
    more = client.post(WEBHOOK, **_signed_kwargs(event(token, amount="1234.57")))
    assert more.status_code == 409
    assert more.json()["error"] == "WebhookMismatch"
    assert "1234.56" in more.json()["detail"]
    assert "1234.57" in more.json()["detail"]
    elsewhere = client.post(WEBHOOK, **_signed_kwargs(event(token, account="1002")))
    assert elsewhere.status_code == 409
    strange = client.post(WEBHOOK, **_signed_kwargs(event(token, kind="payment.refunded")))
    assert strange.status_code == 400
    assert strange.json()["error"] == "MalformedWebhook"
    not_json = client.post(WEBHOOK, **_signed_kwargs(b"not json"))
    assert not_json.status_code == 400
    assert client.post("/api/v1/payments/webhooks/acme", **_signed_kwargs(event(token))).status_code == 404
    assert count_payments(session) == 0


def test_sandbox_pages_for_unknown_links_bad_actions_and_an_unreachable_platform(
    client: TestClient, session: Session, outgoing: Outgoing
) -> None:
    missing = client.get("/sandbox/pay/no-such-token")
    assert missing.status_code == 404
    assert "Платёж не найден" in missing.text
    assert "SANDBOX" in missing.text
    assert client.post("/sandbox/pay/no-such-token", data={"action": "pay"}).status_code == 404
    token = token_of(start(client, session))
    assert client.post(f"/sandbox/pay/{token}", data={"action": "steal"}).status_code == 400
    outgoing.status = 500
    refused = client.post(f"/sandbox/pay/{token}", data={"action": "pay"}, follow_redirects=False)
    assert refused.status_code == 502
    assert "answered 500" in refused.text
    forged = client.get(f"/sandbox/pay/{token}", params={"return_url": "https://evil.example", "sig": "0" * 32})
    assert forged.status_code == 200
    assert "evil.example" not in forged.text, "a return URL without its signature is dropped"
    assert outgoing.requests
    assert not [r for r in outgoing.requests if b"payment.failed" in r.content]


# --- the cash desk -----------------------------------------------------------------------------


def test_cash_is_recorded_once_per_receipt(client: TestClient, session: Session, accounts: dict[str, int]) -> None:
    cashier = bearer(session, ["payments:write"])
    body = {"account": "1002", "amount": "1500.00", "paid_on": "2026-06-01", "receipt": "КО-17"}
    first = client.post("/api/v1/payments/cash", json=body, headers=cashier)
    assert first.status_code == 201, first.text
    (payment_id,) = first.json()["payment_ids"]
    assert first.json()["duplicate"] is False
    payment = session.get_one(Payment, payment_id)
    assert (payment.source, payment.amount, payment.account_id) == (PaymentSource.CASH_DESK, 150000, accounts["1002"])
    assert payment.recorded_by.startswith("payments-")

    again = client.post("/api/v1/payments/cash", json=body, headers=cashier)
    assert again.status_code == 200
    assert again.json() == {"payment_ids": [payment_id], "duplicate": True}
    other = client.post("/api/v1/payments/cash", json=body | {"amount": "1600.00"}, headers=cashier)
    assert other.status_code == 409
    assert "КО-17" in other.json()["detail"]
    assert count_payments(session) == 1


def test_bad_cash_entries(client: TestClient, session: Session) -> None:
    body = {"account": "1002", "amount": "10.00", "paid_on": "2026-06-01", "receipt": "1"}
    cashier = bearer(session, ["payments:write"])
    assert (
        client.post("/api/v1/payments/cash", json=body, headers=bearer(session, ["payments:read"])).status_code == 403
    )
    assert client.post("/api/v1/payments/cash", json=body).status_code == 401
    unknown = client.post("/api/v1/payments/cash", json=body | {"account": "9999"}, headers=cashier)
    assert unknown.status_code == 404
    assert "9999" in unknown.json()["detail"]
    assert client.post("/api/v1/payments/cash", json=body | {"amount": "0.001"}, headers=cashier).status_code == 400
    assert client.post("/api/v1/payments/cash", json=body | {"receipt": " "}, headers=cashier).status_code == 400
    assert (
        client.post("/api/v1/payments/cash", json=body | {"paid_on": "yesterday"}, headers=cashier).status_code == 422
    )
    assert count_payments(session) == 0


# --- the review queue --------------------------------------------------------------------------


def test_the_review_queue_lists_waiting_payments_and_an_operator_assigns_them(
    client: TestClient, session: Session, accounts: dict[str, int], charge: Charge
) -> None:
    charge("1003", "2026-05", heating=5000)
    take_in(
        session,
        PaymentSource.BANK_STATEMENT,
        [
            Incoming("bank-1", 5000, date(2026, 6, 2), "7777", payer="Петров", purpose="ЛС 7777"),
            Incoming("bank-2", 700, date(2026, 6, 3), None, unmatched_reason="no account in the purpose"),
        ],
    )
    reader = bearer(session, ["payments:read"])
    assert client.get("/api/v1/payments/unmatched").status_code == 401
    assert client.get("/api/v1/payments/unmatched", headers=bearer(session, ["payments:write"])).status_code == 403
    listed = client.get("/api/v1/payments/unmatched", headers=reader)
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert [(i["external_id"], i["amount"], i["reason"]) for i in items] == [
        ("bank-1", "50.00", "account 7777 is not in the registry"),
        ("bank-2", "7.00", "no account in the purpose"),
    ]
    assert items[0]["payer"] == "Петров"
    assert items[0]["source"] == "bank_statement"
    first_page = client.get("/api/v1/payments/unmatched", params={"limit": 1}, headers=reader).json()
    assert len(first_page["items"]) == 1
    assert first_page["next_cursor"]

    operator = bearer(session, ["payments:write"])
    path = f"/api/v1/payments/unmatched/{items[0]['id']}/assign"
    assert client.post(path, json={"account": "1003"}, headers=reader).status_code == 403
    assert client.post(path, json={"account": "9999"}, headers=operator).status_code == 404
    assigned = client.post(path, json={"account": "1003"}, headers=operator)
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["account"] == "1003"
    assert assigned.json()["amount"] == "50.00"
    item = session.scalars(
        select(UnmatchedPayment)
        .where(UnmatchedPayment.external_id == "bank-1")
        .execution_options(populate_existing=True)
    ).one()
    assert item.state is ReviewState.ASSIGNED
    assert (item.resolved_by or "").startswith("payments-")
    assert balances.open_receivables(session, [accounts["1003"]]).get(accounts["1003"], []) == []

    again = client.post(path, json={"account": "1003"}, headers=operator)
    assert again.status_code == 409
    assert (
        client.post("/api/v1/payments/unmatched/999999/assign", json={"account": "1003"}, headers=operator).status_code
        == 404
    )
    left = client.get("/api/v1/payments/unmatched", headers=reader).json()["items"]
    assert [i["external_id"] for i in left] == ["bank-2"]


def test_the_statement_over_the_api(client: TestClient, session: Session, charge: Charge) -> None:
    charge("1001", "2026-04", heating=100000)
    take_in(session, PaymentSource.CASH_DESK, [Incoming("api-s-1", 25000, date(2026, 5, 5), "1001")])
    expected = [row.as_text() for row in account_statement(session, "1001")]
    answer = client.get("/api/v1/statements/1001", headers=bearer(session, ["payments:read"]))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"account": "1001", "rows": expected}
    assert [row["closing"] for row in expected] == ["1000.00", "750.00"]

    only_may = client.get("/api/v1/statements/1001?from=2026-05", headers=bearer(session, ["payments:read"]))
    assert [row["period"] for row in only_may.json()["rows"]] == ["2026-05"]
    mine = client.get("/api/v1/me/statement", headers=bearer(session, ["resident"], "account:1001"))
    assert mine.json()["rows"] == expected

    bad = client.get("/api/v1/statements/1001?from=May", headers=bearer(session, ["payments:read"]))
    assert (bad.status_code, bad.json()["error"]) == (400, "InvalidInput")
    unknown = client.get("/api/v1/statements/999", headers=bearer(session, ["payments:read"]))
    assert unknown.status_code == 404
    assert client.get("/api/v1/statements/1001", headers=bearer(session, ["housing:read"])).status_code == 403


def test_a_resident_downloads_the_proofs_of_their_entries_in_the_ledger(client: TestClient, session: Session) -> None:
    mine = bearer(session, ["resident"], "account:1001")
    take_in(session, PaymentSource.CASH_DESK, [Incoming("api-l-1", 25000, date(2026, 5, 5), "1001")])
    take_in(session, PaymentSource.CASH_DESK, [Incoming("api-l-2", 10000, date(2026, 5, 6), "1002")])
    factory = sessionmaker(bind=session.connection(), join_transaction_mode="create_savepoint")
    assert Sequencer(fact_readers()).run_once(factory) == 2
    nothing_yet = client.get("/api/v1/me/ledger-proofs?period=2026-05", headers=mine)
    assert (nothing_yet.status_code, nothing_yet.json()["error"]) == (404, "NotFound")

    log = generate_signer("zhkh.test/ledger")
    head = store.tree_head(session)
    store.publish(session, head, sign_note(Checkpoint(log.name, head.size, head.root).format(), [log]).format(), 0)
    answer = client.get("/api/v1/me/ledger-proofs?period=2026-05", headers=mine)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["account"], body["period"], [p["type"] for p in body["proofs"]]) == ("1001", "2026-05", ["payment"])
    opened = verify_resident_proof(body["proofs"][0]["tlog_proof"], log.verifier)
    assert (opened.account, opened.entry["type"], opened.index) == ("1001", "payment", body["proofs"][0]["index"])

    june = client.get("/api/v1/me/ledger-proofs?period=2026-06", headers=mine)
    assert june.json()["proofs"] == []
    bad = client.get("/api/v1/me/ledger-proofs?period=May", headers=mine)
    assert (bad.status_code, bad.json()["error"]) == (400, "InvalidInput")
    operator = client.get("/api/v1/me/ledger-proofs?period=2026-05", headers=bearer(session, ["payments:read"]))
    assert operator.status_code == 403
