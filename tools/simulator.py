"""A deterministic marketplace simulator: realistic load that obeys every rule.

``simulate`` plans a whole marketplace from a seeded ``random.Random`` — no
wall clock: business times run from ``config.start`` over ``config.days`` —
and appends it through ``LedgerApp``, one command at a time, in business-time
order:

- members register (some verify their identity) before they first act;
- trades follow a Zipf-like seller popularity (a few big shops, a long tail),
  with repeat buyers who go back to shops and items they know, goods kinds and
  shipping methods in plausible shares, and log-normal prices in minor units;
- each trade is a script planned against the write-side policy (timers,
  silences, windows): paid, shipped, confirmed by the buyer or left to the
  automatic confirmation; rated by both sides (about 98-99 % positive, shop
  scores mostly 5 and 4), some ratings revised, withdrawn, explained, followed
  up or shielded; a few percent refunded (before or after shipping, with or
  without return, partial or full, agreed, rejected or left to silence), some
  disputed and ruled; complaints with types, severities and rulings;
- a few violators get violations and search-cheating records;
- credit-farming rings: a fresh shop and a handful of fresh buyer accounts
  trading cheap items (1 yuan and a little more) with each other in bursts,
  all rated positive, which the scoring caps blunt; about half the rings are
  later confirmed fake (``ConfirmFakeTrades``), which reverses them.

Deadlines are never commanded: the script knows when the ledger will fire them
(automatic receipt, refund by silence, returns, default ratings) and plans
every later command of a trade after them, and ``simulate`` runs the deadline
worker once per simulated day and at the end. Commands dated after the period
are not sent, so the marketplace is a snapshot with trades still in flight.

Every id carries the run tag (seed and a digest of the configuration) and
every command a fixed idempotency key, so running the same simulation again
replays it and writes nothing, and different simulations can share a store.
The ledger's clock must stand after the simulated period (it refuses business
times more than its clock-skew allowance ahead of it): ``trustledger simulate``
uses the real clock when the period is past and a ``FixedClock`` otherwise.
Do not run a deadline worker on the real clock (``trustledger serve``) against
the same store while a past period is being simulated: it would fire every
deadline of the period at once, and the simulation's later commands on those
trades would be refused (``out_of_order``; rule 13 of the README).

Planning is lazy: trades are planned in creation order and only the commands
still ahead of the next creation are held, so memory stays small whatever the
number of trades.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any, TypeVar, get_args

import msgspec

from ledger import commands as c
from ledger.app import Appended, LedgerApp, Origin
from ledger.errors import LedgerError
from ledger.events import (
    CloseReason,
    CompensationKind,
    ComplaintOutcome,
    DisputeOutcome,
    Dsr,
    Party,
    RefundReason,
    Score,
    SearchCheatingKind,
)
from ledger.policy import ComplaintType, GoodsKind, Policy, Severity, ShippingMethod

T = TypeVar("T")

# --- Named limits ------------------------------------------------------------------

MEMBERS_MIN = 10
MEMBERS_MAX = 1_000_000
TRADES_MIN = 1
TRADES_MAX = 5_000_000
DAYS_MIN = 1
DAYS_MAX = 3_650
SEED_MAX = 2**63 - 1
FARMING_RINGS_MAX = 100
VIOLATORS_MAX = 1_000
RING_TRADES_MIN = 12
RING_TRADES_MAX = 1_000  # below FAKE_TRADE_CASE_TRADES_MAX, so one case names a whole ring
RING_SHARE_OF_TRADES_MAX = 0.5
RING_BUYERS_MIN, RING_BUYERS_MAX = 3, 6
RING_ITEMS_MIN, RING_ITEMS_MAX = 1, 3
RING_BURST_MIN, RING_BURST_MAX = 3, 10  # trades in one burst
SEARCH_CHEATING_ITEMS_PER_CASE_MAX = 6
ITEMS_PER_SELLER_MIN, ITEMS_PER_SELLER_MAX = 3, 400
BUYER_HISTORY_MAX = 20
PROGRESS_EVERY_COMMANDS = 500
REFUSAL_EXAMPLES_MAX = 20
CALLER = "simulator"
DEFAULT_START = datetime(2025, 1, 1, tzinfo=UTC)

# --- The marketplace's shape (shares are per trade unless stated) ----------------------

SELLER_SHARE_OF_MEMBERS = 0.1
SELLER_ZIPF_EXPONENT = 1.07
BUYER_ACTIVITY_SIGMA = 1.0
REPEAT_SELLER = 0.35  # a buyer with history goes back to a known shop
REPEAT_ITEM = 0.45  # ... and buys the same item again
VERIFIED_SELLERS = 0.7
VERIFIED_BUYERS = 0.3
# Members who exist when the period starts (they register on its first day).
SELLERS_ON_DAY_ONE, BUYERS_ON_DAY_ONE = 0.9, 0.6
BUSINESS_GROWTH = 0.3  # the last day has this much more business than the first
GOODS_KINDS: tuple[GoodsKind, ...] = ("physical", "virtual", "auto_delivery", "top_up")
GOODS_KIND_WEIGHTS = (86, 6, 4, 4)
SHIPPING_METHODS: tuple[ShippingMethod, ...] = ("express", "surface_mail", "overseas", "none")
SHIPPING_WEIGHTS = (90, 3, 4, 3)
PRICE_MEDIAN_MINOR = 6_000  # 60 yuan
PRICE_SIGMA = 1.1
PRICE_MIN_MINOR, PRICE_MAX_MINOR = 100, 5_000_000
TOP_UP_AMOUNTS_MINOR = (1_000, 2_000, 3_000, 5_000, 10_000, 20_000)
# Orders per hour of the day in Asia/Shanghai (UTC+8), evening peak.
LOCAL_HOUR_WEIGHTS = (3, 2, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 8, 7, 7, 7, 7, 7, 8, 9, 11, 12, 10, 6)
UTC_OFFSET_HOURS = 8

# Farming rings: cheap goods, a third of them never shipped for real (virtual);
# amounts of exactly one major unit, of 1-10 units, and of 10-30 units.
RING_PHYSICAL = 0.6
RING_ONE_UNIT, RING_UNDER_TEN_UNITS = 0.45, 0.35

UNPAID = 0.03
SELLER_CANCELS = 0.006
LATE_SHIPMENT = 0.04
TIMER_EXTENSION = 0.03
REFUND_BEFORE_SHIPPING = 0.012
REFUND_AFTER_SHIPPING = 0.03
# Of refund requests: the seller agrees, stays silent or rejects (the rest: the buyer cancels).
REFUND_ANSWERS_SHIPPED = (0.5, 0.12, 0.25)
REFUND_ANSWERS_NOT_SHIPPED = (0.7, 0.15, 0.05)
FULL_REFUND_SHIPPED, FULL_REFUND_NOT_SHIPPED = 0.6, 0.85
WITH_RETURN = 0.45  # of refunds on shipped physical goods
RETURN_NEVER_SHIPPED = 0.1
RETURN_CONFIRMED_BY_SELLER = 0.8  # the rest by silence
ESCALATED, CANCELLED_AFTER_REJECTION = 0.5, 0.25  # the rest closes by itself
SELLER_AT_FAULT = 0.55
BUYER_CONFIRMS = {"physical": 0.72, "virtual": 0.5, "auto_delivery": 0.4, "top_up": 0.0}
BUYER_RATES = 0.7
SELLER_RATES = 0.75
DSR_GIVEN = 0.9
COMMENT_GIVEN = 0.5
REVISED, WITHDRAWN = 0.3, 0.1  # of neutral and negative ratings
EXPLAINED_NON_POSITIVE, EXPLAINED_POSITIVE = 0.5, 0.01
FOLLOW_UP = 0.03
SHIELDED = 0.001
COMPLAINT_ORDINARY, COMPLAINT_TROUBLED, COMPLAINT_VIOLATOR = 0.002, 0.08, 0.03

SCORES: tuple[Score, ...] = ("positive", "neutral", "negative")
BUYER_SCORE_WEIGHTS = (9_900, 55, 45)
BUYER_SCORE_WEIGHTS_TROUBLED = (8_800, 600, 600)
SELLER_SCORE_WEIGHTS = (9_960, 20, 20)
SELLER_SCORE_WEIGHTS_TROUBLED = (9_000, 500, 500)
DSR_VALUES = (5, 4, 3, 2, 1)
DSR_WEIGHTS: dict[Score, tuple[int, ...]] = {
    "positive": (780, 170, 40, 7, 3),
    "neutral": (100, 300, 400, 150, 50),
    "negative": (30, 150, 250, 270, 300),
}
COMMENTS: dict[Score, tuple[str, ...]] = {
    "positive": (
        "Great, exactly as described.",
        "Fast shipping, well packed.",
        "好评",
        "Second purchase, still happy.",
        "Good value.",
    ),
    "neutral": ("OK, a bit slow.", "Average quality.", "一般般。"),
    "negative": ("Not as described.", "Arrived damaged.", "Seller never replied.", "差评。"),
}
REFUND_REASONS_SHIPPED: tuple[RefundReason, ...] = (
    "not_received",
    "not_as_described",
    "damaged",
    "changed_mind",
    "other",
)
REFUND_REASON_WEIGHTS_SHIPPED = (20, 30, 20, 25, 5)
COMPLAINT_TYPES: tuple[ComplaintType, ...] = (
    "late_shipment",
    "not_as_described",
    "counterfeit",
    "service_attitude",
    "other",
)
UPHELD_SHARE: dict[ComplaintType, float] = {
    "late_shipment": 0.5,
    "not_as_described": 0.45,
    "counterfeit": 0.6,
    "service_attitude": 0.3,
    "other": 0.2,
}
SEVERITIES: tuple[Severity, ...] = ("minor", "moderate", "severe")
SEVERITY_WEIGHTS = (60, 30, 10)
# Every kind the ledger knows, in the order it declares them (seeded draws depend on it).
SEARCH_CHEATING_KINDS: tuple[SearchCheatingKind, ...] = get_args(SearchCheatingKind)
VIOLATION_REASONS = (
    "prohibited item listed",
    "misleading product information",
    "unauthorised use of a brand",
    "abusive messages to a buyer",
    "failure to honour a promise",
)

MINUTE = 60
HOUR = 3_600
DAY = 86_400


class SimulationConfig(msgspec.Struct, frozen=True, kw_only=True):
    members: int = 1_000
    trades: int = 10_000
    days: int = 90
    seed: int = 1
    farming_rings: int = 2
    violators: int = 3
    start: datetime = DEFAULT_START

    def check(self) -> None:
        """Refuse a configuration outside the named limits (ValueError names the field)."""
        for name, low, high in (
            ("members", MEMBERS_MIN, MEMBERS_MAX),
            ("trades", TRADES_MIN, TRADES_MAX),
            ("days", DAYS_MIN, DAYS_MAX),
            ("seed", 0, SEED_MAX),
            ("farming_rings", 0, FARMING_RINGS_MAX),
            ("violators", 0, VIOLATORS_MAX),
        ):
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"{name} must be {low:,}-{high:,}, not {value:,}")
        if self.start.tzinfo is None:
            raise ValueError("start needs a timezone")
        if self.violators > self.sellers:
            raise ValueError(f"violators must be at most the {self.sellers} sellers")
        if self.farming_rings * self.ring_trades > self.trades * RING_SHARE_OF_TRADES_MAX:
            raise ValueError(
                f"{self.farming_rings} farming rings of {self.ring_trades} trades are more than "
                f"{RING_SHARE_OF_TRADES_MAX:.0%} of {self.trades} trades"
            )

    @property
    def end(self) -> datetime:
        return self.start.astimezone(UTC) + timedelta(days=self.days)

    @property
    def sellers(self) -> int:
        return min(max(2, round(self.members * SELLER_SHARE_OF_MEMBERS)), self.members - 2)

    @property
    def ring_trades(self) -> int:
        """Trades per farming ring."""
        if not self.farming_rings:
            return 0
        share = round(self.trades * 0.06 / self.farming_rings)
        return min(max(share, RING_TRADES_MIN), RING_TRADES_MAX)

    @property
    def run_id(self) -> str:
        """The tag in every id and key: the seed and a digest of the whole configuration."""
        digest = hashlib.sha256(msgspec.json.encode(self)).hexdigest()[:6]
        return f"s{self.seed}-{digest}"


class SimulationReport(msgspec.Struct, kw_only=True):
    """What a run generated, counted from the commands the ledger accepted."""

    run_id: str
    start: datetime
    end: datetime
    members: int = 0
    verified: int = 0
    sellers: int = 0
    trades: int = 0
    ring_trades: int = 0
    rings: int = 0
    commands: int = 0
    commands_by_kind: dict[str, int] = msgspec.field(default_factory=dict)
    replayed: int = 0
    events_written: int = 0
    deadline_events: int = 0
    ratings: dict[str, int] = msgspec.field(default_factory=dict)
    buyer_ratings: dict[str, int] = msgspec.field(default_factory=dict)
    seller_ratings: dict[str, int] = msgspec.field(default_factory=dict)
    revisions: int = 0
    withdrawals: int = 0
    explanations: int = 0
    follow_ups: int = 0
    shielded: int = 0
    closed_unpaid_or_cancelled: int = 0
    refunds: int = 0
    refunds_before_shipping: int = 0
    refunds_with_return: int = 0
    refunds_partial: int = 0
    disputes: int = 0
    disputes_seller_at_fault: int = 0
    complaints: int = 0
    complaints_upheld: int = 0
    violations: int = 0
    search_cheating: int = 0
    fake_cases: int = 0
    fake_trades: int = 0
    refused: int = 0
    refused_by_code: dict[str, int] = msgspec.field(default_factory=dict)
    refusal_examples: list[str] = msgspec.field(default_factory=list)

    def positive_share(self, rater: Party = "buyer") -> float | None:
        scores = self.buyer_ratings if rater == "buyer" else self.seller_ratings
        total = sum(scores.values())
        return scores.get("positive", 0) / total if total else None


# --- Planning --------------------------------------------------------------------------


class _Item:
    __slots__ = ("item_id", "kind", "price", "shipping")

    def __init__(self, item_id: str, kind: GoodsKind, shipping: ShippingMethod, price: int) -> None:
        self.item_id, self.kind, self.shipping, self.price = item_id, kind, shipping, price


class _Seller:
    __slots__ = ("index", "items", "member_id", "size", "violator")

    def __init__(self, index: int, member_id: str, size: int) -> None:
        self.index = index  # the member's index
        self.member_id = member_id
        self.size = size  # catalogue size; items are made when first sold
        self.items: list[_Item] = []
        self.violator = False


class _Trade:
    """What one trade's script needs to know while it is planned."""

    __slots__ = ("amount", "buyer", "disputed", "item", "refunds", "seller", "trade_id", "troubled")

    def __init__(self, trade_id: str, buyer: str, seller: _Seller, item: _Item, amount: int):
        self.trade_id, self.buyer, self.seller = trade_id, buyer, seller
        self.item, self.amount = item, amount
        self.troubled = False  # late, refunded or disputed: ratings and complaints follow
        self.refunds = 0
        self.disputed = False


