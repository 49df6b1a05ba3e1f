"""docs/rules.md §3, §6 and §7 on the read side: rates, the penalty a ranking engine
receives, credit as of a time or a log position, and eBay-style seller levels.

Stories run end to end where practical: facts go through ``LedgerApp`` (the
``Market`` driver, in memory), the log is folded into a ``Marketplace`` and
the figures are asked of ``m.file(member)`` with a ``Cut``. Cases that need
hundreds of trades build ``MemberFile``/``TradeFacts`` Structs directly.

Times follow docs/rules.md §0: "trailing N days as of T" is ``T - N d < t <= T``;
the last instant inside a window that ends at ``end`` is ``end - US``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger import commands as c
from ledger.events import (
    ComplaintRuled,
    DisputeRuled,
    Dsr,
    Event,
    FakeTradesConfirmed,
    RatingGiven,
    RefundPaid,
    SearchCheatingRecorded,
    ViolationRecorded,
)
from projections.buyers import buyer_history
from projections.credit import credit_of
from projections.dsr import dsr_of
from projections.marketplace import (
    POSITION_MAX,
    Cut,
    DisputeFacts,
    Marketplace,
    MemberFacts,
    MemberFile,
    RatingFacts,
    RefundFacts,
    Stamp,
    TradeFacts,
)
from projections.penalties import Penalty, PenaltyReason, penalty_of, rates_of
from projections.rulebook import load_rulebook
from projections.seller_level import seller_level_of
from tests.support import DAY, HOUR, T0, Market

TAOBAO = load_rulebook("taobao-classic")
EBAY = load_rulebook("ebay-style")
US = timedelta(microseconds=1)
SELLER = "seller-1"
PRICE = 10_000  # 100.00 CNY
AS_OF = T0 + 60 * DAY  # the rate stories' "now"
WINDOW_START = AS_OF - 30 * DAY  # excluded: the 30-day window is (WINDOW_START, AS_OF]
IN_WINDOW = AS_OF - 10 * DAY


# --- An end-to-end story: commands through LedgerApp, then the fold ----------------------


class Story:
    """One seller's marketplace story, recorded through LedgerApp in memory."""

    def __init__(self) -> None:
        self.market = Market.open("memory:")
        self.app = self.market.app
        self._numbers = itertools.count(1)
        self.market.members(SELLER)

    def close(self) -> None:
        self.app.close()

    def run(self, method: Callable[[Any, Any], Any], command: Any) -> tuple[int, ...]:
        positions: tuple[int, ...] = self.market.run(method, command).positions
        return positions

    # --- Trades ---------------------------------------------------------------------

    def paid(
        self,
        at: datetime,
        *,
        buyer: str | None = None,
        item: str | None = None,
        amount: int = PRICE,
        trade_id: str | None = None,
    ) -> str:
        """A trade created an hour before ``at`` and paid at ``at``."""
        n = next(self._numbers)
        trade_id = trade_id or f"T{n:04d}"
        self.market.trade(
            trade_id,
            at=at - HOUR,
            buyer=buyer or f"buyer-{n}",
            seller=SELLER,
            item=item or f"item-{n}",
            amount_minor=amount,
        )
        self.market.pay(trade_id, at)
        return trade_id

    def paid_many(self, count: int, at: datetime, **kwargs: Any) -> list[str]:
        return [self.paid(at + i * US, **kwargs) for i in range(count)]

    def succeeded(self, at: datetime, **kwargs: Any) -> str:
        """A trade paid two days and shipped one day before its success at ``at``."""
        trade_id = self.paid(at - 2 * DAY, **kwargs)
        self.market.ship(trade_id, at - DAY)
        self.market.confirm(trade_id, at)
        return trade_id

    def rate(
        self,
        trade_id: str,
        at: datetime,
        score: str = "positive",
        *,
        rater: str = "buyer",
        dsr: Dsr | None = None,
    ) -> int:
        (position,) = self.run(
            self.app.give_rating,
            c.GiveRating(trade_id=trade_id, rater=rater, score=score, occurred_at=at, dsr=dsr),  # type: ignore[arg-type]
        )
        return position

    # --- Refunds, disputes, complaints ----------------------------------------------

    def refund_paid(self, trade_id: str, at: datetime, *, amount: int = 1_000) -> int:
        """A refund requested and agreed at ``at``: the RefundPaid position."""
        refund_id = f"R{next(self._numbers)}"
        self.market.refund(trade_id, refund_id, amount_minor=amount, at=at)
        positions = self.run(
            self.app.agree_refund,
            c.AgreeRefund(trade_id=trade_id, refund_id=refund_id, occurred_at=at),
        )
        return positions[1]  # RefundAgreed, RefundPaid

    def dispute(self, trade_id: str, ruled_at: datetime, outcome: str = "seller_at_fault") -> int:
        """A rejected refund escalated and ruled at ``ruled_at``: the DisputeRuled position."""
        refund_id = f"R{next(self._numbers)}"
        self.market.refund(trade_id, refund_id, amount_minor=1_000, at=ruled_at - 2 * DAY)
        self.run(
            self.app.reject_refund,
            c.RejectRefund(trade_id=trade_id, refund_id=refund_id, occurred_at=ruled_at - 2 * DAY),
        )
        self.run(
            self.app.escalate_dispute,
            c.EscalateDispute(trade_id=trade_id, refund_id=refund_id, occurred_at=ruled_at - DAY),
        )
        positions = self.run(
            self.app.rule_dispute,
            c.RuleDispute(trade_id=trade_id, outcome=outcome, occurred_at=ruled_at),  # type: ignore[arg-type]
        )
        return positions[0]

    def complaint(
        self,
        trade_id: str,
        ruled_at: datetime | None,
        outcome: str = "upheld",
        *,
        kind: str = "service_attitude",  # 0 points: no ban gets in the way
        severity: str = "minor",
    ) -> int | None:
        complaint_id = f"C{next(self._numbers)}"
        self.run(
            self.app.file_complaint,
            c.FileComplaint(
                complaint_id=complaint_id,
                trade_id=trade_id,
                type=kind,  # type: ignore[arg-type]
                severity=severity,  # type: ignore[arg-type]
                occurred_at=(ruled_at or AS_OF) - DAY,
            ),
        )
        if ruled_at is None:
            return None
        (position,) = self.run(
            self.app.rule_complaint,
            c.RuleComplaint(complaint_id=complaint_id, outcome=outcome, occurred_at=ruled_at),  # type: ignore[arg-type]
        )
        return position

    # --- Enforcement and members ------------------------------------------------------

    def violation(self, at: datetime, points: int, category: str = "serious") -> int:
        (position,) = self.run(
            self.app.record_violation,
            c.RecordViolation(
                seller_id=SELLER,
                violation_id=f"V{next(self._numbers)}",
                category=category,  # type: ignore[arg-type]
                points=points,
                reason="test violation",
                occurred_at=at,
            ),
        )
        return position

    def fake(self, trade_ids: Iterable[str], at: datetime) -> int:
        (position,) = self.run(
            self.app.confirm_fake_trades,
            c.ConfirmFakeTrades(
                seller_id=SELLER,
                case_id=f"F{next(self._numbers)}",
                trade_ids=tuple(trade_ids),
                occurred_at=at,
            ),
        )
        return position

    def cheating(self, items: Iterable[str], at: datetime) -> int:
        (position,) = self.run(
            self.app.record_search_cheating,
            c.RecordSearchCheating(
                seller_id=SELLER,
                case_id=f"S{next(self._numbers)}",
                item_ids=tuple(items),
                kind="keyword_stuffing",
                occurred_at=at,
            ),
        )
        return position

    def verify(self, at: datetime, member: str = SELLER) -> int:
        (position,) = self.run(
            self.app.verify_identity, c.VerifyIdentity(member_id=member, occurred_at=at)
        )
        return position

    # --- Reading ------------------------------------------------------------------------

    def file(self, member: str = SELLER) -> MemberFile:
        m = _fold(self.app)
        found = m.file(member)
        assert found is not None
        return found

    def penalty(self, as_of: datetime, at_position: int = POSITION_MAX) -> Penalty:
        return penalty_of(self.file(), Cut(as_of, at_position), TAOBAO)

    def event(self, position: int) -> Event:
        (notification,) = self.app.read_log(after=position - 1, limit=1)
        assert notification.id == position
        return self.app.decode(notification)

    def last_position(self) -> int:
        return max(n.id for n in self.app.iter_log())


