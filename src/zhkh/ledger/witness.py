"""A witness: C2SP tlog-witness ``add-checkpoint``, run by an organisation independent of the log.

A witness remembers, per log origin, the latest checkpoint it cosigned, and cosigns a new one only
if a consistency proof shows the new tree extends the remembered one. Logs that show different
histories to different people then cannot gather cosignatures for both, because every witness
refuses the second fork. Its state therefore lives in its OWN database (the witness's operator
runs it, not ours), on its own ``MetaData``; it must never go backwards (docs/witness.md).

The decision (``add_checkpoint``) is a function from the request body and the stored state to a
status, body and content type, in the order the specification lists its checks:

- 400 the body is malformed, or ``old`` is larger than the checkpoint's size;
- 404 the checkpoint's origin is not a log this witness was configured for;
- 403 no signature on the checkpoint verifies against a key trusted for that origin;
- 409 ``old`` is not the size the witness last cosigned (body: that size, ``text/x.tlog.size``),
  or the size equals it but the root hash differs;
- 422 the consistency proof from ``old`` to the new size does not verify;
- 200 otherwise: the state moved forward (compare-and-swap, committed) and the cosignature lines.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    Table,
    Text,
    create_engine,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

from zhkh.core.clock import utc_now
from zhkh.core.db import NAMING_CONVENTION, normalize_url
from zhkh.core.types import UtcDateTime
from zhkh.ledger import merkle
from zhkh.ledger.checkpoint import (
    MAX_ADD_CHECKPOINT_BODY,
    SIZE_CONTENT_TYPE,
    AddCheckpoint,
    Checkpoint,
    format_size_response,
    parse_add_checkpoint,
)
from zhkh.ledger.note import ALG_COSIGNATURE_V1, Note, NoteError, Signer, Verifier, cosign, verified_by

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

log = logging.getLogger(__name__)

DEFAULT_DATABASE_URL = "sqlite:///./var/witness.db"
MAX_STORED_SIZE = 2**63 - 1  # BIGINT; no log will hold more leaves
TEXT = "text/plain; charset=utf-8"

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# One row per log origin: the latest checkpoint this witness cosigned. Updated in place, only
# forward, by compare-and-swap on (tree_size, root_hash).
witness_logs = Table(
    "witness_logs",
    metadata,
    Column("origin", Text, primary_key=True),
    Column("tree_size", BigInteger, nullable=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("checkpoint", Text, nullable=False),  # the note text cosigned (origin, size, root, extensions)
    Column("updated_at", UtcDateTime, nullable=False),
)

# Requests a log signed that the witness refused because they contradict what it saw: a fork at
# the same size, or a proof that does not verify. The spec allows keeping them; they may be the
# proof that the log misbehaved, so they are kept and never deleted.
witness_evidence = Table(
    "witness_evidence",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("origin", Text, nullable=False),
    Column("status", SmallInteger, nullable=False),
    Column("reason", Text, nullable=False),
    Column("request", LargeBinary, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
)


class Answer(NamedTuple):
    """What ``add-checkpoint`` answers: HTTP status, body and its content type."""

    status: int
    body: bytes
    content_type: str


@dataclass(frozen=True, slots=True)
class LogState:
    """The latest checkpoint the witness cosigned for one origin."""

    size: int
    root: bytes


class Refusal(Exception):
    """A request the witness refuses. ``evidence_of`` names the origin when the request was signed
    by the log and contradicts what the witness saw, so it is kept as possible proof of a fork."""

    def __init__(self, status: int, reason: str, *, evidence_of: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.evidence_of = evidence_of


class StaleSize(Exception):
    """``old`` is not what the witness has: the caller must retry from ``size`` (409)."""

    def __init__(self, size: int) -> None:
        super().__init__(f"the witness's size for this log is {size}")
        self.size = size


def create_witness_engine(database_url: str = DEFAULT_DATABASE_URL) -> Engine:
    """An engine for the witness's own database, with its tables created.

    SQLite runs in WAL mode with ``synchronous = FULL``: a cosigned size that a power cut could
    forget would let the witness cosign a fork of it later, so every commit reaches the disk.
    ``sqlite://`` (in memory) shares one connection, so all threads see the same state (tests).
    """
    url = normalize_url(database_url)
    if url.get_backend_name() != "sqlite":
        engine = create_engine(url, pool_pre_ping=True)
    elif url.database in (None, "", ":memory:"):
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        if url.database and not url.database.startswith("file:"):
            from pathlib import Path

            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _durable_sqlite)
    metadata.create_all(engine)
    return engine


def _durable_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = FULL")
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.close()


def cosigning_signer(signer: Signer) -> Signer:
    """The witness key as a cosignature/v1 signer (type 0x04), whatever type its file names:
    the key ID of a cosignature commits to 0x04, so an Ed25519 note key (0x01) is re-typed."""
    if signer.algorithm == ALG_COSIGNATURE_V1:
        return signer
    return Signer(signer.name, signer.private_key, ALG_COSIGNATURE_V1)


def read_state(engine: Engine, origin: str) -> LogState | None:
    """The stored state of ``origin``, or None when the witness never cosigned for it."""
    with engine.connect() as connection:
        row = connection.execute(
            select(witness_logs.c.tree_size, witness_logs.c.root_hash).where(witness_logs.c.origin == origin)
        ).first()
    return None if row is None else LogState(int(row.tree_size), bytes(row.root_hash))


def add_checkpoint(
    engine: Engine,
    signer: Signer,
    logs: Mapping[str, Sequence[Verifier]],
    body: bytes,
    *,
    clock: Callable[[], float] = time.time,
) -> Answer:
    """Handle one ``POST /add-checkpoint`` body: check it, move the stored state forward
    atomically, and only then return the witness's cosignature."""
    try:
        request, note, checkpoint = _parse(body)
        _check_signed(note, checkpoint, logs)
        _check_sizes(request)
        seen = read_state(engine, checkpoint.origin)
        _check_consistent(seen, request, checkpoint)
        _advance(engine, seen, checkpoint, note.text)
    except StaleSize as stale:
        return Answer(409, format_size_response(stale.size), SIZE_CONTENT_TYPE)
    except Refusal as refusal:
        if refusal.evidence_of is not None:
            _keep_evidence(engine, refusal.evidence_of, refusal, body)
        return Answer(refusal.status, f"{refusal.reason}\n".encode(), TEXT)
    signature = cosign(note.text, cosigning_signer(signer), int(clock()))
    return Answer(200, signature.line.encode(), TEXT)


