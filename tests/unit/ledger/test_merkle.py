"""RFC 9162 Merkle hashing, incremental trees and proofs against a naive reference."""

from __future__ import annotations

import hashlib
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.merkle import (
    EMPTY_ROOT,
    CompactRange,
    InvalidProofError,
    MerkleTree,
    leaf_hash,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

SMALL = 300  # every pair of sizes up to this is checked exhaustively
LARGE = 4100  # hypothesis samples sizes up to this


def naive_mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) exactly as RFC 9162 §2.1.1 writes it, recursively, from raw leaf data."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + naive_mth(leaves[:k]) + naive_mth(leaves[k:])).digest()


def data(i: int) -> bytes:
    return f"leaf-{i}".encode() * (i % 3 + 1)


DATA = [data(i) for i in range(LARGE)]


@cache
def big_tree() -> MerkleTree:
    tree = MerkleTree()
    tree.extend_data(DATA)
    return tree


def flip(value: bytes, bit: int) -> bytes:
    buf = bytearray(value)
    buf[bit // 8] ^= 1 << (bit % 8)
    return bytes(buf)


# RFC 6962 test leaves and roots, as used by Certificate Transparency and Trillian test suites.
RFC6962_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
RFC6962_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_known_roots_from_rfc6962_test_vectors() -> None:
    """Roots of the 8 standard test leaves match the published CT test vectors."""
    tree = MerkleTree()
    compact = CompactRange()
    for size, (leaf, root) in enumerate(zip(RFC6962_LEAVES, RFC6962_ROOTS, strict=True), 1):
        tree.append_data(leaf)
        compact.append_data(leaf)
        assert tree.root().hex() == root
        assert compact.root().hex() == root
        assert tree.root(size).hex() == root


def test_empty_tree_root_is_hash_of_nothing() -> None:
    """MTH({}) is SHA-256 of the empty string, for both tree kinds."""
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert MerkleTree().root() == EMPTY_ROOT
    assert CompactRange().root() == EMPTY_ROOT


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    """A leaf whose data is two concatenated hashes does not hash like the node above them."""
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert leaf_hash(a + b) != naive_mth([b"a", b"b"])


def test_roots_match_naive_reference_for_every_small_size() -> None:
    """MerkleTree.root(n) and CompactRange equal the recursive RFC definition for n = 0..300."""
    compact = CompactRange()
    tree = big_tree()
    assert compact.root() == naive_mth([])
    for n in range(1, SMALL + 1):
        compact.append_data(DATA[n - 1])
        expected = naive_mth(DATA[:n])
        assert compact.root() == expected, n
        assert tree.root(n) == expected, n


def test_inclusion_proofs_verify_for_every_leaf_of_every_small_size() -> None:
    """Every audit path of every leaf in trees of 1..300 leaves verifies (RFC 9162 §2.1.3)."""
    tree = big_tree()
    for n in range(1, SMALL + 1):
        root = tree.root(n)
        for m in range(n):
            verify_inclusion(tree.leaf_hash(m), m, n, tree.inclusion_proof(m, n), root)


def test_consistency_proofs_verify_for_every_pair_of_small_sizes() -> None:
    """Every consistency proof between sizes 0 <= m <= n <= 300 verifies (RFC 9162 §2.1.4)."""
    tree = big_tree()
    roots = [tree.root(n) for n in range(SMALL + 1)]
    for n in range(SMALL + 1):
        for m in range(n + 1):
            verify_consistency(m, n, tree.consistency_proof(m, n), roots[m], roots[n])


def test_every_bit_flip_in_small_inclusion_proofs_is_rejected() -> None:
    """For sizes up to 40, flipping any bit of any path element, the leaf or the root fails."""
    tree = big_tree()
    for n in range(1, 41):
        root = tree.root(n)
        for m in range(n):
            leaf, proof = tree.leaf_hash(m), tree.inclusion_proof(m, n)
            for bit in range(0, 256, 37):
                with pytest.raises(InvalidProofError):
                    verify_inclusion(flip(leaf, bit), m, n, proof, root)
                with pytest.raises(InvalidProofError):
                    verify_inclusion(leaf, m, n, proof, flip(root, bit))
                for i in range(len(proof)):
                    bad = [*proof[:i], flip(proof[i], bit), *proof[i + 1 :]]
                    with pytest.raises(InvalidProofError):
                        verify_inclusion(leaf, m, n, bad, root)


def test_every_bit_flip_in_small_consistency_proofs_is_rejected() -> None:
    """For sizes up to 40, flipping a bit of any proof element or either root fails."""
    tree = big_tree()
    for n in range(2, 41):
        for m in range(1, n):
            old, new, proof = tree.root(m), tree.root(n), tree.consistency_proof(m, n)
            for bit in range(0, 256, 41):
                with pytest.raises(InvalidProofError):
                    verify_consistency(m, n, proof, flip(old, bit), new)
                with pytest.raises(InvalidProofError):
                    verify_consistency(m, n, proof, old, flip(new, bit))
                for i in range(len(proof)):
                    bad = [*proof[:i], flip(proof[i], bit), *proof[i + 1 :]]
                    with pytest.raises(InvalidProofError):
                        verify_consistency(m, n, bad, old, new)


sizes = st.integers(min_value=1, max_value=LARGE)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_sampled_inclusion_proofs_verify_and_reject_any_flipped_bit(draw: st.DataObject) -> None:
    """Up to 4100 leaves: the proof verifies, and one flipped bit anywhere makes it fail."""
    tree = big_tree()
    n = draw.draw(sizes, label="size")
    m = draw.draw(st.integers(0, n - 1), label="index")
    leaf, proof, root = tree.leaf_hash(m), tree.inclusion_proof(m, n), tree.root(n)
    assert leaf == leaf_hash(DATA[m])
    verify_inclusion(leaf, m, n, proof, root)
    bit = draw.draw(st.integers(0, 255), label="bit")
    target = draw.draw(st.integers(-2, len(proof) - 1), label="target")
    if target == -2:
        leaf = flip(leaf, bit)
    elif target == -1:
        root = flip(root, bit)
    else:
        proof[target] = flip(proof[target], bit)
    with pytest.raises(InvalidProofError):
        verify_inclusion(leaf, m, n, proof, root)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_sampled_consistency_proofs_verify_and_reject_any_flipped_bit(draw: st.DataObject) -> None:
    """Up to 4100 leaves: PROOF(m, n) verifies, and one flipped bit anywhere makes it fail."""
    tree = big_tree()
    n = draw.draw(st.integers(2, LARGE), label="new size")
    m = draw.draw(st.integers(1, n - 1), label="old size")
    old, new, proof = tree.root(m), tree.root(n), tree.consistency_proof(m, n)
    verify_consistency(m, n, proof, old, new)
    bit = draw.draw(st.integers(0, 255), label="bit")
    target = draw.draw(st.integers(-2, len(proof) - 1), label="target")
    if target == -2:
        old = flip(old, bit)
    elif target == -1:
        new = flip(new, bit)
    else:
        proof[target] = flip(proof[target], bit)
    with pytest.raises(InvalidProofError):
        verify_consistency(m, n, proof, old, new)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, LARGE))
