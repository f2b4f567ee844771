"""The Merkle tree against the reference implementation (transparency-dev/merkle): its JSON proof
vectors, its RFC 6962 example tree, and properties over every small tree."""

from __future__ import annotations

import base64
import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zhkh.ledger.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    Frontier,
    MemoryTree,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    range_hash,
    root,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).resolve().parents[3].parent / "shared" / "vectors" / "merkle"
INCLUSION_VECTORS = sorted(VECTORS.glob("inclusion/*/*.json")) + sorted(VECTORS.glob("inclusion/*/*/*.json"))
CONSISTENCY_VECTORS = sorted(VECTORS.glob("consistency/*/*.json"))

# The one vector whose expectation our policy overrides: it accepts 12-byte "roots" ("don't care 2")
# because they are equal, and every hash here must be exactly 32 bytes (vectors/merkle/README.md).
NOT_32_BYTES = {"consistency/additional/sizes-are-equal-one-and-proof-is-empty.json"}

# transparency-dev/merkle testonly/constants.go: the RFC 6962 example tree of eight leaves.
RFC_LEAVES = [
    bytes.fromhex(text)
    for text in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
]
RFC_NODES = [
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]
RFC_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# CompactTrees() of the same file, as (level, index) into RFC_NODES, biggest first.
RFC_COMPACT = [
    [],
    [(0, 0)],
    [(1, 0)],
    [(1, 0), (0, 2)],
    [(2, 0)],
    [(2, 0), (0, 4)],
    [(2, 0), (1, 2)],
    [(2, 0), (1, 2), (0, 6)],
    [(3, 0)],
]
# proof/verify_test.go: known proofs in that tree, as (leaf index, size, proof) and (size1, size2, proof).
RFC_INCLUSION_PROOFS = [
    (0, 8, ["96a296d2", "5f083f0a", "6b47aaf2"]),
    (5, 8, ["bc1a0643", "ca854ea1", "d37ee418"]),
    (2, 3, ["fac54203"]),
    (1, 5, ["6e340b9c", "5f083f0a", "bc1a0643"]),
]
RFC_CONSISTENCY_PROOFS = [
    (1, 1, []),
    (1, 8, ["96a296d2", "5f083f0a", "6b47aaf2"]),
    (6, 8, ["0ebc5d34", "ca854ea1", "d37ee418"]),
    (2, 5, ["5f083f0a", "bc1a0643"]),
    (6, 7, ["0ebc5d34", "b08693ec", "d37ee418"]),
]

MAX_PROPERTY_SIZE = 70


def _b64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    data["proof"] = [_b64(element) for element in data["proof"] or []]  # Go writes an empty proof as null
    return data


def _vector_id(path: Path) -> str:
    return path.relative_to(VECTORS).as_posix()


def _full_hash(prefix: str) -> bytes:
    """The RFC node hash that starts with these hex digits (the tables above are unambiguous)."""
    (match,) = [bytes.fromhex(text) for level in RFC_NODES for text in level if text.startswith(prefix)]
    return match


def _rfc_tree(size: int) -> MemoryTree:
    return MemoryTree([leaf_hash(entry) for entry in RFC_LEAVES[:size]])


@cache
def _tree(size: int) -> MemoryTree:
    return MemoryTree([leaf_hash(index.to_bytes(4, "big")) for index in range(size)])


def _raises_proof_error(check: Any, *args: Any) -> bool:
    try:
        check(*args)
    except ProofError:
        return True
    return False


# --- the reference implementation's vectors -------------------------------------------------------


def test_the_vector_corpus_is_all_there() -> None:
    assert len(INCLUSION_VECTORS) == 98
    assert len(CONSISTENCY_VECTORS) == 98


