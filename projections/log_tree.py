"""The verifiable log: an RFC 9162 Merkle tree kept beside the log.

A projection like the reputation view, with its own tables: it follows the
log, hashes each stored row into a leaf (``ledger.merkle.canonical_leaf``),
and writes the new perfect-subtree nodes, each leaf's log position and its own
tracking (log position, tree size) **in one transaction**. Appends never wait
for it; a crash resumes after the last committed batch. Leaf ``i`` is the
``i``-th event in log order: positions may have gaps (rolled-back appends), so
the tree keeps the position of every leaf for inclusion proofs by position.

Signed tree heads are kept in a heads table, so a head handed out once can be
shown again and the verifier can check every head the operator ever signed.
Nodes never change once written; the tracking row is checked inside the
transaction, so two writers cannot both extend the same tree.
"""

from __future__ import annotations

import base64
import binascii
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any, Literal

import msgspec
import psycopg
from psycopg import sql

from ledger import merkle
from ledger.app import LedgerApp
from ledger.database import (
    POSTGRES_CONNECT_TIMEOUT_SECONDS_DEFAULT,
    POSTGRES_STATEMENT_TIMEOUT_SECONDS_DEFAULT,
)
from ledger.errors import ErrorCode, NotFoundError
from ledger.merkle import NodeKey
from ledger.store import StoredEntry, lock_schema_changes, to_micros
from ledger.tree_head import TreeHead, TreeHeadSigner, from_json, to_json
from projections.connections import Fence, SQLiteConnection, chunks, place_of, postgres_pool
from projections.explanations import BadCursorError
from projections.runner import LogFollower

# Each refused commit means another process extended the tree; past this
# many in one catch-up, something else is wrong.
TREE_CONFLICTS_MAX = 100
TREE_BATCH_EVENTS = 10_000
HEADS_PAGE_MAX = 1_000
# One head every five minutes for a century is some ten million.
HEADS_KEPT_MAX = 20_000_000
HeadKey = tuple[int, int]  # (tree size, timestamp in microseconds): how heads are ordered
HEAD_KEY_END = 2**63 - 1  # past every head's size and time (both are stored as bigint)
# A page of heads: the comparison with the key it starts from, and the order.
_HeadOrder = tuple[Literal[">", "<"], Literal["ASC", "DESC"]]
_OLDEST_FIRST: _HeadOrder = (">", "ASC")
_NEWEST_FIRST: _HeadOrder = ("<", "DESC")


def head_key(head: TreeHead) -> HeadKey:
    return (head.tree_size, to_micros(head.timestamp))


class TreeHeadPage(msgspec.Struct, frozen=True):
    """Signed heads kept, newest first; ``next_cursor`` asks for older ones (null: none)."""

    heads: tuple[TreeHead, ...]
    next_cursor: str | None


def heads_page(tree: LogTree, limit: int, cursor: str | None = None) -> TreeHeadPage:
    """A page of the kept heads, newest first, older than the cursor's head."""
    before = _head_key_of(cursor) if cursor is not None else None
    heads = tree.heads_before(limit, before)
    more = len(heads) == limit and bool(tree.heads_before(1, head_key(heads[-1])))
    return TreeHeadPage(tuple(heads), _cursor_of(head_key(heads[-1])) if more else None)


def _cursor_of(key: HeadKey) -> str:
    return base64.urlsafe_b64encode(f"{key[0]}:{key[1]}".encode()).decode().rstrip("=")


def _head_key_of(cursor: str) -> HeadKey:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        size, micros = (int(part) for part in text.split(":"))
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise BadCursorError(f"cursor {cursor!r} was not handed out by this ledger") from error
    if not (0 <= size <= HEAD_KEY_END and 0 <= micros <= HEAD_KEY_END):
        raise BadCursorError(f"cursor {cursor!r} was not handed out by this ledger")
    return size, micros


TREE_POOL_SIZE = 4


class TreeConflictError(RuntimeError):
    """Another writer extended the tree first; this batch was not written."""