def _fold(app: Any) -> Marketplace:
    """The read model: every event of the log applied at its position."""
    m = Marketplace()
    for n in app.iter_log():
        m.apply(app.decode(n), n.id)
    return m


@pytest.fixture
def story() -> Iterator[Story]:
    s = Story()
    try:
        yield s
    finally:
        s.close()


def reason(penalty: Penalty, code: str) -> PenaltyReason:
    (found,) = [r for r in penalty.reasons if r.code == code]
    return found


def codes(penalty: Penalty) -> list[str]:
    return [r.code for r in penalty.reasons]


# --- Structs for stories of hundreds of trades --------------------------------------------

_positions = itertools.count(1_000)


def stamp(at: datetime) -> Stamp:
    return Stamp(at, next(_positions))


def trade_facts(
    created: datetime,
    *,
    n: int,
    buyer: str | None = None,
    amount: int = PRICE,
    paid: bool = True,
    succeeded: bool = True,
    close_reason: str | None = None,
    closed_at: datetime | None = None,
    dispute_ruled: datetime | None = None,
    dispute_outcome: str = "seller_at_fault",
    refunded_minor: int = 0,
    fake: datetime | None = None,
) -> TradeFacts:
    trade = TradeFacts(
        trade_id=f"X{n:05d}",
        buyer_id=buyer or f"buyer-{n}",
        seller_id=SELLER,
        item_id=f"item-{n}",
        amount_minor=amount,
        created=stamp(created),
        paid=stamp(created + HOUR) if paid else None,
        succeeded=stamp(created + DAY) if succeeded else None,
        window_closes_at=created + 16 * DAY if succeeded else None,
    )
    if close_reason is not None:
        trade.closed, trade.close_reason = stamp(closed_at or created + HOUR), close_reason
    if dispute_ruled is not None:
        trade.dispute = DisputeFacts(
            stamp(dispute_ruled - DAY), stamp(dispute_ruled), dispute_outcome
        )
    if refunded_minor:
        at = created + 2 * HOUR
        trade.refunds["R"] = RefundFacts("R", stamp(at), refunded_minor, "other", stamp(at))
    if fake is not None:
        trade.fake = stamp(fake)
    return trade


def seller_file(trades: list[TradeFacts], *, registered: datetime = T0) -> MemberFile:
    return MemberFile(MemberFacts(SELLER, Stamp(registered, 1)), trades, [], [], [])


# =========================================================================================
# Rates (docs/rules.md §6): trailing 30 days on payment time; denominator = the seller's
# trades paid in the window, fake ones left out; null below 20 paid trades.
# =========================================================================================


def test_rates_are_none_below_20_paid_trades_and_a_fraction_from_20(story: Story) -> None:
    story.paid_many(19, IN_WINDOW)
    rates = rates_of(story.file(), Cut(AS_OF), TAOBAO)
    assert rates.paid_trades == 19
    assert (rates.refund_rate, rates.dispute_rate, rates.complaint_rate) == (None, None, None)

    story.paid(IN_WINDOW + DAY)
    rates = rates_of(story.file(), Cut(AS_OF), TAOBAO)
    assert rates.paid_trades == 20
    assert (rates.refund_rate, rates.dispute_rate, rates.complaint_rate) == (0.0, 0.0, 0.0)


def test_the_rate_window_is_the_trailing_30_days_of_payment_time(story: Story) -> None:
    story.paid_many(18, IN_WINDOW)
    # Created long before the window, paid just inside it: payment time decides.
    story.market.trade("OLD", at=T0 + HOUR, buyer="buyer-old", seller=SELLER)
    story.market.pay("OLD", WINDOW_START + US)
    story.paid(WINDOW_START)  # paid exactly 30 days before AS_OF: outside
    story.market.trade("UNPAID", at=IN_WINDOW, buyer="buyer-unpaid", seller=SELLER)
    story.paid(AS_OF + DAY)  # paid after AS_OF: not yet
    file = story.file()

    def paid(as_of: datetime) -> int:
        return rates_of(file, Cut(as_of), TAOBAO).paid_trades

    assert paid(AS_OF - US) == 20  # the trade paid at WINDOW_START is still inside
    assert paid(AS_OF) == 19
    assert paid(AS_OF + US) == 18  # OLD has left
    assert paid(AS_OF + DAY) == 19  # the late payment has come in


def test_fake_trades_leave_the_denominator_from_their_confirmation_on(story: Story) -> None:
    trades = story.paid_many(20, IN_WINDOW)
    confirmed = IN_WINDOW + DAY
    story.fake(trades[:1], confirmed)
    file = story.file()
    before = rates_of(file, Cut(confirmed - US), TAOBAO)
    after = rates_of(file, Cut(AS_OF), TAOBAO)
    assert (before.paid_trades, before.refund_rate) == (20, 0.0)
    assert (after.paid_trades, after.refund_rate) == (19, None)


def test_a_trade_counts_as_refunded_once_any_refund_on_it_was_paid(story: Story) -> None:
    trades = story.paid_many(20, IN_WINDOW)
    # Two partial refunds paid on one trade: one refunded trade.
    story.refund_paid(trades[0], IN_WINDOW + DAY)
    story.refund_paid(trades[0], IN_WINDOW + 2 * DAY)
    # A refund requested but never agreed or paid (the seller may still answer): not refunded.
    story.market.refund(trades[1], "R-open", amount_minor=1_000, at=AS_OF - HOUR)
    # A refund paid after as_of: not yet.
    story.refund_paid(trades[2], AS_OF + US)
    rates = rates_of(story.file(), Cut(AS_OF), TAOBAO)
    assert rates.refund_rate == 1 / 20
    assert rates_of(story.file(), Cut(AS_OF + US), TAOBAO).refund_rate == 2 / 20


