"""Benchmark: the transparent ledger on PostgreSQL (issue 6): appending with cosigned checkpoints,
the sequencer, verifying the published log, inclusion proofs and a witness's add-checkpoint.

    python bench/ledger.py --entries 1000000                       # creates zhkh_bench_ledger(_seq)
    python bench/ledger.py --entries 1000000 --skip-build --stages verify,proofs,witness
    python bench/ledger.py --entries 50000 --profile bench/data/ledger-prof

Stages (each prints its figures and the time of its phases; nothing is asserted):

1. append: the ledger tables are emptied, three ``zhkh witness serve`` processes are started
   (each with its own key and SQLite state, as an independent organisation runs it), and a
   publisher process runs ``Publisher.publish_if_due`` in a loop (a checkpoint at most once per
   second, cosignatures from the three witnesses over HTTP, quorum 3). Meanwhile this process
   generates accrual facts (3 or 4 lines per supplier and service: the bench's stand-in for the
   fact readers, timed apart), makes them entries as ``sequencer.prepare`` does (commitment,
   canonical JSON, ~385 bytes) and appends them ``--batch`` at a time with ``store.append``, one
   transaction each (advisory lock, COPY, tiles, commit with ``synchronous_commit = on``).
   The clock runs from the first fact generated until the publisher has published the
   checkpoint of all of them.
2. verify: ``verify_log`` of the published log over HTTP from a real ``zhkh serve`` process on
   loopback, then ``publication.export`` to a directory and ``verify_log`` of that directory.
3. proofs: ``inclusion_proof(i, size, TileReader(session).node)`` for random leaves: a cold
   reader (new for every proof, with its one prefetch query), a warm one (a serving process's
   reader after earlier requests), and the tiles all in memory (no database: the cost of the
   proof itself, whatever serves it).
4. witness: a fresh ``zhkh witness serve`` gets consecutive checkpoints of the log with real
   consistency proofs over HTTP; latency percentiles, and the same decisions in-process.
5. sequencer: in a second database (``<database>_seq``) with a registry of ``--accounts``
   accounts (set-based SQL), one ``billing.accrued`` outbox message per account shaped like
   ``billing.service._announce_accruals`` writes them (6 to 10 lines: 8 services of 3
   organisations, a benefit on 5 %, a recalculation on 2 %), then
   ``Sequencer(fact_readers()).run_once`` appends them all (no publisher). The salts are deleted
   first (the first month: they are created) unless ``--keep-salts``.

``--skip-build`` reuses the databases (and the log the append stage left, for the stages after
it); keys live in ``--data`` (default bench/data/ledger). ``--profile DIR`` writes a cProfile of
the append (this process only), verify, proofs and sequencer stages: times are then not figures.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import hashlib
import multiprocessing
import os
import platform
import pstats
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: make `bench` importable

from bench.import_premises import recreate_database  # noqa: E402
from bench.phases import Phases  # noqa: E402
from zhkh.billing import ledger_facts as billing_facts  # noqa: E402
from zhkh.core.db import create_db_engine, session_factory, session_scope  # noqa: E402
from zhkh.core.net import free_port  # noqa: E402
from zhkh.ledger import merkle, publication, store, witness  # noqa: E402
from zhkh.ledger import sequencer as sequencer_module  # noqa: E402
from zhkh.ledger.checkpoint import AddCheckpoint, Checkpoint  # noqa: E402
from zhkh.ledger.commitments import commitment  # noqa: E402
from zhkh.ledger.entries import Fact, entry_data  # noqa: E402
from zhkh.ledger.note import (  # noqa: E402
    ALG_COSIGNATURE_V1,
    Signer,
    Verifier,
    generate_signer,
    parse_signer_key,
    sign_note,
)
from zhkh.ledger.publisher import Publisher, witnesses_from  # noqa: E402
from zhkh.ledger.sequencer import Sequencer  # noqa: E402
from zhkh.ledger.tiles import TileWriter, node_from_tiles  # noqa: E402
from zhkh.ledger.verify import directory_fetcher, http_fetcher, verify_log  # noqa: E402
from zhkh.schema import upgrade  # noqa: E402
from zhkh.worker import fact_readers  # noqa: E402

ORIGIN = "bench.zhkh.example/ledger"
WITNESS_NAMES = ("witness1.bench.example", "witness2.bench.example", "witness3.bench.example")
PERIOD = date(2026, 10, 1)
TARGETS = {"append": 20.0, "verify": 30.0, "proof": 0.001, "witness": 0.050}
STAGES = ("append", "verify", "proofs", "witness", "sequencer")
LEDGER_TABLES = ("ledger_entries", "ledger_tiles", "ledger_checkpoints")

# Suppliers by INN and the services each bills: an accrual entry has a line per pair the account
# owes (sorted as ``billing.ledger_facts`` sorts them), 3 or 4 lines, ~380 bytes in all.
MANAGER_INN, WATER_INN, POWER_INN = "7701000017", "7702000029", "7703000031"
SERVICES = (
    (MANAGER_INN, "maintenance"),
    (WATER_INN, "cold_water"),
    (WATER_INN, "heating"),
    (POWER_INN, "electricity"),  # on two accounts in three: the others pay their supplier directly
)


# --- measuring --------------------------------------------------------------------------------


@contextmanager
def profiled(path: Path | None, lines: int = 25) -> Iterator[None]:
    """cProfile the block into ``path`` (when given) and print the top functions by own time."""
    if path is None:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        profiler.dump_stats(path)
        print(f"  profile {path} (top {lines} by own time):")
        pstats.Stats(str(path), stream=sys.stdout).sort_stats("tottime").print_stats(lines)


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    return {
        "mean": statistics.fmean(ordered),
        "p50": at(0.50),
        "p95": at(0.95),
        "p99": at(0.99),
        "max": ordered[-1],
    }


def ms(figures: dict[str, float]) -> str:
    return ", ".join(f"{name} {value * 1000:.3f} ms" for name, value in figures.items())


def process_cpu(pid: int | str = "self") -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> float:
    """CPU seconds used so far by the PostgreSQL server's processes (backends, WAL writer,
    checkpointer) that are alive now."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    total += process_cpu(entry.name)
            except OSError:
                continue
    return total


