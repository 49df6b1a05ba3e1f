"""Verify the log against its Merkle tree and its signed tree heads.

Three things are checked, each on its own, so a report says *what* broke:

- **the log against the tree**: every stored row is hashed again (``leaf_of``)
  and compared, by position, with the leaf the tree holds for that position,
  so an edited, deleted, inserted or swapped event is named by its position;
- **the tree against itself**: while every leaf matches, the root recomputed
  from the log must be the stored tree's root, or its inner nodes were altered;
- **the log against signed heads**, kept in the store or held by a witness:
  the root of the log's first ``tree_size`` events must be the signed root.
  Only this catches an attacker who rewrote the log *and* rebuilt the tree
  from it, and only with a head they could not replace: a witness's copy.

Nothing is written and the tree is never extended first: hashing an
attacker's rows into the tree would bless them. Rows after the tree's tracked
position are hashed for the head checks but only counted (``pending``).

Memory stays bounded: the log is read a page at a time, its roots come from a
``RootBuilder`` (O(log n) hashes) keeping only the roots at sizes some head
names, and problems are capped at ``PROBLEMS_MAX``.

An NDJSON export (``ledger.transfer.export_log``) is verified the same way
against heads, with leaf ``i`` being its ``i``-th event. Its roots only match
heads when it holds the whole log from the first event: an export made with
``--after`` cannot be told apart from a log with a gap at its start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import IO, Protocol
from uuid import UUID

import msgspec

from ledger import merkle
from ledger.app import LOG_PAGE_MAX
from ledger.log_line import LINE_BYTES_MAX, LogLine
from ledger.store import StoredEntry
from ledger.tree_head import TreeHead, TreeHeadError, TreeHeadVerifier, from_json
from projections.log_tree import LogTree, leaf_of

# Named limits.
PROBLEMS_MAX = 1_000
SWAP_CANDIDATES_MAX = 1_000
# Candidate rows are kept whole for the swap search; their bodies may be large.
SWAP_CANDIDATE_BYTES_MAX = 64 * 1024 * 1024
# Positions looked up at most to name the leaves missing between two log rows.
GAP_PROBE_MAX = 100_000
LEAF_LOOKUP_MAX = LOG_PAGE_MAX
EXPORT_PROGRESS_LINES = 10_000
WITNESS_HEADS_MAX = 100_000
HEAD_LINE_BYTES_MAX = 4_096
HASH_PREVIEW_CHARS = 16

STORE = "store"
WITNESS = "witness file"

Progress = Callable[[int, int], None]
"""Called after each page: (log position reached, events hashed so far)."""


class Problem(msgspec.Struct, frozen=True):
    """One finding. Kinds: changed, deleted, inserted, swapped, bad_row,
    tree_mismatch, head_mismatch, head_beyond_log, bad_signature, bad_head,
    no_public_key, out_of_order, bad_line, truncated."""

    kind: str
    position: int | None
    detail: str


class Report(msgspec.Struct):
    """What was verified. ``tree_size`` is None for an export; ``pending`` counts
    the log rows after the tree's tracked position (hashed, not yet in the tree)."""

    events: int
    tree_size: int | None
    heads_checked: int
    problems: list[Problem]
    pending: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


class StoredLog(Protocol):
    """What the verifier reads from the ledger (``LedgerApp`` is one)."""

    def read_stored(self, after: int, limit: int) -> list[StoredEntry]: ...


def _preview(digest: bytes) -> str:
    return digest.hex()[:HASH_PREVIEW_CHARS]


def _leaf_indexes(tree: LogTree, positions: Sequence[int]) -> dict[int, int]:
    """Leaf indexes of positions, in batches of at most ``LEAF_LOOKUP_MAX``."""
    found: dict[int, int] = {}
    for start in range(0, len(positions), LEAF_LOOKUP_MAX):
        found.update(tree.leaf_indexes(positions[start : start + LEAF_LOOKUP_MAX]))
    return found


# --- Bookkeeping ---------------------------------------------------------------------


