"""LedgerApp: one method per use case, and the only code that writes events.

Every command runs the same path (``_execute``):

1. check the command's fields against their limits and put its time in UTC
   (422 on failure; ``ledger.limits``);
2. refuse a time beyond the clock-skew allowance (``future_timestamp``);
3. load the aggregates, settle their deadlines due by the command's time,
   and let them decide (a refusal raises; nothing is written);
4. save the new events, the idempotency record and the deadline index in one
   transaction (with other commands waiting, see ``group_commit``). A version
   conflict means another command won the race: the caller gets a retryable
   ``concurrent_update``.

Step 3 reads through a ``Reading`` made for the attempt. The first may use
remembered histories, and takes an id to be created as free without asking
the store; a refusal drawn from memory, or a save that clashes on an id
taken as free, is decided once more on what the store holds, since another
process may have moved things on.

A repeated idempotency key is answered from the stored record — the original
positions, or ``idempotency_key_reused`` if the command differs — whenever
the command is refused (step 2 or 3) or its save clashes (step 4): a repeat
is always one or the other, since its key is already taken.

The rest of the ledger lives beside it: where the log lives and how decided
aggregates reach it (``writer``), the deadline worker (``deadlines``) and the
log's read API (``log_reader``); LedgerApp keeps their entry points.
"""

from __future__ import annotations

import functools
import hashlib
import re
import threading
from collections.abc import Callable, Container, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec
from eventsourcing.persistence import IntegrityError, Notification

from ledger import commands as c
from ledger import deadlines as deadline_worker
from ledger.aggregate import Aggregate, Context
from ledger.complaint import Complaint, TradeComplaintSlot
from ledger.deadlines import DEADLINE_BATCH_MAX, DEADLINES_COUNTED_MAX, DeadlineRun
from ledger.enforcement import SellerEnforcement
from ledger.errors import (
    ConcurrentUpdateError,
    ErrorCode,
    InvalidInputError,
    LedgerError,
    StateConflictError,
)
from ledger.events import Event, Party
from ledger.ids import (
    complaint_aggregate_id,
    enforcement_aggregate_id,
    member_aggregate_id,
    trade_aggregate_id,
    trade_complaint_slot_id,
)
from ledger.limits import check_limits
from ledger.log_reader import LOG_PAGE_MAX, EventPage, LogReader
from ledger.member import Member, member_exists_error
from ledger.reading import Reading, StoreNeeded, stored_history
from ledger.store import DeadlinesDue, DeadlineUpdate, IdempotencyRecord, StoredEntry
from ledger.trade import Trade, check_parties_differ, known_trade
from ledger.trade_record import TradeRecord, complaint_record, trade_record
from ledger.writer import IMPORT_BATCH_EVENTS_MAX, LedgerWriter

# What callers import from here, some of it defined beside the command path.
__all__ = [
    "CALLER_PATTERN",
    "DEADLINE_BATCH_MAX",
    "IDEMPOTENCY_KEY_PATTERN",
    "IMPORT_BATCH_EVENTS_MAX",
    "LOG_PAGE_MAX",
    "Appended",
    "DeadlineRun",
    "EventPage",
    "LedgerApp",
    "Origin",
]

C = TypeVar("C", bound=c.Command)
A = TypeVar("A", bound=Aggregate)
TC = TypeVar("TC", bound=c.TradeCommand)
CC = TypeVar("CC", bound=c.ComplaintCommand)
SC = TypeVar("SC", bound=c.SellerCommand)

# What decides a command: its aggregates, as one attempt reads them, with their new events.
Decide = Callable[[C, Reading, Context], list[Aggregate]]

IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
CALLER_PATTERN = r"^[A-Za-z0-9._:@-]{1,128}$"


class Origin(msgspec.Struct, frozen=True):
    """Who asks, and the idempotency key they gave; keys are scoped to the caller."""

    caller: str
    idempotency_key: str


class Appended(msgspec.Struct, frozen=True):
    """The log positions a command wrote (or wrote the first time, when replayed)."""

    positions: tuple[int, ...]
    replayed: bool = False


_command_encoder = msgspec.json.Encoder()
_caller_re = re.compile(CALLER_PATTERN)
_key_re = re.compile(IDEMPOTENCY_KEY_PATTERN)


