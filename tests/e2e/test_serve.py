"""`zhkh serve` as a real process on loopback, queried over real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.cli.test_cli import import_examples
from tests.servers import free_port, wait_until_serving
from zhkh.cli.main import run

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(scratch_database: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Iterator[tuple[str, str]]:
    import_examples(capsys)
    assert run(["token", "create", "--name", "e2e", "--scope", "housing:read"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "zhkh", "serve", "--port", str(port)],
        env=os.environ | {"ZHKH_DATABASE_URL": scratch_database},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, base, tmp_path / "server.log")
        yield base, token
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_served_api_answers_over_http(server: tuple[str, str]) -> None:
    base, token = server
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, timeout=5) as client:
        assert client.get("/healthz").json()["status"] == "ok"
        assert client.get("/api/v1/accounts").status_code == 401
        accounts = client.get("/api/v1/accounts", params={"building_id": "EX-1"}, headers=auth).json()
        assert sorted(item["account"] for item in accounts["items"]) == [
            "100101",
            "100102",
            "100103",
            "100104",
            "100105",
            "100199",
        ]
        detail = client.get("/api/v1/accounts/100103", headers=auth).json()
        assert detail["meter_possible"] is False
        assert [o["share"] for o in detail["owners"]] == ["1/3", "1/3", "1/3"]
        assert "/api/v1/buildings" in client.get("/openapi.json").json()["paths"]
