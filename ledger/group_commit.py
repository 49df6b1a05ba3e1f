"""Group commit: concurrent commands saved together in one transaction.

Each command is decided on its own (by its own thread), then handed here.
The first thread to arrive leads: it takes up to ``GROUP_COMMANDS_MAX``
waiting commands and saves all their events, idempotency records and
deadline updates in one transaction, then hands the lead to the next waiting
thread, if any. When the shared save fails — one command lost a race for an
aggregate version or reused a key — every command of that group is saved
again on its own, so one conflict never fails the others: each caller gets
its own positions or its own error. When the store itself fails (unreachable,
timed out), every command of the group gets that error.

A command may also be handed over without its thread waiting (``submit``):
it is then saved by the committer's own writer thread, which calls it back
with the positions or the error. The HTTP service hands its appends over so
(``LedgerApp.prepare``): no thread blocks per append while its group saves.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from eventsourcing.persistence import IntegrityError

from ledger.events import Event
from ledger.store import DeadlineUpdate, IdempotencyRecord

log = logging.getLogger("trustledger.group_commit")

GROUP_COMMANDS_MAX = 256

Save = Callable[[Sequence[Event], Sequence[IdempotencyRecord], Sequence[DeadlineUpdate]], list[int]]
Done = Callable[["Pending"], None]
# How long ``close`` waits for the writer thread to save what it was handed.
WRITER_CLOSE_SECONDS = 30.0
WRITER_CLOSE_PAUSE_SECONDS = 0.05


class Pending:
    """One decided command waiting for its group's transaction."""

    def __init__(
        self,
        events: Sequence[Event],
        idempotency: Sequence[IdempotencyRecord],
        deadlines: Sequence[DeadlineUpdate],
        done: Done | None = None,
    ) -> None:
        self.events, self.idempotency, self.deadlines = events, idempotency, deadlines
        self.positions: list[int] | None = None
        self.error: Exception | None = None
        self.finished = False
        self.promoted = False
        # A waiting thread's wake-up, or the callback of a command handed over.
        self.done = done
        self.wake = threading.Event() if done is None else None


def _call_back(pending: Pending) -> None:
    """A handed-over command's callback; one that fails is logged, so the
    others of its group are still called and the writer thread goes on."""
    if pending.done is None:
        return
    try:
        pending.done(pending)
    except Exception:
        log.exception("a saved command's callback failed")


class GroupCommitter:
    def __init__(self, save: Save, *, commands_max: int = GROUP_COMMANDS_MAX) -> None:
        if not 1 <= commands_max <= GROUP_COMMANDS_MAX:
            raise ValueError(f"commands_max is 1-{GROUP_COMMANDS_MAX}")
        self._save = save
        self._commands_max = commands_max
        self._lock = threading.Lock()
        self._queue: list[Pending] = []
        self._leading = False
        self.groups = 0  # transactions attempted, for metrics and tests
        # The writer thread, started by the first command handed over; it
        # leads when the next command in line has no thread of its own.
        self._writer: threading.Thread | None = None
        self._writer_due = threading.Event()
        self._writer_leads = False  # the lead was handed to the writer thread
        self._closing = False

    def submit(
        self,
        events: Sequence[Event],
        idempotency: Sequence[IdempotencyRecord],
        deadlines: Sequence[DeadlineUpdate],
        done: Done,
    ) -> None:
        """Hand one command's writes over without waiting: ``done`` is called
        (on the thread that saved them) with the command's ``Pending``, which
        holds its positions or its error. It must be quick and must not block."""
        pending = Pending(events, idempotency, deadlines, done)
        with self._lock:
            if self._closing:
                raise RuntimeError("the group committer is closed")
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write, name="group-commit-writer", daemon=True
                )
                self._writer.start()
            self._queue.append(pending)
            if not self._leading:
                self._leading = True
                self._hand_lead_to_writer()

    def close(self) -> None:
        """Save what was handed over, then stop the writer thread."""
        with self._lock:
            self._closing = True
            writer = self._writer
        deadline = time.monotonic() + WRITER_CLOSE_SECONDS
        while writer is not None and writer.is_alive() and time.monotonic() < deadline:
            self._writer_due.set()  # wakes it to look whether the line is empty
            writer.join(timeout=WRITER_CLOSE_PAUSE_SECONDS)

    def _hand_lead_to_writer(self) -> None:
        """Under the lock."""
        self._writer_leads = True
        self._writer_due.set()

    def _write(self) -> None:
        """The writer thread: lead, when handed the lead, while the commands
        in line have no thread of their own."""
        while True:
            self._writer_due.wait()
            self._writer_due.clear()
            with self._lock:
                leads, self._writer_leads = self._writer_leads, False
            while leads and self._commit_next_group(by_writer=True):
                pass
            with self._lock:
                if self._closing and not self._queue and not self._writer_leads:
                    return

    def commit(
        self,
        events: Sequence[Event],
        idempotency: Sequence[IdempotencyRecord],
        deadlines: Sequence[DeadlineUpdate],
    ) -> list[int]:
        """Save one command's writes with whatever else is waiting; its positions."""
        pending = Pending(events, idempotency, deadlines)
        with self._lock:
            self._queue.append(pending)
            lead = not self._leading
            self._leading = True
        while True:
            if lead:
                self._commit_next_group(by_writer=False)
            with self._lock:
                if pending.finished:
                    break
            wake = pending.wake
            if wake is None:
                raise RuntimeError("a waiting command has no wake-up")
            wake.wait()
            with self._lock:
                wake.clear()
                if pending.finished:
                    break
                lead, pending.promoted = pending.promoted, False
        if pending.error is not None:
            raise pending.error
        if pending.positions is None:
            raise RuntimeError("a finished command has neither positions nor an error")
        return pending.positions

    def _commit_next_group(self, *, by_writer: bool) -> bool:
        """Save the next group; whether the caller keeps the lead (the writer
        thread does while the next command in line was handed over)."""
        with self._lock:
            group = self._queue[: self._commands_max]
            del self._queue[: self._commands_max]
        keep = False
        try:
            self._save_group(group)
        finally:
            with self._lock:
                for pending in group:
                    pending.finished = True
                    if pending.wake is not None:
                        pending.wake.set()
                keep = self._pass_lead(by_writer=by_writer)
            for pending in group:
                if pending.done is not None:
                    _call_back(pending)
        return keep

    def _pass_lead(self, *, by_writer: bool) -> bool:
        """Under the lock: who leads next. A waiting thread is promoted; a
        command handed over is led by the writer thread."""
        if not self._queue:
            self._leading = False
            return False
        successor = self._queue[0]
        if successor.wake is not None:
            successor.promoted = True
            successor.wake.set()
            return False
        if by_writer:
            return True
        self._hand_lead_to_writer()
        return False

    def _save_group(self, group: list[Pending]) -> None:
        self.groups += 1
        if len(group) > 1:
            try:
                positions = self._save(
                    [e for p in group for e in p.events],
                    [r for p in group for r in p.idempotency],
                    [d for p in group for d in p.deadlines],
                )
            except IntegrityError:
                pass  # someone in the group conflicts: save each on its own below
            except Exception as error:  # the store failed the whole group: each caller hears it
                for pending in group:
                    pending.error = error
                return
            else:
                start = 0
                for pending in group:
                    pending.positions = positions[start : start + len(pending.events)]
                    start += len(pending.events)
                return
        for pending in group:
            try:
                pending.positions = self._save(
                    pending.events, pending.idempotency, pending.deadlines
                )
            except Exception as error:  # each caller gets its own error, whatever it is
                pending.error = error
