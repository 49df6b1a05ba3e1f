"""An RFC 9162 (Certificate Transparency v2, §2.1) Merkle tree over the event log.

Every stored event becomes one leaf, in position order, so a signed root commits
to the whole log and proofs show an event is in it (inclusion) or that a later
log extends an earlier one (consistency). Only ``hashlib`` and ``struct`` are
used, so an outside verifier can audit this file alone.

Canonical leaf bytes (all integers unsigned big-endian; ``T``, ``S`` lengths):

======  ======  =====================================================
offset  size    field
======  ======  =====================================================
0       1       format version, ``0x01``
1       8       position in the log, u64
9       16      originator_id, ``UUID.bytes`` (RFC 4122 byte order)
25      8       originator_version, u64
33      4       ``T``, byte length of the topic, u32
37      T       topic, UTF-8
37+T    4       ``S``, byte length of the state, u32
41+T    S       state, the stored event body as written
======  ======  =====================================================

The version byte lets the layout change later without a leaf of one layout ever
hashing like a leaf of another. Lengths prefix the variable fields so no two
events share bytes.

Storage: a tree is kept as its *perfect subtree* nodes, keyed ``(level, index)``.
``(0, i)`` is leaf hash ``i``; ``(L, i)`` covers leaves ``[i * 2**L, (i + 1) * 2**L)``
and exists once all of them do. Nodes never change after they are written, and
every root, inclusion and consistency proof of RFC 9162 for any size up to the
stored one is a fold of such nodes: each is answered with one batched read.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, TypeAlias
from uuid import UUID

NodeKey: TypeAlias = tuple[int, int]

LEAF_FORMAT_VERSION = 1
HASH_SIZE = 32
TREE_SIZE_MAX = 2**63 - 1
PROOF_HASHES_MAX = 64
U64_MAX = 2**64 - 1
U32_MAX = 2**32 - 1

EMPTY_ROOT = hashlib.sha256(b"").digest()

_LEAF_HEAD = struct.Struct(">BQ16sQI")
_LENGTH = struct.Struct(">I")


def canonical_leaf(
    position: int, originator_id: UUID, originator_version: int, topic: str, state: bytes
) -> bytes:
    """The leaf bytes of one stored event, laid out as in the module docstring."""
    topic_bytes = topic.encode("utf-8")
    _check_range("position", position, U64_MAX)
    _check_range("originator_version", originator_version, U64_MAX)
    _check_range("topic length", len(topic_bytes), U32_MAX)
    _check_range("state length", len(state), U32_MAX)
    head = _LEAF_HEAD.pack(
        LEAF_FORMAT_VERSION, position, originator_id.bytes, originator_version, len(topic_bytes)
    )
    return b"".join((head, topic_bytes, _LENGTH.pack(len(state)), state))


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 §2.1.1: the 0x00 prefix keeps leaves and nodes from colliding."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: the hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


class NodeStore(Protocol):
    """Where perfect-subtree nodes live; one call answers a whole root or proof."""

    def nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        """The stored nodes among ``keys``; absent ones are left out."""
        ...


class MemoryNodeStore:
    """A dict-backed node store, for tests and for verifiers that rebuild a tree."""

    def __init__(self) -> None:
        self._nodes: dict[NodeKey, bytes] = {}
        self.size = 0

    def nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        return {key: self._nodes[key] for key in keys if key in self._nodes}

    def put(self, nodes: Mapping[NodeKey, bytes]) -> None:
        """Stores nodes; ``size`` follows the highest leaf index written."""
        self._nodes.update(nodes)
        leaves = [index for level, index in nodes if level == 0]
        if leaves:
            self.size = max(self.size, max(leaves) + 1)

    def append(self, leaf_hashes: Sequence[bytes]) -> dict[NodeKey, bytes]:
        """Appends leaves after the current ones and returns the nodes written."""
        created = new_nodes(self.size, leaf_hashes, self)
        self.put(created)
        return created


def new_nodes(
    first_index: int, leaf_hashes: Sequence[bytes], store: NodeStore
) -> dict[NodeKey, bytes]:
    """The nodes that appending ``leaf_hashes`` at ``first_index`` completes.

    A new node whose left half ends before ``first_index`` needs that half from
    the store: these are the right edge of the existing tree, at most one per
    level, read in one call. Everything else is built from the batch itself.
    """
    end = first_index + len(leaf_hashes)
    _check_range("first_index", first_index, TREE_SIZE_MAX)
    _check_range("tree size after append", end, TREE_SIZE_MAX)
    for leaf in leaf_hashes:
        _check_hash(leaf)
    created = {(0, first_index + offset): leaf for offset, leaf in enumerate(leaf_hashes)}
    known = _fetch(store, _right_edge(first_index, end)) | created
    level = 1
    while first_index >> level < end >> level:
        for index in range(first_index >> level, end >> level):
            node = node_hash(known[level - 1, 2 * index], known[level - 1, 2 * index + 1])
            created[level, index] = known[level, index] = node
        level += 1
    return created


def root(store: NodeStore, tree_size: int) -> bytes:
    """MTH of the first ``tree_size`` leaves (RFC 9162 §2.1.1)."""
    _check_range("tree_size", tree_size, TREE_SIZE_MAX)
    if tree_size == 0:
        return EMPTY_ROOT
    return _range_hashes(store, [(0, tree_size)])[0]


def inclusion_proof(store: NodeStore, leaf_index: int, tree_size: int) -> list[bytes]:
    """PATH(leaf_index, D[tree_size]) (RFC 9162 §2.1.3.1), leaf side first."""
    _check_range("tree_size", tree_size, TREE_SIZE_MAX)
    if not 0 <= leaf_index < tree_size:
        raise ValueError(f"leaf_index {leaf_index} is outside a tree of size {tree_size}")
    ranges: list[tuple[int, int]] = []
    low, high = 0, tree_size
    while high - low > 1:
        mid = low + _split(high - low)
        if leaf_index < mid:
            ranges.append((mid, high))
            high = mid
        else:
            ranges.append((low, mid))
            low = mid
    return _range_hashes(store, ranges[::-1])


def consistency_proof(store: NodeStore, first: int, second: int) -> list[bytes]:
    """PROOF(first, D[second]) (RFC 9162 §2.1.4.1); empty when there is nothing to prove.

    SUBPROOF's flag ``b`` stays true while the walk has only gone left, so
    ``b`` is ``low == 0``: the walk then ends at the old tree itself, whose root
    the verifier already holds, and only otherwise is that last node sent.
    """
    _check_range("second", second, TREE_SIZE_MAX)
    if not 0 <= first <= second:
        raise ValueError(f"consistency needs 0 <= first <= second, got {first} and {second}")
    if first in {0, second}:
        return []
    ranges: list[tuple[int, int]] = []
    low, high = 0, second
    while first != high:
        mid = low + _split(high - low)
        if first <= mid:
            ranges.append((mid, high))
            high = mid
        else:
            ranges.append((low, mid))
            low = mid
    if low > 0:
        ranges.append((low, high))
    return _range_hashes(store, ranges[::-1])


def verify_inclusion(
    leaf_hash: bytes, leaf_index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2, step by step; malformed input is a failed proof, not an error."""
    if not (0 <= leaf_index < tree_size <= TREE_SIZE_MAX and _well_formed(proof)):
        return False
    fn, sn, r = leaf_index, tree_size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2, step by step, plus the two cases it leaves out.

    Equal sizes need equal roots and an empty proof; size 0 needs the empty
    root and an empty proof, since every tree extends the empty one.
    """
    if not (0 <= first <= second <= TREE_SIZE_MAX and _well_formed(proof)):
        return False
    if first == 0 and first_root != EMPTY_ROOT:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    if not proof:
        return False
    path = [first_root, *proof] if first & (first - 1) == 0 else list(proof)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == first_root and sr == second_root and sn == 0


class RootBuilder:
    """MTH of a stream of leaf hashes in O(n) time and O(log n) memory.

    The stack holds the perfect subtrees of the leaves so far, largest first:
    one per set bit of ``size``. A verifier recomputing a log of millions of
    events never holds more than 63 hashes.
    """

    def __init__(self) -> None:
        self._stack: list[bytes] = []
        self.size = 0

    def add(self, leaf_hash: bytes) -> None:
        _check_hash(leaf_hash)
        _check_range("tree size", self.size + 1, TREE_SIZE_MAX)
        node, size = leaf_hash, self.size
        while size & 1:
            node = node_hash(self._stack.pop(), node)
            size >>= 1
        self._stack.append(node)
        self.size += 1

    def root(self) -> bytes:
        return _fold(self._stack) if self._stack else EMPTY_ROOT


def root_of_leaves(leaf_hashes: Iterable[bytes]) -> bytes:
    """MTH of all ``leaf_hashes``, streamed through a ``RootBuilder``."""
    builder = RootBuilder()
    for leaf in leaf_hashes:
        builder.add(leaf)
    return builder.root()


def _split(size: int) -> int:
    """The largest power of two below ``size`` (``size >= 2``): RFC 9162's ``k``."""
    return 1 << ((size - 1).bit_length() - 1)