def _parse(body: bytes) -> tuple[AddCheckpoint, Note, Checkpoint]:
    """The request, its signed note and the checkpoint in it (not yet trusted); anything malformed,
    more than 63 proof lines included, is a 400."""
    try:
        request = parse_add_checkpoint(body)
        return request, request.note, request.checkpoint
    except NoteError as exc:  # AddCheckpointError and CheckpointError are NoteErrors
        raise Refusal(400, f"malformed add-checkpoint request: {exc}") from exc


def _check_sizes(request: AddCheckpoint) -> None:
    """400 when ``old`` is past the checkpoint's size (the spec orders it after 404 and 403), or
    when the size does not fit the witness's BIGINT column."""
    try:
        checkpoint = request.check_sizes()
    except NoteError as exc:
        raise Refusal(400, str(exc)) from exc
    if checkpoint.size > MAX_STORED_SIZE:
        raise Refusal(400, f"checkpoint size {checkpoint.size} is larger than this witness stores (2^63-1)")


def _check_signed(note: Note, checkpoint: Checkpoint, logs: Mapping[str, Sequence[Verifier]]) -> None:
    """404 for an origin the witness does not follow; 403 unless a trusted log key signed it."""
    verifiers = logs.get(checkpoint.origin)
    if not verifiers:
        raise Refusal(404, f"unknown log origin {checkpoint.origin!r}")
    try:
        trusted = verified_by(note, list(verifiers))
    except NoteError as exc:  # a signature by a known key that does not verify
        raise Refusal(403, f"checkpoint signature does not verify: {exc}") from exc
    if not trusted:
        raise Refusal(403, f"no signature by a trusted key of {checkpoint.origin!r} on the checkpoint")