def machine_busy() -> float:
    """CPU seconds all cores of the machine have been busy so far (every process, ours or not)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle and iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    what: str
    figure: str
    target: str
    met: bool | None
    note: str = ""


# --- the databases and the keys ----------------------------------------------------------------


def prepare_database(server: str, name: str, skip_build: bool) -> Engine:
    url = server.rsplit("/", 1)[0] + f"/{name}"
    if not skip_build:
        url = recreate_database(server, name)
    engine = create_db_engine(url)
    upgrade(engine)
    return engine


def empty_ledger(engine: Engine, *extra: str) -> None:
    """TRUNCATE fires no row triggers: the append-only tables can be emptied between runs."""
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join((*LEDGER_TABLES, *extra))}"))


def vacuum(engine: Engine, *tables: str) -> None:
    """What autovacuum would do after a load: statistics and the visibility map (untimed)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in tables:
            connection.execute(text(f"VACUUM (ANALYZE) {table}"))


@dataclass(frozen=True)
class Keys:
    log: Signer
    witnesses: tuple[Signer, ...]
    folder: Path

    @property
    def log_verifier(self) -> Verifier:
        return self.log.verifier

    def witness_verifier(self, signer: Signer) -> Verifier:
        return witness.cosigning_signer(signer).verifier

    @property
    def witness_verifiers(self) -> list[Verifier]:
        return [self.witness_verifier(signer) for signer in self.witnesses]

    def key_file(self, signer: Signer) -> Path:
        return key_file(self.folder, signer.name)


def key_file(folder: Path, name: str) -> Path:
    return folder / (name.replace("/", "_") + ".key")


def load_keys(folder: Path, fresh: bool) -> Keys:
    """The log's key and the witnesses' keys, new ones when ``fresh`` (each append run starts a
    new log, so a witness must not remember an old one), else those of the last run."""
    folder.mkdir(parents=True, exist_ok=True)
    names = (ORIGIN, *WITNESS_NAMES)
    if fresh:
        signers = [generate_signer(ORIGIN), *(generate_signer(name, ALG_COSIGNATURE_V1) for name in WITNESS_NAMES)]
        for signer in signers:
            key_file(folder, signer.name).write_text(signer.text + "\n")
    else:
        signers = [parse_signer_key(key_file(folder, name).read_text().strip()) for name in names]
    return Keys(signers[0], tuple(signers[1:]), folder)


# --- processes: witnesses and the API -----------------------------------------------------------


@dataclass
class Server:
    """A ``zhkh`` process on loopback, stopped with ``stop()``."""

    process: subprocess.Popen[bytes]
    base: str
    log_path: Path

    def stop(self) -> None:
        """Ctrl-C: uvicorn shuts down gracefully (and a profiled process still writes its profile)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=30)


def start_server(
    args: Sequence[str], log_path: Path, health: str, env: dict[str, str] | None = None, profile: Path | None = None
) -> Server:
    """Start ``zhkh ARGS --port P`` (under cProfile into ``profile`` when given: it is written when
    the process stops) and wait until ``health`` answers."""
    port = free_port()
    profiler = ["-m", "cProfile", "-o", str(profile)] if profile else []
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, *profiler, "-m", "zhkh", *args, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=os.environ | (env or {}),
            cwd=ROOT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}{health}", timeout=1).status_code == 200:
                return Server(process, base, log_path)
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"zhkh {' '.join(args)} did not start:\n{log_path.read_text()}")
        time.sleep(0.1)


def start_witness(keys: Keys, signer: Signer, state: Path) -> Server:
    """``zhkh witness serve`` with its own SQLite state (WAL, synchronous FULL), as an
    independent organisation would run it by default."""
    key_file = keys.key_file(signer)
    database = f"sqlite:///{state / (signer.name + '.db')}"
    args = ["witness", "serve", "--key", str(key_file), "--log", keys.log_verifier.text, "--db", database]
    return start_server(args, state / f"{signer.name}.log", "/healthz")


# --- stage 1: append with cosigned checkpoints --------------------------------------------------


def account_number(number: int) -> str:
    return str(10_000_000 + number)


def account_salt(number: int) -> bytes:
    """A stand-in for the account's random salt (the append stage has no salts table)."""
    return hashlib.sha256(b"bench salt " + number.to_bytes(8, "big")).digest()


def accrual_fact(number: int) -> Fact:
    """One account's month: a line per supplier and service it is billed for, kopecks varying."""
    kopecks = [10_000 + (number * 7919 + position * 104_729) % 490_000 for position in range(len(SERVICES))]
    billed = [position for position, (_, service) in enumerate(SERVICES) if service != "electricity" or number % 3]
    lines = [
        {"supplier": SERVICES[position][0], "service": SERVICES[position][1], "kopecks": kopecks[position]}
        for position in billed
    ]
    body = {"period": "2026-10", "lines": lines, "total": sum(kopecks[position] for position in billed)}
    return Fact("accrual", body, number + 1, account_number(number), PERIOD)


