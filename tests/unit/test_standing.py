"""docs/rules.md §4-§6 on the read side: violation points and bans, buyer history and
tiers, shop scores (DSR).

Two ways in. End to end: a ``Market`` (in memory) drives ``LedgerApp``, the log
is folded into a ``Marketplace`` and the figure is computed from a member's
file at a ``Cut``. Direct: the fact Structs (``MemberFacts``, ``ViolationFacts``,
``TradeFacts``, ...) are built by hand, which keeps the many threshold cases fast.

Times follow docs/rules.md §0: N days are N x 24 h; "trailing N days as of T" is
``T - N d < t <= T``; calendar months and years are taken in Asia/Shanghai
(UTC+8), so 2026-12-31T16:00Z is already 2027-01-01 there.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ledger import commands as c
from ledger.app import Appended
from ledger.events import Dsr, Score
from projections.buyers import BuyerHistory, buyer_history
from projections.dsr import dsr_of
from projections.marketplace import (
    POSITION_MAX,
    ComplaintFacts,
    Cut,
    Marketplace,
    MemberFacts,
    MemberFile,
    RatingFacts,
    RefundFacts,
    Stamp,
    TradeFacts,
    ViolationFacts,
)
from projections.rulebook import load_rulebook
from projections.violations import Ban, ViolationStanding, violations_of
from tests.support import DAY, HOUR, T0, Market

RULEBOOK = load_rulebook("taobao-classic")
SHANGHAI = ZoneInfo("Asia/Shanghai")
US = timedelta(microseconds=1)
CNY = 100  # minor units per major unit (2 decimals)

# A time well inside 2026 in Shanghai, for violation stories that do not touch the year's end.
V0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
# The year's end in Shanghai: 2027-01-01 00:00 local.
NEW_YEAR_2027 = datetime(2026, 12, 31, 16, 0, tzinfo=UTC)
DEC_31_2330_SHANGHAI = datetime(2026, 12, 31, 15, 30, tzinfo=UTC)
JAN_1_0030_SHANGHAI = datetime(2026, 12, 31, 16, 30, tzinfo=UTC)

_positions = itertools.count(1)


# --- Building input -------------------------------------------------------------------------


@pytest.fixture
def market() -> Iterator[Market]:
    """A ledger in memory only: these tests are about the read side, not the backends."""
    m = Market.open("memory:")
    try:
        yield m
    finally:
        m.app.close()


def fold(market: Market) -> Marketplace:
    m = Marketplace()
    for notification in market.app.iter_log():
        m.apply(market.app.decode(notification), notification.id)
    return m


def file_of(market: Market, member_id: str) -> MemberFile:
    member_file = fold(market).file(member_id)
    assert member_file is not None, member_id
    return member_file


def stamp(at: datetime, position: int | None = None) -> Stamp:
    return Stamp(at, next(_positions) if position is None else position)


def member_file(
    member_id: str = "seller-1",
    *,
    violations: Sequence[ViolationFacts] = (),
    as_seller: Sequence[TradeFacts] = (),
    as_buyer: Sequence[TradeFacts] = (),
    complaints_filed: Sequence[ComplaintFacts] = (),
) -> MemberFile:
    member = MemberFacts(member_id, stamp(datetime(2020, 1, 1, tzinfo=UTC)))
    member.violations.extend(violations)
    return MemberFile(member, list(as_seller), list(as_buyer), [], list(complaints_filed))


def violation(
    at: datetime, points: int, category: str = "serious", position: int | None = None
) -> ViolationFacts:
    return ViolationFacts(
        "violation", f"V{next(_positions)}", stamp(at, position), category, points
    )


def standing(
    *violations: ViolationFacts, as_of: datetime, at_position: int = POSITION_MAX
) -> ViolationStanding:
    return violations_of(member_file(violations=violations), Cut(as_of, at_position), RULEBOOK)


def purchase(
    trade_id: str,
    succeeded_at: datetime,
    *,
    amount_minor: int = 100,
    buyer: str = "buyer-1",
    seller: str = "seller-1",
    refunds: Sequence[RefundFacts] = (),
    fake_at: datetime | None = None,
) -> TradeFacts:
    """A succeeded purchase: created and paid 2 days before success."""
    return TradeFacts(
        trade_id,
        buyer,
        seller,
        f"item-{trade_id}",
        amount_minor,
        stamp(succeeded_at - 2 * DAY),
        paid=stamp(succeeded_at - 2 * DAY + HOUR),
        succeeded=stamp(succeeded_at),
        window_closes_at=succeeded_at + 15 * DAY,
        refunds={r.refund_id: r for r in refunds},
        fake=None if fake_at is None else stamp(fake_at),
    )


def purchases(count: int, succeeded_at: datetime, amount_minor: int = 100) -> list[TradeFacts]:
    return [purchase(f"P{n}", succeeded_at, amount_minor=amount_minor) for n in range(count)]


def history(
    trades: Sequence[TradeFacts],
    as_of: datetime,
    complaints_filed: Sequence[ComplaintFacts] = (),
) -> BuyerHistory:
    file = member_file("buyer-1", as_buyer=trades, complaints_filed=complaints_filed)
    return buyer_history(file, Cut(as_of), RULEBOOK)


def dsr(as_described: int, service: int = 5, shipping_speed: int = 5, logistics: int = 5) -> Dsr:
    return Dsr(as_described, service, shipping_speed, logistics)


def rated(
    trade_id: str,
    created_at: datetime,
    scores: Dsr | None,
    *,
    buyer: str = "buyer-1",
    succeeded_at: datetime | None = None,
    buyer_score: Score = "positive",
    seller_rates: bool = True,
    fake_at: datetime | None = None,
    shielded_at: datetime | None = None,
) -> TradeFacts:
    """A seller-1 trade rated by its buyer (with shop scores) a day after success.

    When the seller rates positive too, at the same moment, both show at once.
    """
    succeeded = succeeded_at or created_at + DAY
    given = succeeded + DAY
    ratings = {
        "buyer": RatingFacts(
            stamp(given),
            buyer_score,
            default=False,
            dsr=scores,
            shielded=None if shielded_at is None else stamp(shielded_at),
        )
    }
    if seller_rates:
        ratings["seller"] = RatingFacts(stamp(given), "positive", default=False)
    return TradeFacts(
        trade_id,
        buyer,
        "seller-1",
        f"item-{trade_id}",
        10_000,
        stamp(created_at),
        paid=stamp(created_at + HOUR),
        succeeded=stamp(succeeded),
        window_closes_at=succeeded + 15 * DAY,
        ratings=ratings,  # type: ignore[arg-type]
        fake=None if fake_at is None else stamp(fake_at),
    )


def shop_scores(trades: Sequence[TradeFacts], as_of: datetime) -> dict[str, float | None]:
    return dsr_of(member_file(as_seller=trades), Cut(as_of), RULEBOOK).means()


# --- Driving the ledger -------------------------------------------------------------------


def shipped(
    m: Market,
    trade_id: str,
    at: datetime,
    *,
    buyer: str = "buyer-1",
    seller: str = "seller-1",
    amount_minor: int = 10_000,
) -> None:
    """Created at ``at``, paid an hour later, shipped two hours later."""
    m.trade(
        trade_id,
        at=at,
        buyer=buyer,
        seller=seller,
        item=f"item-{trade_id}",
        amount_minor=amount_minor,
    )
    m.pay(trade_id, at + HOUR)
    m.ship(trade_id, at + 2 * HOUR)


def succeeded(m: Market, trade_id: str, at: datetime, **kwargs: str | int) -> datetime:
    """Created at ``at`` and confirmed a day later; returns the success time."""
    shipped(m, trade_id, at, **kwargs)  # type: ignore[arg-type]
    m.confirm(trade_id, at + DAY)
    return at + DAY


def record_violation(
    m: Market, violation_id: str, category: str, points: int, at: datetime
) -> Appended:
    return m.run(
        m.app.record_violation,
        c.RecordViolation(
            seller_id="seller-1",
            violation_id=violation_id,
            category=category,  # type: ignore[arg-type]
            points=points,
            reason="prohibited listing",
            occurred_at=at,
        ),
    )


def complaint(
    m: Market, complaint_id: str, trade_id: str, kind: tuple[str, str], at: datetime
) -> Appended:
    type_, severity = kind
    return m.run(
        m.app.file_complaint,
        c.FileComplaint(
            complaint_id=complaint_id,
            trade_id=trade_id,
            type=type_,  # type: ignore[arg-type]
            severity=severity,  # type: ignore[arg-type]
            occurred_at=at,
        ),
    )


def rule_complaint(m: Market, complaint_id: str, outcome: str, at: datetime) -> Appended:
    return m.run(
        m.app.rule_complaint,
        c.RuleComplaint(complaint_id=complaint_id, outcome=outcome, occurred_at=at),  # type: ignore[arg-type]
    )


def confirm_fake(m: Market, case_id: str, trade_ids: tuple[str, ...], at: datetime) -> Appended:
    return m.run(
        m.app.confirm_fake_trades,
        c.ConfirmFakeTrades(
            seller_id="seller-1", case_id=case_id, trade_ids=trade_ids, occurred_at=at
        ),
    )


def refund_event(m: Market, command: type[c.RefundCommand], trade_id: str, at: datetime) -> None:
    m.run(
        getattr(m.app, _REFUND_METHODS[command]),
        command(trade_id=trade_id, refund_id=f"R-{trade_id}", occurred_at=at),
    )


_REFUND_METHODS: dict[type[c.RefundCommand], str] = {
    c.AgreeRefund: "agree_refund",
    c.RejectRefund: "reject_refund",
    c.EscalateDispute: "escalate_dispute",
}


def rule_dispute(m: Market, trade_id: str, outcome: str, at: datetime) -> None:
    m.run(
        m.app.rule_dispute,
        c.RuleDispute(trade_id=trade_id, outcome=outcome, occurred_at=at),  # type: ignore[arg-type]
    )


# =============================================================================================
# §6 Violation points, nodes and bans
# =============================================================================================


def ban_of(ban: Ban) -> tuple[int, str, str, datetime, datetime | None]:
    return (ban.node, ban.category, ban.action, ban.start, ban.until)


@pytest.mark.parametrize(
    ("node", "lower", "action", "days"),
    [
        pytest.param(12, None, "hidden_listing_ban", 7, id="12"),
        pytest.param(24, (12, "hidden_listing_ban", 7), "listings_removed", 14, id="24"),
        pytest.param(36, (24, "listings_removed", 14), "shop_closed", 21, id="36"),
        pytest.param(48, (36, "shop_closed", 21), "account_sealed", None, id="48"),
    ],
)
def test_a_serious_node_applies_when_reached_not_one_point_before(
    node: int, lower: tuple[int, str, int] | None, action: str, days: int | None
) -> None:
    """node - 1 points (in one violation) stop at the node below; one more point reaches it."""
    below = violation(V0, node - 1)
    reaching = violation(V0 + 2 * HOUR, 1)

    one_short = standing(below, as_of=V0 + HOUR)
    reached = standing(below, reaching, as_of=V0 + 2 * HOUR)

    assert one_short.serious == node - 1
    if lower is None:
        assert one_short.bans == ()
    else:
        lower_node, lower_action, lower_days = lower
        assert [ban_of(b) for b in one_short.bans] == [
            (lower_node, "serious", lower_action, V0, V0 + timedelta(days=lower_days))
        ]
    assert reached.serious == node
    start = V0 + 2 * HOUR
    until = None if days is None else start + timedelta(days=days)
    assert ban_of(reached.bans[-1]) == (node, "serious", action, start, until)
    assert reached.bans[-1].position == reaching.stamp.position
    assert reached.sealed is (node == 48)


def test_a_node_ban_starts_at_the_violation_and_ends_exclusively_after_its_days() -> None:
    standing_ = standing(violation(V0, 12), as_of=V0)
    (ban,) = standing_.bans
    until = V0 + 7 * DAY

    assert (ban.start, ban.until) == (V0, until)
    assert not ban.active(V0 - US)
    assert ban.active(V0)
    assert ban.active(until - US)
    assert not ban.active(until)
    assert standing_.active_bans(V0) == [ban]
    assert standing_.banned_until(V0) == until
    assert standing_.active_bans(until) == []


def test_48_serious_points_seal_the_account_for_good() -> None:
    sealed = standing(violation(V0, 48), as_of=V0 + 3 * 365 * DAY)

    (ban,) = sealed.bans
    assert (ban.node, ban.action, ban.until) == (48, "account_sealed", None)
    assert sealed.sealed
    assert ban.active(V0 + 3 * 365 * DAY)
    # Observed: banned_until says None both for "not banned" and for "permanent";
    # active_bans tells the two apart.
    assert sealed.banned_until(V0 + DAY) is None
    assert sealed.active_bans(V0 + DAY) == [ban]


@pytest.mark.parametrize(
    ("points", "bans"),
    [(11, []), (12, [12]), (13, [12]), (23, [12]), (24, [24]), (47, [36]), (48, [48])],
)
def test_general_points_ban_7_days_at_each_multiple_of_12_reached_in_one_deduction(
    points: int, bans: list[int]
) -> None:
    """One deduction crossing several multiples (0 -> 24) gives one 7-day ban, as for
    serious nodes ("only the heaviest"); general bans are all alike."""
    result = standing(violation(V0, points, "general"), as_of=V0)

    assert result.general == points
    assert result.serious == 0
    assert [ban_of(b) for b in result.bans] == [
        (node, "general", "hidden_listing_ban", V0, V0 + 7 * DAY) for node in bans
    ]
    assert not result.sealed


def test_general_points_ban_again_at_every_multiple_of_12_reached_step_by_step() -> None:
    steps = [violation(V0 + n * DAY, 5, "general") for n in range(10)]  # 5, 10, ..., 50

    result = standing(*steps, as_of=V0 + 10 * DAY)

    assert result.general == 50
    # 15 passes 12, 25 passes 24, 40 passes 36, 50 passes 48.
    assert [(b.node, b.start) for b in result.bans] == [
        (12, V0 + 2 * DAY),
        (24, V0 + 4 * DAY),
        (36, V0 + 7 * DAY),
        (48, V0 + 9 * DAY),
    ]
    assert all(b.until == b.start + 7 * DAY for b in result.bans)
    assert not result.sealed  # 48 general points never seal


def test_general_and_serious_points_are_separate_tallies() -> None:
    result = standing(violation(V0, 11, "general"), violation(V0 + DAY, 11), as_of=V0 + DAY)

    assert (result.general, result.serious, result.bans) == (11, 11, ())


@pytest.mark.parametrize(
    ("before", "points", "node", "action", "days"),
    [
        pytest.param(0, 36, 36, "shop_closed", 21, id="0-to-36"),
        pytest.param(10, 20, 24, "listings_removed", 14, id="10-to-30"),
        pytest.param(0, 48, 48, "account_sealed", None, id="0-to-48"),
        pytest.param(11, 37, 48, "account_sealed", None, id="11-to-48"),
    ],
)
def test_one_serious_deduction_crossing_several_nodes_applies_only_the_heaviest(
    before: int, points: int, node: int, action: str, days: int | None
) -> None:
    earlier = [violation(V0 - DAY, before)] if before else []
    crossing = violation(V0, points)

    result = standing(*earlier, crossing, as_of=V0)

    bans = [b for b in result.bans if b.position == crossing.stamp.position]
    until = None if days is None else V0 + timedelta(days=days)
    assert [ban_of(b) for b in bans] == [(node, "serious", action, V0, until)]
    assert len(result.bans) == 1  # the earlier points reached no node


def test_overlapping_bans_run_to_the_latest_end_across_a_chain() -> None:
    chain = [
        violation(V0, 12),  # serious 12: [V0, V0 + 7 d)
        violation(V0 + 5 * DAY, 12, "general"),  # [V0 + 5 d, V0 + 12 d)
        violation(V0 + 11 * DAY, 12, "general"),  # general 24: [V0 + 11 d, V0 + 18 d)
    ]
    result = standing(*chain, as_of=V0 + 30 * DAY)

    # At V0 only the first ban is active, yet the run goes on through the chain.
    assert result.banned_until(V0) == V0 + 18 * DAY
    assert result.banned_until(V0 + 6 * DAY) == V0 + 18 * DAY
    assert result.banned_until(V0 + 12 * DAY) == V0 + 18 * DAY
    assert result.banned_until(V0 + 18 * DAY - US) == V0 + 18 * DAY
    assert result.banned_until(V0 + 18 * DAY) is None
    assert result.active_bans(V0 + 18 * DAY) == []


def test_a_longer_ban_reached_during_a_shorter_one_decides_the_end() -> None:
    result = standing(violation(V0, 12), violation(V0 + 3 * DAY, 12), as_of=V0 + 4 * DAY)

    assert [(b.node, b.until) for b in result.active_bans(V0 + 4 * DAY)] == [
        (12, V0 + 7 * DAY),
        (24, V0 + 17 * DAY),
    ]
    assert result.banned_until(V0 + 4 * DAY) == V0 + 17 * DAY


def test_bans_with_a_gap_between_them_are_separate_runs() -> None:
    result = standing(
        violation(V0, 12, "general"),
        violation(V0 + 7 * DAY + US, 12, "general"),
        as_of=V0 + 8 * DAY,
    )

    assert result.banned_until(V0) == V0 + 7 * DAY
    assert result.active_bans(V0 + 7 * DAY) == []


def test_a_ban_starting_exactly_when_another_ends_continues_the_run() -> None:
    """docs/rules.md is silent on touching (not overlapping) bans; the code joins them:
    the shop is never searchable in between."""
    result = standing(
        violation(V0, 12, "general"),
        violation(V0 + 7 * DAY, 12, "general"),
        as_of=V0 + 8 * DAY,
    )

    assert result.banned_until(V0) == V0 + 14 * DAY


def test_a_chain_of_bans_that_runs_into_a_sealing_never_ends() -> None:
    result = standing(violation(V0, 12), violation(V0 + 3 * DAY, 36), as_of=V0 + 10 * DAY)

    assert result.sealed
    # At V0 + 1 d the 7-day ban runs, and the sealing at V0 + 3 d overlaps it.
    assert result.banned_until(V0 + DAY) is None


def test_the_year_ends_at_midnight_in_shanghai_not_utc() -> None:
    assert DEC_31_2330_SHANGHAI.astimezone(SHANGHAI).year == 2026
    assert JAN_1_0030_SHANGHAI.astimezone(SHANGHAI).year == 2027
    assert JAN_1_0030_SHANGHAI.year == 2026  # still 2026 in UTC

    split = standing(
        violation(DEC_31_2330_SHANGHAI, 6, "general"),
        violation(JAN_1_0030_SHANGHAI, 6, "general"),
        as_of=JAN_1_0030_SHANGHAI,
    )
    same_year = standing(
        violation(DEC_31_2330_SHANGHAI - HOUR, 6, "general"),
        violation(DEC_31_2330_SHANGHAI, 6, "general"),
        as_of=DEC_31_2330_SHANGHAI,
    )

    assert (split.general, split.bans) == (6, ())
    assert same_year.general == 12
    assert [b.node for b in same_year.bans] == [12]


def test_points_reset_at_the_year_end_even_without_a_new_violation() -> None:
    records = (violation(V0, 11, "general"), violation(V0, 47))

    last_moment = standing(*records, as_of=NEW_YEAR_2027 - US)
    new_year = standing(*records, as_of=NEW_YEAR_2027)

    assert (last_moment.general, last_moment.serious) == (11, 47)
    assert (new_year.general, new_year.serious) == (0, 0)
    assert not new_year.sealed
    # Records stay forever (docs/rules.md §6).
    assert len(new_year.records) == 2


def test_a_serious_total_of_48_or_more_survives_the_year_end_and_stays_sealed() -> None:
    sealed_2026 = violation(V0, 48)
    more_2027 = violation(NEW_YEAR_2027 + 30 * DAY, 12)

    next_year = standing(sealed_2026, as_of=NEW_YEAR_2027 + DAY)
    with_more = standing(sealed_2026, more_2027, as_of=NEW_YEAR_2027 + 31 * DAY)

    assert (next_year.serious, next_year.sealed) == (48, True)
    assert [b.action for b in next_year.active_bans(NEW_YEAR_2027 + DAY)] == ["account_sealed"]
    # The kept total goes on accumulating, and no node below it is reached again.
    assert with_more.serious == 60
    assert [b.node for b in with_more.bans] == [48]


def test_after_the_year_end_reset_nodes_are_reached_again() -> None:
    result = standing(
        violation(V0, 24),
        violation(NEW_YEAR_2027 + DAY, 12),
        violation(NEW_YEAR_2027 + 2 * DAY, 12, "general"),
        violation(V0, 12, "general"),
        as_of=NEW_YEAR_2027 + 2 * DAY,
    )

    assert (result.serious, result.general) == (12, 12)
    assert [(b.node, b.category, b.start) for b in result.bans] == [
        (24, "serious", V0),
        (12, "general", V0),
        (12, "serious", NEW_YEAR_2027 + DAY),
        (12, "general", NEW_YEAR_2027 + 2 * DAY),
    ]


def test_a_ban_that_started_before_the_year_end_runs_its_course_after_the_reset() -> None:
    start = NEW_YEAR_2027 - DAY
    result = standing(violation(start, 12, "general"), as_of=NEW_YEAR_2027 + 2 * DAY)

    assert result.general == 0
    assert result.banned_until(NEW_YEAR_2027 + 2 * DAY) == start + 7 * DAY


def test_a_violation_after_the_cut_is_not_counted() -> None:
    first = violation(V0, 12, position=10)
    second = violation(V0 + DAY, 12, position=20)

    assert standing(first, second, as_of=V0 + DAY - US).serious == 12
    assert standing(first, second, as_of=V0 + DAY).serious == 24
    assert standing(first, second, as_of=V0 + DAY, at_position=19).serious == 12
    assert standing(first, second, as_of=V0 + DAY, at_position=20).serious == 24
    assert standing(first, second, as_of=V0 - US) == ViolationStanding(0, 0, False, (), ())


def test_violations_recorded_through_the_ledger_reach_nodes(market: Market) -> None:
    m = market
    m.members("seller-1")
    record_violation(m, "V1", "serious", 12, V0)
    record_violation(m, "V2", "general", 12, V0 + DAY)
    record_violation(m, "V3", "serious", 36, V0 + 2 * DAY)

    result = violations_of(file_of(m, "seller-1"), Cut(V0 + 2 * DAY), RULEBOOK)

    assert (result.general, result.serious, result.sealed) == (12, 48, True)
    assert [(r.source, r.source_id, r.reason) for r in result.records] == [
        ("violation", "V1", "prohibited listing"),
        ("violation", "V2", "prohibited listing"),
        ("violation", "V3", "prohibited listing"),
    ]
    assert [ban_of(b) for b in result.bans] == [
        (12, "serious", "hidden_listing_ban", V0, V0 + 7 * DAY),
        (12, "general", "hidden_listing_ban", V0 + DAY, V0 + 8 * DAY),
        (48, "serious", "account_sealed", V0 + 2 * DAY, None),
    ]


def test_an_upheld_counterfeit_complaint_gives_12_serious_points_and_a_7_day_ban(
    market: Market,
) -> None:
    m = market
    shipped(m, "T1", V0)
    complaint(m, "C1", "T1", ("counterfeit", "minor"), V0 + DAY)
    ruled_at = V0 + 3 * DAY
    ruled = rule_complaint(m, "C1", "upheld", ruled_at)

    file = file_of(m, "seller-1")
    before = violations_of(file, Cut(ruled_at - US), RULEBOOK)
    after = violations_of(file, Cut(ruled_at), RULEBOOK)

    assert (before.serious, before.bans) == (0, ())
    assert (after.general, after.serious) == (0, 12)
    assert [(r.source, r.source_id, r.category, r.points) for r in after.records] == [
        ("complaint", "C1", "serious", 12)
    ]
    assert [ban_of(b) for b in after.bans] == [
        (12, "serious", "hidden_listing_ban", ruled_at, ruled_at + 7 * DAY)
    ]
    assert after.bans[0].position in ruled.positions


@pytest.mark.parametrize(
    ("kind", "outcome", "general", "serious"),
    [
        (("not_as_described", "severe"), "upheld", 12, 0),
        (("not_as_described", "moderate"), "upheld", 6, 0),
        (("late_shipment", "minor"), "upheld", 3, 0),
        (("service_attitude", "severe"), "upheld", 0, 0),
        (("counterfeit", "severe"), "dismissed", 0, 0),
    ],
)
def test_complaint_rulings_add_their_points_to_their_category(
    market: Market, kind: tuple[str, str], outcome: str, general: int, serious: int
) -> None:
    m = market
    shipped(m, "T1", V0)
    complaint(m, "C1", "T1", kind, V0 + DAY)
    rule_complaint(m, "C1", outcome, V0 + 3 * DAY)

    result = violations_of(file_of(m, "seller-1"), Cut(V0 + 3 * DAY), RULEBOOK)

    assert (result.general, result.serious) == (general, serious)
    # A ruling worth no points leaves no record.
    assert len(result.records) == (1 if general or serious else 0)
    assert [b.node for b in result.bans] == ([12] if general == 12 else [])


def test_fake_trade_offences_add_general_then_serious_points_through_the_ledger(
    market: Market,
) -> None:
    """Offences 1-2 with < 96 trades: 0; offence 3: 12 general; offence 4: 48 serious."""
    m = market
    for case in range(1, 5):
        shipped(m, f"F{case}", V0 + case * DAY)
        confirm_fake(m, f"FK{case}", (f"F{case}",), V0 + case * DAY + 3 * HOUR)

    file = file_of(m, "seller-1")
    after_third = violations_of(file, Cut(V0 + 3 * DAY + 3 * HOUR), RULEBOOK)
    after_fourth = violations_of(file, Cut(V0 + 4 * DAY + 3 * HOUR), RULEBOOK)

    assert [(r.source, r.source_id, r.category, r.points) for r in after_fourth.records] == [
        ("fake_trades", "FK3", "general", 12),
        ("fake_trades", "FK4", "serious", 48),
    ]
    assert (after_third.general, after_third.serious, after_third.sealed) == (12, 0, False)
    assert [(b.node, b.category, b.until) for b in after_third.bans] == [
        (12, "general", V0 + 10 * DAY + 3 * HOUR)
    ]
    assert (after_fourth.general, after_fourth.serious, after_fourth.sealed) == (12, 48, True)
    assert after_fourth.bans[-1].action == "account_sealed"


def test_a_violation_recorded_late_is_slotted_by_business_time(market: Market) -> None:
    """A complaint ruled at V0 + 1 d is recorded after a violation of V0 + 5 d: as of
    the log's end the ruling is the first deduction; at the earlier log position the
    ledger knew only the violation."""
    m = market
    shipped(m, "T1", V0 - DAY)
    complaint(m, "C1", "T1", ("counterfeit", "severe"), V0)
    violation_at = V0 + 5 * DAY
    recorded = record_violation(m, "V1", "serious", 12, violation_at)
    rule_complaint(m, "C1", "upheld", V0 + DAY)

    file = file_of(m, "seller-1")
    then = violations_of(file, Cut(V0 + 6 * DAY, recorded.positions[-1]), RULEBOOK)
    now = violations_of(file, Cut(V0 + 6 * DAY), RULEBOOK)

    assert [(b.node, b.start, b.until) for b in then.bans] == [
        (12, violation_at, violation_at + 7 * DAY)
    ]
    assert [r.source_id for r in now.records] == ["C1", "V1"]
    assert [(b.node, b.action, b.start) for b in now.bans] == [
        (12, "hidden_listing_ban", V0 + DAY),
        (24, "listings_removed", violation_at),
    ]
    assert now.banned_until(V0 + 6 * DAY) == violation_at + 14 * DAY


# =============================================================================================
# §5 Buyer history and tiers
# =============================================================================================

AS_OF = datetime(2027, 6, 15, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("count", "tier", "label"),
    [
        (0, "novice", "新手"),
        (4, "novice", "新手"),
        (5, "junior", "初级"),
        (19, "junior", "初级"),
        (20, "intermediate", "中等"),
        (59, "intermediate", "中等"),
        (60, "senior", "资深"),
        (199, "senior", "资深"),
        (200, "veteran", "骨灰"),
    ],
)
def test_the_tier_by_purchases_in_the_trailing_365_days(count: int, tier: str, label: str) -> None:
    result = history(purchases(count, AS_OF - 10 * DAY, amount_minor=100), AS_OF)

    assert (result.window_purchases, result.window_net_spend_minor) == (count, count * 100)
    assert (result.tier, result.tier_label) == (tier, label)


@pytest.mark.parametrize(
    ("spend_minor", "tier"),
    [
        (999_99, "novice"),
        (1_000_00, "junior"),
        (4_999_99, "junior"),
        (5_000_00, "intermediate"),
        (19_999_99, "intermediate"),
        (20_000_00, "senior"),
        (99_999_99, "senior"),
        (100_000_00, "veteran"),
    ],
)
def test_the_tier_by_net_spend_in_major_units(spend_minor: int, tier: str) -> None:
    one = history([purchase("P1", AS_OF - DAY, amount_minor=spend_minor)], AS_OF)
    split = history(
        [
            purchase("P1", AS_OF - DAY, amount_minor=spend_minor - 1),
            purchase("P2", AS_OF - DAY, amount_minor=1),
        ],
        AS_OF,
    )

    assert (one.window_purchases, one.tier) == (1, tier)
    assert (split.window_net_spend_minor, split.tier) == (spend_minor, tier)


@pytest.mark.parametrize(
    ("count", "amount_minor", "tier"),
    [
        pytest.param(20, 1_000_00, "senior", id="spend-wins"),  # 20 000.00
        pytest.param(60, 20_00, "senior", id="purchases-win"),  # 1 200.00 -> junior
        pytest.param(4, 250_00, "junior", id="spend-lifts-a-novice"),  # 1 000.00
        pytest.param(200, 1, "veteran", id="purchases-lift-a-tiny-spend"),
    ],
)
def test_the_higher_of_the_two_tier_criteria_wins(count: int, amount_minor: int, tier: str) -> None:
    result = history(purchases(count, AS_OF - DAY, amount_minor), AS_OF)

    assert result.tier == tier


@pytest.mark.parametrize(
    ("offset", "inside"),
    [
        pytest.param(365 * DAY, False, id="exactly-365-days-before"),
        pytest.param(365 * DAY - US, True, id="1us-later"),
        pytest.param(timedelta(0), True, id="at-as-of"),
    ],
)
def test_the_tier_window_is_the_trailing_365_days_of_success_time(
    offset: timedelta, inside: bool
) -> None:
    """4 purchases well inside, and a 5th whose success is at the window's edge."""
    trades = [*purchases(4, AS_OF - 100 * DAY), purchase("edge", AS_OF - offset)]

    result = history(trades, AS_OF)

    assert result.window_purchases == (5 if inside else 4)
    assert result.tier == ("junior" if inside else "novice")
    # The lifetime figures keep the old purchase.
    assert result.purchases == 5


