"""Penalties served from snapshots on every backend: right after new facts and as time passes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from ledger import commands as c
from ledger.clock import FixedClock
from projections.penalties import Penalty
from projections.queries import Reputation, UnknownSeller
from projections.runner import Runner
from projections.snapshots import KeptSnapshots, PenaltySnapshot
from projections.views import ReputationView, open_view
from tests.support import DAY, HOUR, T0, Market


@pytest.fixture
def setup(market: Market, database_url: str) -> Iterator[tuple[Market, ReputationView, FixedClock]]:
    view = open_view(database_url)
    clock = FixedClock(T0 + 2 * DAY)
    yield market, view, clock
    view.close()


def violation(market: Market, at: object, points: int = 12, violation_id: str = "V1") -> None:
    market.run(
        market.app.record_violation,
        c.RecordViolation(
            seller_id="seller-1",
            violation_id=violation_id,
            category="serious",
            points=points,
            reason="counterfeit listings",
            occurred_at=at,  # type: ignore[arg-type]
        ),
    )


def test_a_new_fact_invalidates_the_snapshot(
    setup: tuple[Market, ReputationView, FixedClock],
) -> None:
    market, view, clock = setup
    market.succeeded_trade()
    runner = Runner(market.app, view)
    runner.catch_up()
    reputation = Reputation(view, clock)
    (first,) = reputation.penalties(["seller-1"]).figure
    assert isinstance(first, Penalty) and first.searchable
    assert view.snapshots("taobao-classic@1", ["seller-1"])  # kept
    violation(market, T0 + DAY)
    runner.catch_up()
    (after,) = reputation.penalties(["seller-1"]).figure
    assert isinstance(after, Penalty)
    assert not after.searchable


def test_a_snapshot_expires_when_the_ban_ends(
    setup: tuple[Market, ReputationView, FixedClock],
) -> None:
    market, view, clock = setup
    market.succeeded_trade()
    violation(market, T0 + DAY)
    Runner(market.app, view).catch_up()
    reputation = Reputation(view, clock)
    banned = reputation.penalty("seller-1").figure
    assert not banned.searchable
    clock.set(T0 + DAY + 7 * DAY - HOUR)
    assert not reputation.penalty("seller-1").figure.searchable
    clock.set(T0 + DAY + 7 * DAY)
    assert reputation.penalty("seller-1").figure.searchable
    snapshot = view.snapshots("taobao-classic@1", ["seller-1"])["seller-1"]
    assert snapshot.as_of == T0 + 8 * DAY


def test_snapshots_agree_with_computing_afresh(
    setup: tuple[Market, ReputationView, FixedClock],
) -> None:
    market, view, clock = setup
    for i in range(5):
        market.succeeded_trade(f"T{i}", buyer=f"buyer-{i}")
        market.rate(f"T{i}", "buyer", "negative" if i % 2 else "positive")
    violation(market, T0 + DAY, points=24)
    Runner(market.app, view).catch_up()
    reputation = Reputation(view, clock)
    for day in (2, 5, 9, 16, 17, 30, 40):
        clock.set(T0 + day * DAY)
        served = reputation.penalties(["seller-1", "nobody"]).figure
        fresh = reputation.penalties(["seller-1"], as_of=T0 + day * DAY).figure
        assert served == (fresh[0], UnknownSeller("nobody"))


def test_kept_snapshots_hold_at_most_their_limit_longest_kept_first() -> None:
    def snapshot(seller: str, based_on: int = 0) -> PenaltySnapshot:
        penalty = Penalty(seller, True, 1.0, False, {}, 0, False, ())
        return PenaltySnapshot(seller, "book@1", T0, None, based_on, penalty)

    kept = KeptSnapshots(2)
    kept.keep([snapshot("a"), snapshot("b")])
    kept.keep([snapshot("a", based_on=5)])  # renewed: now the most recently kept
    kept.keep([snapshot("c")])
    assert kept.get("book@1", "b") is None
    renewed = kept.get("book@1", "a")
    assert renewed is not None and renewed.based_on == 5
    assert kept.get("book@1", "c") is not None and len(kept) == 2
    with pytest.raises(ValueError, match="at least one"):
        KeptSnapshots(0)


def test_asking_again_reads_no_stored_snapshot(
    setup: tuple[Market, ReputationView, FixedClock], monkeypatch: pytest.MonkeyPatch
) -> None:
    market, view, clock = setup
    market.succeeded_trade()
    Runner(market.app, view).catch_up()
    asked: list[list[str]] = []
    snapshot_state = view.snapshot_state

    def recording(rulebook: str, ids: Sequence[str], stored_for: Sequence[str]) -> Any:
        asked.append(list(stored_for))
        return snapshot_state(rulebook, ids, stored_for)

    monkeypatch.setattr(view, "snapshot_state", recording)
    reputation = Reputation(view, clock)
    first = reputation.penalties(["seller-1", "buyer-1"]).figure
    again = reputation.penalties(["seller-1", "buyer-1"]).figure
    assert first == again
    assert asked == [["seller-1", "buyer-1"], []]


def test_a_snapshot_another_process_renewed_is_read_not_computed_again(
    setup: tuple[Market, ReputationView, FixedClock], monkeypatch: pytest.MonkeyPatch
) -> None:
    market, view, clock = setup
    market.succeeded_trade()
    runner = Runner(market.app, view)
    runner.catch_up()
    here, elsewhere = Reputation(view, clock), Reputation(view, clock)
    assert here.penalty("seller-1").figure.searchable  # kept here
    violation(market, T0 + DAY)
    runner.catch_up()
    assert not elsewhere.penalty("seller-1").figure.searchable  # computed and stored there
    kept: list[PenaltySnapshot] = []
    keep_snapshots = view.keep_snapshots

    def recording(snapshots: Sequence[PenaltySnapshot]) -> None:
        kept.extend(snapshots)
        keep_snapshots(snapshots)

    monkeypatch.setattr(view, "keep_snapshots", recording)
    assert not here.penalty("seller-1").figure.searchable  # not the outdated kept one
    assert kept == []