def _check_consistent(seen: LogState | None, request: AddCheckpoint, checkpoint: Checkpoint) -> None:
    """409 unless ``old`` is the stored size (0 when never seen); at the same size 409 unless the
    roots match; 422 unless the proof shows the stored tree is a prefix of the new one."""
    known = seen or LogState(0, merkle.EMPTY_ROOT)  # never cosigned: size 0, the empty tree's root
    if request.old_size != known.size:
        raise StaleSize(known.size)
    if checkpoint.size == known.size and checkpoint.root != known.root:
        raise Refusal(
            409, f"size {known.size} was cosigned with a different root hash: a fork", evidence_of=checkpoint.origin
        )
    if known.size == 0:
        if request.proof:
            raise Refusal(422, "the consistency proof from old size 0 must be empty")
        return
    try:
        merkle.verify_consistency(known.size, checkpoint.size, list(request.proof), known.root, checkpoint.root)
    except merkle.ProofError as exc:
        raise Refusal(
            422,
            f"consistency proof from {known.size} to {checkpoint.size} does not verify: {exc}",
            evidence_of=checkpoint.origin,
        ) from exc


def _advance(engine: Engine, seen: LogState | None, checkpoint: Checkpoint, text: str) -> None:
    """Store the new head if the stored one is still ``seen`` (compare-and-swap in one
    transaction), so two requests from the same old size cannot both move it; the loser gets 409."""
    values = {
        "tree_size": checkpoint.size,
        "root_hash": checkpoint.root,
        "checkpoint": text,
        "updated_at": utc_now(),
    }
    try:
        with engine.begin() as connection:
            if seen is None:
                connection.execute(insert(witness_logs).values(origin=checkpoint.origin, **values))
                return
            swapped = connection.execute(
                update(witness_logs)
                .where(
                    witness_logs.c.origin == checkpoint.origin,
                    witness_logs.c.tree_size == seen.size,
                    witness_logs.c.root_hash == seen.root,
                )
                .values(**values)
            ).rowcount
    except IntegrityError:  # another request stored the first head of this origin meanwhile
        swapped = 0
    if swapped != 1:
        current = read_state(engine, checkpoint.origin)
        raise StaleSize(current.size if current else 0)


def _keep_evidence(engine: Engine, origin: str, refusal: Refusal, body: bytes) -> None:
    """Keep a signed request that contradicts the stored state; never let that fail the answer."""
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(witness_evidence).values(
                    origin=origin, status=refusal.status, reason=refusal.reason, request=body, received_at=utc_now()
                )
            )
    except Exception:  # the refusal stands whether or not the evidence could be written
        log.exception("could not keep evidence of a refused checkpoint for %s", origin)
    log.warning("refused a signed checkpoint of %s (%d): %s", origin, refusal.status, refusal.reason)


def create_witness_app(signer: Signer, logs: Mapping[str, Sequence[Verifier]], database_url: str) -> Starlette:
    """The witness's ASGI app: ``POST /add-checkpoint`` and ``GET /healthz``, nothing else.

    Plain Starlette keeps a request to a few milliseconds; the database work runs in the thread
    pool so one slow disk write does not stall other logs' requests."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.routing import Route

    engine = create_witness_engine(database_url)
    frozen = {origin: list(verifiers) for origin, verifiers in logs.items()}

    async def add_checkpoint_endpoint(request: Request) -> Response:
        body = bytearray()
        async for chunk in request.stream():  # never hold more than the limit, whatever is sent
            body += chunk
            if len(body) > MAX_ADD_CHECKPOINT_BODY:
                return _response(413, f"request body is larger than {MAX_ADD_CHECKPOINT_BODY} bytes\n".encode(), TEXT)
        answer = await run_in_threadpool(add_checkpoint, engine, signer, frozen, bytes(body))
        return _response(answer.status, answer.body, answer.content_type)

    async def healthz(_request: Request) -> Response:
        return _response(200, b'{"status":"ok"}', "application/json")

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        engine.dispose()

    return Starlette(
        routes=[
            Route("/add-checkpoint", add_checkpoint_endpoint, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def _response(status: int, body: bytes, content_type: str) -> Response:
    """A response whose Content-Type is exactly ``content_type``: Starlette would append
    "; charset=utf-8" to a text/ media type, and the spec names ``text/x.tlog.size`` bare."""
    from starlette.responses import Response

    return Response(body, status_code=status, headers={"content-type": content_type})