class _Problems:
    """Position problems in the order found, at most ``PROBLEMS_MAX`` of them."""

    def __init__(self) -> None:
        self.items: list[Problem] = []
        self.dropped = 0

    def add(self, kind: str, position: int | None, detail: str) -> int | None:
        """Keep a problem; its slot, or None when the list is full."""
        if len(self.items) >= PROBLEMS_MAX:
            self.dropped += 1
            return None
        self.items.append(Problem(kind, position, detail))
        return len(self.items) - 1

    def replace(self, slot: int, problem: Problem) -> None:
        self.items[slot] = problem

    def with_heads(self, head_problems: Sequence[Problem]) -> list[Problem]:
        """Position problems, then head problems, capped; head problems are kept
        first because a signed commitment is the strongest evidence."""
        heads = list(head_problems[:PROBLEMS_MAX])
        room = PROBLEMS_MAX - len(heads)
        kept = self.items[:room]
        dropped = self.dropped + len(self.items) - len(kept) + len(head_problems) - len(heads)
        result = kept + heads
        if dropped:
            result.append(
                Problem(
                    "truncated",
                    None,
                    f"{dropped:,} more problems (at most {PROBLEMS_MAX:,} listed)",
                )
            )
        return result


class _Roots:
    """Feeds leaves to a RootBuilder and keeps the root at each size a head names."""

    def __init__(self, wanted: Iterable[int]) -> None:
        self.builder = merkle.RootBuilder()
        self.wanted = set(wanted)
        self.roots: dict[int, bytes] = {0: merkle.EMPTY_ROOT}

    @property
    def size(self) -> int:
        return self.builder.size

    def add(self, leaf: bytes) -> None:
        self.builder.add(leaf)
        if self.builder.size in self.wanted:
            self.roots[self.builder.size] = self.builder.root()


_COLUMN_TYPES = (
    ("position", int),
    ("originator_id", UUID),
    ("originator_version", int),
    ("topic", str),
    ("state", bytes),
)


def _malformed(row: Sequence[object]) -> str | None:
    """What is wrong with the types of a stored row's columns (None: nothing).

    A database without typed columns (SQLite) holds whatever was written in
    any column: such a row is a finding, not a crash of the check.
    """
    for (name, kind), value in zip(_COLUMN_TYPES, row, strict=True):
        if not isinstance(value, kind) or isinstance(value, bool):
            shown = repr(value)[: HASH_PREVIEW_CHARS * 2]
            return f"{name} is {type(value).__name__} {shown}, not {kind.__name__}"
    return None


def _unhashable_leaf(row: Sequence[object]) -> bytes:
    """A stand-in leaf for a malformed row, so the roots after it still count it
    (they cannot match any head: the row is not what was signed)."""
    return merkle.leaf_hash(repr(tuple(row)).encode())


class _Candidate(msgspec.Struct, frozen=True):
    position: int
    row: StoredEntry
    stored_leaf: bytes
    slot: int


def _hashes_as(position: int, row: StoredEntry) -> bytes:
    """The leaf a row's content would have at another position."""
    return leaf_of((position, *row[1:]))


class _SwapFinder:
    """Turns two ``changed`` positions holding each other's events into one ``swapped``.

    Each changed row is tried against the earlier candidates: O(k²) hashes, so
    only the first ``SWAP_CANDIDATES_MAX`` changed positions take part.
    """

    def __init__(self, problems: _Problems) -> None:
        self.problems = problems
        self.candidates: dict[int, _Candidate] = {}
        self.seen = 0
        self.kept_bytes = 0

    def changed(self, row: StoredEntry, stored_leaf: bytes, detail: str) -> None:
        position = row[0]
        self.seen += 1
        searching = self.seen <= SWAP_CANDIDATES_MAX
        if searching:
            other = self._partner(row, stored_leaf)
            if other is not None:
                self.problems.replace(
                    other.slot,
                    Problem(
                        "swapped",
                        other.position,
                        f"positions {other.position} and {position} hold each other's events",
                    ),
                )
                del self.candidates[other.position]
                return
        slot = self.problems.add("changed", position, detail)
        size = len(row[4])
        if searching and slot is not None and self.kept_bytes + size <= SWAP_CANDIDATE_BYTES_MAX:
            self.kept_bytes += size
            self.candidates[position] = _Candidate(position, row, stored_leaf, slot)

    def _partner(self, row: StoredEntry, stored_leaf: bytes) -> _Candidate | None:
        for other in self.candidates.values():
            if _hashes_as(other.position, row) == other.stored_leaf and (
                _hashes_as(row[0], other.row) == stored_leaf
            ):
                return other
        return None


