"""Bulk export and import of the log as NDJSON: migrations, restores, benchmarks.

**Export** writes the log in order from a position, one ``LogLine`` per
event (``ledger.log_line``: the stored event JSON embedded as is, so an
exported body is byte-identical to the stored one).

**Import** reads such lines (each at most ``LINE_BYTES_MAX`` bytes; other
fields, such as the HTTP log's ``occurred_at``, are ignored), decodes every
body with the codec and checks it before anything is written:

- the line: valid JSON, a known topic that is the body's own tag, the
  originator id and version the body carries, positions in increasing order;
- the event's fields: the aggregate id derived from its platform id (so a
  member event lands on that member), platform ids, amounts, the ledger's
  currency, every time with a timezone and none beyond the ledger's clock;
- its place in its aggregate (``Member``, ``Trade``, ``Complaint``,
  ``TradeComplaintSlot`` or ``SellerEnforcement``, chosen by the event type):
  the version follows, and creation facts come first and only first;
- the domain's rules, which are the aggregates' own: ``Aggregate.admit`` runs
  the checks of the command that records the fact (a trade's parties are
  registered members by its creation, a fake-trade case names only that
  seller's trades not confirmed before, ...), compares what a command copies
  from the state (a trade's parties and amounts), and refuses a fact that
  leaves a trade deadline due before it unrecorded; then ``apply`` must
  accept it (a fact about an unknown refund or rating raises). The other
  aggregates a rule reads are those this import checked or the store holds.

Aggregates are kept in a bounded LRU cache. A batch is decoded before it is
checked, and the stored aggregates it reads that the cache lacks are loaded
then, many per query (a large log names each member again long after the
cache dropped it); whatever is still missed is loaded on its own. A version-1
fact needs no load: if the store already holds that aggregate, the append
clashes and the batch is refused.

Events are appended in batches of ``batch_events`` through
``LedgerApp.import_events``, one transaction each, with the next deadline of
every trade the batch touched, so the deadline worker carries on after an
import. A writer thread appends a batch while the next one is checked; at
most one is in flight, and its aggregates stay in memory until it is written.
The first bad line refuses the import with its line number and the reason:
nothing of its batch is written (earlier batches stay, and the error says how
many events they held). Positions are the target store's own; an
export's positions are informational. A non-empty store can be imported into
only when the import continues it (every aggregate's versions follow on).
"""

from __future__ import annotations

import functools
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import IO, NamedTuple, NoReturn, TypeVar
from uuid import UUID

import msgspec
from eventsourcing.persistence import IntegrityError
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from ledger import events as ev
from ledger.aggregate import Aggregate, Context
from ledger.app import IMPORT_BATCH_EVENTS_MAX, LOG_PAGE_MAX, LedgerApp
from ledger.codec import TOPICS, decode_event, decode_stored
from ledger.commands import AMOUNT_MINOR_MAX, FAKE_TRADE_CASE_TRADES_MAX
from ledger.complaint import Complaint, TradeComplaintSlot
from ledger.enforcement import SellerEnforcement
from ledger.errors import ErrorCode, LedgerError
from ledger.ids import (
    complaint_aggregate_id,
    enforcement_aggregate_id,
    is_platform_id,
    member_aggregate_id,
    trade_aggregate_id,
    trade_complaint_slot_id,
)
from ledger.log_line import LINE_BYTES_MAX, LogLine
from ledger.member import Member
from ledger.store import DeadlineUpdate, PostgresLedgerRecorder
from ledger.trade import Trade

# Named limits.
BATCH_EVENTS_DEFAULT = 10_000
BATCH_EVENTS_MAX = IMPORT_BATCH_EVENTS_MAX
# About 1 KB per cached trade (measured): the default holds some 50 MB.
AGGREGATE_CACHE_DEFAULT = 50_000
# An import into an empty PostgreSQL store refreshes the planner's statistics
# at this many events and each time its events double (a few ANALYZEs in all):
# planned as the empty table it was, every aggregate read became a sequential
# scan, and a 6.7M-event import slowed to some 750 events/s.
STATISTICS_FROM_EVENTS = 50_000
AGGREGATE_CACHE_MAX = 1_000_000
# Aggregates whose stored events one prefetch query reads: a member or a trade
# holds a few to a few dozen events, so a result stays within a few MB.
PREFETCH_IDS_PER_QUERY = 1_000
# Derived member ids kept: about 200 bytes each besides the id, some 25 MB at most.
MEMBER_IDS_CACHED = 100_000
EXPORT_PAGE_EVENTS = LOG_PAGE_MAX
EXPORT_FLUSH_BYTES = 1 << 20

