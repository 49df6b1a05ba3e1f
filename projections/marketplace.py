"""The marketplace as the log describes it: a fold of every event.

``Marketplace.apply(event, position)`` is the whole fold: deterministic, no
I/O, no clock; it updates its own state (an accumulator, for speed) and
returns it. Every fact keeps a ``Stamp``: its business time and its log
position. A ``Cut`` selects the facts a figure may use — those with
``occurred_at <= as_of`` (docs/rules.md §0 "as of") and ``position <=
at_position`` (what the ledger knew then) — so one stored state answers any
as-of time and any log prefix without replaying.

Facts are grouped by the member they concern (``MemberFile``), which is what
every figure reads; the stored views keep the same Structs.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import msgspec

from ledger import events as ev
from ledger.events import Dsr, Party, Score
from ledger.trade import RefundStatus
from projections.timeline import micros

POSITION_MAX = 2**63 - 1


class Stamp(msgspec.Struct, frozen=True, array_like=True):
    at: datetime
    position: int


class Cut(msgspec.Struct, frozen=True):
    """Which facts a figure sees: business time up to ``as_of``, log up to ``at_position``."""

    as_of: datetime
    at_position: int = POSITION_MAX

    def sees(self, stamp: Stamp | None) -> bool:
        return stamp is not None and stamp.at <= self.as_of and stamp.position <= self.at_position


class RatingFacts(msgspec.Struct):
    given: Stamp
    score: Score
    default: bool
    dsr: Dsr | None = None
    revised: Stamp | None = None
    revised_score: Score | None = None
    withdrawn: Stamp | None = None
    shielded: Stamp | None = None

    def score_seen(self, cut: Cut) -> Score:
        """The score as the cut knows it: a revision replaces the original."""
        if self.revised_score is not None and cut.sees(self.revised):
            return self.revised_score
        return self.score


class RefundFacts(msgspec.Struct):
    refund_id: str
    requested: Stamp
    amount_minor: int
    reason: str
    paid: Stamp | None = None
    # What a seller's refund list shows besides: the request's status, named
    # as the ledger names it, and when it was settled (paid, cancelled or closed).
    with_return: bool = False
    status: RefundStatus = RefundStatus.REQUESTED
    settled: Stamp | None = None
    close_reason: str | None = None


class DisputeFacts(msgspec.Struct):
    escalated: Stamp
    ruled: Stamp | None = None
    outcome: str | None = None


class TradeFacts(msgspec.Struct):
    trade_id: str
    buyer_id: str
    seller_id: str
    item_id: str
    amount_minor: int
    created: Stamp
    paid: Stamp | None = None
    succeeded: Stamp | None = None
    window_closes_at: datetime | None = None
    closed: Stamp | None = None
    close_reason: str | None = None
    refunds: dict[str, RefundFacts] = msgspec.field(default_factory=dict)
    dispute: DisputeFacts | None = None
    ratings: dict[Party, RatingFacts] = msgspec.field(default_factory=dict)
    fake: Stamp | None = None
    complaint_ids: list[str] = msgspec.field(default_factory=list)  # filed on this trade

    def refunded_minor(self, cut: Cut) -> int:
        return sum(r.amount_minor for r in self.refunds.values() if cut.sees(r.paid))

    def counts_as_refunded(self, cut: Cut) -> bool:
        """docs/rules.md §2: a trade counts as refunded when any refund on it was paid."""
        return any(cut.sees(r.paid) for r in self.refunds.values())


class ComplaintFacts(msgspec.Struct):
    complaint_id: str
    trade_id: str
    buyer_id: str
    seller_id: str
    type: str
    severity: str
    filed: Stamp
    ruled: Stamp | None = None
    outcome: str | None = None
    points: int = 0
    escalated: Stamp | None = None


class ViolationFacts(msgspec.Struct):
    """Points against a seller: a violation, an upheld complaint or a fake-trade case."""

    source: str
    source_id: str
    stamp: Stamp
    category: str
    points: int
    reason: str = ""


class FakeCaseFacts(msgspec.Struct):
    case_id: str
    stamp: Stamp
    trade_ids: tuple[str, ...]
    item_ids: tuple[str, ...]
    demoted_until: datetime


class CheatingFacts(msgspec.Struct):
    case_id: str
    stamp: Stamp
    item_ids: tuple[str, ...]
    kind: str


class MemberHead(msgspec.Struct):
    """A member's own facts without its records: what a figure read from
    tallies checks (that the member was known then). Its stored row decodes
    as this without reading the records, whose number grows with history."""

    member_id: str
    registered: Stamp
    verified: Stamp | None = None


class MemberRecords(MemberHead):
    """A member's own facts but its violations: what its penalty reads besides
    its violation standing (``projections.violations.ViolationYear``)."""

    fake_cases: list[FakeCaseFacts] = msgspec.field(default_factory=list)
    cheating: list[CheatingFacts] = msgspec.field(default_factory=list)


class MemberFacts(MemberRecords):
    violations: list[ViolationFacts] = msgspec.field(default_factory=list)


class MemberFile(msgspec.Struct):
    """Everything a member's figures are computed from."""

    member: MemberFacts
    as_seller: list[TradeFacts]
    as_buyer: list[TradeFacts]
    complaints_against: list[ComplaintFacts]
    complaints_filed: list[ComplaintFacts]


