"""The events of recently used aggregates, so a command need not read them back.

A trade takes a handful of commands over days; reading its events from the
store for each one costs a round trip and a query's worth of CPU, which is
what limited concurrent appends. This keeps the complete event history of the
``aggregates_max`` most recently used aggregates.

It is a hint, never the truth: the store decides. A command decided on
remembered events that another process has since extended fails to save (the
store refuses a second event with the same aggregate version) and is decided
again on what the store holds; so is a refusal (each attempt's ``Reading``
says whether it used remembered events; ``LedgerApp._execute``). Only
whole histories are kept — events 1..n of an aggregate — and an aggregate is
forgotten whenever a save of it fails, so the memory never runs ahead of the
store. Events are immutable Structs, safe to share between threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from uuid import UUID

from ledger.events import Event

# About 3 KB per trade's history (five or six events): some 60 MB at most.
AGGREGATES_REMEMBERED_MAX = 20_000


class RecentEvents:
    def __init__(self, aggregates_max: int = AGGREGATES_REMEMBERED_MAX) -> None:
        if not 0 <= aggregates_max <= AGGREGATES_REMEMBERED_MAX:
            raise ValueError(f"aggregates_max is 0-{AGGREGATES_REMEMBERED_MAX}")
        self.aggregates_max = aggregates_max
        self._histories: OrderedDict[UUID, tuple[Event, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def history(self, aggregate_id: UUID) -> tuple[Event, ...] | None:
        """The remembered events of an aggregate, oldest first (None: not remembered)."""
        with self._lock:
            events = self._histories.get(aggregate_id)
            if events is not None:
                self._histories.move_to_end(aggregate_id)
            return events

    def keep(self, aggregate_id: UUID, events: Sequence[Event]) -> None:
        """Remember a history read from the store, unless a longer one is known."""
        if not events or not self.aggregates_max:
            return
        with self._lock:
            known = self._histories.get(aggregate_id)
            if known is None or len(known) < len(events):
                self._remember(aggregate_id, tuple(events))

    def extend(self, saved: Iterable[Event]) -> None:
        """Add events the store has just accepted to the histories they continue."""
        with self._lock:
            for event in saved:
                aggregate_id = event.originator_id
                known = self._histories.get(aggregate_id, ())
                if len(known) == event.originator_version - 1:
                    self._remember(aggregate_id, (*known, event))
                else:  # a gap: what we hold no longer matches the store
                    self._histories.pop(aggregate_id, None)

    def forget(self, aggregate_ids: Iterable[UUID]) -> None:
        with self._lock:
            for aggregate_id in aggregate_ids:
                self._histories.pop(aggregate_id, None)

    def _remember(self, aggregate_id: UUID, events: tuple[Event, ...]) -> None:
        if not self.aggregates_max:
            return
        self._histories[aggregate_id] = events
        self._histories.move_to_end(aggregate_id)
        while len(self._histories) > self.aggregates_max:
            self._histories.popitem(last=False)