A = TypeVar("A", bound=Aggregate)
# Aggregates are looked up by their id's 128-bit number: UUID's __hash__ and
# __eq__ are Python code, and an import looks aggregates up some ten times an
# event (keying by the number made a 1M-event import 5% faster).
_Key = int

Progress = Callable[[int, int], None]
"""Called after each page or batch: (log position reached, events so far)."""


class TransferReport(msgspec.Struct, frozen=True):
    """What an export read or an import wrote; positions are those of this store."""

    events: int
    batches: int
    seconds: float
    first_position: int | None = None
    last_position: int | None = None

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


class ImportRefusedError(Exception):
    """An import stopped at a bad line; nothing of that line's batch was written."""

    def __init__(self, line: int, code: ErrorCode, reason: str, imported: TransferReport) -> None:
        self.line = line
        self.code = code
        self.reason = reason
        self.imported = imported
        super().__init__(f"line {line}: {reason} ({code})")


class _Refusal(Exception):
    def __init__(self, code: ErrorCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


# --- Export ----------------------------------------------------------------------

_line_encoder = msgspec.json.Encoder()


def export_log(
    app: LedgerApp,
    out: IO[bytes],
    *,
    after: int = 0,
    page_events: int = EXPORT_PAGE_EVENTS,
    progress: Progress | None = None,
) -> TransferReport:
    """Write every event after ``after`` to ``out`` as NDJSON, in log order."""
    started = time.perf_counter()
    buffer = bytearray()
    events = pages = 0
    first: int | None = None
    last: int | None = None
    position = after
    while True:
        notifications = app.read_log(position, page_events)
        if not notifications:
            break
        pages += 1
        for n in notifications:
            oid = n.originator_id
            line = LogLine(
                n.id,
                oid if isinstance(oid, UUID) else UUID(oid),
                n.originator_version,
                n.topic,
                msgspec.Raw(n.state),
            )
            _line_encoder.encode_into(line, buffer, len(buffer))
            buffer += b"\n"
            if len(buffer) >= EXPORT_FLUSH_BYTES:
                out.write(buffer)
                buffer.clear()
        events += len(notifications)
        position = notifications[-1].id
        first = notifications[0].id if first is None else first
        last = position
        if progress is not None:
            progress(position, events)
        if len(notifications) < page_events:
            break
    out.write(buffer)
    out.flush()
    return TransferReport(events, pages, time.perf_counter() - started, first, last)


# --- Import ----------------------------------------------------------------------


class _EventLine(msgspec.Struct, frozen=True):
    """A line decoded with its body in one pass; ``LogLine`` explains a failure."""

    position: int
    originator_id: UUID
    originator_version: int
    topic: str
    body: ev.AnyEvent


_line_decoder = msgspec.json.Decoder(LogLine)
# Decoding a line and its body in one pass saves a 1M-event import half a second.
_event_line_decoder = msgspec.json.Decoder(_EventLine)

KIND_OF: dict[type[ev.Event], type[Aggregate]] = {
    **{t: Member for t in ev.EVENT_TYPES if issubclass(t, ev.MemberEvent)},
    **{t: Trade for t in ev.EVENT_TYPES if issubclass(t, ev.TradeEvent)},
    **{t: Complaint for t in ev.EVENT_TYPES if issubclass(t, ev.ComplaintEvent)},
    ev.ComplaintSlotTaken: TradeComplaintSlot,
    **{t: SellerEnforcement for t in ev.EVENT_TYPES if issubclass(t, ev.EnforcementEvent)},
}
# The fact that creates each kind of aggregate (enforcement records have none).
CREATION: dict[type[Aggregate], type[ev.Event]] = {
    Member: ev.MemberRegistered,
    Trade: ev.TradeCreated,
    Complaint: ev.ComplaintFiled,
    TradeComplaintSlot: ev.ComplaintSlotTaken,
}


# The limits of the commands' fields that an event's type does not carry, so
# decoding does not hold a fact to them: a trade's amount is positive, and a
# fake-trade case names 1 to FAKE_TRADE_CASE_TRADES_MAX trades.
_AMOUNT_MIN: dict[type[ev.Event], int] = {ev.TradeCreated: 1}
_COUNTED: dict[type[ev.Event], tuple[str, int]] = {
    ev.FakeTradesConfirmed: ("trade_ids", FAKE_TRADE_CASE_TRADES_MAX)
}


class _Shape(NamedTuple):
    """What the field checks look at in one event type, worked out once."""

    topic: str
    times: tuple[str, ...]
    ids: tuple[str, ...]
    id_lists: tuple[str, ...]
    has_currency: bool
    # The least amount_minor a fact of this type may carry (None: it has none).
    amount_min: int | None
    # A list field and the most entries it may hold (at least one).
    counted: tuple[str, int] | None
    # The platform id that names the event's aggregate, as the aggregate keeps it.
    key: str | None


def _is_time(info: msgspec.inspect.Type) -> bool:
    if isinstance(info, msgspec.inspect.UnionType):
        return any(_is_time(member) for member in info.types)
    return isinstance(info, msgspec.inspect.DateTimeType)


def _bound_ids(event_type: type[ev.Event]) -> set[str]:
    """Id fields the aggregates' rules pin down: equal to the aggregate's (or another
    aggregate's) own, or naming something that must exist; these need no pattern."""
    if event_type in CREATION.values():
        # A trade's parties and a complaint's trade and parties must exist.
        return {"buyer_id", "seller_id", "trade_id"} if event_type is ev.ComplaintFiled else set()
    if issubclass(event_type, ev.TradeEvent):
        bound = {"trade_id", "buyer_id", "seller_id"}
        if event_type is ev.RatingGiven:
            bound.add("item_id")
        if issubclass(event_type, ev.RefundEvent) and event_type is not ev.RefundRequested:
            bound.add("refund_id")
        return bound
    if issubclass(event_type, ev.MemberEvent):
        return {"member_id"}
    if issubclass(event_type, ev.ComplaintEvent):
        return {"complaint_id", "trade_id", "buyer_id", "seller_id"}
    return {"seller_id", "trade_ids"}  # a registered seller; existing trades


def _shape(event_type: type[ev.Event]) -> _Shape:
    info = msgspec.inspect.type_info(event_type)
    if not isinstance(info, msgspec.inspect.StructType):
        raise TypeError(f"{event_type.__name__} is not a Struct")
    bound = _bound_ids(event_type)
    names = [f.name for f in info.fields if f.name not in bound]
    key = {
        Member: "member_id",
        Trade: "trade_id",
        Complaint: "complaint_id",
        SellerEnforcement: "seller_id",
    }.get(KIND_OF[event_type])
    return _Shape(
        topic=ev.topic_of(event_type),
        times=tuple(f.name for f in info.fields if _is_time(f.type)),
        ids=tuple(n for n in names if n.endswith("_id") and n != "originator_id"),
        id_lists=tuple(n for n in names if n.endswith("_ids")),
        has_currency="currency" in names,
        amount_min=_AMOUNT_MIN.get(event_type, 0) if "amount_minor" in names else None,
        counted=_COUNTED.get(event_type),
        key=key,
    )


_SHAPES = {t: _shape(t) for t in ev.EVENT_TYPES}
# The events whose rules read another aggregate (``_Importer._read_by``).
_READS_OTHERS = frozenset(
    {ev.TradeCreated, ev.ComplaintFiled, ev.ComplaintSlotTaken}
    | {t for t in ev.EVENT_TYPES if issubclass(t, ev.EnforcementEvent)}
)


def _aggregate_id(event: ev.Event) -> UUID:
    if isinstance(event, ev.MemberEvent):
        return member_aggregate_id(event.member_id)
    if isinstance(event, ev.TradeEvent):
        return trade_aggregate_id(event.trade_id)
    if isinstance(event, ev.ComplaintSlotTaken):
        return trade_complaint_slot_id(event.trade_id)
    if isinstance(event, ev.ComplaintEvent):
        return complaint_aggregate_id(event.complaint_id)
    if isinstance(event, ev.EnforcementEvent):
        return enforcement_aggregate_id(event.seller_id)
    raise TypeError(f"no aggregate for {type(event).__name__}")


def _subject(event: ev.Event) -> str:
    """The record an event belongs to, in words."""
    if isinstance(event, ev.MemberEvent):
        return f"member {event.member_id}"
    if isinstance(event, ev.TradeEvent):
        return f"trade {event.trade_id}"
    if isinstance(event, ev.ComplaintSlotTaken):
        return f"the complaint slot of trade {event.trade_id}"
    if isinstance(event, ev.ComplaintEvent):
        return f"complaint {event.complaint_id}"
    if isinstance(event, ev.EnforcementEvent):
        return f"the enforcement record of seller {event.seller_id}"
    return str(event.originator_id)


def _stored_events(app: LedgerApp, ids: list[UUID]) -> dict[UUID, list[object]]:
    """The stored events of some aggregates, each in version order.

    PostgreSQL answers with one query (the recorder reads one aggregate per
    call, a round trip each); the other stores are local and answer aggregate
    by aggregate.
    """
    recorder = app.recorder
    if not isinstance(recorder, PostgresLedgerRecorder):
        return {aggregate_id: list(app.events.get(aggregate_id)) for aggregate_id in ids}
    found: dict[UUID, list[object]] = {}
    statement = SQL(
        "SELECT originator_id, notification_id, topic, state FROM {schema}.{table} "
        "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
    ).format(
        schema=Identifier(recorder.datastore.schema),
        table=Identifier(recorder.events_table_name),
    )
    with (
        recorder.datastore.get_connection() as conn,
        conn.cursor(row_factory=tuple_row, binary=True) as curs,
    ):
        curs.execute(statement, (ids,))
        for originator_id, position, topic, state in curs:
            found.setdefault(originator_id, []).append(decode_stored(position, topic, state))
    return found


class _Write(NamedTuple):
    """A batch the writer thread is appending, and the aggregates it changed."""

    future: Future[list[int]]
    events: list[ev.Event]
    lines: list[int]
    aggregates: dict[_Key, Aggregate]


def _explain_bad_line(raw: bytes) -> NoReturn:
    """Refuse a line that does not decode, saying whether the line or its body is bad."""
    try:
        line = _line_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise _Refusal(ErrorCode.BAD_LINE, f"not an exported log line: {error}") from error
    if line.topic not in TOPICS:
        raise _Refusal(ErrorCode.UNKNOWN_TOPIC, f"unknown topic {line.topic!r}")
    try:
        decode_event(line.body)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise _Refusal(ErrorCode.BAD_BODY, f"the body is not a ledger event: {error}") from error
    # Both parts decode alone.
    raise _Refusal(ErrorCode.BAD_LINE, "not an exported log line")


class _Importer:
    """Checks events against their aggregates and appends them batch by batch.

    It is also the ``Records`` the aggregates' rules read other aggregates
    from: what this import has checked, or else what the store holds.
    """

    def __init__(
        self,
        app: LedgerApp,
        *,
        batch_events: int,
        cache_aggregates: int,
        progress: Progress | None,
        statistics_from: int = STATISTICS_FROM_EVENTS,
    ) -> None:
        if not 1 <= batch_events <= BATCH_EVENTS_MAX:
            raise ValueError(f"batch_events is 1-{BATCH_EVENTS_MAX}")
        if not 1 <= cache_aggregates <= AGGREGATE_CACHE_MAX:
            raise ValueError(f"cache_aggregates is 1-{AGGREGATE_CACHE_MAX}")
        self.app = app
        self.batch_events = batch_events
        self.cache_max = cache_aggregates
        self.progress = progress
        self.context = Context(recorded_at=app.clock.now(), book=app.book)
        # Aggregates as the store holds them (least recently used first), and
        # those the batch being checked changed, which must not be evicted
        # before it is written.
        self.cache: OrderedDict[_Key, Aggregate] = OrderedDict()
        self.pinned: dict[_Key, Aggregate] = {}
        # The batch in flight: its aggregates are neither evicted nor reloaded
        # (the store does not hold them yet) until it is written.
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-writer")
        self.writing: _Write | None = None
        # The next deadline the store's index holds for each pinned trade, so a
        # batch updates only the trades whose deadline it moved.
        self.due_before: dict[_Key, datetime | None] = {}
        self.written = 0
        self.statistics_at = statistics_from
        self.batches = 0
        self.first: int | None = None
        self.last: int | None = None
        self.started = time.perf_counter()
        self.last_export_position = 0
        # The number of the line being read or checked, for refusals.
        self.line = 0
        # A trade names two members, and prefetching derives them too: deriving
        # each member's id (uuid5) once saved a 1M-event import 1.5 s.
        self.member_key = functools.lru_cache(maxsize=MEMBER_IDS_CACHED)(member_aggregate_id)

    def report(self) -> TransferReport:
        return TransferReport(
            self.written,
            self.batches,
            time.perf_counter() - self.started,
            self.first,
            self.last,
        )

    # --- Lines -------------------------------------------------------------------

    def import_batch(self, lines: Iterator[tuple[int, bytes]]) -> bool:
        """Read, check and write the next batch; False once the source is exhausted.

        The batch is decoded ahead so the aggregates it reads can be loaded in
        bulk; a bad line ends the batch there, after the lines before it were
        checked (an earlier bad line is the one to report).
        """
        events, numbers, bad = self._read_batch(lines)
        self.prefetch(events)
        for number, event in zip(numbers, events, strict=True):
            self.line = number
            self.check(event)
        if bad is not None:
            self.line, first_bad = bad
            raise first_bad
        self.flush(events, numbers)
        return len(events) == self.batch_events

    def _read_batch(
        self, lines: Iterator[tuple[int, bytes]]
    ) -> tuple[list[ev.Event], list[int], tuple[int, _Refusal] | None]:
        """The next batch's events and line numbers, up to the first bad line, if any."""
        events: list[ev.Event] = []
        numbers: list[int] = []
        for number, raw in lines:
            try:
                events.append(self.decode_line(raw))
            except _Refusal as error:
                return events, numbers, (number, error)
            numbers.append(number)
            if len(events) == self.batch_events:
                break
        return events, numbers, None

    def decode_line(self, raw: bytes) -> ev.Event:
        """The line's event, with the checks that need only the line."""
        if len(raw) > LINE_BYTES_MAX:
            raise _Refusal(ErrorCode.LINE_TOO_LONG, f"a line is at most {LINE_BYTES_MAX:,} bytes")
        try:
            line = _event_line_decoder.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            _explain_bad_line(raw)
        if line.topic not in TOPICS:
            raise _Refusal(ErrorCode.UNKNOWN_TOPIC, f"unknown topic {line.topic!r}")
        event = line.body
        body_topic = _SHAPES[type(event)].topic
        if body_topic != line.topic:
            raise _Refusal(
                ErrorCode.TOPIC_MISMATCH,
                f"the line's topic {line.topic!r} is not the body's {body_topic!r}",
            )
        if (
            event.originator_id != line.originator_id
            or event.originator_version != line.originator_version
        ):
            raise _Refusal(
                ErrorCode.ORIGINATOR_MISMATCH,
                f"the line names {line.originator_id} v{line.originator_version}, "
                f"the body {event.originator_id} v{event.originator_version}",
            )
        if line.position <= self.last_export_position:
            raise _Refusal(
                ErrorCode.NOT_IN_LOG_ORDER,
                f"position {line.position} does not follow position {self.last_export_position}",
            )
        self.last_export_position = line.position
        return event

    # --- Aggregates ----------------------------------------------------------------

    def _in_flight(self, aggregate_id: UUID) -> Aggregate | None:
        """The aggregate if the batch being written changed it."""
        return None if self.writing is None else self.writing.aggregates.get(aggregate_id.int)

    def _unwritten(self, aggregate_id: UUID) -> Aggregate | None:
        """The aggregate if this batch or the one in flight changed it."""
        return self.pinned.get(aggregate_id.int) or self._in_flight(aggregate_id)

    def _cached(self, aggregate_id: UUID) -> Aggregate | None:
        aggregate = self._unwritten(aggregate_id)
        if aggregate is None:
            aggregate = self.cache.get(aggregate_id.int)
            if aggregate is not None:
                self.cache.move_to_end(aggregate_id.int)
        return aggregate

    def _remember(self, aggregate: Aggregate) -> None:
        self.cache[aggregate.id.int] = aggregate
        self.cache.move_to_end(aggregate.id.int)
        while len(self.cache) > self.cache_max:
            self.cache.popitem(last=False)

    def _remember_written(self, aggregates: dict[_Key, Aggregate]) -> None:
        """Cache a written batch's aggregates (none is cached: pinning took them out)."""
        for key, aggregate in aggregates.items():
            if key not in self.pinned:  # else remembered with the next batch
                self.cache[key] = aggregate
        while len(self.cache) > self.cache_max:
            self.cache.popitem(last=False)

    def prefetch(self, events: list[ev.Event]) -> None:
        """Load the stored aggregates a batch reads and the cache lacks, in bulk.

        One query per ``PREFETCH_IDS_PER_QUERY`` aggregates instead of one per
        miss: a large log touches each member again long after the LRU dropped
        it. Only a speed-up: the checks still load whatever they miss, and
        refuse what does not load.
        """
        missing = self._missing(events)
        for start in range(0, len(missing), PREFETCH_IDS_PER_QUERY):
            chunk = missing[start : start + PREFETCH_IDS_PER_QUERY]
            stored = _stored_events(self.app, [aggregate_id for aggregate_id, _ in chunk])
            for aggregate_id, kind in chunk:
                try:
                    aggregate = self._replay(kind, aggregate_id, stored.get(aggregate_id, ()))
                except _Refusal:
                    continue  # refused when (and if) its line is checked
                self._remember(aggregate)

    def _missing(self, events: list[ev.Event]) -> list[tuple[UUID, type[Aggregate]]]:
        """The aggregates a batch reads, neither cached nor created by the batch.

        The first event naming an aggregate says its kind, as when checking.
        """
        kinds: dict[_Key, type[Aggregate] | None] = {}  # None: created by the batch
        for event in events:
            if event.originator_version == 1:
                kinds[event.originator_id.int] = None  # new here: nothing stored to load
            else:
                kinds.setdefault(event.originator_id.int, KIND_OF[type(event)])
            if type(event) in _READS_OTHERS:
                for read_kind, read_id in self._read_by(event):
                    kinds.setdefault(read_id.int, read_kind)
        missing = []
        for key, kind in kinds.items():
            if key in self.cache:
                self.cache.move_to_end(key)  # so loading the others keeps it
            elif kind is not None:
                aggregate_id = UUID(int=key)
                if self._unwritten(aggregate_id) is None:
                    missing.append((aggregate_id, kind))
        return missing

    def _read_by(self, event: ev.Event) -> list[tuple[type[Aggregate], UUID]]:
        """The other aggregates the rules admitting an event read (see ``existing``)."""
        if isinstance(event, ev.TradeCreated):
            return [
                (Member, self.member_key(event.buyer_id)),
                (Member, self.member_key(event.seller_id)),
            ]
        if isinstance(event, ev.EnforcementEvent):
            seller: list[tuple[type[Aggregate], UUID]] = [
                (Member, self.member_key(event.seller_id))
            ]
            if isinstance(event, ev.FakeTradesConfirmed):
                return seller + [(Trade, trade_aggregate_id(t)) for t in event.trade_ids]
            return seller
        if isinstance(event, ev.ComplaintFiled):
            return [(Trade, trade_aggregate_id(event.trade_id))]
        if isinstance(event, ev.ComplaintSlotTaken):
            return [(Complaint, complaint_aggregate_id(event.complaint_id))]
        return []

    def _replay(self, kind: type[A], aggregate_id: UUID, stored: Iterable[object]) -> A:
        """The aggregate its stored events make (version 0 when there are none)."""
        aggregate = kind(aggregate_id).begin(self.context)
        for event in stored:
            if not isinstance(event, ev.Event):
                raise TypeError(f"{aggregate_id} holds a non-ledger event")
            # An event naming another kind's id would load that aggregate's facts.
            if KIND_OF[type(event)] is not kind:
                raise _Refusal(
                    ErrorCode.INVALID_INPUT,
                    f"{aggregate_id} is a {KIND_OF[type(event)].__name__}, not a {kind.__name__}",
                )
            aggregate.apply(event)
        return aggregate

    def _load(self, kind: type[A], aggregate_id: UUID) -> A:
        """The aggregate as the store holds it (version 0 when it holds nothing)."""
        return self._replay(kind, aggregate_id, self.app.events.get(aggregate_id))

    def existing(self, kind: type[A], aggregate_id: UUID) -> A | None:
        """An aggregate this import or the store knows (read only), or None."""
        aggregate = self._cached(aggregate_id)
        if aggregate is None:
            aggregate = self._load(kind, aggregate_id)
            self._remember(aggregate)
        if not isinstance(aggregate, kind):
            raise _Refusal(
                ErrorCode.INVALID_INPUT, f"{aggregate_id} is a {type(aggregate).__name__}"
            )
        return aggregate if aggregate.version else None

    # The other aggregates the rules read (``aggregate.Records``).

    def member(self, member_id: str) -> Member | None:
        return self.existing(Member, self.member_key(member_id))

    def trade(self, trade_id: str) -> Trade | None:
        return self.existing(Trade, trade_aggregate_id(trade_id))

    def complaint(self, complaint_id: str) -> Complaint | None:
        return self.existing(Complaint, complaint_aggregate_id(complaint_id))

    def _changing(self, kind: type[Aggregate], event: ev.Event) -> Aggregate:
        """The aggregate an event changes, pinned until its batch is written."""
        aggregate_id, key = event.originator_id, event.originator_id.int
        aggregate = self.pinned.get(key)
        if aggregate is None:
            aggregate = self._in_flight(aggregate_id) or self.cache.pop(key, None)
            if aggregate is None:
                # A first version needs no look-up: if the store holds this
                # aggregate already, the append clashes and the batch is refused.
                if event.originator_version == 1:
                    aggregate = kind(aggregate_id).begin(self.context)
                else:
                    aggregate = self._load(kind, aggregate_id)
            self.pinned[key] = aggregate
            if isinstance(aggregate, Trade):
                # A new trade has no deadline in the index (nor in the store).
                self.due_before[key] = aggregate.next_deadline() if aggregate.version else None
        return aggregate

    # --- Checks --------------------------------------------------------------------

    def check(self, event: ev.Event) -> None:
        """Refuse the event unless its fields, its place and the domain's rules allow it."""
        try:
            shape = _SHAPES[type(event)]
            self._check_fields(event, shape)
            aggregate = self._changing(KIND_OF[type(event)], event)
            self._check_place(aggregate, event, shape)
            aggregate.admit(event, self)
        except LedgerError as error:
            raise _Refusal(error.code, error.detail) from error
        try:
            aggregate.apply(event)
        except (KeyError, ValueError, TypeError, AttributeError) as error:
            raise _Refusal(
                ErrorCode.DOES_NOT_APPLY,
                f"{type(event).__name__} does not apply to {_subject(event)}: "
                f"{type(error).__name__} {error}",
            ) from error

    def _check_fields(self, event: ev.Event, shape: _Shape) -> None:
        for field in shape.times:
            value = getattr(event, field)
            if value is not None and value.tzinfo is None:
                raise _Refusal(ErrorCode.INVALID_INPUT, f"{field} needs a timezone")
        self.context.check_not_future(event.occurred_at, field="occurred_at")
        for field in shape.ids:
            value = getattr(event, field)
            if value is not None and not is_platform_id(value):
                raise _Refusal(ErrorCode.INVALID_INPUT, f"{field} {value!r} is not a platform id")
        for field in shape.id_lists:
            for value in getattr(event, field):
                if not is_platform_id(value):
                    raise _Refusal(
                        ErrorCode.INVALID_INPUT, f"{field} holds {value!r}, not a platform id"
                    )
        if shape.has_currency:
            currency = getattr(event, "currency")  # noqa: B009 - not every event has one
            if currency is not None:
                self.context.check_currency(currency)
        if shape.amount_min is not None:
            amount = getattr(event, "amount_minor")  # noqa: B009
            if amount is not None and not shape.amount_min <= amount <= AMOUNT_MINOR_MAX:
                raise _Refusal(
                    ErrorCode.INVALID_INPUT,
                    f"amount_minor {amount} is not {shape.amount_min}-{AMOUNT_MINOR_MAX:,}",
                )
        if shape.counted is not None:
            field, most = shape.counted
            if not 1 <= len(getattr(event, field)) <= most:
                raise _Refusal(ErrorCode.INVALID_INPUT, f"{field} holds 1-{most:,} entries")

    def _check_place(self, aggregate: Aggregate, event: ev.Event, shape: _Shape) -> None:
        """The event names its aggregate, follows its version, and creates it if first."""
        kind = type(aggregate)
        # The aggregate's id is derived from its platform id; one already
        # checked (or stored) need not be derived again.
        known = (
            aggregate.version > 0
            and shape.key is not None
            and getattr(aggregate, shape.key) == getattr(event, shape.key)
        )
        if not known and _aggregate_id(event) != event.originator_id:
            raise _Refusal(
                ErrorCode.INVALID_INPUT,
                f"originator {event.originator_id} is not the {kind.__name__} the event names",
            )
        if event.originator_version != aggregate.version + 1:
            raise _Refusal(
                ErrorCode.VERSION_GAP,
                f"{_subject(event)} is at v{aggregate.version} in the store and this import, "
                f"so v{event.originator_version} does not follow",
            )
        creation = CREATION.get(kind)
        if creation is not None and (type(event) is creation) != (aggregate.version == 0):
            raise _Refusal(
                ErrorCode.INVALID_INPUT,
                f"{creation.__name__} is the first fact of a {kind.__name__} and only the first",
            )

    # --- Writing -------------------------------------------------------------------

    def flush(self, events: list[ev.Event], lines: list[int]) -> None:
        """Hand the checked batch to the writer thread, once the one before is written.

        Checking the next batch overlaps the database's work on this one; at
        most one batch is in flight, so a refused write stops the import before
        anything after it is written.
        """
        if not events:
            return
        deadlines = self._deadlines()
        self.wait_for_write()
        self.writing = _Write(
            self.writer.submit(self.app.import_events, events, deadlines),
            events,
            lines,
            self.pinned,
        )
        self.pinned = {}
        self.due_before.clear()

    def _deadlines(self) -> list[DeadlineUpdate]:
        """The trades whose next deadline the batch moved (the index holds the old one)."""
        deadlines = []
        for aggregate in self.pinned.values():
            if isinstance(aggregate, Trade):
                due = aggregate.next_deadline()
                if due != self.due_before[aggregate.id.int]:
                    deadlines.append(DeadlineUpdate(aggregate.id, due))
        return deadlines

    def wait_for_write(self) -> None:
        """Wait for the batch in flight; its aggregates are then as the store holds them."""
        write, self.writing = self.writing, None
        if write is None:
            return
        try:
            positions = write.future.result()
        except IntegrityError as error:
            line, reason = self._clash(write, error)
            raise ImportRefusedError(
                line, ErrorCode.VERSION_CLASH, reason, self.report()
            ) from error
        self._remember_written(write.aggregates)
        self.written += len(write.events)
        self.batches += 1
        if positions:
            self.first = positions[0] if self.first is None else self.first
            self.last = positions[-1]
        if self.written >= self.statistics_at:
            self._refresh_statistics()
            self.statistics_at = 2 * self.written
        if self.progress is not None:
            self.progress(self.last or 0, self.written)

    def _refresh_statistics(self) -> None:
        """Let PostgreSQL plan the aggregates' reads for the table as it now is
        (the other stores have no planner statistics to refresh)."""
        recorder = self.app.recorder
        if isinstance(recorder, PostgresLedgerRecorder):
            recorder.refresh_statistics()

    def _clash(self, write: _Write, error: IntegrityError) -> tuple[int, str]:
        """The first line of a refused batch whose version the store already holds."""
        stored: dict[UUID, int] = {}
        for number, event in zip(write.lines, write.events, strict=True):
            oid = event.originator_id
            if oid not in stored:
                last = next(iter(self.app.events.get(oid, desc=True, limit=1)), None)
                stored[oid] = last.originator_version if last is not None else 0
            if event.originator_version <= stored[oid]:
                return number, (
                    f"the store already holds v{stored[oid]} of {_subject(event)}, so "
                    f"v{event.originator_version} clashes: this import does not continue "
                    "the store (was it imported before?)"
                )
        return write.lines[0], f"the store refused the batch starting here: {error}"


def _numbered_lines(source: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """The lines to import with their numbers; blank lines count but are skipped.

    A line is read up to one byte past the limit, so an over-long one is seen
    (and refused) without reading it whole.
    """
    number = 0
    while raw := source.readline(LINE_BYTES_MAX + 1):
        number += 1
        if len(raw) > LINE_BYTES_MAX or not raw.isspace():
            yield number, raw


def import_log(
    app: LedgerApp,
    source: IO[bytes],
    *,
    batch_events: int = BATCH_EVENTS_DEFAULT,
    cache_aggregates: int = AGGREGATE_CACHE_DEFAULT,
    progress: Progress | None = None,
    statistics_from: int = STATISTICS_FROM_EVENTS,
) -> TransferReport:
    """Check and append an export; raises ``ImportRefusedError`` at the first bad line.

    Blank lines are skipped. Every batch that was written before the bad line
    stays written; the error's ``imported`` report counts them. On PostgreSQL
    the events table's statistics are refreshed once ``statistics_from``
    events are written, and again each time the import's events double.
    """
    importer = _Importer(
        app,
        batch_events=batch_events,
        cache_aggregates=cache_aggregates,
        progress=progress,
        statistics_from=statistics_from,
    )
    lines = _numbered_lines(source)
    try:
        while importer.import_batch(lines):
            pass
        importer.wait_for_write()
    except _Refusal as refusal:
        importer.wait_for_write()  # the batches before the bad line's stay written
        raise ImportRefusedError(
            importer.line, refusal.code, refusal.reason, importer.report()
        ) from None
    finally:
        importer.writer.shutdown()
    return importer.report()


def describe(report: TransferReport, verb: str) -> str:
    """One line for people: counts, batches and rate."""
    where = (
        f", positions {report.first_position}-{report.last_position}"
        if report.first_position is not None
        else ""
    )
    return (
        f"{verb} {report.events:,} events in {report.batches:,} batches{where} "
        f"in {report.seconds:.2f}s ({report.events_per_second:,.0f} events/s)"
    )