def test_a_purchase_succeeding_after_as_of_is_not_seen_yet() -> None:
    trades = [*purchases(4, AS_OF - DAY), purchase("later", AS_OF + US)]

    result = history(trades, AS_OF)

    assert (result.purchases, result.window_purchases, result.tier) == (4, 4, "novice")
    # Created (2 days before its success) before as_of: a trade, not yet a purchase.
    assert result.trades == 5


def test_refunded_purchases_are_left_out_of_the_tier_but_keep_their_net_spend() -> None:
    """A partial refund paid before success makes the trade count as refunded."""
    success = AS_OF - 10 * DAY
    refund = RefundFacts(
        "R1", stamp(success - DAY), 2_500, "damaged", paid=stamp(success - DAY + HOUR)
    )
    others = purchases(4, AS_OF - 40 * DAY, amount_minor=10_000)
    whole = history([*others, purchase("whole", success, amount_minor=10_000)], AS_OF)
    refunded = history(
        [*others, purchase("refunded", success, amount_minor=10_000, refunds=[refund])], AS_OF
    )

    assert (whole.window_purchases, whole.tier) == (5, "junior")
    # Out of the tier, but still a purchase whose net spend is what stayed paid.
    assert refunded.window_purchases == 4
    assert refunded.window_net_spend_minor == 40_000
    assert refunded.tier == "novice"
    assert refunded.purchases == 5
    assert refunded.net_spend_minor == 50_000 - 2_500
    assert (refunded.refunds, refunded.refunded_minor) == (1, 2_500)
    assert refunded.refund_reasons == {"damaged": 1}


