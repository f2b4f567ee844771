"""The tile reader keeps what it read, partial tiles included, and still answers right after the
log has grown: a kept partial tile too short for a node is read again."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tests.integration.ledger.support import append_synthetic, synthetic
from zhkh.ledger import store
from zhkh.ledger.merkle import MemoryTree, inclusion_proof, leaf_hash


def test_a_kept_partial_tile_is_read_again_when_a_node_needs_more_of_it(session: Session) -> None:
    append_synthetic(session, 300)
    reader = store.TileReader(session)
    tree = MemoryTree([leaf_hash(synthetic(n)) for n in range(300)])
    assert inclusion_proof(7, 300, reader.node) == inclusion_proof(7, 300, tree.node)
    assert len(reader.tiles[(0, 1)]) == 44 * 32, "the partial tile of leaves 256..299 is kept"

    append_synthetic(session, 400)  # the log grows to 700 while the reader is alive
    grown = MemoryTree([leaf_hash(synthetic(n)) for n in range(700)])
    for index in (0, 299, 300, 511, 699):
        assert inclusion_proof(index, 700, reader.node) == inclusion_proof(index, 700, grown.node)
    assert len(reader.tiles[(0, 1)]) == 256 * 32, "read again once a node needed the rest"


def test_one_query_prefetches_the_tiles_of_a_leafs_path_and_the_right_edge(session: Session) -> None:
    append_synthetic(session, 70_000)
    reader = store.TileReader(session)
    reader.prefetch(1234, 70_000)
    assert set(reader.tiles) == {(0, 4), (0, 273), (1, 0), (1, 1), (2, 0)}
    tree = MemoryTree([leaf_hash(synthetic(n)) for n in range(70_000)])
    assert inclusion_proof(1234, 70_000, reader.node) == inclusion_proof(1234, 70_000, tree.node)