# --- The store -------------------------------------------------------------------------


class _StoreCheck:
    """Compares the log with the tree page by page, by position and leaf index.

    Leaf indexes must follow log order: a row whose leaf comes after the next
    expected one means the leaves in between lost their rows (``deleted``);
    their positions are found by looking up the positions between the two rows.
    """

    def __init__(self, tree: LogTree, wanted: Iterable[int], problems: _Problems) -> None:
        self.tree = tree
        self.tracked_position, self.size = tree.tracked()
        self.roots = _Roots([*wanted, self.size])
        self.problems = problems
        self.swaps = _SwapFinder(problems)
        self.comparing = True  # False once the tree proved inconsistent
        self.leaf_problem = False
        self.next_leaf = 0
        self.last_position = 0  # of the last row matched to a leaf
        self.pending = 0
        self.tail_checked = False

    def page(self, rows: Sequence[StoredEntry]) -> None:
        malformed = {row[0]: why for row in rows if (why := _malformed(row)) is not None}
        for position, why in malformed.items():
            self.leaf_problem = True
            self.problems.add("bad_row", position, why)
        leaves = [_unhashable_leaf(r) if r[0] in malformed else leaf_of(r) for r in rows]
        in_tree = [
            (r, leaf)
            for r, leaf in zip(rows, leaves, strict=True)
            if r[0] <= self.tracked_position and r[0] not in malformed
        ]
        if self.comparing and in_tree:
            self._compare(in_tree)
        self.pending += len(rows) - len(in_tree)
        if self.pending:
            self._check_tail()
        for leaf in leaves:
            self.roots.add(leaf)
        if not self.pending and 0 < self.roots.size <= self.size:
            self._check_root(self.roots.size, self.roots.builder.root())

    def finish(self) -> None:
        self._check_tail()
        root = self.roots.roots.get(self.size)
        if root is not None and self.size > 0:
            self._check_root(self.size, root)

    def _compare(self, in_tree: Sequence[tuple[StoredEntry, bytes]]) -> None:
        indexes = _leaf_indexes(self.tree, [row[0] for row, _ in in_tree])
        wanted = sorted({i for i in indexes.values() if 0 <= i < self.size})
        stored = self.tree.nodes([(0, i) for i in wanted])
        for row, leaf in in_tree:
            if not self.comparing:
                return
            self._compare_row(row, leaf, indexes.get(row[0]), stored)

    def _compare_row(
        self, row: StoredEntry, leaf: bytes, index: int | None, stored: dict[merkle.NodeKey, bytes]
    ) -> None:
        position = row[0]
        if index is None:
            self.leaf_problem = True
            self.problems.add(
                "inserted",
                position,
                f"the log holds this position ({row[3]}), but the tree, which reaches "
                f"position {self.tracked_position}, has no leaf for it",
            )
            return
        stored_leaf = stored.get((0, index))
        if stored_leaf is None:
            self._mismatch(
                position, f"maps to leaf {index}, which the tree of size {self.size} lacks"
            )
            return
        if index < self.next_leaf:
            self._mismatch(
                position,
                f"maps to leaf {index}, before the leaf {self.next_leaf - 1} of position "
                f"{self.last_position}: the tree's leaf order is not the log's",
            )
            return
        if index > self.next_leaf:
            self._deleted(self.last_position, position, self.next_leaf, index)
        self.next_leaf, self.last_position = index + 1, position
        if stored_leaf != leaf:
            self.leaf_problem = True
            self.swaps.changed(
                row,
                stored_leaf,
                f"its bytes changed: the row hashes to {_preview(leaf)}, "
                f"the tree's leaf {index} is {_preview(stored_leaf)}",
            )

    def _check_tail(self) -> None:
        """Once the log passes the tree's tracked position (or ends): leaves left over
        after the last matched row lost their rows."""
        if self.tail_checked or not self.comparing:
            return
        self.tail_checked = True
        if self.next_leaf < self.size:
            self._deleted(self.last_position, self.tracked_position + 1, self.next_leaf, self.size)

    def _deleted(self, after: int, before: int, first_leaf: int, end_leaf: int) -> None:
        """Leaves [first_leaf, end_leaf) belong to positions in (after, before) the log lacks."""
        self.leaf_problem = True
        named = self._probe(after, before, first_leaf, end_leaf)
        for position in sorted(named):
            self.problems.add(
                "deleted",
                position,
                f"the tree holds leaf {named[position]} for this position; the log no longer does",
            )
        unnamed = end_leaf - first_leaf - len(named)
        if unnamed:
            self.problems.add(
                "deleted",
                None,
                f"{unnamed:,} of the tree's leaves {first_leaf:,}-{end_leaf - 1:,} belong to "
                f"positions between {after} and {before} that the log no longer holds",
            )

    def _probe(self, after: int, before: int, first_leaf: int, end_leaf: int) -> dict[int, int]:
        """The positions between two rows that hold the missing leaves, if few enough to look up."""
        if before - after - 1 > GAP_PROBE_MAX:
            return {}
        named: dict[int, int] = {}
        wanted = min(end_leaf - first_leaf, PROBLEMS_MAX)
        for start in range(after + 1, before, LEAF_LOOKUP_MAX):
            chunk = list(range(start, min(start + LEAF_LOOKUP_MAX, before)))
            for position, index in _leaf_indexes(self.tree, chunk).items():
                if first_leaf <= index < end_leaf:
                    named[position] = index
            if len(named) >= wanted:
                break
        return named

    def _check_root(self, size: int, recomputed: bytes) -> None:
        """While every leaf matched, the tree's root must be the log's."""
        if not self.comparing or self.leaf_problem:
            return
        try:
            stored = self.tree.root(size)
        except LookupError as error:
            self._mismatch(None, f"the tree cannot give its root at size {size:,}: {error}")
            return
        if stored != recomputed:
            self._mismatch(
                None,
                f"the root of the log's first {size:,} events is {_preview(recomputed)}, the "
                f"tree's is {_preview(stored)}: its inner nodes do not match its leaves",
            )

    def _mismatch(self, position: int | None, detail: str) -> None:
        """The tree contradicts itself: report once and stop comparing with it."""
        self.problems.add("tree_mismatch", position, detail)
        self.comparing = False


