"""Credit, shop scores, buyer history, rates and penalties from tallies equal the reference.

On memory, SQLite and PostgreSQL views: random logs of a few sellers and
buyers trading the same items around a month end (orders at 23:59:59 and
00:00:00 in the rulebook's zone), ratings given late and out of business-time
order across trades, revised, withdrawn, shielded and confirmed fake, folded
in random batches into views that tally members from 0 to 6 trades on (so
members reach the threshold mid-log and their tallies start from their
file). At instants on and either side of every fact and window
edge, the credit each member's tally gives (a few rows) must be the credit
``credit_of`` computes from the member's whole file, under both built-in
rulebooks and in both roles, a seller's shop scores those ``dsr_of`` gives and
a buyer's history that of ``buyer_history``.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import events as ev
from ledger.clock import FixedClock
from projections.buyers import BuyerHistory, buyer_history
from projections.marketplace import Cut
from projections.penalties import FIGURE_REASONS, penalty_of, rates_of
from projections.queries import Reputation, UnknownMemberError, Where
from projections.tallies import RATES_WIDTH, ROLES, rates_figure, rates_key
from projections.views import MemoryView, ReputationView, SqlView, open_view
from tests.unit.step_support import RULEBOOKS

DAY, HOUR, MICROSECOND = timedelta(days=1), timedelta(hours=1), timedelta(microseconds=1)
ZONE = RULEBOOKS["taobao-classic"].scoring.zone
SELLERS, BUYERS = ("s1", "s2"), ("b1", "b2", "b3")
ITEMS = ("i1", "i2")
ORDER_DAYS = tuple(date(2024, 1, 24) + n * DAY for n in range(21))  # across 31 January
REGISTERED = datetime(2023, 12, 1, tzinfo=UTC)
ORIGIN = uuid.UUID(int=1)
versions = itertools.count(1)


def fact(kind: type[ev.Event], at: datetime, **fields: Any) -> ev.Event:
    return kind(
        originator_id=ORIGIN,
        originator_version=next(versions),
        recorded_at=at,
        occurred_at=at,
        policy_version="taobao-classic@1",
        **fields,
    )


def shop_scores() -> st.SearchStrategy[ev.Dsr | None]:
    score = st.integers(1, 5)
    return st.none() | st.builds(ev.Dsr, score, score, score, score)


@st.composite
def trade_facts(draw: st.DrawFn, number: int, pairs: int) -> list[ev.Event]:
    """One trade's facts in the order they happen; ``pairs`` narrows who trades,
    so that pairs re-buy items and reach the caps."""
    ids = {
        "trade_id": f"T{number:02d}",
        "seller_id": draw(st.sampled_from(SELLERS[: 1 + pairs // 3])),
        "buyer_id": draw(st.sampled_from(BUYERS[: 1 + pairs % 3])),
    }
    item = draw(st.sampled_from(ITEMS))
    amount = draw(st.sampled_from((99, 100, 101, *(2_500,) * 5)))
    clock = draw(st.sampled_from((time(0, 0, 0), time(23, 59, 59), time(12))))
    created = datetime.combine(draw(st.sampled_from(ORDER_DAYS)), clock, tzinfo=ZONE)
    created = created.astimezone(UTC)
    facts = [
        fact(
            ev.TradeCreated,
            created,
            **ids,
            item_id=item,
            amount_minor=amount,
            currency="CNY",
            goods_kind="physical",
            shipping="express",
        )
    ]
    if draw(st.integers(0, 5)) == 0:
        return facts  # never paid nor received
    facts.append(fact(ev.PaymentEscrowed, created, **ids, amount_minor=amount, currency="CNY"))
    if draw(st.integers(0, 3)) == 0:
        refund = {**ids, "refund_id": f"R{number}"}
        asked = created + draw(st.sampled_from((HOUR, 2 * DAY)))
        reason = draw(st.sampled_from(("not_received", "damaged", "changed_mind")))
        facts.append(
            fact(
                ev.RefundRequested,
                asked,
                **refund,
                amount_minor=amount,
                currency="CNY",
                reason=reason,
                with_return=False,
                respond_by=asked + 2 * DAY,
            )
        )
        if draw(st.booleans()):
            paid = asked + HOUR
            facts.append(fact(ev.RefundPaid, paid, **refund, amount_minor=amount, currency="CNY"))
    if draw(st.integers(0, 4)) == 0:
        complaint = {**ids, "complaint_id": f"C{number}"}
        filed = created + draw(st.sampled_from((HOUR, 3 * DAY)))
        facts.append(
            fact(
                ev.ComplaintFiled,
                filed,
                **complaint,
                type="not_as_described",
                severity="moderate",
                amount_minor=amount,
                currency="CNY",
            )
        )
        if draw(st.booleans()):
            facts.append(
                fact(
                    ev.ComplaintRuled,
                    filed + draw(st.sampled_from((HOUR, 5 * DAY))),
                    **complaint,
                    outcome=draw(st.sampled_from(("upheld", "dismissed"))),
                    complaint_type="not_as_described",
                    severity="moderate",
                    points=0,
                    category="general",
                )
            )
    succeeded = created + draw(st.sampled_from((0 * HOUR, HOUR, 3 * DAY, 10 * DAY)))
    closes = succeeded + 15 * DAY
    facts.append(
        fact(ev.ReceiptConfirmed, succeeded, **ids, by="buyer", rating_window_closes_at=closes)
    )
    later: list[ev.Event] = []
    for rater in ("buyer", "seller"):
        if draw(st.integers(0, 3)) == 0:
            continue
        given_at = succeeded + draw(st.sampled_from((0 * HOUR, HOUR, 2 * DAY, 15 * DAY)))
        rating = {**ids, "rater": rater}
        score = draw(st.sampled_from(("positive", "positive", "positive", "neutral", "negative")))
        later.append(
            fact(
                ev.RatingGiven,
                given_at,
                **rating,
                score=score,
                item_id=item,
                amount_minor=amount,
                currency="CNY",
                order_created_at=created,
                succeeded_at=succeeded,
                default=given_at == closes,
                dsr=draw(shop_scores()) if rater == "buyer" else None,
            )
        )
        for kind in (ev.RatingRevised, ev.RatingWithdrawn, ev.RatingShielded):
            if draw(st.integers(0, 4)) == 0:
                at = given_at + draw(st.sampled_from((HOUR, 3 * DAY, 20 * DAY)))
                extra = {"score": "positive"} if kind is ev.RatingRevised else {}
                extra |= {"reason": "abuse"} if kind is ev.RatingShielded else {}
                later.append(fact(kind, at, **rating, **extra))
    if draw(st.integers(0, 5)) == 0:
        at = created + draw(st.sampled_from((5 * DAY, 40 * DAY)))
        later.append(
            fact(
                ev.FakeTradesConfirmed,
                at,
                seller_id=ids["seller_id"],
                case_id=f"F{number}",
                trade_ids=(ids["trade_id"],),
                item_ids=(item,),
                offence_number=1,
                points=0,
                category="general",
                demoted_until=at + 30 * DAY,
            )
        )
    # A trade's later facts are recorded in their business-time order; across
    # trades the log interleaves them at random.
    return facts + sorted(later, key=lambda e: e.occurred_at)


# Violations around the new year in the rulebooks' zones (Shanghai's ends at
# 16:00 UTC, Los Angeles's at 08:00 UTC the next day), with points that
# cross the general and serious nodes and the seal.
VIOLATION_TIMES = tuple(
    datetime(2024, 12, 31, 16, tzinfo=UTC) + shift
    for shift in (-20 * DAY, -HOUR, 0 * HOUR, 16 * HOUR, 2 * DAY, 200 * DAY)
)


@st.composite
def violation_facts(draw: st.DrawFn, number: int) -> list[ev.Event]:
    category = draw(st.sampled_from(("general", "serious")))
    return [
        fact(
            ev.ViolationRecorded,
            draw(st.sampled_from(VIOLATION_TIMES)),
            seller_id=draw(st.sampled_from(SELLERS)),
            violation_id=f"V{number}",
            category=category,
            points=draw(st.sampled_from((6, 12, 24) if category == "general" else (12, 24, 48))),
            reason="listing violation",
        )
    ]


@st.composite
def market_log(draw: st.DrawFn) -> list[ev.Event]:
    registered = [fact(ev.MemberRegistered, REGISTERED, member_id=m) for m in (*SELLERS, *BUYERS)]
    pairs = draw(st.integers(0, 5))
    trades = [draw(trade_facts(n, pairs)) for n in range(draw(st.integers(1, 16)))]
    trades += [draw(violation_facts(n)) for n in range(draw(st.integers(0, 4)))]
    rng = random.Random(draw(st.integers(0, 2**32)))
    log: list[ev.Event] = []
    while trades:
        chosen = rng.randrange(len(trades))
        log.append(trades[chosen].pop(0))
        if not trades[chosen]:
            trades.pop(chosen)
    return registered + log


def probes(log: list[ev.Event]) -> list[datetime]:
    edges = {e.occurred_at for e in log if e.occurred_at > REGISTERED}
    for e in log:
        if isinstance(e, ev.ViolationRecorded):  # a ban's end, and the years' ends
            edges |= {e.occurred_at + 7 * DAY, e.occurred_at + 14 * DAY, *VIOLATION_TIMES[2:4]}
    for e in log:
        if isinstance(e, ev.ReceiptConfirmed):
            edges |= {e.occurred_at + 180 * DAY, e.occurred_at + 365 * DAY}
    return sorted(
        {edge + shift for edge in edges for shift in (-MICROSECOND, 0 * DAY, MICROSECOND)}
    )


NewView = Callable[[int], ReputationView]


@pytest.fixture
def fresh_view(database_url: str) -> Iterator[NewView]:
    """Empty views of the backend tallying members from a number of trades, one
    per example (SQL ones in their own table version, dropped after)."""
    opened: list[ReputationView] = []
    versions = itertools.count(900)

    def new_view(from_trades: int) -> ReputationView:
        version = next(versions)
        view = open_view(database_url, version=version, tally_from_trades=from_trades)
        if isinstance(view, SqlView):
            view.drop()
            view.close()
            view = open_view(database_url, version=version, tally_from_trades=from_trades)
        opened.append(view)
        return view

    yield new_view
    for view in opened:
        if isinstance(view, SqlView):
            view.drop()
        view.close()


# Tally every member, or only from a few trades on, so that members reach the
# threshold in the middle of the log and their tallies start from their file.
FROM_TRADES = st.sampled_from((0, 0, 1, 2, 3, 4, 6))


def fold(view: ReputationView, log: list[ev.Event], cuts: list[int] | None) -> None:
    """In batches cut at ``cuts``, or one event at a time (None), as a live view folds."""
    numbered = list(enumerate(log, start=1))
    inner = range(len(numbered)) if cuts is None else sorted(set(cuts))
    edges = [0, *inner, len(numbered)]
    for start, end in itertools.pairwise(edges):
        if end > start:
            view.process(numbered[start:end])


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    log=market_log(),
    cuts=st.none() | st.lists(st.integers(0, 80), max_size=6),
    from_trades=FROM_TRADES,
    data=st.data(),
)
def test_figures_from_tallies_are_those_from_the_facts(
    fresh_view: NewView,
    log: list[ev.Event],
    cuts: list[int] | None,
    from_trades: int,
    data: st.DataObject,
) -> None:
    view = fresh_view(from_trades)
    fold(view, log, cuts)
    assert view.tally_stamps() == {book.scoring_stamp for book in RULEBOOKS.values()}
    trades = trade_counts(log)
    for member in (*SELLERS, *BUYERS):
        reached = trades[member] > 0 and trades[member] >= from_trades
        assert view.keeps_tallies_of(member) == reached, (member, trades[member])
    reputation = Reputation(view, FixedClock(datetime(2026, 1, 1, tzinfo=UTC)))
    instants = probes(log)
    chosen = data.draw(st.lists(st.sampled_from(instants), min_size=1, max_size=12))
    for as_of, rulebook, role, member in itertools.product(
        chosen, RULEBOOKS, ROLES, (*SELLERS, *BUYERS)
    ):
        where = Where(as_of=as_of, rulebook=rulebook)
        tallied = reputation.credit(member, role, where)
        explained = reputation.credit_explained(member, role, where)
        expected = msgspec.structs.replace(explained.figure, ratings=())
        assert tallied.figure == expected, (as_of, rulebook, role, member)
        if role == "buyer":
            history = reputation.buyer_history(member, where)
            assert history.figure == buyer_history_from_facts(reputation, member, where)
        if role == "seller":
            check_penalty(reputation, member, where)
            if view.keeps_tallies_of(member):
                assert rates_from_tally(reputation, member, where) == rates_from_facts(
                    reputation, member, where
                ), (as_of, member)
            shop = reputation.dsr(member, where).figure
            from_facts = reputation.dsr_explained(member, where).figure
            assert shop == msgspec.structs.replace(from_facts, positions=()), (as_of, member)


def trade_counts(log: list[ev.Event]) -> Counter[str]:
    """Each member's trades, as seller and as buyer."""
    created = [e for e in log if isinstance(e, ev.TradeCreated)]
    return Counter(member for e in created for member in (e.seller_id, e.buyer_id))