def test_the_dispute_rate_counts_seller_at_fault_rulings_in_the_window(story: Story) -> None:
    trades = story.paid_many(20, IN_WINDOW - 5 * DAY)
    story.dispute(trades[0], IN_WINDOW)
    story.dispute(trades[1], IN_WINDOW, outcome="not_seller_fault")
    # The rules (docs/rules.md §6) count rulings in the window, whatever the trade's payment
    # time: a trade paid 40 days ago and ruled against the seller 5 days ago counts.
    old = story.paid(AS_OF - 40 * DAY)
    story.dispute(old, AS_OF - 5 * DAY)
    # A ruling 30 days before as_of is outside the window.
    older = story.paid(AS_OF - 45 * DAY)
    story.dispute(older, WINDOW_START)
    rates = rates_of(story.file(), Cut(AS_OF), TAOBAO)
    assert rates.paid_trades == 20
    assert rates.disputes == 2
    assert rates.dispute_rate == 2 / 20


def test_the_complaint_rate_counts_complaints_upheld_in_the_window(story: Story) -> None:
    trades = story.paid_many(20, IN_WINDOW - 5 * DAY)
    story.complaint(trades[0], IN_WINDOW)
    story.complaint(trades[1], IN_WINDOW, outcome="dismissed")
    story.complaint(trades[2], None)  # filed, not ruled
    story.complaint(trades[3], AS_OF + US)  # upheld after as_of
    old = story.paid(AS_OF - 50 * DAY)
    story.complaint(old, WINDOW_START)  # upheld exactly 30 days before: outside
    rates = rates_of(story.file(), Cut(AS_OF), TAOBAO)
    assert rates.complaint_rate == 1 / 20
    assert rates_of(story.file(), Cut(AS_OF + US), TAOBAO).complaint_rate == 2 / 20


@pytest.mark.parametrize(
    ("ruled_against_the_seller", "figures"),
    [
        pytest.param(Story.dispute, {"disputes": 0, "dispute_rate": 0.0}, id="dispute"),
        pytest.param(Story.complaint, {"complaint_rate": 0.0}, id="complaint"),
    ],
)
def test_disputes_and_complaints_on_fake_trades_leave_their_rates(
    story: Story,
    ruled_against_the_seller: Callable[[Story, str, datetime], Any],
    figures: dict[str, Any],
) -> None:
    trades = story.paid_many(21, IN_WINDOW - 5 * DAY)
    ruled_against_the_seller(story, trades[0], IN_WINDOW)
    story.fake(trades[:1], IN_WINDOW + DAY)
    rates = rates_of(story.file(), Cut(AS_OF), TAOBAO)
    assert rates.paid_trades == 20
    assert {name: getattr(rates, name) for name in figures} == figures


# =========================================================================================
# Factors and the multiplier (docs/rules.md §6)
# =========================================================================================


def test_no_factor_gives_multiplier_one_and_no_reasons(story: Story) -> None:
    story.paid_many(25, IN_WINDOW)
    penalty = story.penalty(AS_OF)
    assert penalty.searchable
    assert penalty.multiplier == 1.0
    assert not penalty.sort_hidden
    assert penalty.reasons == ()
    assert (penalty.demoted_items, penalty.demoted_items_unlisted) == ({}, 0)


def test_refund_rate_above_10_percent_multiplies_by_0_8_and_exactly_10_does_not(
    story: Story,
) -> None:
    trades = story.paid_many(20, IN_WINDOW)
    paid_positions = [story.refund_paid(t, IN_WINDOW + DAY) for t in trades[:2]]
    at_ten = story.penalty(AS_OF)
    assert (at_ten.multiplier, at_ten.sort_hidden, at_ten.reasons) == (1.0, False, ())

    paid_positions.append(story.refund_paid(trades[2], IN_WINDOW + DAY))
    penalty = story.penalty(AS_OF)
    assert penalty.multiplier == pytest.approx(0.8)
    assert penalty.sort_hidden
    assert reason(penalty, "refund_rate") == PenaltyReason(
        code="refund_rate",
        figure=3 / 20,
        threshold=0.10,
        until=None,
        positions=tuple(paid_positions),
    )


def test_complaint_rate_above_1_percent_multiplies_by_0_8_and_exactly_1_does_not(
    story: Story,
) -> None:
    trades = story.paid_many(100, IN_WINDOW - 5 * DAY)
    first = story.complaint(trades[0], IN_WINDOW)
    assert story.penalty(AS_OF).multiplier == 1.0  # 1 of 100: exactly 1%

    second = story.complaint(trades[1], IN_WINDOW)
    assert first is not None and second is not None  # both ruled, so both have a position
    penalty = story.penalty(AS_OF)
    assert penalty.multiplier == pytest.approx(0.8)
    assert penalty.sort_hidden
    assert reason(penalty, "complaint_rate") == PenaltyReason(
        code="complaint_rate", figure=0.02, threshold=0.01, positions=(first, second)
    )


def test_the_dispute_factor_needs_more_than_6_disputes_and_a_rate_above_0_1_percent(
    story: Story,
) -> None:
    # 100 paid trades: 7 lost disputes are 7% refunded too, under the 10% refund threshold.
    trades = story.paid_many(100, IN_WINDOW - 5 * DAY)
    rulings = [story.dispute(t, IN_WINDOW) for t in trades[:6]]
    six = story.penalty(AS_OF)
    assert rates_of(story.file(), Cut(AS_OF), TAOBAO).dispute_rate == 0.06
    assert (six.multiplier, six.reasons) == (1.0, ())

    rulings.append(story.dispute(trades[6], IN_WINDOW))
    seven = story.penalty(AS_OF)
    assert seven.multiplier == pytest.approx(0.5)
    assert seven.sort_hidden
    assert reason(seven, "dispute_rate") == PenaltyReason(
        code="dispute_rate", figure=0.07, threshold=0.001, positions=tuple(rulings)
    )


def test_seven_disputes_at_exactly_0_1_percent_do_not_apply() -> None:
    ruled = AS_OF - 5 * DAY
    trades = [trade_facts(IN_WINDOW, n=n, succeeded=False) for n in range(7_000)]
    for trade in trades[:7]:
        trade.dispute = DisputeFacts(stamp(ruled - DAY), stamp(ruled), "seller_at_fault")
    file = seller_file(trades)
    assert rates_of(file, Cut(AS_OF), TAOBAO).dispute_rate == 0.001
    assert penalty_of(file, Cut(AS_OF), TAOBAO).multiplier == 1.0
    trades.pop()  # 7 of 6,999 > 0.1%
    assert codes(penalty_of(seller_file(trades), Cut(AS_OF), TAOBAO)) == ["dispute_rate"]


def test_a_fake_trade_confirmation_halves_the_multiplier_for_90_days(story: Story) -> None:
    trade = story.paid(T0 + DAY)
    confirmed = T0 + 2 * DAY
    position = story.fake([trade], confirmed)
    assert story.penalty(confirmed - US).multiplier == 1.0
    for as_of in (confirmed, confirmed + 90 * DAY - US):
        penalty = story.penalty(as_of)
        assert penalty.multiplier == pytest.approx(0.5)
        assert not penalty.sort_hidden  # not a rate, positive-rate or DSR factor
        assert reason(penalty, "fake_trade_recent") == PenaltyReason(
            code="fake_trade_recent", until=confirmed + 90 * DAY, positions=(position,)
        )
    assert story.penalty(confirmed + 90 * DAY).multiplier == 1.0


