"""How one attempt at a command reads the aggregates it decides on.

A first attempt may read remembered histories (``RecentEvents``), which spare
a store round trip but may be stale if another process has written since.
Its reading records whether it used any, so that a refusal drawn from them is
checked once more on a fresh reading of the store (``LedgerApp._execute``).

An id a command is to create (a new trade, member or complaint) is not
looked up on a first attempt unless remembered: it is taken as free, and the
store, which holds one first event per aggregate, refuses the save if it was
not. The reading records that it assumed so (``assumed_new``), and the
command is then decided again on a fresh reading, which refuses it as the
aggregate's rules say (``trade_exists``...). Creating costs no read.

Each attempt gets a reading of its own, handed to whatever decides: what one
attempt read never steers another command, another attempt or another thread.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar
from uuid import UUID

from eventsourcing.persistence import EventStore

from ledger.aggregate import Aggregate
from ledger.complaint import Complaint, known_complaint
from ledger.events import Event
from ledger.ids import complaint_aggregate_id, member_aggregate_id, trade_aggregate_id
from ledger.member import Member, registered_member
from ledger.recent_events import RecentEvents
from ledger.trade import Trade, known_trade

A = TypeVar("A", bound=Aggregate)


def stored_history(store: EventStore[UUID], aggregate_id: UUID) -> tuple[Event, ...]:
    """An aggregate's events as the store holds them, oldest first."""
    events = tuple(store.get(aggregate_id))
    for event in events:
        if not isinstance(event, Event):
            raise TypeError(f"{aggregate_id} holds a non-ledger event")
    return events  # type: ignore[return-value]


class StoreNeeded(Exception):
    """A reading that may not touch the store met an aggregate it does not remember."""


class Reading:
    def __init__(
        self,
        store: EventStore[UUID],
        recent: RecentEvents,
        *,
        fresh: bool,
        remembered_only: bool = False,
    ) -> None:
        if fresh and remembered_only:
            raise ValueError("a fresh reading reads the store")
        self._store = store
        self._recent = recent
        self.fresh = fresh  # read the store even where a history is remembered
        # Never read the store (a decision on the event loop): StoreNeeded instead.
        self.remembered_only = remembered_only
        self.remembered = False  # whether any aggregate came from a remembered history
        self.assumed_new = False  # whether an id was taken as free without asking the store

    def load(self, kind: type[A], aggregate_id: UUID) -> A | None:
        """An aggregate as this attempt sees it (None: it has no events yet)."""
        events = None if self.fresh else self._recent.history(aggregate_id)
        if events is not None:
            self.remembered = True
        elif self.remembered_only:
            raise StoreNeeded(aggregate_id)
        else:
            events = stored_history(self._store, aggregate_id)
            self._recent.keep(aggregate_id, events)
        return kind.replay(aggregate_id, events)

    def new(self, kind: type[A], aggregate_id: UUID) -> A | None:
        """The aggregate a command means to create, if it exists (None: the id is free)."""
        if self.fresh:
            return self.load(kind, aggregate_id)
        events = self._recent.history(aggregate_id)
        if events is None:
            self.assumed_new = True
            return None
        self.remembered = True
        return kind.replay(aggregate_id, events)

    # The aggregates a command names, refused (unknown, or out of order) as the
    # aggregates' own rules say.

    def trade(self, trade_id: str) -> Trade:
        return known_trade(self.load(Trade, trade_aggregate_id(trade_id)), trade_id)

    def member(self, member_id: str, at: datetime) -> Member:
        return registered_member(self.load(Member, member_aggregate_id(member_id)), member_id, at)

    def complaint(self, complaint_id: str) -> Complaint:
        aggregate_id = complaint_aggregate_id(complaint_id)
        return known_complaint(self.load(Complaint, aggregate_id), complaint_id)
