"""C2SP tlog-tiles: paths as the spec spells them, the tiles of a tree, entry bundles, and the tile
writer checked against a whole tree in memory."""

from __future__ import annotations

import random
import time
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zhkh.ledger.merkle import EMPTY_ROOT, MemoryTree, leaf_hash, root
from zhkh.ledger.tiles import (
    TILE_HEIGHT,
    TILE_WIDTH,
    Tile,
    TileRef,
    TileWriter,
    decode_bundle,
    encode_bundle,
    entries_path,
    entry_bundles_of_tree,
    hash_tiles_of_tree,
    node_from_tiles,
    parse_tile_path,
    tile_path,
)


@cache
def _all_leaves() -> list[bytes]:
    return [leaf_hash(index.to_bytes(4, "big")) for index in range(2**17 + 2**9 + 3)]


def _leaves(count: int) -> list[bytes]:
    assert count <= len(_all_leaves())
    return _all_leaves()[:count]


@cache
def _tree(size: int) -> MemoryTree:
    return MemoryTree(_leaves(size))


def _expected_tile(tree: MemoryTree, ref: TileRef) -> bytes:
    """What the spec says tile (L, n) holds: the nodes at height 8L, indices n*256 .. n*256+width-1."""
    assert ref.level is not None
    first = ref.index * TILE_WIDTH
    return b"".join(tree.node(TILE_HEIGHT * ref.level, first + offset) for offset in range(ref.width))


def _stored(tiles: list[Tile]) -> dict[str, bytes]:
    return {tile.ref.path: tile.hashes for tile in tiles}


# --- paths ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "ref"),
    [
        ("tile/0/x001/x234/067", TileRef(0, 1234067, 256)),  # the spec's own example
        ("tile/0/000", TileRef(0, 0, 256)),
        ("tile/0/x001/234", TileRef(0, 1234, 256)),
        ("tile/1/005.p/17", TileRef(1, 5, 17)),
        ("tile/2/000.p/1", TileRef(2, 0, 1)),
        ("tile/0/272.p/255", TileRef(0, 272, 255)),
        ("tile/63/x001/000", TileRef(63, 1000, 256)),
        ("tile/entries/x123/456.p/3", TileRef(None, 123456, 3)),
        ("tile/entries/999", TileRef(None, 999, 256)),
        ("tile/0/x001/x000/x000/000", TileRef(0, 10**9, 256)),
    ],
)
def test_path_examples(path: str, ref: TileRef) -> None:
    assert ref.path == path
    assert parse_tile_path(path) == ref
    if ref.level is None:
        assert entries_path(ref.index, ref.width) == path
    else:
        assert tile_path(ref.level, ref.index, ref.width) == path


def test_a_full_tile_has_no_width_suffix() -> None:
    assert tile_path(3, 7) == tile_path(3, 7, TILE_WIDTH) == "tile/3/007"
    assert entries_path(7) == "tile/entries/007"