def _rated_trades(story: Story, scores: list[str], *, dsr: list[Dsr] | None = None) -> list[int]:
    """One succeeded trade per score, each with its own buyer and item, rated by the buyer."""
    positions = []
    for i, score in enumerate(scores):
        success = T0 + DAY + i * HOUR
        trade = story.succeeded(success + 2 * DAY)
        positions.append(
            story.rate(trade, success + 3 * DAY, score, dsr=dsr[i] if dsr is not None else None)
        )
    return positions


# Every rating of _rated_trades is visible by then (window close + 48 h) and inside 180 days.
RATED_AS_OF = T0 + 40 * DAY


def test_a_positive_rate_below_97_percent_over_20_counted_ratings_multiplies_by_0_9(
    story: Story,
) -> None:
    positions = _rated_trades(story, ["negative"] + ["positive"] * 19)
    penalty = story.penalty(RATED_AS_OF)
    assert penalty.multiplier == pytest.approx(0.9)
    assert penalty.sort_hidden
    assert reason(penalty, "positive_rate_180d") == PenaltyReason(
        code="positive_rate_180d", figure=0.95, threshold=0.97, positions=(positions[0],)
    )


def test_the_positive_rate_factor_needs_20_counted_ratings(story: Story) -> None:
    _rated_trades(story, ["negative"] + ["positive"] * 18)
    penalty = story.penalty(RATED_AS_OF)
    assert credit_of(story.file(), "seller", Cut(RATED_AS_OF), TAOBAO).window_counted == 19
    assert (penalty.multiplier, penalty.sort_hidden, penalty.reasons) == (1.0, False, ())


def _rating_facts_file(scores: list[str], as_of: datetime) -> MemberFile:
    trades = []
    for n, score in enumerate(scores):
        trade = trade_facts(as_of - 30 * DAY, n=n)
        trade.ratings["buyer"] = RatingFacts(stamp(as_of - 20 * DAY), score, False)  # type: ignore[arg-type]
        trades.append(trade)
    return seller_file(trades)


def test_a_positive_rate_of_exactly_97_percent_does_not_apply() -> None:
    exactly = _rating_facts_file(["negative"] * 3 + ["positive"] * 97, AS_OF)
    below = _rating_facts_file(["negative"] * 4 + ["positive"] * 96, AS_OF)
    assert penalty_of(exactly, Cut(AS_OF), TAOBAO).reasons == ()
    assert codes(penalty_of(below, Cut(AS_OF), TAOBAO)) == ["positive_rate_180d"]


def test_positive_rate_reason_positions_are_the_ratings_inside_180_days(story: Story) -> None:
    (old,) = _rated_trades(story, ["negative"])
    base = T0 + 200 * DAY
    recent = []
    for i, score in enumerate(["negative"] + ["positive"] * 19):
        trade = story.succeeded(base + i * HOUR)
        recent.append(story.rate(trade, base + DAY + i * HOUR, score))
    penalty = story.penalty(base + 30 * DAY)
    assert reason(penalty, "positive_rate_180d").figure == 0.95
    assert old not in reason(penalty, "positive_rate_180d").positions
    assert reason(penalty, "positive_rate_180d").positions == (recent[0],)


def _dsr(as_described: int) -> Dsr:
    return Dsr(as_described=as_described, service=5, shipping_speed=5, logistics=5)


def test_any_dsr_dimension_below_4_6_over_20_scores_multiplies_by_0_9(story: Story) -> None:
    # as_described: 11 fives and 9 fours = 91/20 = 4.55.
    scores = [_dsr(5)] * 11 + [_dsr(4)] * 9
    positions = _rated_trades(story, ["positive"] * 20, dsr=scores)
    penalty = story.penalty(RATED_AS_OF)
    assert penalty.multiplier == pytest.approx(0.9)
    assert penalty.sort_hidden
    assert reason(penalty, "dsr_low") == PenaltyReason(
        code="dsr_low", figure=4.55, threshold=4.6, positions=tuple(positions)
    )


def test_the_dsr_factor_needs_20_scores_and_a_mean_below_4_6(story: Story) -> None:
    _rated_trades(story, ["positive"] * 19, dsr=[_dsr(4)] * 19)
    dsr = dsr_of(story.file(), Cut(RATED_AS_OF), TAOBAO)
    assert (dsr.count, dsr.as_described) == (19, 4.0)
    assert story.penalty(RATED_AS_OF).reasons == ()


def test_a_dsr_mean_of_exactly_4_6_does_not_apply(story: Story) -> None:
    _rated_trades(story, ["positive"] * 20, dsr=[_dsr(5)] * 12 + [_dsr(4)] * 8)
    assert dsr_of(story.file(), Cut(RATED_AS_OF), TAOBAO).as_described == 4.6
    assert story.penalty(RATED_AS_OF).reasons == ()


def test_whole_shop_demotion_halves_the_multiplier_without_hiding_sort(story: Story) -> None:
    at = T0 + DAY
    story.cheating([f"item-{i}" for i in range(5)], at)
    penalty = story.penalty(at)
    assert penalty.multiplier == pytest.approx(0.5)
    assert not penalty.sort_hidden
    assert codes(penalty) == ["shop_demoted"]


def test_the_multiplier_is_the_product_of_the_factors_that_apply(story: Story) -> None:
    trades = story.paid_many(20, IN_WINDOW - 5 * DAY)
    for t in trades[:3]:
        story.refund_paid(t, IN_WINDOW)  # 15% refunded
    story.complaint(trades[3], IN_WINDOW)  # 5% upheld
    story.cheating([f"item-{i}" for i in range(5)], IN_WINDOW + DAY)  # shop demoted
    penalty = story.penalty(AS_OF)
    assert codes(penalty) == ["refund_rate", "complaint_rate", "shop_demoted"]
    assert penalty.multiplier == pytest.approx(0.8 * 0.8 * 0.5)
    assert penalty.sort_hidden


# =========================================================================================
# Searchable: bans from violation points (docs/rules.md §6)
# =========================================================================================


def test_a_serious_violation_of_12_points_hides_the_shop_for_7_days(story: Story) -> None:
    at = T0 + 10 * DAY
    position = story.violation(at, 12)
    assert story.penalty(at - US).searchable
    for as_of in (at, at + 7 * DAY - US):
        penalty = story.penalty(as_of)
        assert not penalty.searchable
        assert penalty.reasons == (
            PenaltyReason(
                code="ban_serious_hidden_listing_ban",
                figure=12.0,
                until=at + 7 * DAY,
                positions=(position,),
            ),
        )
        # A ban is not a ranking factor.
        assert (penalty.multiplier, penalty.sort_hidden) == (1.0, False)
    assert story.penalty(at + 7 * DAY).searchable
    assert story.penalty(at + 7 * DAY).reasons == ()