E = TypeVar("E", bound=ev.Event)
Fold = Callable[[Any, Any, Stamp], None]
_FOLDS: dict[type[ev.Event], Fold] = {}


def folds(
    event_type: type[E],
) -> Callable[[Callable[[Any, E, Stamp], None]], Callable[[Any, E, Stamp], None]]:
    """Register a Marketplace method as the fold of one event type (a dict lookup per event)."""

    def register(method: Callable[[Any, E, Stamp], None]) -> Callable[[Any, E, Stamp], None]:
        _FOLDS[event_type] = method
        return method

    return register


class Marketplace:
    def __init__(self) -> None:
        self.position = 0
        self.members: dict[str, MemberFacts] = {}
        self.trades: dict[str, TradeFacts] = {}
        self.complaints: dict[str, ComplaintFacts] = {}
        self._trades_of: dict[tuple[str, Party], list[str]] = {}
        self._complaints_of: dict[tuple[str, Party], list[str]] = {}
        self._trades_of_pair: dict[tuple[str, str], list[str]] = {}
        # A seller's refund requests in log order: (position, trade id, refund id).
        self._refunds_of: dict[str, list[tuple[int, str, str]]] = {}

    @staticmethod
    def depends_on(event_type: type[ev.Event]) -> bool:
        """Whether any figure or list depends on this kind of fact (others pass by)."""
        return event_type in _FOLDS

    def apply(self, event: ev.Event, position: int) -> Marketplace:
        if position <= self.position:
            raise ValueError(f"position {position} is not after {self.position}")
        fold = _FOLDS.get(type(event))
        if fold is not None:  # facts no figure depends on (shipping, timers, ...) pass by
            fold(self, event, Stamp(event.occurred_at, position))
        self.position = position
        return self

    def file(self, member_id: str) -> MemberFile | None:
        member = self.members.get(member_id)
        if member is None:
            return None

        def trades(role: Party) -> list[TradeFacts]:
            return [self.trades[t] for t in self._trades_of.get((member_id, role), [])]

        def complaints(role: Party) -> list[ComplaintFacts]:
            return [self.complaints[c] for c in self._complaints_of.get((member_id, role), [])]

        return MemberFile(
            member, trades("seller"), trades("buyer"), complaints("seller"), complaints("buyer")
        )

    def trade_count(self, member_id: str) -> int:
        """The member's trades, as seller and as buyer."""
        return len(self._trades_of.get((member_id, "seller"), ())) + len(
            self._trades_of.get((member_id, "buyer"), ())
        )

    def pairs_trades(
        self, spans: Mapping[tuple[str, str], tuple[datetime, datetime]]
    ) -> dict[tuple[str, str], list[TradeFacts]]:
        """Each pair's trades created in its span ``[start, end)`` (those this state holds)."""
        found = {}
        for pair, (start, end) in spans.items():
            trades = (self.trades[t] for t in self._trades_of_pair.get(pair, []))
            found[pair] = [trade for trade in trades if start <= trade.created.at < end]
        return found

    def trades_after(
        self, member_id: str, role: Party, after: tuple[int, str] | None, limit: int
    ) -> list[TradeFacts]:
        """The member's trades in the role in creation order after ``after``
        (creation microseconds, trade id). In memory this sorts the member's
        trades: the stored views read an index instead."""
        found = sorted(
            (
                (_order_key(self.trades[t]), self.trades[t])
                for t in self._trades_of.get((member_id, role), [])
            ),
            key=lambda pair: pair[0],
        )
        return [trade for key, trade in found if after is None or key > after][:limit]

    def complaints_after(
        self, seller_id: str, after: int | None, limit: int
    ) -> list[ComplaintFacts]:
        """The complaints against the seller filed after log position ``after``,
        in log order: at most ``limit``."""
        filed = self._complaints_of.get((seller_id, "seller"), [])
        start = 0
        if after is not None:
            start = bisect_right(filed, after, key=lambda c: self.complaints[c].filed.position)
        return [self.complaints[c] for c in filed[start : start + limit]]

    def refunds_after(
        self, seller_id: str, after: int | None, limit: int
    ) -> list[tuple[TradeFacts, str]]:
        """The refunds requested of the seller after log position ``after``, in
        log order, each as (its trade, its refund id): at most ``limit``."""
        requested = self._refunds_of.get(seller_id, [])
        start = 0 if after is None else bisect_right(requested, after, key=lambda r: r[0])
        return [(self.trades[t], r) for _, t, r in requested[start : start + limit]]

    def complaints_of(self, complaint_ids: Iterable[str]) -> dict[str, ComplaintFacts]:
        """These complaints (those this state holds)."""
        return {c: self.complaints[c] for c in complaint_ids if c in self.complaints}

    @folds(ev.MemberRegistered)
    def _registered(self, e: ev.MemberRegistered, stamp: Stamp) -> None:
        self.members[e.member_id] = MemberFacts(e.member_id, stamp)

    @folds(ev.IdentityVerified)
    def _verified(self, e: ev.IdentityVerified, stamp: Stamp) -> None:
        self.members[e.member_id].verified = stamp

    @folds(ev.TradeCreated)
    def _created(self, e: ev.TradeCreated, stamp: Stamp) -> None:
        self.trades[e.trade_id] = TradeFacts(
            e.trade_id, e.buyer_id, e.seller_id, e.item_id, e.amount_minor, stamp
        )
        self._trades_of.setdefault((e.buyer_id, "buyer"), []).append(e.trade_id)
        self._trades_of.setdefault((e.seller_id, "seller"), []).append(e.trade_id)
        self._trades_of_pair.setdefault((e.seller_id, e.buyer_id), []).append(e.trade_id)

    @folds(ev.PaymentEscrowed)
    def _paid(self, e: ev.PaymentEscrowed, stamp: Stamp) -> None:
        self.trades[e.trade_id].paid = stamp

    @folds(ev.ReceiptConfirmed)
    def _succeeded(self, e: ev.ReceiptConfirmed, stamp: Stamp) -> None:
        trade = self.trades[e.trade_id]
        trade.succeeded, trade.window_closes_at = stamp, e.rating_window_closes_at

    @folds(ev.TradeClosed)
    def _closed(self, e: ev.TradeClosed, stamp: Stamp) -> None:
        trade = self.trades[e.trade_id]
        trade.closed, trade.close_reason = stamp, e.reason

    @folds(ev.RefundRequested)
    def _refund_requested(self, e: ev.RefundRequested, stamp: Stamp) -> None:
        self.trades[e.trade_id].refunds[e.refund_id] = RefundFacts(
            e.refund_id, stamp, e.amount_minor, e.reason, with_return=e.with_return
        )
        self._refunds_of.setdefault(e.seller_id, []).append(
            (stamp.position, e.trade_id, e.refund_id)
        )

    # The steps between a refund's request and its end change no figure: a
    # seller's refund list shows them, with the status ``ledger.trade`` gives.
    @folds(ev.RefundAgreed)
    def _refund_agreed(self, e: ev.RefundAgreed, stamp: Stamp) -> None:
        if e.return_ship_by is not None:  # without a return, the payment follows at once
            self.trades[e.trade_id].refunds[e.refund_id].status = RefundStatus.AWAITING_RETURN

    @folds(ev.RefundRejected)
    def _refund_rejected(self, e: ev.RefundRejected, stamp: Stamp) -> None:
        self.trades[e.trade_id].refunds[e.refund_id].status = RefundStatus.REJECTED

    @folds(ev.ReturnShipped)
    def _return_shipped(self, e: ev.ReturnShipped, stamp: Stamp) -> None:
        self.trades[e.trade_id].refunds[e.refund_id].status = RefundStatus.RETURN_SHIPPED

    @folds(ev.RefundPaid)
    def _refund_paid(self, e: ev.RefundPaid, stamp: Stamp) -> None:
        refund = self.trades[e.trade_id].refunds[e.refund_id]
        refund.paid = refund.settled = stamp
        refund.status = RefundStatus.PAID

    @folds(ev.RefundCancelled)
    def _refund_cancelled(self, e: ev.RefundCancelled, stamp: Stamp) -> None:
        refund = self.trades[e.trade_id].refunds[e.refund_id]
        refund.status, refund.settled = RefundStatus.CANCELLED, stamp

    @folds(ev.RefundClosed)
    def _refund_closed(self, e: ev.RefundClosed, stamp: Stamp) -> None:
        refund = self.trades[e.trade_id].refunds[e.refund_id]
        refund.status, refund.settled, refund.close_reason = RefundStatus.CLOSED, stamp, e.reason

    @folds(ev.DisputeEscalated)
    def _dispute_escalated(self, e: ev.DisputeEscalated, stamp: Stamp) -> None:
        trade = self.trades[e.trade_id]
        trade.dispute = DisputeFacts(stamp)
        trade.refunds[e.refund_id].status = RefundStatus.DISPUTED

    @folds(ev.DisputeRuled)
    def _dispute_ruled(self, e: ev.DisputeRuled, stamp: Stamp) -> None:
        dispute = self.trades[e.trade_id].dispute
        if dispute is not None:
            dispute.ruled, dispute.outcome = stamp, e.outcome

    @folds(ev.RatingGiven)
    def _rated(self, e: ev.RatingGiven, stamp: Stamp) -> None:
        self.trades[e.trade_id].ratings[e.rater] = RatingFacts(stamp, e.score, e.default, e.dsr)

    @folds(ev.RatingRevised)
    def _revised(self, e: ev.RatingRevised, stamp: Stamp) -> None:
        rating = self.trades[e.trade_id].ratings[e.rater]
        rating.revised, rating.revised_score = stamp, e.score

    @folds(ev.RatingWithdrawn)
    def _withdrawn(self, e: ev.RatingWithdrawn, stamp: Stamp) -> None:
        self.trades[e.trade_id].ratings[e.rater].withdrawn = stamp

    @folds(ev.RatingShielded)
    def _shielded(self, e: ev.RatingShielded, stamp: Stamp) -> None:
        self.trades[e.trade_id].ratings[e.rater].shielded = stamp

    @folds(ev.ComplaintFiled)
    def _complaint_filed(self, e: ev.ComplaintFiled, stamp: Stamp) -> None:
        self.complaints[e.complaint_id] = ComplaintFacts(
            e.complaint_id, e.trade_id, e.buyer_id, e.seller_id, e.type, e.severity, stamp
        )
        self.trades[e.trade_id].complaint_ids.append(e.complaint_id)
        self._complaints_of.setdefault((e.buyer_id, "buyer"), []).append(e.complaint_id)
        self._complaints_of.setdefault((e.seller_id, "seller"), []).append(e.complaint_id)

    @folds(ev.ComplaintEscalated)
    def _complaint_escalated(self, e: ev.ComplaintEscalated, stamp: Stamp) -> None:
        self.complaints[e.complaint_id].escalated = stamp

    @folds(ev.ComplaintRuled)
    def _complaint_ruled(self, e: ev.ComplaintRuled, stamp: Stamp) -> None:
        complaint = self.complaints[e.complaint_id]
        complaint.ruled, complaint.outcome, complaint.points = stamp, e.outcome, e.points
        if e.points > 0:
            self.members[e.seller_id].violations.append(
                ViolationFacts(
                    "complaint",
                    e.complaint_id,
                    stamp,
                    e.category,
                    e.points,
                    f"complaint upheld: {e.complaint_type}",
                )
            )

    @folds(ev.ViolationRecorded)
    def _violation(self, e: ev.ViolationRecorded, stamp: Stamp) -> None:
        self.members[e.seller_id].violations.append(
            ViolationFacts("violation", e.violation_id, stamp, e.category, e.points, e.reason)
        )

    @folds(ev.FakeTradesConfirmed)
    def _fake_trades(self, e: ev.FakeTradesConfirmed, stamp: Stamp) -> None:
        seller = self.members[e.seller_id]
        seller.fake_cases.append(
            FakeCaseFacts(e.case_id, stamp, e.trade_ids, e.item_ids, e.demoted_until)
        )
        for trade_id in e.trade_ids:
            self.trades[trade_id].fake = stamp
        if e.points > 0:
            seller.violations.append(
                ViolationFacts(
                    "fake_trades",
                    e.case_id,
                    stamp,
                    e.category,
                    e.points,
                    f"fake trades confirmed, offence {e.offence_number}",
                )
            )

    @folds(ev.SearchCheatingRecorded)
    def _search_cheating(self, e: ev.SearchCheatingRecorded, stamp: Stamp) -> None:
        self.members[e.seller_id].cheating.append(
            CheatingFacts(e.case_id, stamp, e.item_ids, e.kind)
        )


def _order_key(trade: TradeFacts) -> tuple[int, str]:
    return (micros(trade.created.at), trade.trade_id)