@dataclass(slots=True, kw_only=True)
class Prepared:
    """A command decided on remembered aggregates, its writes not yet saved."""

    aggregates: list[Aggregate]
    events: list[Event]
    record: IdempotencyRecord
    command: Any
    origin: Origin
    command_hash: str
    decide: Decide[Any]
    assumed_new: bool = False  # an id was taken as free without asking the store


class _Ready(Exception):
    """Raised where a prepared command would have been saved."""

    def __init__(self, prepared: Prepared) -> None:
        super().__init__()
        self.prepared = prepared


class LedgerApp(LedgerWriter):
    name = "trustledger"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Set while ``prepare`` runs a command on this thread.
        self._preparing = threading.local()

    @functools.cached_property
    def log_reader(self) -> LogReader:
        return LogReader(self)

    # --- Members -------------------------------------------------------------------

    def register_member(self, command: c.RegisterMember, origin: Origin) -> Appended:
        def decide(cmd: c.RegisterMember, reading: Reading, ctx: Context) -> list[Aggregate]:
            aggregate_id = member_aggregate_id(cmd.member_id)
            if reading.new(Member, aggregate_id) is not None:
                raise member_exists_error(cmd.member_id)
            return [Member.register(aggregate_id, cmd.member_id, cmd.occurred_at, ctx)]

        return self._execute(command, origin, decide)

    def verify_identity(self, command: c.VerifyIdentity, origin: Origin) -> Appended:
        def decide(cmd: c.VerifyIdentity, reading: Reading, ctx: Context) -> list[Aggregate]:
            member = reading.member(cmd.member_id, cmd.occurred_at).begin(ctx)
            member.verify_identity(cmd.occurred_at)
            return [member]

        return self._execute(command, origin, decide)

    # --- Trades and escrow ---------------------------------------------------------

    def create_trade(self, command: c.CreateTrade, origin: Origin) -> Appended:
        def decide(cmd: c.CreateTrade, reading: Reading, ctx: Context) -> list[Aggregate]:
            check_parties_differ(cmd.buyer_id, cmd.seller_id)
            ctx.check_currency(cmd.currency)
            reading.member(cmd.buyer_id, cmd.occurred_at)
            reading.member(cmd.seller_id, cmd.occurred_at)
            aggregate_id = trade_aggregate_id(cmd.trade_id)
            if reading.new(Trade, aggregate_id) is not None:
                raise StateConflictError(
                    ErrorCode.TRADE_EXISTS, f"trade {cmd.trade_id} already exists"
                )
            return [Trade.create(aggregate_id, cmd, ctx)]

        return self._execute(command, origin, decide)

    def pay_into_escrow(self, command: c.PayIntoEscrow, origin: Origin) -> Appended:
        return self._on_trade(command, origin, _at(Trade.pay))

    def ship_trade(self, command: c.ShipTrade, origin: Origin) -> Appended:
        return self._on_trade(command, origin, _at(Trade.ship))

    def confirm_receipt(self, command: c.ConfirmReceipt, origin: Origin) -> Appended:
        return self._on_trade(command, origin, _at(Trade.confirm_receipt))

    def extend_confirm_timer(self, command: c.ExtendConfirmTimer, origin: Origin) -> Appended:
        return self._on_trade(
            command,
            origin,
            lambda trade, cmd: trade.extend_confirm_timer(cmd.days, cmd.occurred_at),
        )

    def close_trade(self, command: c.CloseTrade, origin: Origin) -> Appended:
        return self._on_trade(command, origin, Trade.close)

    # --- Refunds and disputes --------------------------------------------------------

    def request_refund(self, command: c.RequestRefund, origin: Origin) -> Appended:
        return self._on_trade(command, origin, Trade.request_refund)

    def agree_refund(self, command: c.AgreeRefund, origin: Origin) -> Appended:
        return self._on_trade(command, origin, _refund_step(Trade.agree_refund))

    def reject_refund(self, command: c.RejectRefund, origin: Origin) -> Appended:
        return self._on_trade(command, origin, _refund_step(Trade.reject_refund))

    def ship_return(self, command: c.ShipReturn, origin: Origin) -> Appended:
        return self._on_trade(command, origin, _refund_step(Trade.ship_return))

    def confirm_return_receipt(self, command: c.ConfirmReturnReceipt, origin: Origin) -> Appended:
        return self._on_trade(command, origin, _refund_step(Trade.confirm_return_receipt))

    def cancel_refund(self, command: c.CancelRefund, origin: Origin) -> Appended:
        return self._on_trade(command, origin, _refund_step(Trade.cancel_refund))

    def escalate_dispute(self, command: c.EscalateDispute, origin: Origin) -> Appended:
        return self._on_trade(command, origin, _refund_step(Trade.escalate_dispute))

    def rule_dispute(self, command: c.RuleDispute, origin: Origin) -> Appended:
        return self._on_trade(
            command, origin, lambda trade, cmd: trade.rule_dispute(cmd.outcome, cmd.occurred_at)
        )

    # --- Ratings ---------------------------------------------------------------------

    def give_rating(self, command: c.GiveRating, origin: Origin) -> Appended:
        return self._on_trade(command, origin, Trade.give_rating)

    def revise_rating(self, command: c.ReviseRating, origin: Origin) -> Appended:
        return self._on_trade(command, origin, _rater_step(Trade.revise_rating))

    def withdraw_rating(self, command: c.WithdrawRating, origin: Origin) -> Appended:
        return self._on_trade(command, origin, _rater_step(Trade.withdraw_rating))

    def explain_rating(self, command: c.ExplainRating, origin: Origin) -> Appended:
        return self._on_trade(command, origin, Trade.explain_rating)

    def review_follow_up(self, command: c.ReviewFollowUp, origin: Origin) -> Appended:
        return self._on_trade(command, origin, Trade.review_follow_up)

    def shield_rating(self, command: c.ShieldRating, origin: Origin) -> Appended:
        return self._on_trade(command, origin, Trade.shield_rating)

    # --- Complaints ------------------------------------------------------------------

    def file_complaint(self, command: c.FileComplaint, origin: Origin) -> Appended:
        def decide(cmd: c.FileComplaint, reading: Reading, ctx: Context) -> list[Aggregate]:
            trade = reading.trade(cmd.trade_id)
            slot_id = trade_complaint_slot_id(cmd.trade_id)
            slot = reading.new(TradeComplaintSlot, slot_id)
            if slot is not None:
                raise StateConflictError(
                    ErrorCode.COMPLAINT_EXISTS,
                    f"trade {cmd.trade_id} already has complaint {slot.complaint_id}",
                )
            aggregate_id = complaint_aggregate_id(cmd.complaint_id)
            if reading.new(Complaint, aggregate_id) is not None:
                raise StateConflictError(
                    ErrorCode.COMPLAINT_EXISTS,
                    f"complaint {cmd.complaint_id} already exists",
                )
            complaint, new_slot = Complaint.file(aggregate_id, slot_id, cmd, trade, ctx)
            return [complaint, new_slot]

        return self._execute(command, origin, decide)

    def escalate_complaint(self, command: c.EscalateComplaint, origin: Origin) -> Appended:
        return self._on_complaint(command, origin, _at(Complaint.escalate))

    def record_complaint_follow_up(
        self, command: c.RecordComplaintFollowUp, origin: Origin
    ) -> Appended:
        return self._on_complaint(
            command, origin, lambda case, cmd: case.record_follow_up(cmd.text, cmd.occurred_at)
        )

    def pay_compensation(self, command: c.PayCompensation, origin: Origin) -> Appended:
        currency = self.book.policy.currency
        return self._on_complaint(
            command, origin, lambda case, cmd: case.pay_compensation(cmd, currency)
        )

    def rule_complaint(self, command: c.RuleComplaint, origin: Origin) -> Appended:
        return self._on_complaint(
            command, origin, lambda case, cmd: case.rule(cmd.outcome, cmd.occurred_at)
        )

    # --- Seller enforcement ------------------------------------------------------------

    def record_violation(self, command: c.RecordViolation, origin: Origin) -> Appended:
        return self._on_seller(command, origin, SellerEnforcement.record_violation)

    def confirm_fake_trades(self, command: c.ConfirmFakeTrades, origin: Origin) -> Appended:
        def decide(cmd: c.ConfirmFakeTrades, reading: Reading, ctx: Context) -> list[Aggregate]:
            case = _seller_case(cmd, reading, ctx)
            case.confirm_fake_trades(cmd, [reading.trade(t) for t in cmd.trade_ids])
            return [case]

        return self._execute(command, origin, decide)

    def record_search_cheating(self, command: c.RecordSearchCheating, origin: Origin) -> Appended:
        return self._on_seller(command, origin, SellerEnforcement.record_search_cheating)

    # --- Deadlines, the bulk path and reads: entry points to the modules that do them ---

    def run_deadlines(self, now: datetime) -> DeadlineRun:
        """Fire every unfired deadline due at or before ``now`` (``ledger.deadlines``)."""
        return deadline_worker.run_deadlines(self, now)

    def import_events(
        self, events: Sequence[Event], deadlines: Sequence[DeadlineUpdate] = ()
    ) -> list[int]:
        """Append historical events in one transaction (imports, restores, simulations).

        The caller (``ledger.transfer``) has already checked every event against
        the aggregates it belongs to; see ``LedgerWriter.append_imported``.
        """
        return self.append_imported(events, deadlines)

    def trade(self, trade_id: str) -> Trade | None:
        """The trade's current state, as its events leave it (for tools and tests)."""
        return self.stored(Trade, trade_aggregate_id(trade_id))

    def trade_record(self, trade_id: str) -> TradeRecord:
        """A trade's state now and every fact about it, with log positions
        (``unknown_trade`` when it has none)."""
        aggregate_id = trade_aggregate_id(trade_id)
        events = stored_history(self.events, aggregate_id)
        # Its deadlines follow the rulebook: read under the context a command would be.
        trade = known_trade(Trade.replay(aggregate_id, events), trade_id).begin(self.context())
        slot = self.stored(TradeComplaintSlot, trade_complaint_slot_id(trade_id))
        case: tuple[Event, ...] = ()
        if slot is not None and slot.complaint_id:
            case = stored_history(self.events, complaint_aggregate_id(slot.complaint_id))
        keys = [(event.originator_id, event.originator_version) for event in events + case]
        positions = self.ledger_recorder.positions_of(keys)
        complaint = Complaint.replay(case[0].originator_id, case) if case else None
        return trade_record(
            trade,
            events,
            positions[: len(events)],
            complaint_record(complaint, case, positions[len(events) :]) if complaint else None,
        )

    def member(self, member_id: str) -> Member | None:
        return self.stored(Member, member_aggregate_id(member_id))

    def read_log(self, after: int = 0, limit: int = 1_000) -> list[Notification]:
        return self.log_reader.read_log(after, limit)

    def read_events(
        self, after: int = 0, limit: int = 1_000, *, topics: Container[str] | None = None
    ) -> EventPage:
        return self.log_reader.read_events(after, limit, topics=topics)

    def read_stored(self, after: int = 0, limit: int = 1_000) -> list[StoredEntry]:
        return self.log_reader.read_stored(after, limit)

    def iter_log(self, after: int = 0, page: int = 1_000) -> Iterator[Notification]:
        return self.log_reader.iter_log(after, page)

    def recorded_at(self, position: int) -> datetime | None:
        return self.log_reader.recorded_at(position)

    def decode(self, notification: Notification) -> Event:
        return self.log_reader.decode(notification)

    def deadlines_due(self, limit: int = DEADLINES_COUNTED_MAX) -> DeadlinesDue:
        """The deadline index by the ledger's clock: the trades due now (counted
        up to ``limit``), the oldest due time among them and the next one coming."""
        return self.ledger_recorder.deadlines_due(self.clock.now(), limit)

    # --- The command path --------------------------------------------------------------

    def _on_trade(self, command: TC, origin: Origin, act: Callable[[Trade, TC], None]) -> Appended:
        def decide(cmd: TC, reading: Reading, ctx: Context) -> list[Aggregate]:
            trade = reading.trade(cmd.trade_id).begin(ctx)
            trade.settle(cmd.occurred_at)
            act(trade, cmd)
            # A fact can start a deadline that is already due (a top-up's
            # zero-day confirm timer): settle it in the same save.
            trade.settle(cmd.occurred_at)
            return [trade]

        return self._execute(command, origin, decide)

    def _on_complaint(
        self, command: CC, origin: Origin, act: Callable[[Complaint, CC], None]
    ) -> Appended:
        def decide(cmd: CC, reading: Reading, ctx: Context) -> list[Aggregate]:
            complaint = reading.complaint(cmd.complaint_id).begin(ctx)
            act(complaint, cmd)
            return [complaint]

        return self._execute(command, origin, decide)

    def _on_seller(
        self, command: SC, origin: Origin, act: Callable[[SellerEnforcement, SC], None]
    ) -> Appended:
        def decide(cmd: SC, reading: Reading, ctx: Context) -> list[Aggregate]:
            case = _seller_case(cmd, reading, ctx)
            act(case, cmd)
            return [case]

        return self._execute(command, origin, decide)

    # --- Deciding on the caller's thread, saving on the writer's ------------------------

    def prepare(
        self, method: Callable[[C, Origin], Appended], command: C, origin: Origin
    ) -> Prepared | None:
        """``method``'s decision on remembered aggregates only, ready to be saved
        (``save_prepared``), without touching the store; None when it needs the
        store (an aggregate not remembered, a refusal to check again, a repeat
        to look up): run ``method`` itself then, on a thread that may block.
        Refusals of the input itself are raised as ``method`` raises them."""
        self._preparing.active = True
        try:
            method(command, origin)
        except _Ready as ready:
            return ready.prepared
        except StoreNeeded:
            return None
        finally:
            self._preparing.active = False
        raise RuntimeError("a command decided on remembered aggregates was not held back")

    def save_prepared(
        self, prepared: Prepared, done: Callable[[list[int] | None, Exception | None], None]
    ) -> None:
        """Hand a prepared command's writes to the group committer's writer
        thread; ``done`` is called there with the positions, or the error."""
        self.write_then(
            prepared.aggregates,
            idempotency=(prepared.record,),
            events=prepared.events,
            done=done,
        )

    def recover(self, prepared: Prepared) -> Appended:
        """After a prepared command's save was refused (``IntegrityError``), as
        the command itself would go on: the first answer to a repeat, a
        conflict to retry, or, for an id taken as free, a decision on what the
        store holds. On a thread that may block."""
        earlier = self._replay(prepared.origin, prepared.command_hash)
        if earlier is not None:
            return earlier
        if not prepared.assumed_new:
            raise _clashed()
        return self._attempt(
            prepared.command,
            prepared.origin,
            prepared.command_hash,
            prepared.decide,
            self.reading(fresh=True),
        )

    def _execute(self, command: C, origin: Origin, decide: Decide[C]) -> Appended:
        command = _validated(command)
        _check_origin(origin)
        command_hash = hashlib.sha256(_command_encoder.encode(command)).hexdigest()
        preparing = getattr(self._preparing, "active", False)
        first = self.reading(fresh=False, remembered_only=preparing)
        if preparing:  # a miss or a refusal goes back to ``prepare`` as StoreNeeded
            return self._attempt(command, origin, command_hash, decide, first)
        try:
            return self._attempt(command, origin, command_hash, decide, first)
        except ConcurrentUpdateError:
            # The aggregates are forgotten: the caller's retry reads the store.
            # But an id taken as free may simply have been taken: decide once
            # more on what the store holds, which refuses it as the rules say.
            if not first.assumed_new:
                raise
        except LedgerError:
            if not first.remembered:
                raise
        # Refused on remembered events, which another process may have moved
        # on, or clashed on an id taken as free: decide once more on what the
        # store holds.
        return self._attempt(command, origin, command_hash, decide, self.reading(fresh=True))

    def _attempt(
        self, command: C, origin: Origin, command_hash: str, decide: Decide[C], reading: Reading
    ) -> Appended:
        ctx = self.context(recorded_by=origin.caller)
        try:
            ctx.check_not_future(command.occurred_at, field="occurred_at")
            aggregates = decide(command, reading, ctx)
        except LedgerError as refused:
            if reading.remembered_only:
                # It may be a repeat, or drawn from stale memories: the store says.
                raise StoreNeeded() from refused
            # A repeat of an accepted command is usually refused by the state it
            # left behind: answer it from its idempotency record instead. Looking
            # the key up only here keeps the common path at one read less.
            earlier = self._replay(origin, command_hash)
            if earlier is not None:
                return earlier
            raise
        events = [event for aggregate in aggregates for event in aggregate.collect_events()]
        record = IdempotencyRecord(
            origin.caller,
            origin.idempotency_key,
            command_hash,
            tuple((e.originator_id, e.originator_version) for e in events),
        )
        if reading.remembered_only:
            raise _Ready(
                Prepared(
                    aggregates=aggregates,
                    events=events,
                    record=record,
                    command=command,
                    origin=origin,
                    command_hash=command_hash,
                    decide=decide,
                    assumed_new=reading.assumed_new,
                )
            )
        try:
            positions = self.write(aggregates, events=events, idempotency=(record,))
        except IntegrityError as error:
            earlier = self._replay(origin, command_hash)
            if earlier is not None:
                return earlier
            raise _clashed() from error
        return Appended(positions=tuple(positions))

    def _replay(self, origin: Origin, command_hash: str) -> Appended | None:
        record = self.ledger_recorder.find_idempotency(origin.caller, origin.idempotency_key)
        if record is None:
            return None
        if record.command_hash != command_hash:
            raise StateConflictError(
                ErrorCode.IDEMPOTENCY_KEY_REUSED,
                f"idempotency key {origin.idempotency_key!r} was used for a different command",
                field="idempotency_key",
            )
        positions = self.ledger_recorder.positions_of(record.event_keys)
        return Appended(positions=tuple(positions), replayed=True)