class Notes:
    """What the commands alone do not say, for the report."""

    def __init__(self) -> None:
        self.ring_trade_ids: set[str] = set()
        self.refunds_before_shipping: set[str] = set()
        self.refunds_partial: set[str] = set()


Planned = tuple[int, int, int, c.Command]  # (seconds after start, priority, sequence, command)


class _Planner:
    """Plans the marketplace and hands its commands out in business-time order.

    Trades are planned in creation order; each trade's script is pushed onto
    a heap, and every command dated before the next trade's creation is
    handed out first (no later script can start before it), so only the
    commands still ahead are held, not the whole simulation. A member
    registers at a planned time, or just before their first trade when that
    comes earlier.
    """

    def __init__(self, config: SimulationConfig, policy: Policy) -> None:
        config.check()
        self.config = config
        self.policy = policy
        self.rng = random.Random(config.seed)
        self.run = config.run_id
        self.start = config.start.astimezone(UTC)
        self.horizon = config.days * DAY
        self.notes = Notes()
        self._heap: list[Planned] = []
        self._sequence = 0
        self._trade_number = 0
        self._ring_trade_number = 0
        self._handed_out_at = 0
        self.sellers = [_Seller(i, f"{self.run}-shop{i:05d}", 0) for i in range(config.sellers)]
        self.member_ids = [s.member_id for s in self.sellers] + [
            f"{self.run}-u{i:06d}" for i in range(config.members - config.sellers)
        ]
        self.registers_at = [
            self._registration_time(SELLERS_ON_DAY_ONE if i < config.sellers else BUYERS_ON_DAY_ONE)
            for i in range(config.members)
        ]
        self.registered = bytearray(config.members)
        self._registrations = sorted(range(config.members), key=self.registers_at.__getitem__)
        self._next_registration = 0

    # --- Small helpers ---------------------------------------------------------------

    def emit(self, at: int, make: Callable[[datetime], c.Command], priority: int = 1) -> None:
        """Plan a command; one dated after the period is not sent."""
        if at > self.horizon:
            return
        self._sequence += 1
        command = make(self.start + timedelta(seconds=at))
        heapq.heappush(self._heap, (at, priority, self._sequence, command))

    def emit_creation(
        self, at: int, trade_id: str, *, buyer: str, seller: str, item: _Item, amount: int
    ) -> None:
        """Plan a trade of one item, in the policy's currency."""
        self.emit(
            at,
            lambda t: c.CreateTrade(
                trade_id=trade_id,
                buyer_id=buyer,
                seller_id=seller,
                item_id=item.item_id,
                amount_minor=amount,
                currency=self.policy.currency,
                goods_kind=item.kind,
                shipping=item.shipping,
                occurred_at=t,
            ),
        )

    def uniform(self, low: float, high: float) -> int:
        return int(low + (high - low) * self.rng.random())

    def pick(self, options: tuple[T, ...], weights: tuple[float, ...]) -> T:
        return self.rng.choices(options, weights=weights)[0]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def next_trade_id(self) -> str:
        self._trade_number += 1
        return f"{self.run}-T{self._trade_number:07d}"

    # --- The marketplace -------------------------------------------------------------

    def commands(self) -> Iterator[tuple[int, c.Command]]:
        """Every command, in business-time order, with its time in seconds after the start."""
        config = self.config
        for ring in range(config.farming_rings):
            self._plan_ring(ring)
        for seller in self._choose_violators():
            self._plan_violator(seller)
        weights = [1 / (rank + 1) ** SELLER_ZIPF_EXPONENT for rank in range(len(self.sellers))]
        for seller, weight in zip(self.sellers, weights, strict=True):
            share = round(ITEMS_PER_SELLER_MAX * weight / weights[0])
            seller.size = min(max(ITEMS_PER_SELLER_MIN, share), ITEMS_PER_SELLER_MAX)
        seller_cumulative = list(accumulate(weights))
        buyer_cumulative = list(
            accumulate(
                self.rng.lognormvariate(0, BUYER_ACTIVITY_SIGMA)
                for _ in range(config.members - config.sellers)
            )
        )
        history: dict[int, list[tuple[_Seller, _Item]]] = {}
        ordinary = config.trades - config.farming_rings * config.ring_trades
        for created in self._creation_times(ordinary):
            yield from self._hand_out(before=created)
            buyer = config.sellers + _weighted_index(self.rng, buyer_cumulative)
            known = history.setdefault(buyer, [])
            if known and self.chance(REPEAT_SELLER):
                seller, item = self.rng.choice(known)
                if not self.chance(REPEAT_ITEM):
                    item = self._item_of(seller)
            else:
                seller = self.sellers[_weighted_index(self.rng, seller_cumulative)]
                item = self._item_of(seller)
            known.append((seller, item))
            if len(known) > BUYER_HISTORY_MAX:
                del known[0]
            for member in (buyer, seller.index):
                self._register_by(member, created)
            amount = item.price
            if item.kind != "top_up":
                amount = max(PRICE_MIN_MINOR, round(amount * (0.9 + 0.2 * self.rng.random())))
            trade = _Trade(self.next_trade_id(), self.member_ids[buyer], seller, item, amount)
            self._plan_trade(trade, created)
        yield from self._hand_out(before=self.horizon + 1)

    def _hand_out(self, *, before: int) -> Iterator[tuple[int, c.Command]]:
        """Register the members due by then, and hand out every command dated before it."""
        order, due = self._registrations, self.registers_at
        while (
            self._next_registration < len(order) and due[order[self._next_registration]] <= before
        ):
            member = order[self._next_registration]
            self._next_registration += 1
            if not self.registered[member]:
                self._register(member, due[member])
        heap = self._heap
        while heap and heap[0][0] < before:
            at, _, _, command = heapq.heappop(heap)
            self._handed_out_at = at
            yield at, command

    def _registration_time(self, on_day_one: float) -> int:
        if self.chance(on_day_one):
            return self.uniform(0, min(DAY, self.horizon))
        return self.uniform(0, self.horizon)

    def _register_by(self, member: int, at: int) -> None:
        """A member not registered yet signs up shortly before their first trade."""
        if not self.registered[member]:
            signed_up = at - self.uniform(5 * MINUTE, 2 * HOUR)
            self._register(member, max(self._handed_out_at, signed_up, 0))

    def _register(self, member: int, at: int) -> None:
        self.registered[member] = 1
        verified = VERIFIED_SELLERS if member < self.config.sellers else VERIFIED_BUYERS
        self._member(self.member_ids[member], at, verified)

    def _member(self, member_id: str, at: int, verified: float) -> None:
        self.emit(at, lambda t: c.RegisterMember(member_id=member_id, occurred_at=t), priority=0)
        if self.chance(verified):
            verify_at = at + self.uniform(HOUR, 10 * DAY)
            self.emit(verify_at, lambda t: c.VerifyIdentity(member_id=member_id, occurred_at=t))

    def _choose_violators(self) -> list[_Seller]:
        """Violators come from the middle of the popularity curve, not the very top."""
        pool = self.sellers[min(2, len(self.sellers) - self.config.violators) :]
        chosen = self.rng.sample(pool, self.config.violators)
        for seller in chosen:
            seller.violator = True
        return chosen

    def _creation_times(self, count: int) -> Iterator[int]:
        """Order creation times, sorted: busier later in the period and in the evening."""
        days = self.config.days
        growth = [1 + BUSINESS_GROWTH * day / days for day in range(days)]
        total = sum(growth)
        per_day = [int(count * g / total) for g in growth]
        for day in range(count - sum(per_day)):  # the rounding remainder, one each
            per_day[days - 1 - day % days] += 1
        hours = range(24)
        cumulative = list(
            accumulate(LOCAL_HOUR_WEIGHTS[(h + UTC_OFFSET_HOURS) % 24] for h in hours)
        )
        for day, orders in enumerate(per_day):
            times = [
                day * DAY + hour * HOUR + self.rng.randrange(HOUR)
                for hour in self.rng.choices(hours, cum_weights=cumulative, k=orders)
            ]
            times.sort()
            yield from times

    def _item_of(self, seller: _Seller) -> _Item:
        # Popular items first: a skewed index into the catalogue.
        index = int(seller.size * self.rng.random() ** 2.5)
        while len(seller.items) <= index:
            seller.items.append(self._new_item(f"{seller.member_id}-item{len(seller.items):04d}"))
        return seller.items[index]

    def _new_item(self, item_id: str) -> _Item:
        kind = self.pick(GOODS_KINDS, GOODS_KIND_WEIGHTS)
        shipping: ShippingMethod = (
            self.pick(SHIPPING_METHODS, SHIPPING_WEIGHTS) if kind == "physical" else "none"
        )
        if kind == "top_up":
            price = self.rng.choice(TOP_UP_AMOUNTS_MINOR)
        else:
            price = round(self.rng.lognormvariate(math.log(PRICE_MEDIAN_MINOR), PRICE_SIGMA))
            price = min(max(price, PRICE_MIN_MINOR), PRICE_MAX_MINOR)
        return _Item(item_id, kind, shipping, price)

    # --- One ordinary trade ----------------------------------------------------------

    def _plan_trade(self, trade: _Trade, created: int) -> None:
        tid, item = trade.trade_id, trade.item
        self.emit_creation(
            created,
            tid,
            buyer=trade.buyer,
            seller=trade.seller.member_id,
            item=item,
            amount=trade.amount,
        )
        if self.chance(UNPAID):
            reason: CloseReason = "buyer_cancelled" if self.chance(0.3) else "unpaid"
            closed = created + self.uniform(5 * MINUTE, 72 * HOUR)
            self.emit(closed, lambda t: c.CloseTrade(trade_id=tid, reason=reason, occurred_at=t))
            return
        paid = created + 30 + int(self.rng.expovariate(1 / (15 * MINUTE)))
        self.emit(paid, lambda t: c.PayIntoEscrow(trade_id=tid, occurred_at=t))
        if self.chance(SELLER_CANCELS):
            reason = "out_of_stock" if self.chance(0.6) else "seller_cancelled"
            closed = paid + self.uniform(HOUR, 2 * DAY)
            self.emit(closed, lambda t: c.CloseTrade(trade_id=tid, reason=reason, occurred_at=t))
            return
        if item.kind == "physical":
            late = self.chance(LATE_SHIPMENT)
            trade.troubled = late
            delay = self.uniform(3 * DAY, 8 * DAY) if late else self.uniform(20 * MINUTE, 40 * HOUR)
        else:
            delay = self.uniform(MINUTE, 30 * MINUTE)
        ship_at = paid + delay
        escrow = trade.amount
        if self.chance(REFUND_BEFORE_SHIPPING):
            requested = paid + self.uniform(0.1 * delay, 0.9 * delay) + MINUTE
            ended, refunded = self._refund(trade, requested, escrow, shipped=False)
            if refunded == escrow:
                return
            escrow -= refunded
            ship_at = max(ship_at, ended + self.uniform(HOUR, DAY))
        self.emit(ship_at, lambda t: c.ShipTrade(trade_id=tid, occurred_at=t))
        succeeded = self._receipt(trade, ship_at, escrow)
        if succeeded is not None:
            self._ratings(trade, succeeded)
        complaint_p = COMPLAINT_TROUBLED if trade.troubled else COMPLAINT_ORDINARY
        if trade.seller.violator:
            complaint_p = max(complaint_p, COMPLAINT_VIOLATOR)
        if self.chance(complaint_p):
            self._complaint(trade, paid)

    def _receipt(self, trade: _Trade, shipped: int, escrow: int) -> int | None:
        """Plan the way to success; when it succeeds (None: refunded in full)."""
        tid, item = trade.trade_id, trade.item
        timer = int(self.policy.confirm_timer.duration(item.kind, item.shipping).total_seconds())
        due = shipped + timer
        if timer == 0:
            return shipped  # confirmed automatically in the same save as the shipment
        earliest = shipped
        if self.chance(REFUND_AFTER_SHIPPING):
            requested = shipped + self.uniform(0.05 * timer, 0.8 * timer) + MINUTE
            ended, refunded = self._refund(trade, requested, escrow, shipped=True)
            if refunded == escrow:
                return None
            # The confirm timer paused while the request was open; it resumes.
            due = ended + (due - requested)
            earliest = ended
        elif item.kind == "physical" and timer >= 10 * DAY and self.chance(TIMER_EXTENSION):
            extended = shipped + self.uniform(0.5 * timer, 0.9 * timer)
            timer_policy = self.policy.confirm_timer
            days = self.rng.randint(
                timer_policy.extension_min_days,
                max(timer_policy.extension_min_days, min(7, timer_policy.extension_max_days)),
            )
            self.emit(
                extended,
                lambda t: c.ExtendConfirmTimer(trade_id=tid, days=days, occurred_at=t),
            )
            due += days * DAY
            earliest = extended
        if self.chance(BUYER_CONFIRMS[item.kind]):
            confirm_at = (
                earliest + self._delivery(item) + int(self.rng.expovariate(1 / (20 * HOUR)))
            )
            if confirm_at < due - MINUTE:
                self.emit(confirm_at, lambda t: c.ConfirmReceipt(trade_id=tid, occurred_at=t))
                return confirm_at
        return due  # automatic confirmation, fired by the ledger

    def _delivery(self, item: _Item) -> int:
        if item.kind != "physical":
            return self.uniform(MINUTE, 2 * HOUR)
        if item.shipping == "express":
            return self.uniform(DAY, 4 * DAY)
        if item.shipping == "none":
            return self.uniform(2 * HOUR, 2 * DAY)
        if item.shipping == "overseas":
            return self.uniform(7 * DAY, 18 * DAY)
        return self.uniform(8 * DAY, 25 * DAY)

    # --- Refunds and disputes ----------------------------------------------------------

    def _refund(
        self, trade: _Trade, requested: int, escrow: int, *, shipped: bool
    ) -> tuple[int, int]:
        """Plan one refund request; when it ends and how much was paid back."""
        trade.troubled = True
        trade.refunds += 1
        tid, item = trade.trade_id, trade.item
        rid = f"{tid}-R{trade.refunds}"
        full = escrow < 2 or self.chance(
            FULL_REFUND_SHIPPED if shipped else FULL_REFUND_NOT_SHIPPED
        )
        amount = escrow if full else max(1, round(escrow * self.uniform(10, 60) / 100))
        if not shipped:
            self.notes.refunds_before_shipping.add(rid)
        if not full:
            self.notes.refunds_partial.add(rid)
        with_return = shipped and item.kind == "physical" and self.chance(WITH_RETURN)
        reason: RefundReason = (
            self.pick(REFUND_REASONS_SHIPPED, REFUND_REASON_WEIGHTS_SHIPPED)
            if shipped
            else ("changed_mind" if self.chance(0.7) else "other")
        )
        self.emit(
            requested,
            lambda t: c.RequestRefund(
                trade_id=tid,
                refund_id=rid,
                amount_minor=amount,
                reason=reason,
                with_return=with_return,
                occurred_at=t,
            ),
        )
        refund_policy = self.policy.refund
        silence = int(
            refund_policy.seller_silence(shipped=shipped, goods_kind=item.kind).total_seconds()
        )
        answer = min(int(self.rng.expovariate(1 / (8 * HOUR))), int(0.9 * silence)) + MINUTE
        answered = requested + answer
        roll = self.rng.random()
        weights = REFUND_ANSWERS_SHIPPED if shipped else REFUND_ANSWERS_NOT_SHIPPED
        if roll < weights[0]:
            self.emit(answered, lambda t: c.AgreeRefund(trade_id=tid, refund_id=rid, occurred_at=t))
            agreed = answered
        elif roll < weights[0] + weights[1]:
            agreed = requested + silence  # agreed by silence, fired by the ledger
        elif roll < sum(weights):
            self.emit(
                answered, lambda t: c.RejectRefund(trade_id=tid, refund_id=rid, occurred_at=t)
            )
            ruled = self._after_rejection(trade, rid, answered)
            if ruled is None or ruled[1] != "seller_at_fault":
                return (ruled[0] if ruled else answered + self._rejected_open()), 0
            agreed = ruled[0]
        else:
            self.emit(
                answered, lambda t: c.CancelRefund(trade_id=tid, refund_id=rid, occurred_at=t)
            )
            return answered, 0
        if not with_return:
            return agreed, amount
        return self._return(trade, rid, agreed, amount)

    def _rejected_open(self) -> int:
        return self.policy.refund.rejected_open_days * DAY

    def _after_rejection(
        self, trade: _Trade, rid: str, rejected: int
    ) -> tuple[int, DisputeOutcome | None] | None:
        """The buyer escalates, cancels or lets the rejected request close.

        Returns (when the refund ended, the ruling) after a dispute, (when it
        was cancelled, None), or None when it closes by itself.
        """
        tid = trade.trade_id
        open_for = self._rejected_open()
        acted = rejected + self.uniform(HOUR, 0.9 * open_for)
        roll = self.rng.random()
        if roll < ESCALATED and not trade.disputed:
            trade.disputed = True
            self.emit(
                acted, lambda t: c.EscalateDispute(trade_id=tid, refund_id=rid, occurred_at=t)
            )
            ruled = acted + self.uniform(DAY, 7 * DAY)
            outcome: DisputeOutcome = (
                "seller_at_fault" if self.chance(SELLER_AT_FAULT) else "not_seller_fault"
            )
            self.emit(ruled, lambda t: c.RuleDispute(trade_id=tid, outcome=outcome, occurred_at=t))
            return ruled, outcome
        if roll < ESCALATED + CANCELLED_AFTER_REJECTION:
            self.emit(acted, lambda t: c.CancelRefund(trade_id=tid, refund_id=rid, occurred_at=t))
            return acted, None
        return None

    def _return(self, trade: _Trade, rid: str, agreed: int, amount: int) -> tuple[int, int]:
        tid = trade.trade_id
        ship_within = self.policy.refund.return_ship_days * DAY
        if self.chance(RETURN_NEVER_SHIPPED):
            return agreed + ship_within, 0  # never shipped back: the request closes
        returned = agreed + self.uniform(HOUR, 0.9 * ship_within)
        self.emit(returned, lambda t: c.ShipReturn(trade_id=tid, refund_id=rid, occurred_at=t))
        window = int(self.policy.refund.return_confirm(trade.item.shipping).total_seconds())
        if self.chance(RETURN_CONFIRMED_BY_SELLER):
            received = returned + self.uniform(DAY, 0.9 * window)
            self.emit(
                received,
                lambda t: c.ConfirmReturnReceipt(trade_id=tid, refund_id=rid, occurred_at=t),
            )
            return received, amount
        return returned + window, amount  # received by silence, fired by the ledger

    # --- Ratings -------------------------------------------------------------------------

    def _ratings(self, trade: _Trade, succeeded: int) -> None:
        closes = succeeded + self.policy.rating.window_days * DAY
        if self.chance(BUYER_RATES):
            given = succeeded + MINUTE + int(self.rng.expovariate(1 / (36 * HOUR)))
            if given < closes - MINUTE:
                weights = BUYER_SCORE_WEIGHTS_TROUBLED if trade.troubled else BUYER_SCORE_WEIGHTS
                score = self.pick(SCORES, weights)
                self._rating(trade, "buyer", score, given)
                if self.chance(FOLLOW_UP):
                    follow = max(given, succeeded + 5 * DAY) + self.uniform(HOUR, 50 * DAY)
                    if follow < succeeded + self.policy.rating.follow_up_days * DAY:
                        tid = trade.trade_id
                        self.emit(
                            follow,
                            lambda t: c.ReviewFollowUp(
                                trade_id=tid,
                                rater="buyer",
                                text="Still works well after some weeks.",
                                occurred_at=t,
                            ),
                        )
        if self.chance(SELLER_RATES):
            given = succeeded + MINUTE + int(self.rng.expovariate(1 / (48 * HOUR)))
            if given < closes - MINUTE:
                weights = SELLER_SCORE_WEIGHTS_TROUBLED if trade.troubled else SELLER_SCORE_WEIGHTS
                self._rating(trade, "seller", self.pick(SCORES, weights), given)

    def _rating(self, trade: _Trade, rater: Party, score: Score, given: int) -> None:
        tid = trade.trade_id
        dsr = self._dsr(score) if rater == "buyer" and self.chance(DSR_GIVEN) else None
        comment = self.rng.choice(COMMENTS[score]) if self.chance(COMMENT_GIVEN) else ""
        self.emit(
            given,
            lambda t: c.GiveRating(
                trade_id=tid, rater=rater, score=score, dsr=dsr, comment=comment, occurred_at=t
            ),
        )
        rating_policy = self.policy.rating
        if score != "positive":
            roll = self.rng.random()
            changed = given + self.uniform(HOUR, (rating_policy.revision_days - 1) * DAY)
            if roll < REVISED:
                self.emit(
                    changed, lambda t: c.ReviseRating(trade_id=tid, rater=rater, occurred_at=t)
                )
            elif roll < REVISED + WITHDRAWN:
                self.emit(
                    changed, lambda t: c.WithdrawRating(trade_id=tid, rater=rater, occurred_at=t)
                )
        explain_p = EXPLAINED_POSITIVE if score == "positive" else EXPLAINED_NON_POSITIVE
        if self.chance(explain_p):
            explained = given + self.uniform(HOUR, min(10, rating_policy.explanation_days) * DAY)
            text = "Thank you!" if score == "positive" else "Sorry, we sent a replacement part."
            self.emit(
                explained,
                lambda t: c.ExplainRating(trade_id=tid, rater=rater, text=text, occurred_at=t),
            )
        if self.chance(SHIELDED):
            shielded = given + self.uniform(HOUR, 3 * DAY)
            self.emit(
                shielded,
                lambda t: c.ShieldRating(
                    trade_id=tid, rater=rater, reason="abusive language", occurred_at=t
                ),
            )

    def _dsr(self, score: Score) -> Dsr:
        weights = DSR_WEIGHTS[score]
        a, b, d, e = self.rng.choices(DSR_VALUES, weights=weights, k=4)
        return Dsr(as_described=a, service=b, shipping_speed=d, logistics=e)

    # --- Complaints ----------------------------------------------------------------------

    def _complaint(self, trade: _Trade, paid: int) -> None:
        tid = trade.trade_id
        cid = f"{tid}-C1"
        kinds = (
            COMPLAINT_TYPES if trade.seller.violator else COMPLAINT_TYPES[:2] + COMPLAINT_TYPES[3:]
        )
        kind: ComplaintType = self.rng.choice(kinds)
        severity = self.pick(SEVERITIES, SEVERITY_WEIGHTS)
        filed = paid + self.uniform(2 * DAY, 12 * DAY)
        self.emit(
            filed,
            lambda t: c.FileComplaint(
                complaint_id=cid,
                trade_id=tid,
                type=kind,
                severity=severity,
                evidence=f"evidence:{cid}",
                filed_by=trade.buyer,
                occurred_at=t,
            ),
        )
        at = filed
        if self.chance(0.3):
            at += self.uniform(HOUR, 2 * DAY)
            self.emit(at, lambda t: c.EscalateComplaint(complaint_id=cid, occurred_at=t))
        if self.chance(0.4):
            at += self.uniform(HOUR, 2 * DAY)
            self.emit(
                at,
                lambda t: c.RecordComplaintFollowUp(
                    complaint_id=cid, text="Seller contacted; waiting for a reply.", occurred_at=t
                ),
            )
        if self.chance(0.3):
            at += self.uniform(HOUR, 2 * DAY)
            kind_paid, amount = self._compensation(trade, kind)
            self.emit(
                at,
                lambda t: c.PayCompensation(
                    complaint_id=cid, kind=kind_paid, amount_minor=amount, occurred_at=t
                ),
            )
        ruled = at + self.uniform(DAY, 8 * DAY)
        outcome: ComplaintOutcome = "upheld" if self.chance(UPHELD_SHARE[kind]) else "dismissed"
        self.emit(
            ruled, lambda t: c.RuleComplaint(complaint_id=cid, outcome=outcome, occurred_at=t)
        )

    def _compensation(
        self, trade: _Trade, kind: ComplaintType
    ) -> tuple[CompensationKind, int | None]:
        if kind == "late_shipment":
            waiver = self.policy.complaint_rulings.late_shipment.cash_waiver
            if waiver is not None:
                major = self.policy.minor_per_major
                share = -(-trade.amount * waiver.share_basis_points // 10_000)
                required = min(max(share, waiver.min_major * major), waiver.max_major * major)
                # Most sellers pay what waives the points; some pay too little.
                return "cash", required if self.chance(0.7) else max(1, required // 2)
        options: tuple[CompensationKind, ...] = ("apology", "voucher", "refund", "replacement")
        chosen = self.rng.choice(options)
        if chosen in ("apology", "replacement"):
            return chosen, None
        return chosen, self.uniform(500, 5_000)

    # --- Violators -----------------------------------------------------------------------

    def _plan_violator(self, seller: _Seller) -> None:
        # After the shop registers (it may register earlier, never later).
        earliest = max(self.registers_at[seller.index], DAY)
        for number in range(1, self.rng.randint(1, 3) + 1):
            self._violation(seller, number, self.uniform(earliest, self.horizon))
        for number in range(1, self.rng.randint(0, 2) + 1):
            self._search_cheating(seller, number, self.uniform(earliest, self.horizon))

    def _violation(self, seller: _Seller, number: int, at: int) -> None:
        sid = seller.member_id
        serious = self.chance(0.2)
        points = 12 if serious else self.rng.choice((2, 3, 4, 6))
        reason = self.rng.choice(VIOLATION_REASONS)
        vid = f"{sid}-V{number}"
        self.emit(
            at,
            lambda t: c.RecordViolation(
                seller_id=sid,
                violation_id=vid,
                category="serious" if serious else "general",
                points=points,
                reason=reason,
                reference=f"tns:{vid}",
                occurred_at=t,
            ),
        )

    def _search_cheating(self, seller: _Seller, number: int, at: int) -> None:
        sid = seller.member_id
        count = self.rng.randint(1, SEARCH_CHEATING_ITEMS_PER_CASE_MAX)
        # The shop's best sellers (the catalogue's first items) are the ones pushed up.
        numbers = sorted(self.rng.sample(range(2 * count), count))
        items = tuple(f"{sid}-item{k:04d}" for k in numbers)
        kind = self.rng.choice(SEARCH_CHEATING_KINDS)
        case = f"{sid}-SC{number}"
        self.emit(
            at,
            lambda t: c.RecordSearchCheating(
                seller_id=sid, case_id=case, item_ids=items, kind=kind, occurred_at=t
            ),
        )

    # --- Credit-farming rings ----------------------------------------------------------

    def _plan_ring(self, ring: int) -> None:
        """A fresh shop and fresh buyers trading cheap items in bursts."""
        shop = f"{self.run}-ring{ring}-shop"
        buyers = [
            f"{self.run}-ring{ring}-b{j}"
            for j in range(self.rng.randint(RING_BUYERS_MIN, RING_BUYERS_MAX))
        ]
        kind: GoodsKind = "physical" if self.chance(RING_PHYSICAL) else "virtual"
        shipping: ShippingMethod = "express" if kind == "physical" else "none"
        unit = self.policy.minor_per_major
        items = [
            _Item(f"{shop}-item{k}", kind, shipping, unit)
            for k in range(self.rng.randint(RING_ITEMS_MIN, RING_ITEMS_MAX))
        ]
        begins = self.uniform(0.05 * self.horizon, 0.35 * self.horizon)
        lasts = self.uniform(0.2 * self.horizon, 0.35 * self.horizon)
        remaining = self.config.ring_trades
        trades: list[tuple[int, str]] = []
        last_created = begins
        while remaining > 0:
            burst = min(remaining, self.rng.randint(RING_BURST_MIN, RING_BURST_MAX))
            at = begins + self.uniform(0, lasts)
            buyer = self.rng.choice(buyers)
            item = self.rng.choice(items)
            for _ in range(burst):
                at += self.uniform(2 * MINUTE, 20 * MINUTE)
                trades.append((at, self._plan_ring_trade(shop, buyer, item, at)))
                last_created = max(last_created, at)
            remaining -= burst
        for member_id in [shop, *buyers]:
            self._member(member_id, max(0, begins - self.uniform(HOUR, 3 * DAY)), VERIFIED_BUYERS)
        if ring < (self.config.farming_rings + 1) // 2:
            # Trust & safety confirms the ring some days after it went quiet.
            confirmed = min(last_created + self.uniform(3 * DAY, 10 * DAY), self.horizon)
            case = f"{shop}-FT1"
            named = tuple(tid for created, tid in trades if created <= confirmed)
            self.emit(
                confirmed,
                lambda t: c.ConfirmFakeTrades(
                    seller_id=shop, case_id=case, trade_ids=named, occurred_at=t
                ),
            )

    def _plan_ring_trade(self, shop: str, buyer: str, item: _Item, created: int) -> str:
        self._ring_trade_number += 1
        tid = f"{shop}-T{self._ring_trade_number:05d}"
        self.notes.ring_trade_ids.add(tid)
        roll = self.rng.random()
        unit = item.price
        if roll < RING_ONE_UNIT:
            amount = unit
        elif roll < RING_ONE_UNIT + RING_UNDER_TEN_UNITS:
            amount = self.uniform(unit + 1, 10 * unit)
        else:
            amount = self.uniform(10 * unit, 30 * unit)
        self.emit_creation(created, tid, buyer=buyer, seller=shop, item=item, amount=amount)
        paid = created + self.uniform(MINUTE, 5 * MINUTE)
        shipped = paid + self.uniform(5 * MINUTE, HOUR)
        confirmed = shipped + self.uniform(30 * MINUTE, 3 * HOUR)
        self.emit(paid, lambda t: c.PayIntoEscrow(trade_id=tid, occurred_at=t))
        self.emit(shipped, lambda t: c.ShipTrade(trade_id=tid, occurred_at=t))
        self.emit(confirmed, lambda t: c.ConfirmReceipt(trade_id=tid, occurred_at=t))
        perfect = Dsr(as_described=5, service=5, shipping_speed=5, logistics=5)
        self.emit(
            confirmed + self.uniform(5 * MINUTE, HOUR),
            lambda t: c.GiveRating(
                trade_id=tid,
                rater="buyer",
                score="positive",
                dsr=perfect if self.chance(0.9) else None,
                comment="好评",
                occurred_at=t,
            ),
        )
        self.emit(
            confirmed + self.uniform(10 * MINUTE, 2 * HOUR),
            lambda t: c.GiveRating(trade_id=tid, rater="seller", score="positive", occurred_at=t),
        )
        return tid


# --- Running ---------------------------------------------------------------------------


def _weighted_index(rng: random.Random, cumulative: list[float]) -> int:
    return min(bisect_left(cumulative, rng.random() * cumulative[-1]), len(cumulative) - 1)


def commands(config: SimulationConfig, policy: Policy) -> Iterator[c.Command]:
    """Every command of the simulation in business-time order (no ledger needed)."""
    return (command for _, command in _Planner(config, policy).commands())


def _handlers(app: LedgerApp) -> dict[type[c.Command], Callable[[Any, Origin], Appended]]:
    return {
        c.RegisterMember: app.register_member,
        c.VerifyIdentity: app.verify_identity,
        c.CreateTrade: app.create_trade,
        c.PayIntoEscrow: app.pay_into_escrow,
        c.ShipTrade: app.ship_trade,
        c.ConfirmReceipt: app.confirm_receipt,
        c.ExtendConfirmTimer: app.extend_confirm_timer,
        c.CloseTrade: app.close_trade,
        c.RequestRefund: app.request_refund,
        c.AgreeRefund: app.agree_refund,
        c.RejectRefund: app.reject_refund,
        c.ShipReturn: app.ship_return,
        c.ConfirmReturnReceipt: app.confirm_return_receipt,
        c.CancelRefund: app.cancel_refund,
        c.EscalateDispute: app.escalate_dispute,
        c.RuleDispute: app.rule_dispute,
        c.GiveRating: app.give_rating,
        c.ReviseRating: app.revise_rating,
        c.WithdrawRating: app.withdraw_rating,
        c.ExplainRating: app.explain_rating,
        c.ReviewFollowUp: app.review_follow_up,
        c.ShieldRating: app.shield_rating,
        c.FileComplaint: app.file_complaint,
        c.EscalateComplaint: app.escalate_complaint,
        c.RecordComplaintFollowUp: app.record_complaint_follow_up,
        c.PayCompensation: app.pay_compensation,
        c.RuleComplaint: app.rule_complaint,
        c.RecordViolation: app.record_violation,
        c.ConfirmFakeTrades: app.confirm_fake_trades,
        c.RecordSearchCheating: app.record_search_cheating,
    }


def simulate(
    app: LedgerApp,
    config: SimulationConfig,
    progress: Callable[[int], None] | None = None,
    *,
    on_plan: Callable[[int], None] | None = None,
) -> SimulationReport:
    """Plan the marketplace and append it through ``app``; what was generated.

    ``progress`` is called with the number of commands sent so far (every
    ``PROGRESS_EVERY_COMMANDS`` and at the end), ``on_plan`` once with how
    many commands there will be. A refused command is counted, not raised.
    """
    planner = _Planner(config, app.book.policy)
    if on_plan is not None:
        # Planning is cheap next to appending: count the commands in a first pass.
        on_plan(sum(1 for _ in _Planner(config, app.book.policy).commands()))
    report = SimulationReport(
        run_id=config.run_id,
        start=config.start.astimezone(UTC),
        end=config.end,
        sellers=config.sellers,
        rings=config.farming_rings,
    )
    handlers = _handlers(app)
    counts: Counter[str] = Counter()
    worker_day = 0
    number = 0
    for number, (at, command) in enumerate(planner.commands(), start=1):
        day = at // DAY
        if day > worker_day:
            worker_day = day
            report.deadline_events += len(
                app.run_deadlines(report.start + timedelta(days=day)).positions
            )
        origin = Origin(CALLER, f"sim-{report.run_id}-{number}")
        try:
            result = handlers[type(command)](command, origin)
        except LedgerError as error:
            report.refused += 1
            counts["refused:" + error.code] += 1
            if len(report.refusal_examples) < REFUSAL_EXAMPLES_MAX:
                report.refusal_examples.append(
                    f"{type(command).__name__} at {command.occurred_at.isoformat()}: "
                    f"{error.code}: {error.detail}"
                )
        else:
            _count(report, counts, command, result, planner.notes)
        if progress is not None and number % PROGRESS_EVERY_COMMANDS == 0:
            progress(number)
    report.deadline_events += len(app.run_deadlines(report.end).positions)
    report.events_written += report.deadline_events
    report.commands = number
    report.commands_by_kind = {k: v for k, v in sorted(counts.items()) if ":" not in k}
    report.refused_by_code = {
        k.removeprefix("refused:"): v for k, v in sorted(counts.items()) if k.startswith("refused:")
    }
    report.ratings = _scores(counts, "rating")
    report.buyer_ratings = _scores(counts, "buyer")
    report.seller_ratings = _scores(counts, "seller")
    if progress is not None:
        progress(number)
    return report


def _scores(counts: Counter[str], prefix: str) -> dict[str, int]:
    return {score: counts[f"{prefix}:{score}"] for score in SCORES}


def _count(
    report: SimulationReport,
    counts: Counter[str],
    command: c.Command,
    result: Appended,
    notes: Notes,
) -> None:
    counts[type(command).__name__] += 1
    if result.replayed:
        report.replayed += 1
    else:
        report.events_written += len(result.positions)
    match command:
        case c.RegisterMember():
            report.members += 1
        case c.VerifyIdentity():
            report.verified += 1
        case c.CreateTrade(trade_id=trade_id):
            report.trades += 1
            report.ring_trades += trade_id in notes.ring_trade_ids
        case c.CloseTrade():
            report.closed_unpaid_or_cancelled += 1
        case c.GiveRating(rater=rater, score=score):
            counts[f"rating:{score}"] += 1
            counts[f"{rater}:{score}"] += 1
        case c.ReviseRating():
            report.revisions += 1
        case c.WithdrawRating():
            report.withdrawals += 1
        case c.ExplainRating():
            report.explanations += 1
        case c.ReviewFollowUp():
            report.follow_ups += 1
        case c.ShieldRating():
            report.shielded += 1
        case c.RequestRefund(refund_id=refund_id, with_return=with_return):
            report.refunds += 1
            report.refunds_with_return += with_return
            report.refunds_before_shipping += refund_id in notes.refunds_before_shipping
            report.refunds_partial += refund_id in notes.refunds_partial
        case c.EscalateDispute():
            report.disputes += 1
        case c.RuleDispute(outcome=outcome):
            report.disputes_seller_at_fault += outcome == "seller_at_fault"
        case c.FileComplaint():
            report.complaints += 1
        case c.RuleComplaint(outcome=outcome):
            report.complaints_upheld += outcome == "upheld"
        case c.RecordViolation():
            report.violations += 1
        case c.RecordSearchCheating():
            report.search_cheating += 1
        case c.ConfirmFakeTrades(trade_ids=trade_ids):
            report.fake_cases += 1
            report.fake_trades += len(trade_ids)
        case _:
            pass