def test_a_requested_but_unpaid_refund_changes_nothing() -> None:
    refund = RefundFacts("R1", stamp(AS_OF - 3 * DAY), 2_500, "other")
    trades = [*purchases(4, AS_OF - DAY), purchase("asked", AS_OF - DAY, refunds=[refund])]

    result = history(trades, AS_OF)

    assert (result.window_purchases, result.tier) == (5, "junior")
    assert (result.refunds, result.refunded_minor, result.refund_reasons) == (0, 0, {})


def test_fake_trades_leave_the_tier_and_the_counts_from_the_confirmation_on() -> None:
    confirmed = AS_OF - 5 * DAY
    trades = [
        *purchases(4, AS_OF - 30 * DAY),
        purchase("fake", AS_OF - 30 * DAY, fake_at=confirmed),
    ]

    before = history(trades, confirmed - US)
    after = history(trades, confirmed)

    assert (before.trades, before.purchases, before.fake_trades, before.tier) == (5, 5, 0, "junior")
    assert (after.trades, after.purchases, after.fake_trades, after.tier) == (4, 4, 1, "novice")
    assert after.window_purchases == 4


def test_buyer_history_end_to_end(market: Market) -> None:
    """One buyer's year: every §5 figure from a story driven through the ledger.

    P1 rated both ways; P2 partially refunded (not as described); P3 fully refunded by
    a dispute ruled seller_at_fault; P4's dispute ruled not_seller_fault, then success;
    P5 rated by the buyer only (the seller's default follows); P6 rated by the seller
    only (the buyer's default follows, and is not "given" by the buyer); P7 confirmed
    fake; P8 never paid. Complaints: on P1 upheld, on P4 dismissed, on P5 open.
    """
    m = market
    b = T0 + DAY
    succeeded(m, "P1", b)
    m.rate("P1", "buyer", "positive", at=b + 2 * DAY)
    m.rate("P1", "seller", "negative", at=b + 2 * DAY)

    shipped(m, "P2", b + DAY)
    m.refund("P2", "R-P2", amount_minor=2_500, at=b + DAY + 3 * HOUR, reason="not_as_described")
    refund_event(m, c.AgreeRefund, "P2", b + DAY + 4 * HOUR)
    m.confirm("P2", b + 2 * DAY)
    m.rate("P2", "buyer", "negative", at=b + 3 * DAY)
    m.rate("P2", "seller", "positive", at=b + 3 * DAY)

    shipped(m, "P3", b + 2 * DAY)
    m.refund("P3", "R-P3", amount_minor=10_000, at=b + 2 * DAY + 3 * HOUR, reason="damaged")
    refund_event(m, c.RejectRefund, "P3", b + 2 * DAY + 4 * HOUR)
    refund_event(m, c.EscalateDispute, "P3", b + 2 * DAY + 5 * HOUR)
    rule_dispute(m, "P3", "seller_at_fault", b + 3 * DAY)

    shipped(m, "P4", b + 3 * DAY)
    m.refund("P4", "R-P4", amount_minor=5_000, at=b + 3 * DAY + 3 * HOUR, reason="changed_mind")
    refund_event(m, c.RejectRefund, "P4", b + 3 * DAY + 4 * HOUR)
    refund_event(m, c.EscalateDispute, "P4", b + 3 * DAY + 5 * HOUR)
    rule_dispute(m, "P4", "not_seller_fault", b + 3 * DAY + 6 * HOUR)
    m.confirm("P4", b + 4 * DAY)

    succeeded(m, "P5", b + 4 * DAY)
    m.rate("P5", "buyer", "positive", at=b + 6 * DAY)
    succeeded(m, "P6", b + 5 * DAY)
    m.rate("P6", "seller", "positive", at=b + 7 * DAY)
    succeeded(m, "P7", b + 6 * DAY)
    confirm_fake(m, "FK1", ("P7",), b + 10 * DAY)
    m.trade("P8", at=b + 7 * DAY, item="item-P8")

    complaint(m, "C1", "P1", ("not_as_described", "minor"), b + 3 * DAY)
    rule_complaint(m, "C1", "upheld", b + 5 * DAY)
    complaint(m, "C2", "P4", ("other", "minor"), b + 4 * DAY)
    rule_complaint(m, "C2", "dismissed", b + 6 * DAY)
    complaint(m, "C3", "P5", ("late_shipment", "minor"), b + 5 * DAY)
    m.app.run_deadlines(b + 60 * DAY)  # default ratings at window close

    file = file_of(m, "buyer-1")
    result = buyer_history(file, Cut(b + 60 * DAY), RULEBOOK)
    before_fake = buyer_history(file, Cut(b + 10 * DAY - US), RULEBOOK)

    assert result == BuyerHistory(
        trades=7,  # P1-P6 and P8; P7 is fake
        purchases=5,  # P1, P2, P4, P5, P6
        net_spend_minor=5 * 10_000 - 2_500,  # P4's refund was never paid
        refunds=2,  # paid: P2's and P3's
        refunded_minor=12_500,
        refund_reasons={"not_as_described": 1, "damaged": 1},
        disputes=2,
        disputes_won=1,
        disputes_lost=1,
        complaints_filed=3,
        complaints_upheld=1,
        complaints_dismissed=1,
        ratings_given=3,  # P1 +, P2 -, P5 +; P6's default is not the buyer's
        ratings_given_negative_share=1 / 3,
        ratings_received=4,  # P1 -, P2 +, P5 default +, P6 +
        fake_trades=1,
        tier="novice",
        tier_label="新手",
        window_purchases=4,  # P2 counts as refunded
        window_net_spend_minor=40_000,
    )
    # Before the fake-trade confirmation P7 still counts, for the tier too.
    assert (before_fake.trades, before_fake.purchases, before_fake.fake_trades) == (8, 6, 0)
    assert (before_fake.window_purchases, before_fake.tier) == (5, "junior")