def _stored_heads(tree: LogTree) -> tuple[list[TreeHead], list[Problem]]:
    try:
        return list(tree.all_heads()), []
    except TreeHeadError as error:
        return [], [Problem("bad_head", None, f"a head kept in the store cannot be read: {error}")]


def verify_store(
    app: StoredLog,
    tree: LogTree,
    *,
    heads: Sequence[TreeHead],
    verifier: TreeHeadVerifier | None,
    progress: Progress | None = None,
) -> Report:
    """Check the log against the tree as it stands and every head (store's and ``heads``)."""
    problems = _Problems()
    kept, head_problems = _stored_heads(tree)
    seen = set(kept)
    sourced = [(head, STORE) for head in kept]
    sourced += [(head, WITNESS) for head in heads if head not in seen]
    check = _StoreCheck(tree, [head.tree_size for head, _ in sourced], problems)
    after = 0
    while True:
        rows = app.read_stored(after, LOG_PAGE_MAX)
        if not rows:
            break
        check.page(rows)
        after = rows[-1][0]
        if progress is not None:
            progress(after, check.roots.size)
        if len(rows) < LOG_PAGE_MAX:
            break
    check.finish()
    head_problems += _check_heads(sourced, check.roots, verifier)
    return Report(
        events=check.roots.size,
        tree_size=check.size,
        heads_checked=len(sourced),
        problems=problems.with_heads(head_problems),
        pending=check.pending,
    )


# --- Heads -----------------------------------------------------------------------------


def _check_heads(
    sourced: Sequence[tuple[TreeHead, str]], roots: _Roots, verifier: TreeHeadVerifier | None
) -> list[Problem]:
    problems: list[Problem] = []
    if sourced and verifier is None:
        problems.append(
            Problem(
                "no_public_key",
                None,
                f"{len(sourced):,} signed heads cannot be trusted without the operator's public key",
            )
        )
    for head, source in sourced:
        problems.extend(_check_head(head, source, roots, verifier))
    return problems


