"""A trade read back: its state now and every fact about it with its log
position, on every store."""

from __future__ import annotations

import pytest

from ledger import commands as c
from ledger.errors import ErrorCode, NotFoundError
from ledger.events import topic_of
from tests.support import DAY, T0, Market


def test_a_trade_reads_back_with_every_fact_and_its_position(market: Market) -> None:
    market.shipped_trade()
    market.refund()
    record = market.app.trade_record("T1")
    assert (record.trade_id, record.buyer_id, record.seller_id) == ("T1", "buyer-1", "seller-1")
    assert record.paid_at is not None and record.shipped_at is not None
    assert record.succeeded_at is None and record.escrow_left_minor == record.amount_minor
    assert [refund.refund_id for refund in record.refunds] == ["R1"]
    assert record.next_deadline_at is not None  # the seller's answer to the refund is due
    log = {n.id: n for n in market.app.iter_log()}
    assert [f.topic for f in record.facts] == [log[f.position].topic for f in record.facts]
    assert [f.version for f in record.facts] == list(range(1, len(record.facts) + 1))
    assert record.position == max(f.position for f in record.facts)
    decoded = [market.app.decode(log[f.position]) for f in record.facts]
    assert [topic_of(type(e)) for e in decoded] == [f.topic for f in record.facts]
    assert [e.occurred_at for e in decoded] == [f.occurred_at for f in record.facts]


def test_an_unknown_trade_is_refused(market: Market) -> None:
    with pytest.raises(NotFoundError) as unknown:
        market.app.trade_record("T404")
    assert unknown.value.code == ErrorCode.UNKNOWN_TRADE


def test_the_trades_complaint_reads_back_with_its_ruling_and_its_facts(market: Market) -> None:
    market.shipped_trade()
    file = c.FileComplaint(
        complaint_id="C1",
        trade_id="T1",
        type="late_shipment",
        severity="moderate",
        occurred_at=T0 + DAY,
    )
    market.run(market.app.file_complaint, file)
    rule = c.RuleComplaint(complaint_id="C1", outcome="upheld", occurred_at=T0 + 2 * DAY)
    market.run(market.app.rule_complaint, rule)

    record = market.app.trade_record("T1")

    complaint = record.complaint
    assert complaint is not None
    assert (complaint.complaint_id, complaint.type, complaint.severity) == (
        "C1",
        "late_shipment",
        "moderate",
    )
    assert (complaint.outcome, complaint.escalated) == ("upheld", False)
    log = {n.id: n for n in market.app.iter_log()}
    assert [f.topic for f in complaint.facts] == [log[f.position].topic for f in complaint.facts]
    assert [f.topic for f in complaint.facts] == [
        "trustledger.complaint.filed.v1",
        "trustledger.complaint.ruled.v1",
    ]
    assert all(f.recorded_by == "test-service" for f in record.facts + complaint.facts)
    assert record.position == complaint.facts[-1].position > record.facts[-1].position


def test_a_trade_without_a_complaint_has_none(market: Market) -> None:
    market.shipped_trade()
    assert market.app.trade_record("T1").complaint is None