def buyer_history_from_facts(reputation: Reputation, member: str, where: Where) -> BuyerHistory:
    cut, _ = reputation.cut(where.as_of)
    member_file = reputation.view.file(member)
    assert member_file is not None
    return buyer_history(member_file, cut, reputation.rulebook(where.rulebook))


def check_penalty(reputation: Reputation, member: str, where: Where) -> None:
    """The penalty equals the reference, and stays so until the instant it is said
    to hold until (a microsecond before it, and halfway there)."""
    book = reputation.rulebook(where.rulebook)
    cut, _ = reputation.cut(where.as_of)
    member_file = reputation.view.file(member)
    assert member_file is not None
    found = reputation.penalty_at(member, cut, book)
    assert found is not None
    penalty, valid_until = found
    assert penalty == penalty_of(member_file, cut, book), (cut.as_of, member)
    if reputation.view.keeps_tallies_of(member) and not any(
        reason.code in FIGURE_REASONS for reason in penalty.reasons
    ):
        # Answered from the seller's row and tallies, not from its file.
        tallied = reputation._penalty_from_tallies(member, cut, book)
        assert tallied is not None, (cut.as_of, member)
        assert tallied[0] == penalty
    end = valid_until or cut.as_of + 800 * DAY
    for later in (cut.as_of + (end - cut.as_of) / 2, end - MICROSECOND):
        if later > cut.as_of:
            assert penalty_of(member_file, Cut(later), book) == penalty, (cut.as_of, later)


