"""Reading the log in position order: what projections fold, auditors check and
tools export.

Three shapes of the same rows: notifications (as the event store library
gives them), decoded events with their positions, and the stored rows
undecoded (what the Merkle tree hashes). A page is 1 to ``LOG_PAGE_MAX`` rows,
whoever reads it.
"""

from __future__ import annotations

from collections.abc import Container, Iterator
from datetime import datetime

import msgspec
from eventsourcing.persistence import Notification

from ledger.codec import decode_stored
from ledger.errors import ErrorCode, InvalidInputError
from ledger.events import Event
from ledger.store import StoredEntry
from ledger.writer import LedgerWriter

LOG_PAGE_MAX = 10_000
# Positions can have gaps (a rolled-back append on PostgreSQL consumes ids);
# looking back this far finds the event at or before a position.
POSITION_LOOKBACK_MAX = 1_000


class EventPage(msgspec.Struct, frozen=True):
    """Events read after a position: those decoded, how many rows were read
    and the last position read (the one asked after when none was)."""

    events: list[tuple[int, Event]]
    read: int
    reached: int


def _check_page(limit: int) -> None:
    if not 1 <= limit <= LOG_PAGE_MAX:
        raise InvalidInputError(
            ErrorCode.BATCH_TOO_LARGE, f"limit is 1-{LOG_PAGE_MAX}", field="limit"
        )


class LogReader:
    def __init__(self, ledger: LedgerWriter) -> None:
        self._ledger = ledger

    def read_log(self, after: int = 0, limit: int = 1_000) -> list[Notification]:
        _check_page(limit)
        return list(
            self._ledger.recorder.select_notifications(
                start=after, limit=limit, inclusive_of_start=False
            )
        )

    def read_events(
        self, after: int = 0, limit: int = 1_000, *, topics: Container[str] | None = None
    ) -> EventPage:
        """The decoded events after a position, with their positions: what projections fold.

        With ``topics``, only events of those topics are decoded and returned
        (a projection skips the facts it never folds; ``verify`` is what
        checks every stored body); the page still says how far it read.
        """
        _check_page(limit)
        rows = self._ledger.ledger_recorder.select_entries(after, limit)
        events = [
            (position, decode_stored(position, topic, state))
            for position, topic, state in rows
            if topics is None or topic in topics
        ]
        return EventPage(events, read=len(rows), reached=rows[-1][0] if rows else after)

    def read_stored(self, after: int = 0, limit: int = 1_000) -> list[StoredEntry]:
        """The stored rows after a position as written, undecoded: what the Merkle tree hashes."""
        _check_page(limit)
        return self._ledger.ledger_recorder.select_stored(after, limit)

    def iter_log(self, after: int = 0, page: int = 1_000) -> Iterator[Notification]:
        while True:
            notifications = self.read_log(after, page)
            yield from notifications
            if len(notifications) < page:
                return
            after = notifications[-1].id

    def recorded_at(self, position: int) -> datetime | None:
        """When the ledger recorded the last event at or before a position (None: before the log)."""
        low = max(position - POSITION_LOOKBACK_MAX, 0)
        found = self._ledger.recorder.select_notifications(
            start=low, limit=POSITION_LOOKBACK_MAX, stop=position
        )
        return self.decode(found[-1]).recorded_at if found else None

    def decode(self, notification: Notification) -> Event:
        event = self._ledger.mapper.to_domain_event(notification)
        if not isinstance(event, Event):
            raise TypeError(f"position {notification.id} holds no ledger event")
        return event