def test_sampled_roots_match_the_naive_reference(n: int) -> None:
    """Roots at sampled sizes up to 4100 equal the recursive definition."""
    assert big_tree().root(n) == naive_mth(DATA[:n])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 700), min_size=1, max_size=6))
def test_batched_appends_equal_one_by_one(batches: list[int]) -> None:
    """extend/extend_data in arbitrary batch sizes gives the same roots as single appends."""
    tree, compact, single = MerkleTree(), CompactRange(), CompactRange()
    start = 0
    for count in batches:
        chunk = DATA[start : start + count]
        tree.extend_data(chunk)
        compact.extend([leaf_hash(d) for d in chunk])
        for d in chunk:
            single.append_data(d)
        start += count
        assert tree.root() == compact.root() == single.root() == big_tree().root(start)
    assert tree.leaf_hashes() == big_tree().leaf_hashes()[: 32 * start]


def test_compact_range_resumes_from_its_frontier() -> None:
    """A CompactRange rebuilt from (size, frontier) continues to the same roots."""
    compact = CompactRange()
    compact.extend_data(DATA[:1234])
    resumed = CompactRange.from_frontier(compact.size, compact.frontier)
    assert len(compact.frontier) == bin(1234).count("1")
    resumed.extend_data(DATA[1234:2000])
    assert resumed.root() == big_tree().root(2000)
    with pytest.raises(ValueError, match="frontier"):
        CompactRange.from_frontier(1234, compact.frontier[:-1])