def rates_from_tally(reputation: Reputation, member: str, where: Where) -> tuple[int, ...]:
    """The rates tally's counts (the rates themselves stay None below the rulebook's
    minimum of paid trades, which these small logs rarely reach)."""
    book = reputation.rulebook(where.rulebook)
    assert where.as_of is not None
    totals = reputation.view.tally(rates_key(book.scoring_stamp, member), where.as_of, RATES_WIDTH)
    assert rates_figure(totals, book).paid_trades == totals[0]
    return totals


def rates_from_facts(reputation: Reputation, member: str, where: Where) -> tuple[int, ...]:
    cut, _ = reputation.cut(where.as_of)
    member_file = reputation.view.file(member)
    assert member_file is not None
    rates = rates_of(member_file, cut, reputation.rulebook(where.rulebook))
    refunded, upheld = len(rates.refund_positions), len(rates.complaint_positions)
    return (rates.paid_trades, refunded, rates.disputes, upheld)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(log=market_log(), cuts=st.lists(st.integers(0, 80), max_size=6), from_trades=FROM_TRADES)
def test_tally_rows_do_not_depend_on_how_the_log_was_batched(
    log: list[ev.Event], cuts: list[int], from_trades: int
) -> None:
    """Replaying is deterministic: one event at a time or in any batches, the
    same members tallied and the same rows."""
    one_by_one = MemoryView(tally_from_trades=from_trades)
    batched = MemoryView(tally_from_trades=from_trades)
    fold(one_by_one, log, None)
    fold(batched, log, cuts)
    assert batched.tallied_members == one_by_one.tallied_members
    assert batched.timeline.all_rows() == one_by_one.timeline.all_rows()


