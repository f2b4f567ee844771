"""The public ledger over real HTTP: `zhkh serve` as a process on a database holding a log cosigned
by three witnesses, and `zhkh ledger verify` as a process against it, twice (the second run
checks the grown log against the checkpoint it trusted the first time); the tile endpoints'
status codes and caching."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.ledger.support import (
    Witnesses,
    append_synthetic,
    publish_town,
    threaded_witnesses,
)
from tests.servers import free_port, wait_until_serving
from zhkh.core import db
from zhkh.ledger.checkpoint import parse_checkpoint
from zhkh.ledger.note import Signer, parse_note

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def witnesses(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Witnesses]:
    with threaded_witnesses(tmp_path_factory.mktemp("e2e-witnesses"), log_keys=4) as started:
        yield started


@dataclass(frozen=True)
class Served:
    base: str
    log: Signer
    size: int


@pytest.fixture
def served(scratch_database: str, tmp_path: Path, witnesses: Witnesses) -> Iterator[Served]:
    log = witnesses.fresh_log()
    size = publish_town(scratch_database, tmp_path, witnesses, log)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    with log_path.open("w") as output:
        env = os.environ | {"ZHKH_DATABASE_URL": scratch_database}
        process = subprocess.Popen(
            [sys.executable, "-m", "zhkh", "serve", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_serving(process, base, log_path)
        yield Served(base, log, size)
    finally:
        process.terminate()
        process.wait(timeout=10)


def verify(served: Served, witnesses: Witnesses, state: Path) -> subprocess.CompletedProcess[str]:
    command = ["ledger", "verify", "--url", f"{served.base}/ledger", "--log-key", served.log.verifier.text]
    for verifier in witnesses.verifiers:
        command += ["--witness", verifier.text]
    command += ["--quorum", "2", "--state", str(state)]
    return subprocess.run(
        [sys.executable, "-m", "zhkh", *command], capture_output=True, text=True, timeout=60, check=False
    )


def grow(url: str, witnesses: Witnesses, log: Signer, entries: int) -> int:
    """More entries, published: what the worker would do between two verifications."""
    engine = db.create_db_engine(url)
    try:
        factory = sessionmaker(engine, expire_on_commit=False)
        with Session(engine) as session:
            append_synthetic(session, entries)
            session.commit()
        result = witnesses.publisher(log).publish_if_due(factory)
        assert result is not None
        assert result.published
        return result.size
    finally:
        engine.dispose()


# Processes are slow to start: one backend here (the integration tests cover both).
@pytest.mark.parametrize("backend", ["postgresql"])
def test_verify_a_served_log_twice_as_it_grows(
    served: Served, scratch_database: str, witnesses: Witnesses, tmp_path: Path
) -> None:
    state = tmp_path / "trust" / "checkpoint"
    first = verify(served, witnesses, state)
    assert (first.returncode, first.stderr) == (0, "")
    assert f"verified: {served.log.name}, {served.size} entries" in first.stdout
    assert parse_checkpoint(parse_note(state.read_text()).text).size == served.size

    size = grow(scratch_database, witnesses, served.log, 250)
    assert size == served.size + 250 > 256
    second = verify(served, witnesses, state)
    assert (second.returncode, second.stderr) == (0, "")
    assert f"verified: {served.log.name}, {size} entries, extends the trusted {served.size}" in second.stdout
    assert parse_checkpoint(parse_note(state.read_text()).text).size == size

    with httpx.Client(base_url=f"{served.base}/ledger", timeout=10) as client:
        checkpoint = client.get("/checkpoint")
        assert checkpoint.status_code == 200
        assert checkpoint.text == state.read_text()
        assert checkpoint.headers["cache-control"] == "no-cache"
        partial = size - 256
        for path in ("/tile/0/000", "/tile/entries/000"):
            full = client.get(path)
            assert full.status_code == 200
            assert full.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert len(client.get("/tile/0/000").content) == 256 * 32
        for path in (f"/tile/0/001.p/{partial}", f"/tile/entries/001.p/{partial}", "/tile/1/000.p/1"):
            edge = client.get(path)
            assert edge.status_code == 200
            assert edge.headers["cache-control"] == "no-cache"
        for missing in ("/tile/0/001", "/tile/0/002.p/1", f"/tile/0/001.p/{partial + 1}", "/tile/entries/001"):
            assert client.get(missing).status_code == 404, missing
        for malformed in ("/tile/0/1", "/tile/x/000", "/tile/0/000.p/0", "/tile/0/000.p/256", "/tile/entries"):
            answer = client.get(malformed)
            assert answer.status_code == 400, (malformed, answer.text)
            assert "is not a tile path" in answer.json()["detail"]
