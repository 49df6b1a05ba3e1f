"""Big sellers and big buyers: years of one member's trades, made for the bulk import.

``BigMarket`` makes, from seeded ``random.Random`` draws and no wall clock,
the log of a marketplace built around a few very large members — sellers with
N trades each, buyers with N trades each — and their counterparties (a
clientele of buyers, a street of small shops). ``write_log`` writes it as the
NDJSON lines the checked bulk import reads (``ledger.transfer.import_log``,
which admits every fact again through the aggregates' rules).

Facts are recorded by the aggregates' own command methods (``Member``,
``Trade``, ``Complaint``) under one ``Context``, the way LedgerApp decides a
command — a trade's deadlines due by a step's time are settled before and
after it — only without a store round trip per command. Each trade is a short
script: created, paid, shipped, its receipt confirmed by the buyer or by the
timer (escrow released), the buyer's rating with shop scores (mostly
positive), often the seller's rating of the buyer, a few refunds after
shipping and a few complaints, in the shares of ``tools.simulator``. A few
unpaid orders close. Buyers come back, some often and some to the same item
within days, so the pair caps and the 14-day item groups of the credit rules
apply to some ratings.

Business times run over ``PERIOD_DAYS`` and end ``QUIET_DAYS`` before the
ledger's clock. A step dated after the clock is not taken (the trade is still
in flight), and every deadline due by the clock is recorded, as the deadline
worker would have done. A member's log is drawn from its own seed, so a
seller's facts do not depend on which other sizes a run makes.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from itertools import accumulate
from typing import IO, NamedTuple

import msgspec

from ledger import commands as c
from ledger.aggregate import Context
from ledger.codec import encode_event
from ledger.complaint import Complaint
from ledger.events import CloseReason, ComplaintOutcome, Dsr, Event, Party, Score, topic_of
from ledger.ids import complaint_aggregate_id, member_aggregate_id, trade_aggregate_id
from ledger.ids import trade_complaint_slot_id as complaint_slot_id
from ledger.log_line import LogLine
from ledger.member import Member
from ledger.policy import GoodsKind, PolicyBook, ShippingMethod
from ledger.trade import Trade
from tools.simulator import (
    BUYER_CONFIRMS,
    BUYER_RATES,
    BUYER_SCORE_WEIGHTS,
    BUYER_SCORE_WEIGHTS_TROUBLED,
    COMMENT_GIVEN,
    COMMENTS,
    COMPLAINT_ORDINARY,
    COMPLAINT_TROUBLED,
    COMPLAINT_TYPES,
    DAY,
    DSR_GIVEN,
    DSR_VALUES,
    DSR_WEIGHTS,
    FULL_REFUND_SHIPPED,
    GOODS_KIND_WEIGHTS,
    GOODS_KINDS,
    HOUR,
    MINUTE,
    PRICE_MAX_MINOR,
    PRICE_MEDIAN_MINOR,
    PRICE_MIN_MINOR,
    PRICE_SIGMA,
    REFUND_AFTER_SHIPPING,
    REFUND_REASON_WEIGHTS_SHIPPED,
    REFUND_REASONS_SHIPPED,
    REPEAT_ITEM,
    SCORES,
    SELLER_RATES,
    SELLER_SCORE_WEIGHTS,
    SELLER_SCORE_WEIGHTS_TROUBLED,
    SEVERITIES,
    SEVERITY_WEIGHTS,
    SHIPPING_METHODS,
    SHIPPING_WEIGHTS,
    TOP_UP_AMOUNTS_MINOR,
    UNPAID,
    UPHELD_SHARE,
)

# --- The market's shape ------------------------------------------------------------

SEED = 7
# The most trades one big member may have (the bench's biggest is a million).
TRADES_MAX = 10_000_000
PERIOD_DAYS = 3 * 365
# Orders stop this long before the clock: the last ones are still in flight.
QUIET_DAYS = 5
# A big seller's clientele: one buyer per this many of its trades (at least
# CLIENTELE_MIN). Activity is log-normal with a wide spread, so a few regulars
# buy several times a month and reach the pair cap.
TRADES_PER_BUYER = 8
CLIENTELE_MIN = 200
BUYER_ACTIVITY_SIGMA = 1.6
# The small shops a big buyer buys from, each with a short catalogue.
SHOPS = 2_000
SHOP_ITEMS = 20
SHOP_ZIPF_EXPONENT = 1.0
# A big seller's catalogue; popular items first (a skewed index into it).
CATALOGUE_ITEMS = 400
ITEM_POPULARITY_SKEW = 2.5
# Of complaints: not counterfeit (the big sellers are not violators).
COMPLAINT_KINDS = tuple(kind for kind in COMPLAINT_TYPES if kind != "counterfeit")
UNPAID_CANCELLED_BY_BUYER = 0.3
REFUND_ANSWER_MEAN_SECONDS = 8 * HOUR
EXPORT_FLUSH_BYTES = 1 << 20


def seller_id(trades: int) -> str:
    return f"big-seller-{trades}"


def buyer_id(trades: int) -> str:
    return f"big-buyer-{trades}"


class Item(NamedTuple):
    item_id: str
    kind: GoodsKind
    shipping: ShippingMethod
    price_minor: int


class Order(NamedTuple):
    """One trade to script: who, what, and when it was created."""

    trade_id: str
    buyer_id: str
    seller_id: str
    item: Item
    amount_minor: int
    created: datetime


class BigMarket:
    """The facts of the big members and of everyone they trade with."""

    def __init__(
        self,
        book: PolicyBook,
        clock: datetime,
        *,
        sellers: Sequence[int],
        buyers: Sequence[int],
        seed: int = SEED,
    ) -> None:
        for trades in (*sellers, *buyers):
            if not 1 <= trades <= TRADES_MAX:
                raise ValueError(f"a big member has 1-{TRADES_MAX:,} trades, not {trades:,}")
        self.policy = book.policy
        self.context = Context(recorded_at=clock, book=book)
        self.clock = clock
        self.start = clock - timedelta(days=PERIOD_DAYS + QUIET_DAYS)
        self.sellers = tuple(sellers)
        self.buyers = tuple(buyers)
        self.seed = seed
        biggest = max(self.sellers, default=0)
        self.clientele = [
            f"big-b{i:07d}" for i in range(max(CLIENTELE_MIN, biggest // TRADES_PER_BUYER))
        ]
        self.shops = [f"big-shop{i:05d}" for i in range(SHOPS if self.buyers else 0)]

    # --- Logs --------------------------------------------------------------------

    def members(self) -> Iterator[Event]:
        """Everyone registers as the period starts; the sellers verify their identity."""
        sellers = [*map(seller_id, self.sellers), *self.shops]
        verified = set(sellers)
        for member_id in [*sellers, *map(buyer_id, self.buyers), *self.clientele]:
            member = Member.register(
                member_aggregate_id(member_id), member_id, self.start, self.context
            )
            if member_id in verified:
                member.verify_identity(self.start + timedelta(hours=1))
            yield from member.collect_events()

    def seller_log(self, trades: int) -> Iterator[Event]:
        """A big seller's trades with its clientele, in business-time order."""
        rng = self._rng(seller_id(trades))
        return self._in_time_order(rng, self._seller_orders(rng, trades))

    def buyer_log(self, trades: int) -> Iterator[Event]:
        """A big buyer's trades with the small shops, in business-time order."""
        rng = self._rng(buyer_id(trades))
        return self._in_time_order(rng, self._buyer_orders(rng, trades))

    def _rng(self, member_id: str) -> random.Random:
        return random.Random(f"{self.seed}:{member_id}")

    # --- Orders --------------------------------------------------------------------

    def _creation_times(self, rng: random.Random, count: int) -> list[datetime]:
        span = int(timedelta(days=PERIOD_DAYS).total_seconds())
        offsets = sorted(rng.randrange(span) for _ in range(count))
        return [self.start + timedelta(seconds=offset) for offset in offsets]

    def _seller_orders(self, rng: random.Random, trades: int) -> Iterator[Order]:
        seller = seller_id(trades)
        clientele = self.clientele[: max(CLIENTELE_MIN, trades // TRADES_PER_BUYER)]
        activity = list(accumulate(rng.lognormvariate(0, BUYER_ACTIVITY_SIGMA) for _ in clientele))
        chosen = rng.choices(clientele, cum_weights=activity, k=trades)
        catalogue: list[Item] = []
        last_item: dict[str, Item] = {}
        for number, (buyer, created) in enumerate(
            zip(chosen, self._creation_times(rng, trades), strict=True), start=1
        ):
            item = last_item.get(buyer)
            if item is None or rng.random() >= REPEAT_ITEM:
                index = int(CATALOGUE_ITEMS * rng.random() ** ITEM_POPULARITY_SKEW)
                while len(catalogue) <= index:
                    catalogue.append(_new_item(rng, f"{seller}-item{len(catalogue):04d}"))
                item = catalogue[index]
            last_item[buyer] = item
            trade_id = f"{seller}-T{number:07d}"
            yield Order(trade_id, buyer, seller, item, _amount(rng, item), created)

    def _buyer_orders(self, rng: random.Random, trades: int) -> Iterator[Order]:
        buyer = buyer_id(trades)
        popularity = list(
            accumulate(1 / (rank + 1) ** SHOP_ZIPF_EXPONENT for rank in range(len(self.shops)))
        )
        chosen = rng.choices(self.shops, cum_weights=popularity, k=trades)
        catalogues: dict[str, list[Item]] = {}
        for number, (shop, created) in enumerate(
            zip(chosen, self._creation_times(rng, trades), strict=True), start=1
        ):
            catalogue = catalogues.setdefault(shop, [])
            index = int(SHOP_ITEMS * rng.random() ** ITEM_POPULARITY_SKEW)
            while len(catalogue) <= index:
                catalogue.append(_new_item(rng, f"{shop}-item{len(catalogue):02d}"))
            item = catalogue[index]
            trade_id = f"{buyer}-T{number:07d}"
            yield Order(trade_id, buyer, shop, item, _amount(rng, item), created)

    def _in_time_order(self, rng: random.Random, orders: Iterable[Order]) -> Iterator[Event]:
        """Each order's facts, merged across orders by business time.

        Orders come in creation order and a trade's facts never precede its
        creation, so every fact dated before the next creation can go out:
        only the trades still in flight are held.
        """
        held: list[tuple[datetime, int, Event]] = []
        sequence = 0
        for order in orders:
            while held and held[0][0] <= order.created:
                yield heapq.heappop(held)[2]
            for event in _Script(self, rng, order).facts():
                sequence += 1  # keeps each aggregate's facts in their order on a tie
                heapq.heappush(held, (event.occurred_at, sequence, event))
        while held:
            yield heapq.heappop(held)[2]


def _new_item(rng: random.Random, item_id: str) -> Item:
    kind: GoodsKind = rng.choices(GOODS_KINDS, weights=GOODS_KIND_WEIGHTS)[0]
    shipping: ShippingMethod = "none"
    if kind == "physical":
        shipping = rng.choices(SHIPPING_METHODS, weights=SHIPPING_WEIGHTS)[0]
    if kind == "top_up":
        return Item(item_id, kind, shipping, rng.choice(TOP_UP_AMOUNTS_MINOR))
    price = round(rng.lognormvariate(math.log(PRICE_MEDIAN_MINOR), PRICE_SIGMA))
    return Item(item_id, kind, shipping, min(max(price, PRICE_MIN_MINOR), PRICE_MAX_MINOR))


def _amount(rng: random.Random, item: Item) -> int:
    """What the order costs: a top-up its face value, anything else the price give or take."""
    if item.kind == "top_up":
        return item.price_minor
    return max(PRICE_MIN_MINOR, round(item.price_minor * (0.9 + 0.2 * rng.random())))


# --- One trade ---------------------------------------------------------------------


class _Script:
    """One order's life, decided step by step by its ``Trade`` (and ``Complaint``)."""

    def __init__(self, market: BigMarket, rng: random.Random, order: Order) -> None:
        self.market = market
        self.policy = market.policy
        self.rng = rng
        self.order = order
        self.trade = Trade.create(
            trade_aggregate_id(order.trade_id),
            c.CreateTrade(
                trade_id=order.trade_id,
                buyer_id=order.buyer_id,
                seller_id=order.seller_id,
                item_id=order.item.item_id,
                amount_minor=order.amount_minor,
                currency=self.policy.currency,
                goods_kind=order.item.kind,
                shipping=order.item.shipping,
                occurred_at=order.created,
            ),
            market.context,
        )
        self.stopped = False
        self.troubled = False  # refunded: ratings are harsher and complaints likelier
        self.others: list[Event] = []

    def facts(self) -> list[Event]:
        """Every fact of the trade (and of its complaint) up to the ledger's clock."""
        paid = self._pay()
        if paid is not None and self._ship_and_confirm(paid):
            self._rate()
        self.trade.settle(self.market.clock)  # what the deadline worker records
        if paid is not None:
            self._complaint(paid)
        return [*self.trade.collect_events(), *self.others]

    # --- Steps -----------------------------------------------------------------------

    def _take(self, at: datetime, act: Callable[[datetime], None]) -> bool:
        """Take a step as LedgerApp decides a command; none after the clock, nor after that."""
        if self.stopped or at > self.market.clock:
            self.stopped = True
            return False
        self.trade.settle(at)
        act(at)
        self.trade.settle(at)  # a step can start a deadline already due (a top-up's timer)
        return True

    def _seconds(self, low: float, high: float) -> timedelta:
        return timedelta(seconds=low + (high - low) * self.rng.random())

    def _chance(self, p: float) -> bool:
        return self.rng.random() < p

    def _pay(self) -> datetime | None:
        """When the buyer paid; None for an order left unpaid (it closes)."""
        created, trade_id = self.order.created, self.order.trade_id
        if self._chance(UNPAID):
            reason: CloseReason = (
                "buyer_cancelled" if self._chance(UNPAID_CANCELLED_BY_BUYER) else "unpaid"
            )
            closed = created + self._seconds(5 * MINUTE, 72 * HOUR)
            self._take(
                closed,
                lambda at: self.trade.close(
                    c.CloseTrade(trade_id=trade_id, reason=reason, occurred_at=at)
                ),
            )
            return None
        paid = created + timedelta(seconds=30 + self.rng.expovariate(1 / (15 * MINUTE)))
        return paid if self._take(paid, self.trade.pay) else None

    def _ship_and_confirm(self, paid: datetime) -> bool:
        """Ship, maybe refund part or all, then confirm receipt; whether it succeeded."""
        item = self.order.item
        if item.kind == "physical":
            shipped = paid + self._seconds(20 * MINUTE, 40 * HOUR)
        else:
            shipped = paid + self._seconds(MINUTE, 30 * MINUTE)
        if not self._take(shipped, self.trade.ship):
            return False
        if self.trade.succeeded_at is not None:
            return True  # confirmed with the shipment (a top-up's zero-day timer)
        due = self.trade.confirm_due_at
        if due is None:
            raise RuntimeError(f"trade {self.order.trade_id} shipped without a confirm timer")
        earliest = shipped
        if self._chance(REFUND_AFTER_SHIPPING):
            answered = self._refund(shipped, due)
            if answered is None or self.trade.closed_at is not None:
                return False
            due, earliest = self.trade.confirm_due_at or due, answered
        if self._chance(BUYER_CONFIRMS[item.kind]):
            delivered = self._seconds(HOUR, 4 * DAY) if item.kind == "physical" else timedelta()
            confirm = (
                earliest + delivered + timedelta(seconds=self.rng.expovariate(1 / (20 * HOUR)))
            )
            if confirm < due - timedelta(minutes=1):
                return self._take(confirm, self.trade.confirm_receipt)
        return due <= self.market.clock  # confirmed by the timer when the next step settles

    def _refund(self, shipped: datetime, due: datetime) -> datetime | None:
        """A refund asked while the confirm timer runs, which the seller agrees to; when."""
        self.troubled = True
        order = self.order
        requested = shipped + (due - shipped) * (0.05 + 0.75 * self.rng.random())
        full = self._chance(FULL_REFUND_SHIPPED)
        amount = (
            order.amount_minor
            if full
            else max(1, order.amount_minor * self.rng.randint(10, 60) // 100)
        )
        refund_id = f"{order.trade_id}-R1"
        request = c.RequestRefund(
            trade_id=order.trade_id,
            refund_id=refund_id,
            amount_minor=amount,
            reason=self.rng.choices(REFUND_REASONS_SHIPPED, weights=REFUND_REASON_WEIGHTS_SHIPPED)[
                0
            ],
            with_return=False,
            occurred_at=requested,
        )
        if not self._take(requested, lambda at: self.trade.request_refund(request)):
            return None
        silence = self.policy.refund.seller_silence(shipped=True, goods_kind=order.item.kind)
        answer = min(
            timedelta(seconds=self.rng.expovariate(1 / REFUND_ANSWER_MEAN_SECONDS)), 0.9 * silence
        )
        answered = requested + answer + timedelta(minutes=1)
        if not self._take(answered, lambda at: self.trade.agree_refund(refund_id, at)):
            return None
        return answered

    def _rate(self) -> None:
        """The buyer's and the seller's ratings, each in the window, in time order."""
        succeeded = self.trade.succeeded_at or self.trade.confirm_due_at
        if succeeded is None:
            raise RuntimeError(f"trade {self.order.trade_id} is not on its way to success")
        closes = succeeded + timedelta(days=self.policy.rating.window_days)
        raters: tuple[tuple[Party, float, int], ...] = (
            ("buyer", BUYER_RATES, 36 * HOUR),
            ("seller", SELLER_RATES, 48 * HOUR),
        )
        planned: list[c.GiveRating] = []
        for rater, p, mean_seconds in raters:
            if not self._chance(p):
                continue
            given = succeeded + timedelta(seconds=MINUTE + self.rng.expovariate(1 / mean_seconds))
            if given >= closes - timedelta(minutes=1):
                continue
            score = self.rng.choices(SCORES, weights=_scores(rater, self.troubled))[0]
            planned.append(
                c.GiveRating(
                    trade_id=self.order.trade_id,
                    rater=rater,
                    score=score,
                    dsr=self._dsr(score) if rater == "buyer" and self._chance(DSR_GIVEN) else None,
                    comment=self.rng.choice(COMMENTS[score]) if self._chance(COMMENT_GIVEN) else "",
                    occurred_at=given,
                )
            )
        for rating in sorted(planned, key=lambda r: r.occurred_at):
            self._give(rating)

    def _give(self, rating: c.GiveRating) -> None:
        self._take(rating.occurred_at, lambda _: self.trade.give_rating(rating))

    def _dsr(self, score: Score) -> Dsr:
        a, b, d, e = self.rng.choices(DSR_VALUES, weights=DSR_WEIGHTS[score], k=4)
        return Dsr(as_described=a, service=b, shipping_speed=d, logistics=e)

    def _complaint(self, paid: datetime) -> None:
        """A customer-service case about the trade, ruled some days later."""
        if not self._chance(COMPLAINT_TROUBLED if self.troubled else COMPLAINT_ORDINARY):
            return
        filed = paid + self._seconds(2 * DAY, 12 * DAY)
        if filed > self.market.clock:
            return
        order = self.order
        complaint_id = f"{order.trade_id}-C1"
        kind = self.rng.choice(COMPLAINT_KINDS)
        case, slot = Complaint.file(
            complaint_aggregate_id(complaint_id),
            complaint_slot_id(order.trade_id),
            c.FileComplaint(
                complaint_id=complaint_id,
                trade_id=order.trade_id,
                type=kind,
                severity=self.rng.choices(SEVERITIES, weights=SEVERITY_WEIGHTS)[0],
                filed_by=order.buyer_id,
                occurred_at=filed,
            ),
            self.trade,
            self.market.context,
        )
        ruled = filed + self._seconds(DAY, 8 * DAY)
        if ruled <= self.market.clock:
            outcome: ComplaintOutcome = (
                "upheld" if self._chance(UPHELD_SHARE[kind]) else "dismissed"
            )
            case.rule(outcome, ruled)
        self.others += [*case.collect_events(), *slot.collect_events()]


def _scores(rater: Party, troubled: bool) -> tuple[int, ...]:
    if rater == "buyer":
        return BUYER_SCORE_WEIGHTS_TROUBLED if troubled else BUYER_SCORE_WEIGHTS
    return SELLER_SCORE_WEIGHTS_TROUBLED if troubled else SELLER_SCORE_WEIGHTS


# --- Lines -------------------------------------------------------------------------


def write_log(events: Iterable[Event], out: IO[bytes]) -> int:
    """Write events as exported log lines, positions from 1; how many were written."""
    encoder = msgspec.json.Encoder()
    buffer = bytearray()
    written = 0
    for written, event in enumerate(events, start=1):
        line = LogLine(
            written,
            event.originator_id,
            event.originator_version,
            topic_of(type(event)),
            msgspec.Raw(encode_event(event)),
        )
        encoder.encode_into(line, buffer, len(buffer))
        buffer += b"\n"
        if len(buffer) >= EXPORT_FLUSH_BYTES:
            out.write(buffer)
            buffer.clear()
    out.write(buffer)
    out.flush()
    return written