@settings(max_examples=500)
@given(
    st.one_of(st.none(), st.integers(min_value=0, max_value=63)),
    st.one_of(st.integers(min_value=0, max_value=2000), st.integers(min_value=0, max_value=10**18)),
    st.integers(min_value=1, max_value=TILE_WIDTH),
)
def test_paths_round_trip(level: int | None, index: int, width: int) -> None:
    ref = TileRef(level, index, width)
    assert parse_tile_path(ref.path) == ref


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("", "not tile/<L>/<N>"),
        ("tile/0", "not tile/<L>/<N>"),
        ("/tile/0/000", "does not start with 'tile/'"),
        (" tile/0/000", "does not start with 'tile/'"),
        ("tiles/0/000", "does not start with 'tile/'"),
        ("tile/00/000", "leading zero"),
        ("tile/64/000", "level 64 is outside 0..63"),
        ("tile/-1/000", "not a decimal"),
        ("tile/+1/000", "not a decimal"),
        ("tile//000", "not a decimal"),
        ("tile/x/000", "not a decimal"),
        ("tile/entry/000", "not a decimal"),
        ("tile/0/", "is not three digits"),
        ("tile/0/0", "is not three digits"),
        ("tile/0/0000", "is not three digits"),
        ("tile/0/1234", "is not three digits"),
        ("tile/0/12a", "is not three digits"),
        ("tile/0/\u0661\u0662\u0663", "is not three digits"),  # Arabic-Indic digits: int() would take them
        ("tile/0/001/234", "must start with 'x'"),
        ("tile/0/x001", "is not three digits"),
        ("tile/0/x01/234", "is not three digits"),
        ("tile/0/x001/x234", "is not three digits"),
        ("tile/0/xx01/234", "is not three digits"),
        ("tile/0/x000/234", "zero element 'x000'"),
        ("tile/0/000/", "must start with 'x'"),
        ("tile/0/000.p/0", "width 0 is outside 1..255"),
        ("tile/0/000.p/256", "width 256 is outside 1..255"),
        ("tile/0/000.p/012", "leading zero"),
        ("tile/0/000.p/", "not a decimal"),
        ("tile/0/000.p", "is not three digits"),
        ("tile/0/000.p/1/", "not a decimal"),
        ("tile/0/000.p/1.p/2", "not a decimal"),
        ("tile/0/000\n", "is not three digits"),
        ("tile/entries/000.p/300", "width 300 is outside"),
    ],
)
def test_malformed_paths_are_rejected(path: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_tile_path(path)


@pytest.mark.parametrize(
    ("level", "index", "width"), [(64, 0, 256), (-1, 0, 256), (0, -1, 256), (0, 0, 0), (0, 0, 257)]
)
def test_tiles_outside_the_spec_cannot_be_named(level: int, index: int, width: int) -> None:
    with pytest.raises(ValueError, match=r"outside|negative"):
        TileRef(level, index, width)
    with pytest.raises(ValueError, match=r"outside|negative"):
        tile_path(level, index, width)


# --- the tiles of a tree --------------------------------------------------------------------------


def _full(level: int | None, count: int, first: int = 0) -> list[TileRef]:
    return [TileRef(level, index, 256) for index in range(first, first + count)]


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, []),
        (1, [TileRef(0, 0, 1)]),
        (255, [TileRef(0, 0, 255)]),
        # The spec: "a tree of size 256 will be represented by a full level 0 tile and a partial level 1
        # tile of width 1" (the level-1 hash of the full tile is the root).
        (256, [TileRef(0, 0, 256), TileRef(1, 0, 1)]),
        (257, [TileRef(0, 0, 256), TileRef(0, 1, 1), TileRef(1, 0, 1)]),
        (512, [*_full(0, 2), TileRef(1, 0, 2)]),
        (65536, [*_full(0, 256), TileRef(1, 0, 256), TileRef(2, 0, 1)]),
        # 65536 + 256 + 1: 257 full level-0 tiles and one leaf over; 257 level-1 hashes; 1 level-2 hash.
        (65793, [*_full(0, 257), TileRef(0, 257, 1), TileRef(1, 0, 256), TileRef(1, 1, 1), TileRef(2, 0, 1)]),
        # The spec: "273 full level 0 tiles, one partial level 0 tile of width 112, one full level 1 tile,
        # one partial level 1 tile of width 17, and one partial level 2 tile of width 1".
        (70000, [*_full(0, 273), TileRef(0, 273, 112), TileRef(1, 0, 256), TileRef(1, 1, 17), TileRef(2, 0, 1)]),
    ],
)
def test_hash_tiles_of_tree(size: int, expected: list[TileRef]) -> None:
    assert hash_tiles_of_tree(size) == expected


def test_entry_bundles_follow_the_level_zero_tiles() -> None:
    assert entry_bundles_of_tree(0) == []
    assert entry_bundles_of_tree(1) == [TileRef(None, 0, 1)]
    assert entry_bundles_of_tree(256) == [TileRef(None, 0, 256)]
    assert entry_bundles_of_tree(70000) == [*_full(None, 273), TileRef(None, 273, 112)]
    assert [ref.path for ref in entry_bundles_of_tree(70000)][-1] == "tile/entries/273.p/112"


def test_negative_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        hash_tiles_of_tree(-1)
    with pytest.raises(ValueError, match="negative"):
        entry_bundles_of_tree(-1)


# --- entry bundles --------------------------------------------------------------------------------


def test_bundle_layout() -> None:
    assert encode_bundle([]) == b""
    assert encode_bundle([b"", b"ab", b"\x00" * 300]) == b"\x00\x00\x00\x02ab\x01\x2c" + b"\x00" * 300


@given(st.lists(st.binary(max_size=600), max_size=40))
def test_bundles_round_trip(entries: list[bytes]) -> None:
    assert decode_bundle(encode_bundle(entries)) == entries