def build_facts(start: int, count: int) -> list[tuple[Fact, bytes]]:
    """The bench's stand-in for the fact readers: each account's fact and its salt."""
    return [(accrual_fact(number), account_salt(number)) for number in range(start, start + count)]


def build_entries(facts: Sequence[tuple[Fact, bytes]]) -> list[store.NewEntry]:
    """What ``sequencer.prepare`` makes of the facts: canonical JSON naming the account by its
    commitment, with the commitment and period kept beside it."""
    entries = []
    for fact, salt in facts:
        committed = commitment(salt, fact.account_number or "")
        entries.append(store.NewEntry(entry_data(fact, committed), committed, fact.period))
    return entries


def append_batch(factory: Callable[[], Session], entries: Sequence[store.NewEntry], phases: Phases) -> int:
    """One append transaction as the sequencer makes it: the lock, the entries and their tiles,
    the commit. Returns the new size."""
    with factory() as session:
        session.begin()
        started = time.perf_counter()
        store.take_lock(session)
        phases.add("lock", time.perf_counter() - started)
        head = store.append(session, entries)
        started = time.perf_counter()
        session.commit()
        phases.add("commit", time.perf_counter() - started)
    return head.size


def wrap_append(phases: Phases) -> None:
    phases.wrap(store, "tree_size", "reading the tree's size")
    phases.wrap(store, "edge", "reading the edge tiles")
    phases.wrap(store, "_write_entries", "COPY of the entries")
    phases.wrap(TileWriter, "append", "tiles: hashing the levels")
    phases.wrap(store, "_store_tiles", "tiles: upserting")
    phases.wrap(store, "append", "store.append")


@dataclass(frozen=True)
class PublisherConfig:
    url: str
    log_key: str  # the signer's private key text
    witnesses: tuple[tuple[str, str], ...]  # (url, verifier key)
    quorum: int
    final_size: int


