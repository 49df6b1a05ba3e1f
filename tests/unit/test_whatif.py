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
    assert report.level_changed == 1
    (change,) = report.changes
    assert change.seller_id == "seller-1"
    assert (change.before.level, change.after.level) == (2, 1)  # 2 hearts vs a yellow star


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
