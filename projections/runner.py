"""Keeps a view up with the log: catch up from its position, then follow.

Batches of up to ``BATCH_EVENTS_MAX`` events are folded and committed with
their last position in one transaction (the library's runner commits once per
event). Following the log, the runner wakes on PostgreSQL's NOTIFY, which the
event store sends on every append, and polls as a fallback in case a
notification is lost (a known gap of the eventsourcing library); on SQLite it polls.
"""

from __future__ import annotations

import select
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import psycopg

from ledger.app import LOG_PAGE_MAX, EventPage, LedgerApp
from ledger.database import parse_database_url
from ledger.events import Event
from projections.views import ReputationView

BATCH_EVENTS_MAX = 150_000
POLL_SECONDS_DEFAULT = 1.0

Progress = Callable[[int, int], None]  # (position reached, events processed so far)


class LogFollower(ABC):
    """Keeps something up with the log (a view, the log tree) in batches of events."""

    def __init__(self, app: LedgerApp, *, batch_events: int, batch_events_max: int) -> None:
        if not 1 <= batch_events <= batch_events_max:
            raise ValueError(f"batch_events is 1-{batch_events_max}")
        self.app = app
        self.batch_events = batch_events
        # A follower thread and readers asking to read their own writes may
        # both catch up: batches are taken one at a time.
        self._lock = threading.Lock()

    @abstractmethod
    def catch_up(self) -> int:
        """Process everything the log holds now; how many events."""

    def follow(
        self,
        stop: threading.Event,
        *,
        poll_seconds: float = POLL_SECONDS_DEFAULT,
        gather_seconds: float = 0.0,
    ) -> None:
        """Catch up, then keep up until ``stop`` is set; woken by an append, wait
        ``gather_seconds`` for those that follow it before catching up."""
        with Waker(self.app.database_url) as waker:
            while not stop.is_set():
                self.catch_up()
                waker.wait(poll_seconds, stop, gather_seconds=gather_seconds)


class Runner(LogFollower):
    """Keeps a reputation view up with the log."""

    def __init__(
        self, app: LedgerApp, view: ReputationView, *, batch_events: int = BATCH_EVENTS_MAX
    ) -> None:
        super().__init__(app, batch_events=batch_events, batch_events_max=BATCH_EVENTS_MAX)
        self.view = view
        self._topics = view.topics()

    def use(self, view: ReputationView) -> None:
        """Fold into another view from now on (a rebuilt version readers switched to)."""
        with self._lock:  # not while a batch is being folded into the old one
            self.view = view
            self._topics = view.topics()

    def run_batch(self) -> int:
        """Fold the next batch after the view's position; how many log events it covered."""
        with self._lock:
            batch = self._read(self.view.position())
            if batch.read:
                self.view.process(batch.events, reached=batch.reached)
            return batch.read

    def _read(self, after: int) -> EventPage:
        """Up to ``batch_events`` events of the log after a position, those the
        view folds decoded (the others are left out, their positions counted)."""
        events: list[tuple[int, Event]] = []
        read, reached = 0, after
        while read < self.batch_events:
            limit = min(LOG_PAGE_MAX, self.batch_events - read)
            page = self.app.read_events(reached, limit, topics=self._topics)
            events.extend(page.events)
            read, reached = read + page.read, page.reached
            if page.read < limit:
                break
        return EventPage(events, read, reached)

    def catch_up(self, progress: Progress | None = None, *, until: int | None = None) -> int:
        """Process everything the log holds now (or up to ``until``); events processed.

        While the view writes one batch (waiting on the database), a reader
        thread reads and decodes the next: a rebuild keeps the CPU busy.
        """
        processed = 0
        with self._lock, ThreadPoolExecutor(1, thread_name_prefix="log-reader") as reader:
            batch: EventPage | None = self._read(self.view.position())
            while batch is not None and batch.read:
                position = batch.reached
                more = batch.read == self.batch_events and (until is None or position < until)
                ahead = reader.submit(self._read, position) if more else None
                self.view.process(batch.events, reached=position)
                processed += batch.read
                if progress is not None:
                    progress(position, processed)
                batch = ahead.result() if ahead is not None else None
        return processed


class Waker:
    """Waits for the next append: LISTEN/NOTIFY on PostgreSQL, a timer elsewhere."""

    def __init__(self, database_url: str) -> None:
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        place = parse_database_url(database_url)
        if place.kind == "postgresql":
            self._conn = psycopg.connect(place.conninfo, autocommit=True)
            # The event store notifies the channel named after its events table.
            self._conn.execute(f'LISTEN "{LedgerApp.name}_events"')

    def __enter__(self) -> Waker:
        return self

    def __exit__(self, *_: object) -> None:
        if self._conn is not None:
            self._conn.close()

    def wait(self, seconds: float, stop: threading.Event, *, gather_seconds: float = 0.0) -> None:
        """Until an append is notified and ``gather_seconds`` more have passed,
        ``seconds`` have passed, or ``stop`` is set."""
        if self._conn is None:
            stop.wait(seconds)
            return
        deadline = time.monotonic() + seconds
        while not stop.is_set() and time.monotonic() < deadline:
            ready, _, _ = select.select([self._conn.fileno()], [], [], min(0.2, seconds))
            if ready:
                # Let the appends right behind this one arrive too: one batch
                # of many events costs the follower far less than many small ones.
                stop.wait(gather_seconds)
                for _ in self._conn.notifies(timeout=0):
                    pass
                return