def test_an_auditor_at_a_position_before_the_violation_sees_the_shop_searchable(
    story: Story,
) -> None:
    at = T0 + 10 * DAY
    position = story.violation(at, 12)
    assert story.penalty(at + DAY, at_position=position - 1).searchable
    assert not story.penalty(at + DAY, at_position=position).searchable


def test_48_serious_points_seal_the_account_for_good(story: Story) -> None:
    at = T0 + 10 * DAY
    position = story.violation(at, 48)
    next_year = datetime(2027, 6, 1, tzinfo=UTC)
    for as_of in (at, at + 365 * DAY, next_year):
        penalty = story.penalty(as_of)
        assert not penalty.searchable
        # One deduction crossing several nodes applies only the heaviest.
        assert penalty.reasons == (
            PenaltyReason(
                code="ban_serious_account_sealed", figure=48.0, until=None, positions=(position,)
            ),
        )


def test_overlapping_bans_both_run_to_the_latest_end(story: Story) -> None:
    first = T0 + 10 * DAY
    story.violation(first, 12, category="general")
    story.violation(first + 3 * DAY, 12, category="serious")
    penalty = story.penalty(first + 4 * DAY)
    assert not penalty.searchable
    assert codes(penalty) == ["ban_general_hidden_listing_ban", "ban_serious_hidden_listing_ban"]
    assert {r.until for r in penalty.reasons} == {first + 10 * DAY}
    assert not story.penalty(first + 10 * DAY - US).searchable
    assert story.penalty(first + 10 * DAY).searchable


def test_a_general_ban_names_the_violation_that_reached_the_node(story: Story) -> None:
    # docs/rules.md is silent on which facts are "behind" a ban: the code names the
    # violation whose points reached the node (the ban starts at its time), not the
    # earlier violations of the year that added up to it.
    first = T0 + DAY
    positions = [story.violation(first + i * DAY, 3, category="general") for i in range(4)]
    assert story.penalty(first + 3 * DAY - US).searchable
    penalty = story.penalty(first + 3 * DAY)
    assert penalty.reasons == (
        PenaltyReason(
            code="ban_general_hidden_listing_ban",
            figure=12.0,
            until=first + 10 * DAY,
            positions=(positions[-1],),
        ),
    )


def test_upheld_complaints_reaching_12_general_points_ban_from_the_ruling(story: Story) -> None:
    trades = story.paid_many(2, T0 + DAY)
    story.complaint(trades[0], T0 + 5 * DAY, kind="not_as_described", severity="moderate")
    ruling = story.complaint(trades[1], T0 + 6 * DAY, kind="not_as_described", severity="moderate")
    assert ruling is not None
    assert story.penalty(T0 + 6 * DAY - US).searchable
    penalty = story.penalty(T0 + 6 * DAY)
    assert not penalty.searchable
    assert reason(penalty, "ban_general_hidden_listing_ban") == PenaltyReason(
        code="ban_general_hidden_listing_ban",
        figure=12.0,
        until=T0 + 13 * DAY,
        positions=(ruling,),
    )


# =========================================================================================
# Demoted items (docs/rules.md §2 enforcement, §6)
# =========================================================================================


def test_items_of_a_fake_trade_case_are_demoted_30_days_rolling_forward_on_repeat(
    story: Story,
) -> None:
    first = story.paid(T0 + DAY, item="mug")
    other = story.paid(T0 + DAY, item="cup")
    confirmed = T0 + 2 * DAY
    story.fake([first, other], confirmed)
    assert story.penalty(confirmed - US).demoted_items == {}
    assert story.penalty(confirmed).demoted_items == {
        "cup": confirmed + 30 * DAY,
        "mug": confirmed + 30 * DAY,
    }
    repeat = story.paid(T0 + 5 * DAY, item="mug")
    again = confirmed + 10 * DAY
    story.fake([repeat], again)
    assert story.penalty(again).demoted_items == {
        "cup": confirmed + 30 * DAY,
        "mug": again + 30 * DAY,
    }
    assert story.penalty(confirmed + 30 * DAY).demoted_items == {"mug": again + 30 * DAY}
    assert story.penalty(again + 30 * DAY).demoted_items == {}


def test_search_cheating_demotes_items_30_days_from_the_last_offence(story: Story) -> None:
    first = T0 + DAY
    story.cheating(["mug", "cup"], first)
    story.cheating(["mug"], first + 10 * DAY)
    assert story.penalty(first + 10 * DAY).demoted_items == {
        "cup": first + 30 * DAY,
        "mug": first + 40 * DAY,
    }
    assert story.penalty(first + 30 * DAY).demoted_items == {"mug": first + 40 * DAY}
    assert story.penalty(first + 40 * DAY).demoted_items == {}
    # Two items are no whole-shop demotion.
    assert story.penalty(first + 10 * DAY).multiplier == 1.0


def test_five_distinct_items_within_30_days_demote_the_shop_30_days_from_the_latest(
    story: Story,
) -> None:
    first = T0 + DAY
    positions = [story.cheating([f"item-{i}"], first + i * DAY) for i in range(4)]
    story.cheating(["item-0"], first + 4 * DAY)  # a repeat item: still 4 distinct
    assert "shop_demoted" not in codes(story.penalty(first + 4 * DAY))

    latest = first + 29 * DAY - US  # item-0's first record is still inside 30 days
    positions.append(story.cheating(["item-4"], latest))
    assert "shop_demoted" not in codes(story.penalty(latest - US))
    penalty = story.penalty(latest)
    shop = reason(penalty, "shop_demoted")
    assert (shop.until, shop.figure, shop.threshold) == (latest + 30 * DAY, None, None)
    assert positions[-1] in shop.positions
    assert penalty.multiplier == pytest.approx(0.5)
    assert "shop_demoted" in codes(story.penalty(latest + 30 * DAY - US))
    assert "shop_demoted" not in codes(story.penalty(latest + 30 * DAY))


def test_shop_demotion_positions_are_every_record_behind_it(story: Story) -> None:
    first = T0 + DAY
    positions = [story.cheating([f"item-{i}"], first + i * DAY) for i in range(5)]
    shop = reason(story.penalty(first + 4 * DAY), "shop_demoted")
    assert shop.positions == tuple(positions)


def test_fake_trades_and_shop_demotion_alone_do_not_hide_sort(story: Story) -> None:
    at = T0 + 2 * DAY
    story.fake([story.paid(T0 + DAY)], at)
    story.cheating([f"item-x{i}" for i in range(5)], at)
    penalty = story.penalty(at)
    assert codes(penalty) == ["fake_trade_recent", "shop_demoted"]
    assert penalty.multiplier == pytest.approx(0.25)
    assert not penalty.sort_hidden


def test_five_items_spread_over_more_than_30_days_do_not_demote_the_shop(story: Story) -> None:
    first = T0 + DAY
    for i in range(4):
        story.cheating([f"item-{i}"], first + i * DAY)
    story.cheating(["item-4"], first + 30 * DAY)  # item-0 is exactly 30 days old: outside
    assert "shop_demoted" not in codes(story.penalty(first + 30 * DAY))


