"""The Merkle tree against a reference written straight from RFC 9162 §2.1.

The reference (``ref_*``) recurses over lists exactly as the RFC text does, with
its own SHA-256 calls, so the stored-node algorithms in ``ledger.merkle`` are
checked against the definitions rather than against themselves. Leaves in the
properties are distinct, so a proof that verifies where it should not would be
a SHA-256 collision, never luck.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from functools import cache
from itertools import pairwise
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.merkle import (
    EMPTY_ROOT,
    PROOF_HASHES_MAX,
    TREE_SIZE_MAX,
    MemoryNodeStore,
    NodeKey,
    RootBuilder,
    canonical_leaf,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    new_nodes,
    node_hash,
    root,
    root_of_leaves,
    verify_consistency,
    verify_inclusion,
)

PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# RFC 6962 / 9162 test leaves, as used by certificate-transparency-go and Trillian.
RFC_LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
RFC_ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}


# --- Reference: RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1, transcribed -------------------


def _k(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@cache
def ref_mth(d: tuple[bytes, ...]) -> bytes:
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = _k(n)
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: tuple[bytes, ...]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_sides(m: int, n: int) -> list[str]:
    """Which side each PATH(m, D[n]) hash goes on: the shape a verifier rebuilds."""
    if n == 1:
        return []
    k = _k(n)
    return [*ref_sides(m, k), "right"] if m < k else [*ref_sides(m - k, n - k), "left"]


def ref_proof(m: int, d: tuple[bytes, ...]) -> list[bytes]:
    return ref_subproof(m, d, True)


def ref_subproof(m: int, d: tuple[bytes, ...], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof_ranges(m: int, low: int, high: int, b: bool) -> list[tuple[int, int]]:
    """SUBPROOF again, naming each hash by its leaf range instead of computing it."""
    if m == high:
        return [] if b else [(low, high)]
    mid = low + _k(high - low)
    if m <= mid:
        return [*ref_proof_ranges(m, low, mid, b), (mid, high)]
    return [*ref_proof_ranges(m, mid, high, False), (low, mid)]


def ref_consistency_shape(m: int, n: int) -> tuple[object, object]:
    """How a verifier combines the hashes of PROOF(m, D[n]) into both roots (0 < m < n).

    Each hash is named by its place in the (prepended) path, so two size pairs
    with the same shape accept the same proof for the same two roots.
    """
    atoms = ref_proof_ranges(m, 0, n, True)
    if m & (m - 1) == 0:
        atoms = [(0, m), *atoms]
    place = {atom: i for i, atom in enumerate(atoms)}

    def shape(low: int, high: int) -> object:
        if (low, high) in place:
            return place[low, high]
        if high - low == 1:
            raise AssertionError(f"leaf {low} is not covered by the proof")
        mid = low + _k(high - low)
        return (shape(low, mid), shape(mid, high))

    return shape(0, m), shape(0, n)


def ref_consistency(m: int, d: tuple[bytes, ...]) -> list[bytes]:
    """PROOF is defined for 0 < m < n; the trivial cases prove nothing."""
    return [] if m in {0, len(d)} else ref_proof(m, d)


# --- Helpers -------------------------------------------------------------------------


def build(batches: Sequence[Sequence[bytes]]) -> MemoryNodeStore:
    store = MemoryNodeStore()
    for batch in batches:
        store.append([leaf_hash(data) for data in batch])
    return store


def flip(proof: Sequence[bytes], which: int, byte: int) -> list[bytes]:
    tampered = list(proof)
    value = bytearray(tampered[which])
    value[byte] ^= 0x01
    tampered[which] = bytes(value)
    return tampered


class CountingStore:
    """Counts ``nodes`` calls, to hold every root and proof to one batched read."""

    def __init__(self, inner: MemoryNodeStore) -> None:
        self.inner = inner
        self.calls = 0
        self.asked: list[NodeKey] = []

    def nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        self.calls += 1
        self.asked.extend(keys)
        return self.inner.nodes(keys)


class UniformStore:
    """A consistent tree of ``size`` identical leaves, answering only nodes that exist.

    Every node of a level is the same hash, so trees up to TREE_SIZE_MAX can be
    asked for roots and proofs without storing them.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.levels = [leaf_hash(b"same")]
        for _ in range(63):
            self.levels.append(node_hash(self.levels[-1], self.levels[-1]))

    def nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        return {
            (level, index): self.levels[level]
            for level, index in keys
            if 0 <= level < len(self.levels) and index >= 0 and (index + 1) << level <= self.size
        }


