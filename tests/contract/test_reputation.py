"""Reputation queries: as of a business time, at a log position, and why.

Figures depend on the facts, not on the order in which different trades'
events were recorded; the as_of figure at T equals the figure from only the
facts with occurred_at <= T, and the at_position figure at P equals a fold of
the log prefix up to P; a penalty batch answers each seller as the single
query does, on every backend.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import commands as c
from ledger.app import LedgerApp, Origin
from ledger.clock import FixedClock
from ledger.events import Dsr, Score
from projections.marketplace import Cut
from projections.penalties import Penalty
from projections.queries import Answer, Reputation, UnknownMemberError, UnknownSeller, Where
from projections.runner import Runner
from projections.views import MemoryView, open_view
from tests.support import DAY, HOUR, T0, Market
from tools.scenario import SCENARIO_END, START, run_scenario

MEMBERS = ("alice", "bob-shop", "carol", "dave-store")
FIGURES = ("credit_seller", "credit_buyer", "dsr", "penalty", "violations", "buyer_history")


def story() -> LedgerApp:
    app = LedgerApp("memory:", clock=FixedClock(SCENARIO_END + 1000 * DAY))
    run_scenario(app)
    app.run_deadlines(SCENARIO_END)
    return app


STORY = story()
EVENTS = [(n.id, STORY.decode(n)) for n in STORY.iter_log()]


def reputation_over(events: list, clock_at: datetime = SCENARIO_END) -> Reputation:  # type: ignore[type-arg]
    view = MemoryView()
    view.process(events)
    return Reputation(view, FixedClock(clock_at))


def figures(reputation: Reputation, where: Where) -> dict[str, object]:
    found: dict[str, object] = {}
    for member in MEMBERS:
        try:
            found[member] = {
                "credit_seller": reputation.credit(member, "seller", where).figure,
                "credit_buyer": reputation.credit(member, "buyer", where).figure,
                "dsr": reputation.dsr(member, where).figure,
                "penalty": reputation.penalty(member, where).figure,
                "violations": reputation.violations(member, where).figure,
                "buyer_history": reputation.buyer_history(member, where).figure,
            }
        except UnknownMemberError:
            found[member] = None
    return msgspec.to_builtins(found)  # type: ignore[no-any-return]


def test_answers_name_their_rulebook_time_and_position() -> None:
    reputation = reputation_over(EVENTS)
    answer = reputation.credit("bob-shop", "seller")
    assert answer.rulebook == "taobao-classic@1"
    assert answer.as_of == SCENARIO_END
    assert answer.position == EVENTS[-1][0]
    assert answer.figure.score == 2
    ebay = reputation.credit("bob-shop", "seller", Where(rulebook="ebay-style"))
    assert ebay.rulebook == "ebay-style@1"
    assert reputation.seller_level("bob-shop", Where(rulebook="ebay-style")).figure is not None


def test_an_unknown_member_is_reported() -> None:
    with pytest.raises(UnknownMemberError):
        reputation_over(EVENTS).credit("nobody", "seller")


def test_a_member_registered_after_as_of_is_unknown_then() -> None:
    with pytest.raises(UnknownMemberError):
        reputation_over(EVENTS).credit("alice", "buyer", Where(as_of=START - DAY))


@settings(max_examples=25, deadline=None)
@given(offset_hours=st.integers(min_value=-24, max_value=60 * 24))
def test_as_of_equals_a_fold_of_only_the_facts_that_had_occurred(offset_hours: int) -> None:
    as_of = START + timedelta(hours=offset_hours)
    full = figures(reputation_over(EVENTS), Where(as_of=as_of))
    occurred = [(p, e) for p, e in EVENTS if e.occurred_at <= as_of]
    assert figures(reputation_over(occurred), Where(as_of=as_of)) == full


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_at_position_equals_a_fold_of_the_log_prefix(data: st.DataObject) -> None:
    position = data.draw(st.integers(min_value=1, max_value=EVENTS[-1][0]))
    as_of = SCENARIO_END + DAY
    full = figures(reputation_over(EVENTS), Where(as_of=as_of, at_position=position))
    prefix = [(p, e) for p, e in EVENTS if p <= position]
    assert figures(reputation_over(prefix), Where(as_of=as_of)) == full


def test_at_position_answers_reflect_that_position() -> None:
    reputation = reputation_over(EVENTS)
    answer = reputation.credit("alice", "buyer", Where(at_position=6, as_of=SCENARIO_END))
    assert answer.position == 6


# --- (c) recording order of different trades does not matter ----------------------


def trade_scripts(n_trades: int, seed: int) -> list[list[tuple[str, object]]]:
    rng = random.Random(seed)
    scripts = []
    for i in range(n_trades):
        at = T0 + timedelta(hours=rng.randint(1, 24 * 40))
        buyer = f"b{rng.randint(1, 3)}"
        item = f"item-{rng.randint(1, 2)}"
        trade_id = f"T{i}"
        steps: list[tuple[str, object]] = [
            (
                "create_trade",
                c.CreateTrade(
                    trade_id=trade_id,
                    buyer_id=buyer,
                    seller_id="s1",
                    item_id=item,
                    amount_minor=rng.choice([100, 5_000, 20_000]),
                    currency="CNY",
                    goods_kind="physical",
                    shipping="express",
                    occurred_at=at,
                ),
            ),
            ("pay_into_escrow", c.PayIntoEscrow(trade_id=trade_id, occurred_at=at + HOUR)),
            ("ship_trade", c.ShipTrade(trade_id=trade_id, occurred_at=at + 2 * HOUR)),
            ("confirm_receipt", c.ConfirmReceipt(trade_id=trade_id, occurred_at=at + 3 * DAY)),
        ]
        scores: list[Score] = ["positive", "positive", "neutral", "negative"]
        score = rng.choice(scores)
        steps.append(
            (
                "give_rating",
                c.GiveRating(
                    trade_id=trade_id,
                    rater="buyer",
                    score=score,
                    occurred_at=at + 4 * DAY,
                    dsr=Dsr(
                        as_described=rng.randint(1, 5), service=5, shipping_speed=4, logistics=5
                    ),
                ),
            )
        )
        if rng.random() < 0.5:
            steps.append(
                (
                    "give_rating",
                    c.GiveRating(
                        trade_id=trade_id,
                        rater="seller",
                        score="positive",
                        occurred_at=at + 5 * DAY,
                    ),
                )
            )
        scripts.append(steps)
    return scripts


def record(scripts: list[list[tuple[str, object]]], order_seed: int) -> LedgerApp:
    app = LedgerApp("memory:", clock=FixedClock(T0 + 1000 * DAY))
    for member in ("s1", "b1", "b2", "b3"):
        app.register_member(
            c.RegisterMember(member_id=member, occurred_at=T0), Origin("t", f"m-{member}")
        )
    queues = [list(steps) for steps in scripts]
    rng = random.Random(order_seed)
    key = 0
    while any(queues):
        queue = rng.choice([q for q in queues if q])
        method, command = queue.pop(0)
        key += 1
        getattr(app, method)(command, Origin("t", f"k{key}"))
    return app


def fold_figures(app: LedgerApp, as_of: datetime) -> dict[str, object]:
    view = MemoryView()
    Runner(app, view).catch_up()
    reputation = Reputation(view, FixedClock(as_of))
    cut_members = ("s1", "b1", "b2", "b3")
    return {
        m: msgspec.to_builtins(
            (
                reputation.credit(m, "seller").figure.score,
                reputation.credit(m, "buyer").figure.score,
                [
                    r.reason
                    for r in sorted(
                        reputation.credit_explained(m, "seller").figure.ratings,
                        key=lambda r: r.record.trade_id,
                    )
                ],
                reputation.dsr(m).figure.means(),
                reputation.buyer_history(m).figure.tier,
            )
        )
        for m in cut_members
    }


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), order_a=st.integers(0, 10_000), order_b=st.integers(0, 10_000))
def test_figures_do_not_depend_on_the_recording_order_of_different_trades(
    seed: int, order_a: int, order_b: int
) -> None:
    scripts = trade_scripts(12, seed)
    as_of = T0 + 80 * DAY
    assert fold_figures(record(scripts, order_a), as_of) == fold_figures(
        record(scripts, order_b), as_of
    )


# --- the same answers from stored views -------------------------------------------


@pytest.fixture
def stored(database_url: str) -> Iterator[tuple[LedgerApp, str]]:
    app = LedgerApp(database_url, clock=FixedClock(SCENARIO_END + 1000 * DAY))
    run_scenario(app)
    app.run_deadlines(SCENARIO_END)
    yield app, database_url
    app.close()


def test_stored_views_answer_like_the_in_memory_fold(stored: tuple[LedgerApp, str]) -> None:
    app, url = stored
    view = open_view(url)
    Runner(app, view).catch_up()
    reputation = Reputation(view, FixedClock(SCENARIO_END))
    expected = reputation_over([(n.id, app.decode(n)) for n in app.iter_log()])
    for where in (
        Where(),
        Where(as_of=START + 10 * DAY),
        Where(at_position=20, as_of=SCENARIO_END),
    ):
        assert figures(reputation, where) == figures(expected, where)
    view.close()


def test_cut_defaults() -> None:
    reputation = reputation_over(EVENTS)
    cut, position = reputation.cut()
    assert cut == Cut(SCENARIO_END)
    assert position == EVENTS[-1][0]


def test_at_position_alone_is_answered_as_of_when_the_ledger_recorded_that_position() -> None:
    view = MemoryView()
    view.process(EVENTS)
    reputation = Reputation(view, FixedClock(SCENARIO_END + 5000 * DAY), time_at=STORY.recorded_at)
    answer = reputation.credit("alice", "buyer", Where(at_position=20))
    assert answer.as_of == STORY.recorded_at(20) == SCENARIO_END + 1000 * DAY
    assert answer.position == 20
    assert STORY.recorded_at(0) is None


# --- the batch answers each seller as the single query does -----------------------

BATCH_NOW = T0 + 30 * DAY
LATE = T0 + 10 * DAY
# early: facts from T0; quiet: registered at T0, no facts; late: registered at
# LATE; ahead: registered a minute past the query clock (inside the clock-skew
# allowance); nobody: never registered.
BATCH_SELLERS = ("early", "quiet", "late", "ahead", "nobody")
KNOWN_AS_OF: dict[datetime | None, set[str]] = {
    T0 - DAY: set(),
    T0: {"early", "quiet"},
    LATE - timedelta(microseconds=1): {"early", "quiet"},
    LATE: {"early", "quiet", "late"},
    LATE + 5 * DAY: {"early", "quiet", "late"},
    None: {"early", "quiet", "late"},  # now: BATCH_NOW
}


@pytest.fixture
def batch_story(market: Market, database_url: str) -> Iterator[tuple[Reputation, FixedClock]]:
    market.succeeded_trade("T1", buyer="buyer-1", seller="early")
    market.rate("T1", "buyer", "negative")
    market.members("quiet")
    market.members("late", at=LATE)
    market.trade("T2", buyer="buyer-1", seller="late", at=LATE + HOUR)
    market.pay("T2", at=LATE + 2 * HOUR)
    market.members("ahead", at=BATCH_NOW + timedelta(minutes=1))
    view = open_view(database_url)
    Runner(market.app, view).catch_up()
    clock = FixedClock(BATCH_NOW)
    yield Reputation(view, clock), clock
    view.close()


def single_penalty(reputation: Reputation, seller: str, as_of: datetime | None) -> object:
    """The single query's answer, with its stamps, or the batch's form of an unknown seller."""
    try:
        answer = reputation.penalty(seller, Where(as_of=as_of))
    except UnknownMemberError:
        return UnknownSeller(seller)
    return answer


@pytest.mark.parametrize("as_of", list(KNOWN_AS_OF))
def test_the_batch_answers_each_seller_as_the_single_query(
    batch_story: tuple[Reputation, FixedClock], as_of: datetime | None
) -> None:
    reputation, _ = batch_story
    for _ in range(2):  # the second time, current penalties come from snapshots
        batch = reputation.penalties(BATCH_SELLERS, as_of=as_of)
        expected = [
            Answer(e, batch.rulebook, batch.as_of, batch.position) if isinstance(e, Penalty) else e
            for e in batch.figure
        ]
        assert [single_penalty(reputation, s, as_of) for s in BATCH_SELLERS] == expected
        known = {e.seller_id for e in batch.figure if isinstance(e, Penalty)}
        assert known == KNOWN_AS_OF[as_of]
        assert batch.as_of == (as_of or BATCH_NOW)


def test_a_seller_registered_ahead_of_the_clock_is_known_once_the_clock_gets_there(
    batch_story: tuple[Reputation, FixedClock],
) -> None:
    reputation, clock = batch_story
    assert isinstance(reputation.penalties(["ahead"]).figure[0], UnknownSeller)
    clock.set(BATCH_NOW + timedelta(minutes=1))
    (entry,) = reputation.penalties(["ahead"]).figure
    assert isinstance(entry, Penalty) and entry.seller_id == "ahead"
    assert reputation.penalty("ahead").figure == entry