def test_at_most_1000_demoted_items_are_listed_and_the_rest_counted(story: Story) -> None:
    at = T0 + DAY
    story.cheating([f"item-{i:04d}" for i in range(1_000)], at)
    story.cheating([f"item-{i:04d}" for i in range(1_000, 1_005)], at + HOUR)
    penalty = story.penalty(at + HOUR)
    assert len(penalty.demoted_items) == 1_000
    assert penalty.demoted_items_unlisted == 5
    # docs/rules.md does not say which are listed: the code lists the first by item id.
    assert sorted(penalty.demoted_items) == [f"item-{i:04d}" for i in range(1_000)]


# =========================================================================================
# Verified flag and reasons (docs/rules.md §6)
# =========================================================================================


def test_verified_follows_the_identity_verification_as_of_its_time(story: Story) -> None:
    at = T0 + 5 * DAY
    story.paid(T0 + DAY)  # unverified members may trade
    position = story.verify(at)
    assert not story.penalty(at - US).verified
    assert story.penalty(at).verified
    assert not story.penalty(at, at_position=position - 1).verified


def test_reason_positions_point_at_the_facts_behind_each_reason(story: Story) -> None:
    trades = story.paid_many(30, IN_WINDOW - 5 * DAY)
    for t in trades[:25]:
        story.refund_paid(t, IN_WINDOW)  # 25 refunded trades: only 20 positions
    for t in trades[25:]:
        story.complaint(t, IN_WINDOW)
    story.fake([story.paid(IN_WINDOW)], IN_WINDOW + HOUR)
    story.cheating([f"item-x{i}" for i in range(5)], IN_WINDOW + 2 * HOUR)
    story.violation(IN_WINDOW + 3 * HOUR, 12)
    penalty = story.penalty(IN_WINDOW + 4 * HOUR)
    assert codes(penalty) == [
        "ban_serious_hidden_listing_ban",
        "refund_rate",
        "complaint_rate",
        "fake_trade_recent",
        "shop_demoted",
    ]
    expected: dict[str, Callable[[Event], bool]] = {
        "ban_serious_hidden_listing_ban": lambda e: (
            isinstance(e, ViolationRecorded) and e.points == 12
        ),
        "refund_rate": lambda e: isinstance(e, RefundPaid) and e.trade_id in trades[:25],
        "complaint_rate": lambda e: (
            isinstance(e, ComplaintRuled) and e.outcome == "upheld" and e.trade_id in trades
        ),
        "fake_trade_recent": lambda e: isinstance(e, FakeTradesConfirmed),
        "shop_demoted": lambda e: isinstance(e, SearchCheatingRecorded),
    }
    for r in penalty.reasons:
        assert 1 <= len(r.positions) <= 20, r.code
        assert list(r.positions) == sorted(set(r.positions)), r.code
        for position in r.positions:
            event = story.event(position)
            assert expected[r.code](event), (r.code, event)
            assert getattr(event, "seller_id", SELLER) == SELLER
    assert len(reason(penalty, "refund_rate").positions) == 20
    assert len(reason(penalty, "complaint_rate").positions) == 5
    # until: bans and demotions carry it, rate-based factors do not.
    assert reason(penalty, "refund_rate").until is None
    assert reason(penalty, "complaint_rate").until is None
    assert reason(penalty, "ban_serious_hidden_listing_ban").until == IN_WINDOW + 3 * HOUR + 7 * DAY
    assert reason(penalty, "fake_trade_recent").until == IN_WINDOW + HOUR + 90 * DAY
    assert reason(penalty, "shop_demoted").until == IN_WINDOW + 2 * HOUR + 30 * DAY


def test_dispute_rate_positions_point_at_the_rulings(story: Story) -> None:
    trades = story.paid_many(100, IN_WINDOW - 5 * DAY)
    for t in trades[:7]:
        story.dispute(t, IN_WINDOW)
    for position in reason(story.penalty(AS_OF), "dispute_rate").positions:
        event = story.event(position)
        assert isinstance(event, DisputeRuled)
        assert event.outcome == "seller_at_fault"


def test_dsr_and_positive_rate_positions_point_at_the_buyer_ratings(story: Story) -> None:
    _rated_trades(story, ["negative"] * 2 + ["positive"] * 20, dsr=[_dsr(3)] * 22)
    penalty = story.penalty(RATED_AS_OF)
    assert codes(penalty) == ["positive_rate_180d", "dsr_low"]
    assert penalty.multiplier == pytest.approx(0.81)
    for code in ("positive_rate_180d", "dsr_low"):
        r = reason(penalty, code)
        assert 1 <= len(r.positions) <= 20
        for position in r.positions:
            event = story.event(position)
            assert isinstance(event, RatingGiven)
            assert (event.rater, event.seller_id) == ("buyer", SELLER)
    negatives = reason(penalty, "positive_rate_180d").positions
    assert [story.event(p).score for p in negatives] == ["negative", "negative"]  # type: ignore[attr-defined]
    assert all(story.event(p).dsr is not None for p in reason(penalty, "dsr_low").positions)  # type: ignore[attr-defined]


# =========================================================================================
# Credit end to end (docs/rules.md §3): visibility, fake trades, as_of and at_position
# =========================================================================================

SUCCESS = T0 + 5 * DAY
WINDOW_CLOSES = SUCCESS + 15 * DAY


def _credit(story: Story, member: str, role: str, as_of: datetime, **cut: int) -> int:
    result = credit_of(story.file(member), role, Cut(as_of, **cut), TAOBAO)  # type: ignore[arg-type]
    return result.score


def _credits(story: Story, as_of: datetime) -> tuple[int, int]:
    """The seller's credit and its buyer's (buyer-1), as of a time."""
    return _credit(story, SELLER, "seller", as_of), _credit(story, "buyer-1", "buyer", as_of)


def test_two_positives_count_at_the_later_rating(story: Story) -> None:
    trade = story.succeeded(SUCCESS, buyer="buyer-1")
    story.rate(trade, SUCCESS + DAY)
    later = SUCCESS + 3 * DAY
    story.rate(trade, later, rater="seller")
    assert _credits(story, later - US) == (0, 0)
    assert _credits(story, later) == (1, 1)


def test_one_positive_counts_at_window_close_with_the_default_positive(story: Story) -> None:
    trade = story.succeeded(SUCCESS, buyer="buyer-1")
    story.rate(trade, SUCCESS + DAY)
    story.app.run_deadlines(WINDOW_CLOSES + DAY)
    default = story.event(story.last_position())
    assert isinstance(default, RatingGiven)
    assert (default.rater, default.default, default.occurred_at) == ("seller", True, WINDOW_CLOSES)
    assert _credits(story, WINDOW_CLOSES - US) == (0, 0)
    assert _credits(story, WINDOW_CLOSES) == (1, 1)


def test_a_negative_shows_48_hours_after_the_second_rating(story: Story) -> None:
    trade = story.succeeded(SUCCESS, buyer="buyer-1")
    story.rate(trade, SUCCESS + DAY, "negative")
    second = SUCCESS + 4 * DAY
    story.rate(trade, second, rater="seller")
    shows = second + 48 * HOUR
    assert _credits(story, shows - US) == (0, 0)
    assert _credits(story, shows) == (-1, 1)  # the seller's positive waits too


