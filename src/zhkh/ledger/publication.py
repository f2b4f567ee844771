"""The published log as files (C2SP tlog-tiles): what the API serves and ``zhkh ledger export``
writes, byte for byte the same, so the log can be mirrored to any static host.

- ``checkpoint``: the newest published checkpoint, signed by the log and cosigned by a quorum;
- ``tile/<L>/<N>[.p/<W>]``: hash tiles;
- ``tile/entries/<N>[.p/<W>]``: entry bundles (each entry prefixed by its uint16 length).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.orm import Session

from zhkh.core.errors import InvalidInput, NotFound
from zhkh.ledger import store
from zhkh.ledger.tiles import (
    TILE_HEIGHT,
    TILE_WIDTH,
    TileRef,
    encode_bundle,
    entry_bundles_of_tree,
    hash_tiles_of_tree,
    parse_tile_path,
)

CHECKPOINT = "checkpoint"


def published_checkpoint(session: Session) -> str:
    latest = store.latest_checkpoint(session)
    if latest is None:
        raise NotFound("the ledger has published no checkpoint yet")
    return latest.note


def tile(session: Session, path: str, published_size: int | None = None) -> bytes:
    """The tile at ``path`` (``tile/...``) as stored; a 404 for one the log does not have at that
    width, a 400 for a path that is not a tile path."""
    try:
        ref = parse_tile_path(path)
    except ValueError as exc:
        raise InvalidInput(f"{path!r} is not a tile path: {exc}") from exc
    if published_size is None:
        latest = store.latest_checkpoint(session)
        published_size = latest.size if latest is not None else 0
    if not _published(ref, published_size):
        raise NotFound(f"the published ledger has no tile {path}")
    data = _entry_bundle(session, ref) if ref.level is None else _hash_tile(session, ref)
    if data is None:
        raise NotFound(f"the ledger has no tile {path}")
    return data


def _published(ref: TileRef, size: int) -> bool:
    """Whether the tile is part of the tree of the published checkpoint: only those are served,
    so a full tile marked immutable is final, and nothing is shown before it is cosigned."""
    nodes = size >> (TILE_HEIGHT * ref.level) if ref.level is not None else size
    return ref.index * TILE_WIDTH + ref.width <= nodes


def _hash_tile(session: Session, ref: TileRef) -> bytes | None:
    assert ref.level is not None
    stored = store.read_tile(session, ref.level, ref.index)
    wanted = ref.width * store.HASH_BYTES
    return stored[:wanted] if len(stored) >= wanted else None


def _entry_bundle(session: Session, ref: TileRef) -> bytes | None:
    start = ref.index * TILE_WIDTH
    found = store.entries(session, start, start + ref.width)
    return encode_bundle(found) if len(found) == ref.width else None


def files(session: Session) -> Iterator[tuple[str, bytes]]:
    """Every file of the published log: its tiles, then the checkpoint (written last, so a
    mirror never names a tree whose tiles are not there yet)."""
    latest = store.latest_checkpoint(session)
    if latest is None:
        raise NotFound("the ledger has published no checkpoint yet")
    for ref in [*hash_tiles_of_tree(latest.size), *entry_bundles_of_tree(latest.size)]:
        yield ref.path, tile(session, ref.path, latest.size)
    yield CHECKPOINT, latest.note.encode()


def export(session: Session, directory: Path) -> int:
    """Write the published log under ``directory``; returns the number of files written. Files
    already there with the same content are left alone (full tiles never change)."""
    written = 0
    for relative, data in files(session):
        target = directory / relative
        if target.is_file() and target.read_bytes() == data:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".tmp")
        partial.write_bytes(data)
        partial.replace(target)
        written += 1
    return written
