"""A witness that answers nonsense costs its own cosignature, never the publication the other
witnesses carry; a quorum no set of witnesses can meet is refused when the publisher is made."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy.orm import Session

from tests.integration.ledger.support import Factory, Witnesses, append_synthetic
from zhkh.core.errors import InvalidInput
from zhkh.ledger.checkpoint import SIZE_CONTENT_TYPE
from zhkh.ledger.note import ALG_COSIGNATURE_V1, generate_signer
from zhkh.ledger.publisher import Publisher, Witness


@pytest.fixture
def unruly_witness() -> Iterator[str]:
    """Answers every add-checkpoint with a 409 whose size body is not a size."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = b"many\n"
            self.send_response(409)
            self.send_header("Content-Type", SIZE_CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_witness_answering_nonsense_does_not_stop_the_others(
    session: Session, factory: Factory, witnesses: Witnesses, unruly_witness: str
) -> None:
    append_synthetic(session, 40)
    log = witnesses.fresh_log()
    liar = Witness(unruly_witness, generate_signer("liar", ALG_COSIGNATURE_V1).verifier)
    publisher = Publisher(log, log.name, [*witnesses.config(), liar], quorum=3, interval=0)
    result = publisher.publish_if_due(factory)
    assert result is not None
    assert result.published
    assert sorted(result.cosigners) == sorted(v.name for v in witnesses.verifiers)
    assert "unreadable size" in result.failures["liar"]


def test_a_quorum_that_can_never_be_met_is_refused(witnesses: Witnesses) -> None:
    log = witnesses.fresh_log()
    with pytest.raises(InvalidInput, match="a quorum of 4 can never be met by 3 distinct witness keys"):
        Publisher(log, log.name, witnesses.config(), quorum=4)
    twice = [*witnesses.config()[:1], *witnesses.config()[:1]]
    with pytest.raises(InvalidInput, match="by 1 distinct"):
        Publisher(log, log.name, twice, quorum=2)
