"""The marketplace simulator: deterministic, rule-abiding, realistic, idempotent."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ledger.app import LedgerApp
from ledger.clock import FixedClock, SystemClock
from ledger.events import Event, MemberRegistered, RatingGiven, TradeCreated
from ledger.policy import load_policy
from projections.queries import Reputation, Where
from projections.runner import Runner
from projections.views import MemoryView
from tools.cli import main
from tools.simulate import simulation_clock
from tools.simulator import SimulationConfig, SimulationReport, commands, simulate

MIX = SimulationConfig(members=300, trades=3_000, days=60, seed=7, farming_rings=2, violators=3)
SMALL = SimulationConfig(members=60, trades=400, days=20, seed=3, farming_rings=1, violators=1)


def _app(config: SimulationConfig) -> LedgerApp:
    return LedgerApp("memory:", clock=FixedClock(config.end + timedelta(hours=1)))


def _bodies(app: LedgerApp) -> list[tuple[str, dict[str, Any]]]:
    """The log as (topic, body) with the recording time left out."""
    found = []
    for notification in app.iter_log():
        body = msgspec.json.decode(notification.state)
        body.pop("recorded_at")
        found.append((notification.topic, body))
    return found


@dataclass
class Run:
    app: LedgerApp
    report: SimulationReport
    events: list[Event]
    reputation: Reputation


@pytest.fixture(scope="module")
def mix() -> Run:
    app = _app(MIX)
    report = simulate(app, MIX)
    view = MemoryView()
    Runner(app, view).catch_up()
    events = [app.decode(n) for n in app.iter_log()]
    return Run(app, report, events, Reputation(view, app.clock))


def test_every_command_is_accepted(mix: Run) -> None:
    report = mix.report
    assert report.refused == 0, report.refusal_examples
    assert report.trades == MIX.trades
    registered = [e.member_id for e in mix.events if isinstance(e, MemberRegistered)]
    assert len(registered) == report.members
    assert sum("-ring" not in m for m in registered) == MIX.members
    assert report.events_written == len(mix.events)
    assert report.deadline_events > 0


def test_same_seed_same_log_and_another_seed_another(tmp_path: Path) -> None:
    first, second, other = _app(SMALL), _app(SMALL), _app(SMALL)
    simulate(first, SMALL)
    simulate(second, SMALL)
    simulate(other, msgspec.structs.replace(SMALL, seed=4))
    assert _bodies(first) == _bodies(second)
    assert _bodies(first) != _bodies(other)


def test_rerunning_the_simulation_writes_nothing(mix: Run) -> None:
    again = simulate(mix.app, MIX)
    assert again.refused == 0
    assert again.replayed == again.commands == mix.report.commands
    assert again.events_written == 0
    assert sum(1 for _ in mix.app.iter_log()) == len(mix.events)


def test_buyers_rate_mostly_positive_with_high_shop_scores(mix: Run) -> None:
    given = [e for e in mix.events if isinstance(e, RatingGiven) and not e.default]
    buyers = Counter(e.score for e in given if e.rater == "buyer")
    sellers = Counter(e.score for e in given if e.rater == "seller")
    assert 0.97 <= buyers["positive"] / buyers.total() <= 0.995
    assert buyers["neutral"] > 0
    assert buyers["negative"] > 0
    assert sellers["positive"] / sellers.total() >= 0.98
    scores = Counter(
        value
        for e in given
        if e.dsr is not None
        for value in (e.dsr.as_described, e.dsr.service, e.dsr.shipping_speed, e.dsr.logistics)
    )
    assert (scores[5] + scores[4]) / scores.total() >= 0.9
    assert scores[5] > 3 * scores[4]
    defaults = [e for e in mix.events if isinstance(e, RatingGiven) and e.default]
    assert defaults, "one-sided positive ratings earn the silent side a default"


def test_refunds_disputes_complaints_and_enforcement_in_plausible_shares(mix: Run) -> None:
    report = mix.report
    assert 0.015 <= report.refunds / report.trades <= 0.06
    assert 0 < report.refunds_before_shipping < report.refunds
    assert 0 < report.refunds_with_return < report.refunds
    assert 0 < report.refunds_partial < report.refunds
    assert 0 < report.disputes_seller_at_fault <= report.disputes < report.refunds
    assert 0 < report.complaints_upheld < report.complaints < 0.02 * report.trades
    assert report.revisions > 0
    assert report.explanations > 0
    assert report.violations >= MIX.violators
    topics = Counter(type(e).__name__ for e in mix.events)
    for fired in ("ReceiptConfirmed", "RefundAgreed", "RefundPaid", "TradeClosed"):
        assert topics[fired] > 0
    assert report.commands_by_kind["ConfirmReceipt"] < topics["ReceiptConfirmed"]


def test_popularity_goods_and_repeat_buyers_look_like_a_marketplace(mix: Run) -> None:
    created = [e for e in mix.events if isinstance(e, TradeCreated) and "-ring" not in e.seller_id]
    per_seller = Counter(e.seller_id for e in created)
    ranked = [count for _, count in per_seller.most_common()]
    assert ranked[0] > 10 * ranked[len(ranked) // 2], "a few big shops and a long tail"
    kinds = Counter(e.goods_kind for e in created)
    assert kinds["physical"] / len(created) >= 0.75
    assert {"virtual", "auto_delivery", "top_up"} <= set(kinds)
    shipping = Counter(e.shipping for e in created if e.goods_kind == "physical")
    assert shipping["express"] / shipping.total() >= 0.8
    seen: set[tuple[str, str]] = set()
    repeats = 0
    for e in sorted(created, key=lambda e: e.occurred_at):
        repeats += (e.buyer_id, e.seller_id) in seen
        seen.add((e.buyer_id, e.seller_id))
    assert repeats / len(created) >= 0.2
    amounts = sorted(e.amount_minor for e in created)
    assert 1_000 <= amounts[len(amounts) // 2] <= 20_000, "a median of 10-200 yuan"
    assert amounts[-1] > 20 * amounts[len(amounts) // 2], "a long tail of dear items"


def test_farming_rings_are_blunted_by_the_caps_and_confirmed_rings_reversed(mix: Run) -> None:
    report = mix.report
    assert report.rings == 2
    assert report.ring_trades == 2 * MIX.ring_trades
    assert report.fake_cases == 1
    where = Where(as_of=MIX.end)
    confirmed = mix.reputation.credit_explained(f"{MIX.run_id}-ring0-shop", "seller", where).figure
    assert confirmed.score == 0
    assert {r.reason for r in confirmed.ratings} == {"fake_trade"}
    farming = mix.reputation.credit_explained(f"{MIX.run_id}-ring1-shop", "seller", where).figure
    positives = len(farming.ratings)
    assert positives >= MIX.ring_trades * 0.9
    assert farming.score <= positives / 5
    reasons = Counter(r.reason for r in farming.ratings)
    assert reasons["amount_le_1"] > 0
    assert reasons["same_item_14d"] > 0
    ring_amounts = [
        e.amount_minor for e in mix.events if isinstance(e, TradeCreated) and "-ring" in e.seller_id
    ]
    assert sum(a == 100 for a in ring_amounts) / len(ring_amounts) >= 0.3


def test_commands_come_in_business_time_order_inside_the_period() -> None:
    times = [command.occurred_at for command in commands(SMALL, load_policy().policy)]
    assert times == sorted(times)
    assert SMALL.start <= times[0]
    assert times[-1] <= SMALL.end


def test_the_cli_clock_stands_after_the_period() -> None:
    past = SimulationConfig(start=datetime(2025, 1, 1, tzinfo=UTC), days=90)
    assert isinstance(simulation_clock(past, now=datetime(2026, 11, 24, tzinfo=UTC)), SystemClock)
    future = SimulationConfig(start=datetime(2026, 11, 1, tzinfo=UTC), days=90)
    clock = simulation_clock(future, now=datetime(2026, 11, 24, tzinfo=UTC))
    assert isinstance(clock, FixedClock)
    assert clock.now() > future.end


def test_configuration_limits_are_named_and_checked() -> None:
    with pytest.raises(ValueError, match="members"):
        SimulationConfig(members=3).check()
    with pytest.raises(ValueError, match="farming rings"):
        SimulationConfig(members=100, trades=50, farming_rings=5).check()


def test_cli_simulates_into_sqlite_and_replays_a_second_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'sim.db'}"
    argv = ["--database-url", url, "simulate", "--members", "50", "--trades", "200"]
    argv += ["--days", "30", "--seed", "5", "--farming-rings", "1", "--violators", "1"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert "200 (12 by farming rings: 1;" in first
    assert "fake-trade cases: 1 (12 trades)" in first
    assert "0 replayed, 0 refused" in first
    assert main([*argv, "--json"]) == 0
    second = msgspec.json.decode(capsys.readouterr().out)
    assert second["events_written"] == 0
    assert second["replayed"] == second["commands"] > 0
    assert second["refused"] == 0
    app = LedgerApp(url)
    try:
        assert app.read_log(0, 1)[0].topic == "trustledger.member.registered.v1"
    finally:
        app.close()