def test_the_biggest_entry_fits_and_a_bigger_one_does_not() -> None:
    biggest = bytes(range(256)) * 255 + b"\xff" * 255
    assert decode_bundle(encode_bundle([b"x", biggest])) == [b"x", biggest]
    with pytest.raises(ValueError, match="entry 1 is 65536 bytes; a bundle holds at most 65535"):
        encode_bundle([b"x", biggest + b"!"])


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x00", "offset 0: the length prefix needs 2 bytes"),
        (b"\x00\x05abc", "offset 0: the entry needs 5 bytes, 3 remain"),
        (b"\x00\x02ab\x00", "offset 4: the length prefix"),
        (b"\x00\x02ab\x00\x03x", "offset 4: the entry needs 3 bytes, 1 remain"),
        (b"\x00\x00\xff\xff", "offset 2: the entry needs 65535 bytes, 0 remain"),
    ],
)
def test_truncated_bundles_say_where(data: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        decode_bundle(data)


# --- the tile writer ------------------------------------------------------------------------------


def test_a_tile_holds_exactly_its_width_of_hashes() -> None:
    with pytest.raises(ValueError, match=r"tile tile/0/000\.p/2 needs 64 bytes, got 32"):
        Tile(TileRef(0, 0, 2), EMPTY_ROOT)


def _write(batches: list[int], writer: TileWriter | None = None) -> tuple[TileWriter, dict[str, bytes]]:
    """Append consecutive leaves in batches; check each append returns exactly the tiles that the new
    tree has and the old one had not; return the writer and everything stored."""
    writer = writer or TileWriter()
    stored: dict[str, bytes] = {}
    for batch in batches:
        before = set(hash_tiles_of_tree(writer.size))
        tiles = writer.append(_leaves(writer.size + batch)[writer.size :])
        assert len(tiles) == len({tile.ref for tile in tiles})
        assert {tile.ref for tile in tiles} == set(hash_tiles_of_tree(writer.size)) - before
        stored.update(_stored(tiles))
    return writer, stored


def _check_against_memory_tree(size: int, stored: dict[str, bytes]) -> None:
    tree = _tree(size)
    for ref in hash_tiles_of_tree(size):
        assert stored[ref.path] == _expected_tile(tree, ref), ref.path
    for path, hashes in stored.items():  # and every earlier partial tile held what it should
        assert hashes == _expected_tile(tree, parse_tile_path(path)), path


BATCHES = [
    [70000],
    [1] * 600,
    [3] * 300 + [70000 - 900],
    [255, 1, 256, 1000, 3, 65536, 70000 - 255 - 1 - 256 - 1000 - 3 - 65536],
    [256] * 273 + [112],
    [65535, 1, 4464],
]


@pytest.mark.parametrize("batches", BATCHES, ids=lambda batches: f"{len(batches)} batches")
def test_writer_in_batches_stores_the_tiles_of_the_memory_tree(batches: list[int]) -> None:
    writer, stored = _write(batches)
    size = sum(batches)
    assert writer.size == size
    _check_against_memory_tree(size, stored)
    assert writer.root() == _tree(size).root()


def test_random_batches_end_in_the_same_tiles_as_one_batch() -> None:
    chooser = random.Random(20240601)
    size = 70000
    all_at_once, once = _write([size])
    batches: list[int] = []
    while sum(batches) < size:
        batches.append(min(chooser.choice([1, 3, 255, 256, 257, 1000, 4000]), size - sum(batches)))
    batched, stored = _write(batches)
    final_paths = [ref.path for ref in hash_tiles_of_tree(size)]
    assert {path: stored[path] for path in final_paths} == once
    assert batched.edge() == all_at_once.edge()
    assert batched.root() == all_at_once.root()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=1500), min_size=1, max_size=5), st.integers(0, 4))
def test_writer_restored_from_stored_partial_tiles_continues_identically(batches: list[int], split: int) -> None:
    split = min(split, len(batches))
    original, stored = _write(batches[:split])
    edge = {
        ref.level: stored[ref.path]
        for ref in hash_tiles_of_tree(original.size)
        if ref.level is not None and ref.width < TILE_WIDTH
    }
    assert edge == original.edge()
    restored = TileWriter(original.size, edge)
    assert restored.root() == original.root()
    for batch in batches[split:]:
        leaves = _leaves(original.size + batch)[original.size :]
        assert restored.append(leaves) == original.append(leaves)
    assert restored.edge() == original.edge()
    assert restored.root() == original.root()


