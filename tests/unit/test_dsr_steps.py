"""Shop scores from per pair-month step lists equal the reference ``dsr_of``.

One seller's trades are drawn as the fold would record them, to sit on the
rules' edges: orders created at 00:00:00, 12:00 and 23:59:59 local time on the
days around a month end in the rulebook's zone, several at one instant, more
than three per buyer and month; buyer ratings with and without scores, seller
ratings that move when the buyer's shows, default ratings at window close,
and later withdrawals, shields, fake-trade confirmations and paid refunds, some
of them just before or after a trade leaves the window. Every example is
checked at each breakpoint, each window end and each rating window close, one
microsecond either side of them, and at a few instants drawn at random.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from itertools import count

import msgspec
import pytest
from hypothesis import strategies as st

from ledger.events import Dsr, Party
from projections import marketplace as mp
from projections.dsr import dsr_of
from projections.dsr_steps import (
    COMPONENTS,
    PairMonth,
    breakpoints,
    by_pair_month,
    earliest_change,
    group_steps,
    steps_from,
    summary_at,
)
from projections.rulebook import Rulebook
from projections.steps import Step, sum_as_of
from tests.unit.step_support import (
    DAY,
    HOUR,
    MICROSECOND,
    RULEBOOKS,
    SCORES,
    moved_sums,
    per_rulebook,
)

SELLER = "seller"
# Wednesday 31 January 2024 ends a month.
MONTH_END = tuple(date(2024, 1, 29) + n * DAY for n in range(5))
CLOCKS = (time(0, 0, 0), time(12, 0), time(23, 59, 59))
LATER_OFFSETS = (0 * HOUR, HOUR, 2 * DAY, 30 * DAY, 179 * DAY, 181 * DAY, 364 * DAY, 366 * DAY)


class Stamps:
    """Log positions in the order facts are drawn: unique, as the log's are."""

    def __init__(self) -> None:
        self.positions = count(1)

    def at(self, instant: datetime) -> mp.Stamp:
        return mp.Stamp(instant, next(self.positions))

    def maybe(self, instant: datetime | None) -> mp.Stamp | None:
        return None if instant is None else self.at(instant)


def optional_after(start: datetime) -> st.SearchStrategy[datetime | None]:
    """Mostly no such fact, so that enough ratings stay counted."""
    offsets = st.sampled_from((*(None,) * 2 * len(LATER_OFFSETS), *LATER_OFFSETS))
    return offsets.map(lambda offset: None if offset is None else start + offset)


@st.composite
def shop_scores(draw: st.DrawFn) -> Dsr:
    scores = st.integers(1, 5)
    return Dsr(draw(scores), draw(scores), draw(scores), draw(scores))


def given_before_close(draw: st.DrawFn, succeeded: datetime, closes: datetime) -> datetime | None:
    """When a side rates within the rating window (before its close), if at all."""
    offsets = (0 * HOUR, HOUR, 2 * DAY, closes - succeeded - MICROSECOND)
    offset = draw(st.sampled_from((None, *offsets, *offsets)))
    return None if offset is None else succeeded + offset


@st.composite
def ratings(
    draw: st.DrawFn, *, succeeded: datetime, closes: datetime, rulebook: Rulebook, stamps: Stamps
) -> dict[Party, mp.RatingFacts]:
    """Both sides' ratings of a succeeded trade; the buyer's alone carries shop scores.
    A lone positive is answered by a default positive at window close."""
    drawn: dict[Party, mp.RatingFacts] = {}
    sides: tuple[Party, ...] = ("buyer", "seller")
    for side in sides:
        at = given_before_close(draw, succeeded, closes)
        if at is None:
            continue
        with_scores = side == "buyer" and draw(st.integers(0, 3)) > 0
        scores = draw(shop_scores()) if with_scores else None
        drawn[side] = mp.RatingFacts(stamps.at(at), draw(st.sampled_from(SCORES)), False, scores)
    buyer = drawn.get("buyer")
    if buyer is not None:
        revised = draw(optional_after(buyer.given.at))
        buyer.revised = stamps.maybe(revised)
        buyer.revised_score = draw(st.sampled_from(SCORES)) if revised else None
        buyer.withdrawn = stamps.maybe(draw(optional_after(buyer.given.at)))
        buyer.shielded = stamps.maybe(draw(optional_after(buyer.given.at)))
    if len(drawn) == 1 and rulebook.policy.rating.default_positive:
        (rated,) = drawn.values()
        withdrawn_in_time = rated.withdrawn is not None and rated.withdrawn.at < closes
        if rated.score == "positive" and not withdrawn_in_time:
            other: Party = "seller" if "buyer" in drawn else "buyer"
            drawn[other] = mp.RatingFacts(stamps.at(closes), "positive", True)
    return drawn