@pytest.mark.parametrize("path", INCLUSION_VECTORS, ids=_vector_id)
def test_inclusion_vector(path: Path) -> None:
    case = _load(path)
    args = (_b64(case["leafHash"]), case["leafIdx"], case["treeSize"], case["proof"], _b64(case["root"]))
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("path", CONSISTENCY_VECTORS, ids=_vector_id)
def test_consistency_vector(path: Path) -> None:
    case = _load(path)
    args = (case["size1"], case["size2"], case["proof"], _b64(case["root1"]), _b64(case["root2"]))
    if case["wantErr"] or _vector_id(path) in NOT_32_BYTES:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def test_the_policy_override_is_only_about_hash_length() -> None:
    """The overridden vector, with 32-byte roots instead of 12-byte ones, passes; as it stands it fails
    only for the length."""
    (path,) = [VECTORS / name for name in NOT_32_BYTES]
    case = _load(path)
    assert not case["wantErr"]
    with pytest.raises(ProofError, match="root1 is 12 bytes, want 32"):
        verify_consistency(case["size1"], case["size2"], case["proof"], _b64(case["root1"]), _b64(case["root2"]))
    padded = _b64(case["root1"]).ljust(HASH_SIZE, b"\x00")
    verify_consistency(case["size1"], case["size2"], case["proof"], padded, padded)


@pytest.mark.parametrize("path", [p for p in INCLUSION_VECTORS if p.name == "happy-path.json"], ids=_vector_id)
def test_generated_inclusion_proof_equals_the_reference(path: Path) -> None:
    case = _load(path)
    tree = _rfc_tree(case["treeSize"])
    assert tree.root() == _b64(case["root"])
    assert tree.node(0, case["leafIdx"]) == _b64(case["leafHash"])
    assert inclusion_proof(case["leafIdx"], case["treeSize"], tree.node) == case["proof"]


@pytest.mark.parametrize("path", [p for p in CONSISTENCY_VECTORS if p.name == "happy-path.json"], ids=_vector_id)
def test_generated_consistency_proof_equals_the_reference(path: Path) -> None:
    case = _load(path)
    tree = _rfc_tree(case["size2"])
    assert tree.root() == _b64(case["root2"])
    assert _rfc_tree(case["size1"]).root() == _b64(case["root1"])
    assert consistency_proof(case["size1"], case["size2"], tree.node) == case["proof"]


# --- the RFC 6962 example tree --------------------------------------------------------------------


def test_empty_tree() -> None:
    assert EMPTY_ROOT == bytes.fromhex(RFC_ROOTS[0]) == hashlib.sha256(b"").digest()
    assert root([]) == EMPTY_ROOT
    assert MemoryTree([]).root() == EMPTY_ROOT
    assert Frontier().root() == EMPTY_ROOT


@pytest.mark.parametrize("size", range(len(RFC_ROOTS)))
def test_rfc6962_roots(size: int) -> None:
    leaves = [leaf_hash(entry) for entry in RFC_LEAVES[:size]]
    expected = bytes.fromhex(RFC_ROOTS[size])
    assert root(leaves) == expected
    assert MemoryTree(leaves).root() == expected
    frontier = Frontier()
    frontier.extend(leaves)
    assert frontier.root() == expected
    assert frontier.hashes == [bytes.fromhex(RFC_NODES[level][index]) for level, index in RFC_COMPACT[size]]


def test_rfc6962_nodes() -> None:
    tree = _rfc_tree(8)
    for level, hashes in enumerate(RFC_NODES):
        assert [tree.node(level, index).hex() for index in range(len(hashes))] == hashes
    assert node_hash(bytes.fromhex(RFC_NODES[0][0]), bytes.fromhex(RFC_NODES[0][1])).hex() == RFC_NODES[1][0]


@pytest.mark.parametrize(("index", "size", "expected"), RFC_INCLUSION_PROOFS)
def test_rfc6962_inclusion_proofs(index: int, size: int, expected: list[str]) -> None:
    tree = _rfc_tree(size)
    proof = inclusion_proof(index, size, tree.node)
    assert proof == [_full_hash(prefix) for prefix in expected]
    verify_inclusion(leaf_hash(RFC_LEAVES[index]), index, size, proof, bytes.fromhex(RFC_ROOTS[size]))


