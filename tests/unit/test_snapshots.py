"""A penalty snapshot is right anywhere inside its validity: [as_of, valid_until).

The check is on every input of the penalty — rates, the positive rate and its
count, shop scores, active bans, demotions — which change far more often than
the penalty itself, so a missing boundary shows.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import msgspec
import pytest

from ledger.app import LedgerApp
from ledger.clock import FixedClock
from projections.credit import credit_of, rating_visible_at
from projections.dsr import dsr_of
from projections.marketplace import Cut, Marketplace, MemberFile
from projections.penalties import penalty_of, rates_of
from projections.rulebook import Rulebook, load_rulebook
from projections.snapshots import penalty_valid_until
from projections.violations import violations_of
from tools.simulator import DEFAULT_START, SimulationConfig, simulate

DAYS = 120
US = timedelta(microseconds=1)
SAMPLES = 60


@pytest.fixture(scope="module")
def market() -> Marketplace:
    config = SimulationConfig(
        members=60, trades=1_200, days=DAYS, seed=11, farming_rings=2, violators=4
    )
    app = LedgerApp("memory:", clock=FixedClock(DEFAULT_START + timedelta(days=DAYS + 400)))
    simulate(app, config)
    fold = Marketplace()
    for notification in app.iter_log():
        fold.apply(app.decode(notification), notification.id)
    app.close()
    return fold


@pytest.fixture(params=["taobao-classic", "ebay-style"])
def rulebook(request: pytest.FixtureRequest) -> Rulebook:
    return load_rulebook(request.param)


def inputs(file: MemberFile, at: datetime, rulebook: Rulebook) -> object:
    cut = Cut(at)
    credit = credit_of(file, "seller", cut, rulebook)
    standing = violations_of(file, cut, rulebook)
    return msgspec.to_builtins(
        (
            rates_of(file, cut, rulebook),
            credit.score,
            credit.positive_rate_window,
            credit.window_counted,
            [r.reason for r in credit.ratings],
            dsr_of(file, cut, rulebook),
            standing.active_bans(at),
            penalty_of(file, cut, rulebook),
        )
    )


def test_nothing_the_penalty_reads_changes_inside_a_snapshots_validity(
    market: Marketplace, rulebook: Rulebook
) -> None:
    rng = random.Random(5)
    sellers = [
        f for f in (market.file(m) for m in sorted(market.members)) if f and len(f.as_seller) > 30
    ]
    assert len(sellers) >= 5
    checked = 0
    for file in sellers:
        for _ in range(3):
            start = DEFAULT_START + timedelta(seconds=rng.uniform(0, (DAYS + 200) * 86_400))
            expected = inputs(file, start, rulebook)
            until = penalty_valid_until(file, start, rulebook)
            end = until or start + timedelta(days=3650)
            points = [end - US, *(start + (end - start) * rng.random() for _ in range(SAMPLES))]
            for at in points:
                assert inputs(file, at, rulebook) == expected, (
                    f"{file.member.member_id}: changed between {start} and {until}, at {at}"
                )
                checked += 1
    assert checked > 500


def probes(file: MemberFile) -> list[datetime]:
    """Instants where a figure may change by itself, listed independently of the module."""
    found: list[datetime] = []
    rulebook = load_rulebook("taobao-classic")
    for trade in file.as_seller:
        if trade.paid:
            found.append(trade.paid.at + timedelta(days=30))
        if trade.succeeded:
            found += [trade.succeeded.at + timedelta(days=d) for d in (180, 365)]
        for rater in trade.ratings:
            shown = rating_visible_at(
                trade,
                rater,
                Cut(datetime.max.replace(tzinfo=DEFAULT_START.tzinfo)),
                rulebook.scoring,
            )
            if shown:
                found.append(shown)
    for case in file.member.fake_cases:
        found += [case.stamp.at + timedelta(days=90), case.demoted_until]
    for record in file.member.cheating:
        found.append(record.stamp.at + timedelta(days=30))
    return found


def test_a_snapshot_ends_at_or_before_every_change_by_itself(
    market: Marketplace, rulebook: Rulebook
) -> None:
    rng = random.Random(9)
    sellers = [f for f in (market.file(m) for m in sorted(market.members)) if f and f.as_seller]
    changes = 0
    for file in sellers:
        instants = probes(file)
        for probe in rng.sample(instants, min(len(instants), 25)):
            start = probe - timedelta(minutes=1)
            if inputs(file, probe, rulebook) != inputs(file, start, rulebook):
                changes += 1
                until = penalty_valid_until(file, start, rulebook)
                assert until is not None and until <= probe, (
                    f"{file.member.member_id}: missed {probe}"
                )
    assert changes > 20
