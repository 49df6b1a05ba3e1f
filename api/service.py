"""The running service: the ledger, the view it reads and, in one process, the follower."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import msgspec
import psycopg
from eventsourcing.persistence import IntegrityError

from api.auth import KeyRing, Role
from api.metrics import Metrics
from api.settings import Settings
from ledger.app import Appended, LedgerApp, Origin
from ledger.clock import Clock, SystemClock
from ledger.commands import Command
from ledger.errors import ErrorCode, InvalidInputError
from ledger.tree_head import TreeHead, TreeHeadSigner
from projections.follower import Follower
from projections.log_tree import LogTree, open_log_tree
from projections.penalty_feed import PenaltyFeed, open_penalty_feed
from projections.queries import Reputation
from projections.rulebook import load_rulebook
from projections.views import (
    PostgresView,
    ReplayLag,
    ReputationView,
    SqlView,
    activated_version,
    open_view,
)

log = logging.getLogger("trustledger")
C = TypeVar("C", bound=Command)

# How long after reads switch to a rebuilt view version the old one's
# connections are closed: longer than any request takes.
OLD_VIEW_CLOSE_SECONDS = 60.0
# How often a server looks whether its keys file changed: a revoked key stops
# working within this time, without a restart.
KEYS_RELOAD_SECONDS = 1.0
# How much a request may fold to reach the position it asked for (follower inside).
READ_YOUR_WRITES_MAX_BATCHES = 100
# How often a request waiting for the follower looks at the view's position.
READ_YOUR_WRITES_PAUSE_MIN_SECONDS = 0.002
READ_YOUR_WRITES_PAUSE_MAX_SECONDS = 0.05
# How long a server waits for a standby to replay the view's tables at start.
# Threads that run commands off the event loop: as many as the event store's
# connections (pool size and overflow), more would only queue for one.
COMMAND_THREADS = 40
REPLICA_OPEN_SECONDS = 30.0
REPLICA_OPEN_PAUSE_SECONDS = 0.1


class Readiness(msgspec.Struct, frozen=True):
    """Where the log and the view stand, for /readyz."""

    log_position: int
    view_position: int
    lag_events: int
    lag_seconds: float
    view_version: int | None  # None: a view in memory
    # Reads from a hot standby: how far its replay trails the primary (the
    # lag above already counts it: the view read is the standby's).
    replica: ReplayLag | None = None


class ViewBehindError(Exception):
    """The view did not reach a position a caller asked to read within the wait."""

    def __init__(self, wanted: int, reached: int) -> None:
        super().__init__(f"the view reflects position {reached}, not yet {wanted}")
        self.wanted, self.reached = wanted, reached


class Service:
    """What one serving process holds: the ledger, the view it reads, and,
    when the follower runs inside (``Settings.follower``), the follower."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.ledger = LedgerApp(settings.database_url, clock=self.clock, rulebook=settings.rulebook)
        replica = settings.read_database_url
        # The feed's tables are made on the primary before the view's, so a
        # standby that replayed the view's holds them too.
        stamp = load_rulebook(settings.rulebook).scoring_stamp
        written_feed = open_penalty_feed(settings.database_url, stamp)
        self.feed: PenaltyFeed = written_feed
        if replica is not None:
            self.feed = open_penalty_feed(replica, stamp, read_only=True)
        # The view the follower folds into, on the primary (inside only).
        folded = open_view(settings.database_url) if settings.follower == "inside" else None
        self.view: ReputationView = (
            folded
            if folded is not None and replica is None
            else _open_reads(settings.database_url, replica)
        )
        self.reputation = Reputation(
            self.view,
            self.clock,
            default_rulebook=settings.rulebook,
            time_at=self.ledger.recorded_at,
        )
        self.keys = KeyRing([]) if settings.dev_keys else KeyRing.load(settings.keys_file)
        self._keys_seen = _file_stamp(settings.keys_file)
        self.tree: LogTree = open_log_tree(settings.database_url)
        self.signer = self._signer(settings)
        self.follower: Follower | None = None
        if folded is not None:
            self.follower = Follower(
                self.ledger,
                folded,
                self.tree,
                clock=self.clock,
                signer=self.signer,
                feed=written_feed,
                rulebook=settings.rulebook,
                # Sharing its view, the service switches it for both.
                settings=settings.follower_settings(switch_versions=folded is not self.view),
            )
        elif written_feed is not self.feed:
            written_feed.close()  # it made the tables; the follower apart writes them
        self._written_feed = written_feed
        self._head_lock = threading.Lock()
        self.metrics = Metrics()
        self.started_at = self.clock.now()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # A command is handed to these threads straight from the event loop:
        # the framework's thread hand-off cost more per append than deciding.
        self._commands = ThreadPoolExecutor(COMMAND_THREADS, thread_name_prefix="command")

    def dev_keys(self) -> dict[Role, str]:
        """One fresh key per role, their hashes in the development keys file only."""
        plain = {role: self.keys.add(role) for role in Role}
        self.keys.save(self.settings.dev_keys_file)
        return plain

    def start(self, *, background: bool = True) -> None:
        if self.settings.dev_keys:
            for role, key in self.dev_keys().items():
                print(f"development key, role {role:<8} {key}", flush=True)
        if self.follower is not None:
            self.follower.catch_up()
        if not background:
            return
        if self.follower is not None:
            self.follower.start()
        self._spawn("view-versions", self._follow_versions)
        if not self.settings.dev_keys:
            self._spawn("keys", self._follow_keys)

    async def run_command(
        self, method: Callable[[C, Origin], Appended], command: C, origin: Origin
    ) -> Appended:
        """Run a ledger command; what it appended.

        Decided here, on the event loop, when every aggregate it reads is
        remembered, and saved by the group committer's writer thread while the
        loop goes on (no thread waits per append); otherwise, and after a save
        the store refused, run on a command thread, which may block."""
        loop = asyncio.get_running_loop()
        prepared = self.ledger.prepare(method, command, origin)
        if prepared is None:
            return await loop.run_in_executor(self._commands, method, command, origin)
        saved: asyncio.Future[list[int]] = loop.create_future()

        def done(positions: list[int] | None, error: Exception | None) -> None:
            if not loop.is_closed():  # a server stopping: the save stands, no one awaits it
                loop.call_soon_threadsafe(_settle, saved, positions, error)

        self.ledger.save_prepared(prepared, done)
        try:
            positions = await saved
        except IntegrityError:
            return await loop.run_in_executor(self._commands, self.ledger.recover, prepared)
        return Appended(positions=tuple(positions))

    def stop(self) -> None:
        self._stop.set()
        self._commands.shutdown(wait=True)
        if self.follower is not None:
            self.follower.stop()
        for thread in self._threads:
            thread.join(timeout=10)
        if self.follower is not None and self.follower.view is not self.view:
            self.follower.view.close()
        if self.follower is not None and self._written_feed is not self.feed:
            self._written_feed.close()
        self.feed.close()
        self.view.close()
        self.tree.close()
        self.ledger.close()

    def tree_head(self) -> TreeHead | None:
        """A signed head of the whole log as it stands (None: no signing key).

        With the follower inside, the tree is brought up to the log first;
        otherwise the head covers the tree as the follower has brought it
        (it follows the log within its poll interval). A head is signed only
        when the tree grew since the last one, so polling witnesses add no rows.
        """
        if self.follower is not None:
            return self.follower.sign_head()
        if self.signer is None:
            return None
        with self._head_lock:
            return self.tree.head_now(self.signer, self.clock.now(), self.tree.latest_head())

    @staticmethod
    def _signer(settings: Settings) -> TreeHeadSigner | None:
        if settings.tree_head_key is not None:
            return TreeHeadSigner.from_file(settings.tree_head_key)
        if settings.dev_keys:
            log.warning("no tree head key configured: signing with a key made for this run only")
            return TreeHeadSigner.generate()
        return None

    def catch_up_to(self, position: int) -> None:
        """Read your writes: the view reflects ``position`` when this returns.

        A position beyond the end of the log is refused (422
        ``position_beyond_log``): it names no write this caller could have made.

        With the follower inside, the request folds the log itself. When the
        follower runs apart, or reads come from a standby, it waits for the
        view it reads to reflect the position (the follower's fold, then the
        standby's replay of it), up to ``Settings.read_your_writes_seconds``,
        and then raises ``ViewBehindError``: a 503 the caller retries, rather
        than a fall-back that would load the primary exactly when standbys lag.
        """
        if self.view.position() >= position:
            return
        end = self.ledger.recorder.max_notification_id() or 0
        if position > end:  # no wait can reach it: the caller asks for a write never made
            raise InvalidInputError(
                ErrorCode.POSITION_BEYOND_LOG,
                f"min_position {position} is beyond the end of the log ({end})",
                field="min_position",
            )
        follower = self.follower
        if follower is not None:
            for _ in range(READ_YOUR_WRITES_MAX_BATCHES):
                if follower.view.position() >= position or follower.runner.run_batch() == 0:
                    break
            if follower.view is self.view:
                return
        deadline = time.monotonic() + self.settings.read_your_writes_seconds
        pause = READ_YOUR_WRITES_PAUSE_MIN_SECONDS
        while (reached := self.view.position()) < position:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ViewBehindError(position, reached)
            time.sleep(min(pause, left))
            pause = min(2 * pause, READ_YOUR_WRITES_PAUSE_MAX_SECONDS)

    def readiness(self) -> Readiness:
        """Where the log and the view stand, each read once."""
        head = self.ledger.recorder.max_notification_id() or 0
        view = self.view
        position = view.position()
        version = view.version if isinstance(view, SqlView) else None
        replica = view.replay_lag() if isinstance(view, PostgresView) and view.read_only else None
        if head <= position:
            return Readiness(head, position, 0, 0.0, version, replica)
        # Positions can have gaps (rolled-back appends): this counts them too,
        # which is an upper bound that costs no scan of the log.
        seconds = 0.0
        first = self.ledger.read_log(position, 1)
        if first:
            recorded: datetime = self.ledger.decode(first[0]).recorded_at
            seconds = max((self.clock.now() - recorded).total_seconds(), 0.0)
        return Readiness(head, position, head - position, seconds, version, replica)

    def lag(self) -> tuple[int, float]:
        """How far the view trails the log: in events, and in seconds of recording time."""
        readiness = self.readiness()
        return readiness.lag_events, readiness.lag_seconds

    def _spawn(self, name: str, target: object) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def follow_active_version(self) -> bool:
        """Switch reads (and the follower inside) to the view version readers
        are to use, if a rebuild has switched it; whether it did.

        The swap is a reference change, so each request answers wholly from
        one version. The old version's connections are closed
        ``OLD_VIEW_CLOSE_SECONDS`` later, once the requests already on it have
        finished; its tables are dropped by the rebuild after its own grace.
        """
        current = self.view
        active = activated_version(current)
        if active is None:
            return False
        switched = _open_reads(self.settings.database_url, self.settings.read_database_url, active)
        if self.follower is not None and self.follower.view is current:
            self.follower.use(switched)
        self.reputation.use(switched)
        self.view = switched
        log.warning("reads switched to view version %d", active)
        closer = threading.Timer(OLD_VIEW_CLOSE_SECONDS, current.close)
        closer.daemon = True
        closer.start()
        return True

    def reload_keys(self) -> bool:
        """Read the keys file again if it changed (a key added, revoked or
        rotated); whether it did. A file that cannot be read leaves the keys
        as they were."""
        stamp = _file_stamp(self.settings.keys_file)
        if stamp == self._keys_seen:
            return False
        self.keys = KeyRing.load(self.settings.keys_file)
        self._keys_seen = stamp
        log.warning("API keys reloaded: %d keys", len(self.keys))
        return True

    def _follow_keys(self) -> None:
        while not self._stop.wait(KEYS_RELOAD_SECONDS):
            try:
                self.reload_keys()
            except Exception:
                log.exception("reloading the keys file failed; the keys are as they were")

    def _follow_versions(self) -> None:
        while not self._stop.wait(self.settings.projection_poll_seconds):
            try:
                self.follow_active_version()
            except Exception:
                log.exception("checking the active view version failed")


def _open_reads(primary: str, replica: str | None, version: int | None = None) -> ReputationView:
    """The view queries read: on the primary, or on a standby once it holds it.

    A standby replays what the primary made; the view's tables are made on
    the primary first, and the standby is waited for (``REPLICA_OPEN_SECONDS``).
    """
    if replica is None:
        return open_view(primary, version=version)
    open_view(primary, version=version).close()
    deadline = time.monotonic() + REPLICA_OPEN_SECONDS
    while True:
        try:
            return open_view(replica, version=version, read_only=True)
        except psycopg.errors.UndefinedTable:
            if time.monotonic() > deadline:
                raise
            time.sleep(REPLICA_OPEN_PAUSE_SECONDS)


def _settle(
    future: asyncio.Future[list[int]], positions: list[int] | None, error: Exception | None
) -> None:
    """On the event loop: a handed-over save's outcome to the request awaiting it."""
    if future.done():  # the request went away meanwhile; the save stands
        return
    if error is not None:
        future.set_exception(error)
    elif positions is None:
        future.set_exception(RuntimeError("a save finished with neither positions nor an error"))
    else:
        future.set_result(positions)


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when a file is replaced or written (None: no file)."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return (status.st_ino, status.st_mtime_ns, status.st_size)