def run_publisher(config: PublisherConfig, reports: Any) -> None:
    """The publisher loop, in its own process (the worker's job): publish_if_due every 20 ms;
    every publication and every witness request goes to ``reports`` with its timings."""
    engine = create_db_engine(config.url)
    factory = session_factory(engine)
    publisher = Publisher(
        parse_signer_key(config.log_key), ORIGIN, witnesses_from(list(config.witnesses)), config.quorum
    )
    timings: dict[str, float] = defaultdict(float)

    def timed(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                timings[label] += time.perf_counter() - started

        setattr(owner, name, wrapper)

    timed(store, "tree_head", "tree head")
    timed(publisher, "_request", "consistency proofs")
    timed(publisher, "_send", "witnesses (HTTP)")
    timed(store, "publish", "storing")
    original_post = publisher._post

    def post(*args: Any) -> Any:
        started = time.perf_counter()
        answer = original_post(*args)
        reports.put(("witness", answer.witness.verifier.name, answer.status, time.perf_counter() - started))
        return answer

    publisher._post = post  # type: ignore[method-assign,assignment]
    while True:
        timings.clear()
        started = time.perf_counter()
        outcome = publisher.publish_if_due(factory)
        finished = time.perf_counter()
        if outcome is None:
            time.sleep(0.02)
            continue
        reports.put(("publication", outcome.size, outcome.published, finished - started, dict(timings), finished))
        if outcome.published and outcome.size >= config.final_size:
            engine.dispose()
            return


@dataclass
class AppendFigures:
    entries: int
    seconds: float
    bytes_written: int
    phases: Phases
    publications: list[tuple[int, bool, float, dict[str, float], float]] = field(default_factory=list)
    witness_seconds: list[float] = field(default_factory=list)
    last_commit: float = 0.0
    final_published: float = 0.0
    cpu: tuple[float, ...] = (0.0, 0.0, 0.0)  # CPU seconds: this process, PostgreSQL, the whole machine


def stage_append(engine: Engine, keys: Keys, entries: int, batch: int, state: Path, profile: Path | None) -> Result:
    empty_ledger(engine)
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    witnesses = [start_witness(keys, signer, state) for signer in keys.witnesses]
    reports: Any = multiprocessing.get_context("spawn").Queue()
    config = PublisherConfig(
        engine.url.render_as_string(hide_password=False),
        keys.log.text,
        tuple((w.base, keys.witness_verifier(s).text) for w, s in zip(witnesses, keys.witnesses, strict=True)),
        quorum=len(witnesses),
        final_size=entries,
    )
    publisher = multiprocessing.get_context("spawn").Process(target=run_publisher, args=(config, reports))
    publisher.start()
    time.sleep(1.5)  # let the publisher import and connect before the clock starts
    factory = session_factory(engine)
    phases = Phases()
    wrap_append(phases)
    figures = AppendFigures(entries, 0.0, 0, phases)
    try:
        started = time.perf_counter()
        cpu_before = (process_cpu(), postgres_cpu(), machine_busy())
        with profiled(profile):
            for first in range(0, entries, batch):
                built = time.perf_counter()
                facts = build_facts(first, min(batch, entries - first))
                phases.add("building: facts (bench generator)", time.perf_counter() - built)
                built = time.perf_counter()
                new = build_entries(facts)
                phases.add("building: entries (commitment, canonical JSON)", time.perf_counter() - built)
                figures.bytes_written += sum(len(e.data) for e in new)
                transaction = time.perf_counter()
                append_batch(factory, new, phases)
                phases.add("append transaction", time.perf_counter() - transaction)
        figures.last_commit = time.perf_counter()
        while True:
            report = reports.get(timeout=120)
            if report[0] == "witness":
                figures.witness_seconds.append(report[3])
                if report[2] != 200:
                    print(f"  witness {report[1]} answered {report[2]}")
                continue
            _, size, published, seconds, timings, at = report
            figures.publications.append((size, published, seconds, timings, at))
            if published and size >= entries:
                figures.final_published = at
                break
        figures.seconds = figures.final_published - started
        cpu_after = (process_cpu(), postgres_cpu(), machine_busy())
        figures.cpu = tuple(after - before for after, before in zip(cpu_after, cpu_before, strict=True))
    finally:
        phases.restore()
        publisher.join(timeout=30)
        for server in witnesses:
            server.stop()
    return report_append(engine, figures, batch)


def report_append(engine: Engine, figures: AppendFigures, batch: int) -> Result:
    phases = figures.phases
    n = figures.entries
    with session_scope(engine) as session:
        latest = store.latest_checkpoint(session)
        assert latest is not None
        cosigners = latest.cosigners
    published = [p for p in figures.publications if p[1]]
    tail = figures.final_published - figures.last_commit
    print(
        f"  {n:,} entries ({figures.bytes_written / n:.0f} bytes each, {figures.bytes_written / 1e6:.0f} MB) in "
        f"{n // batch + (n % batch > 0)} transactions of {batch:,}; the checkpoint of size {latest.size:,} "
        f"cosigned by {cosigners} witnesses, published {tail:.2f} s after the last commit"
    )
    print(f"  appending (this process): {phases}")
    generating = phases.seconds["building: facts (bench generator)"]
    print(
        f"  without the bench's own fact generation: {figures.seconds - generating:.1f} s; CPU seconds used meanwhile: "
        f"this process {figures.cpu[0]:.1f}, PostgreSQL {figures.cpu[1]:.1f}, the whole machine {figures.cpu[2]:.1f} "
        f"of {figures.seconds * (os.cpu_count() or 1):.1f} available"
    )
    per_append = phases.seconds["append transaction"] / max(1, phases.calls["append transaction"])
    print(f"  per append transaction of {batch:,}: {per_append * 1000:.0f} ms")
    checkpoints = [p[2] for p in published]
    print(
        f"  publisher: {len(figures.publications)} checkpoints signed, {len(published)} published; "
        f"per publication {ms(percentiles(checkpoints))}"
    )
    sums: dict[str, float] = defaultdict(float)
    for signed in figures.publications:
        for label, seconds in signed[3].items():
            sums[label] += seconds
    print(f"  publisher's time in all: {', '.join(f'{k} {v:.2f} s' for k, v in sums.items())}")
    if figures.witness_seconds:
        print(f"  add-checkpoint seen by the publisher under load: {ms(percentiles(figures.witness_seconds))}")
    # The facts are the input (in production the fact readers make them from the outbox, see the
    # sequencer stage); the log's work is everything after: entries, COPY, tiles, commits, and
    # the publication of the cosigned checkpoint.
    seconds = figures.seconds - generating
    return Result(
        f"append {n:,} entries, durable, checkpoint cosigned by 3 witnesses published",
        f"{seconds:.1f} s ({n / seconds:,.0f} entries/s)",
        "≤ 20 s",
        seconds <= TARGETS["append"],
        f"wall clock {figures.seconds:.1f} s less the bench generating its facts {generating:.1f} s; "
        f"entries {phases.seconds['building: entries (commitment, canonical JSON)']:.1f} s, "
        f"COPY {phases.seconds['COPY of the entries']:.1f} s, "
        f"tiles {phases.seconds['tiles: hashing the levels'] + phases.seconds['tiles: upserting']:.1f} s, "
        f"commit {phases.seconds['commit']:.1f} s, last checkpoint {tail:.1f} s after the last commit",
    )


# --- stage 2: verify -----------------------------------------------------------------------------


def stage_verify(engine: Engine, keys: Keys, data: Path, profile: Path | None) -> list[Result]:
    results = []
    with session_scope(engine) as session:
        latest = store.latest_checkpoint(session)
    if latest is None:
        raise SystemExit("no published checkpoint: run the append stage first")
    size = latest.size
    verifiers = keys.witness_verifiers
    server = start_server(
        ["serve"],
        data / "serve.log",
        "/healthz",
        {"ZHKH_DATABASE_URL": engine.url.render_as_string(False)},
        profile and profile.resolve() / "serve.prof",
    )
    try:
        with httpx.Client(timeout=60) as client:
            fetch = counting(http_fetcher(f"{server.base}/ledger", client))
            before = (process_cpu(server.process.pid), process_cpu(), postgres_cpu(), machine_busy())
            started = time.perf_counter()
            with profiled(profile and profile / "verify-http.prof"):
                verified = verify_log(fetch, keys.log_verifier, verifiers, len(verifiers))
            seconds = time.perf_counter() - started
            after = (process_cpu(server.process.pid), process_cpu(), postgres_cpu(), machine_busy())
    finally:
        server.stop()
    served, verifying, database, machine_cpu = (a - b for a, b in zip(after, before, strict=True))
    print(
        f"  over HTTP (zhkh serve, 1 worker): {verified.checkpoint.size:,} entries, {fetch.calls:,} files "
        f"({fetch.bytes / 1e6:.0f} MB), cosigned by {len(verified.cosigners)}: {seconds:.1f} s"
    )
    print(
        f"  CPU seconds: the server {served:.1f}, the verifier {verifying:.1f}, PostgreSQL {database:.1f}, "
        f"the whole machine {machine_cpu:.1f} of {seconds * (os.cpu_count() or 1):.1f} available"
    )
    results.append(
        Result(
            f"verify {size:,} over HTTP from `zhkh serve`",
            f"{seconds:.1f} s",
            "≤ 30 s",
            seconds <= TARGETS["verify"],
            f"CPU: server {served:.0f} s, verifier {verifying:.0f} s, PostgreSQL {database:.0f} s",
        )
    )

    directory = data / "export"
    shutil.rmtree(directory, ignore_errors=True)
    started = time.perf_counter()
    with session_scope(engine) as session:
        written = publication.export(session, directory)
    exported = time.perf_counter() - started
    print(f"  export: {written:,} files in {exported:.1f} s")
    fetch = counting(directory_fetcher(directory))
    started = time.perf_counter()
    with profiled(profile and profile / "verify-directory.prof"):
        verified = verify_log(fetch, keys.log_verifier, verifiers, len(verifiers))
    seconds = time.perf_counter() - started
    print(
        f"  from the exported directory: {verified.checkpoint.size:,} entries, {fetch.calls:,} files: {seconds:.1f} s"
    )
    assert verified.checkpoint.size == size
    results.append(
        Result(
            f"verify {size:,} from an exported directory",
            f"{seconds:.1f} s",
            "≤ 30 s",
            seconds <= TARGETS["verify"],
            f"export itself {exported:.1f} s",
        )
    )
    results.append(leaf_hashing_floor(directory, size))
    return results


class counting:  # noqa: N801 - a function with counters
    def __init__(self, fetch: Callable[[str], bytes]) -> None:
        self.fetch = fetch
        self.calls = 0
        self.bytes = 0

    def __call__(self, path: str) -> bytes:
        data = self.fetch(path)
        self.calls += 1
        self.bytes += len(data)
        return data


def leaf_hashing_floor(directory: Path, size: int) -> Result:
    """What any verifier must do at least: read the bundles, hash every leaf, build the tree."""
    from zhkh.ledger.tiles import decode_bundle, entry_bundles_of_tree

    started = time.perf_counter()
    leaves = []
    for ref in entry_bundles_of_tree(size):
        leaves += [merkle.leaf_hash(entry) for entry in decode_bundle((directory / ref.path).read_bytes())]
    hashed = time.perf_counter() - started
    merkle.root(leaves)
    seconds = time.perf_counter() - started
    print(f"  floor: reading and hashing {size:,} leaves {hashed:.1f} s, with the tree {seconds:.1f} s")
    return Result("(floor) read bundles, hash leaves, root, one thread", f"{seconds:.1f} s", "", None)


# --- stage 3: inclusion proofs -------------------------------------------------------------------


def stage_proofs(engine: Engine, proofs: int, profile: Path | None) -> list[Result]:
    rng = random.Random(6)
    with session_scope(engine) as session:
        latest = store.latest_checkpoint(session)
        assert latest is not None
        size, root = latest.size, latest.root
        indices = [rng.randrange(size) for _ in range(proofs)]
        reads = Phases()
        reads.wrap(store, "read_tile", "tile reads")
        try:
            cold = timed_cold_proofs(session, indices, size)
            cold_reads = reads.calls["tile reads"] / proofs
            warm_reader = store.TileReader(session)
            for index in indices:  # a serving process's reader, warmed by earlier requests
                merkle.inclusion_proof(index, size, warm_reader.node)
            reads.calls.clear()
            with profiled(profile and profile / "proofs-warm.prof"):
                warm = timed_proofs(indices, size, lambda: warm_reader.node)
            warm_reads = reads.calls["tile reads"] / proofs
        finally:
            reads.restore()
        tiles = {
            (level, index): bytes(hashes)
            for level, index, hashes in session.execute(text("SELECT level, idx, hashes FROM ledger_tiles"))
        }
        in_memory = functools.partial(node_from_tiles, read_tile=lambda level, index: tiles[(level, index)])
        memory = timed_proofs(indices, size, lambda: in_memory)
        for index in indices[:50]:
            (data,) = store.entries(session, index, index + 1)
            proof = merkle.inclusion_proof(index, size, in_memory)
            merkle.verify_inclusion(merkle.leaf_hash(data), index, size, proof, root)
            assert proof == merkle.inclusion_proof(index, size, store.TileReader(session).node)
    print(f"  {proofs:,} random leaves of {size:,} (proofs checked against the published root)")
    print(f"  cold reader (new per proof, one prefetch query), {cold_reads:.1f} more tile reads a proof: {ms(cold)}")
    print(f"  warm reader ({len(warm_reader.tiles):,} tiles kept), {warm_reads:.1f} tile reads a proof: {ms(warm)}")
    print(f"  all tiles in memory (no database): {ms(memory)}")
    return [
        Result(
            "inclusion proof, warm TileReader",
            f"p50 {warm['p50'] * 1e3:.2f} ms, p95 {warm['p95'] * 1e3:.2f} ms",
            "≤ 1 ms",
            warm["p95"] <= TARGETS["proof"],
            f"{warm_reads:.1f} tile queries a proof",
        ),
        Result(
            "inclusion proof, cold TileReader",
            f"p50 {cold['p50'] * 1e3:.2f} ms, p95 {cold['p95'] * 1e3:.2f} ms",
            "≤ 1 ms",
            cold["p95"] <= TARGETS["proof"],
            f"{cold_reads:.1f} tile queries a proof",
        ),
        Result(
            "inclusion proof, tiles in memory (no database, no HTTP)",
            f"p50 {memory['p50'] * 1e3:.2f} ms, p95 {memory['p95'] * 1e3:.2f} ms",
            "≤ 1 ms",
            memory["p95"] <= TARGETS["proof"],
        ),
    ]


def timed_cold_proofs(session: Any, indices: Sequence[int], size: int) -> dict[str, float]:
    """A new reader per proof, as a request that finds nothing cached: one prefetch query, then
    whatever else the proof needs."""
    samples = []
    for index in indices:
        started = time.perf_counter()
        reader = store.TileReader(session)
        reader.prefetch(index, size)
        merkle.inclusion_proof(index, size, reader.node)
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


def timed_proofs(indices: Sequence[int], size: int, reader: Callable[[], merkle.NodeReader]) -> dict[str, float]:
    samples = []
    for index in indices:
        started = time.perf_counter()
        merkle.inclusion_proof(index, size, reader())
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


# --- stage 4: a witness's add-checkpoint ---------------------------------------------------------


def checkpoint_requests(engine: Engine, keys: Keys, count: int) -> list[bytes]:
    """``count`` consecutive add-checkpoint bodies over the published log (sizes evenly spread up
    to its size), each with the consistency proof from the one before, signed by the log."""
    with session_scope(engine) as session:
        latest = store.latest_checkpoint(session)
        assert latest is not None
        node = store.TileReader(session, capacity=1 << 20).node
        bodies = []
        old = 0
        for step in range(1, count + 1):
            size = latest.size * step // count
            root = merkle.range_hash(0, size, node)
            note = sign_note(Checkpoint(ORIGIN, size, root).format(), [keys.log]).format()
            proof = merkle.consistency_proof(old, size, node) if old else []
            bodies.append(AddCheckpoint(old, tuple(proof), note).format())
            old = size
        assert root == latest.root
    return bodies


def stage_witness(engine: Engine, keys: Keys, count: int, state: Path) -> list[Result]:
    bodies = checkpoint_requests(engine, keys, count + 1)
    folder = state / "witness-stage"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    signer = keys.witnesses[0]
    server = start_witness(keys, signer, folder)
    samples = []
    try:
        with httpx.Client(base_url=server.base, timeout=10) as client:
            for body in bodies:
                started = time.perf_counter()
                response = client.post("/add-checkpoint", content=body)
                samples.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise SystemExit(f"the witness answered {response.status_code}: {response.text}")
    finally:
        server.stop()
    over_http = percentiles(samples[1:])  # the first has no proof (old 0) and opens the connection
    proof_lines = [body.decode().split("\n\n", 1)[0].count("\n") for body in bodies[1:]]
    print(
        f"  {count} consecutive checkpoints, {statistics.fmean(proof_lines):.0f} proof hashes each, "
        "the witness's state in SQLite (WAL, synchronous FULL)"
    )
    print(f"  over HTTP (zhkh witness serve): {ms(over_http)}")

    phases = Phases()
    for name, label in [
        ("_parse", "parsing"),
        ("_check_signed", "log signature"),
        ("read_state", "reading the state"),
        ("_check_consistent", "consistency proof"),
        ("_advance", "storing the state (commit)"),
        ("cosign", "cosigning"),
    ]:
        phases.wrap(witness, name, label)
    engine_w = witness.create_witness_engine(f"sqlite:///{folder / 'in-process.db'}")
    logs = {ORIGIN: [keys.log_verifier]}
    samples = []
    try:
        for body in bodies:
            started = time.perf_counter()
            answer = witness.add_checkpoint(engine_w, signer, logs, body)
            samples.append(time.perf_counter() - started)
            assert answer.status == 200, answer
    finally:
        phases.restore()
        engine_w.dispose()
    in_process = percentiles(samples[1:])
    print(f"  in-process add_checkpoint(): {ms(in_process)}")
    print(f"  in-process phases over {len(bodies)} requests: {phases}")
    return [
        Result(
            "witness add-checkpoint over HTTP (loopback), consecutive checkpoints",
            f"p50 {over_http['p50'] * 1e3:.1f} ms, p95 {over_http['p95'] * 1e3:.1f} ms, "
            f"max {over_http['max'] * 1e3:.1f} ms",
            "p95 ≤ 50 ms",
            over_http["p95"] <= TARGETS["witness"],
        ),
        Result(
            "witness add_checkpoint() in-process (no HTTP)",
            f"p50 {in_process['p50'] * 1e3:.1f} ms, p95 {in_process['p95'] * 1e3:.1f} ms",
            "",
            None,
        ),
    ]


# --- stage 5: the sequencer from the outbox ------------------------------------------------------


def build_registry(engine: Engine, accounts: int) -> None:
    """Organisations, buildings (100 accounts each), premises and accounts, set-based: the
    reader looks up account numbers and suppliers' INNs, nothing else."""
    statements = [
        f"""INSERT INTO organisations (inn, name, role) VALUES
            ('{MANAGER_INN}', 'ООО «Региональная УК»', 'manager'),
            ('{WATER_INN}', 'АО «Водоканал и тепло»', 'supplier'),
            ('{POWER_INN}', 'АО «Энергосбыт»', 'supplier')""",
        """INSERT INTO buildings (code, address, manager_id)
           SELECT 'R' || lpad(b::text, 7, '0'), 'г. Регион, ул. Тестовая, д. ' || b,
                  (SELECT id FROM organisations WHERE role = 'manager')
           FROM generate_series(0, (:accounts - 1) / 100) AS b""",
        """INSERT INTO premises (building_id, number, kind, area_m2, meter_possible)
           SELECT bl.id, (n % 100 + 1)::text, 'residential', 30 + n % 70, true
           FROM generate_series(0, :accounts - 1) AS n
           JOIN buildings bl ON bl.code = 'R' || lpad((n / 100)::text, 7, '0')""",
        """INSERT INTO accounts (number, premise_id, payer, residents)
           SELECT (10000000 + row_number() OVER (ORDER BY p.id) - 1)::text, p.id, NULL, 1 + p.id % 4
           FROM premises p""",
    ]
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement), {"accounts": accounts})
    vacuum(engine, "organisations", "buildings", "premises", "accounts")