def test_tree_rebuilt_from_leaf_hashes_gives_same_proofs() -> None:
    """MerkleTree.from_leaf_hashes reproduces roots and proofs of the original tree."""
    copy = MerkleTree.from_leaf_hashes(big_tree().leaf_hashes()[: 32 * 999])
    assert copy.root() == big_tree().root(999)
    assert copy.inclusion_proof(500) == big_tree().inclusion_proof(500, 999)
    assert copy.consistency_proof(300) == big_tree().consistency_proof(300, 999)


def test_inclusion_rejects_out_of_range_index_and_wrong_length_proofs() -> None:
    """Indices outside the tree, and proofs one element short or long, fail verification."""
    tree = big_tree()
    proof, root = tree.inclusion_proof(5, 100), tree.root(100)
    leaf = tree.leaf_hash(5)
    with pytest.raises(InvalidProofError, match="not in"):
        root_from_inclusion_proof(leaf, 100, 100, proof)
    with pytest.raises(InvalidProofError, match="too short"):
        verify_inclusion(leaf, 5, 100, proof[:-1], root)
    with pytest.raises(InvalidProofError, match="too long"):
        verify_inclusion(leaf, 5, 100, [*proof, proof[0]], root)
    with pytest.raises(InvalidProofError, match="32 bytes"):
        verify_inclusion(leaf, 5, 100, [proof[0][:31], *proof[1:]], root)


def test_inclusion_proof_for_another_leaf_fails() -> None:
    """A valid path for leaf 7 does not prove leaf 8 at index 7."""
    tree = big_tree()
    with pytest.raises(InvalidProofError):
        verify_inclusion(tree.leaf_hash(8), 7, 64, tree.inclusion_proof(7, 64), tree.root(64))


def test_consistency_edge_cases() -> None:
    """Size 0 and equal sizes need empty proofs; equal sizes need equal roots; m > n fails."""
    tree = big_tree()
    r10, r20 = tree.root(10), tree.root(20)
    verify_consistency(0, 20, [], EMPTY_ROOT, r20)
    verify_consistency(20, 20, [], r20, r20)
    with pytest.raises(InvalidProofError, match="different roots"):
        verify_consistency(20, 20, [], r10, r20)
    with pytest.raises(InvalidProofError, match="must be empty"):
        verify_consistency(20, 20, [r10], r20, r20)
    with pytest.raises(InvalidProofError, match="not in"):
        verify_consistency(21, 20, [], r20, r20)
    with pytest.raises(InvalidProofError, match="empty"):
        verify_consistency(10, 20, [], r10, r20)
    proof = tree.consistency_proof(10, 20)
    with pytest.raises(InvalidProofError):
        verify_consistency(11, 20, proof, r10, r20)


def test_proof_requests_outside_the_tree_are_refused() -> None:
    """Asking for a root, path or proof beyond the tree's size raises, not guesses."""
    tree = MerkleTree()
    tree.extend_data(DATA[:10])
    with pytest.raises(ValueError, match="tree size"):
        tree.root(11)
    with pytest.raises(IndexError):
        tree.inclusion_proof(10)
    with pytest.raises(ValueError, match="old size"):
        tree.consistency_proof(11, 10)
    with pytest.raises(ValueError, match="32 bytes"):
        tree.append(b"short")
