"""LedgerApp: one method per use case, and the only code that writes events.

Every command runs the same path (``_execute``):

1. check the command's fields and normalise its time to UTC (422 on failure);
2. refuse a time beyond the clock-skew allowance (``future_timestamp``);
3. load the aggregates, settle their deadlines due by the command's time,
   and let them decide (a refusal raises; nothing is written);
4. save the new events, the idempotency record and the deadline index in one
   transaction (with other commands waiting, see ``group_commit``). A version
   conflict means another command won the race: the caller gets a retryable
   ``concurrent_update``.

A repeated idempotency key is answered from the stored record — the original
positions, or ``idempotency_key_reused`` if the command differs — whenever
the command is refused (step 2 or 3) or its save clashes (step 4): a repeat
is always one or the other, since its key is already taken.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Container, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

import msgspec
from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, Mapper, Notification
from eventsourcing.popo import POPOFactory

from ledger import commands as c
from ledger.aggregate import Aggregate, Context
from ledger.clock import Clock, SystemClock
from ledger.codec import MsgspecMapper, decode_stored, stored_rows
from ledger.complaint import Complaint, TradeComplaintSlot
from ledger.database import database_url_from_environment, persistence_env
from ledger.enforcement import SellerEnforcement
from ledger.errors import (
    ConcurrentUpdateError,
    ErrorCode,
    InvalidInputError,
    LedgerError,
    NotFoundError,
    StateConflictError,
)
from ledger.events import Event
from ledger.group_commit import GroupCommitter
from ledger.ids import (
    complaint_aggregate_id,
    enforcement_aggregate_id,
    member_aggregate_id,
    trade_aggregate_id,
    trade_complaint_slot_id,
)
from ledger.member import Member, member_exists_error
from ledger.policy import DEFAULT_RULEBOOK, PolicyBook, load_policy
from ledger.recent_events import RecentEvents
from ledger.store import (
    DeadlineUpdate,
    IdempotencyRecord,
    LedgerRecorder,
    MemoryLedgerRecorder,
    PostgresLedgerRecorder,
    StoredEntry,
)
from ledger.trade import Trade

C = TypeVar("C", bound=c.Command)
A = TypeVar("A", bound=Aggregate)

IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
CALLER_PATTERN = r"^[A-Za-z0-9._:@-]{1,128}$"
DEADLINE_BATCH_MAX = 500
DEADLINE_ROUNDS_MAX = 1_000
DEADLINE_RETRIES_MAX = 3
LOG_PAGE_MAX = 10_000
IMPORT_BATCH_EVENTS_MAX = 50_000
# Positions can have gaps (a rolled-back append on PostgreSQL consumes ids);
# looking back this far finds the event at or before a position.
POSITION_LOOKBACK_MAX = 1_000


class Origin(msgspec.Struct, frozen=True):
    """Who asks, and the idempotency key they gave; keys are scoped to the caller."""

    caller: str
    idempotency_key: str


class Appended(msgspec.Struct, frozen=True):
    """The log positions a command wrote (or wrote the first time, when replayed)."""

    positions: tuple[int, ...]
    replayed: bool = False


class EventPage(msgspec.Struct, frozen=True):
    """Events read after a position: those decoded, how many rows were read
    and the last position read (the one asked after when none was)."""

    events: list[tuple[int, Event]]
    read: int
    reached: int


class DeadlineRun(msgspec.Struct, frozen=True):
    now: datetime
    aggregates_settled: int
    positions: tuple[int, ...]


_command_encoder = msgspec.json.Encoder()
_caller_re = re.compile(CALLER_PATTERN)
_key_re = re.compile(IDEMPOTENCY_KEY_PATTERN)
_field_re = re.compile(r"at `\$\.?([^`]*)`")


def _invalid(error: Exception) -> InvalidInputError:
    match = _field_re.search(str(error))
    field = match.group(1) if match else None
    return InvalidInputError(ErrorCode.INVALID_INPUT, str(error), field=field or None)


def _check_page(limit: int) -> None:
    """A page of the log is 1 to ``LOG_PAGE_MAX`` events, whoever reads it."""
    if not 1 <= limit <= LOG_PAGE_MAX:
        raise InvalidInputError(
            ErrorCode.BATCH_TOO_LARGE, f"limit is 1-{LOG_PAGE_MAX}", field="limit"
        )


class LedgerApp(Application[UUID]):
    name = "trustledger"

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
        self._committer = GroupCommitter(self._save_together)
        self._recent = RecentEvents()
        # Per thread: whether this command read remembered events, and whether
        # it must read the store instead (its second attempt).
        self._attempt_state = threading.local()

    # --- Infrastructure ------------------------------------------------------------

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

    # --- Members -------------------------------------------------------------------

    def register_member(self, command: c.RegisterMember, origin: Origin) -> Appended:
        def decide(cmd: c.RegisterMember, ctx: Context) -> list[Aggregate]:
            aggregate_id = member_aggregate_id(cmd.member_id)
            if self._load(Member, aggregate_id) is not None:
                raise member_exists_error(cmd.member_id)
            return [Member.register(aggregate_id, cmd.member_id, cmd.occurred_at, ctx)]

        return self._execute(command, origin, decide)

    def verify_identity(self, command: c.VerifyIdentity, origin: Origin) -> Appended:
        def decide(cmd: c.VerifyIdentity, ctx: Context) -> list[Aggregate]:
            member = self._member(cmd.member_id, cmd.occurred_at).begin(ctx)
            member.verify_identity(cmd.occurred_at)
            return [member]

        return self._execute(command, origin, decide)

    # --- Trades and escrow ---------------------------------------------------------

    def create_trade(self, command: c.CreateTrade, origin: Origin) -> Appended:
        def decide(cmd: c.CreateTrade, ctx: Context) -> list[Aggregate]:
            if cmd.buyer_id == cmd.seller_id:
                raise InvalidInputError(
                    ErrorCode.BUYER_IS_SELLER,
                    "buyer and seller must differ",
                    field="seller_id",
                )
            self._check_currency(cmd.currency)
            self._member(cmd.buyer_id, cmd.occurred_at)
            self._member(cmd.seller_id, cmd.occurred_at)
            aggregate_id = trade_aggregate_id(cmd.trade_id)
            if self._load(Trade, aggregate_id) is not None:
                raise StateConflictError(
                    ErrorCode.TRADE_EXISTS, f"trade {cmd.trade_id} already exists"
                )
            return [Trade.create(aggregate_id, cmd, ctx)]

        return self._execute(command, origin, decide)

    def pay_into_escrow(self, command: c.PayIntoEscrow, origin: Origin) -> Appended:
        return self._on_trade(command, origin, lambda trade, cmd: trade.pay(cmd.occurred_at))

    def ship_trade(self, command: c.ShipTrade, origin: Origin) -> Appended:
        return self._on_trade(command, origin, lambda trade, cmd: trade.ship(cmd.occurred_at))

    def confirm_receipt(self, command: c.ConfirmReceipt, origin: Origin) -> Appended:
        return self._on_trade(
            command, origin, lambda trade, cmd: trade.confirm_receipt(cmd.occurred_at)
        )

    def extend_confirm_timer(self, command: c.ExtendConfirmTimer, origin: Origin) -> Appended:
        return self._on_trade(
            command,
            origin,
            lambda trade, cmd: trade.extend_confirm_timer(cmd.days, cmd.occurred_at),
        )

    def close_trade(self, command: c.CloseTrade, origin: Origin) -> Appended:
        return self._on_trade(command, origin, lambda trade, cmd: trade.close(cmd))

    # --- Refunds and disputes --------------------------------------------------------

    def request_refund(self, command: c.RequestRefund, origin: Origin) -> Appended:
        return self._on_trade(command, origin, lambda trade, cmd: trade.request_refund(cmd))

    def agree_refund(self, command: c.AgreeRefund, origin: Origin) -> Appended:
        return self._on_trade(
            command,
            origin,
            lambda trade, cmd: trade.agree_refund(cmd.refund_id, cmd.occurred_at),
        )

    def reject_refund(self, command: c.RejectRefund, origin: Origin) -> Appended:
        return self._on_trade(
            command,
            origin,
            lambda trade, cmd: trade.reject_refund(cmd.refund_id, cmd.occurred_at),
        )

    def ship_return(self, command: c.ShipReturn, origin: Origin) -> Appended:
        return self._on_trade(
            command,
            origin,
            lambda trade, cmd: trade.ship_return(cmd.refund_id, cmd.occurred_at),
        )

    def confirm_return_receipt(self, command: c.ConfirmReturnReceipt, origin: Origin) -> Appended:
        return self._on_trade(
            command,
            origin,
            lambda trade, cmd: trade.confirm_return_receipt(cmd.refund_id, cmd.occurred_at),
        )

    def cancel_refund(self, command: c.CancelRefund, origin: Origin) -> Appended:
        return self._on_trade(
            command,
            origin,
            lambda trade, cmd: trade.cancel_refund(cmd.refund_id, cmd.occurred_at),
        )

    def escalate_dispute(self, command: c.EscalateDispute, origin: Origin) -> Appended:
        return self._on_trade(
            command,
            origin,
            lambda trade, cmd: trade.escalate_dispute(cmd.refund_id, cmd.occurred_at),
        )

    def rule_dispute(self, command: c.RuleDispute, origin: Origin) -> Appended:
        return self._on_trade(
            command,
            origin,
            lambda trade, cmd: trade.rule_dispute(cmd.outcome, cmd.occurred_at),
        )

    # --- Ratings ---------------------------------------------------------------------

    def give_rating(self, command: c.GiveRating, origin: Origin) -> Appended:
        return self._on_trade(command, origin, lambda trade, cmd: trade.give_rating(cmd))

    def revise_rating(self, command: c.ReviseRating, origin: Origin) -> Appended:
        return self._on_trade(
            command,
            origin,
            lambda trade, cmd: trade.revise_rating(cmd.rater, cmd.rater_id, cmd.occurred_at),
        )

    def withdraw_rating(self, command: c.WithdrawRating, origin: Origin) -> Appended:
        return self._on_trade(
            command,
            origin,
            lambda trade, cmd: trade.withdraw_rating(cmd.rater, cmd.rater_id, cmd.occurred_at),
        )

    def explain_rating(self, command: c.ExplainRating, origin: Origin) -> Appended:
        return self._on_trade(command, origin, lambda trade, cmd: trade.explain_rating(cmd))

    def review_follow_up(self, command: c.ReviewFollowUp, origin: Origin) -> Appended:
        return self._on_trade(command, origin, lambda trade, cmd: trade.review_follow_up(cmd))

    def shield_rating(self, command: c.ShieldRating, origin: Origin) -> Appended:
        return self._on_trade(command, origin, lambda trade, cmd: trade.shield_rating(cmd))

    # --- Complaints ------------------------------------------------------------------

    def file_complaint(self, command: c.FileComplaint, origin: Origin) -> Appended:
        def decide(cmd: c.FileComplaint, ctx: Context) -> list[Aggregate]:
            trade = self._trade(cmd.trade_id)
            slot = self._load(TradeComplaintSlot, trade_complaint_slot_id(cmd.trade_id))
            if slot is not None:
                raise StateConflictError(
                    ErrorCode.COMPLAINT_EXISTS,
                    f"trade {cmd.trade_id} already has complaint {slot.complaint_id}",
                )
            aggregate_id = complaint_aggregate_id(cmd.complaint_id)
            if self._load(Complaint, aggregate_id) is not None:
                raise StateConflictError(
                    ErrorCode.COMPLAINT_EXISTS,
                    f"complaint {cmd.complaint_id} already exists",
                )
            complaint, new_slot = Complaint.file(
                aggregate_id, trade_complaint_slot_id(cmd.trade_id), cmd, trade, ctx
            )
            return [complaint, new_slot]

        return self._execute(command, origin, decide)

    def escalate_complaint(self, command: c.EscalateComplaint, origin: Origin) -> Appended:
        return self._on_complaint(command, origin, lambda case, cmd: case.escalate(cmd.occurred_at))

    def record_complaint_follow_up(
        self, command: c.RecordComplaintFollowUp, origin: Origin
    ) -> Appended:
        return self._on_complaint(
            command,
            origin,
            lambda case, cmd: case.record_follow_up(cmd.text, cmd.occurred_at),
        )

    def pay_compensation(self, command: c.PayCompensation, origin: Origin) -> Appended:
        return self._on_complaint(
            command,
            origin,
            lambda case, cmd: case.pay_compensation(cmd, self.book.policy.currency),
        )

    def rule_complaint(self, command: c.RuleComplaint, origin: Origin) -> Appended:
        return self._on_complaint(
            command, origin, lambda case, cmd: case.rule(cmd.outcome, cmd.occurred_at)
        )

    # --- Seller enforcement ------------------------------------------------------------

    def record_violation(self, command: c.RecordViolation, origin: Origin) -> Appended:
        return self._on_seller(command, origin, lambda case, cmd: case.record_violation(cmd))

    def confirm_fake_trades(self, command: c.ConfirmFakeTrades, origin: Origin) -> Appended:
        return self._on_seller(
            command,
            origin,
            lambda case, cmd: case.confirm_fake_trades(
                cmd, [self._trade(t) for t in cmd.trade_ids]
            ),
        )

    def record_search_cheating(self, command: c.RecordSearchCheating, origin: Origin) -> Appended:
        return self._on_seller(command, origin, lambda case, cmd: case.record_search_cheating(cmd))

    # --- Deadlines -------------------------------------------------------------------

    def run_deadlines(self, now: datetime) -> DeadlineRun:
        """Fire every unfired deadline due at or before ``now``, never earlier.

        Safe to run from several workers at once: a trade settled by another
        worker (or by a command) meanwhile is reloaded and found with nothing
        left to fire.
        """
        if now.tzinfo is None:
            raise InvalidInputError(ErrorCode.INVALID_INPUT, "now needs a timezone", field="now")
        now = now.astimezone(UTC)
        self._check_not_future(now, field="now")
        positions: list[int] = []
        settled = 0
        for _ in range(DEADLINE_ROUNDS_MAX):
            due = self.ledger_recorder.due_aggregates(now, DEADLINE_BATCH_MAX)
            fired = [p for aggregate_id in due for p in self._settle_one(aggregate_id, now)]
            settled += sum(1 for _ in due)
            positions.extend(fired)
            if len(due) < DEADLINE_BATCH_MAX or not fired:
                break
        return DeadlineRun(now=now, aggregates_settled=settled, positions=tuple(positions))

    def _settle_one(self, aggregate_id: UUID, now: datetime) -> list[int]:
        for _ in range(DEADLINE_RETRIES_MAX):
            trade = self._load(Trade, aggregate_id)
            if trade is None:
                return []
            trade.begin(self._context())
            trade.settle(now)
            if not trade.has_pending:
                return []
            try:
                return self._save([trade], idempotency=())
            except IntegrityError:
                continue  # Another worker or a command moved this trade on: look again.
        return []

    # --- Bulk path -------------------------------------------------------------------

    def import_events(
        self, events: Sequence[Event], deadlines: Sequence[DeadlineUpdate] = ()
    ) -> list[int]:
        """Append historical events in one transaction (imports, restores, simulations).

        The caller (``ledger.transfer``) has already checked every event against
        the aggregates it belongs to; a version clash with what the store holds
        still fails the whole batch, and nothing of it is written.
        """
        if not 1 <= len(events) <= IMPORT_BATCH_EVENTS_MAX:
            raise InvalidInputError(
                ErrorCode.BATCH_TOO_LARGE, f"an import batch is 1-{IMPORT_BATCH_EVENTS_MAX} events"
            )
        # Imported events bypass the command path: forget what they continue.
        self._recent.forget({event.originator_id for event in events})
        if isinstance(self.recorder, PostgresLedgerRecorder):
            return self.recorder.copy_events(stored_rows(events), deadlines)
        # Straight to the event store: the application's save() checks every
        # event against a runtime protocol, which a bulk path can do without.
        recordings = self.events.put(list(events), idempotency=(), deadlines=deadlines)
        return [recording.notification.id for recording in recordings]

    # --- Reads for auditors and tools ----------------------------------------------

    def trade(self, trade_id: str) -> Trade | None:
        """The trade's current state, as its events leave it (for tools and tests)."""
        aggregate_id = trade_aggregate_id(trade_id)
        return Trade.replay(aggregate_id, self._stored_history(aggregate_id))

    def member(self, member_id: str) -> Member | None:
        aggregate_id = member_aggregate_id(member_id)
        return Member.replay(aggregate_id, self._stored_history(aggregate_id))

    def read_log(self, after: int = 0, limit: int = 1_000) -> list[Notification]:
        _check_page(limit)
        return list(
            self.recorder.select_notifications(start=after, limit=limit, inclusive_of_start=False)
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
        rows = self.ledger_recorder.select_entries(after, limit)
        events = [
            (position, decode_stored(position, topic, state))
            for position, topic, state in rows
            if topics is None or topic in topics
        ]
        return EventPage(events, read=len(rows), reached=rows[-1][0] if rows else after)

    def read_stored(self, after: int = 0, limit: int = 1_000) -> list[StoredEntry]:
        """The stored rows after a position as written, undecoded: what the Merkle tree hashes."""
        _check_page(limit)
        return self.ledger_recorder.select_stored(after, limit)

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
        found = self.recorder.select_notifications(
            start=low, limit=POSITION_LOOKBACK_MAX, stop=position
        )
        return self.decode(found[-1]).recorded_at if found else None

    def decode(self, notification: Notification) -> Event:
        event = self.mapper.to_domain_event(notification)
        if not isinstance(event, Event):
            raise TypeError(f"position {notification.id} holds no ledger event")
        return event

    # --- The command path --------------------------------------------------------------

    def _on_trade(self, command: C, origin: Origin, act: Callable[[Trade, C], None]) -> Appended:
        def decide(cmd: C, ctx: Context) -> list[Aggregate]:
            trade = self._trade(cmd.trade_id).begin(ctx)  # type: ignore[attr-defined]
            trade.settle(cmd.occurred_at)
            act(trade, cmd)
            # A fact can start a deadline that is already due (a top-up's
            # zero-day confirm timer): settle it in the same save.
            trade.settle(cmd.occurred_at)
            return [trade]

        return self._execute(command, origin, decide)

    def _on_complaint(
        self, command: C, origin: Origin, act: Callable[[Complaint, C], None]
    ) -> Appended:
        def decide(cmd: C, ctx: Context) -> list[Aggregate]:
            complaint_id: str = cmd.complaint_id  # type: ignore[attr-defined]
            complaint = self._load(Complaint, complaint_aggregate_id(complaint_id))
            if complaint is None:
                raise NotFoundError(ErrorCode.UNKNOWN_COMPLAINT, f"no complaint {complaint_id}")
            act(complaint.begin(ctx), cmd)
            return [complaint]

        return self._execute(command, origin, decide)

    def _on_seller(
        self, command: C, origin: Origin, act: Callable[[SellerEnforcement, C], None]
    ) -> Appended:
        def decide(cmd: C, ctx: Context) -> list[Aggregate]:
            seller_id: str = cmd.seller_id  # type: ignore[attr-defined]
            self._member(seller_id, cmd.occurred_at)
            aggregate_id = enforcement_aggregate_id(seller_id)
            enforcement = self._load(SellerEnforcement, aggregate_id) or SellerEnforcement(
                aggregate_id
            )
            act(enforcement.begin(ctx), cmd)
            return [enforcement]

        return self._execute(command, origin, decide)

    def _execute(
        self,
        command: C,
        origin: Origin,
        decide: Callable[[C, Context], list[Aggregate]],
    ) -> Appended:
        command = self._validated(command)
        self._check_origin(origin)
        command_hash = hashlib.sha256(_command_encoder.encode(command)).hexdigest()
        state = self._attempt_state
        state.remembered, state.fresh = False, False
        try:
            return self._attempt(command, origin, command_hash, decide)
        except ConcurrentUpdateError:
            raise  # the aggregates are forgotten: the caller's retry reads the store
        except LedgerError:
            if not state.remembered:
                raise
        # Refused on remembered events, which another process may have moved
        # on: decide once more on what the store holds before refusing.
        state.fresh = True
        try:
            return self._attempt(command, origin, command_hash, decide)
        finally:
            state.fresh = False

    def _attempt(
        self,
        command: C,
        origin: Origin,
        command_hash: str,
        decide: Callable[[C, Context], list[Aggregate]],
    ) -> Appended:
        try:
            self._check_not_future(command.occurred_at, field="occurred_at")
            aggregates = decide(command, self._context())
        except LedgerError:
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
        try:
            positions = self._save(aggregates, events=events, idempotency=(record,))
        except IntegrityError as error:
            earlier = self._replay(origin, command_hash)
            if earlier is not None:
                return earlier
            raise ConcurrentUpdateError(
                "another command changed the same record first; retry the command"
            ) from error
        return Appended(positions=tuple(positions))

    def _save(
        self,
        aggregates: Sequence[Aggregate],
        *,
        idempotency: Sequence[IdempotencyRecord],
        events: Sequence[Event] | None = None,
    ) -> list[int]:
        if events is None:
            events = [event for aggregate in aggregates for event in aggregate.collect_events()]
        deadlines = [
            DeadlineUpdate(aggregate.id, aggregate.next_deadline())
            for aggregate in aggregates
            if isinstance(aggregate, Trade)
        ]
        try:
            positions = self._committer.commit(events, idempotency, deadlines)
        except BaseException:
            self._recent.forget(aggregate.id for aggregate in aggregates)
            raise
        self._recent.extend(events)
        return positions

    def _save_together(
        self,
        events: Sequence[Event],
        idempotency: Sequence[IdempotencyRecord],
        deadlines: Sequence[DeadlineUpdate],
    ) -> list[int]:
        """One transaction for the writes of one command, or of a group of them."""
        recordings = self.save(*events, idempotency=idempotency, deadlines=deadlines)
        return [recording.notification.id for recording in recordings]

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

    def _validated(self, command: C) -> C:
        """Check the command's field constraints and put its time in UTC."""
        try:
            checked: C = msgspec.json.decode(_command_encoder.encode(command), type=type(command))
        except (msgspec.ValidationError, msgspec.EncodeError, TypeError) as error:
            raise _invalid(error) from error
        return msgspec.structs.replace(checked, occurred_at=checked.occurred_at.astimezone(UTC))

    def _check_origin(self, origin: Origin) -> None:
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

    def _check_not_future(self, at: datetime, *, field: str) -> None:
        limit = self.clock.now() + self.book.policy.clock_skew
        if at > limit:
            raise InvalidInputError(
                ErrorCode.FUTURE_TIMESTAMP,
                f"{at.isoformat()} is more than {self.book.policy.clock_skew_seconds}s "
                "after the ledger's clock",
                field=field,
            )

    def _check_currency(self, currency: str) -> None:
        if currency != self.book.policy.currency:
            raise InvalidInputError(
                ErrorCode.CURRENCY_MISMATCH,
                f"this ledger keeps {self.book.policy.currency}, not {currency}",
                field="currency",
            )

    def _context(self) -> Context:
        return Context(recorded_at=self.clock.now(), book=self.book)

    def _load(self, kind: type[A], aggregate_id: UUID) -> A | None:
        """An aggregate as this command sees it: remembered, or read from the store."""
        state = self._attempt_state
        events = None if getattr(state, "fresh", True) else self._recent.history(aggregate_id)
        if events is not None:
            state.remembered = True
        else:
            events = self._stored_history(aggregate_id)
            self._recent.keep(aggregate_id, events)
        return kind.replay(aggregate_id, events)

    def _stored_history(self, aggregate_id: UUID) -> tuple[Event, ...]:
        events = tuple(self.events.get(aggregate_id))
        for event in events:
            if not isinstance(event, Event):
                raise TypeError(f"{aggregate_id} holds a non-ledger event")
        return events  # type: ignore[return-value]

    def _trade(self, trade_id: str) -> Trade:
        trade = self._load(Trade, trade_aggregate_id(trade_id))
        if trade is None:
            raise NotFoundError(ErrorCode.UNKNOWN_TRADE, f"no trade {trade_id}", field="trade_id")
        return trade

    def _member(self, member_id: str, at: datetime) -> Member:
        member = self._load(Member, member_aggregate_id(member_id))
        if member is None:
            raise NotFoundError(ErrorCode.UNKNOWN_MEMBER, f"{member_id} is not a registered member")
        if member.registered_at is not None and member.registered_at > at:
            raise StateConflictError(
                ErrorCode.OUT_OF_ORDER,
                f"{member_id} registered at {member.registered_at.isoformat()}, after this fact",
                field="occurred_at",
            )
        return member