def test_a_member_unknown_before_registration_is_unknown_to_the_tally_path_too() -> None:
    log, newer = older_and_newer_order_log()
    view = MemoryView(tally_from_trades=0)
    fold(view, log, None)
    assert view.keeps_tallies_of("s1")
    reputation = Reputation(view, FixedClock(newer + DAY))
    before = Where(as_of=REGISTERED - MICROSECOND)
    with pytest.raises(UnknownMemberError):
        reputation.credit("s1", "seller", before)
    with pytest.raises(UnknownMemberError):
        reputation.dsr("s1", before)
    assert reputation.credit("s1", "seller").figure.score == 1


def test_a_view_keeps_only_the_tallies_it_claimed_when_empty_in_this_layout(
    stored_url: str,
) -> None:
    """Tallies claimed later would lack the history before; rows written in
    another layout would be misread. Either way the view answers from facts."""
    builtin = frozenset(rulebook.scoring_stamp for rulebook in RULEBOOKS.values())
    taobao = RULEBOOKS["taobao-classic"]

    def reopened(**options: Any) -> SqlView:
        view = open_view(stored_url, version=950, **options)
        assert isinstance(view, SqlView)
        return view

    view = reopened(rulebooks=[taobao])
    try:
        view.process([(1, fact(ev.MemberRegistered, REGISTERED, member_id="s1"))])
        view.close()
        view = reopened()
        assert view.tally_stamps() == {taobao.scoring_stamp}
        with view._transaction() as cursor:  # a claim and a mark as an older layout wrote them
            view._upsert(
                cursor,
                "tallied",
                ("stamp", "body"),
                [(taobao.scoring_stamp, msgspec.msgpack.encode(taobao.scoring_stamp))],
            )
            view._upsert(cursor, "tally_members", ("member_id", "body"), [("s1", b"\xa2s1")])
        view.close()
        view = reopened()
        assert view.tally_stamps() == frozenset()
        assert not view.keeps_tallies_of("s1")
        violation = fact(
            ev.ViolationRecorded,
            REGISTERED + DAY,
            seller_id="s1",
            violation_id="V1",
            category="serious",
            points=12,
            reason="listing violation",
        )
        view.process([(2, violation)])
        reputation = Reputation(view, FixedClock(REGISTERED + 2 * DAY))
        assert not reputation.penalty("s1").figure.searchable
        view.drop()
        view.close()
        view = reopened()
        assert view.tally_stamps() == builtin
    finally:
        view.drop()
        view.close()


