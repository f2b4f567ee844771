"""Shared helpers of the ledger tests: real witness processes (`zhkh witness serve`), fresh log
keys they trust, a session factory on the test's rolled-back connection, synthetic entries, and
a published log built with the real publisher."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.builders import SUPPLIER_INN, building, import_rows, organisation, owner, premise
from tests.servers import free_port, wait_until_serving
from zhkh.housing.imports import BuildingsImport, OrganisationsImport, OwnersImport, PremisesImport
from zhkh.housing.models import Account
from zhkh.ledger import store
from zhkh.ledger.entries import canonical
from zhkh.ledger.note import ALG_COSIGNATURE_V1, Signer, Verifier, generate_signer
from zhkh.ledger.publisher import Publisher, Witness, witnesses_from
from zhkh.ledger.witness import cosigning_signer

Factory = Callable[[], Session]

# Account numbers long enough that finding one inside an entry cannot be a coincidence.
NUMBERS = ["5190337261", "5190337262", "5190337263"]
PAYERS = ["Колокольцева Аглая Ипполитовна", "Вербицкий Платон Аристархович", "Оболенская Серафима Гавриловна"]
OWNERS = ["Колокольцев Евграф Саввич", "Вербицкая Ариадна Львовна", "Оболенский Фрол Мартынович"]
STRANGER = "Штольц Андрей Иванович"  # pays without an account number
ADDRESS = "г. Тестовск, ул. Сиреневая, д. 17"


def build_town(session: Session, tmp_path: Path, *, catalogue: bool = True) -> dict[str, int]:
    """A manager and a water company; building B-1 with three flats, each with its payer and
    owner; with ``catalogue``, the billing catalogue of the billing tests (so a period can be
    run and closed). Returns account ids by number."""
    import_rows(
        session,
        tmp_path,
        OrganisationsImport(),
        [organisation(), organisation(inn=SUPPLIER_INN, role="supplier", name="АО «Водоканал»")],
    )
    import_rows(session, tmp_path, BuildingsImport(), [building(address=ADDRESS)])
    flats = [premise(account=number, premise=str(n), payer=PAYERS[n - 1]) for n, number in enumerate(NUMBERS, 1)]
    import_rows(session, tmp_path, PremisesImport(), flats)
    import_rows(session, tmp_path, OwnersImport(), [owner(premise=str(n), owner=OWNERS[n - 1]) for n in (1, 2, 3)])
    if catalogue:
        from tests.integration.billing.conftest import import_catalogue

        import_catalogue(session, tmp_path)
    return dict(session.execute(select(Account.number, Account.id)).all())


def accrued_message(session: Session, account_id: int, period: str, amount: int = 31000) -> None:
    """A billing.accrued message as ``billing.service._announce_accruals`` writes one: a charge,
    a benefit and two lines recalculating February."""
    from zhkh.core.outbox import emit
    from zhkh.housing.models import Organisation

    supplier = session.scalars(select(Organisation.id).where(Organisation.inn == SUPPLIER_INN)).one()
    lines: list[dict[str, Any]] = [
        {"line_id": 900001, "service": "cold_water", "zone": 0, "supplier_id": supplier, "kind": "charge",
         "amount": amount, "corrects_period": None},
        {"line_id": 900002, "service": "cold_water", "zone": 0, "supplier_id": supplier, "kind": "benefit",
         "amount": -amount // 2, "corrects_period": None},
        {"line_id": 900003, "service": "hot_water", "zone": 0, "supplier_id": supplier, "kind": "recalculation",
         "amount": -2100, "corrects_period": "2026-02"},
        {"line_id": 900004, "service": "hot_water", "zone": 0, "supplier_id": supplier, "kind": "recalculation",
         "amount": 700, "corrects_period": "2026-02"},
    ]  # fmt: skip
    total = sum(line["amount"] for line in lines)
    emit(session, "billing.accrued", {"period": period, "account_id": account_id, "total": total, "lines": lines})


def factory_on(session: Session) -> Factory:
    """Sessions on the test's own connection: what the sequencer and the publisher open with
    ``session.begin()`` becomes a savepoint, and the whole test is still rolled back."""
    session.flush()
    connection = session.connection()

    def make() -> Session:
        return Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)

    return make


@dataclass
class WitnessProcess:
    signer: Signer
    directory: Path
    port: int
    log_keys: list[str]
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def verifier(self) -> Verifier:
        return cosigning_signer(self.signer).verifier

    @property
    def database(self) -> str:
        return f"sqlite:///{self.directory / 'witness.db'}"

    def launch(self) -> None:
        """Start the process (same key, same state database, same port every time)."""
        key = self.directory / "witness.key"
        if not key.exists():
            key.write_text(self.signer.text + "\n")
        self.starts += 1
        log_path = self.directory / f"witness-{self.starts}.log"
        command = ["witness", "serve", "--key", str(key), "--port", str(self.port), "--db", self.database]
        for text in self.log_keys:
            command += ["--log", text]
        with log_path.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "zhkh", *command], stdout=log, stderr=subprocess.STDOUT
            )

    def wait(self) -> None:
        assert self.process is not None
        wait_until_serving(self.process, self.url, self.directory / f"witness-{self.starts}.log")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def log_text(self) -> str:
        return "".join(path.read_text() for path in sorted(self.directory.glob("witness-*.log")))


@dataclass
class Witnesses:
    """Three witness processes that trust every key of ``log_keys``; ``fresh_log()`` hands out a
    log key no test used yet, so each test starts from witnesses that never saw its log."""

    processes: list[WitnessProcess]
    log_keys: list[Signer]
    used: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    def fresh_log(self) -> Signer:
        assert self.used < len(self.log_keys), "the witness pool ran out of log keys: raise its size"
        key = self.log_keys[self.used]
        self.used += 1
        return key

    @property
    def verifiers(self) -> list[Verifier]:
        return [p.verifier for p in self.processes]

    def config(self) -> list[Witness]:
        """The witnesses as a publisher is configured with them (fresh objects: no sizes known)."""
        return witnesses_from([(p.url, p.verifier.text) for p in self.processes])

    def publisher(
        self, log: Signer, quorum: int = 2, interval: float = 0.0, clock: Callable[[], float] | None = None
    ) -> Publisher:
        """A publisher of ``log`` (origin: its key name) asking these witnesses."""
        publisher = Publisher(log, log.name, self.config(), quorum, interval=interval)
        if clock is not None:
            publisher.clock = clock
        return publisher

    def restart(self, *numbers: int) -> None:
        for number in numbers:
            self.processes[number].launch()
        for number in numbers:
            self.processes[number].wait()


@contextmanager
def running_witnesses(directory: Path, log_keys: int, count: int = 3) -> Iterator[Witnesses]:
    """``count`` witness processes started together, trusting ``log_keys`` fresh log keys."""
    keys = [generate_signer(f"zhkh.test/log-{n}") for n in range(log_keys)]
    texts = [key.verifier.text for key in keys]
    processes = []
    for number in range(count):
        home = directory / f"witness-{number}"
        home.mkdir(parents=True)
        signer = generate_signer(f"witness-{number}.test/w", ALG_COSIGNATURE_V1)
        processes.append(WitnessProcess(signer, home, free_port(), texts))
    witnesses = Witnesses(processes, keys)
    try:
        witnesses.restart(*range(count))
        yield witnesses
    finally:
        for process in processes:  # all told to stop first, then waited for: they stop together
            if process.process is not None and process.process.poll() is None:
                process.process.terminate()
        for process in processes:
            process.stop()


class WitnessThread(WitnessProcess):
    """The same witness app served by uvicorn in a thread of the test process: for tests that need
    a cosigned log but test something else (no process to start, so no second of imports)."""

    server: Any = None
    thread: threading.Thread | None = None

    def launch(self) -> None:
        import uvicorn

        from zhkh.ledger.note import parse_verifier_key
        from zhkh.ledger.witness import create_witness_app

        logs: dict[str, list[Verifier]] = {}
        for text in self.log_keys:
            verifier = parse_verifier_key(text)
            logs.setdefault(verifier.name, []).append(verifier)
        app = create_witness_app(self.signer, logs, self.database)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", ws="none")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()

    def wait(self) -> None:
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert self.thread is not None
            assert self.thread.is_alive(), "the witness thread stopped"
            assert time.monotonic() < deadline, "the witness thread did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        if self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout=10)
        self.thread = None


@contextmanager
def threaded_witnesses(directory: Path, log_keys: int = 1, count: int = 3) -> Iterator[Witnesses]:
    """``count`` witnesses in threads of this process, trusting ``log_keys`` fresh log keys."""
    keys = [generate_signer(f"zhkh.test/log-{n}") for n in range(log_keys)]
    servers: list[WitnessProcess] = []
    for number in range(count):
        home = directory / f"witness-{number}"
        home.mkdir(parents=True)
        signer = generate_signer(f"witness-{number}.test/w", ALG_COSIGNATURE_V1)
        servers.append(WitnessThread(signer, home, free_port(), [key.verifier.text for key in keys]))
    witnesses = Witnesses(servers, keys)
    try:
        witnesses.restart(*range(count))
        yield witnesses
    finally:
        for server in servers:
            server.stop()


def publish_town(url: str, tmp_path: Path, witnesses: Witnesses, log: Signer) -> int:
    """On the committed database at ``url``: the town, April's accruals of every account and
    payments of two, logged and published with a quorum of 2; returns the published size."""
    from datetime import date

    from sqlalchemy.orm import sessionmaker

    from zhkh.core import db
    from zhkh.ledger.sequencer import Sequencer
    from zhkh.payments.models import PaymentSource
    from zhkh.payments.service import Incoming, take_in
    from zhkh.worker import fact_readers

    engine = db.create_db_engine(url)
    try:
        with Session(engine) as session:
            town = build_town(session, tmp_path, catalogue=False)
            for number in NUMBERS:
                accrued_message(session, town[number], "2026-04")
            take_in(
                session,
                PaymentSource.CASH_DESK,
                [
                    Incoming("t-1", 12000, date(2026, 4, 12), NUMBERS[0], payer=PAYERS[0]),
                    Incoming("t-2", 3000, date(2026, 4, 13), NUMBERS[1], payer=PAYERS[1]),
                ],
            )
            session.commit()
        factory = sessionmaker(engine, expire_on_commit=False)
        Sequencer(fact_readers()).run_once(factory)
        result = witnesses.publisher(log).publish_if_due(factory)
        assert result is not None
        assert result.published, result.failures
        return result.size
    finally:
        engine.dispose()


# --- entries -----------------------------------------------------------------------------------


def synthetic(number: int, tag: str = "a") -> bytes:
    """A canonical entry that is not a money fact: enough to grow a tree."""
    return canonical({"type": "test", "v": 1, "n": number, "tag": tag})


def append_synthetic(session: Session, count: int, tag: str = "a") -> store.TreeHead:
    store.take_lock(session)
    start = store.tree_size(session)
    return store.append(session, [store.NewEntry(synthetic(start + n, tag)) for n in range(count)])


def sha256_hex(salt: bytes, number: str) -> str:
    return hashlib.sha256(salt + number.encode()).hexdigest()
