"""The ledger's event store, and the one way decided aggregates reach it.

``LedgerWriter`` sets up where the log lives (the recorder for memory, SQLite
or PostgreSQL, and the msgspec mapper) and what every writer shares: the clock
and policy a decision runs under, readings of the aggregates (remembered or
stored), and ``write``, which saves an aggregate's new events with its next
deadline and the command's idempotency record in one transaction, grouped
with other commands waiting to save (``group_commit``). The commands
(``LedgerApp``) and the deadline worker (``deadlines``) both write through it.

The bulk path (``append_imported``) writes events already checked elsewhere
(imports, restores, simulations) in one transaction per batch, as fast as the
store allows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Mapper
from eventsourcing.popo import POPOFactory

from ledger.aggregate import Aggregate, Context
from ledger.clock import Clock, SystemClock
from ledger.codec import MsgspecMapper, stored_rows
from ledger.database import database_url_from_environment, persistence_env
from ledger.errors import ErrorCode, InvalidInputError
from ledger.events import Event
from ledger.group_commit import GroupCommitter, Pending
from ledger.policy import DEFAULT_RULEBOOK, PolicyBook, load_policy
from ledger.reading import Reading, stored_history
from ledger.recent_events import RecentEvents
from ledger.store import (
    DeadlineUpdate,
    IdempotencyRecord,
    LedgerRecorder,
    MemoryLedgerRecorder,
    PostgresLedgerRecorder,
)
from ledger.trade import Trade

A = TypeVar("A", bound=Aggregate)

IMPORT_BATCH_EVENTS_MAX = 50_000


def _deadlines(aggregates: Sequence[Aggregate]) -> list[DeadlineUpdate]:
    """The next due time of each trade saved, for the deadline index."""
    return [
        DeadlineUpdate(aggregate.id, aggregate.next_deadline())
        for aggregate in aggregates
        if isinstance(aggregate, Trade)
    ]


class LedgerWriter(Application[UUID]):
    def __init__(
        self,
        database_url: str | None = None,
        *,
        clock: Clock | None = None,
        rulebook: str = DEFAULT_RULEBOOK,
        env: dict[str, str] | None = None,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.book: PolicyBook = load_policy(rulebook)
        self.database_url = database_url or database_url_from_environment()
        super().__init__(env={**persistence_env(self.database_url), **(env or {})})
        self.recent = RecentEvents()
        self._committer = GroupCommitter(self._save_together)

    # --- Where the log lives ---------------------------------------------------------

    def construct_mapper(self) -> Mapper[UUID]:
        return MsgspecMapper()

    def construct_recorder(self) -> Any:
        if isinstance(self.factory, POPOFactory):
            return MemoryLedgerRecorder()
        return self.factory.application_recorder()

    @property
    def ledger_recorder(self) -> LedgerRecorder:
        recorder: LedgerRecorder = self.recorder  # type: ignore[assignment]
        return recorder

    # --- What a decision runs under ------------------------------------------------------

    def context(self, recorded_by: str | None = None) -> Context:
        return Context(recorded_at=self.clock.now(), book=self.book, recorded_by=recorded_by)

    def reading(self, *, fresh: bool, remembered_only: bool = False) -> Reading:
        """A new reading of the aggregates: ``fresh`` reads the store for every
        one; ``remembered_only`` never reads it (``StoreNeeded`` instead)."""
        return Reading(self.events, self.recent, fresh=fresh, remembered_only=remembered_only)

    def stored(self, kind: type[A], aggregate_id: UUID) -> A | None:
        """An aggregate as the store holds it now (for tools and auditors)."""
        return kind.replay(aggregate_id, stored_history(self.events, aggregate_id))

    # --- Saving ----------------------------------------------------------------------

    def write(
        self,
        aggregates: Sequence[Aggregate],
        *,
        idempotency: Sequence[IdempotencyRecord],
        events: Sequence[Event] | None = None,
    ) -> list[int]:
        """Save the aggregates' new events, their next deadlines and the idempotency
        records in one transaction; the log positions written.

        An ``IntegrityError`` means another writer moved an aggregate on first (or
        took the key): the aggregates are forgotten, so the next reading of them
        is the store's.
        """
        if events is None:
            events = [event for aggregate in aggregates for event in aggregate.collect_events()]
        try:
            positions = self._committer.commit(events, idempotency, _deadlines(aggregates))
        except BaseException:
            self.recent.forget(aggregate.id for aggregate in aggregates)
            raise
        self.recent.extend(events)
        return positions

    def write_then(
        self,
        aggregates: Sequence[Aggregate],
        *,
        idempotency: Sequence[IdempotencyRecord],
        events: Sequence[Event],
        done: Callable[[list[int] | None, Exception | None], None],
    ) -> None:
        """As ``write``, without waiting: the group committer's writer thread
        saves the writes with whatever else is in line and calls ``done`` with
        the positions, or the error (then the aggregates are forgotten)."""

        def saved(pending: Pending) -> None:
            if pending.error is not None:
                self.recent.forget(aggregate.id for aggregate in aggregates)
                done(None, pending.error)
                return
            self.recent.extend(events)
            done(pending.positions, None)

        self._committer.submit(events, idempotency, _deadlines(aggregates), saved)

    def close(self) -> None:
        self._committer.close()
        super().close()

    def _save_together(
        self,
        events: Sequence[Event],
        idempotency: Sequence[IdempotencyRecord],
        deadlines: Sequence[DeadlineUpdate],
    ) -> list[int]:
        """One transaction for the writes of one command, or of a group of them."""
        recordings = self.save(*events, idempotency=idempotency, deadlines=deadlines)
        return [recording.notification.id for recording in recordings]

    def append_imported(
        self, events: Sequence[Event], deadlines: Sequence[DeadlineUpdate]
    ) -> list[int]:
        """Append 1 to ``IMPORT_BATCH_EVENTS_MAX`` events, already checked against the
        aggregates they belong to, in one transaction; their log positions.

        A version clash with what the store holds still fails the whole batch,
        and nothing of it is written.
        """
        if not 1 <= len(events) <= IMPORT_BATCH_EVENTS_MAX:
            raise InvalidInputError(
                ErrorCode.BATCH_TOO_LARGE, f"an import batch is 1-{IMPORT_BATCH_EVENTS_MAX} events"
            )
        # Imported events bypass the commands: forget what they continue.
        self.recent.forget({event.originator_id for event in events})
        if isinstance(self.recorder, PostgresLedgerRecorder):
            return self.recorder.copy_events(stored_rows(events), deadlines)
        # Straight to the event store: the application's save() checks every
        # event against a runtime protocol, which a bulk path can do without.
        recordings = self.events.put(list(events), idempotency=(), deadlines=deadlines)
        return [recording.notification.id for recording in recordings]
