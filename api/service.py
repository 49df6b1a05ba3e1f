"""The running service: the ledger, its view, the runner and the deadline worker."""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from pathlib import Path

import msgspec

from api.auth import KeyRing, Role
from api.metrics import Metrics
from api.settings import Settings
from ledger.app import LedgerApp
from ledger.clock import Clock, SystemClock
from ledger.tree_head import TreeHead, TreeHeadSigner
from projections.log_tree import LogTree, LogTreeRunner, open_log_tree
from projections.queries import Reputation
from projections.runner import Runner
from projections.views import ReputationView, SqlView, open_view

log = logging.getLogger("trustledger")

# How long after reads switch to a rebuilt view version the old one's
# connections are closed: longer than any request takes.
OLD_VIEW_CLOSE_SECONDS = 60.0
# How often a server looks whether its keys file changed: a revoked key stops
# working within this time, without a restart.
KEYS_RELOAD_SECONDS = 1.0
# How long a request may wait for the view to reach the position it asked for.
READ_YOUR_WRITES_MAX_BATCHES = 100


class Readiness(msgspec.Struct, frozen=True):
    """Where the log and the view stand, for /readyz."""

    log_position: int
    view_position: int
    lag_events: int
    lag_seconds: float
    view_version: int | None  # None: a view in memory


class Service:
    def __init__(self, settings: Settings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.ledger = LedgerApp(settings.database_url, clock=self.clock, rulebook=settings.rulebook)
        self.view: ReputationView = open_view(settings.database_url)
        self.runner = Runner(self.ledger, self.view)
        self.reputation = Reputation(
            self.view,
            self.clock,
            default_rulebook=settings.rulebook,
            time_at=self.ledger.recorded_at,
        )
        self.keys = KeyRing([]) if settings.dev_keys else KeyRing.load(settings.keys_file)
        self._keys_seen = _file_stamp(settings.keys_file)
        self.tree: LogTree = open_log_tree(settings.database_url)
        self.tree_runner = LogTreeRunner(self.ledger, self.tree)
        self.signer = self._signer(settings)
        self._head_lock = threading.Lock()
        # The last head signed, so an unchanged tree is not signed again.
        self._latest_head: TreeHead | None = self.tree.latest_head()
        self.metrics = Metrics()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def dev_keys(self) -> dict[Role, str]:
        """One fresh key per role, their hashes in the development keys file only."""
        plain = {role: self.keys.add(role) for role in Role}
        self.keys.save(self.settings.dev_keys_file)
        return plain

    def start(self, *, background: bool = True) -> None:
        if self.settings.dev_keys:
            for role, key in self.dev_keys().items():
                print(f"development key, role {role:<8} {key}", flush=True)
        self.runner.catch_up()
        self.tree_runner.catch_up()
        if not background:
            return
        self._spawn("projection-runner", self._follow)
        self._spawn("view-versions", self._follow_versions)
        if not self.settings.dev_keys:
            self._spawn("keys", self._follow_keys)
        self._spawn("log-tree", self._follow_tree)
        if self.signer is not None:
            self._spawn("tree-heads", self._sign_heads)
        if self.settings.deadline_worker:
            self._spawn("deadline-worker", self._deadlines)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self.view.close()
        self.tree.close()
        self.ledger.close()

    def tree_head(self) -> TreeHead | None:
        """A signed head of the whole log as it stands (None: no signing key).

        The tree is brought up to the log first; a head is signed only when
        the tree grew since the last one, so polling witnesses add no rows.
        """
        if self.signer is None:
            return None
        self.tree_runner.catch_up()
        with self._head_lock:
            latest = self._latest_head
            if latest is None or latest.tree_size != self.tree.size:
                latest = self.tree.sign_head(self.signer, self.clock.now())
                self._latest_head = latest
            return latest

    @staticmethod
    def _signer(settings: Settings) -> TreeHeadSigner | None:
        if settings.tree_head_key is not None:
            return TreeHeadSigner.from_file(settings.tree_head_key)
        if settings.dev_keys:
            log.warning("no tree head key configured: signing with a key made for this run only")
            return TreeHeadSigner.generate()
        return None

    def catch_up_to(self, position: int) -> None:
        """Read your writes: fold the log until the view reflects ``position``."""
        for _ in range(READ_YOUR_WRITES_MAX_BATCHES):
            if self.view.position() >= position or self.runner.run_batch() == 0:
                return

    def readiness(self) -> Readiness:
        """Where the log and the view stand, each read once."""
        head = self.ledger.recorder.max_notification_id() or 0
        view = self.view
        position = view.position()
        version = view.version if isinstance(view, SqlView) else None
        if head <= position:
            return Readiness(head, position, 0, 0.0, version)
        # Positions can have gaps (rolled-back appends): this counts them too,
        # which is an upper bound that costs no scan of the log.
        seconds = 0.0
        first = self.ledger.read_log(position, 1)
        if first:
            recorded: datetime = self.ledger.decode(first[0]).recorded_at
            seconds = max((self.clock.now() - recorded).total_seconds(), 0.0)
        return Readiness(head, position, head - position, seconds, version)

    def lag(self) -> tuple[int, float]:
        """How far the view trails the log: in events, and in seconds of recording time."""
        readiness = self.readiness()
        return readiness.lag_events, readiness.lag_seconds

    def _spawn(self, name: str, target: object) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                self.runner.follow(self._stop, poll_seconds=self.settings.projection_poll_seconds)
            except Exception:
                log.exception("projection runner failed; restarting")
                self._stop.wait(1.0)

    def follow_active_version(self) -> bool:
        """Switch reads and folding to the view version readers are to use, if a
        rebuild has switched it; whether it did.

        The swap is a reference change, so each request answers wholly from
        one version. The old version's connections are closed
        ``OLD_VIEW_CLOSE_SECONDS`` later, once the requests already on it have
        finished; its tables are dropped by the rebuild after its own grace.
        """
        current = self.view
        if not isinstance(current, SqlView):
            return False  # a memory view lives in this process only
        active = current.active_version()
        if active == current.version:
            return False
        switched = open_view(self.settings.database_url, version=active)
        self.runner.use(switched)
        self.reputation.use(switched)
        self.view = switched
        log.warning("reads switched to view version %d (was %d)", active, current.version)
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

    def _follow_tree(self) -> None:
        while not self._stop.is_set():
            try:
                self.tree_runner.follow(
                    self._stop, poll_seconds=self.settings.projection_poll_seconds
                )
            except Exception:
                log.exception("log tree runner failed; restarting")
                self._stop.wait(1.0)

    def _sign_heads(self) -> None:
        while not self._stop.wait(self.settings.tree_head_interval_seconds):
            try:
                self.tree_head()
            except Exception:
                log.exception("signing a tree head failed")

    def _deadlines(self) -> None:
        while True:
            try:
                self.ledger.run_deadlines(self.clock.now())
            except Exception:
                log.exception("deadline worker run failed")
            if self._stop.wait(self.settings.deadline_interval_seconds):
                return


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when a file is replaced or written (None: no file)."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return (status.st_ino, status.st_mtime_ns, status.st_size)