def test_a_default_positive_is_received_but_never_given_by_the_buyer(market: Market) -> None:
    m = market
    done = succeeded(m, "T1", T0 + DAY)
    m.rate("T1", "seller", "positive", at=done + DAY)
    m.app.run_deadlines(done + 15 * DAY)

    result = buyer_history(file_of(m, "buyer-1"), Cut(done + 16 * DAY), RULEBOOK)

    assert fold(m).trades["T1"].ratings["buyer"].default
    assert (result.ratings_given, result.ratings_given_negative_share) == (0, None)
    assert result.ratings_received == 1


def test_the_negative_share_of_ratings_given_follows_a_revision_to_positive(
    market: Market,
) -> None:
    m = market
    first = succeeded(m, "T1", T0 + DAY)
    second = succeeded(m, "T2", T0 + 2 * DAY)
    m.rate("T1", "buyer", "negative", at=first + DAY)
    m.rate("T2", "buyer", "positive", at=second + DAY)
    m.run(
        m.app.revise_rating,
        c.ReviseRating(trade_id="T1", rater="buyer", occurred_at=first + 20 * DAY),
    )

    # Both lone ratings have shown by then: the negative 48 h after window close.
    file = file_of(m, "buyer-1")
    before = buyer_history(file, Cut(first + 20 * DAY - US), RULEBOOK)
    after = buyer_history(file, Cut(first + 20 * DAY), RULEBOOK)

    assert (before.ratings_given, before.ratings_given_negative_share) == (2, 0.5)
    assert (after.ratings_given, after.ratings_given_negative_share) == (2, 0.0)