@st.composite
def trade(
    draw: st.DrawFn, *, number: int, buyers: tuple[str, ...], rulebook: Rulebook, stamps: Stamps
) -> mp.TradeFacts:
    day, clock = draw(st.sampled_from(MONTH_END)), draw(st.sampled_from(CLOCKS))
    created = datetime.combine(day, clock, tzinfo=rulebook.scoring.zone).astimezone(UTC)
    facts = mp.TradeFacts(
        trade_id=f"T{number:03d}",
        buyer_id=draw(st.sampled_from(buyers)),
        seller_id=SELLER,
        item_id="item",
        amount_minor=10_000,
        created=stamps.at(created),
        paid=stamps.at(created),
    )
    # A fake-trade case may be confirmed at any time after the order.
    facts.fake = stamps.maybe(draw(optional_after(created + 5 * DAY)))
    offset = draw(st.sampled_from((None, 0 * HOUR, HOUR, 3 * DAY, 10 * DAY)))
    if offset is None:
        return facts  # never succeeded, so never rated
    succeeded = created + offset
    closes = succeeded + timedelta(days=rulebook.policy.rating.window_days)
    facts.succeeded, facts.window_closes_at = stamps.at(succeeded), closes
    facts.ratings = draw(
        ratings(succeeded=succeeded, closes=closes, rulebook=rulebook, stamps=stamps)
    )
    if draw(st.booleans()):
        requested = stamps.at(succeeded + DAY)
        paid = stamps.maybe(draw(optional_after(requested.at)))
        facts.refunds = {"R1": mp.RefundFacts("R1", requested, 5_000, "not_as_described", paid)}
    return facts


@st.composite
def seller_trades(draw: st.DrawFn, rulebook: Rulebook) -> list[mp.TradeFacts]:
    stamps = Stamps()
    # One buyer often, so that a pair-month holds more than three trades with scores.
    buyers = draw(st.sampled_from((("b1",), ("b1", "b2"))))
    number = draw(st.integers(0, 14))
    return [
        draw(trade(number=n, buyers=buyers, rulebook=rulebook, stamps=stamps))
        for n in range(number)
    ]


def seller_file(trades: list[mp.TradeFacts]) -> mp.MemberFile:
    registered = mp.Stamp(datetime(2023, 1, 1, tzinfo=UTC), 0)
    return mp.MemberFile(mp.MemberFacts(SELLER, registered), trades, [], [], [])


def window(rulebook: Rulebook) -> timedelta:
    return timedelta(days=rulebook.scoring.dsr.window_days)


def probe_instants(
    data: st.DataObject, trades: Iterable[mp.TradeFacts], rulebook: Rulebook
) -> list[datetime]:
    trades = list(trades)
    edges = breakpoints(trades, rulebook)
    for facts in trades:
        if facts.succeeded is not None and facts.window_closes_at is not None:
            edges += [facts.succeeded.at + window(rulebook), facts.window_closes_at]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    edges += data.draw(st.lists(st.datetimes(start, start + 2 * 365 * DAY, timezones=st.just(UTC))))
    return sorted(
        {edge + shift for edge in [start, *edges] for shift in (-MICROSECOND, 0 * DAY, MICROSECOND)}
    )


def steps_of(
    trades: Iterable[mp.TradeFacts], rulebook: Rulebook
) -> dict[PairMonth, tuple[Step, ...]]:
    return {
        key: group_steps(group, rulebook) for key, group in by_pair_month(trades, rulebook).items()
    }


@per_rulebook
def test_the_summary_from_steps_is_the_reference_dsr(name: str, data: st.DataObject) -> None:
    rulebook = RULEBOOKS[name]
    trades = data.draw(seller_trades(rulebook))
    steps = steps_of(trades, rulebook)
    file = seller_file(trades)
    for as_of in probe_instants(data, trades, rulebook):
        expected = dsr_of(file, mp.Cut(as_of), rulebook)
        assert summary_at(steps, as_of) == msgspec.structs.replace(expected, positions=()), as_of


@per_rulebook
def test_group_steps_are_sorted_merged_and_do_not_depend_on_trade_order(
    name: str, data: st.DataObject
) -> None:
    rulebook = RULEBOOKS[name]
    trades = data.draw(seller_trades(rulebook))
    shuffled = data.draw(st.permutations(trades))
    steps = steps_of(trades, rulebook)
    assert steps_of(shuffled, rulebook) == steps
    for group_list in steps.values():
        instants = [step.instant for step in group_list]
        assert instants == sorted(set(instants))
        assert all(any(step.values) and len(step.values) == len(COMPONENTS) for step in group_list)


def known_then(trade: mp.TradeFacts, known_at: datetime) -> mp.TradeFacts | None:
    """The trade as the log knew it at an earlier time: later facts not recorded yet."""
    if trade.created.at > known_at:
        return None

    def seen(stamp: mp.Stamp | None) -> mp.Stamp | None:
        return stamp if stamp is not None and stamp.at <= known_at else None

    ratings = {
        rater: msgspec.structs.replace(
            rating, shielded=seen(rating.shielded), withdrawn=seen(rating.withdrawn)
        )
        for rater, rating in trade.ratings.items()
        if rating.given.at <= known_at
    }
    return msgspec.structs.replace(trade, ratings=ratings, fake=seen(trade.fake))