# One message per account, as _announce_accruals writes it: the account's lines with their ids,
# services, zones, suppliers, kinds, amounts and corrected periods.
OUTBOX_MESSAGES = """
INSERT INTO outbox (topic, payload, created_at, available_at, attempts)
SELECT 'billing.accrued',
       jsonb_build_object('period', '2026-10', 'account_id', a.id, 'total', sum(l.amount),
                          'lines', jsonb_agg(jsonb_build_object(
                              'line_id', a.id * 16 + l.k, 'service', l.service, 'zone', l.zone,
                              'supplier_id', l.supplier_id, 'kind', l.kind, 'amount', l.amount,
                              'corrects_period', l.corrects) ORDER BY l.k)),
       now(), now(), 0
FROM accounts a
CROSS JOIN LATERAL (VALUES
    (1, 'maintenance', 0, :manager, 'charge', 80000 + a.id % 170000, NULL),
    (2, 'capital_repair', 0, :manager, 'charge', 40000 + a.id % 70000, NULL),
    (3, 'cold_water', 0, :water, 'charge', 15000 + a.id * 7 % 50000, NULL),
    (4, 'hot_water', 0, :water, 'charge', 60000 + a.id * 11 % 150000, NULL),
    (5, 'wastewater', 0, :water, 'charge', 20000 + a.id * 13 % 60000, NULL),
    (6, 'heating', 0, :water, 'charge', 150000 + a.id * 17 % 300000, NULL),
    (7, 'electricity', 1, :power, 'charge', 30000 + a.id * 19 % 150000, NULL),
    (8, 'electricity', 2, :power, 'charge', 10000 + a.id * 23 % 50000, NULL),
    (9, 'maintenance', 0, :manager, 'benefit', -(40000 + a.id % 85000), NULL),
    (10, 'cold_water', 0, :water, 'recalculation', 11024, '2026-07')
) AS l(k, service, zone, supplier_id, kind, amount, corrects)
WHERE (l.k NOT IN (4, 8, 9, 10)
       OR (l.k = 4 AND a.id % 10 < 7) OR (l.k = 8 AND a.id % 10 < 6)
       OR (l.k = 9 AND a.id % 20 = 0) OR (l.k = 10 AND a.id % 50 = 0))
GROUP BY a.id
ORDER BY a.id
"""