def test_complaints_filed_count_from_filing_and_outcomes_from_the_ruling() -> None:
    filed = AS_OF - 10 * DAY
    ruled = AS_OF - 5 * DAY
    complaints = [
        ComplaintFacts(
            "C1",
            "P0",
            "buyer-1",
            "seller-1",
            "other",
            "minor",
            stamp(filed),
            stamp(ruled),
            "upheld",
        ),
        ComplaintFacts("C2", "P1", "buyer-1", "seller-1", "other", "minor", stamp(filed)),
    ]

    before_filing = history(purchases(2, AS_OF - 20 * DAY), filed - US, complaints)
    before_ruling = history(purchases(2, AS_OF - 20 * DAY), ruled - US, complaints)
    after = history(purchases(2, AS_OF - 20 * DAY), AS_OF, complaints)

    assert before_filing.complaints_filed == 0
    assert (before_ruling.complaints_filed, before_ruling.complaints_upheld) == (2, 0)
    assert (after.complaints_filed, after.complaints_upheld, after.complaints_dismissed) == (
        2,
        1,
        0,
    )


def test_a_withdrawn_rating_stays_among_the_ratings_given(market: Market) -> None:
    """docs/rules.md is silent; the code keeps a withdrawn rating among those the buyer gave,
    with its score (credit excludes it as ``withdrawn``)."""
    m = market
    done = succeeded(m, "T1", T0 + DAY)
    m.rate("T1", "buyer", "negative", at=done + DAY)
    m.run(
        m.app.withdraw_rating,
        c.WithdrawRating(trade_id="T1", rater="buyer", occurred_at=done + 2 * DAY),
    )

    result = buyer_history(file_of(m, "buyer-1"), Cut(done + 20 * DAY), RULEBOOK)

    assert (result.ratings_given, result.ratings_given_negative_share) == (1, 1.0)


