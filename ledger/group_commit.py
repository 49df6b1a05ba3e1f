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
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from eventsourcing.persistence import IntegrityError

from ledger.events import Event
from ledger.store import DeadlineUpdate, IdempotencyRecord

GROUP_COMMANDS_MAX = 256

Save = Callable[[Sequence[Event], Sequence[IdempotencyRecord], Sequence[DeadlineUpdate]], list[int]]


class Pending:
    """One decided command waiting for its group's transaction."""

    def __init__(
        self,
        events: Sequence[Event],
        idempotency: Sequence[IdempotencyRecord],
        deadlines: Sequence[DeadlineUpdate],
    ) -> None:
        self.events, self.idempotency, self.deadlines = events, idempotency, deadlines
        self.positions: list[int] | None = None
        self.error: Exception | None = None
        self.finished = False
        self.promoted = False
        self.wake = threading.Event()


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
                self._commit_next_group()
            with self._lock:
                if pending.finished:
                    break
            pending.wake.wait()
            with self._lock:
                pending.wake.clear()
                if pending.finished:
                    break
                lead, pending.promoted = pending.promoted, False
        if pending.error is not None:
            raise pending.error
        if pending.positions is None:
            raise RuntimeError("a finished command has neither positions nor an error")
        return pending.positions

    def _commit_next_group(self) -> None:
        with self._lock:
            group = self._queue[: self._commands_max]
            del self._queue[: self._commands_max]
        try:
            self._save_group(group)
        finally:
            with self._lock:
                for pending in group:
                    pending.finished = True
                    pending.wake.set()
                if self._queue:
                    successor = self._queue[0]
                    successor.promoted = True
                    successor.wake.set()
                else:
                    self._leading = False

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