class InclusionProof(msgspec.Struct, frozen=True):
    position: int
    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    proof: list[bytes]


class ConsistencyProof(msgspec.Struct, frozen=True):
    first: int
    second: int
    proof: list[bytes]


def leaf_of(entry: StoredEntry) -> bytes:
    """The leaf hash of one stored row: (position, originator id, version, topic, body)."""
    return merkle.leaf_hash(merkle.canonical_leaf(*entry))


class LogTree(ABC):
    """The stored tree; a ``merkle.NodeStore``."""

    @abstractmethod
    def nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]: ...

    @abstractmethod
    def tracked(self) -> tuple[int, int]:
        """(last log position hashed, tree size)."""

    @abstractmethod
    def leaf_indexes(self, positions: Sequence[int]) -> dict[int, int]:
        """The leaf of each log position the tree holds (others are left out); one query."""

    def leaf_index(self, position: int) -> int | None:
        """The leaf holding a log position (None: no event there, or not hashed yet)."""
        return self.leaf_indexes([position]).get(position)

    @abstractmethod
    def keep_head(self, head: TreeHead) -> None: ...

    @abstractmethod
    def heads(self, limit: int = HEADS_PAGE_MAX, after: HeadKey | None = None) -> list[TreeHead]:
        """A page of the signed heads kept, by (tree size, timestamp), after ``after``."""

    @abstractmethod
    def heads_before(self, limit: int, before: HeadKey | None = None) -> list[TreeHead]:
        """A page of the signed heads kept, newest first, before ``before``."""

    @abstractmethod
    def latest_head(self) -> TreeHead | None: ...

    def all_heads(self) -> Iterator[TreeHead]:
        """Every signed head kept, page by page (at most ``HEADS_KEPT_MAX``)."""
        after: HeadKey | None = None
        for _ in range(HEADS_KEPT_MAX // HEADS_PAGE_MAX):
            page = self.heads(HEADS_PAGE_MAX, after)
            yield from page
            if len(page) < HEADS_PAGE_MAX:
                return
            after = head_key(page[-1])

    @abstractmethod
    def _commit(
        self,
        nodes: Mapping[NodeKey, bytes],
        leaves: Sequence[tuple[int, int]],
        position: int,
        size_before: int,
    ) -> None:
        """Write nodes, (leaf index, position) rows and the new tracking, if still at size_before."""

    def close(self) -> None:  # noqa: B027 - trees without resources need nothing here
        """Release connections."""

    @property
    def size(self) -> int:
        return self.tracked()[1]

    def append(self, entries: Sequence[StoredEntry]) -> None:
        """Hash stored rows (in log order, after the tracked position) into new leaves."""
        if not entries:
            return
        position, size = self.tracked()
        for entry in entries:
            if entry[0] <= position:
                raise ValueError(f"position {entry[0]} is not after {position}")
            position = entry[0]
        hashes = [leaf_of(entry) for entry in entries]
        nodes = merkle.new_nodes(size, hashes, self)
        leaves = [(size + i, entry[0]) for i, entry in enumerate(entries)]
        self._commit(nodes, leaves, position, size)

    def root(self, tree_size: int | None = None) -> bytes:
        return merkle.root(self, self._size_within(tree_size))

    def inclusion(self, position: int, tree_size: int | None = None) -> InclusionProof:
        size = self._size_within(tree_size)
        index = self.leaf_index(position)
        if index is None or index >= size:
            raise NotFoundError(
                ErrorCode.UNKNOWN_POSITION,
                f"no event at position {position} in the tree of size {size}",
                field="position",
            )
        leaf = self.nodes([(0, index)])[(0, index)]
        return InclusionProof(
            position, index, size, leaf, merkle.inclusion_proof(self, index, size)
        )

    def consistency(self, first: int, second: int) -> ConsistencyProof:
        if first > second:
            raise NotFoundError(
                ErrorCode.UNKNOWN_TREE_SIZE,
                f"first ({first}) is after second ({second})",
                field="first",
            )
        self._size_within(second)
        return ConsistencyProof(first, second, merkle.consistency_proof(self, first, second))

    def sign_head(self, signer: TreeHeadSigner, at: datetime) -> TreeHead:
        """Sign the tree as it stands and keep the head."""
        size = self.size
        head = signer.sign(size, merkle.root(self, size), at)
        self.keep_head(head)
        return head

    def head_now(self, signer: TreeHeadSigner, at: datetime, latest: TreeHead | None) -> TreeHead:
        """``latest`` while it covers the whole tree, else a new signed head:
        polling witnesses add no rows while the tree stands still."""
        if latest is not None and latest.tree_size == self.size:
            return latest
        return self.sign_head(signer, at)

    def _size_within(self, tree_size: int | None) -> int:
        size = self.size
        if tree_size is None:
            return size
        if not 0 <= tree_size <= size:
            raise NotFoundError(
                ErrorCode.UNKNOWN_TREE_SIZE,
                f"the tree holds {size} events; no tree of size {tree_size} yet",
                field="tree_size",
            )
        return tree_size


class MemoryLogTree(LogTree):
    def __init__(self) -> None:
        self._nodes = merkle.MemoryNodeStore()
        self._positions: dict[int, int] = {}
        self._tracked = (0, 0)
        self._heads: list[TreeHead] = []
        self._lock = threading.Lock()

    def nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        return self._nodes.nodes(keys)

    def tracked(self) -> tuple[int, int]:
        return self._tracked

    def leaf_indexes(self, positions: Sequence[int]) -> dict[int, int]:
        found = ((p, self._positions.get(p)) for p in positions)
        return {p: i for p, i in found if i is not None}

    def keep_head(self, head: TreeHead) -> None:
        self._heads.append(head)

    def heads(self, limit: int = HEADS_PAGE_MAX, after: HeadKey | None = None) -> list[TreeHead]:
        ordered = sorted(self._heads, key=head_key)
        later = [h for h in ordered if after is None or head_key(h) > after]
        return later[: min(limit, HEADS_PAGE_MAX)]

    def heads_before(self, limit: int, before: HeadKey | None = None) -> list[TreeHead]:
        ordered = sorted(self._heads, key=head_key, reverse=True)
        earlier = [h for h in ordered if before is None or head_key(h) < before]
        return earlier[: min(limit, HEADS_PAGE_MAX)]

    def latest_head(self) -> TreeHead | None:
        return max(self._heads, key=head_key, default=None)

    def _commit(
        self,
        nodes: Mapping[NodeKey, bytes],
        leaves: Sequence[tuple[int, int]],
        position: int,
        size_before: int,
    ) -> None:
        with self._lock:
            if self._tracked[1] != size_before:
                raise TreeConflictError("the tree grew meanwhile")
            self._nodes.put(nodes)
            self._positions.update((p, i) for i, p in leaves)
            self._tracked = (position, size_before + len(leaves))


class SQLiteLogTree(LogTree):
    def __init__(self, path: str) -> None:
        self._db = SQLiteConnection(path)
        statements = [
            "CREATE TABLE IF NOT EXISTS log_tree_nodes (level INTEGER NOT NULL, "
            "idx INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (level, idx)) WITHOUT ROWID",
            "CREATE TABLE IF NOT EXISTS log_tree_leaves (position INTEGER PRIMARY KEY, "
            "leaf_index INTEGER NOT NULL UNIQUE)",
            "CREATE TABLE IF NOT EXISTS log_tree_tracking (id INTEGER PRIMARY KEY CHECK (id = 1), "
            "position INTEGER NOT NULL, size INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS log_tree_heads (tree_size INTEGER NOT NULL, "
            "timestamp_us INTEGER NOT NULL, body BLOB NOT NULL, PRIMARY KEY (tree_size, timestamp_us))",
        ]
        with self._transaction() as cursor:
            for statement in statements:
                cursor.execute(statement)

    def _transaction(self, *, write: bool = True) -> AbstractContextManager[sqlite3.Cursor]:
        # Reads take no write lock: the verifier reads a leaf for every row.
        return self._db.transaction(write=write)

    def nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        if not keys:
            return {}
        values = ", ".join("(?, ?)" for _ in keys)
        params = [part for key in keys for part in key]
        with self._transaction(write=False) as cursor:
            rows = cursor.execute(
                f"SELECT level, idx, hash FROM log_tree_nodes WHERE (level, idx) IN (VALUES {values})",
                params,
            ).fetchall()
        return {(level, idx): digest for level, idx, digest in rows}

    def tracked(self) -> tuple[int, int]:
        with self._transaction(write=False) as cursor:
            return self._tracked(cursor)

    def _tracked(self, cursor: sqlite3.Cursor) -> tuple[int, int]:
        row = cursor.execute("SELECT position, size FROM log_tree_tracking WHERE id = 1").fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def leaf_indexes(self, positions: Sequence[int]) -> dict[int, int]:
        found: dict[int, int] = {}
        with self._transaction(write=False) as cursor:
            for chunk in chunks(positions):
                marks = ",".join("?" * len(chunk))
                rows = cursor.execute(
                    f"SELECT position, leaf_index FROM log_tree_leaves WHERE position IN ({marks})",
                    chunk,
                ).fetchall()
                found.update((int(p), int(i)) for p, i in rows)
        return found

    def keep_head(self, head: TreeHead) -> None:
        with self._transaction() as cursor:
            cursor.execute(
                "INSERT OR IGNORE INTO log_tree_heads VALUES (?, ?, ?)",
                (head.tree_size, to_micros(head.timestamp), to_json(head)),
            )

    def heads(self, limit: int = HEADS_PAGE_MAX, after: HeadKey | None = None) -> list[TreeHead]:
        return self._heads_page(_OLDEST_FIRST, after or (-1, -1), limit)

    def heads_before(self, limit: int, before: HeadKey | None = None) -> list[TreeHead]:
        return self._heads_page(_NEWEST_FIRST, before or (HEAD_KEY_END, HEAD_KEY_END), limit)

    def _heads_page(self, order: _HeadOrder, key: HeadKey, limit: int) -> list[TreeHead]:
        beyond, direction = order
        with self._transaction(write=False) as cursor:
            rows = cursor.execute(
                f"SELECT body FROM log_tree_heads WHERE (tree_size, timestamp_us) {beyond} (?, ?) "
                f"ORDER BY tree_size {direction}, timestamp_us {direction} LIMIT ?",
                (*key, min(limit, HEADS_PAGE_MAX)),
            ).fetchall()
        return [from_json(body) for (body,) in rows]

    def latest_head(self) -> TreeHead | None:
        with self._transaction(write=False) as cursor:
            row = cursor.execute(
                "SELECT body FROM log_tree_heads ORDER BY tree_size DESC, timestamp_us DESC LIMIT 1"
            ).fetchone()
        return from_json(row[0]) if row else None

    def _commit(
        self,
        nodes: Mapping[NodeKey, bytes],
        leaves: Sequence[tuple[int, int]],
        position: int,
        size_before: int,
    ) -> None:
        with self._transaction() as cursor:
            if self._tracked(cursor)[1] != size_before:
                raise TreeConflictError("the tree grew meanwhile")
            cursor.executemany(
                "INSERT INTO log_tree_nodes VALUES (?, ?, ?)",
                [(level, idx, digest) for (level, idx), digest in nodes.items()],
            )
            cursor.executemany(
                "INSERT INTO log_tree_leaves (leaf_index, position) VALUES (?, ?)", leaves
            )
            cursor.execute(
                "INSERT OR REPLACE INTO log_tree_tracking VALUES (1, ?, ?)",
                (position, size_before + len(leaves)),
            )

    def close(self) -> None:
        self._db.close()


class PostgresLogTree(LogTree):
    # Checked in every write's transaction (the active follower's term).
    fence: Fence | None = None

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str = "public",
        wait_seconds: float = POSTGRES_CONNECT_TIMEOUT_SECONDS_DEFAULT,
        statement_seconds: int = POSTGRES_STATEMENT_TIMEOUT_SECONDS_DEFAULT,
    ) -> None:
        self._pool = postgres_pool(
            conninfo,
            max_size=TREE_POOL_SIZE,
            wait_seconds=wait_seconds,
            statement_seconds=statement_seconds,
        )
        self._schema = sql.Identifier(schema)
        t = self._table
        statements = [
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (level smallint NOT NULL, idx bigint NOT NULL, "
                "hash bytea NOT NULL, PRIMARY KEY (level, idx))"
            ).format(t("nodes")),
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (position bigint PRIMARY KEY, "
                "leaf_index bigint NOT NULL UNIQUE)"
            ).format(t("leaves")),
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (id integer PRIMARY KEY CHECK (id = 1), "
                "position bigint NOT NULL, size bigint NOT NULL)"
            ).format(t("tracking")),
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (tree_size bigint NOT NULL, timestamp_us bigint "
                "NOT NULL, body bytea NOT NULL, PRIMARY KEY (tree_size, timestamp_us))"
            ).format(t("heads")),
        ]
        with self._transaction() as cursor:
            lock_schema_changes(cursor, schema)
            for statement in statements:
                cursor.execute(statement)

    def _table(self, table: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(self._schema, sql.Identifier(f"log_tree_{table}"))

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Cursor[Any]]:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            yield cursor

    def nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        if not keys:
            return {}
        with self._transaction() as cursor:
            cursor.execute(
                sql.SQL(
                    "SELECT level, idx, hash FROM {} "
                    "WHERE (level, idx) IN (SELECT * FROM unnest(%s::smallint[], %s::bigint[]))"
                ).format(self._table("nodes")),
                ([level for level, _ in keys], [idx for _, idx in keys]),
            )
            return {(level, idx): bytes(digest) for level, idx, digest in cursor.fetchall()}

    def tracked(self) -> tuple[int, int]:
        with self._transaction() as cursor:
            return self._tracked(cursor)

    def _tracked(self, cursor: psycopg.Cursor[Any], *, lock: bool = False) -> tuple[int, int]:
        cursor.execute(
            sql.SQL(
                "SELECT position, size FROM {} WHERE id = 1" + (" FOR UPDATE" if lock else "")
            ).format(self._table("tracking"))
        )
        row = cursor.fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def leaf_indexes(self, positions: Sequence[int]) -> dict[int, int]:
        with self._transaction() as cursor:
            cursor.execute(
                sql.SQL("SELECT position, leaf_index FROM {} WHERE position = ANY(%s)").format(
                    self._table("leaves")
                ),
                (list(positions),),
            )
            return {int(p): int(i) for p, i in cursor.fetchall()}

    def keep_head(self, head: TreeHead) -> None:
        with self._transaction() as cursor:
            if self.fence is not None:
                self.fence(cursor)
            cursor.execute(
                sql.SQL("INSERT INTO {} VALUES (%s, %s, %s) ON CONFLICT DO NOTHING").format(
                    self._table("heads")
                ),
                (head.tree_size, to_micros(head.timestamp), to_json(head)),
            )

    def heads(self, limit: int = HEADS_PAGE_MAX, after: HeadKey | None = None) -> list[TreeHead]:
        return self._heads_page(_OLDEST_FIRST, after or (-1, -1), limit)

    def heads_before(self, limit: int, before: HeadKey | None = None) -> list[TreeHead]:
        return self._heads_page(_NEWEST_FIRST, before or (HEAD_KEY_END, HEAD_KEY_END), limit)

    def _heads_page(self, order: _HeadOrder, key: HeadKey, limit: int) -> list[TreeHead]:
        beyond, direction = order
        with self._transaction() as cursor:
            cursor.execute(
                sql.SQL(
                    "SELECT body FROM {} WHERE (tree_size, timestamp_us) "
                    + beyond
                    + " (%s, %s) ORDER BY tree_size "
                    + direction
                    + ", timestamp_us "
                    + direction
                    + " LIMIT %s"
                ).format(self._table("heads")),
                (*key, min(limit, HEADS_PAGE_MAX)),
            )
            return [from_json(bytes(body)) for (body,) in cursor.fetchall()]

    def latest_head(self) -> TreeHead | None:
        with self._transaction() as cursor:
            cursor.execute(
                sql.SQL(
                    "SELECT body FROM {} ORDER BY tree_size DESC, timestamp_us DESC LIMIT 1"
                ).format(self._table("heads"))
            )
            row = cursor.fetchone()
        return from_json(bytes(row[0])) if row else None

    def _commit(
        self,
        nodes: Mapping[NodeKey, bytes],
        leaves: Sequence[tuple[int, int]],
        position: int,
        size_before: int,
    ) -> None:
        with self._transaction() as cursor:
            if self._tracked(cursor, lock=True)[1] != size_before:
                raise TreeConflictError("the tree grew meanwhile")
            if self.fence is not None:
                self.fence(cursor)
            cursor.execute(
                sql.SQL(
                    "INSERT INTO {} SELECT * FROM unnest(%s::smallint[], %s::bigint[], %b::bytea[])"
                ).format(self._table("nodes")),
                (
                    [level for level, _ in nodes],
                    [idx for _, idx in nodes],
                    list(nodes.values()),
                ),
            )
            cursor.execute(
                sql.SQL(
                    "INSERT INTO {} (leaf_index, position) "
                    "SELECT * FROM unnest(%s::bigint[], %s::bigint[])"
                ).format(self._table("leaves")),
                ([index for index, _ in leaves], [p for _, p in leaves]),
            )
            cursor.execute(
                sql.SQL(
                    "INSERT INTO {} VALUES (1, %s, %s) "
                    "ON CONFLICT (id) DO UPDATE SET position = EXCLUDED.position, size = EXCLUDED.size"
                ).format(self._table("tracking")),
                (position, size_before + len(leaves)),
            )

    def close(self) -> None:
        self._pool.close()


