"""The log in the database: appending entries with their hash tiles, and reading them back.

Appends are serialised (a PostgreSQL advisory lock; SQLite has one writer) and each one is a
single transaction that writes the entries and every tile they change, so a crash leaves the
log as it was before or after the append, never between. The tree's state is re-read from the
stored right-edge tiles at every append: a process holds nothing another could make stale.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import cast

from sqlalchemy import Table, func, select, text, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from zhkh.core.bulk import copy_rows
from zhkh.core.db import lookup_chunk, one_of
from zhkh.ledger.merkle import leaf_hash
from zhkh.ledger.models import LedgerCheckpoint, LedgerEntry, LedgerTile
from zhkh.ledger.tiles import MAX_ENTRY_SIZE, TILE_HEIGHT, TILE_WIDTH, Tile, TileWriter, node_from_tiles

HASH_BYTES = 32
APPEND_LOCK = 0x7A686B6C01  # an arbitrary constant: the advisory lock held while appending


@dataclass(frozen=True)
class NewEntry:
    data: bytes  # canonical JSON, exactly as it will be hashed
    commitment: bytes | None = None  # the account the entry concerns, if any
    period: date | None = None  # the billing period it concerns, if any


@dataclass(frozen=True)
class TreeHead:
    size: int
    root: bytes


def take_lock(session: Session, *, wait: bool = True, key: int = APPEND_LOCK) -> bool:
    """Take an advisory lock (the append lock by default) for this transaction; ``False`` when another holds it and
    ``wait`` is off (a second worker then leaves the appending to the first)."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    if wait:
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        return True
    return bool(session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key}))


def tree_size(session: Session) -> int:
    last = session.scalar(select(func.max(LedgerEntry.idx)))
    return 0 if last is None else int(last) + 1


def read_tile(session: Session, level: int, index: int) -> bytes:
    """The widest stored version of a hash tile (a partial tile is a prefix of every wider one)."""
    data = session.scalar(select(LedgerTile.hashes).where(LedgerTile.level == level, LedgerTile.idx == index))
    return b"" if data is None else bytes(data)


