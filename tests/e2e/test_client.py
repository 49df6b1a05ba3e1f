"""The client against a real server on a real port, on every store: a simulated
marketplace appended through it is the marketplace the ledger appends in
process; its queries read its own writes; its iterators walk the log and the
penalty change feed; refusals arrive typed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from api.auth import Role
from client import AsyncTrustLedger, Forbidden, NotFound, ProblemError, TrustLedger
from client.answers import (
    CreditAnswer,
    DsrAnswer,
    PenaltyAnswer,
    PenaltyChange,
    UnknownMember,
    UnknownSeller,
)
from ledger import commands as c
from ledger.app import LedgerApp
from ledger.clock import FixedClock
from tests.e2e.support import live_server
from tests.support import HOUR, new_trade
from tools.simulator import SimulationConfig, _Planner, simulate

# Small enough for CI over HTTP; it still plans most kinds of command.
MARKET = SimulationConfig(members=30, trades=150, days=20, seed=2, farming_rings=1, violators=1)
DAY = timedelta(days=1)


@pytest.fixture
def live(database_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[Role, str]]]:
    with live_server(database_url, tmp_path) as served:
        yield served


def _append_market(url: str, keys: dict[Role, str], config: SimulationConfig) -> int:
    """The simulator's plan sent through the client, deadlines run each new day
    as the simulator runs them; how many commands were refused."""
    service, admin = TrustLedger(url, keys[Role.SERVICE]), TrustLedger(url, keys[Role.ADMIN])
    planner = _Planner(config, LedgerApp("memory:").book.policy)
    start = config.start.astimezone(UTC)
    refused, day = 0, 0
    with service, admin:
        for at, command in planner.commands():
            if at // 86_400 > day:
                day = at // 86_400
                admin.run_deadlines(start + day * DAY)
            try:
                service.append(command)
            except ProblemError as refusal:  # counted, as the simulator counts them
                if refusal.status >= 500:
                    raise
                refused += 1
        admin.run_deadlines(config.end)
    return refused


def test_a_market_appended_through_the_client_is_the_one_appended_in_process(
    live: tuple[str, dict[Role, str]],
) -> None:
    url, keys = live
    refused = _append_market(url, keys, MARKET)
    in_process = LedgerApp("memory:", clock=FixedClock(MARKET.end + DAY))
    report = simulate(in_process, MARKET)
    assert refused == report.refused
    with TrustLedger(url, keys[Role.AUDITOR]) as auditor:
        over_http = [
            (e.topic, e.originator_id, e.originator_version) for e in auditor.read_log(page=97)
        ]
    expected = [
        (n.topic, str(n.originator_id), n.originator_version) for n in in_process.iter_log()
    ]
    assert over_http == expected
    in_process.close()


def test_queries_read_the_clients_own_writes_and_refusals_are_typed(
    live: tuple[str, dict[Role, str]],
) -> None:
    url, keys = live
    at = datetime.now(UTC) - timedelta(days=30)
    with TrustLedger(url, keys[Role.ADMIN]) as admin:
        for member in ("b-1", "s-1"):
            admin.register_member(c.RegisterMember(member_id=member, occurred_at=at))
        trade = new_trade(
            "t-1", buyer="b-1", seller="s-1", item="i-1", amount_minor=12_000, at=at + HOUR
        )
        created = admin.create_trade(trade, idempotency_key="create-t-1")
        repeated = admin.create_trade(trade, idempotency_key="create-t-1")
        assert (repeated.positions, repeated.replayed, created.replayed) == (
            created.positions,
            True,
            False,
        )
        admin.pay_into_escrow(
            c.PayIntoEscrow(trade_id="t-1", occurred_at=at + 2 * timedelta(hours=1))
        )
        admin.ship_trade(c.ShipTrade(trade_id="t-1", occurred_at=at + timedelta(hours=3)))
        admin.confirm_receipt(c.ConfirmReceipt(trade_id="t-1", occurred_at=at + DAY))
        admin.give_rating(
            c.GiveRating(trade_id="t-1", rater="buyer", score="positive", occurred_at=at + DAY)
        )
        record = admin.get_trade("t-1")
        assert record.succeeded_at is not None and record.position == admin.written
        assert record.facts[0].topic == "trustledger.trade.created.v1"
        listed = admin.list_seller_trades("s-1", limit=1)
        assert [t.trade_id for t in listed.trades] == ["t-1"] and listed.next_cursor is None
        # Read at once: the client asks the view to reflect what it wrote.
        credit = admin.get_credit("s-1")
        assert credit.position >= admin.written and credit.score == 1
        penalty = admin.get_seller_penalty("s-1")
        assert isinstance(penalty, PenaltyAnswer) and penalty.searchable
        credits = admin.get_credit_batch(["s-1", "nobody"]).credits
        assert isinstance(credits[0], CreditAnswer) and credits[0].score == 1
        assert credits[1] == UnknownMember("nobody")
        (scores,) = admin.get_dsr_batch(["s-1"]).shop_scores
        assert isinstance(scores, DsrAnswer)
        batch = admin.get_penalties(["s-1", "nobody"])
        assert isinstance(batch.penalties[0], PenaltyAnswer)
        assert batch.penalties[1] == UnknownSeller("nobody")
        with pytest.raises(NotFound) as unknown:
            admin.ship_trade(c.ShipTrade(trade_id="t-404", occurred_at=at + DAY))
        assert unknown.value.code == "unknown_trade"
    with TrustLedger(url, keys[Role.RANKING]) as ranking, pytest.raises(Forbidden) as forbidden:
        ranking.get_credit("s-1")
    assert forbidden.value.code == "forbidden"


def test_the_log_and_the_change_feed_are_iterated_to_their_ends(
    live: tuple[str, dict[Role, str]],
) -> None:
    url, keys = live
    at = datetime.now(UTC) - timedelta(days=3)
    with TrustLedger(url, keys[Role.SERVICE]) as service:
        for n in range(5):
            service.register_member(c.RegisterMember(member_id=f"s-{n}", occurred_at=at))
        for n in range(5):  # a verified badge shows in the penalty: a change each
            service.verify_identity(c.VerifyIdentity(member_id=f"s-{n}", occurred_at=at))
        written = service.written
    with TrustLedger(url, keys[Role.AUDITOR]) as auditor:
        events = list(auditor.read_log(page=2))
        assert [e.position for e in events] == sorted({e.position for e in events})
        assert events[-1].position == written and len(events) == 10
        assert list(auditor.read_log(after=events[2].position)) == events[3:]
        head = auditor.get_tree_head()
        proof = auditor.get_inclusion_proof(events[0].position, head.tree_size)
        assert proof.leaf_index == 0
    with TrustLedger(url, keys[Role.RANKING]) as ranking:
        deadline = datetime.now(UTC) + timedelta(seconds=30)
        changes: list[PenaltyChange] = []
        while len(changes) < 5 and datetime.now(UTC) < deadline:
            time.sleep(0.05)  # the follower writes the feed within its poll
            changes = list(ranking.follow_penalty_changes(follow=False))
        assert sorted(change.seller_id for change in changes) == [f"s-{n}" for n in range(5)]
        after = changes[1].feed_position
        assert list(ranking.follow_penalty_changes(after, follow=False)) == changes[2:]


def test_the_asynchronous_client_appends_and_reads_alike(
    live: tuple[str, dict[Role, str]],
) -> None:
    url, keys = live
    at = datetime.now(UTC) - timedelta(days=2)

    async def story() -> tuple[int, int, int]:
        async with AsyncTrustLedger(url, keys[Role.ADMIN]) as admin:
            await admin.register_member(c.RegisterMember(member_id="m-1", occurred_at=at))
            appended = await admin.register_member(
                c.RegisterMember(member_id="m-2", occurred_at=at)
            )
            credit = await admin.get_credit("m-2", role="buyer")
            logged = [event async for event in admin.read_log(page=1)]
            return appended.positions[-1], credit.position, len(logged)

    last, seen, logged = asyncio.run(story())
    assert seen >= last and logged == 2
