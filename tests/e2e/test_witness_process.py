"""`zhkh witness serve` as a real process on loopback: tlog-witness add-checkpoint over real HTTP,
and the cosigned state surviving a restart of the process."""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port, wait_until_serving
from zhkh.cli.main import run
from zhkh.ledger import merkle
from zhkh.ledger.checkpoint import Checkpoint
from zhkh.ledger.note import (
    ALG_COSIGNATURE_V1,
    Signer,
    generate_signer,
    parse_signature_lines,
    sign_note,
    verify_cosignature,
)

pytestmark = pytest.mark.e2e

ORIGIN = "zhkh.example/log"
LOG = generate_signer(ORIGIN)
WITNESS = generate_signer("witness.example/w1", ALG_COSIGNATURE_V1)
LEAVES = [merkle.leaf_hash(f"entry {i}".encode()) for i in range(20)]
TREE = merkle.MemoryTree(LEAVES)


def checkpoint_text(size: int, origin: str = ORIGIN) -> str:
    return Checkpoint(origin, size, merkle.root(LEAVES[:size])).format()


def request(
    old: int, new: int, *, signer: Signer = LOG, origin: str = ORIGIN, proof: Sequence[bytes] | None = None
) -> bytes:
    hashes = merkle.consistency_proof(old, new, TREE.node) if proof is None and 0 < old < new else proof or []
    note = sign_note(checkpoint_text(new, origin), [signer]).format()
    return ("".join([f"old {old}\n", *(base64.b64encode(h).decode() + "\n" for h in hashes), "\n"]) + note).encode()


Start = Callable[..., str]


@pytest.fixture
def start_witness(tmp_path: Path) -> Iterator[Start]:
    """Start `zhkh witness serve` (stopping the previous one); returns its base URL."""
    key = tmp_path / "witness.key"
    key.write_text(WITNESS.text + "\n")
    database = f"sqlite:///{tmp_path / 'state' / 'witness.db'}"
    running: list[subprocess.Popen[bytes]] = []

    def start(*extra: str) -> str:
        stop()
        port = free_port()
        log_path = tmp_path / f"witness-{len(running)}.log"
        with log_path.open("w") as log:
            command = ["witness", "serve", "--key", str(key), "--port", str(port), "--db", database, *extra]
            if "--log" not in extra:
                command += ["--log", LOG.verifier.text]
            process = subprocess.Popen([sys.executable, "-m", "zhkh", *command], stdout=log, stderr=subprocess.STDOUT)
        running.append(process)
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(process, base, log_path)
        return base

    def stop() -> None:
        if running and running[-1].poll() is None:
            running[-1].terminate()
            running[-1].wait(timeout=10)

    yield start
    stop()


def test_add_checkpoint_over_http_and_the_state_survives_a_restart(start_witness: Start, tmp_path: Path) -> None:
    base = start_witness()
    with httpx.Client(base_url=base, timeout=5) as client:
        first = client.post("/add-checkpoint", content=request(0, 5))
        assert first.status_code == 200, first.text
        (cosignature,) = parse_signature_lines(first.content)
        assert verify_cosignature(checkpoint_text(5), cosignature, WITNESS.verifier) > 0

        assert client.post("/add-checkpoint", content=request(5, 11)).status_code == 200

        stale = client.post("/add-checkpoint", content=request(5, 12))
        assert (stale.status_code, stale.text, stale.headers["content-type"]) == (409, "11\n", "text/x.tlog.size")
    assert "verifier key " + WITNESS.verifier.text in (tmp_path / "witness-0.log").read_text()

    base = start_witness()  # a new process on the same database
    with httpx.Client(base_url=base, timeout=5) as client:
        asked = client.post("/add-checkpoint", content=request(0, 12))
        assert (asked.status_code, asked.text, asked.headers["content-type"]) == (409, "11\n", "text/x.tlog.size")
        assert client.post("/add-checkpoint", content=request(11, 12)).status_code == 200
        rollback = client.post("/add-checkpoint", content=request(12, 11, proof=[]))
        assert rollback.status_code == 400


def test_every_refusal_over_http(start_witness: Start) -> None:
    other = generate_signer("other.example/log")
    base = start_witness()
    with httpx.Client(base_url=base, timeout=5) as client:
        assert client.post("/add-checkpoint", content=request(0, 4)).status_code == 200

        def status(data: bytes) -> int:
            return client.post("/add-checkpoint", content=data).status_code

        assert status(b"old 4\n") == 400
        assert status(request(4, 9, signer=other, origin=other.name)) == 404
        assert status(request(4, 9, signer=generate_signer(ORIGIN))) == 403
        assert status(request(4, 9, proof=[bytes(32)] * 4)) == 422
        assert status(b"old 0\n" + b"x" * 70_000) == 413
        assert client.get("/add-checkpoint").status_code == 405
        assert status(request(4, 9)) == 200


def test_a_log_whose_origin_is_not_its_key_name(start_witness: Start) -> None:
    key = generate_signer("zhkh.example/log-key-2026")
    base = start_witness("--log", key.verifier.text, "--origin", ORIGIN)
    with httpx.Client(base_url=base, timeout=5) as client:
        assert client.post("/add-checkpoint", content=request(0, 3, signer=key)).status_code == 200
        assert client.post("/add-checkpoint", content=request(3, 4, signer=LOG)).status_code == 403


def test_bad_options_are_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "witness.key"
    key.write_text(WITNESS.text)
    assert run(["witness", "serve", "--key", str(tmp_path / "missing.key"), "--log", LOG.verifier.text]) == 1
    assert "--key" in capsys.readouterr().err
    key.write_text("not a key")
    assert run(["witness", "serve", "--key", str(key), "--log", LOG.verifier.text]) == 1
    assert "not a signer key" in capsys.readouterr().err
    key.write_text(WITNESS.text)
    assert run(["witness", "serve", "--key", str(key), "--log", "nonsense"]) == 1
    assert "--log 'nonsense': not a verifier key" in capsys.readouterr().err
    assert (
        run(["witness", "serve", "--key", str(key), "--log", LOG.verifier.text, "--origin", "a", "--origin", "b"]) == 2
    )