def test_tallies_start_from_the_whole_file_when_a_member_reaches_the_threshold(
    fresh_view: NewView,
) -> None:
    """A buyer files a complaint and is refunded on its first trade; its third
    trade takes buyer and seller to the threshold: from then on the view tallies
    both, and the tallies hold the facts recorded before, complaint included."""
    first = datetime(2024, 1, 5, 12, tzinfo=ZONE).astimezone(UTC)
    ids = [{"trade_id": f"T{n}", "seller_id": "s1", "buyer_id": "b1"} for n in (1, 2, 3)]
    complaint = {**ids[0], "complaint_id": "C1"}
    early = [
        *(fact(ev.MemberRegistered, REGISTERED, member_id=m) for m in ("s1", "b1")),
        *created_paid_received(ids[0], first),
        fact(
            ev.ComplaintFiled,
            first + HOUR,
            **complaint,
            type="not_as_described",
            severity="moderate",
            amount_minor=2_500,
            currency="CNY",
        ),
        fact(
            ev.ComplaintRuled,
            first + 2 * HOUR,
            **complaint,
            outcome="upheld",
            complaint_type="not_as_described",
            severity="moderate",
            points=0,
            category="general",
        ),
        *created_paid_received(ids[1], first + 3 * DAY),
    ]
    late = created_paid_received(ids[2], first + 6 * DAY)
    view = fresh_view(3)
    fold(view, early, None)
    assert not view.keeps_tallies_of("s1") and not view.keeps_tallies_of("b1")
    view.process(list(enumerate(late, start=len(early) + 1)))
    assert view.keeps_tallies_of("s1") and view.keeps_tallies_of("b1")
    reputation = Reputation(view, FixedClock(first + 400 * DAY))
    for as_of in probes([*early, *late]):
        where = Where(as_of=as_of, rulebook="taobao-classic")
        history = reputation.buyer_history("b1", where).figure
        assert history == buyer_history_from_facts(reputation, "b1", where), as_of
        assert rates_from_tally(reputation, "s1", where) == rates_from_facts(
            reputation, "s1", where
        ), as_of
    assert reputation.buyer_history("b1").figure.complaints_upheld == 1


