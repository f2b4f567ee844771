"""The read API over the test's transaction: tokens, scopes, pagination, errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.builders import import_rows, owner, registry
from zhkh.app import create_app
from zhkh.core.config import Settings
from zhkh.housing.imports import OwnersImport
from zhkh.identity.service import create_token


@pytest.fixture
def client(session: Session) -> Iterator[TestClient]:
    factory = sessionmaker(bind=session.connection(), join_transaction_mode="create_savepoint")
    app = create_app(session_factory=factory, settings=Settings(api_page_limit_max=50))
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def reader_token(session: Session) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(session, 'reader', ['housing:read']).secret}"}


@pytest.fixture
def town(session: Session, tmp_path: Path) -> None:
    registry(session, tmp_path, premises=7)
    import_rows(
        session, tmp_path, OwnersImport(), [owner(premise="1", share="1/3"), owner(premise="1", owner="Б", share="2/3")]
    )


def test_healthz_and_docs(client: TestClient) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json()["database"] == "ok"
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/buildings", "/api/v1/premises", "/api/v1/accounts", "/api/v1/accounts/{account}"} <= set(paths)


def test_requests_without_a_valid_token_get_401(client: TestClient) -> None:
    missing = client.get("/api/v1/buildings")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["error"] == "InvalidToken"
    wrong = client.get("/api/v1/buildings", headers={"Authorization": "Bearer zhkh_nope"})
    assert wrong.status_code == 401
    basic = client.get("/api/v1/buildings", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 401


def test_token_without_the_scope_gets_403(client: TestClient, session: Session) -> None:
    issued = create_token(session, "meters", ["admin"])
    # Every scope known today grants housing reads; give the token one from a later capability.
    issued.token.scopes = ["readings:write"]
    session.flush()
    response = client.get("/api/v1/buildings", headers={"Authorization": f"Bearer {issued.secret}"})
    assert response.status_code == 403
    assert response.json() == {"error": "MissingScope", "detail": "the token 'meters' lacks the scope 'housing:read'"}


@pytest.mark.usefixtures("town")
def test_buildings_list_and_detail(client: TestClient, reader_token: dict[str, str]) -> None:
    listing = client.get("/api/v1/buildings", headers=reader_token).json()
    assert listing["next_cursor"] is None
    assert listing["items"] == [
        {
            "building_id": "B-1",
            "address": "г. Тестовск, ул. Первая, д. 1",
            "total_area_m2": "3000.5",
            "common_area_m2": "540",
            "manager_inn": listing["items"][0]["manager_inn"],
        }
    ]
    detail = client.get("/api/v1/buildings/B-1", headers=reader_token).json()
    assert (detail["premises"], detail["accounts"], detail["residents"]) == (7, 7, 14)
    missing = client.get("/api/v1/buildings/NOPE", headers=reader_token)
    assert missing.status_code == 404
    assert missing.json() == {"error": "BuildingNotFound", "detail": "no building 'NOPE'"}


@pytest.mark.usefixtures("town")
def test_accounts_are_paginated_with_cursors(client: TestClient, reader_token: dict[str, str]) -> None:
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/v1/accounts", params=params, headers=reader_token).json()
        seen += [item["account"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert sorted(seen) == [str(1000 + n) for n in range(1, 8)]
    assert len(set(seen)) == 7


@pytest.mark.usefixtures("town")
def test_account_detail_with_owners(client: TestClient, reader_token: dict[str, str]) -> None:
    account = client.get("/api/v1/accounts/1001", headers=reader_token).json()
    assert account["premise"] == "1"
    assert account["area_m2"] == "45.6"
    assert account["owners"] == [{"owner": "Б", "share": "2/3"}, {"owner": "Иванов Иван Иванович", "share": "1/3"}]
    assert client.get("/api/v1/accounts/0000", headers=reader_token).status_code == 404


@pytest.mark.usefixtures("town")
def test_premises_filtered_by_building(client: TestClient, reader_token: dict[str, str]) -> None:
    items = client.get("/api/v1/premises", params={"building_id": "B-1", "limit": 50}, headers=reader_token).json()
    assert len(items["items"]) == 7
    none = client.get("/api/v1/premises", params={"building_id": "B-2"}, headers=reader_token).json()
    assert none == {"items": [], "next_cursor": None}


def test_bad_paging_parameters(client: TestClient, reader_token: dict[str, str]) -> None:
    too_many = client.get("/api/v1/accounts", params={"limit": 51}, headers=reader_token)
    assert too_many.status_code == 400
    assert too_many.json() == {"error": "InvalidInput", "detail": "limit must be at most 50, got 51"}
    bad_cursor = client.get("/api/v1/accounts", params={"cursor": "!!"}, headers=reader_token)
    assert bad_cursor.status_code == 400
    assert client.get("/api/v1/accounts", params={"limit": 0}, headers=reader_token).status_code == 422


def test_every_error_has_the_same_shape(client: TestClient, reader_token: dict[str, str]) -> None:
    missing = client.get("/api/v1/nowhere", headers=reader_token)
    assert (missing.status_code, missing.json()["error"]) == (404, "NotFound")
    wrong_method = client.delete("/api/v1/accounts", headers=reader_token)
    assert (wrong_method.status_code, wrong_method.json()["error"]) == (405, "MethodNotAllowed")
    huge = client.get("/api/v1/accounts", params={"cursor": "OTIyMzM3MjAzNjg1NDc3NTgwOA"}, headers=reader_token)
    assert (huge.status_code, huge.json()["error"]) == (400, "InvalidInput")


def test_account_numbers_with_a_slash(
    client: TestClient, session: Session, tmp_path: Path, reader_token: dict[str, str]
) -> None:
    from tests.builders import import_rows, premise
    from zhkh.housing.imports import PremisesImport

    registry(session, tmp_path, premises=0)
    import_rows(session, tmp_path, PremisesImport(), [premise(account="12/3")])
    assert client.get("/api/v1/accounts/12/3", headers=reader_token).json()["account"] == "12/3"
