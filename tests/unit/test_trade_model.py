"""One trade driven at random through LedgerApp, checked against a plain model.

The model below is written from docs/rules.md §0 and §2 (and, where the spec is
silent, from the choices ledger/trade.py documents); it does not call ledger
code. Every command is decided by the model first (accepted or refused, and
which facts it writes, deadlines included); then the app runs it and must
agree: an accepted command writes exactly the predicted facts, a refused one
raises a LedgerError and writes nothing. An invariant compares the stored
trade with the model after every step.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from ledger import commands as c
from ledger.aggregate import Context
from ledger.app import LedgerApp
from ledger.clock import FixedClock
from ledger.errors import ConcurrentUpdateError, LedgerError
from ledger.events import Dsr, Event
from tests.support import DAY, HOUR, T0, Market

TRADE = "T1"
BUYER = "buyer-1"
SELLER = "seller-1"
CREATED_AT = T0 + HOUR
MICROSECOND = timedelta(microseconds=1)

# --- docs/rules.md §2 numbers (taobao-classic), written out on purpose ------------------

CONFIRM_DAYS_BY_KIND = {"top_up": 0, "auto_delivery": 1, "virtual": 3}
CONFIRM_DAYS_PHYSICAL = {"express": 10, "none": 10, "overseas": 20, "surface_mail": 30}
EXTENSIONS_MAX = 2
EXTENSION_DAYS_MIN, EXTENSION_DAYS_MAX = 1, 10
SILENCE_BEFORE_SHIPPING = timedelta(hours=48)
SILENCE_AFTER_SHIPPING = 5 * DAY
SILENCE_AFTER_SHIPPING_VIRTUAL = 3 * DAY
RETURN_SHIP = 7 * DAY
RETURN_CONFIRM = 10 * DAY
RETURN_CONFIRM_SURFACE_MAIL = 30 * DAY
REJECTED_OPEN = 7 * DAY
RATING_WINDOW = 15 * DAY
REVISION_WINDOW = 30 * DAY
COMMENT_MAX = 500

GOODS_KINDS = ["physical", "virtual", "auto_delivery", "top_up"]
SHIPPING_METHODS = ["express", "surface_mail", "overseas", "none"]
CLOSE_REASONS = [
    "unpaid",
    "buyer_cancelled",
    "seller_cancelled",
    "out_of_stock",
    "refunded_in_full",
]
REFUND_REASONS = ["not_received", "not_as_described", "damaged", "changed_mind", "other"]
SCORES = ["positive", "neutral", "negative"]
PARTIES = ["buyer", "seller"]
OPEN_REFUND = {"requested", "awaiting_return", "return_shipped", "rejected", "disputed"}
# Code choice (docs/rules.md only says "cancelled by the buyer"): not once the return
# is on its way, and not while a dispute is being ruled.
CANCELLABLE_REFUND = {"requested", "rejected", "awaiting_return"}


class Refused(Exception):
    """The model refuses the command; the message says why."""


@dataclass
class Fact:
    topic: str  # the topic without "trustledger." and ".v1"
    at: datetime
    fields: dict[str, Any]


@dataclass
class RefundModel:
    amount: int
    with_return: bool
    status: str
    due: datetime | None  # the refund's next deadline, whatever the status


@dataclass
class RatingModel:
    score: str
    given_at: datetime
    default: bool
    dsr: Dsr | None
    revised: bool = False
    withdrawn: bool = False


@dataclass
class TradeModel:
    goods_kind: str
    shipping: str
    amount: int
    created_at: datetime
    paid_at: datetime | None = None
    shipped_at: datetime | None = None
    succeeded_at: datetime | None = None
    closed_at: datetime | None = None
    close_reason: str | None = None
    confirm_due: datetime | None = None  # while the timer runs
    confirm_remaining: timedelta | None = None  # while it is paused
    extensions: int = 0
    refunded: int = 0
    refunds: dict[str, RefundModel] = field(default_factory=dict)
    open_refund_id: str | None = None
    dispute_refund_id: str | None = None
    dispute_outcome: str | None = None
    window_closes: datetime | None = None
    window_settled: bool = False
    ratings: dict[str, RatingModel] = field(default_factory=dict)
    facts: list[Fact] = field(default_factory=list)

    # --- Derived ----------------------------------------------------------------

    @property
    def escrow_left(self) -> int:
        return self.amount - self.refunded if self.paid_at is not None else 0

    @property
    def open_refund(self) -> RefundModel | None:
        return self.refunds[self.open_refund_id] if self.open_refund_id else None

    def party_id(self, party: str) -> str:
        return BUYER if party == "buyer" else SELLER

    def confirm_timer(self) -> timedelta:
        if self.goods_kind in CONFIRM_DAYS_BY_KIND:
            return CONFIRM_DAYS_BY_KIND[self.goods_kind] * DAY
        return CONFIRM_DAYS_PHYSICAL[self.shipping] * DAY

    def seller_silence(self) -> timedelta:
        if self.shipped_at is None:
            return SILENCE_BEFORE_SHIPPING
        if self.goods_kind == "physical":
            return SILENCE_AFTER_SHIPPING
        # Code choice: every non-physical kind counts as "virtual goods" here.
        return SILENCE_AFTER_SHIPPING_VIRTUAL

    def return_confirm(self) -> timedelta:
        # Code choice: "surface mail" is the trade's shipping method.
        if self.shipping == "surface_mail":
            return RETURN_CONFIRM_SURFACE_MAIL
        return RETURN_CONFIRM

    def record(self, topic: str, at: datetime, **fields: Any) -> None:
        self.facts.append(Fact(topic, at, fields))

    # --- Deadlines (§0: each settled at its due time, before any later command) ----

    def deadlines(self) -> list[tuple[datetime, Callable[[datetime], None]]]:
        if self.closed_at is not None:
            return []
        pending: list[tuple[datetime, Callable[[datetime], None]]] = []
        refund = self.open_refund
        if refund is not None and refund.due is not None:
            pending.append((refund.due, self._refund_deadline))
        if self.confirm_due is not None:
            pending.append((self.confirm_due, lambda at: self._succeed(at, "auto")))
        if self.window_closes is not None and not self.window_settled:
            pending.append((self.window_closes, self._window_closes))
        return pending

    def settle(self, until: datetime) -> None:
        for _ in range(100):
            due = [d for d in self.deadlines() if d[0] <= until]
            if not due:
                return
            at, fire = min(due, key=lambda d: d[0])
            fire(at)
        raise AssertionError("the model's deadlines do not settle")

    def _refund_deadline(self, at: datetime) -> None:
        assert self.open_refund_id is not None
        rid, refund = self.open_refund_id, self.refunds[self.open_refund_id]
        if refund.status == "requested":  # silence counts as agreement
            self._agree(rid, at, "silence")
        elif refund.status == "awaiting_return":  # return not shipped within 7 days
            self._close_refund(rid, at, "return_not_shipped")
        elif refund.status == "return_shipped":  # return not confirmed: counts as confirmed
            self._receive_return(rid, at, "silence")
        elif refund.status == "rejected":  # rejected and not escalated within 7 days
            self._close_refund(rid, at, "rejected_not_escalated")
        else:
            raise AssertionError(f"no deadline for a {refund.status} refund")

    def _window_closes(self, at: datetime) -> None:
        self.window_settled = True
        if len(self.ratings) != 1:
            return
        ((rater, rating),) = self.ratings.items()
        if rating.score == "positive" and not rating.withdrawn:
            silent = "seller" if rater == "buyer" else "buyer"
            self.ratings[silent] = RatingModel("positive", at, default=True, dsr=None)
            self.record(
                "rating.given",
                at,
                rater=silent,
                score="positive",
                default=True,
                dsr=None,
                succeeded_at=self.succeeded_at,
            )

    # --- Shared steps -------------------------------------------------------------

    def _succeed(self, at: datetime, by: str) -> None:
        self.succeeded_at = at
        self.confirm_due = None
        self.window_closes = at + RATING_WINDOW
        self.record(
            "trade.receipt_confirmed", at, by=by, rating_window_closes_at=self.window_closes
        )
        self.record("trade.escrow_released", at, amount_minor=self.amount - self.refunded)

    def _close(self, at: datetime, reason: str) -> None:
        self.record("trade.closed", at, reason=reason, escrow_returned_minor=self.escrow_left)
        self.closed_at, self.close_reason = at, reason
        self.confirm_due = self.confirm_remaining = None

    def _end_refund(self, rid: str, at: datetime, status: str) -> None:
        refund = self.refunds[rid]
        refund.status, refund.due = status, None
        self.open_refund_id = None
        if self.confirm_remaining is not None:  # resumes, does not restart
            self.confirm_due = at + self.confirm_remaining
            self.confirm_remaining = None

    def _agree(self, rid: str, at: datetime, by: str) -> None:
        refund = self.refunds[rid]
        if refund.with_return:
            refund.status, refund.due = "awaiting_return", at + RETURN_SHIP
            self.record("refund.agreed", at, refund_id=rid, by=by, return_ship_by=refund.due)
            return
        self.record("refund.agreed", at, refund_id=rid, by=by, return_ship_by=None)
        self._pay(rid, at)

    def _pay(self, rid: str, at: datetime) -> None:
        refund = self.refunds[rid]
        self.refunded += refund.amount
        self.record("refund.paid", at, refund_id=rid, amount_minor=refund.amount)
        self._end_refund(rid, at, "paid")
        if self.refunded == self.amount:
            self._close(at, "refunded_in_full")

    def _receive_return(self, rid: str, at: datetime, by: str) -> None:
        self.refunds[rid].due = None
        self.record("refund.return_received", at, refund_id=rid, by=by)
        self._pay(rid, at)

    def _close_refund(self, rid: str, at: datetime, reason: str) -> None:
        self.record("refund.closed", at, refund_id=rid, reason=reason)
        self._end_refund(rid, at, "closed")

    # --- Checks ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed_at is not None:
            raise Refused("the trade is closed")
        if self.succeeded_at is not None:
            raise Refused("the trade succeeded and its escrow was released")

    def _check_no_open_refund(self) -> None:
        if self.open_refund_id is not None:
            raise Refused(f"refund {self.open_refund_id} is open")

    def _refund_in(self, rid: str, allowed: set[str]) -> RefundModel:
        refund = self.refunds.get(rid)
        if refund is None:
            raise Refused(f"no refund {rid}")
        if refund.status not in allowed:
            raise Refused(f"refund {rid} is {refund.status}")
        return refund

    def _check_party(self, party: str, member_id: str | None) -> None:
        if member_id is not None and member_id != self.party_id(party):
            raise Refused(f"{member_id} is not the {party}")

    # --- Commands ----------------------------------------------------------------------

    def pay(self, at: datetime) -> None:
        self._check_open()
        if self.paid_at is not None:
            raise Refused("already paid")
        self.paid_at = at
        self.record("trade.payment_escrowed", at, amount_minor=self.amount)

    def ship(self, at: datetime) -> None:
        self._check_open()
        if self.paid_at is None:
            raise Refused("not paid")
        if self.shipped_at is not None:
            raise Refused("already shipped")
        self._check_no_open_refund()  # code choice
        self.shipped_at = at
        self.confirm_due = at + self.confirm_timer()
        self.record("trade.shipped", at, confirm_due_at=self.confirm_due)

    def confirm_receipt(self, at: datetime) -> None:
        self._check_open()
        if self.shipped_at is None:
            raise Refused("not shipped")
        self._check_no_open_refund()  # code choice
        self._succeed(at, "buyer")

    def extend(self, days: int, at: datetime) -> None:
        if not EXTENSION_DAYS_MIN <= days <= EXTENSION_DAYS_MAX:
            raise Refused(f"an extension of {days} days")
        self._check_open()
        if self.confirm_due is None:
            raise Refused("the timer is not running")
        if self.extensions >= EXTENSIONS_MAX:
            raise Refused("a third extension")
        self.extensions += 1
        self.confirm_due += days * DAY
        self.record("trade.confirm_timer_extended", at, days=days, confirm_due_at=self.confirm_due)

    def close(self, reason: str, at: datetime) -> None:
        if reason == "refunded_in_full":
            raise Refused("refunded_in_full is the ledger's own reason")  # code choice
        self._check_open()
        if reason in ("unpaid", "buyer_cancelled") and self.paid_at is not None:
            raise Refused("paid: the buyer asks for a refund instead")  # code choice
        if self.shipped_at is not None:
            raise Refused("already shipped")  # code choice
        self._check_no_open_refund()
        self._close(at, reason)

    def request_refund(self, rid: str, amount: int, with_return: bool, at: datetime) -> None:
        if amount <= 0:
            raise Refused("amounts are > 0")
        self._check_open()
        if self.paid_at is None:
            raise Refused("not paid")
        self._check_no_open_refund()
        if rid in self.refunds:
            raise Refused(f"refund {rid} exists")
        if amount > self.escrow_left:
            raise Refused(f"{amount} asked, {self.escrow_left} left in escrow")
        if with_return and self.shipped_at is None:
            raise Refused("nothing to return before shipping")  # code choice
        refund = RefundModel(amount, with_return, "requested", at + self.seller_silence())
        self.refunds[rid] = refund
        self.open_refund_id = rid
        if self.confirm_due is not None:  # the timer pauses
            self.confirm_remaining = self.confirm_due - at
            self.confirm_due = None
        self.record(
            "refund.requested",
            at,
            refund_id=rid,
            amount_minor=amount,
            with_return=with_return,
            respond_by=refund.due,
        )

    def agree(self, rid: str, at: datetime) -> None:
        self._refund_in(rid, {"requested"})
        self._agree(rid, at, "seller")

    def reject(self, rid: str, at: datetime) -> None:
        refund = self._refund_in(rid, {"requested"})
        refund.status, refund.due = "rejected", at + REJECTED_OPEN
        self.record("refund.rejected", at, refund_id=rid, escalate_by=refund.due)

    def ship_return(self, rid: str, at: datetime) -> None:
        refund = self._refund_in(rid, {"awaiting_return"})
        refund.status, refund.due = "return_shipped", at + self.return_confirm()
        self.record("refund.return_shipped", at, refund_id=rid, confirm_by=refund.due)

    def confirm_return(self, rid: str, at: datetime) -> None:
        self._refund_in(rid, {"return_shipped"})
        self._receive_return(rid, at, "seller")

    def cancel(self, rid: str, at: datetime) -> None:
        self._refund_in(rid, CANCELLABLE_REFUND)
        self.record("refund.cancelled", at, refund_id=rid)
        self._end_refund(rid, at, "cancelled")

    def escalate(self, rid: str, at: datetime) -> None:
        if self.dispute_refund_id is not None:
            raise Refused("the trade already had its one dispute")
        refund = self._refund_in(rid, {"rejected"})
        refund.status, refund.due = "disputed", None
        self.dispute_refund_id = rid
        self.record("dispute.escalated", at, refund_id=rid)

    def rule(self, outcome: str, at: datetime) -> None:
        rid = self.dispute_refund_id
        if rid is None:
            raise Refused("no dispute")
        if self.dispute_outcome is not None:
            raise Refused("already ruled")
        self.dispute_outcome = outcome
        self.record("dispute.ruled", at, refund_id=rid, outcome=outcome)
        if outcome == "seller_at_fault":
            self._agree(rid, at, "ruling")
        else:
            self._close_refund(rid, at, "dispute_not_seller_fault")

    def rate(
        self,
        rater: str,
        score: str,
        *,
        rater_id: str | None,
        dsr: Dsr | None,
        comment: str,
        at: datetime,
    ) -> None:
        if dsr is not None and rater == "seller":
            raise Refused("shop scores come from the buyer")
        if dsr is not None and not all(
            1 <= getattr(dsr, name) <= 5
            for name in ("as_described", "service", "shipping_speed", "logistics")
        ):
            raise Refused("a shop score outside 1-5")
        if len(comment) > COMMENT_MAX:
            raise Refused("comment too long")
        if self.succeeded_at is None or self.window_closes is None:
            raise Refused("not succeeded")
        self._check_party(rater, rater_id)
        if rater in self.ratings:
            raise Refused(f"the {rater} already rated")
        if at >= self.window_closes:
            raise Refused("the rating window closed")
        self.ratings[rater] = RatingModel(score, at, default=False, dsr=dsr)
        self.record(
            "rating.given",
            at,
            rater=rater,
            score=score,
            default=False,
            dsr=dsr,
            succeeded_at=self.succeeded_at,
        )

    def _revisable(self, rater: str, rater_id: str | None, at: datetime) -> RatingModel:
        rating = self.ratings.get(rater)
        if rating is None:
            raise Refused(f"the {rater} has not rated")
        self._check_party(rater, rater_id)
        if rating.revised or rating.withdrawn:
            raise Refused("already revised")
        if rating.score == "positive":
            raise Refused("a positive is final")
        if at >= rating.given_at + REVISION_WINDOW:
            raise Refused("the revision window closed")
        return rating

    def revise(self, rater: str, rater_id: str | None, at: datetime) -> None:
        rating = self._revisable(rater, rater_id, at)
        rating.score, rating.revised = "positive", True
        self.record("rating.revised", at, rater=rater, score="positive")

    def withdraw(self, rater: str, rater_id: str | None, at: datetime) -> None:
        rating = self._revisable(rater, rater_id, at)
        rating.withdrawn = True
        self.record("rating.withdrawn", at, rater=rater)

    # --- Times worth landing on exactly -------------------------------------------

    def boundaries(self) -> list[datetime]:
        times = [due for due, _ in self.deadlines()]
        if self.window_closes is not None:
            times.append(self.window_closes)
        times += [r.given_at + REVISION_WINDOW for r in self.ratings.values()]
        return times


def _short_topic(e: Event) -> str:
    topic = type(e).__struct_config__.tag
    assert isinstance(topic, str)
    return topic.removeprefix("trustledger.").rsplit(".", 1)[0]


ACTIONS = {
    "pay",
    "ship",
    "confirm_receipt",
    "extend_timer",
    "close",
    "request_refund",
    "agree_refund",
    "reject_refund",
    "ship_return",
    "confirm_return",
    "cancel_refund",
    "escalate_dispute",
    "rule_dispute",
    "rate",
    "revise_rating",
    "withdraw_rating",
}
RATER_IDS = {"none": None, "own": "own", "other": "other", "stranger": "nobody-9"}
dsr_scores = st.one_of(st.integers(1, 5), st.integers(0, 6))
dsrs = st.builds(Dsr, dsr_scores, dsr_scores, dsr_scores, dsr_scores)
valid_dsrs = st.builds(Dsr, *(st.integers(1, 5) for _ in range(4)))
comments = st.one_of(st.just(""), st.text(max_size=20), st.sampled_from(["x" * 500, "x" * 501]))


class TradeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        clock = FixedClock(T0 + timedelta(days=3650))
        self.app = LedgerApp("memory:", clock=clock)
        self.market = Market(self.app, clock)
        self.model: TradeModel | None = None
        self.now = CREATED_AT
        self.position = 0
        self.refunds_asked = 0

    def teardown(self) -> None:
        self.app.close()

    # --- Plumbing ---------------------------------------------------------------------

    @property
    def m(self) -> TradeModel:
        assert self.model is not None
        return self.model

    def _last_position(self) -> int:
        log = list(self.app.iter_log())
        return log[-1].id if log else 0

    def _new_events(self) -> list[Event]:
        notifications = self.app.read_log(after=self.position)
        if notifications:
            self.position = notifications[-1].id
        return [self.app.decode(n) for n in notifications]

    def _check_facts(self, written: list[Event], expected: list[Fact], what: str) -> None:
        got = [(_short_topic(e), e.occurred_at) for e in written]
        want = [(f.topic, f.at) for f in expected]
        assert got == want, f"{what}: the app wrote {got}, the model expects {want}"
        for e, f in zip(written, expected, strict=True):
            assert getattr(e, "trade_id", None) == TRADE
            for name, value in f.fields.items():
                assert getattr(e, name) == value, (
                    f"{what}: {f.topic}.{name} is {getattr(e, name)!r}, the model expects {value!r}"
                )

    def _execute(
        self,
        method: Callable[[Any, Any], Any],
        command: c.Command,
        decide: Callable[[TradeModel], None],
    ) -> None:
        """Decide in the model, run in the app, and check that both agree."""
        at = command.occurred_at
        assert at >= self.now
        trial = copy.deepcopy(self.m)
        trial.facts = []
        trial.settle(at)
        refusal: Refused | None = None
        try:
            decide(trial)
            trial.settle(at)  # a fact can start a deadline already due (a top-up's 0 days)
        except Refused as why:
            refusal = why
        what = type(command).__name__
        error: LedgerError | None = None
        try:
            self.market.run(method, command)
        except ConcurrentUpdateError:
            raise
        except LedgerError as refused:
            error = refused
        if error is not None:
            assert refusal is not None, (
                f"{what} refused by the app ({error}), accepted by the model"
            )
            assert self._new_events() == [], f"the refused {what} wrote events"
            event(f"refused {what}")
            return
        assert refusal is None, f"{what} accepted by the app, refused by the model: {refusal}"
        assert trial.facts, f"{what}: the model accepted it without a fact"
        self._check_facts(self._new_events(), trial.facts, what)
        trial.facts = []
        self.model = trial
        event(f"accepted {what}")

    def _refund_id(self, data: st.DataObject) -> str:
        known = sorted(self.m.refunds)
        if self.m.open_refund_id is not None:
            known = [self.m.open_refund_id, *known]
        return data.draw(st.sampled_from([*known, "R-unknown"]), label="refund_id")

    def _rater_id(self, party: str, data: st.DataObject) -> str | None:
        kind = data.draw(
            st.one_of(st.sampled_from(["none", "own"]), st.sampled_from(list(RATER_IDS))),
            label="rater_id",
        )
        if kind == "own":
            return self.m.party_id(party)
        if kind == "other":
            return self.m.party_id("seller" if party == "buyer" else "buyer")
        return RATER_IDS[kind]

    # --- Setup --------------------------------------------------------------------------

    @initialize(
        goods_kind=st.one_of(st.just("physical"), st.sampled_from(GOODS_KINDS)),
        shipping=st.sampled_from(SHIPPING_METHODS),
        amount=st.one_of(st.sampled_from([1, 2, 3, 10_000]), st.integers(1, 10**7)),
        start=st.sampled_from(
            ["created", "paid", "shipped", "succeeded", "refund", "return", "dispute"]
        ),
        data=st.data(),
    )
    def create_trade(
        self, goods_kind: str, shipping: str, amount: int, start: str, data: st.DataObject
    ) -> None:
        self.market.trade(
            TRADE,
            at=CREATED_AT,
            buyer=BUYER,
            seller=SELLER,
            amount_minor=amount,
            goods_kind=goods_kind,
            shipping=shipping,
        )
        self.model = TradeModel(goods_kind, shipping, amount, CREATED_AT)
        self.position = self._last_position()
        event(f"goods {goods_kind}/{shipping}")
        # Start most runs further along (every step checked like any other), so
        # that 30 steps reach returns, disputes and ratings.
        if start == "created":
            return
        self.now += HOUR
        self.pay()
        if start == "paid":
            return
        self.now += HOUR
        if start in ("shipped", "succeeded", "return") or data.draw(
            st.booleans(), label="ship before the refund"
        ):
            self.ship()
        self.now += HOUR
        if start == "succeeded":
            self.confirm_receipt()
        elif start == "refund":
            self.request_refund(data)
        elif start == "return":
            self.request_refund(data, plausible=True, with_return=True)
            self.agree_refund(data)
        elif start == "dispute":
            self.request_refund(data, plausible=True)
            self.reject_refund(data)
            self.escalate_dispute(data)

    # --- Time ----------------------------------------------------------------------------

    @rule(data=st.data())
    def advance_time(self, data: st.DataObject) -> None:
        settled = copy.deepcopy(self.m)
        settled.settle(self.now)
        targets = sorted({t for t in settled.boundaries() if t > self.now})
        steps: list[st.SearchStrategy[timedelta]] = [
            st.timedeltas(min_value=timedelta(0), max_value=6 * HOUR),
            st.timedeltas(min_value=timedelta(0), max_value=4 * DAY),
            st.integers(1, 31).map(lambda days: days * DAY),
        ]
        if targets:
            exact = st.sampled_from(targets)
            steps.append(exact.map(lambda t: t - self.now))
            steps.append(exact.map(lambda t: max(t - MICROSECOND - self.now, timedelta(0))))
        self.now += data.draw(st.one_of(steps), label="advance")
        if data.draw(st.booleans(), label="run the deadline worker"):
            self.run_deadline_worker()

    @rule()
    def run_deadline_worker(self) -> None:
        trial = copy.deepcopy(self.m)
        trial.facts = []
        trial.settle(self.now)
        self.app.run_deadlines(self.now)
        self._check_facts(self._new_events(), trial.facts, "the deadline worker")
        trade = self.app.trade(TRADE)
        assert trade is not None
        left_due = trade.begin(Context(recorded_at=self.now, book=self.app.book)).next_deadline()
        assert left_due is None or left_due > self.now, f"a deadline due {left_due} was left"
        trial.facts = []
        self.model = trial
        if trial.succeeded_at is not None:
            event("reached: succeeded")
        if trial.closed_at is not None:
            event(f"reached: closed {trial.close_reason}")

    # --- Commands, each with any arguments -------------------------------------------
    #
    # The rules below carry preconditions so that runs go deep (a command is
    # mostly tried when it could make sense); ``any_command`` tries every
    # command in every state, so refusals are checked everywhere too.

    def _trade_step(
        self,
        method: Callable[[Any, Any], Any],
        command: Callable[..., c.Command],
        decide: Callable[[TradeModel, datetime], None],
    ) -> None:
        """A command that names only the trade, now."""
        at = self.now
        self._execute(method, command(trade_id=TRADE, occurred_at=at), lambda m: decide(m, at))

    def _refund_step(
        self,
        data: st.DataObject,
        method: Callable[[Any, Any], Any],
        command: Callable[..., c.Command],
        decide: Callable[[TradeModel, str, datetime], None],
    ) -> None:
        """A command on one of the trade's refunds (or an unknown one), now."""
        rid, at = self._refund_id(data), self.now
        self._execute(
            method,
            command(trade_id=TRADE, refund_id=rid, occurred_at=at),
            lambda m: decide(m, rid, at),
        )

    def _rating_change(
        self,
        data: st.DataObject,
        method: Callable[[Any, Any], Any],
        command: Callable[..., c.Command],
        decide: Callable[[TradeModel, str, str | None, datetime], None],
    ) -> None:
        """A revision or withdrawal of either side's rating, by a drawn member, now."""
        rater = data.draw(st.sampled_from(PARTIES), label="rater")
        member_id, at = self._rater_id(rater, data), self.now
        self._execute(
            method,
            command(trade_id=TRADE, rater=rater, rater_id=member_id, occurred_at=at),
            lambda m: decide(m, rater, member_id, at),
        )

    def pay(self) -> None:
        self._trade_step(self.app.pay_into_escrow, c.PayIntoEscrow, TradeModel.pay)

    def ship(self) -> None:
        self._trade_step(self.app.ship_trade, c.ShipTrade, TradeModel.ship)

    def confirm_receipt(self) -> None:
        self._trade_step(self.app.confirm_receipt, c.ConfirmReceipt, TradeModel.confirm_receipt)

    def extend_timer(self, data: st.DataObject) -> None:
        days = data.draw(st.integers(0, 12), label="days")
        at = self.now
        self._execute(
            self.app.extend_confirm_timer,
            c.ExtendConfirmTimer(trade_id=TRADE, days=days, occurred_at=at),
            lambda m: m.extend(days, at),
        )

    def close(self, data: st.DataObject) -> None:
        reason = data.draw(st.sampled_from(CLOSE_REASONS), label="reason")
        at = self.now
        self._execute(
            self.app.close_trade,
            c.CloseTrade(trade_id=TRADE, reason=reason, occurred_at=at),  # type: ignore[arg-type]
            lambda m: m.close(reason, at),
        )

    def request_refund(
        self, data: st.DataObject, *, plausible: bool = False, with_return: bool | None = None
    ) -> None:
        """Any request; a plausible one asks at most what is left, under a new id."""
        left, amount = self.m.escrow_left, self.m.amount
        amounts = [st.integers(1, 2 * amount), st.just(left + 1), st.just(0)]
        if left > 0:
            valid = [st.integers(1, left), st.just(left)]
            amounts = valid if plausible else [*valid, st.integers(1, left), *amounts]
        asked = data.draw(st.one_of(amounts), label="amount")
        returned = with_return
        if returned is None:
            returned = data.draw(st.booleans(), label="with_return")
        reason = data.draw(st.sampled_from(REFUND_REASONS), label="reason")
        fresh = f"R{self.refunds_asked + 1}"
        rid = fresh
        if not plausible:
            rid = data.draw(st.sampled_from([fresh, *sorted(self.m.refunds)]), label="refund_id")
        if rid == fresh:
            self.refunds_asked += 1
        at = self.now
        self._execute(
            self.app.request_refund,
            c.RequestRefund(
                trade_id=TRADE,
                refund_id=rid,
                amount_minor=asked,
                reason=reason,  # type: ignore[arg-type]
                with_return=returned,
                occurred_at=at,
            ),
            lambda m: m.request_refund(rid, asked, returned, at),
        )

    def agree_refund(self, data: st.DataObject) -> None:
        self._refund_step(data, self.app.agree_refund, c.AgreeRefund, TradeModel.agree)

    def reject_refund(self, data: st.DataObject) -> None:
        self._refund_step(data, self.app.reject_refund, c.RejectRefund, TradeModel.reject)

    def ship_return(self, data: st.DataObject) -> None:
        self._refund_step(data, self.app.ship_return, c.ShipReturn, TradeModel.ship_return)

    def confirm_return(self, data: st.DataObject) -> None:
        self._refund_step(
            data, self.app.confirm_return_receipt, c.ConfirmReturnReceipt, TradeModel.confirm_return
        )

    def cancel_refund(self, data: st.DataObject) -> None:
        self._refund_step(data, self.app.cancel_refund, c.CancelRefund, TradeModel.cancel)

    def escalate_dispute(self, data: st.DataObject) -> None:
        self._refund_step(data, self.app.escalate_dispute, c.EscalateDispute, TradeModel.escalate)

    def rule_dispute(self, data: st.DataObject) -> None:
        outcome = data.draw(
            st.sampled_from(["seller_at_fault", "not_seller_fault"]), label="outcome"
        )
        at = self.now
        self._execute(
            self.app.rule_dispute,
            c.RuleDispute(trade_id=TRADE, outcome=outcome, occurred_at=at),  # type: ignore[arg-type]
            lambda m: m.rule(outcome, at),
        )

    def rate(self, data: st.DataObject) -> None:
        rater = data.draw(st.sampled_from(PARTIES), label="rater")
        score = data.draw(st.sampled_from(SCORES), label="score")
        member_id = self._rater_id(rater, data)
        dsr = data.draw(st.one_of(st.none(), valid_dsrs, dsrs), label="dsr")
        comment = data.draw(comments, label="comment")
        at = self.now
        self._execute(
            self.app.give_rating,
            c.GiveRating(
                trade_id=TRADE,
                rater=rater,  # type: ignore[arg-type]
                score=score,  # type: ignore[arg-type]
                rater_id=member_id,
                dsr=dsr,
                comment=comment,
                occurred_at=at,
            ),
            lambda m: m.rate(rater, score, rater_id=member_id, dsr=dsr, comment=comment, at=at),
        )

    def revise_rating(self, data: st.DataObject) -> None:
        self._rating_change(data, self.app.revise_rating, c.ReviseRating, TradeModel.revise)

    def withdraw_rating(self, data: st.DataObject) -> None:
        self._rating_change(data, self.app.withdraw_rating, c.WithdrawRating, TradeModel.withdraw)

    @rule(data=st.data())
    def any_command(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(ACTIONS)), label="command")
        action = getattr(self, name)
        if name in ("pay", "ship", "confirm_receipt"):
            action()
        else:
            action(data)

    # --- The same commands, when they could make sense --------------------------------

    def _open_refund_is(self, status: str) -> bool:
        refund = self.m.open_refund
        return refund is not None and refund.status == status

    def _a_rating_is_revisable(self) -> bool:
        return any(
            r.score != "positive" and not (r.revised or r.withdrawn)
            for r in self.m.ratings.values()
        )

    @precondition(lambda self: self.m.paid_at is None)
    @rule()
    def pay_rule(self) -> None:
        self.pay()

    @precondition(lambda self: self.m.paid_at is not None and self.m.shipped_at is None)
    @rule()
    def ship_rule(self) -> None:
        self.ship()

    @precondition(lambda self: self.m.shipped_at is not None and self.m.succeeded_at is None)
    @rule()
    def confirm_receipt_rule(self) -> None:
        self.confirm_receipt()

    @precondition(lambda self: self.m.shipped_at is not None and self.m.succeeded_at is None)
    @rule(data=st.data())
    def extend_timer_rule(self, data: st.DataObject) -> None:
        self.extend_timer(data)

    @precondition(lambda self: self.m.closed_at is None and self.m.succeeded_at is None)
    @rule(data=st.data())
    def close_rule(self, data: st.DataObject) -> None:
        self.close(data)

    @precondition(lambda self: self.m.paid_at is not None and self.m.open_refund_id is None)
    @precondition(lambda self: self.m.closed_at is None and self.m.succeeded_at is None)
    @rule(data=st.data())
    def request_refund_rule(self, data: st.DataObject) -> None:
        self.request_refund(data)

    @precondition(lambda self: self._open_refund_is("requested"))
    @rule(data=st.data())
    def agree_refund_rule(self, data: st.DataObject) -> None:
        self.agree_refund(data)

    @precondition(lambda self: self._open_refund_is("requested"))
    @rule(data=st.data())
    def reject_refund_rule(self, data: st.DataObject) -> None:
        self.reject_refund(data)

    @precondition(lambda self: self._open_refund_is("awaiting_return"))
    @rule(data=st.data())
    def ship_return_rule(self, data: st.DataObject) -> None:
        self.ship_return(data)

    @precondition(lambda self: self._open_refund_is("return_shipped"))
    @rule(data=st.data())
    def confirm_return_rule(self, data: st.DataObject) -> None:
        self.confirm_return(data)

    @precondition(lambda self: self.m.open_refund_id is not None)
    @rule(data=st.data())
    def cancel_refund_rule(self, data: st.DataObject) -> None:
        self.cancel_refund(data)

    @precondition(lambda self: self._open_refund_is("rejected"))
    @rule(data=st.data())
    def escalate_dispute_rule(self, data: st.DataObject) -> None:
        self.escalate_dispute(data)

    @precondition(lambda self: self._open_refund_is("disputed"))
    @rule(data=st.data())
    def rule_dispute_rule(self, data: st.DataObject) -> None:
        self.rule_dispute(data)

    @precondition(lambda self: self.m.succeeded_at is not None and len(self.m.ratings) < 2)
    @rule(data=st.data())
    def rate_rule(self, data: st.DataObject) -> None:
        self.rate(data)

    @precondition(lambda self: self._a_rating_is_revisable())
    @rule(data=st.data())
    def revise_rating_rule(self, data: st.DataObject) -> None:
        self.revise_rating(data)

    @precondition(lambda self: self._a_rating_is_revisable())
    @rule(data=st.data())
    def withdraw_rating_rule(self, data: st.DataObject) -> None:
        self.withdraw_rating(data)

    # --- The stored trade is the model's ---------------------------------------------------

    @invariant()
    def the_stored_trade_matches_the_model(self) -> None:
        if self.model is None:
            return
        m = self.model
        trade = self.app.trade(TRADE)
        assert trade is not None
        assert trade.created_at == m.created_at
        assert trade.paid_at == m.paid_at
        assert trade.shipped_at == m.shipped_at
        assert trade.succeeded_at == m.succeeded_at
        assert trade.closed_at == m.closed_at
        assert trade.escrow_left_minor == m.escrow_left
        assert trade.refunded_minor == m.refunded
        assert trade.open_refund_id == m.open_refund_id
        assert trade.extensions == m.extensions
        assert trade.confirm_due_at == m.confirm_due
        assert trade.confirm_remaining == m.confirm_remaining
        assert trade.rating_window_closes_at == m.window_closes
        assert {
            rid: (r.amount_minor, r.with_return, str(r.status), r.due_at)
            for rid, r in trade.refunds.items()
        } == {rid: (r.amount, r.with_return, r.status, r.due) for rid, r in m.refunds.items()}
        dispute = (trade.dispute.refund_id, trade.dispute.outcome) if trade.dispute else None
        assert dispute == (
            (m.dispute_refund_id, m.dispute_outcome) if m.dispute_refund_id else None
        )
        assert _ratings(trade.ratings) == _ratings(m.ratings)
        if m.open_refund_id is not None:
            assert m.refunds[m.open_refund_id].status in OPEN_REFUND


def _ratings(ratings: Mapping[Any, Any]) -> dict[str, tuple[Any, ...]]:
    """What the stored trade and the model must agree on, for each side's rating."""
    return {
        party: (r.score, r.given_at, r.default, r.dsr, r.revised, r.withdrawn)
        for party, r in ratings.items()
    }


TradeMachine.TestCase.settings = settings(
    max_examples=75,
    stateful_step_count=30,
    deadline=None,
)
TestTradeModel = TradeMachine.TestCase