def test_a_lone_negative_shows_48_hours_after_window_close(story: Story) -> None:
    trade = story.succeeded(SUCCESS, buyer="buyer-1")
    story.rate(trade, SUCCESS + DAY, "negative")
    story.app.run_deadlines(WINDOW_CLOSES + 5 * DAY)  # no default after a negative
    assert all(not (isinstance(e, RatingGiven) and e.default) for e in story.market.events())
    shows = WINDOW_CLOSES + 48 * HOUR
    assert _credit(story, SELLER, "seller", shows - US) == 0
    assert _credits(story, shows) == (-1, 0)


def test_a_fake_trade_confirmation_removes_credit_for_both_parties_from_its_time(
    story: Story,
) -> None:
    trade = story.succeeded(SUCCESS, buyer="buyer-1")
    story.rate(trade, SUCCESS + DAY)
    story.rate(trade, SUCCESS + DAY, rater="seller")
    confirmed = SUCCESS + 10 * DAY
    position = story.fake([trade], confirmed)
    for member, role in ((SELLER, "seller"), ("buyer-1", "buyer")):
        assert _credit(story, member, role, confirmed - US) == 1
        assert _credit(story, member, role, confirmed) == 0
        # What the ledger knew before the confirmation was recorded still counts it.
        assert _credit(story, member, role, confirmed, at_position=position - 1) == 1
    reasons = credit_of(story.file(), "seller", Cut(confirmed), TAOBAO).ratings
    assert [r.reason for r in reasons] == ["fake_trade"]


def test_a_fake_trade_frees_room_under_the_pair_month_cap(story: Story) -> None:
    # Seven positives from one buyer in March: six count; once one of the six is
    # confirmed fake, the seventh counts (as if the fake trade never happened).
    trades = []
    for i in range(7):
        trade = story.succeeded(SUCCESS + i * HOUR, buyer="buyer-1")
        story.rate(trade, SUCCESS + DAY + i * HOUR)
        story.rate(trade, SUCCESS + DAY + i * HOUR, rater="seller")
        trades.append(trade)
    as_of = SUCCESS + 5 * DAY
    assert _credit(story, SELLER, "seller", as_of) == 6
    story.fake(trades[:1], as_of)
    assert _credit(story, SELLER, "seller", as_of) == 6
    verdicts = credit_of(story.file(), "seller", Cut(as_of), TAOBAO).ratings
    assert [v.reason for v in verdicts] == ["fake_trade"] + [None] * 6


def test_at_position_before_a_rating_does_not_count_it(story: Story) -> None:
    trade = story.succeeded(SUCCESS, buyer="buyer-1")
    story.rate(trade, SUCCESS + DAY)
    position = story.rate(trade, SUCCESS + DAY, rater="seller")
    later = SUCCESS + 2 * DAY
    assert _credit(story, "buyer-1", "buyer", later) == 1
    assert _credit(story, "buyer-1", "buyer", later, at_position=position - 1) == 0
    assert _credit(story, "buyer-1", "buyer", later, at_position=position) == 1


def _cap_story(story: Story, order: str) -> None:
    """The same business facts in three recording orders (each trade's own facts
    stay in time order, as the ledger requires):

    - ``in_order``: trade by trade, in order-creation order;
    - ``late_ratings``: every trade's lifecycle first, then the ratings, newest order first,
      so the oldest order's rating is recorded last;
    - ``reversed``: trade by trade, newest order first.

    buyer-1 buys seven items in March and rates each negative with shop scores;
    the seller rates each positive. buyer-2 buys one mug twice within 14 days and
    rates both positive; the seller stays silent (default positives).
    """
    story.market.members("buyer-1", "buyer-2")
    plans: list[tuple[str, str, str, datetime, str, Dsr | None, bool]] = [
        (f"P{i}", "buyer-1", f"item-{i}", T0 + i * DAY, "negative", _dsr(1 + i % 5), True)
        for i in range(7)
    ]
    plans += [
        ("Q1", "buyer-2", "mug", T0 + 2 * HOUR, "positive", None, False),
        ("Q2", "buyer-2", "mug", T0 + 3 * DAY, "positive", None, False),
    ]

    def lifecycle(trade_id: str, buyer: str, item: str, created: datetime) -> None:
        story.market.trade(
            trade_id, at=created + HOUR, buyer=buyer, seller=SELLER, item=item, register=False
        )
        story.market.pay(trade_id, created + 2 * HOUR)
        story.market.ship(trade_id, created + 3 * HOUR)
        story.market.confirm(trade_id, created + DAY)

    def ratings(trade_id: str, created: datetime, score: str, dsr: Dsr | None, both: bool) -> None:
        story.rate(trade_id, created + 2 * DAY, score, dsr=dsr)
        if both:
            story.rate(trade_id, created + 3 * DAY, rater="seller")

    if order == "late_ratings":
        for trade_id, buyer, item, created, *_ in plans:
            lifecycle(trade_id, buyer, item, created)
        for trade_id, _, _, created, score, dsr, both in reversed(plans):
            ratings(trade_id, created, score, dsr, both)
    else:
        for trade_id, buyer, item, created, score, dsr, both in (
            reversed(plans) if order == "reversed" else plans
        ):
            lifecycle(trade_id, buyer, item, created)
            ratings(trade_id, created, score, dsr, both)
    story.app.run_deadlines(T0 + 40 * DAY)


def _figures(story: Story, as_of: datetime) -> dict[str, Any]:
    cut = Cut(as_of)

    def credit(member: str, role: str) -> tuple[Any, ...]:
        r = credit_of(story.file(member), role, cut, TAOBAO)  # type: ignore[arg-type]
        verdicts = sorted((v.record.trade_id, v.score, v.points, v.reason) for v in r.ratings)
        return (r.score, r.level.index, r.positive, r.negative, r.positive_rate_window, verdicts)

    dsr = dsr_of(story.file(), cut, TAOBAO)
    return {
        "seller": credit(SELLER, "seller"),
        "buyer-1": credit("buyer-1", "buyer"),
        "buyer-2": credit("buyer-2", "buyer"),
        "dsr": (dsr.means(), dsr.count),
        "tiers": [(buyer_history(story.file(b), cut, TAOBAO).tier) for b in ("buyer-1", "buyer-2")],
    }


def test_a_late_rating_of_an_older_order_counts_as_if_recorded_in_order() -> None:
    stories = {order: Story() for order in ("in_order", "late_ratings", "reversed")}
    try:
        for order, story in stories.items():
            _cap_story(story, order)
        for as_of in (T0 + 8 * DAY, T0 + 40 * DAY):
            expected = _figures(stories["in_order"], as_of)
            assert _figures(stories["late_ratings"], as_of) == expected
            assert _figures(stories["reversed"], as_of) == expected
        figures = _figures(stories["late_ratings"], T0 + 40 * DAY)
        # Seven negatives from one pair in March: -6, the last-created one capped;
        # two positives on one mug within 14 days: +1.
        assert figures["seller"][0] == -5
        capped = [v for v in figures["seller"][5] if v[3] is not None]
        assert capped == [
            ("P6", "negative", 0, "pair_month_cap"),
            ("Q2", "positive", 0, "same_item_14d"),
        ]
        assert figures["buyer-1"][0] == 6  # seven seller positives, capped at +6
        # Shop scores: only buyer-1's first three March trades by creation time count
        # (P0-P2, as_described 1, 2, 3); buyer-2 gave none.
        assert figures["dsr"] == (
            {"as_described": 2.0, "service": 5.0, "shipping_speed": 5.0, "logistics": 5.0},
            3,
        )
        assert figures["tiers"] == ["junior", "novice"]
    finally:
        for story in stories.values():
            story.close()