def edge(session: Session, size: int) -> dict[int, bytes]:
    """The partial tile at the right edge of each level of a tree of ``size`` leaves."""
    partial: dict[int, bytes] = {}
    level, count = 0, size
    while count:
        width = count % TILE_WIDTH
        if width:
            partial[level] = read_tile(session, level, count // TILE_WIDTH)[: width * HASH_BYTES]
        level, count = level + 1, count // TILE_WIDTH
    return partial


def tree_head(session: Session) -> TreeHead:
    size = tree_size(session)
    writer = TileWriter(size, edge(session, size))
    return TreeHead(size, writer.root())


def append(session: Session, entries: Sequence[NewEntry]) -> TreeHead:
    """Append ``entries`` at the end of the log (the caller holds the append lock). An entry
    longer than an entry bundle can carry (65,535 bytes) is refused: it could never be served."""
    for entry in entries:
        if len(entry.data) > MAX_ENTRY_SIZE:
            raise ValueError(f"an entry of {len(entry.data)} bytes; an entry is at most {MAX_ENTRY_SIZE} bytes")
    size = tree_size(session)
    writer = TileWriter(size, edge(session, size))
    if not entries:
        return TreeHead(size, writer.root())
    _write_entries(session, ((size + offset, e.data, e.commitment, e.period) for offset, e in enumerate(entries)))
    _store_tiles(session, writer.append([leaf_hash(e.data) for e in entries]))
    return TreeHead(writer.size, writer.root())


ENTRY_COLUMNS = ("idx", "data", "commitment", "period")


def _write_entries(session: Session, rows: Iterable[tuple[int, bytes, bytes | None, date | None]]) -> None:
    """Binary COPY on PostgreSQL: text COPY would spell every byte of the entries in hex (a
    third more time at a million entries); a batched insert elsewhere."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        copy_rows(session, cast(Table, LedgerEntry.__table__), ENTRY_COLUMNS, rows)
        return
    raw = connection.connection.driver_connection
    assert raw is not None
    statement = f"COPY ledger_entries ({', '.join(ENTRY_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types(["int8", "bytea", "bytea", "date"])
        for row in rows:
            copy.write_row(row)


def _store_tiles(session: Session, tiles: Sequence[Tile]) -> None:
    """Insert new tiles and widen the stored partial ones; never narrow a tile."""
    if not tiles:
        return
    table = cast(Table, LedgerTile.__table__)
    rows = [
        {"level": t.ref.level, "idx": t.ref.index, "width": t.ref.width, "hashes": t.hashes}
        for t in tiles
        if t.ref.level is not None
    ]
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=["level", "idx"],
        set_={"width": statement.excluded.width, "hashes": statement.excluded.hashes},
        where=table.c.width < statement.excluded.width,
    )
    session.execute(statement, rows)


class TileReader:
    """Reads hash tiles for proofs, keeping what it read (up to ``capacity`` tiles). Full tiles
    never change; a partial tile only grows (each version is a prefix of the next), so a kept
    one is read again only when a node needs more of it than it has."""

    def __init__(self, session: Session, capacity: int = 4096) -> None:
        self.session = session
        self.capacity = capacity
        self.tiles: dict[tuple[int, int], bytes] = {}

    def node(self, level: int, index: int) -> bytes:
        tile_level, height = divmod(level, TILE_HEIGHT)
        tile_index, offset = divmod(index << height, TILE_WIDTH)
        needed = (offset + (1 << height)) * HASH_BYTES
        key = (tile_level, tile_index)
        data = self.tiles.get(key, b"")
        if len(data) < needed:
            data = read_tile(self.session, tile_level, tile_index)
            if key in self.tiles or len(self.tiles) < self.capacity:
                self.tiles[key] = data
        return node_from_tiles(level, index, lambda _level, _index: data)

    def prefetch(self, index: int, size: int) -> None:
        """Read in one query the tiles a proof about leaf ``index`` in a tree of ``size`` mostly
        needs: the tile on the leaf's path at every tile level, and the right edge's."""
        wanted: set[tuple[int, int]] = set()
        level, leaf, count = 0, index, size
        while count:
            wanted |= {(level, leaf // TILE_WIDTH), (level, (count - 1) // TILE_WIDTH)}
            level, leaf, count = level + 1, leaf // TILE_WIDTH, count // TILE_WIDTH
        missing = [key for key in wanted if key not in self.tiles]
        if not missing:
            return
        rows = self.session.execute(
            select(LedgerTile.level, LedgerTile.idx, LedgerTile.hashes).where(
                tuple_(LedgerTile.level, LedgerTile.idx).in_(missing)
            )
        )
        for tile_level, tile_index, hashes in rows:
            self.tiles[(tile_level, tile_index)] = bytes(hashes)


def node_reader(session: Session) -> Callable[[int, int], bytes]:
    return TileReader(session).node


def entries(session: Session, start: int, end: int) -> list[bytes]:
    """The entries with leaf indices ``start`` .. ``end - 1``, in order."""
    rows = session.scalars(
        select(LedgerEntry.data).where(LedgerEntry.idx >= start, LedgerEntry.idx < end).order_by(LedgerEntry.idx)
    )
    return [bytes(data) for data in rows]


def accrual_entries(session: Session, wanted: Collection[tuple[bytes, date]]) -> dict[tuple[bytes, date], int]:
    """The index of the ``accrual`` entry of each (commitment, period) in ``wanted`` that the log
    has: what a recalculation entry references."""
    found: dict[tuple[bytes, date], int] = {}
    commitments = sorted({c for c, _ in wanted})
    size = lookup_chunk(session)
    for start in range(0, len(commitments), size):
        rows = session.execute(
            select(LedgerEntry.idx, LedgerEntry.commitment, LedgerEntry.period, LedgerEntry.data)
            .where(one_of(LedgerEntry.commitment, commitments[start : start + size], session))
            .where(one_of(LedgerEntry.period, sorted({p for _, p in wanted}), session))
            .order_by(LedgerEntry.idx)
        )
        for index, committed, period, data in rows:
            if committed is None or period is None:
                continue
            key = (bytes(committed), period)
            if key in wanted and key not in found and json.loads(data)["type"] == "accrual":
                found[key] = index
    return found


def latest_checkpoint(session: Session) -> LedgerCheckpoint | None:
    """The newest published checkpoint: the log signed it and a quorum of witnesses cosigned it."""
    return session.scalars(select(LedgerCheckpoint).order_by(LedgerCheckpoint.size.desc()).limit(1)).first()


def publish(session: Session, head: TreeHead, note: str, cosigners: int) -> None:
    session.add(LedgerCheckpoint(size=head.size, root=head.root, note=note, cosigners=cosigners))
    session.flush()