def test_a_complaint_on_a_trade_later_confirmed_fake_stays_among_complaints_filed(
    market: Market,
) -> None:
    """docs/rules.md lists what a fake trade stops counting for (credit, DSR, sales counts,
    tiers) and is silent on complaints; the code keeps the complaint (though the
    module's docstring says fake trades leave every figure but ``fake_trades``)."""
    m = market
    done = succeeded(m, "T1", T0 + DAY)
    complaint(m, "C1", "T1", ("other", "minor"), done + DAY)
    rule_complaint(m, "C1", "dismissed", done + 2 * DAY)
    confirm_fake(m, "FK1", ("T1",), done + 3 * DAY)

    result = buyer_history(file_of(m, "buyer-1"), Cut(done + 4 * DAY), RULEBOOK)

    assert (result.trades, result.purchases, result.fake_trades) == (0, 0, 1)
    assert (result.complaints_filed, result.complaints_dismissed) == (1, 1)


def _hidden_ratings_story(market: Market) -> tuple[MemberFile, datetime]:
    """The seller rates the buyer negative, the buyer rates negative too: both show
    48 h after the second rating."""
    m = market
    done = succeeded(m, "T1", T0 + DAY)
    m.rate("T1", "buyer", "negative", at=done + DAY)
    m.rate("T1", "seller", "negative", at=done + 2 * DAY)
    return file_of(m, "buyer-1"), done + 4 * DAY