def _right_edge(first_index: int, end: int) -> list[NodeKey]:
    """Stored left halves of the nodes an append of leaves ``[first_index, end)`` completes."""
    return [
        (level, (first_index >> level) - 1)
        for level in range(first_index.bit_length())
        if first_index >> level & 1 and first_index >> (level + 1) < end >> (level + 1)
    ]


def _perfect_keys(low: int, high: int) -> list[NodeKey]:
    """The perfect subtrees of leaves ``[low, high)``, left to right.

    RFC 9162 only ever hashes ranges whose start is a multiple of the largest
    power of two not above their length, so each piece is an aligned node.
    """
    keys: list[NodeKey] = []
    while low < high:
        level = (high - low).bit_length() - 1
        keys.append((level, low >> level))
        low += 1 << level
    return keys


def _range_hashes(store: NodeStore, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    """MTH of each leaf range, from one batched read of all their nodes."""
    pieces = [_perfect_keys(low, high) for low, high in ranges]
    found = _fetch(store, [key for keys in pieces for key in keys])
    return [_fold([found[key] for key in keys]) for keys in pieces]


def _fold(hashes: Sequence[bytes]) -> bytes:
    """MTH from perfect subtrees, largest first: each splits off at RFC 9162's ``k``."""
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def _fetch(store: NodeStore, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
    if not keys:
        return {}
    found = store.nodes(keys)
    missing = [key for key in keys if key not in found]
    if missing:
        raise LookupError(f"node store lacks nodes {missing[:4]} (the tree is smaller?)")
    return found


def _well_formed(proof: Sequence[bytes]) -> bool:
    return len(proof) <= PROOF_HASHES_MAX and all(len(p) == HASH_SIZE for p in proof)


def _check_hash(value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise ValueError(f"a hash is {HASH_SIZE} bytes, got {len(value)}")


def _check_range(name: str, value: int, maximum: int) -> None:
    if not 0 <= value <= maximum:
        raise ValueError(f"{name} must be in [0, {maximum}], got {value}")
