"""The Merkle tree of the log, exactly as RFC 9162 §2.1 (and RFC 6962) define it, so that any
third-party verifier computes the same roots and accepts the same proofs.

Leaves are hashed as ``SHA-256(0x00 || entry)`` and interior nodes as ``SHA-256(0x01 || left ||
right)``; the tree over ``n`` leaves splits at the largest power of two below ``n``. Equivalently,
and that is how everything here is computed, a level is built from the one below by hashing pairs,
and the node left without a partner at the right edge is carried up unchanged.

A node is addressed as ``(level, index)``: the perfect subtree of ``2**level`` leaves starting at
leaf ``index * 2**level`` (the addressing of transparency-dev/merkle's ``compact.NodeID``). Proof
generators read such nodes through a ``NodeReader`` so that the same code serves an in-memory tree,
tiles and database storage; the verifiers follow transparency-dev/merkle's ``proof/verify.go``.

Everything is iterative over lists of ``bytes``: a million leaves hash in about a second of Python.
Pure: standard library only, no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeReader = Callable[[int, int], bytes]
"""``node(level, index)``: the hash of the perfect subtree of ``2**level`` leaves that starts at leaf
``index * 2**level``. Proof generators only ask for subtrees that lie entirely inside the tree."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_sha256 = hashlib.sha256


class ProofError(ValueError):
    """A proof did not verify; the message says which check failed, with the sizes and indices."""


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 leaf hash; the 0x00 prefix keeps a leaf from ever passing for an interior node."""
    return _sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash of two children."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def parent_level(hashes: Sequence[bytes]) -> list[bytes]:
    """The level above ``hashes``: one hash per complete pair; a last unpaired hash is dropped
    (callers that need it carry it up themselves). One list comprehension per level is what makes
    a million leaves fast: no Python call per node beyond hashlib's own."""
    sha256 = _sha256
    return [sha256(b"\x01" + left + right).digest() for left, right in zip(hashes[0::2], hashes[1::2], strict=False)]


def perfect_root(hashes: Sequence[bytes]) -> bytes:
    """The root over a power-of-two number of hashes (a perfect subtree), e.g. a full tile."""
    count = len(hashes)
    if count == 0 or count & (count - 1):
        raise ValueError(f"a perfect subtree needs a power-of-two number of hashes, got {count}")
    level = list(hashes)
    while len(level) > 1:
        level = parent_level(level)
    return level[0]


def fold_right_edge(hashes_biggest_first: Sequence[bytes]) -> bytes:
    """Combine the perfect subtrees that tile a range, biggest first, into the range's RFC 9162 hash:
    the smallest two join first, because the RFC splits at the largest power of two."""
    if not hashes_biggest_first:
        return EMPTY_ROOT
    result = hashes_biggest_first[-1]
    for left in reversed(hashes_biggest_first[:-1]):
        result = node_hash(left, result)
    return result


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """RFC 9162 Merkle Tree Hash over already-hashed leaves; ``EMPTY_ROOT`` for no leaves."""
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        carried = [level[-1]] if len(level) % 2 else []
        level = parent_level(level) + carried
    return level[0]


def _require_hash(value: bytes, what: str) -> None:
    """Every hash is exactly 32 bytes: a shorter or longer value is rejected instead of hashed, so
    that no two different byte strings can stand for the same proof (project policy, pinned in tests)."""
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, want {HASH_SIZE}")


def _require_proof_hashes(proof: Sequence[bytes]) -> None:
    for position, element in enumerate(proof):
        _require_hash(element, f"proof[{position}]")


def _trailing_zeros(value: int) -> int:
    """The level of the biggest perfect subtree that ends a tree of ``value`` leaves."""
    return (value & -value).bit_length() - 1


def _right_edge_levels(count: int) -> list[int]:
    """Levels of the perfect subtrees that tile ``count`` leaves from an aligned start, biggest first."""
    return [level for level in range(count.bit_length() - 1, -1, -1) if count >> level & 1]


def range_hash(begin: int, end: int, node: NodeReader) -> bytes:
    """The RFC 9162 hash of leaves ``[begin, end)``, from the perfect subtrees that tile the range.

    ``begin`` must be a multiple of the smallest power of two >= ``end - begin``, which is what an
    RFC subtree looks like; proofs need this for the "ephemeral" node at the right edge of a tree whose
    size is not a power of two. An empty range hashes to ``EMPTY_ROOT``."""
    count = end - begin
    if begin < 0 or count < 0:
        raise ValueError(f"bad range [{begin}, {end})")
    if count and begin % (1 << (count - 1).bit_length()):
        raise ValueError(f"range [{begin}, {end}) is not an RFC 9162 subtree: {begin} is not aligned")
    hashes = []
    position = begin
    for level in _right_edge_levels(count):
        hashes.append(node(level, position >> level))
        position += 1 << level
    return fold_right_edge(hashes)