def test_buyer_ratings_count_in_the_history_once_they_show(market: Market) -> None:
    file, shows_at = _hidden_ratings_story(market)

    shown = buyer_history(file, Cut(shows_at), RULEBOOK)

    assert (shown.ratings_given, shown.ratings_received) == (1, 1)
    assert shown.ratings_given_negative_share == 1.0


def test_hidden_ratings_count_nowhere_in_the_buyer_history_yet(market: Market) -> None:
    file, shows_at = _hidden_ratings_story(market)

    hidden = buyer_history(file, Cut(shows_at - US), RULEBOOK)

    assert (hidden.ratings_given, hidden.ratings_received) == (0, 0)
    assert hidden.ratings_given_negative_share is None


# =============================================================================================
# §4 Shop scores (DSR)
# =============================================================================================

D0 = datetime(2026, 6, 3, 2, 0, tzinfo=UTC)  # 2026-06-03 10:00 in Shanghai
LATE_JUNE = datetime(2026, 6, 28, tzinfo=UTC)
# 2026-07-01 00:00 in Shanghai.
JULY_SHANGHAI = datetime(2026, 6, 30, 16, 0, tzinfo=UTC)


def test_each_dimension_is_the_plain_mean_of_the_scores() -> None:
    trades = [
        rated("T1", D0, Dsr(5, 4, 3, 5), buyer="buyer-1"),
        rated("T2", D0, Dsr(4, 4, 5, 5), buyer="buyer-2"),
        rated("T3", D0, Dsr(4, 3, 5, 1), buyer="buyer-3"),
    ]

    result = dsr_of(member_file(as_seller=trades), Cut(LATE_JUNE), RULEBOOK)

    assert result.means() == {
        "as_described": 13 / 3,
        "service": 11 / 3,
        "shipping_speed": 13 / 3,
        "logistics": 11 / 3,
    }
    assert result.count == 3
    assert result.positions == tuple(t.ratings["buyer"].given.position for t in trades)


def test_shop_scores_are_null_without_scores() -> None:
    no_dsr = rated("T1", D0, None)  # rated, but without shop scores

    empty = dsr_of(member_file(), Cut(LATE_JUNE), RULEBOOK)
    unscored = dsr_of(member_file(as_seller=[no_dsr]), Cut(LATE_JUNE), RULEBOOK)

    for result in (empty, unscored):
        assert set(result.means().values()) == {None}
        assert (result.count, result.positions) == (0, ())


def test_only_a_pairs_first_3_trades_by_creation_in_a_month_count() -> None:
    """Listed out of order: creation time decides, not the order in the file."""
    trades = [
        rated("T4", D0 + 3 * DAY, dsr(1)),
        rated("T2", D0 + DAY, dsr(4)),
        rated("T1", D0, dsr(5)),
        rated("T3", D0 + 2 * DAY, dsr(3)),
        rated("other-buyer", D0 + 4 * DAY, dsr(2), buyer="buyer-2"),
    ]

    result = dsr_of(member_file(as_seller=trades), Cut(LATE_JUNE), RULEBOOK)

    assert result.count == 4
    assert result.as_described == (5 + 4 + 3 + 2) / 4  # T4's 1 does not count


def test_ties_in_creation_time_are_broken_by_trade_id() -> None:
    trades = [
        rated("T1", D0, dsr(5)),
        rated("T2", D0 + DAY, dsr(5)),
        rated("T3-b", D0 + 2 * DAY, dsr(1)),
        rated("T3-a", D0 + 2 * DAY, dsr(3)),
    ]

    assert shop_scores(trades, LATE_JUNE)["as_described"] == (5 + 5 + 3) / 3


@pytest.mark.parametrize(
    ("fourth_created", "counts"),
    [
        pytest.param(JULY_SHANGHAI - US, False, id="june-23:59:59-shanghai"),
        pytest.param(JULY_SHANGHAI, True, id="july-00:00-shanghai"),
        pytest.param(JULY_SHANGHAI + 20 * DAY, True, id="next-month"),
    ],
)
def test_the_same_pair_counts_again_in_the_next_shanghai_month(
    fourth_created: datetime, counts: bool
) -> None:
    trades = [rated(f"T{n}", D0 + n * DAY, dsr(5)) for n in range(3)]
    trades.append(rated("T-fourth", fourth_created, dsr(1)))

    result = dsr_of(member_file(as_seller=trades), Cut(JULY_SHANGHAI + 30 * DAY), RULEBOOK)

    assert result.count == (4 if counts else 3)
    assert result.as_described == ((5 * 3 + 1) / 4 if counts else 5.0)


@pytest.mark.parametrize(
    ("before_as_of", "counts"),
    [
        pytest.param(180 * DAY, False, id="exactly-180-days-before"),
        pytest.param(180 * DAY - US, True, id="1us-later"),
    ],
)
def test_scores_count_for_trades_that_succeeded_in_the_trailing_180_days(
    before_as_of: timedelta, counts: bool
) -> None:
    as_of = datetime(2027, 3, 1, tzinfo=UTC)
    success = as_of - before_as_of
    trades = [
        rated("recent", as_of - 10 * DAY, dsr(5), buyer="buyer-2"),
        # Created long before the window: only the success time matters.
        rated("edge", success - 40 * DAY, dsr(1), succeeded_at=success),
    ]

    result = dsr_of(member_file(as_seller=trades), Cut(as_of), RULEBOOK)

    assert result.count == (2 if counts else 1)
    assert result.as_described == (3.0 if counts else 5.0)


def test_the_monthly_slots_are_taken_before_the_180_day_window_is_applied() -> None:
    """docs/rules.md is silent when a pair's month straddles the window's start: the code
    gives the month's 3 slots by creation time first, then drops the trades that
    succeeded before the window, so a 4th trade does not move up into a freed slot."""
    as_of = datetime(2027, 3, 1, tzinfo=UTC)
    created = as_of - 200 * DAY
    old = [
        rated(f"old-{n}", created + n * HOUR, dsr(5), succeeded_at=as_of - 181 * DAY)
        for n in range(3)
    ]
    fourth = rated("fourth", created + 3 * HOUR, dsr(1), succeeded_at=as_of - 10 * DAY)

    result = dsr_of(member_file(as_seller=[*old, fourth]), Cut(as_of), RULEBOOK)

    assert (result.count, result.as_described) == (0, None)