def created_paid_received(ids: dict[str, str], created: datetime) -> list[ev.Event]:
    return [
        fact(
            ev.TradeCreated,
            created,
            **ids,
            item_id=ids["trade_id"],
            amount_minor=2_500,
            currency="CNY",
            goods_kind="physical",
            shipping="express",
        ),
        fact(ev.PaymentEscrowed, created, **ids, amount_minor=2_500, currency="CNY"),
        fact(
            ev.ReceiptConfirmed,
            created + DAY,
            **ids,
            by="buyer",
            rating_window_closes_at=created + 16 * DAY,
        ),
    ]


def older_and_newer_order_log() -> tuple[list[ev.Event], datetime]:
    """Orders of one item 4 days apart across a month end (30 January and
    3 February in Shanghai), the newer one rated first; and the newer's time."""
    older = datetime(2024, 1, 30, 12, tzinfo=ZONE).astimezone(UTC)
    newer = older + 4 * DAY
    log = [fact(ev.MemberRegistered, REGISTERED, member_id=m) for m in ("s1", "b1")]
    script: list[tuple[str, datetime, datetime]] = [
        ("T1", older, newer + 10 * DAY),
        ("T2", newer, newer),
    ]
    trades = {}
    for trade_id, created, rated in script:
        ids = {"trade_id": trade_id, "seller_id": "s1", "buyer_id": "b1"}
        trades[trade_id] = (ids, created, rated)
        log.append(
            fact(
                ev.TradeCreated,
                created,
                **ids,
                item_id="i1",
                amount_minor=2_500,
                currency="CNY",
                goods_kind="physical",
                shipping="express",
            )
        )
        log.append(
            fact(
                ev.ReceiptConfirmed,
                created,
                **ids,
                by="buyer",
                rating_window_closes_at=created + 15 * DAY,
            )
        )
    for trade_id in ("T2", "T1"):  # the newer order is rated first
        ids, created, rated = trades[trade_id]
        for rater in ("buyer", "seller"):
            log.append(
                fact(
                    ev.RatingGiven,
                    rated,
                    **ids,
                    rater=rater,
                    score="positive",
                    item_id="i1",
                    amount_minor=2_500,
                    currency="CNY",
                    order_created_at=created,
                    succeeded_at=created,
                )
            )
    return log, newer


def test_a_late_rating_of_an_older_order_moves_the_next_periods_item_group() -> None:
    """Orders of one item 4 days apart across a month end: the later one's rating
    counts until the older order's rating, given afterwards, shows and starts
    the 14-day group; the later one then no longer counts, though its own cap
    group (February) received no new fact."""
    log, newer = older_and_newer_order_log()
    view = MemoryView(tally_from_trades=0)
    fold(view, log, None)
    assert view.keeps_tallies_of("s1")
    reputation = Reputation(view, FixedClock(newer + 60 * DAY))
    where = Where(rulebook="taobao-classic")
    assert reputation.credit("s1", "seller", Where(as_of=newer + DAY)).figure.score == 1
    explained = reputation.credit_explained("s1", "seller", where).figure
    assert [(c.record.trade_id, c.reason) for c in explained.ratings] == [
        ("T1", None),
        ("T2", "same_item_14d"),
    ]
    assert reputation.credit("s1", "seller", where).figure.score == 1