def _clashed() -> ConcurrentUpdateError:
    """The store refused a save: another command moved the same record first."""
    return ConcurrentUpdateError("another command changed the same record first; retry the command")


# --- Aggregate actions shaped for the command helpers ----------------------------------


def _at(act: Callable[[A, datetime], None]) -> Callable[[A, c.Command], None]:
    """An action that takes only the command's time."""
    return lambda aggregate, cmd: act(aggregate, cmd.occurred_at)


def _refund_step(
    act: Callable[[Trade, str, datetime], None],
) -> Callable[[Trade, c.RefundCommand], None]:
    """A step of a refund: it takes the refund's id and the command's time."""
    return lambda trade, cmd: act(trade, cmd.refund_id, cmd.occurred_at)


RaterCommand = c.ReviseRating | c.WithdrawRating


def _rater_step(
    act: Callable[[Trade, Party, str | None, datetime], None],
) -> Callable[[Trade, RaterCommand], None]:
    """A change to a given rating: it takes who rated and the command's time."""
    return lambda trade, cmd: act(trade, cmd.rater, cmd.rater_id, cmd.occurred_at)


def _seller_case(cmd: c.SellerCommand, reading: Reading, ctx: Context) -> SellerEnforcement:
    """The seller's enforcement record (a new one for a first case); the seller must be a member."""
    reading.member(cmd.seller_id, cmd.occurred_at)
    aggregate_id = enforcement_aggregate_id(cmd.seller_id)
    case = reading.load(SellerEnforcement, aggregate_id) or SellerEnforcement(aggregate_id)
    return case.begin(ctx)


# --- Checks of every command -----------------------------------------------------------


def _validated(command: C) -> C:
    """Check the command's field limits and put its time in UTC."""
    check_limits(command)
    if command.occurred_at.tzinfo is UTC:
        return command
    return msgspec.structs.replace(command, occurred_at=command.occurred_at.astimezone(UTC))


def _check_origin(origin: Origin) -> None:
    if not _caller_re.match(origin.caller):
        raise InvalidInputError(
            ErrorCode.INVALID_INPUT,
            "caller must match " + CALLER_PATTERN,
            field="caller",
        )
    if not _key_re.match(origin.idempotency_key):
        raise InvalidInputError(
            ErrorCode.INVALID_INPUT,
            "an idempotency key is 1-255 visible ASCII characters",
            field="idempotency_key",
        )
