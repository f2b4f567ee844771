"""The log published as C2SP tlog-tiles: static files anyone can mirror and re-verify.

A tile at level ``L`` holds up to 256 consecutive hashes of the tree at height ``8 * L``; the tile
``n`` covers the nodes ``n * 256 .. n * 256 + 255``. Level-0 tiles hold leaf hashes, and each hash in a
level ``L + 1`` tile is the root of a full tile at level ``L``. The right edge of every level is a
*partial* tile (``.p/<width>``) until it fills up. Entry bundles follow the level-0 tiles, one
length-prefixed entry per leaf.

Because ``size = sum(width_L * 256**L)``, the partial tiles of all levels together hold the whole
right edge of the tree: the writer keeps only them, and the root follows from them alone.

Pure: standard library only, no I/O; callers store what ``TileWriter.append`` returns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from zhkh.ledger.merkle import EMPTY_ROOT, HASH_SIZE, fold_right_edge, parent_level, perfect_root

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_TILE_LEVEL = 63
MAX_ENTRY_SIZE = 0xFFFF
_FULL_TILE_BYTES = TILE_WIDTH * HASH_SIZE
_DIGITS = frozenset("0123456789")


def _encode_index(index: int) -> str:
    """Zero-padded 3-digit path elements, all but the last prefixed with ``x``: 1234067 ->
    ``x001/x234/067``, so that a directory and a file never share a name on disk."""
    digits = str(index)
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[start : start + 3] for start in range(0, len(digits), 3)]
    return "/".join([*("x" + group for group in groups[:-1]), groups[-1]])


def _check_tile(level: int | None, index: int, width: int) -> None:
    if level is not None and not 0 <= level <= MAX_TILE_LEVEL:
        raise ValueError(f"tile level {level} is outside 0..{MAX_TILE_LEVEL}")
    if index < 0:
        raise ValueError(f"tile index {index} is negative")
    if not 1 <= width <= TILE_WIDTH:
        raise ValueError(f"tile width {width} is outside 1..{TILE_WIDTH}")


def _path(kind: str, index: int, width: int) -> str:
    partial = f".p/{width}" if width < TILE_WIDTH else ""
    return f"tile/{kind}/{_encode_index(index)}{partial}"


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """``tile/<L>/<N>[.p/<W>]``, the hash tile's path under the log's prefix."""
    _check_tile(level, index, width)
    return _path(str(level), index, width)


def entries_path(index: int, width: int = TILE_WIDTH) -> str:
    """``tile/entries/<N>[.p/<W>]``, the entry bundle's path under the log's prefix."""
    _check_tile(None, index, width)
    return _path("entries", index, width)


@dataclass(frozen=True)
class TileRef:
    """Which tile: ``level`` is ``None`` for an entry bundle; ``width`` 256 is a full tile."""

    level: int | None
    index: int
    width: int

    def __post_init__(self) -> None:
        _check_tile(self.level, self.index, self.width)

    @property
    def path(self) -> str:
        if self.level is None:
            return entries_path(self.index, self.width)
        return tile_path(self.level, self.index, self.width)


def _parse_decimal(text: str, what: str, low: int, high: int) -> int:
    """A decimal with ASCII digits only and no leading zeros, as the spec requires for ``<L>`` and
    ``<W>``: one spelling per number, so a path names exactly one file."""
    if not text or not set(text) <= _DIGITS:
        raise ValueError(f"{what} {text!r} is not a decimal number")
    if len(text) > 1 and text[0] == "0":
        raise ValueError(f"{what} {text!r} has a leading zero")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{what} {value} is outside {low}..{high}")
    return value


def _check_index_digits(digits: str, element: str) -> None:
    if len(digits) != 3 or not set(digits) <= _DIGITS:
        raise ValueError(f"index element {element!r} is not three digits")


def _parse_index(text: str) -> int:
    """``x001/x234/067`` -> 1234067; a leading ``x000`` element is refused, being a second spelling."""
    *leading, last = text.split("/")
    for element in leading:
        if not element.startswith("x"):
            raise ValueError(f"index element {element!r} must start with 'x' (all but the last one do)")
        _check_index_digits(element[1:], element)
    _check_index_digits(last, last)
    if leading and leading[0] == "x000":
        raise ValueError(f"index {text!r} starts with a zero element 'x000'")
    return int("".join(element.removeprefix("x") for element in [*leading, last]))


def parse_tile_path(path: str) -> TileRef:
    """The tile a path names, the inverse of ``TileRef.path``; ``ValueError`` says what is wrong."""
    try:
        prefix, kind, rest = path.split("/", 2)
    except ValueError:
        raise ValueError(f"tile path {path!r} is not tile/<L>/<N>[.p/<W>]") from None
    if prefix != "tile":
        raise ValueError(f"tile path {path!r} does not start with 'tile/'")
    try:
        level = None if kind == "entries" else _parse_decimal(kind, "tile level", 0, MAX_TILE_LEVEL)
        index_text, partial, width_text = rest.partition(".p/")
        width = _parse_decimal(width_text, "partial tile width", 1, TILE_WIDTH - 1) if partial else TILE_WIDTH
        index = _parse_index(index_text)
    except ValueError as error:
        raise ValueError(f"tile path {path!r}: {error}") from None
    return TileRef(level, index, width)


def _tiles_of_level(level: int | None, count: int) -> list[TileRef]:
    """The full tiles over ``count`` hashes, then the partial one holding the remainder, if any."""
    refs = [TileRef(level, index, TILE_WIDTH) for index in range(count // TILE_WIDTH)]
    if count % TILE_WIDTH:
        refs.append(TileRef(level, count // TILE_WIDTH, count % TILE_WIDTH))
    return refs


def hash_tiles_of_tree(size: int) -> list[TileRef]:
    """Every hash tile of a tree of ``size`` leaves, level by level: level ``L`` has one hash per
    ``256**L`` leaves, so a tree of 256 leaves has a full level-0 tile and a level-1 tile of width 1."""
    if size < 0:
        raise ValueError(f"tree size {size} is negative")
    refs: list[TileRef] = []
    level = 0
    while count := size >> (TILE_HEIGHT * level):
        refs += _tiles_of_level(level, count)
        level += 1
    return refs


def entry_bundles_of_tree(size: int) -> list[TileRef]:
    """Every entry bundle of a tree of ``size`` leaves: they line up with the level-0 tiles."""
    if size < 0:
        raise ValueError(f"tree size {size} is negative")
    return _tiles_of_level(None, size)


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    """The entries, each as a big-endian uint16 length and its bytes."""
    for position, entry in enumerate(entries):
        if len(entry) > MAX_ENTRY_SIZE:
            raise ValueError(f"entry {position} is {len(entry)} bytes; a bundle holds at most {MAX_ENTRY_SIZE}")
    return b"".join([len(entry).to_bytes(2, "big") + entry for entry in entries])


def decode_bundle(data: bytes) -> list[bytes]:
    """The entries of a bundle; ``ValueError`` with the offset where it is cut short."""
    entries = []
    offset = 0
    while offset < len(data):
        if offset + 2 > len(data):
            raise ValueError(f"bundle truncated at offset {offset}: the length prefix needs 2 bytes, 1 remains")
        length = int.from_bytes(data[offset : offset + 2], "big")
        start = offset + 2
        if start + length > len(data):
            raise ValueError(
                f"bundle truncated at offset {offset}: the entry needs {length} bytes, {len(data) - start} remain"
            )
        entries.append(data[start : start + length])
        offset = start + length
    return entries


@dataclass(frozen=True)
class Tile:
    """A tile to store: its place and its hashes, concatenated (``width * 32`` bytes)."""

    ref: TileRef
    hashes: bytes

    def __post_init__(self) -> None:
        if len(self.hashes) != self.ref.width * HASH_SIZE:
            raise ValueError(f"tile {self.ref.path} needs {self.ref.width * HASH_SIZE} bytes, got {len(self.hashes)}")


def _split_hashes(data: bytes) -> list[bytes]:
    return [data[start : start + HASH_SIZE] for start in range(0, len(data), HASH_SIZE)]


def _full_tile_roots(hashes: list[bytes]) -> list[bytes]:
    """The root of each full tile in ``hashes`` (a multiple of 256 of them): eight rounds of pairing
    over all tiles at once never cross a tile boundary, since tiles are aligned."""
    for _ in range(TILE_HEIGHT):
        hashes = parent_level(hashes)
    return hashes


class TileWriter:
    """Keeps the right-edge partial tile of every level; appending leaf hashes returns the tiles that
    must be stored: each tile completed by this append and, per level, the new partial tile."""

    def __init__(self, size: int = 0, edge: Mapping[int, bytes] | None = None) -> None:
        """Resume a log of ``size`` leaves from the partial tiles stored for it (level -> hashes)."""
        if size < 0:
            raise ValueError(f"tree size {size} is negative")
        edge = dict(edge or {})
        self.size = size
        self._edge: dict[int, list[bytes]] = {}
        for level in sorted(edge):
            width = (size >> (TILE_HEIGHT * level)) % TILE_WIDTH if 0 <= level <= MAX_TILE_LEVEL else 0
            if len(edge[level]) != width * HASH_SIZE:
                raise ValueError(
                    f"a tree of size {size} has a level-{level} partial tile of {width} hashes "
                    f"({width * HASH_SIZE} bytes), got {len(edge[level])} bytes"
                )
            if width:
                self._edge[level] = _split_hashes(edge[level])
        missing = [level for level, _ in self._levels_with_partial_tiles() if level not in self._edge]
        if missing:
            raise ValueError(f"a tree of size {size} has partial tiles at levels {missing}, none were given")

    def _levels_with_partial_tiles(self) -> list[tuple[int, int]]:
        """(level, width) of every partial tile of the current tree, bottom level first."""
        levels = []
        level = 0
        while count := self.size >> (TILE_HEIGHT * level):
            if count % TILE_WIDTH:
                levels.append((level, count % TILE_WIDTH))
            level += 1
        return levels

    def append(self, leaf_hashes: Sequence[bytes]) -> list[Tile]:
        """Add leaf hashes; return the full tiles they complete and the partial tiles they change,
        level by level. The full tiles' roots feed the level above, and so on up."""
        if set(map(len, leaf_hashes)) - {HASH_SIZE}:
            raise ValueError(f"every leaf hash must be {HASH_SIZE} bytes")
        tiles: list[Tile] = []
        incoming = list(leaf_hashes)
        level = 0
        while incoming:
            incoming = self._append_to_level(level, incoming, tiles)
            level += 1
        self.size += len(leaf_hashes)
        return tiles

    def _append_to_level(self, level: int, incoming: list[bytes], tiles: list[Tile]) -> list[bytes]:
        """Append hashes to one level, add its tiles to ``tiles``, return the hashes for the level above."""
        first_tile = (self.size >> (TILE_HEIGHT * level)) // TILE_WIDTH
        hashes = self._edge.pop(level, []) + incoming
        full_count = len(hashes) // TILE_WIDTH * TILE_WIDTH
        for offset in range(0, full_count, TILE_WIDTH):
            ref = TileRef(level, first_tile + offset // TILE_WIDTH, TILE_WIDTH)
            tiles.append(Tile(ref, b"".join(hashes[offset : offset + TILE_WIDTH])))
        if remainder := hashes[full_count:]:
            self._edge[level] = remainder
            partial = TileRef(level, first_tile + full_count // TILE_WIDTH, len(remainder))
            tiles.append(Tile(partial, b"".join(remainder)))
        return _full_tile_roots(hashes[:full_count])

    def root(self) -> bytes:
        """The root of the whole tree, from the partial tiles alone: each one's width, bit by bit,
        names the perfect subtrees along the tree's right edge, biggest (top level) first."""
        if self.size == 0:
            return EMPTY_ROOT
        right_edge = []
        for level, width in reversed(self._levels_with_partial_tiles()):
            hashes = self._edge[level]
            position = 0
            for height in range(TILE_HEIGHT - 1, -1, -1):
                if width >> height & 1:
                    right_edge.append(perfect_root(hashes[position : position + (1 << height)]))
                    position += 1 << height
        return fold_right_edge(right_edge)

    def edge(self) -> dict[int, bytes]:
        """The partial tile of every level that has one: what to hand to ``TileWriter`` to resume."""
        return {level: b"".join(hashes) for level, hashes in sorted(self._edge.items())}


def node_from_tiles(level: int, index: int, read_tile: Callable[[int, int], bytes]) -> bytes:
    """The hash of perfect subtree ``(level, index)`` (``2**level`` leaves from ``index * 2**level``),
    from the one tile at level ``level // 8`` whose hashes it spans: ``2**(level % 8)`` of them."""
    if level < 0 or index < 0:
        raise ValueError(f"node ({level}, {index}) does not exist")
    tile_level, height = divmod(level, TILE_HEIGHT)
    first = index << height
    tile_index, offset = divmod(first, TILE_WIDTH)
    data = read_tile(tile_level, tile_index)
    end = (offset + (1 << height)) * HASH_SIZE
    if len(data) < end:
        raise ValueError(
            f"node ({level}, {index}) needs {end // HASH_SIZE} hashes of tile {tile_path(tile_level, tile_index)}, "
            f"it has {len(data) // HASH_SIZE}"
        )
    return perfect_root(_split_hashes(data[offset * HASH_SIZE : end]))
