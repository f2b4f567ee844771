"""The demo town's money facts in the transparent ledger, cosigned by three witnesses.

The three witnesses run as servers on loopback inside the demo's process, each with its own key
and its own state file, exactly the code ``zhkh witness serve`` runs. The log appends every
money fact from the outbox, publishes a checkpoint once two of the three cosigned it, exports
the published log as static files, verifies them as an outsider would, and checks one resident's
proof offline.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from zhkh.core.config import get_settings
from zhkh.core.db import session_factory, session_scope
from zhkh.core.net import free_port
from zhkh.core.periods import Period
from zhkh.housing.models import Account
from zhkh.ledger import publication, store
from zhkh.ledger.commitments import commitment, salts
from zhkh.ledger.models import LedgerEntry
from zhkh.ledger.note import ALG_COSIGNATURE_V1, ALG_ED25519, Signer, generate_signer, parse_signer_key
from zhkh.ledger.proofs import resident_proofs, verify_resident_proof
from zhkh.ledger.publisher import Publisher, Witness
from zhkh.ledger.sequencer import Sequencer
from zhkh.ledger.verify import directory_fetcher, verify_log
from zhkh.ledger.witness import create_witness_app
from zhkh.worker import fact_readers

LEDGER_DIR = Path("var/demo-ledger")  # witnesses/ (their keys and state), log/ (the export), proofs/
WITNESSES = ("witness-osszn", "witness-rso", "witness-council")  # three independent organisations
QUORUM = 2


@dataclass
class LedgerReport:
    origin: str = ""
    log_key: str = ""
    witness_keys: list[str] = field(default_factory=list)
    appended: int = 0
    size: int = 0
    cosigners: list[str] = field(default_factory=list)
    exported: int = 0
    export_dir: str = ""
    verified: str = ""
    proof_account: str = ""
    proofs: list[str] = field(default_factory=list)  # one line per verified proof file


def forget_witnesses(directory: Path = LEDGER_DIR) -> None:
    """For a demo started over: the witnesses' memory of the old log would (rightly) make them
    refuse the new one as a rewritten history. A witness that has just stopped may still be
    removing its SQLite ``-wal``/``-shm`` files, so one gone by the time we get to it is fine."""
    for state in (directory / "witnesses").glob("*.db*"):
        state.unlink(missing_ok=True)


def run_ledger_demo(engine: Engine, directory: Path = LEDGER_DIR) -> LedgerReport:
    settings = get_settings()
    export_dir = directory / "log"
    report = LedgerReport(origin=settings.ledger_origin, export_dir=str(export_dir))
    log_key = _key(Path(settings.ledger_key_file), settings.ledger_origin, ALG_ED25519)
    witness_dir = directory / "witnesses"
    witness_keys = [_key(witness_dir / f"{name}.key", name, ALG_COSIGNATURE_V1) for name in WITNESSES]
    report.log_key = log_key.verifier.text
    report.witness_keys = [key.verifier.text for key in witness_keys]
    factory = session_factory(engine)
    report.appended = Sequencer(fact_readers()).run_once(factory)
    with _witnesses(log_key, witness_keys, witness_dir) as witnesses:
        publisher = Publisher(log_key, settings.ledger_origin, witnesses, QUORUM, interval=0)
        publication_ = publisher.publish_if_due(factory)
    with session_scope(engine) as session:
        latest = store.latest_checkpoint(session)
        report.size = latest.size if latest else 0
        report.exported = publication.export(session, export_dir)
    report.cosigners = publication_.cosigners if publication_ else []
    verified = verify_log(directory_fetcher(export_dir), log_key.verifier, [k.verifier for k in witness_keys], QUORUM)
    report.verified = f"{verified.checkpoint.size} entries, cosigned by {', '.join(verified.cosigners)}"
    _resident_proof(engine, log_key, witness_keys, directory / "proofs", report)
    return report


def _key(path: Path, name: str, algorithm: int) -> Signer:
    """The key at ``path``, made on the demo's first run."""
    if path.is_file():
        return parse_signer_key(path.read_text().strip())
    signer = generate_signer(name, algorithm)
    path.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:  # never readable by others
        file.write(signer.text + "\n")
    return signer


def _resident_proof(
    engine: Engine, log_key: Signer, witness_keys: list[Signer], proof_dir: Path, report: LedgerReport
) -> None:
    """The proofs of the first account for the newest period it has entries in, checked offline
    the way the resident would (``zhkh ledger verify-proof``)."""
    with session_scope(engine) as session:
        account_id, number = session.execute(select(Account.id, Account.number).order_by(Account.number).limit(1)).one()
        committed = commitment(salts(session, [account_id])[account_id], number)
        newest = session.scalar(select(func.max(LedgerEntry.period)).where(LedgerEntry.commitment == committed))
        proofs = resident_proofs(session, account_id, number, newest) if newest else []
    report.proof_account = number
    proof_dir.mkdir(parents=True, exist_ok=True)
    for proof in proofs:
        assert newest is not None
        target = proof_dir / f"{number}-{Period.of(newest)}-{proof.index}.tlog-proof"
        target.write_text(proof.bundle)
        opened = verify_resident_proof(proof.bundle, log_key.verifier, [k.verifier for k in witness_keys], QUORUM)
        report.proofs.append(f"{opened.entry['type']} at index {opened.index}: {target} verified")


@contextmanager
def _witnesses(log_key: Signer, witness_keys: list[Signer], directory: Path) -> Iterator[list[Witness]]:
    """The three witnesses served on loopback for the duration of the block."""
    from zhkh.ledger.witness import cosigning_signer

    servers = []
    witnesses = []
    for key in witness_keys:
        state = f"sqlite:///{directory / key.name}.db"
        app = create_witness_app(key, {log_key.name: [log_key.verifier]}, state)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        servers.append(server)
        witnesses.append(Witness(f"http://127.0.0.1:{port}", cosigning_signer(key).verifier))
    try:
        deadline = time.monotonic() + 10
        while not all(s.started for s in servers) and time.monotonic() < deadline:
            time.sleep(0.02)
        yield witnesses
    finally:
        for server in servers:
            server.should_exit = True