def _check_head(
    head: TreeHead, source: str, roots: _Roots, verifier: TreeHeadVerifier | None
) -> list[Problem]:
    """A head's signature and its root against the log's root at its size."""
    where = f"the head of tree_size {head.tree_size:,} at {head.timestamp.isoformat()} from the {source}"
    problems: list[Problem] = []
    if verifier is not None and not verifier.verify(head):
        reason = (
            f"signed by key {head.key_id}, not {verifier.key_id}"
            if head.key_id != verifier.key_id
            else "its signature does not verify"
        )
        problems.append(Problem("bad_signature", None, f"{where}: {reason}"))
    if head.tree_size > roots.size:
        problems.append(
            Problem("head_beyond_log", None, f"{where}: the log holds only {roots.size:,} events")
        )
        return problems
    recomputed = roots.roots[head.tree_size]
    if recomputed != head.root_hash:
        problems.append(
            Problem(
                "head_mismatch",
                None,
                f"{where}: signed root {_preview(head.root_hash)}, the log's first "
                f"{head.tree_size:,} events give {_preview(recomputed)}",
            )
        )
    return problems


def load_heads(file: IO[bytes]) -> list[TreeHead]:
    """Heads from a witness file, one JSON object a line; blank lines are skipped."""
    heads: list[TreeHead] = []
    number = 0
    while raw := file.readline(HEAD_LINE_BYTES_MAX + 1):
        number += 1
        if len(raw) > HEAD_LINE_BYTES_MAX:
            raise TreeHeadError(f"line {number}: longer than {HEAD_LINE_BYTES_MAX:,} bytes")
        if raw.isspace():
            continue
        if len(heads) >= WITNESS_HEADS_MAX:
            raise TreeHeadError(f"line {number}: more than {WITNESS_HEADS_MAX:,} heads")
        try:
            heads.append(from_json(raw))
        except TreeHeadError as error:
            raise TreeHeadError(f"line {number}: {error}") from error
    return heads


# --- Exports ---------------------------------------------------------------------------

_line_decoder = msgspec.json.Decoder(LogLine)


def _entry_of(raw: bytes) -> tuple[StoredEntry, bytes] | str:
    """An export line as the stored row it copies, with its leaf; or why it cannot be."""
    if len(raw) > LINE_BYTES_MAX:
        return f"longer than {LINE_BYTES_MAX:,} bytes"
    try:
        line = _line_decoder.decode(raw)
        entry: StoredEntry = (
            line.position,
            line.originator_id,
            line.originator_version,
            line.topic,
            bytes(line.body),
        )
        return entry, leaf_of(entry)
    except (msgspec.DecodeError, ValueError) as error:
        return f"not an exported log line: {error}"


def verify_export(
    lines: IO[bytes],
    *,
    heads: Sequence[TreeHead],
    verifier: TreeHeadVerifier | None,
    progress: Progress | None = None,
) -> Report:
    """Check an NDJSON export against heads; leaf ``i`` is its ``i``-th event.

    Reading stops at the first line that cannot be decoded, since every leaf
    after it would be misplaced; heads beyond it are then ``head_beyond_log``.
    """
    problems = _Problems()
    roots = _Roots(head.tree_size for head in heads)
    number = previous = 0
    while raw := lines.readline(LINE_BYTES_MAX + 1):
        number += 1
        if raw.isspace():
            continue
        decoded = _entry_of(raw)
        if isinstance(decoded, str):
            problems.add(
                "bad_line", None, f"line {number}: {decoded}; lines after it were not read"
            )
            break
        entry, leaf = decoded
        if entry[0] <= previous:
            problems.add(
                "out_of_order", entry[0], f"line {number}: does not follow position {previous}"
            )
        previous = entry[0]
        roots.add(leaf)
        if progress is not None and roots.size % EXPORT_PROGRESS_LINES == 0:
            progress(previous, roots.size)
    if progress is not None:
        progress(previous, roots.size)
    head_problems = _check_heads([(head, WITNESS) for head in heads], roots, verifier)
    return Report(
        events=roots.size,
        tree_size=None,
        heads_checked=len(heads),
        problems=problems.with_heads(head_problems),
    )
