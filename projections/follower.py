"""The follower: everything that follows the log rather than answering callers.

It folds the log into the reputation view, hashes it into the log tree, keeps
the penalty change feed, signs tree heads and fires the deadlines nobody's
command settles. A single
``trustledger serve`` runs one inside; a deployment of several API workers
runs it apart as ``trustledger follow``, as many times as it wants standbys:
with a ``Leadership``, only the process holding the lock works, and every
write it makes to the view and the tree is fenced by its term. Deadlines need
no fence: a trade whose deadline another process fired fails to save
(``ledger.deadlines``), so none fires twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import partial

import msgspec
import psycopg

from ledger.app import LedgerApp
from ledger.clock import Clock
from ledger.policy import DEFAULT_RULEBOOK
from ledger.tree_head import TreeHead, TreeHeadSigner
from projections.leadership import Leadership
from projections.log_tree import LogTree, LogTreeRunner, PostgresLogTree
from projections.penalty_feed import PenaltyFeed, PenaltyFeedRunner
from projections.queries import Reputation
from projections.runner import LogFollower, Runner
from projections.views import ReputationView, SqlView, activated_version, open_view

log = logging.getLogger("trustledger")

RESTART_SECONDS = 1.0  # after a failed run of a loop, before it tries again


GATHER_SECONDS_DEFAULT = 0.1
GATHER_SECONDS_MAX = 5.0


class FollowerSettings(msgspec.Struct, frozen=True):
    poll_seconds: float = 1.0  # how often the log is looked at, besides PostgreSQL's wake-ups
    # Woken by an append, how long to let the appends behind it arrive before
    # folding: under a stream of appends the follower folds fewer, larger
    # batches (less CPU an event, left to the API workers on a shared machine);
    # the read models trail the log by up to this much more.
    gather_seconds: float = GATHER_SECONDS_DEFAULT
    tree_head_interval_seconds: float = 300.0
    deadline_interval_seconds: float = 30.0
    deadline_worker: bool = True
    # A standby tries the lock, and the active follower checks it still holds
    # it, this often: a killed follower is replaced within about this time.
    standby_poll_seconds: float = 1.0
    # Whether the follower switches to a view version a rebuild activated
    # (a serving process that shares its view switches it for both).
    switch_versions: bool = True

    def __post_init__(self) -> None:
        intervals = (
            self.poll_seconds,
            self.tree_head_interval_seconds,
            self.deadline_interval_seconds,
            self.standby_poll_seconds,
        )
        if not min(intervals) > 0:
            raise ValueError("the follower's intervals must be positive")
        if not 0 <= self.gather_seconds <= GATHER_SECONDS_MAX:
            raise ValueError(f"gather_seconds is 0-{GATHER_SECONDS_MAX:g}")


class Follower:
    """Keeps the view and the log tree up with the log, signs heads, fires deadlines."""

    def __init__(
        self,
        ledger: LedgerApp,
        view: ReputationView,
        tree: LogTree,
        *,
        clock: Clock,
        signer: TreeHeadSigner | None = None,
        settings: FollowerSettings | None = None,
        leadership: Leadership | None = None,
        feed: PenaltyFeed | None = None,
        rulebook: str = DEFAULT_RULEBOOK,
    ) -> None:
        self.ledger = ledger
        self.tree = tree
        self.clock = clock
        self.signer = signer
        self.settings = settings or FollowerSettings()
        self.leadership = leadership
        self.runner = Runner(ledger, view)
        self.tree_runner = LogTreeRunner(ledger, tree)
        # The penalty change feed computes penalties from the view it folds.
        self.reputation = Reputation(
            view, clock, default_rulebook=rulebook, time_at=ledger.recorded_at
        )
        self.feed_runner = (
            PenaltyFeedRunner(ledger, feed, self.reputation, clock) if feed is not None else None
        )
        self._head_lock = threading.Lock()
        # The last head signed, so an unchanged tree is not signed again.
        self._latest_head: TreeHead | None = tree.latest_head()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if leadership is not None:
            self._fence(view)
            if isinstance(tree, PostgresLogTree):
                tree.fence = leadership.fence
            if feed is not None:
                feed.fence = leadership.fence

    @property
    def view(self) -> ReputationView:
        return self.runner.view

    def use(self, view: ReputationView) -> None:
        """Fold into another view version from now on (one a rebuild activated)."""
        self._fence(view)
        self.runner.use(view)
        self.reputation.use(view)

    def catch_up(self) -> None:
        self.runner.catch_up()
        self.tree_runner.catch_up()
        if self.feed_runner is not None:
            self.feed_runner.catch_up()

    def sign_head(self) -> TreeHead | None:
        """A signed head of the whole log as it stands (None: no signing key).

        The tree is brought up to the log first; a head is signed only when
        the tree grew since the last one, so polling witnesses add no rows.
        """
        if self.signer is None:
            return None
        self.tree_runner.catch_up()
        with self._head_lock:
            self._latest_head = self.tree.head_now(self.signer, self.clock.now(), self._latest_head)
            return self._latest_head

    def switch_version(self) -> bool:
        """Fold into the view version a rebuild activated, if it changed; whether it did."""
        current = self.view
        active = activated_version(current)
        if active is None:
            return False
        self.use(open_view(self.ledger.database_url, version=active))
        log.warning("the follower folds into view version %d", active)
        current.close()
        return True

    def start(self) -> None:
        """Run in a thread of this process until ``stop``."""
        self._thread = threading.Thread(target=self.run, args=(self._stop,), name="follower")
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def run(self, stop: threading.Event) -> None:
        """Follow until ``stop``: while active (always, without a leadership),
        else waiting as a standby until the lock is free."""
        leadership = self.leadership
        try:
            while not stop.is_set():
                if leadership is not None and not self._take(leadership, stop):
                    return
                self._work(stop)
        finally:
            if leadership is not None:
                leadership.release()

    def _take(self, leadership: Leadership, stop: threading.Event) -> bool:
        """Wait until this follower holds the lock (True) or is stopped (False)."""
        while not stop.is_set():
            try:
                if leadership.try_take():
                    return True
            except psycopg.Error:
                log.exception("trying the follower lock failed; trying again")
            stop.wait(self.settings.standby_poll_seconds)
        return False

    def _work(self, stop: threading.Event) -> None:
        """Run every loop until ``stop``, or until the lock is lost."""
        halt = threading.Event()
        loops: list[tuple[str, Callable[[threading.Event], None]]] = [
            ("projection-runner", partial(self._follow_log, self.runner)),
            ("log-tree", partial(self._follow_log, self.tree_runner)),
        ]
        if self.feed_runner is not None:
            loops.append(("penalty-feed", partial(self._follow_log, self.feed_runner)))
        if self.signer is not None:
            loops.append(("tree-heads", self._sign_heads))
        if self.settings.deadline_worker:
            loops.append(("deadline-worker", self._deadlines))
        if self.settings.switch_versions:
            loops.append(("view-versions", self._switch_versions))
        threads = [
            threading.Thread(target=loop, args=(halt,), name=name, daemon=True)
            for name, loop in loops
        ]
        for thread in threads:
            thread.start()
        try:
            while not stop.wait(self.settings.standby_poll_seconds):
                if self.leadership is not None and not self.leadership.held():
                    log.error("this follower lost its lock: it stops and waits as a standby")
                    return
        finally:
            halt.set()
            for thread in threads:
                thread.join()

    def _fence(self, view: ReputationView) -> None:
        if self.leadership is not None and isinstance(view, SqlView):
            view.fence = self.leadership.fence

    def _follow_log(self, runner: LogFollower, halt: threading.Event) -> None:
        """Keep one runner up with the log until ``halt``, starting it again after a failure."""
        while not halt.is_set():
            try:
                runner.follow(
                    halt,
                    poll_seconds=self.settings.poll_seconds,
                    gather_seconds=self.settings.gather_seconds,
                )
            except Exception:
                log.exception("%s failed; restarting", type(runner).__name__)
                halt.wait(RESTART_SECONDS)

    def _sign_heads(self, halt: threading.Event) -> None:
        while not halt.wait(self.settings.tree_head_interval_seconds):
            try:
                self.sign_head()
            except Exception:
                log.exception("signing a tree head failed")

    def _deadlines(self, halt: threading.Event) -> None:
        while True:
            try:
                self.ledger.run_deadlines(self.clock.now())
            except Exception:
                log.exception("deadline worker run failed")
            if halt.wait(self.settings.deadline_interval_seconds):
                return

    def _switch_versions(self, halt: threading.Event) -> None:
        while not halt.wait(self.settings.poll_seconds):
            try:
                self.switch_version()
            except Exception:
                log.exception("checking the active view version failed")