def _path(level: int, index: int, size: int, node: NodeReader) -> list[bytes]:
    """The hashes that prove node ``(level, index)`` is in the tree of ``size`` leaves, bottom-up.

    Going up from the node, each level contributes its sibling: a left sibling is always a perfect
    node; a right sibling may stick out past the tree's end (only just below where the node's path
    meets the right edge), and is then the ephemeral hash of what exists of it; a right sibling that
    starts past the end does not exist, and that level contributes nothing."""
    proof = []
    last = size - 1
    while last >> level:
        sibling = index ^ 1
        if sibling < index:
            proof.append(node(level, sibling))
        elif (start := sibling << level) < size:
            proof.append(range_hash(start, min(start + (1 << level), size), node))
        index >>= 1
        level += 1
    return proof


def inclusion_proof(index: int, size: int, node: NodeReader) -> list[bytes]:
    """RFC 9162 §2.1.3 inclusion proof (audit path) of leaf ``index`` in the tree of ``size`` leaves."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside the tree of size {size}")
    return _path(0, index, size, node)


def consistency_proof(size1: int, size2: int, node: NodeReader) -> list[bytes]:
    """RFC 9162 §2.1.4 consistency proof between the trees of ``size1`` and ``size2`` leaves.

    It is the path of the biggest perfect subtree that ends the old tree (its last leaf ``size1 - 1``),
    preceded by that subtree's own hash unless it is the whole old tree, which the verifier knows as
    the old root."""
    if not 0 < size1 <= size2:
        raise ValueError(f"a consistency proof needs 0 < size1 <= size2, got {size1} and {size2}")
    if size1 == size2:
        return []
    level = _trailing_zeros(size1)
    index = (size1 - 1) >> level
    seed = [] if size1 == 1 << level else [node(level, index)]
    return seed + _path(level, index, size2, node)


def _inclusion_shape(index: int, size: int) -> tuple[int, int]:
    """How many proof hashes lie below the point where the paths of ``index`` and ``size - 1`` meet
    (siblings on either side) and how many above it (left siblings only, along the right edge)."""
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for bit, sibling in enumerate(proof):
        seed = node_hash(sibling, seed) if index >> bit & 1 else node_hash(seed, sibling)
    return seed


def _chain_inner_left_only(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Like ``_chain_inner`` but skips right siblings: the hash of the same subtree as it was before
    anything to the right of ``seed`` was appended, i.e. in the older tree."""
    for bit, sibling in enumerate(proof):
        if index >> bit & 1:
            seed = node_hash(sibling, seed)
    return seed