def test_fake_trades_drop_out_from_the_confirmation_on_and_free_their_slot() -> None:
    confirmed = LATE_JUNE
    trades = [
        rated("T1", D0, dsr(5), fake_at=confirmed),
        rated("T2", D0 + DAY, dsr(4)),
        rated("T3", D0 + 2 * DAY, dsr(4)),
        rated("T4", D0 + 3 * DAY, dsr(1)),
    ]

    before = dsr_of(member_file(as_seller=trades), Cut(confirmed - US), RULEBOOK)
    after = dsr_of(member_file(as_seller=trades), Cut(confirmed), RULEBOOK)

    assert (before.count, before.as_described) == (3, 13 / 3)
    # Computed as if T1 never happened: T4 is now among the pair's first 3.
    assert (after.count, after.as_described) == (3, 9 / 3)


def test_a_lone_positive_with_scores_counts_from_window_close() -> None:
    """Only the buyer rated, positive: the rating shows at window close."""
    trade = rated("T1", D0, dsr(2), seller_rates=False)
    closes = trade.window_closes_at
    assert closes is not None

    assert shop_scores([trade], closes - US)["as_described"] is None
    assert shop_scores([trade], closes)["as_described"] == 2.0


def test_a_negative_with_scores_counts_48_hours_after_the_second_rating() -> None:
    trade = rated("T1", D0, dsr(1), buyer_score="negative")
    shows = trade.ratings["buyer"].given.at + 48 * HOUR

    assert shop_scores([trade], shows - US)["as_described"] is None
    assert shop_scores([trade], shows)["as_described"] == 1.0


def test_a_hidden_rating_does_not_take_a_monthly_slot_until_it_shows() -> None:
    """docs/rules.md is silent; as for credit, hidden ratings take no part in the cap: while
    the first trade's rating is hidden, the 4th trade fills the slot, and loses it when
    the first shows."""
    hidden_first = rated("T1", D0, dsr(5), seller_rates=False)  # shows at window close
    others = [rated(f"T{n}", D0 + (n - 1) * HOUR, dsr(3)) for n in (2, 3, 4)]
    closes = hidden_first.window_closes_at
    assert closes is not None

    while_hidden = dsr_of(
        member_file(as_seller=[hidden_first, *others]), Cut(closes - US), RULEBOOK
    )
    shown = dsr_of(member_file(as_seller=[hidden_first, *others]), Cut(closes), RULEBOOK)

    assert (while_hidden.count, while_hidden.as_described) == (3, 3.0)
    assert (shown.count, shown.as_described) == (3, (5 + 3 + 3) / 3)


def test_a_shielded_ratings_scores_drop_out_from_the_shielding_on() -> None:
    """docs/rules.md §2: a shielded rating "scores nothing"."""
    shielded_at = LATE_JUNE
    trades = [rated("T1", D0, dsr(1), shielded_at=shielded_at), rated("T2", D0, dsr(5), buyer="b2")]

    assert shop_scores(trades, shielded_at - US)["as_described"] == 3.0
    assert shop_scores(trades, shielded_at)["as_described"] == 5.0


def test_a_withdrawn_ratings_scores_drop_out_from_the_withdrawal_on() -> None:
    """docs/rules.md is silent; the code drops them, as credit excludes the rating."""
    withdrawn_at = LATE_JUNE
    first = rated("T1", D0, dsr(1), buyer_score="negative")
    first.ratings["buyer"].withdrawn = stamp(withdrawn_at)
    trades = [first, rated("T2", D0, dsr(5), buyer="buyer-2")]

    assert shop_scores(trades, withdrawn_at - US)["as_described"] == 3.0
    assert shop_scores(trades, withdrawn_at)["as_described"] == 5.0


def _rate_both(m: Market, trade_id: str, at: datetime, scores: Dsr) -> None:
    m.rate(trade_id, "buyer", "positive", at=at, dsr=scores)
    m.rate(trade_id, "seller", "positive", at=at)


def test_shop_scores_end_to_end(market: Market) -> None:
    """buyer-1 buys 4 times in June (Shanghai) and once in July; buyer-2 once in June."""
    m = market
    stories = [
        ("T1", "buyer-1", D0, Dsr(5, 5, 4, 4)),
        ("T2", "buyer-1", D0 + DAY, Dsr(4, 5, 4, 4)),
        ("T3", "buyer-1", D0 + 2 * DAY, Dsr(4, 4, 4, 4)),
        ("T4", "buyer-1", D0 + 3 * DAY, Dsr(1, 1, 1, 1)),  # 4th of the pair in June
        ("T5", "buyer-2", D0 + 4 * DAY, Dsr(3, 5, 5, 2)),
        ("T6", "buyer-1", JULY_SHANGHAI, Dsr(5, 5, 5, 5)),  # July: counts again
    ]
    for trade_id, buyer, created, scores in stories:
        done = succeeded(m, trade_id, created, buyer=buyer)
        _rate_both(m, trade_id, done + HOUR, scores)
    m.trade("T7", at=D0 + 5 * DAY, item="item-T7")  # never rated

    result = dsr_of(file_of(m, "seller-1"), Cut(JULY_SHANGHAI + 10 * DAY), RULEBOOK)

    assert result.means() == {
        "as_described": (5 + 4 + 4 + 3 + 5) / 5,
        "service": (5 + 5 + 4 + 5 + 5) / 5,
        "shipping_speed": (4 + 4 + 4 + 5 + 5) / 5,
        "logistics": (4 + 4 + 4 + 2 + 5) / 5,
    }
    assert result.count == 5


def test_a_fake_trade_drops_out_of_shop_scores_end_to_end(market: Market) -> None:
    m = market
    for n, score in enumerate((5, 4, 4, 1), start=1):
        done = succeeded(m, f"T{n}", D0 + (n - 1) * DAY)
        _rate_both(m, f"T{n}", done + HOUR, dsr(score))
    confirmed = D0 + 10 * DAY
    confirm_fake(m, "FK1", ("T1",), confirmed)

    file = file_of(m, "seller-1")
    before = dsr_of(file, Cut(confirmed - US), RULEBOOK)
    after = dsr_of(file, Cut(confirmed), RULEBOOK)

    assert (before.count, before.as_described) == (3, 13 / 3)
    assert (after.count, after.as_described) == (3, 9 / 3)


def test_a_hidden_rating_counts_in_shop_scores_only_once_visible_end_to_end(
    market: Market,
) -> None:
    m = market
    done = succeeded(m, "T1", D0)
    m.rate("T1", "buyer", "positive", at=done + HOUR, dsr=dsr(2))
    closes = done + 15 * DAY

    file = file_of(m, "seller-1")

    assert dsr_of(file, Cut(closes - US), RULEBOOK).count == 0
    assert dsr_of(file, Cut(closes), RULEBOOK).means()["as_described"] == 2.0


def test_shop_scores_at_a_log_position_see_only_the_ratings_recorded_by_then(
    market: Market,
) -> None:
    m = market
    first = succeeded(m, "T1", D0)
    _rate_both(m, "T1", first + HOUR, dsr(5))
    position = max(n.id for n in m.app.iter_log())
    second = succeeded(m, "T2", D0 + DAY, buyer="buyer-2")
    _rate_both(m, "T2", second + HOUR, dsr(1))

    file = file_of(m, "seller-1")
    as_of = D0 + 20 * DAY

    assert dsr_of(file, Cut(as_of, position), RULEBOOK).as_described == 5.0
    assert dsr_of(file, Cut(as_of), RULEBOOK).as_described == 3.0