@pytest.mark.parametrize(("size1", "size2", "expected"), RFC_CONSISTENCY_PROOFS)
def test_rfc6962_consistency_proofs(size1: int, size2: int, expected: list[str]) -> None:
    proof = consistency_proof(size1, size2, _rfc_tree(size2).node)
    assert proof == [_full_hash(prefix) for prefix in expected]
    verify_consistency(size1, size2, proof, bytes.fromhex(RFC_ROOTS[size1]), bytes.fromhex(RFC_ROOTS[size2]))


# --- every small tree -----------------------------------------------------------------------------


def test_every_inclusion_proof_of_every_small_tree_verifies() -> None:
    for size in range(1, MAX_PROPERTY_SIZE + 1):
        tree = _tree(size)
        tree_root = tree.root()
        for index in range(size):
            proof = inclusion_proof(index, size, tree.node)
            assert root_from_inclusion_proof(tree.node(0, index), index, size, proof) == tree_root
            verify_inclusion(tree.node(0, index), index, size, proof, tree_root)


def test_every_consistency_proof_between_small_trees_verifies() -> None:
    for size2 in range(1, MAX_PROPERTY_SIZE + 1):
        tree = _tree(size2)
        for size1 in range(1, size2 + 1):
            proof = consistency_proof(size1, size2, tree.node)
            verify_consistency(size1, size2, proof, _tree(size1).root(), tree.root())


sizes = st.integers(min_value=1, max_value=MAX_PROPERTY_SIZE)