def seed_outbox(engine: Engine, keep_salts: bool) -> int:
    salts = () if keep_salts else ("ledger_account_salts",)
    empty_ledger(engine, "outbox", *salts)
    with engine.begin() as connection:
        ids: dict[str, int] = dict(connection.execute(text("SELECT role || inn, id FROM organisations")).all())
        connection.execute(
            text(OUTBOX_MESSAGES),
            {
                "manager": ids[f"manager{MANAGER_INN}"],
                "water": ids[f"supplier{WATER_INN}"],
                "power": ids[f"supplier{POWER_INN}"],
            },
        )
        count = int(connection.scalar(text("SELECT count(*) FROM outbox")) or 0)
    vacuum(engine, "outbox", "ledger_account_salts")
    return count


def stage_sequencer(engine: Engine, accounts: int, keep_salts: bool, profile: Path | None) -> Result:
    started = time.perf_counter()
    messages = seed_outbox(engine, keep_salts)
    with engine.connect() as connection:
        salts = connection.scalar(text("SELECT count(*) FROM ledger_account_salts"))
        payload = connection.scalar(text("SELECT avg(pg_column_size(payload)) FROM outbox"))
    print(
        f"  {messages:,} billing.accrued messages ({payload:.0f} bytes of JSONB each) for {accounts:,} accounts, "
        f"{salts:,} salts already there, seeded in {time.perf_counter() - started:.1f} s (untimed)"
    )
    phases = Phases()
    readers = fact_readers()
    read = readers[billing_facts.TOPIC]

    def timed_reader(session: Session, payloads: Sequence[dict[str, Any]]) -> list[Fact]:
        begun = time.perf_counter()
        try:
            return read(session, payloads)
        finally:
            phases.add("reading facts (billing reader)", time.perf_counter() - begun)

    readers[billing_facts.TOPIC] = timed_reader
    phases.wrap(Sequencer, "_claim", "claiming messages (ORM)")
    phases.wrap(sequencer_module, "salts", "salts (lookup, creation)")
    phases.wrap(sequencer_module, "prepare", "prepare (salts, commitments, JSON)")
    wrap_append(phases)
    phases.wrap(Sequencer, "_append", "Sequencer._append")
    factory = session_factory(engine)
    committing: list[float] = []
    event.listen(factory, "before_commit", lambda _session: committing.append(time.perf_counter()))
    event.listen(factory, "after_commit", lambda _session: phases.add("commit", time.perf_counter() - committing[-1]))
    try:
        started = time.perf_counter()
        with profiled(profile):
            appended = Sequencer(readers).run_once(factory)
        seconds = time.perf_counter() - started
    finally:
        phases.restore()
    with session_scope(engine) as session:
        size = store.tree_size(session)
        average = session.scalar(text("SELECT avg(length(data)) FROM ledger_entries"))
    reading, preparing = "reading facts (billing reader)", "prepare (salts, commitments, JSON)"
    for total, *parts in zip(
        *(phases.samples[label] for label in ("Sequencer._append", reading, preparing, "store.append")), strict=True
    ):
        phases.add("outbox UPDATE (delivered)", total - sum(parts))
    print(f"  {appended:,} entries ({average:.0f} bytes each), log size {size:,}: {seconds:.1f} s")
    print(f"  phases: {phases}")
    claims = phases.samples["claiming messages (ORM)"][:-1]  # the last claim found nothing
    for label, batches in [
        ("claiming", claims),
        ("outbox UPDATE", phases.samples["outbox UPDATE (delivered)"]),
        ("store.append", phases.samples["store.append"]),
    ]:
        if len(batches) > 2:
            print(
                f"  {label} per batch: first {batches[0]:.2f} s, middle {batches[len(batches) // 2]:.2f} s, "
                f"last {batches[-1]:.2f} s"
            )
    return Result(
        f"sequencer: {messages:,} outbox messages → {appended:,} entries",
        f"{seconds:.1f} s ({appended / seconds:,.0f} entries/s)",
        "(no target; the append target is ≤ 20 s)",
        None,
        "salts created" if not salts else "salts existed",
    )


