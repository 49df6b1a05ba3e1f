"""What-if: one log under two rulebooks, the changes seller by seller."""

from __future__ import annotations

from pathlib import Path

from ledger import commands as c
from ledger.policy import rulebook_bytes
from projections.rulebook import load_rulebook
from projections.runner import Runner
from projections.views import MemoryView
from projections.whatif import what_if
from tests.support import DAY, T0, Market


def sellers_after(market: Market) -> MemoryView:
    view = MemoryView()
    Runner(market.app, view).catch_up()
    return view


def test_whatif_reports_level_changes_between_rulebooks() -> None:
    market = Market.open("memory:")
    for i in range(12):  # twelve buyers, one positive each: 12 points either way
        market.succeeded_trade(f"T{i}", buyer=f"buyer-{i}")
        market.rate(f"T{i}", "buyer", "positive")
        market.rate(f"T{i}", "seller", "positive", at=T0 + 3 * DAY)
    market.trade("Q1", seller="quiet-seller", buyer="buyer-0", register=True)
    view = sellers_after(market)
    files = [f for f in (view.file(m) for m in ("seller-1", "quiet-seller")) if f is not None]

    report = what_if(
        files, load_rulebook("taobao-classic"), load_rulebook("ebay-style"), T0 + 30 * DAY
    )

    assert report.sellers == 2
    # Hearts and stars are different scales: their numbers are not compared.
    assert report.level_changed is None and report.changes == ()
    assert {(m.before, m.after, m.sellers) for m in report.level_moves} == {
        ("2 hearts", "yellow star", 1),
        ("no level", "no star", 1),
    }


def test_whatif_counts_level_changes_on_one_scale(tmp_path: Path) -> None:
    market = Market.open("memory:")
    for i in range(12):
        market.succeeded_trade(f"T{i}", buyer=f"buyer-{i}")
        market.rate(f"T{i}", "buyer", "positive")
    higher = tmp_path / "higher.toml"
    higher.write_bytes(
        rulebook_bytes("taobao-classic").replace(b'id = "taobao-classic"', b'id = "higher"')
    )
    files = [f for f in (sellers_after(market).file("seller-1"),) if f is not None]
    same = what_if(
        files, load_rulebook("taobao-classic"), load_rulebook(str(higher)), T0 + 30 * DAY
    )
    assert same.level_changed == 0 and same.level_moves[0].before == same.level_moves[0].after


def test_whatif_with_a_stricter_file_rulebook_changes_the_multiplier(tmp_path: Path) -> None:
    market = Market.open("memory:")
    for i in range(4):
        market.shipped_trade(f"T{i}", buyer=f"buyer-{i}")
        market.refund(f"T{i}", f"R{i}", amount_minor=100)
        agree = c.AgreeRefund(trade_id=f"T{i}", refund_id=f"R{i}", occurred_at=T0 + DAY)
        market.run(market.app.agree_refund, agree)
    stricter = tmp_path / "stricter.toml"
    stricter.write_bytes(
        rulebook_bytes("taobao-classic")
        .replace(b'id = "taobao-classic"', b'id = "stricter"')
        .replace(b"min_denominator = 20", b"min_denominator = 1")
    )
    view = sellers_after(market)
    seller = view.file("seller-1")
    assert seller is not None
    report = what_if(
        [seller], load_rulebook("taobao-classic"), load_rulebook(str(stricter)), T0 + 3 * DAY
    )
    assert report.versus == "stricter@1"
    assert report.multiplier_changed == 1
    assert report.sort_hidden_changed == 1
    (change,) = report.changes
    assert (change.before.multiplier, change.after.multiplier) == (1.0, 0.8)