# The leaves appended, and the store they grew.
Grown = tuple[tuple[bytes, ...], MemoryNodeStore]


@st.composite
def grown(draw: st.DrawFn, min_size: int = 0) -> Grown:
    """Distinct leaves appended in random batches, and the store they produced."""
    size = draw(st.integers(min_size, 40))  # uniform, so large trees are as common as small
    data = tuple(draw(st.lists(st.binary(max_size=6), unique=True, min_size=size, max_size=size)))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=6)))
    bounds = [0, *cuts, len(data)]
    return data, build([data[a:b] for a, b in pairwise(bounds)])


# --- Known answers -------------------------------------------------------------------


def test_empty_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root(MemoryNodeStore(), 0) == EMPTY_ROOT
    assert root_of_leaves([]) == EMPTY_ROOT
    assert ref_mth(()) == EMPTY_ROOT


@pytest.mark.parametrize("size", sorted(RFC_ROOTS))
def test_rfc_test_vector_roots(size: int) -> None:
    store = build([RFC_LEAVES])
    expected = bytes.fromhex(RFC_ROOTS[size])
    assert ref_mth(tuple(RFC_LEAVES[:size])) == expected
    assert root(store, size) == expected
    assert root_of_leaves(leaf_hash(data) for data in RFC_LEAVES[:size]) == expected


def test_canonical_leaf_layout() -> None:
    leaf = canonical_leaf(
        position=5,
        originator_id=UUID("00112233-4455-6677-8899-aabbccddeeff"),
        originator_version=2,
        topic="é",
        state=b"{}",
    )
    assert leaf == b"".join(
        [
            b"\x01",  # format version
            b"\x00\x00\x00\x00\x00\x00\x00\x05",  # position, u64
            bytes.fromhex("00112233445566778899aabbccddeeff"),  # originator_id
            b"\x00\x00\x00\x00\x00\x00\x00\x02",  # originator_version, u64
            b"\x00\x00\x00\x02",  # topic length in UTF-8 bytes, u32
            b"\xc3\xa9",  # topic
            b"\x00\x00\x00\x02",  # state length, u32
            b"{}",  # state
        ]
    )


def test_canonical_leaf_takes_the_full_unsigned_ranges() -> None:
    leaf = canonical_leaf(2**64 - 1, UUID(int=0), 2**64 - 1, "", b"")
    assert leaf == b"\x01" + b"\xff" * 8 + b"\x00" * 16 + b"\xff" * 8 + b"\x00" * 8