# --- main ----------------------------------------------------------------------------------------


def machine() -> str:
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000, help="entries to append (stage append)")
    parser.add_argument("--batch", type=int, default=20_000, help="entries per append transaction")
    parser.add_argument("--accounts", type=int, default=None, help="accounts for the sequencer (default: --entries)")
    parser.add_argument("--proofs", type=int, default=2_000, help="random inclusion proofs to time")
    parser.add_argument("--checkpoints", type=int, default=300, help="consecutive checkpoints sent to the witness")
    parser.add_argument("--keep-salts", action="store_true", help="sequencer: keep the salts of an earlier run")
    parser.add_argument(
        "--server", default=os.environ.get("ZHKH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--database", default="zhkh_bench_ledger")
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / "data" / "ledger")
    parser.add_argument("--skip-build", action="store_true", help="reuse the databases (and the log) of an earlier run")
    parser.add_argument("--profile", type=Path, help="write cProfiles here (times are then not figures)")
    parser.add_argument(
        "--stages", type=lambda value: value.split(","), default=list(STAGES), help=f"of {','.join(STAGES)}"
    )
    args = parser.parse_args()
    accounts = args.accounts or args.entries
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)

    def profile(name: str) -> Path | None:
        return args.profile / f"{name}.prof" if args.profile else None

    print(f"machine: {machine()}")
    results: list[Result] = []
    needs_log = [stage for stage in ("append", "verify", "proofs", "witness") if stage in args.stages]
    if needs_log:
        engine = prepare_database(args.server, args.database, args.skip_build)
        with engine.connect() as connection:
            print(f"PostgreSQL {connection.scalar(text('SHOW server_version'))}, {engine.url.database}")
        keys = load_keys(args.data / "keys", fresh="append" in args.stages)
        state = args.data / "witnesses"
        if "append" in args.stages:
            print(f"stage append: {args.entries:,} entries, {args.batch:,} per transaction, 3 witnesses, quorum 3")
            results.append(stage_append(engine, keys, args.entries, args.batch, state, profile("append")))
            vacuum(engine, *LEDGER_TABLES)
        if "verify" in args.stages:
            print("stage verify: verify_log over HTTP and from an exported directory")
            results += stage_verify(engine, keys, args.data, args.profile)
        if "proofs" in args.stages:
            print("stage proofs: inclusion_proof with TileReader")
            results += stage_proofs(engine, args.proofs, args.profile)
        if "witness" in args.stages:
            print("stage witness: add-checkpoint, consecutive checkpoints")
            results += stage_witness(engine, keys, args.checkpoints, state)
        engine.dispose()
    if "sequencer" in args.stages:
        engine = prepare_database(args.server, f"{args.database}_seq", args.skip_build)
        if not args.skip_build:
            started = time.perf_counter()
            build_registry(engine, accounts)
            print(f"build: {accounts:,} accounts in {time.perf_counter() - started:.1f} s")
        print("stage sequencer: billing.accrued outbox → Sequencer.run_once")
        results.append(stage_sequencer(engine, accounts, args.keep_salts, profile("sequencer")))
        engine.dispose()

    print("\nsummary:")
    print("| measurement | result | target | |")
    print("|---|---:|---|---|")
    for r in results:
        verdict = "" if r.met is None else ("met" if r.met else "**not met**")
        note = f" ({r.note})" if r.note else ""
        print(f"| {r.what}{note} | {r.figure} | {r.target} | {verdict} |")


if __name__ == "__main__":
    main()