def test_writer_refuses_an_edge_that_does_not_fit_the_size() -> None:
    writer, _ = _write([70000])
    edge = writer.edge()
    assert sorted(edge) == [0, 1, 2]
    with pytest.raises(ValueError, match="level-0 partial tile of 113 hashes"):
        TileWriter(70001, edge)
    with pytest.raises(ValueError, match=r"partial tiles at levels \[1\], none were given"):
        TileWriter(70000, {0: edge[0], 2: edge[2]})
    with pytest.raises(ValueError, match="level-3 partial tile of 0 hashes"):
        TileWriter(70000, {**edge, 3: edge[2]})
    assert TileWriter(70000, {**edge, 3: b""}).root() == writer.root()
    with pytest.raises(ValueError, match="partial tiles at levels"):
        TileWriter(5)
    with pytest.raises(ValueError, match="every leaf hash must be 32 bytes"):
        TileWriter().append([EMPTY_ROOT, b"short"])
    assert TileWriter().append([]) == []


def test_writer_root_equals_the_memory_tree_root_for_every_size_to_600() -> None:
    writer = TileWriter()
    assert writer.root() == EMPTY_ROOT
    for size in range(1, 601):
        writer.append(_leaves(size)[size - 1 :])
        assert writer.root() == _tree(size).root(), size


@pytest.mark.parametrize("size", [65535, 65536, 65537, 65793, 70000, 2**17 + 2**9 + 3])
def test_writer_root_for_large_sizes(size: int) -> None:
    writer = TileWriter()
    writer.append(_leaves(size))
    assert writer.root() == _tree(size).root()


def _tile_reader(stored: dict[str, bytes], size: int) -> dict[tuple[int, int], bytes]:
    """The widest stored version of each tile, as a log serving ``size`` would hand it out."""
    return {(ref.level, ref.index): stored[ref.path] for ref in hash_tiles_of_tree(size) if ref.level is not None}


@pytest.mark.parametrize("size", [1, 255, 256, 600, 5000])
def test_node_from_tiles_equals_every_perfect_subtree(size: int) -> None:
    _, stored = _write([size])
    tiles = _tile_reader(stored, size)
    tree = _tree(size)
    for level in range(size.bit_length()):
        for index in range(size >> level):
            assert node_from_tiles(level, index, lambda tile_level, tile_index: tiles[tile_level, tile_index]) == (
                tree.node(level, index)
            )


def test_node_from_tiles_reads_one_tile_of_the_right_level() -> None:
    size = 70000
    _, stored = _write([size])
    tiles = _tile_reader(stored, size)
    tree = _tree(size)
    chooser = random.Random(7)
    reads: list[tuple[int, int]] = []

    def read(tile_level: int, tile_index: int) -> bytes:
        reads.append((tile_level, tile_index))
        return tiles[tile_level, tile_index]

    for level in range(size.bit_length()):
        for index in {0, (size >> level) - 1, chooser.randrange(size >> level)}:
            reads.clear()
            assert node_from_tiles(level, index, read) == tree.node(level, index)
            assert reads == [(level // TILE_HEIGHT, (index << (level % TILE_HEIGHT)) // TILE_WIDTH)]


def test_node_from_tiles_says_when_a_tile_is_too_narrow() -> None:
    tiles = _tile_reader(_write([600])[1], 600)
    with pytest.raises(ValueError, match=r"node \(3, 75\) needs 96 hashes of tile tile/0/002, it has 88"):
        node_from_tiles(3, 75, lambda tile_level, tile_index: tiles[tile_level, tile_index])
    with pytest.raises(ValueError, match="does not exist"):
        node_from_tiles(-1, 0, lambda tile_level, tile_index: b"")


def test_a_million_leaves(capsys: pytest.CaptureFixture[str]) -> None:
    leaves = [leaf_hash(index.to_bytes(4, "big")) for index in range(1_000_000)]
    writer = TileWriter()
    started = time.perf_counter()
    tiles = writer.append(leaves)
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(f"\nTileWriter.append of 1,000,000 leaf hashes: {elapsed:.2f} s, {len(tiles)} tiles")
    assert [tile.ref for tile in tiles] == hash_tiles_of_tree(1_000_000)
    assert writer.root() == root(leaves)