@pytest.mark.parametrize(
    ("position", "version", "topic"),
    [(-1, 1, "t"), (2**64, 1, "t"), (1, -1, "t"), (1, 2**64, "t"), (1, 1, "\udc80")],
)
def test_canonical_leaf_refuses_unencodable_values(position: int, version: int, topic: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message names the field
        canonical_leaf(position, UUID(int=1), version, topic, b"")


def test_canonical_leaf_refuses_a_state_over_four_gibibytes() -> None:
    class Huge(bytes):
        def __len__(self) -> int:
            return 2**32

    with pytest.raises(ValueError, match="state length"):
        canonical_leaf(1, UUID(int=1), 1, "t", Huge())


# --- Properties against the reference ------------------------------------------------


@PROPERTY_SETTINGS
@given(grown())
def test_store_holds_exactly_the_perfect_subtrees(tree: Grown) -> None:
    data, store = tree
    n = len(data)
    expected = {
        (level, index): ref_mth(data[index << level : (index + 1) << level])
        for level in range(n.bit_length())
        for index in range(n >> level)
    }
    assert store.size == n
    assert store.nodes(list(expected)) == expected
    beyond = [(level, n >> level) for level in range(n.bit_length() + 1)]
    assert store.nodes(beyond) == {}


@PROPERTY_SETTINGS
@given(grown())
def test_roots_match_the_reference_for_every_size(tree: Grown) -> None:
    data, store = tree
    for n in range(len(data) + 1):
        assert root(store, n) == ref_mth(data[:n])


@PROPERTY_SETTINGS
@given(grown())
def test_root_builder_matches_the_reference(tree: Grown) -> None:
    data, _ = tree
    builder = RootBuilder()
    assert builder.root() == EMPTY_ROOT
    for n, item in enumerate(data, start=1):
        builder.add(leaf_hash(item))
        assert builder.size == n
        assert builder.root() == ref_mth(data[:n])


@PROPERTY_SETTINGS
@given(grown(min_size=1))
def test_inclusion_proofs_match_the_reference_and_verify(tree: Grown) -> None:
    data, store = tree
    for n in range(1, len(data) + 1):
        head = ref_mth(data[:n])
        for m in range(n):
            proof = inclusion_proof(store, m, n)
            assert proof == ref_path(m, data[:n])
            assert verify_inclusion(leaf_hash(data[m]), m, n, proof, head)


@PROPERTY_SETTINGS
@given(grown(min_size=1))
def test_consistency_proofs_match_the_reference_and_verify(tree: Grown) -> None:
    data, store = tree
    for n in range(len(data) + 1):
        for m in range(n + 1):
            proof = consistency_proof(store, m, n)
            assert proof == ref_consistency(m, data[:n])
            assert verify_consistency(m, n, ref_mth(data[:m]), ref_mth(data[:n]), proof)


def test_every_proof_of_a_65_leaf_tree_grown_one_leaf_at_a_time() -> None:
    """Exhaustive across the 2**6 boundary, where the tree gains a level."""
    data = tuple(i.to_bytes(2, "big") for i in range(65))
    store = build([[item] for item in data])
    for n in range(len(data) + 1):
        assert root(store, n) == ref_mth(data[:n])
        for m in range(n):
            assert inclusion_proof(store, m, n) == ref_path(m, data[:n])
        for m in range(n + 1):
            assert consistency_proof(store, m, n) == ref_consistency(m, data[:n])


# --- Tampering -----------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(grown(min_size=1), st.data())
def test_a_flipped_bit_breaks_an_inclusion_proof(tree: Grown, draw: st.DataObject) -> None:
    data, store = tree
    n = draw.draw(st.integers(1, len(data)))
    m = draw.draw(st.integers(0, n - 1))
    proof, head = inclusion_proof(store, m, n), root(store, n)
    leaf = leaf_hash(data[m])
    byte = draw.draw(st.integers(0, 31))
    assert not verify_inclusion(flip([leaf], 0, byte)[0], m, n, proof, head)
    assert not verify_inclusion(leaf, m, n, proof, flip([head], 0, byte)[0])
    assert not verify_inclusion(leaf, m, n, [*proof, head], head)
    if proof:
        which = draw.draw(st.integers(0, len(proof) - 1))
        assert not verify_inclusion(leaf, m, n, flip(proof, which, byte), head)
        assert not verify_inclusion(leaf, m, n, proof[:-1], head)


@PROPERTY_SETTINGS
@given(grown(min_size=1), st.data())
def test_an_inclusion_proof_only_proves_its_own_index_and_size(
    tree: Grown, draw: st.DataObject
) -> None:
    """Against the true root of the claimed size, a proof passes iff it is that claim's proof.

    A root does not encode its size: the same proof can be right for two sizes
    whose paths have the same shape, so "wrong size fails" is checked as this iff.
    """
    data, store = tree
    n, n2 = (draw.draw(st.integers(1, len(data))) for _ in range(2))
    m = draw.draw(st.integers(0, n - 1))
    m2 = draw.draw(st.integers(0, n2 - 1))
    proof = inclusion_proof(store, m, n)
    expected = m2 == m and proof == ref_path(m, data[:n2])
    assert verify_inclusion(leaf_hash(data[m]), m2, n2, proof, root(store, n2)) == expected


@PROPERTY_SETTINGS
@given(grown(min_size=1), st.data())
def test_a_root_does_not_stretch_to_another_size(tree: Grown, draw: st.DataObject) -> None:
    """Claiming another size for the same root passes only where the path has the same shape.

    This is what RFC 9162's final ``sn == 0`` check buys: a path that is too short
    for the claimed size fails even though it hashes to the root.
    """
    data, store = tree
    n = draw.draw(st.integers(1, len(data)))
    m = draw.draw(st.integers(0, n - 1))
    n2 = draw.draw(st.integers(m + 1, 2 * n + 2) | st.integers(m + 1, TREE_SIZE_MAX))
    proof, head = inclusion_proof(store, m, n), root(store, n)
    same_shape = ref_sides(m, n) == ref_sides(m, n2)
    assert verify_inclusion(leaf_hash(data[m]), m, n2, proof, head) == same_shape


@PROPERTY_SETTINGS
@given(grown(min_size=1), st.data())
def test_a_flipped_bit_breaks_a_consistency_proof(tree: Grown, draw: st.DataObject) -> None:
    data, store = tree
    n = draw.draw(st.integers(1, len(data)))
    m = draw.draw(st.integers(1, n))
    proof = consistency_proof(store, m, n)
    first, second = root(store, m), root(store, n)
    byte = draw.draw(st.integers(0, 31))
    assert not verify_consistency(m, n, flip([first], 0, byte)[0], second, proof)
    assert not verify_consistency(m, n, first, flip([second], 0, byte)[0], proof)
    assert not verify_consistency(m, n, first, second, [*proof, second])
    if proof:
        which = draw.draw(st.integers(0, len(proof) - 1))
        assert not verify_consistency(m, n, first, second, flip(proof, which, byte))
        assert not verify_consistency(m, n, first, second, proof[:-1])
        assert not verify_consistency(m, n, second, first, proof)


@PROPERTY_SETTINGS
@given(grown(min_size=1), st.data())
def test_a_consistency_proof_only_proves_its_own_sizes(tree: Grown, draw: st.DataObject) -> None:
    data, store = tree
    n, n2 = (draw.draw(st.integers(0, len(data))) for _ in range(2))
    m = draw.draw(st.integers(0, n))
    m2 = draw.draw(st.integers(0, n2))
    proof = consistency_proof(store, m, n)
    expected = proof == ref_consistency(m2, data[:n2])
    assert verify_consistency(m2, n2, root(store, m2), root(store, n2), proof) == expected


@PROPERTY_SETTINGS
@given(grown(min_size=2), st.data())
def test_a_consistency_proof_does_not_stretch_to_another_size(
    tree: Grown, draw: st.DataObject
) -> None:
    """The consistency twin of the inclusion test above: same roots, another new size."""
    data, store = tree
    n = draw.draw(st.integers(2, len(data)))
    m = draw.draw(st.integers(1, n - 1))
    n2 = draw.draw(st.integers(m + 1, 2 * n + 2) | st.integers(m + 1, TREE_SIZE_MAX))
    proof = consistency_proof(store, m, n)
    same_shape = ref_consistency_shape(m, n) == ref_consistency_shape(m, n2)
    assert verify_consistency(m, n2, root(store, m), root(store, n), proof) == same_shape


@PROPERTY_SETTINGS
@given(grown(min_size=2), st.data())
def test_swapped_leaves_break_both_proofs(tree: Grown, draw: st.DataObject) -> None:
    data, store = tree
    i = draw.draw(st.integers(0, len(data) - 2))
    j = draw.draw(st.integers(i + 1, len(data) - 1))
    swapped = list(data)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    forged = build([swapped])
    n = draw.draw(st.integers(i + 1, len(data)))
    m = draw.draw(st.integers(0, n - 1))
    leaf = leaf_hash(data[m])
    assert not verify_inclusion(leaf, m, n, inclusion_proof(store, m, n), root(forged, n))
    first = draw.draw(st.integers(1, n))
    proof = consistency_proof(store, first, n)
    assert not verify_consistency(first, n, root(store, first), root(forged, n), proof)


# --- Batched reads, limits and refusals ----------------------------------------------


def test_every_root_and_proof_is_one_batched_read() -> None:
    counting = CountingStore(build([[bytes([i]) for i in range(21)]]))
    for n in range(1, 22):
        counting.calls = 0
        root(counting, n)
        for m in range(n):
            inclusion_proof(counting, m, n)
        for m in range(1, n):
            consistency_proof(counting, m, n)
        assert counting.calls == 1 + (n if n > 1 else 0) + (n - 1)  # a 1-leaf path is empty


def test_an_append_reads_the_right_edge_once() -> None:
    store = build([[bytes([i]) for i in range(11)]])
    counting = CountingStore(store)
    created = new_nodes(11, [leaf_hash(bytes([i])) for i in range(11, 16)], counting)
    assert counting.calls == 1
    assert sorted(counting.asked) == [(0, 10), (1, 4), (3, 0)]  # 11 = 0b1011: one per set bit
    assert sorted(created) == [
        (0, 11), (0, 12), (0, 13), (0, 14), (0, 15),
        (1, 5), (1, 6), (1, 7), (2, 2), (2, 3), (3, 1), (4, 0),
    ]  # fmt: skip
    assert created[4, 0] == ref_mth(tuple(bytes([i]) for i in range(16)))


def test_an_empty_append_creates_nothing() -> None:
    store = build([[b"a", b"b", b"c"]])
    assert new_nodes(3, [], store) == {}


@PROPERTY_SETTINGS
@given(st.integers(1, TREE_SIZE_MAX), st.data())
def test_proofs_stay_within_limits_up_to_the_largest_tree(n: int, draw: st.DataObject) -> None:
    store = UniformStore(n)
    m = draw.draw(st.integers(0, n - 1))
    first = draw.draw(st.integers(1, n))
    path = inclusion_proof(store, m, n)
    proof = consistency_proof(store, first, n)
    assert len(path) <= PROOF_HASHES_MAX
    assert len(proof) <= PROOF_HASHES_MAX
    assert verify_inclusion(store.levels[0], m, n, path, root(store, n))
    assert verify_consistency(first, n, root(store, first), root(store, n), proof)


def test_appending_near_the_size_limit_completes_every_level() -> None:
    first = 2**62 - 1
    store = UniformStore(first)
    created = new_nodes(first, [store.levels[0]], store)
    assert len(created) == 63
    assert created[62, 0] == store.levels[62]
    with pytest.raises(ValueError, match="tree size"):
        new_nodes(TREE_SIZE_MAX, [store.levels[0]], store)


def test_verifiers_refuse_malformed_claims() -> None:
    leaf = leaf_hash(b"x")
    assert verify_inclusion(leaf, 0, 1, [], leaf)
    assert not verify_inclusion(leaf, 0, 1, [], EMPTY_ROOT)
    assert not verify_inclusion(leaf, 1, 1, [], leaf)
    assert not verify_inclusion(leaf, -1, 1, [], leaf)
    assert not verify_inclusion(leaf, 0, TREE_SIZE_MAX + 1, [leaf] * 63, leaf)
    assert not verify_inclusion(leaf, 0, 2, [b"short"], leaf)
    assert not verify_inclusion(leaf, 0, 2, [leaf] * (PROOF_HASHES_MAX + 1), leaf)
    assert verify_consistency(0, 5, EMPTY_ROOT, leaf, [])
    assert not verify_consistency(0, 5, leaf, leaf, [])
    assert not verify_consistency(0, 5, EMPTY_ROOT, leaf, [leaf])
    assert verify_consistency(3, 3, leaf, leaf, [])
    assert not verify_consistency(3, 3, leaf, EMPTY_ROOT, [])
    assert not verify_consistency(3, 3, leaf, leaf, [leaf])
    assert not verify_consistency(3, 2, leaf, leaf, [leaf])
    assert not verify_consistency(1, 2, leaf, leaf, [])


@pytest.mark.parametrize(
    "call",
    [
        lambda s: root(s, -1),
        lambda s: root(s, TREE_SIZE_MAX + 1),
        lambda s: inclusion_proof(s, 4, 4),
        lambda s: inclusion_proof(s, -1, 4),
        lambda s: inclusion_proof(s, 0, 0),
        lambda s: consistency_proof(s, 3, 2),
        lambda s: consistency_proof(s, -1, 2),
        lambda s: new_nodes(4, [b"short"], s),
        lambda s: new_nodes(-1, [], s),
    ],
)
def test_out_of_range_requests_are_refused(call: Callable[[MemoryNodeStore], object]) -> None:
    store = build([[b"a", b"b", b"c", b"d"]])
    with pytest.raises(ValueError):  # noqa: PT011 - the message names the field
        call(store)


def test_a_size_beyond_the_store_is_a_lookup_error() -> None:
    store = build([[b"a", b"b", b"c"]])
    with pytest.raises(LookupError, match="lacks nodes"):
        root(store, 4)
    with pytest.raises(LookupError, match="lacks nodes"):
        new_nodes(5, [leaf_hash(b"e")], store)


def test_put_tracks_the_size() -> None:
    source = build([[b"a", b"b", b"c"]])
    copy = MemoryNodeStore()
    copy.put(source.nodes([(0, 0), (0, 1), (1, 0), (0, 2)]))
    assert copy.size == 3
    assert root(copy, 3) == root(source, 3)
