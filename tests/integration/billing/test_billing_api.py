"""The billing API: an account's lines with explanations, for an operator and for the resident."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.billing.conftest import MARCH
from zhkh.app import create_app
from zhkh.billing.service import close_period, export_rows, run_billing
from zhkh.core.config import Settings
from zhkh.identity.service import create_token


@pytest.fixture
def client(session: Session, march_readings: None) -> Iterator[TestClient]:
    run_billing(session, MARCH)
    factory = sessionmaker(bind=session.connection(), join_transaction_mode="create_savepoint")
    with TestClient(create_app(session_factory=factory, settings=Settings())) as test_client:
        yield test_client


def bearer(session: Session, scopes: list[str], subject: str | None = None) -> dict[str, str]:
    name = f"billing-{next(_numbers)}"
    return {"Authorization": f"Bearer {create_token(session, name, scopes, subject).secret}"}


_numbers = itertools.count()


def test_an_account_s_lines_are_the_export_s_rows_with_explanations(client: TestClient, session: Session) -> None:
    answer = client.get("/api/v1/billing/accounts/1001/lines?period=2026-03", headers=bearer(session, ["billing:read"]))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["account"], body["period"], body["status"]) == ("1001", "2026-03", "open")
    exported = list(export_rows(session, MARCH, "1001"))
    assert [{k: v for k, v in line.items() if k != "explanation"} for line in body["lines"]] == exported
    cold = next(line for line in body["lines"] if line["service"] == "cold_water")
    assert (
        cold["explanation"]
        == "Холодная вода: счётчик CW-1001: показания 100,000 → 107,000 = 7,000 м³ × 50,00 ₽ = 350,00 ₽"
    )
    assert body["total"] == "4139.04"  # 1368 + 350 + 400 + 360 + 1650 + 11.04, see test_run

    english = client.get(
        "/api/v1/billing/accounts/1001/lines?period=2026-03&lang=en", headers=bearer(session, ["billing:read"])
    ).json()
    cold = next(line for line in english["lines"] if line["service"] == "cold_water")
    assert (
        cold["explanation"] == "Cold water: meter CW-1001: readings 100.000 → 107.000 = 7.000 m³ × 50.00 ₽ = 350.00 ₽"
    )
    close_period(session, MARCH)
    closed = client.get("/api/v1/billing/accounts/1001/lines?period=2026-03", headers=bearer(session, ["billing:read"]))
    assert closed.json()["status"] == "closed"


def test_a_resident_sees_their_own_bill(client: TestClient, session: Session) -> None:
    mine = client.get("/api/v1/me/bill?period=2026-03", headers=bearer(session, ["resident"], "account:1002"))
    assert mine.status_code == 200, mine.text
    assert {line["account"] for line in mine.json()["lines"]} == {"1002"}


@pytest.mark.parametrize(
    ("path", "scopes", "status", "error"),
    [
        ("/api/v1/billing/accounts/1001/lines?period=2026-03", ["housing:read"], 403, "MissingScope"),
        ("/api/v1/billing/accounts/9999/lines?period=2026-03", ["billing:read"], 404, "NotFound"),
        ("/api/v1/billing/accounts/1001/lines?period=2026-07", ["billing:read"], 404, "NotFound"),
        ("/api/v1/billing/accounts/1001/lines?period=2026-13", ["billing:read"], 400, "InvalidInput"),
        ("/api/v1/billing/accounts/1001/lines?period=March", ["billing:read"], 422, None),
        ("/api/v1/me/bill?period=2026-03", ["billing:read"], 403, "MissingScope"),
    ],
)
def test_refusals_say_why(
    client: TestClient, session: Session, path: str, scopes: list[str], status: int, error: str | None
) -> None:
    answer = client.get(path, headers=bearer(session, scopes))
    assert answer.status_code == status, answer.text
    if error:
        assert answer.json()["error"] == error