@per_rulebook
def test_new_facts_move_the_sums_by_the_difference_of_the_steps_from_the_first_change(
    name: str, data: st.DataObject
) -> None:
    """What a view does when a pair-month's facts arrive: evaluate the old and new
    versions only from where they part, and move the sums by the difference."""
    rulebook = RULEBOOKS[name]
    trades = data.draw(seller_trades(rulebook))
    probes = probe_instants(data, trades, rulebook)
    known_at = data.draw(st.sampled_from(probes))
    earlier = [t for t in (known_then(trade, known_at) for trade in trades) if t is not None]
    old_groups, new_groups = by_pair_month(earlier, rulebook), by_pair_month(trades, rulebook)
    added: list[tuple[Step, ...]] = []
    removed: list[tuple[Step, ...]] = []
    for key, group in new_groups.items():
        old = old_groups.get(key, [])
        since = earliest_change(old, group)
        if since is None:
            continue
        added.append(steps_from(group, since, rulebook))
        removed.append(steps_from(old, since, rulebook) if old else ())
    before = list(steps_of(earlier, rulebook).values())
    after = list(steps_of(trades, rulebook).values())
    width = len(COMPONENTS)
    for as_of in probes:
        moved = moved_sums(before, added, removed, as_of, width)
        assert moved == sum_as_of(after, as_of, width), as_of


def a_trade(number: int, **facts: object) -> mp.TradeFacts:
    """A trade of buyer b1 created on 1 March 2026, rated with scores a day after success."""
    created = datetime(2026, 3, 1, 12, tzinfo=UTC)
    succeeded = created + 3 * DAY
    scores = Dsr(as_described=5, service=4, shipping_speed=3, logistics=number % 5 + 1)
    fields: dict[str, object] = {
        "trade_id": f"T{number}",
        "buyer_id": "b1",
        "seller_id": SELLER,
        "item_id": "item",
        "amount_minor": 10_000,
        "created": mp.Stamp(created + number * HOUR, 10 * number),
        "succeeded": mp.Stamp(succeeded, 10 * number + 1),
        "window_closes_at": succeeded + 15 * DAY,
        "ratings": {
            "buyer": mp.RatingFacts(
                mp.Stamp(succeeded + DAY, 10 * number + 2), "positive", False, scores
            ),
            "seller": mp.RatingFacts(mp.Stamp(succeeded + DAY, 10 * number + 3), "positive", False),
        },
    }
    fields.update(facts)
    return mp.TradeFacts(**fields)  # type: ignore[arg-type]


def test_a_rating_counts_from_when_it_shows_until_its_trade_leaves_the_window() -> None:
    rulebook = RULEBOOKS["taobao-classic"]
    facts = a_trade(1)
    assert facts.succeeded is not None
    shown = facts.ratings["buyer"].given.at
    assert group_steps([facts], rulebook) == (
        Step(shown, (1, 5, 4, 3, 2)),
        Step(facts.succeeded.at + 180 * DAY, (-1, -5, -4, -3, -2)),
    )


def test_a_fourth_trade_of_the_month_counts_once_an_earlier_rating_is_withdrawn() -> None:
    rulebook = RULEBOOKS["taobao-classic"]
    trades = [a_trade(n) for n in range(1, 5)]
    withdrawn = trades[0].ratings["buyer"].given.at + 10 * DAY
    trades[0].ratings["buyer"].withdrawn = mp.Stamp(withdrawn, 100)
    steps = {("b1", (2026, 3)): group_steps(trades, rulebook)}
    before, after = summary_at(steps, withdrawn - MICROSECOND), summary_at(steps, withdrawn)
    assert (before.count, before.logistics) == (3, (2 + 3 + 4) / 3)
    assert (after.count, after.logistics) == (3, (3 + 4 + 5) / 3)


def test_trades_created_at_one_instant_rank_by_trade_id_in_any_order() -> None:
    rulebook = RULEBOOKS["taobao-classic"]
    created = a_trade(1).created
    trades = [a_trade(n, created=created) for n in range(1, 5)]
    counted = group_steps(trades[:3], rulebook)
    assert group_steps(reversed(trades), rulebook) == counted


def test_a_group_holds_one_pair_and_one_month() -> None:
    rulebook = RULEBOOKS["taobao-classic"]
    with pytest.raises(ValueError, match="one pair"):
        group_steps([a_trade(1), a_trade(2, buyer_id="b2")], rulebook)
    next_month = mp.Stamp(datetime(2026, 4, 1, tzinfo=UTC), 99)
    with pytest.raises(ValueError, match="one pair"):
        group_steps([a_trade(1), a_trade(2, created=next_month)], rulebook)