# =========================================================================================
# eBay-style seller levels (docs/rules.md §7)
# =========================================================================================

LEVEL_AS_OF = T0 + 400 * DAY


def _level_trades(
    count: int, *, amount: int = PRICE, start: int = 0, days_ago: int = 60
) -> list[TradeFacts]:
    created = LEVEL_AS_OF - days_ago * DAY
    return [trade_facts(created, n=start + n, amount=amount) for n in range(count)]


def _defects(trades: list[TradeFacts], buyers: list[str]) -> None:
    """Turn the first trades into defects (disputes lost), one per listed buyer."""
    for trade, buyer in zip(trades, buyers, strict=False):
        trade.buyer_id = buyer
        ruled = LEVEL_AS_OF - 10 * DAY
        trade.dispute = DisputeFacts(stamp(ruled - DAY), stamp(ruled), "seller_at_fault")


def _level(
    trades: list[TradeFacts], *, registered: datetime = T0, as_of: datetime = LEVEL_AS_OF
) -> Any:
    return seller_level_of(seller_file(trades, registered=registered), Cut(as_of), EBAY)


def test_seller_level_is_none_under_taobao_classic() -> None:
    assert seller_level_of(seller_file(_level_trades(100)), Cut(LEVEL_AS_OF), TAOBAO) is None


def test_top_rated_needs_100_trades_in_365_days() -> None:
    # docs/rules.md is silent on which time puts a trade in a window: the code (README
    # read-side rule 22) uses the order creation time.
    assert _level(_level_trades(100)).level == "top_rated"
    assert _level(_level_trades(99)).level == "above_standard"
    # Trades created 365 days ago or more do not count.
    old = _level_trades(1, start=500, days_ago=365)
    assert _level(_level_trades(99) + old).level == "above_standard"


def test_top_rated_needs_1000_major_units_of_sales_in_365_days() -> None:
    # docs/rules.md does not define "sales": the code takes succeeded amounts, by success
    # time, less the refunds paid on them.
    exactly = _level_trades(100, amount=1_000)  # 100 x 10.00 = 1,000.00
    level = _level(exactly)
    assert (level.level, level.sales_minor) == ("top_rated", 100_000)
    short = _level_trades(100, amount=1_000)
    short[0].refunds["R"] = RefundFacts(
        "R", stamp(LEVEL_AS_OF - DAY), 1, "other", stamp(LEVEL_AS_OF - DAY)
    )
    level = _level(short)
    assert (level.level, level.sales_minor) == ("above_standard", 99_999)


def test_top_rated_needs_90_days_since_registration() -> None:
    registered = LEVEL_AS_OF - 90 * DAY
    assert _level(_level_trades(100, days_ago=10), registered=registered).level == "top_rated"
    late = registered + US
    assert _level(_level_trades(100, days_ago=10), registered=late).level == "above_standard"


def test_top_rated_allows_a_defect_rate_up_to_half_a_percent() -> None:
    trades = _level_trades(1_000)
    _defects(trades, [f"d{i}" for i in range(5)])  # 5 of 1,000 = 0.5%, 5 buyers
    level = _level(trades)
    assert (level.level, level.defect_rate, level.defect_buyers) == ("top_rated", 0.005, 5)
    _defects(trades[5:], ["d5"])  # 0.6%, 6 buyers
    assert _level(trades).level == "above_standard"


def test_top_rated_allows_defects_from_at_most_3_distinct_buyers() -> None:
    trades = _level_trades(100)
    _defects(trades, ["d1", "d1", "d2", "d2", "d3"])  # 5% from 3 buyers
    level = _level(trades)
    assert (level.level, level.defects, level.defect_buyers) == ("top_rated", 5, 3)
    _defects(trades[5:], ["d4"])  # 4 buyers, 6%: neither top rated nor below standard
    assert _level(trades).level == "above_standard"


def test_below_standard_needs_a_defect_rate_above_2_percent_and_5_buyers() -> None:
    trades = _level_trades(250)
    _defects(trades, [f"d{i}" for i in range(5)])  # 5 of 250 = 2% exactly
    assert _level(trades).level == "above_standard"
    _defects(trades[5:], ["d0"])  # 6 of 250 = 2.4%, 5 buyers
    level = _level(trades)
    assert (level.level, level.defect_buyers) == ("below_standard", 5)
    four = _level_trades(100)
    _defects(four, ["d1", "d2", "d3", "d4", "d4", "d4"])  # 6%, 4 buyers
    assert _level(four).level == "above_standard"


def test_defects_are_seller_cancellations_stockouts_and_lost_disputes() -> None:
    trades = _level_trades(100)
    at = LEVEL_AS_OF - 5 * DAY
    defects = []
    for trade, why in zip(
        trades[:3], ["seller_cancelled", "out_of_stock", "buyer_cancelled"], strict=True
    ):
        trade.closed, trade.close_reason = stamp(at), why
        if why != "buyer_cancelled":
            defects.append(trade.closed.position)
    for trade, outcome in zip(trades[3:5], ["seller_at_fault", "not_seller_fault"], strict=True):
        ruled = stamp(at)
        trade.dispute = DisputeFacts(stamp(at - DAY), ruled, outcome)
        if outcome == "seller_at_fault":
            defects.append(ruled.position)
    level = _level(trades)
    assert level.defects == 3
    assert level.positions == tuple(sorted(defects))


def test_the_90_day_window_applies_from_400_trades_in_it() -> None:
    # Ten disputes lost 150 days ago, to ten buyers: outside 90 days, inside 365.
    old_defects = _level_trades(10, start=5_000, days_ago=200)
    for i, trade in enumerate(old_defects):
        ruled = LEVEL_AS_OF - 150 * DAY
        trade.buyer_id = f"old{i}"
        trade.dispute = DisputeFacts(stamp(ruled - DAY), stamp(ruled), "seller_at_fault")
    recent = _level_trades(400, days_ago=30)
    level = _level(recent + old_defects)
    assert (level.window_days, level.trades, level.defects, level.level) == (
        90,
        400,
        0,
        "top_rated",
    )
    level = _level(recent[:399] + old_defects)
    assert (level.window_days, level.trades, level.defects) == (365, 409, 10)
    assert level.level == "below_standard"  # 10 of 409 = 2.4%, from 10 buyers


def test_fake_trades_leave_the_seller_level() -> None:
    trades = _level_trades(100)
    _defects(trades, [f"d{i}" for i in range(5)])
    for trade in trades[:5]:
        trade.fake = stamp(LEVEL_AS_OF - DAY)
    level = _level(trades + _level_trades(5, start=900))
    assert (level.trades, level.defects, level.level) == (100, 0, "top_rated")
