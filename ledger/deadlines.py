"""The deadline worker: fires the deadlines of aggregates nobody touches.

A command settles its own aggregate's due deadlines before deciding; the
worker is for the rest. It asks the store's deadline index which trades are
due and settles each, writing what fires as the trade's next events.

Safe to run from several workers (or processes) at once: a trade settled by
another worker or by a command meanwhile fails to save, is forgotten, and is
looked at again on what the store holds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

import msgspec
from eventsourcing.persistence import IntegrityError

from ledger.errors import ErrorCode, InvalidInputError
from ledger.trade import Trade
from ledger.writer import LedgerWriter

DEADLINE_BATCH_MAX = 500
DEADLINE_ROUNDS_MAX = 1_000
DEADLINE_RETRIES_MAX = 3
# What the facts the worker fires name as their recorder.
DEADLINE_WORKER = "trustledger:deadlines"
# Due trades an operator's count stops at (the count reads the index's range).
DEADLINES_COUNTED_MAX = 10_000


class DeadlineRun(msgspec.Struct, frozen=True):
    """What one run of the deadline worker did: the trades it looked at, the facts it wrote."""

    now: Annotated[datetime, msgspec.Meta(tz=True)]
    trades_settled: int
    positions: tuple[int, ...]


def run_deadlines(writer: LedgerWriter, now: datetime) -> DeadlineRun:
    """Fire every unfired deadline due at or before ``now``, never earlier."""
    if now.tzinfo is None:
        raise InvalidInputError(ErrorCode.INVALID_INPUT, "now needs a timezone", field="now")
    now = now.astimezone(UTC)
    writer.context().check_not_future(now, field="now")
    positions: list[int] = []
    settled = 0
    for _ in range(DEADLINE_ROUNDS_MAX):
        due = writer.ledger_recorder.due_aggregates(now, DEADLINE_BATCH_MAX)
        fired = [p for aggregate_id in due for p in _settle_one(writer, aggregate_id, now)]
        settled += len(due)
        positions.extend(fired)
        if len(due) < DEADLINE_BATCH_MAX or not fired:
            break
    return DeadlineRun(now=now, trades_settled=settled, positions=tuple(positions))


def _settle_one(writer: LedgerWriter, aggregate_id: UUID, now: datetime) -> list[int]:
    fresh = False
    for _ in range(DEADLINE_RETRIES_MAX):
        reading = writer.reading(fresh=fresh)
        trade = reading.load(Trade, aggregate_id)
        if trade is not None:
            trade.begin(writer.context(recorded_by=DEADLINE_WORKER))
            trade.settle(now)
        if trade is None or not trade.has_pending:
            if not reading.remembered:
                return []
            # The index says due, a remembered history says not: it may be
            # stale (another process wrote since), so ask the store.
            fresh = True
            continue
        try:
            return writer.write([trade], idempotency=())
        except IntegrityError:
            continue  # Another worker or a command moved this trade on: look again.
    return []