@st.composite
def leaf_in_tree(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(sizes)
    return draw(st.integers(min_value=0, max_value=size - 1)), size


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    size2 = draw(sizes)
    return draw(st.integers(min_value=1, max_value=size2)), size2


def _flip(value: bytes, position: int, mask: int) -> bytes:
    return value[:position] + bytes([value[position] ^ mask]) + value[position + 1 :]


byte_positions = st.integers(min_value=0, max_value=HASH_SIZE - 1)
masks = st.integers(min_value=1, max_value=255)


@settings(max_examples=300, deadline=None)
@given(leaf_in_tree(), st.data(), byte_positions, masks)
def test_inclusion_fails_with_any_byte_flipped(
    leaf: tuple[int, int], data: st.DataObject, position: int, mask: int
) -> None:
    index, size = leaf
    tree = _tree(size)
    proof = inclusion_proof(index, size, tree.node)
    leaf_value, tree_root = tree.node(0, index), tree.root()
    target = data.draw(st.integers(min_value=0, max_value=len(proof) + 1), label="which hash")
    if target < len(proof):
        proof[target] = _flip(proof[target], position, mask)
    elif target == len(proof):
        leaf_value = _flip(leaf_value, position, mask)
    else:
        tree_root = _flip(tree_root, position, mask)
    assert _raises_proof_error(verify_inclusion, leaf_value, index, size, proof, tree_root)


@settings(max_examples=300, deadline=None)
@given(leaf_in_tree(), st.data())
def test_inclusion_fails_at_any_other_index(leaf: tuple[int, int], data: st.DataObject) -> None:
    index, size = leaf
    tree = _tree(size)
    proof = inclusion_proof(index, size, tree.node)
    other = data.draw(st.integers(min_value=0, max_value=size).filter(lambda value: value != index), label="index")
    assert _raises_proof_error(verify_inclusion, tree.node(0, index), other, size, proof, tree.root())


@settings(max_examples=300, deadline=None)
@given(two_sizes(), st.data(), byte_positions, masks)
def test_consistency_fails_with_any_byte_flipped(
    two: tuple[int, int], data: st.DataObject, position: int, mask: int
) -> None:
    size1, size2 = two
    proof = consistency_proof(size1, size2, _tree(size2).node)
    root1, root2 = _tree(size1).root(), _tree(size2).root()
    target = data.draw(st.integers(min_value=0, max_value=len(proof) + 1), label="which hash")
    if target < len(proof):
        proof[target] = _flip(proof[target], position, mask)
    elif target == len(proof):
        root1 = _flip(root1, position, mask)
    else:
        root2 = _flip(root2, position, mask)
    assert _raises_proof_error(verify_consistency, size1, size2, proof, root1, root2)


@settings(max_examples=300, deadline=None)
@given(two_sizes(), st.data())
def test_consistency_fails_from_any_other_old_size(two: tuple[int, int], data: st.DataObject) -> None:
    size1, size2 = two
    proof = consistency_proof(size1, size2, _tree(size2).node)
    other = data.draw(st.integers(min_value=0, max_value=size2 + 1).filter(lambda value: value != size1), label="size1")
    assert _raises_proof_error(verify_consistency, other, size2, proof, _tree(size1).root(), _tree(size2).root())


def test_every_byte_of_every_proof_of_one_tree_matters() -> None:
    size = 13
    tree = _tree(size)
    for index in range(size):
        proof = inclusion_proof(index, size, tree.node)
        for target in range(len(proof)):
            for position in range(HASH_SIZE):
                corrupted = [*proof[:target], _flip(proof[target], position, 0x01), *proof[target + 1 :]]
                assert _raises_proof_error(verify_inclusion, tree.node(0, index), index, size, corrupted, tree.root())


# --- policy and messages --------------------------------------------------------------------------


def _good_inclusion() -> tuple[bytes, int, int, list[bytes], bytes]:
    tree = _tree(11)
    return tree.node(0, 6), 6, 11, inclusion_proof(6, 11, tree.node), tree.root()


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_hashes_of_another_length_fail(length: int) -> None:
    leaf, index, size, proof, tree_root = _good_inclusion()
    wrong = b"\x07" * length
    with pytest.raises(ProofError, match=rf"proof\[1\] is {length} bytes, want 32"):
        verify_inclusion(leaf, index, size, [proof[0], wrong, *proof[2:]], tree_root)
    with pytest.raises(ProofError, match=rf"leaf hash is {length} bytes"):
        verify_inclusion(wrong, index, size, proof, tree_root)
    with pytest.raises(ProofError, match=rf"root is {length} bytes"):
        verify_inclusion(leaf, index, size, proof, wrong)
    tree = _tree(11)
    consistency = consistency_proof(5, 11, tree.node)
    with pytest.raises(ProofError, match=rf"root2 is {length} bytes"):
        verify_consistency(5, 11, consistency, _tree(5).root(), wrong)
    with pytest.raises(ProofError, match=rf"proof\[0\] is {length} bytes"):
        verify_consistency(5, 11, [wrong, *consistency[1:]], _tree(5).root(), tree.root())


def test_consistency_from_size_zero_is_rejected() -> None:
    """As the corpus expects; the witness endpoint accepts `old 0` itself, without calling this."""
    for size2, root2 in [(0, EMPTY_ROOT), (1, _tree(1).root()), (5, _tree(5).root())]:
        with pytest.raises(ProofError, match="size 0 is meaningless"):
            verify_consistency(0, size2, [], EMPTY_ROOT, root2)
    with pytest.raises(ValueError, match="0 < size1 <= size2"):
        consistency_proof(0, 5, _tree(5).node)


def test_inclusion_messages_say_what_failed() -> None:
    leaf, index, size, proof, tree_root = _good_inclusion()
    with pytest.raises(ProofError, match="leaf index 11 is outside the tree of size 11"):
        verify_inclusion(leaf, 11, size, proof, tree_root)
    with pytest.raises(ProofError, match="leaf 6 in tree of size 11 has 3 hashes, want 4"):
        verify_inclusion(leaf, index, size, proof[:-1], tree_root)
    with pytest.raises(ProofError, match=r"calculated root of tree size 11 [0-9a-f]{64} does not match expected"):
        verify_inclusion(leaf, index, size, proof, _tree(12).root())
    with pytest.raises(ValueError, match="leaf index 3 is outside the tree of size 3"):
        inclusion_proof(3, 3, _tree(3).node)


def test_consistency_messages_say_what_failed() -> None:
    tree, old = _tree(11), _tree(5)
    proof = consistency_proof(5, 11, tree.node)
    with pytest.raises(ProofError, match="size2 4 is smaller than size1 5"):
        verify_consistency(5, 4, proof, old.root(), tree.root())
    with pytest.raises(ProofError, match="from size 5 to 11 has 4 hashes, want 5"):
        verify_consistency(5, 11, proof[:-1], old.root(), tree.root())
    with pytest.raises(ProofError, match="from size 5 to 11 is empty"):
        verify_consistency(5, 11, [], old.root(), tree.root())
    with pytest.raises(ProofError, match="calculated root of tree size 5 "):
        verify_consistency(5, 11, proof, _tree(6).root(), tree.root())
    with pytest.raises(ProofError, match="calculated root of tree size 11 "):
        verify_consistency(5, 11, proof, old.root(), _tree(12).root())
    with pytest.raises(ProofError, match=r"sizes are equal \(5\) but the proof has 1 hashes"):
        verify_consistency(5, 5, proof[:1], old.root(), old.root())
    with pytest.raises(ProofError, match="calculated root of tree size 5 "):
        verify_consistency(5, 5, [], old.root(), tree.root())
    assert consistency_proof(5, 5, old.node) == []
    verify_consistency(5, 5, [], old.root(), old.root())


# --- subtrees, the memory tree and the frontier ---------------------------------------------------


def test_range_hash_is_the_root_of_the_leaves_in_the_range() -> None:
    tree = _tree(64)
    leaves = [tree.node(0, index) for index in range(64)]
    for begin in range(64):
        for end in range(begin, 65):
            count = end - begin
            if count and begin % (1 << (count - 1).bit_length()):
                with pytest.raises(ValueError, match="not aligned"):
                    range_hash(begin, end, tree.node)
            else:
                assert range_hash(begin, end, tree.node) == root(leaves[begin:end])


def test_memory_tree_refuses_nodes_outside_the_tree() -> None:
    tree = _tree(5)
    assert tree.size == 5
    assert tree.node(2, 0) == range_hash(0, 4, tree.node)
    for level, index in [(0, 5), (1, 2), (3, 0), (-1, 0), (0, -1)]:
        with pytest.raises(IndexError, match=rf"node \({level}, {index}\)"):
            tree.node(level, index)


def _check_frontier(size: int) -> None:
    leaves = [leaf_hash(index.to_bytes(4, "big")) for index in range(size)]
    tree = MemoryTree(leaves)
    bulk = Frontier()
    bulk.extend(leaves)
    assert bulk.size == size
    assert bulk.root() == tree.root() == root(leaves)
    assert Frontier.from_nodes(size, tree.node).hashes == bulk.hashes
    one_by_one = Frontier()
    for leaf in leaves[:40]:
        one_by_one.append(leaf)
    one_by_one.extend(leaves[40:])
    assert one_by_one.hashes == bulk.hashes


def test_frontier_root_equals_the_memory_tree_root_for_every_small_size() -> None:
    for size in range(300):
        _check_frontier(size)


@pytest.mark.parametrize("size", [511, 512, 513, 1000, 1023, 1024, 1025, 4097, 65537])
def test_frontier_root_equals_the_memory_tree_root(size: int) -> None:
    _check_frontier(size)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=300), max_size=6))
def test_frontier_restored_from_its_hashes_continues_identically(batches: list[int]) -> None:
    total = sum(batches)
    leaves = [leaf_hash(index.to_bytes(4, "big")) for index in range(total)]
    frontier = Frontier()
    done = 0
    for batch in batches:
        restored = Frontier(frontier.size, frontier.hashes)
        restored.extend(leaves[done : done + batch])
        done += batch
        frontier = Frontier.from_nodes(done, MemoryTree(leaves[:done]).node)
        assert restored.hashes == frontier.hashes
    assert frontier.root() == root(leaves)


def test_frontier_validates_what_it_is_given() -> None:
    with pytest.raises(ValueError, match="size 5 has 2 right-edge hashes, got 1"):
        Frontier(5, [EMPTY_ROOT])
    with pytest.raises(ValueError, match="right-edge hash 0 is 3 bytes"):
        Frontier(1, [b"abc"])
    with pytest.raises(ValueError, match="leaf hash 1 is 0 bytes"):
        Frontier().extend([EMPTY_ROOT, b""])