def _chain_border(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for sibling in proof:
        seed = node_hash(sibling, seed)
    return seed


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` implies for leaf hash ``leaf`` at ``index`` in a tree of ``size``."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside the tree of size {size}")
    _require_hash(leaf, "leaf hash")
    _require_proof_hashes(proof)
    inner, border = _inclusion_shape(index, size)
    if len(proof) != inner + border:
        raise ProofError(
            f"inclusion proof for leaf {index} in tree of size {size} has {len(proof)} hashes, want {inner + border}"
        )
    return _chain_border(_chain_inner(leaf, proof[:inner], index), proof[inner:])


def _require_match(calculated: bytes, expected: bytes, what: str) -> None:
    if calculated != expected:
        raise ProofError(f"calculated {what} {calculated.hex()} does not match expected {what} {expected.hex()}")


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Raise ``ProofError`` unless ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree with
    ``root`` of ``size`` leaves."""
    _require_hash(root, "root")
    calculated = root_from_inclusion_proof(leaf, index, size, proof)
    _require_match(calculated, root, f"root of tree size {size}")


def _check_consistency_arguments(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    if size1 == 0:
        # Every tree extends the empty one, so such a "proof" would prove nothing (transparency-dev
        # agrees); the tlog-witness endpoint handles `old 0` itself, before calling this.
        raise ProofError("consistency with a tree of size 0 is meaningless; size1 must be at least 1")
    if size2 < size1:
        raise ProofError(f"size2 {size2} is smaller than size1 {size1}")
    _require_hash(root1, "root1")
    _require_hash(root2, "root2")
    _require_proof_hashes(proof)


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Raise ``ProofError`` unless ``proof`` shows that the tree of ``size2`` leaves with ``root2``
    extends the tree of ``size1`` leaves with ``root1`` (RFC 9162 §2.1.4.2). ``size1`` must be > 0."""
    _check_consistency_arguments(size1, size2, proof, root1, root2)
    if size1 == size2:
        if proof:
            raise ProofError(f"sizes are equal ({size1}) but the proof has {len(proof)} hashes, want none")
        _require_match(root1, root2, f"root of tree size {size2}")
        return
    if not proof:
        raise ProofError(f"consistency proof from size {size1} to {size2} is empty")
    inner, border = _inclusion_shape(size1 - 1, size2)
    shift = _trailing_zeros(size1)
    inner -= shift
    # The proof starts with the hash of the biggest perfect subtree ending the old tree, unless that
    # subtree is the whole old tree: then its hash is root1 itself.
    start = 0 if size1 == 1 << shift else 1
    if len(proof) != start + inner + border:
        raise ProofError(
            f"consistency proof from size {size1} to {size2} has {len(proof)} hashes, want {start + inner + border}"
        )
    seed, rest = (proof[0], proof[1:]) if start else (root1, proof)
    mask = (size1 - 1) >> shift
    old = _chain_border(_chain_inner_left_only(seed, rest[:inner], mask), rest[inner:])
    _require_match(old, root1, f"root of tree size {size1}")
    new = _chain_border(_chain_inner(seed, rest[:inner], mask), rest[inner:])
    _require_match(new, root2, f"root of tree size {size2}")


class MemoryTree:
    """A whole tree in memory, every level computed once: for tests, the sequencer's batches and
    verifiers that hold all leaves. Only perfect subtrees are stored; the root folds the right edge."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        self.size = len(leaf_hashes)
        self._levels: list[list[bytes]] = [list(leaf_hashes)]
        while len(self._levels[-1]) > 1:
            self._levels.append(parent_level(self._levels[-1]))

    def node(self, level: int, index: int) -> bytes:
        """The hash of perfect subtree ``(level, index)``; ``IndexError`` if it is not all inside."""
        if level < 0 or index < 0 or level >= len(self._levels) or index >= len(self._levels[level]):
            raise IndexError(f"node ({level}, {index}) is not a perfect subtree of the tree of size {self.size}")
        return self._levels[level][index]

    def root(self) -> bytes:
        return range_hash(0, self.size, self.node)


class Frontier:
    """The compact range ``[0, size)``: the hashes of the perfect subtrees along the right edge,
    biggest first (one per set bit of ``size``). It is all a sequencer needs to keep to append
    leaves and know the root, whatever the size of the log."""

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0:
            raise ValueError(f"tree size {size} is negative")
        if len(hashes) != size.bit_count():
            raise ValueError(f"a tree of size {size} has {size.bit_count()} right-edge hashes, got {len(hashes)}")
        for position, value in enumerate(hashes):
            if len(value) != HASH_SIZE:
                raise ValueError(f"right-edge hash {position} is {len(value)} bytes, want {HASH_SIZE}")
        self.size = size
        self.hashes = list(hashes)

    @classmethod
    def from_nodes(cls, size: int, node: NodeReader) -> Frontier:
        hashes = []
        position = 0
        for level in _right_edge_levels(size):
            hashes.append(node(level, position >> level))
            position += 1 << level
        return cls(size, hashes)

    def append(self, leaf: bytes) -> None:
        self.extend((leaf,))

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Append many leaf hashes level by level: at each level the old edge node (if any) joins the
        new nodes on the left, pairs are hashed, and an odd one out becomes the new edge node."""
        incoming = list(leaves)
        for position, value in enumerate(incoming):
            if len(value) != HASH_SIZE:
                raise ValueError(f"leaf hash {position} is {len(value)} bytes, want {HASH_SIZE}")
        old_edge = dict(zip(_right_edge_levels(self.size), self.hashes, strict=True))
        new_size = self.size + len(incoming)
        new_edge: dict[int, bytes] = {}
        level = 0
        while incoming:
            if level in old_edge:
                incoming.insert(0, old_edge.pop(level))
            if len(incoming) % 2:
                new_edge[level] = incoming.pop()
            incoming = parent_level(incoming)
            level += 1
        new_edge.update(old_edge)  # what is left sits above every level the new leaves reached
        self.size = new_size
        self.hashes = [new_edge[edge_level] for edge_level in _right_edge_levels(new_size)]

    def root(self) -> bytes:
        return fold_right_edge(self.hashes)