def open_log_tree(database_url: str) -> LogTree:
    """The Merkle tree that lives beside the log named by a ledger database URL."""
    place = place_of(database_url)
    if place.kind == "memory":
        return MemoryLogTree()
    if place.kind == "sqlite":
        return SQLiteLogTree(place.path)
    return PostgresLogTree(
        place.conninfo,
        schema=place.schema,
        wait_seconds=place.pool.connect_timeout_seconds,
        statement_seconds=place.pool.statement_timeout_seconds,
    )


class LogTreeRunner(LogFollower):
    """Keeps the tree up with the log, like the reputation view's runner."""

    def __init__(self, app: LedgerApp, tree: LogTree, *, batch_events: int = TREE_BATCH_EVENTS):
        super().__init__(app, batch_events=batch_events, batch_events_max=TREE_BATCH_EVENTS)
        self.tree = tree

    def catch_up(self) -> int:
        """Hash everything the log holds now into the tree; events hashed (by this runner).

        A runner in another process may extend the tree between this one's
        read of the log and its commit: the append is refused (the tree grew,
        or the rows no longer follow it), nothing of it is written, and this
        runner goes on from where the tree now is.
        """
        hashed = conflicts = 0
        with self._lock:
            while True:
                after = self.tree.tracked()[0]
                entries = self.app.read_stored(after, self.batch_events)
                try:
                    self.tree.append(entries)
                except (TreeConflictError, ValueError):
                    if self.tree.tracked()[0] == after:
                        raise  # the tree did not move: the rows themselves are wrong
                    conflicts += 1
                    if conflicts > TREE_CONFLICTS_MAX:
                        raise
                    continue
                hashed += len(entries)
                if len(entries) < self.batch_events:
                    return hashed
