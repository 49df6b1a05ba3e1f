"""Bulk export and import: round trips, refusals, deadlines and the CLI."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import psycopg
import pytest

from ledger import commands as c
from ledger import transfer
from ledger.app import LedgerApp
from ledger.clock import FixedClock
from ledger.events import Dsr
from ledger.transfer import ImportRefusedError, export_log, import_log
from projections.connections import place_of
from projections.runner import Runner
from projections.views import MemoryView, ReputationView, open_view
from tests.support import DAY, HOUR, T0, Market
from tools.cli import main
from tools.scenario import SCENARIO_END, run_scenario

SELLERS = ("shop-a", "shop-b", "shop-c")
BUYERS = ("buyer-a", "buyer-b", "buyer-c", "buyer-d")
STORY_TRADES = 48
# Deadlines of the first trades fire in the source before the export; those of
# the later ones are still pending when it is taken.
MIDWAY = T0 + 30 * DAY
LATER = T0 + 200 * DAY


def _disputed(m: Market, trade_id: str, complaint: str, at: Callable[[float], datetime]) -> None:
    """Rejected, escalated and ruled against the seller; a complaint with cash paid."""
    app = m.app
    m.refund(trade_id, "R1", at=at(3), reason="not_as_described")
    m.run(app.reject_refund, c.RejectRefund(trade_id=trade_id, refund_id="R1", occurred_at=at(4)))
    m.run(
        app.escalate_dispute,
        c.EscalateDispute(trade_id=trade_id, refund_id="R1", occurred_at=at(5)),
    )
    m.run(
        app.file_complaint,
        c.FileComplaint(
            complaint_id=complaint,
            trade_id=trade_id,
            type="late_shipment",
            severity="moderate",
            occurred_at=at(6),
        ),
    )
    m.run(
        app.pay_compensation,
        c.PayCompensation(complaint_id=complaint, kind="cash", amount_minor=300, occurred_at=at(7)),
    )
    m.run(
        app.rule_dispute,
        c.RuleDispute(trade_id=trade_id, outcome="seller_at_fault", occurred_at=at(8)),
    )
    m.run(
        app.rule_complaint,
        c.RuleComplaint(complaint_id=complaint, outcome="upheld", occurred_at=at(9)),
    )


def _returned(m: Market, trade_id: str, at: Callable[[float], datetime]) -> None:
    """A full refund with a return: the trade closes."""
    app = m.app
    m.refund(trade_id, "R1", with_return=True, at=at(3), reason="damaged")
    m.run(app.agree_refund, c.AgreeRefund(trade_id=trade_id, refund_id="R1", occurred_at=at(4)))
    m.run(app.ship_return, c.ShipReturn(trade_id=trade_id, refund_id="R1", occurred_at=at(5)))
    m.run(
        app.confirm_return_receipt,
        c.ConfirmReturnReceipt(trade_id=trade_id, refund_id="R1", occurred_at=at(30)),
    )


def _rated(
    m: Market, trade_id: str, i: int, rng: random.Random, at: Callable[[float], datetime]
) -> None:
    """Confirmed and rated; a negative rating is revised, some sellers rate back."""
    m.confirm(trade_id, at(30))
    negative = i % 8 == 6
    score = "negative" if negative else rng.choice(["positive", "positive", "neutral"])
    dsr = Dsr(as_described=5, service=rng.randint(3, 5), shipping_speed=4, logistics=5)
    m.rate(
        trade_id,
        "buyer",
        score,
        at(40),
        dsr=dsr if score == "positive" else None,
        comment="ok" if score == "positive" else "meh",
    )
    if negative:
        m.run(
            m.app.revise_rating,
            c.ReviseRating(trade_id=trade_id, rater="buyer", occurred_at=at(50)),
        )
    elif i % 16 == 0:
        m.rate(trade_id, "seller", "positive", at(41))


def _trade(m: Market, i: int, rng: random.Random, spacing: timedelta) -> bool:
    """Trade ``T<i>`` in one of eight shapes; whether it ends confirmed and rated."""
    app = m.app
    trade_id, variant = f"T{i}", i % 8
    start = T0 + HOUR + i * spacing

    def at(hours: float) -> datetime:
        return start + timedelta(hours=hours)

    m.trade(
        trade_id, at=at(0), buyer=rng.choice(BUYERS), seller=SELLERS[i % 3], item=f"item-{i % 7}"
    )
    if variant == 7:
        m.run(app.close_trade, c.CloseTrade(trade_id=trade_id, reason="unpaid", occurred_at=at(1)))
        return False
    m.pay(trade_id, at(1))
    m.ship(trade_id, at(2))
    if variant == 2:
        _returned(m, trade_id, at)
    elif variant == 3:
        _disputed(m, trade_id, f"CS-{i}", at)
    elif variant == 4:  # a timer extension, then success by the deadline worker
        m.run(
            app.extend_confirm_timer,
            c.ExtendConfirmTimer(trade_id=trade_id, days=3, occurred_at=at(3)),
        )
    elif variant == 5:  # left shipped: receipt is confirmed automatically ...
        if i % 16 == 5:  # ... and settled by the buyer's rating after the deadline
            m.rate(trade_id, "buyer", "positive", at(2 + 14 * 24))
    else:
        if variant == 1:  # a partial refund without return first
            m.refund(trade_id, "R1", amount_minor=2_500, at=at(3))
            m.run(
                app.agree_refund,
                c.AgreeRefund(trade_id=trade_id, refund_id="R1", occurred_at=at(4)),
            )
        _rated(m, trade_id, i, rng, at)
        return True
    return False


def _story(
    m: Market, trades: int = STORY_TRADES, seed: int = 7, spacing: timedelta = 18 * HOUR
) -> None:
    """Every kind of fact: refunds, returns, disputes, ratings, complaints, enforcement."""
    rng = random.Random(seed)
    app = m.app
    m.members(*SELLERS, *BUYERS, at=T0)
    m.run(app.verify_identity, c.VerifyIdentity(member_id="shop-a", occurred_at=T0 + HOUR))
    rated = [f"T{i}" for i in range(trades) if _trade(m, i, rng, spacing)]
    fakes = tuple(t for t in rated if int(t[1:]) % 3 == 2)[:3]  # shop-c's
    m.run(
        app.record_violation,
        c.RecordViolation(
            seller_id="shop-b",
            violation_id="V-1",
            category="general",
            points=4,
            reason="misleading photos",
            occurred_at=MIDWAY - DAY,
        ),
    )
    m.run(
        app.confirm_fake_trades,
        c.ConfirmFakeTrades(
            seller_id="shop-c", case_id="FT-1", trade_ids=fakes, occurred_at=MIDWAY
        ),
    )
    m.run(
        app.record_search_cheating,
        c.RecordSearchCheating(
            seller_id="shop-a",
            case_id="SC-1",
            item_ids=("item-0", "item-3"),
            kind="keyword_stuffing",
            occurred_at=MIDWAY,
        ),
    )
    app.run_deadlines(MIDWAY)


@pytest.fixture(scope="module")
def source() -> Iterator[Market]:
    m = Market.open("memory:")
    _story(m)
    try:
        yield m
    finally:
        m.app.close()


@pytest.fixture(scope="module")
def exported(source: Market) -> bytes:
    out = io.BytesIO()
    report = export_log(source.app, out)
    assert report.events == source.log_size()
    return out.getvalue()


def _target(database_url: str) -> LedgerApp:
    return LedgerApp(database_url, clock=FixedClock(T0 + timedelta(days=3650)))


@pytest.fixture
def target(database_url: str) -> Iterator[LedgerApp]:
    app = _target(database_url)
    try:
        yield app
    finally:
        app.close()


def _log(app: LedgerApp) -> list[tuple[str, bytes]]:
    return [(n.topic, bytes(n.state)) for n in app.iter_log()]


def _files(app: LedgerApp, view: ReputationView) -> dict[str, Any]:
    Runner(app, view).catch_up()
    return {m: msgspec.to_builtins(view.file(m)) for m in (*SELLERS, *BUYERS)}


def _lines(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.splitlines()]


def _ndjson(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


# --- Round trips ----------------------------------------------------------------


def test_export_lines_embed_the_stored_bodies_byte_for_byte(
    source: Market, exported: bytes
) -> None:
    notifications = list(source.app.iter_log())
    lines = exported.splitlines()
    assert len(lines) == len(notifications) > 300
    for line, n in zip(lines, notifications, strict=True):
        assert line.endswith(b',"body":' + bytes(n.state) + b"}")
        parsed = json.loads(line)
        assert (parsed["position"], parsed["topic"], parsed["originator_version"]) == (
            n.id,
            n.topic,
            n.originator_version,
        )
        assert parsed["originator_id"] == str(n.originator_id)


def test_round_trip_into_an_empty_store_gives_the_same_log_and_projections(
    source: Market, exported: bytes, target: LedgerApp, database_url: str
) -> None:
    report = import_log(target, io.BytesIO(exported), batch_events=100)
    assert report.events == source.log_size()
    assert report.batches == -(-report.events // 100)
    assert (report.first_position, report.last_position) == (1, report.events)

    assert _log(target) == _log(source.app)
    view = open_view(database_url)
    try:
        imported = _files(target, view)
    finally:
        view.close()
    assert all(imported.values())
    assert imported == _files(source.app, MemoryView())


def test_a_small_cache_reloads_evicted_aggregates_from_the_store(
    source: Market, exported: bytes, target: LedgerApp
) -> None:
    import_log(target, io.BytesIO(exported), batch_events=40, cache_aggregates=3)
    assert _log(target) == _log(source.app)


def test_an_import_continues_a_store_that_holds_the_log_before_it(
    source: Market, exported: bytes, target: LedgerApp
) -> None:
    lines = exported.splitlines(keepends=True)
    half = len(lines) // 2
    import_log(target, io.BytesIO(b"".join(lines[:half])))
    rest = io.BytesIO()
    export_log(source.app, rest, after=half)
    import_log(target, io.BytesIO(rest.getvalue()), batch_events=50)
    assert _log(target) == _log(source.app)


def test_a_continuation_loads_the_stored_aggregates_it_reads_in_bulk(
    source: Market, exported: bytes, target: LedgerApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = exported.splitlines(keepends=True)
    half = len(lines) // 2
    import_log(target, io.BytesIO(b"".join(lines[:half])))
    queried: list[int] = []
    bulk = transfer._stored_events

    def counted(app: LedgerApp, ids: list[UUID]) -> dict[UUID, list[object]]:
        queried.append(len(ids))
        return bulk(app, ids)

    def one_by_one(*_: object) -> None:
        raise AssertionError("an aggregate was loaded on its own")

    monkeypatch.setattr(transfer, "_stored_events", counted)
    monkeypatch.setattr(transfer._Importer, "_load", one_by_one)
    rest = io.BytesIO()
    export_log(source.app, rest, after=half)
    # A fresh import caches nothing: the members, trades and complaints of the
    # first half that the rest names all come from the store.
    import_log(target, io.BytesIO(rest.getvalue()), batch_events=50)
    assert _log(target) == _log(source.app)
    assert sum(queried) > len(SELLERS) + len(BUYERS)
    assert max(queried) > 1


def test_positions_are_reported_after_a_refused_batch_left_a_gap(
    source: Market, exported: bytes, target: LedgerApp
) -> None:
    lines = exported.splitlines(keepends=True)
    half = len(lines) // 2
    import_log(target, io.BytesIO(b"".join(lines[:half])))
    _refused(target, b"".join(lines[:half]))  # PostgreSQL spends positions on it
    rest = io.BytesIO()
    export_log(source.app, rest, after=half)
    report = import_log(target, io.BytesIO(rest.getvalue()), batch_events=50)
    positions = [n.id for n in target.iter_log()]
    assert (report.first_position, report.last_position) == (positions[half], positions[-1])
    assert _log(target) == _log(source.app)


def test_deadlines_pending_in_the_source_fire_after_an_import(
    exported: bytes, target: LedgerApp
) -> None:
    again = Market.open("memory:")
    try:
        _story(again)  # the source, fresh: its deadlines still to fire
        import_log(target, io.BytesIO(exported), batch_events=64)
        expected = again.app.run_deadlines(LATER)
        fired = target.run_deadlines(LATER)
        assert len(fired.positions) == len(expected.positions) > 10
        assert _log(target) == _log(again.app)
        assert target.run_deadlines(LATER).positions == ()
    finally:
        again.app.close()


# --- Refusals ----------------------------------------------------------------------


def _first(lines: list[dict[str, Any]], topic: str, after: int = 0) -> int:
    """The line number of the first line with a topic after line ``after``."""
    return next(i for i, line in enumerate(lines, start=1) if i > after and line["topic"] == topic)


def _refused(target: LedgerApp, data: bytes, batch_events: int = 10_000) -> ImportRefusedError:
    before = len(list(target.iter_log()))
    with pytest.raises(ImportRefusedError) as caught:
        import_log(target, io.BytesIO(data), batch_events=batch_events)
    error = caught.value
    assert len(list(target.iter_log())) == before + error.imported.events
    return error


SHIPPED, CREATED = "trustledger.trade.shipped.v1", "trustledger.trade.created.v1"
FILED, FAKES = "trustledger.complaint.filed.v1", "trustledger.enforcement.fake_trades_confirmed.v1"
BEFORE_T0 = "2026-03-01T00:00:00Z"
CORRUPTIONS = [
    # (case, the topic of the line spoiled, changes to the line, changes to its
    # body, the refusal's code, words of its reason)
    ("bad_json", SHIPPED, {}, {}, "bad_line", "not an exported log line"),
    (
        "unknown_topic",
        SHIPPED,
        {"topic": "trustledger.trade.teleported.v1"},
        {},
        "unknown_topic",
        "unknown topic",
    ),
    (
        "topic_mismatch",
        SHIPPED,
        {"topic": CREATED},
        {},
        "topic_mismatch",
        f"is not the body's '{SHIPPED}'",
    ),
    (
        "version_gap",
        SHIPPED,
        {},
        {},
        "version_gap",
        "is at v1 in the store and this import, so v3 does not",
    ),
    ("originator", SHIPPED, {"originator_version": 9}, {}, "originator_mismatch", "the line names"),
    ("positions", SHIPPED, {"position": 3}, {}, "not_in_log_order", "does not follow position"),
    (
        "out_of_order",
        SHIPPED,
        {},
        {"occurred_at": "2020-01-01T00:00:00Z"},
        "out_of_order",
        "is before the last fact of this trade",
    ),
    (
        "currency",
        CREATED,
        {},
        {"currency": "USD"},
        "currency_mismatch",
        "this ledger keeps CNY, not USD",
    ),
    (
        "unregistered_party",
        CREATED,
        {},
        {"buyer_id": "nobody"},
        "unknown_member",
        "nobody is not a registered member",
    ),
    (
        "unknown_refund",
        "trustledger.refund.agreed.v1",
        {},
        {"refund_id": "R-404"},
        "does_not_apply",
        "RefundAgreed does not apply to trade",
    ),
    (
        "complaint_on_unknown_trade",
        "trustledger.complaint.filed.v1",
        {},
        {"trade_id": "T-404"},
        "unknown_trade",
        "no trade T-404",
    ),
    (
        "fake_trade_of_other_seller",
        FAKES,
        {},
        {"trade_ids": ["T0"]},
        "trade_of_other_seller",
        "trade T0 belongs to seller shop-a",
    ),
    # The aggregates' rules, refused with the codes their commands are refused with.
    ("future", SHIPPED, {}, {"occurred_at": "2040-01-01T00:00:00Z"}, "future_timestamp", "after"),
    (
        "buyer_is_seller",
        CREATED,
        {},
        {"buyer_id": "shop-a", "seller_id": "shop-a"},
        "buyer_is_seller",
        "buyer and seller must differ",
    ),
    ("before_registration", CREATED, {}, {"occurred_at": BEFORE_T0}, "out_of_order", "registered"),
    ("other_party", SHIPPED, {}, {"buyer_id": "buyer-z"}, "not_that_party", "names buyer-z/"),
    (
        "payment_amount",
        "trustledger.trade.payment_escrowed.v1",
        {},
        {"amount_minor": 1},
        "invalid_input",
        "amount_minor is 1, trade",
    ),
    (
        "release_amount",
        "trustledger.trade.escrow_released.v1",
        {},
        {"amount_minor": 1},
        "invalid_input",
        "amount_minor is 1, trade",
    ),
    (
        "refund_paid_amount",
        "trustledger.refund.paid.v1",
        {},
        {"amount_minor": 1},
        "invalid_input",
        "amount_minor is 1, trade",
    ),
    (
        "rating_of_another_item",
        "trustledger.rating.given.v1",
        {},
        {"item_id": "item-x"},
        "invalid_input",
        "item_id is item-x, trade",
    ),
    (
        "refund_beyond_escrow",
        "trustledger.refund.requested.v1",
        {},
        {"amount_minor": 10**9},
        "refund_exceeds_escrow",
        "1000000000 asked",
    ),
    (
        "ruling_on_another_refund",
        "trustledger.dispute.ruled.v1",
        {},
        {"refund_id": "R9"},
        "no_dispute",
        "no dispute on refund R9",
    ),
    ("complaint_parties", FILED, {}, {"seller_id": "shop-z"}, "not_that_party", "parties"),
    ("complaint_before_trade", FILED, {}, {"occurred_at": BEFORE_T0}, "out_of_order", "precede"),
    ("complaint_amount", FILED, {}, {"amount_minor": 1}, "invalid_input", "amount_minor is 1"),
    (
        "slot_of_unknown_complaint",
        "trustledger.complaint.slot_taken.v1",
        {},
        {"complaint_id": "CS-404"},
        "unknown_complaint",
        "no complaint CS-404",
    ),
    (
        "compensation_on_another_trade",
        "trustledger.complaint.compensation_paid.v1",
        {},
        {"trade_id": "T0"},
        "not_that_party",
        "not those of complaint",
    ),
    ("fake_unknown_trade", FAKES, {}, {"trade_ids": ["T-404"]}, "unknown_trade", "no trade T-404"),
    ("fake_repeats", FAKES, {}, {"trade_ids": ["T2", "T2"]}, "invalid_input", "repeat a trade"),
    ("fake_before_trade", FAKES, {}, {"trade_ids": ["T47"]}, "out_of_order", "created after"),
]


@pytest.mark.parametrize(
    ("case", "topic", "line_changes", "body_changes", "code", "reason"),
    CORRUPTIONS,
    ids=[case[0] for case in CORRUPTIONS],
)
def test_a_corrupted_line_is_refused_by_number_and_nothing_of_its_batch_is_written(
    exported: bytes,
    target: LedgerApp,
    case: str,
    topic: str,
    line_changes: dict[str, Any],
    body_changes: dict[str, Any],
    code: str,
    reason: str,
) -> None:
    lines = _lines(exported)
    number = _first(lines, topic, after=64)
    spoilt = {**lines[number - 1], **line_changes}
    spoilt["body"] = {**spoilt["body"], **body_changes}
    lines[number - 1] = spoilt
    if case == "version_gap":
        del lines[number - 2]  # the payment before the shipment
        number -= 1
    data = _ndjson(lines)
    if case == "bad_json":
        spoilt_lines = data.splitlines(keepends=True)
        spoilt_lines[number - 1] = b'{"position": 70, "topic": \n'
        data = b"".join(spoilt_lines)

    error = _refused(target, data, batch_events=64)
    assert (error.line, error.code) == (number, code), error
    assert reason in error.reason
    assert f"line {number}: " in str(error)
    # Every batch before the bad line's was written, nothing of its own.
    assert error.imported.events == (number - 1) // 64 * 64 > 0


# --- Facts a command would refuse, repeated at the end of an export -----------------


def _verified(m: Market) -> None:
    m.members("shop-a")
    m.run(m.app.verify_identity, c.VerifyIdentity(member_id="shop-a", occurred_at=T0 + HOUR))


def _refund_cancelled(m: Market) -> None:
    m.shipped_trade()
    m.refund(amount_minor=1_000)
    m.run(m.app.cancel_refund, c.CancelRefund(trade_id="T1", refund_id="R1", occurred_at=T0 + DAY))


def _dispute_ruled(m: Market) -> None:
    m.shipped_trade()
    _disputed(m, "T1", "CS-1", lambda hours: T0 + DAY + timedelta(hours=hours))


def _complaint(m: Market, then: str, step: c.ComplaintCommand) -> None:
    """Complaint CS-1 on a shipped trade, then one step (the LedgerApp method ``then``)."""
    m.shipped_trade()
    filing = c.FileComplaint(
        complaint_id="CS-1", trade_id="T1", type="other", severity="minor", occurred_at=T0 + DAY
    )
    m.run(m.app.file_complaint, filing)
    m.run(getattr(m.app, then), step)


AT_ONCE = T0 + DAY + 2 * HOUR
REPEATS = [
    # (case, the story, the topic of the fact repeated, changes to it, the refusal's code)
    (
        "verified_twice",
        _verified,
        "trustledger.member.identity_verified.v1",
        {},
        "already_verified",
    ),
    (
        "paid_twice",
        lambda m: (m.trade(), m.pay()),
        "trustledger.trade.payment_escrowed.v1",
        {},
        "already_paid",
    ),
    ("shipped_twice", lambda m: m.shipped_trade(), SHIPPED, {}, "already_shipped"),
    ("refund_id_again", _refund_cancelled, "trustledger.refund.requested.v1", {}, "refund_exists"),
    (
        "second_open_refund",
        lambda m: (m.shipped_trade(), m.refund(amount_minor=1_000)),
        "trustledger.refund.requested.v1",
        {"refund_id": "R2"},
        "refund_open",
    ),
    ("ruled_twice", _dispute_ruled, "trustledger.dispute.ruled.v1", {}, "dispute_already_ruled"),
    (
        "escalated_twice",
        lambda m: _complaint(
            m, "escalate_complaint", c.EscalateComplaint(complaint_id="CS-1", occurred_at=AT_ONCE)
        ),
        "trustledger.complaint.escalated.v1",
        {},
        "already_escalated",
    ),
    (
        "cash_without_amount",
        lambda m: _complaint(
            m,
            "pay_compensation",
            c.PayCompensation(
                complaint_id="CS-1", kind="cash", amount_minor=300, occurred_at=AT_ONCE
            ),
        ),
        "trustledger.complaint.compensation_paid.v1",
        {"amount_minor": None},
        "invalid_input",
    ),
    (
        "ruled_complaint_again",
        lambda m: _complaint(
            m,
            "rule_complaint",
            c.RuleComplaint(complaint_id="CS-1", outcome="dismissed", occurred_at=AT_ONCE),
        ),
        "trustledger.complaint.ruled.v1",
        {},
        "complaint_ruled",
    ),
    (
        "violation_again",
        _story,
        "trustledger.enforcement.violation_recorded.v1",
        {},
        "violation_exists",
    ),
    (
        "case_again",
        _story,
        "trustledger.enforcement.search_cheating_recorded.v1",
        {},
        "case_exists",
    ),
    (
        "items_repeat",
        _story,
        "trustledger.enforcement.search_cheating_recorded.v1",
        {"case_id": "SC-2", "item_ids": ["item-0", "item-0"]},
        "invalid_input",
    ),
    ("fake_again", _story, FAKES, {"case_id": "FT-2"}, "trade_already_fake"),
]


def _repeated(m: Market, topic: str, changes: dict[str, Any]) -> bytes:
    """The export with its last fact of ``topic`` (changed) recorded once more, as the
    next fact of its aggregate and at the time of that aggregate's last fact."""
    out = io.BytesIO()
    export_log(m.app, out)
    lines = _lines(out.getvalue())
    repeated = json.loads(json.dumps(next(ln for ln in reversed(lines) if ln["topic"] == topic)))
    own = [ln for ln in lines if ln["originator_id"] == repeated["originator_id"]]
    body = repeated["body"]
    body.update(changes, occurred_at=own[-1]["body"]["occurred_at"])
    body["originator_version"] = repeated["originator_version"] = len(own) + 1
    repeated["position"] = lines[-1]["position"] + 1
    return _ndjson([*lines, repeated])


@pytest.mark.parametrize(
    ("case", "story", "topic", "changes", "code"), REPEATS, ids=[case[0] for case in REPEATS]
)
def test_a_fact_its_aggregate_would_not_record_now_is_refused(
    target: LedgerApp,
    case: str,
    story: Callable[[Market], object],
    topic: str,
    changes: dict[str, Any],
    code: str,
) -> None:
    source = Market.open("memory:")
    try:
        story(source)
        data = _repeated(source, topic, changes)
    finally:
        source.app.close()
    error = _refused(target, data)
    assert (error.line, error.code) == (len(data.splitlines()), code), error
    assert error.imported.events == 0
    # The same facts without the repeated one are imported whole.
    assert import_log(target, io.BytesIO(b"".join(data.splitlines(keepends=True)[:-1]))).events


def test_a_deadline_missing_from_the_log_is_refused(exported: bytes, target: LedgerApp) -> None:
    lines = _lines(exported)
    # A receipt confirmed automatically when the buyer rated after the timer
    # ran out: without it, the rating comes after a deadline never recorded.
    auto = next(
        i
        for i, line in enumerate(lines, start=1)
        if line["topic"] == "trustledger.trade.receipt_confirmed.v1"
        and line["body"]["by"] == "auto"
        and lines[i + 1]["topic"] == "trustledger.rating.given.v1"
        and lines[i + 1]["originator_id"] == line["originator_id"]
    )
    trade = lines[auto - 1]["originator_id"]
    kept = lines[: auto - 1] + lines[auto + 1 :]  # without the receipt and the escrow release
    for line in kept[auto - 1 :]:
        if line["originator_id"] == trade:
            line["originator_version"] -= 2
            line["body"]["originator_version"] -= 2
    error = _refused(target, _ndjson(kept))
    assert error.line == auto
    assert error.code == "out_of_order"
    assert "not recorded before this fact" in error.reason


def test_importing_the_same_export_twice_is_refused_and_writes_nothing(
    exported: bytes, target: LedgerApp
) -> None:
    import_log(target, io.BytesIO(exported))
    log = _log(target)
    error = _refused(target, exported)
    assert error.line == 1
    assert error.code == "version_clash"
    assert "member shop-a" in error.reason
    assert error.imported.events == 0
    assert _log(target) == log


def test_a_clash_found_while_the_next_batch_is_checked_stops_the_import_there(
    exported: bytes, target: LedgerApp
) -> None:
    lines = _lines(exported)
    clashing = 6  # a member registration, in the second batch of four lines
    assert lines[clashing - 1]["topic"] == "trustledger.member.registered.v1"
    member = lines[clashing - 1]["body"]["member_id"]
    Market(target, FixedClock(T0)).members(member)  # the store already holds it
    error = _refused(target, exported, batch_events=4)
    assert (error.line, error.code) == (clashing, "version_clash")
    assert f"member {member}" in error.reason
    assert error.imported.events == 4


def test_an_over_long_line_is_refused(target: LedgerApp) -> None:
    data = b'{"position": 1, "topic": "' + b"x" * (4 * 1024 * 1024) + b'"}\n'
    error = _refused(target, data)
    assert (error.line, error.code) == (1, "line_too_long")


# --- The command line ------------------------------------------------------------


def test_cli_export_then_import(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = f"sqlite:///{tmp_path / 's.db'}", f"sqlite:///{tmp_path / 't.db'}"
    app = LedgerApp(source)
    try:
        run_scenario(app)
        app.run_deadlines(SCENARIO_END)
    finally:
        app.close()
    assert main(["--database-url", source, "export"]) == 0
    captured = capsysbinary.readouterr()
    assert b"exported " in captured.err
    export = tmp_path / "log.ndjson"
    export.write_bytes(captured.out)

    assert main(["--database-url", target, "import", str(export)]) == 0
    captured = capsysbinary.readouterr()
    assert b"imported " in captured.out

    assert main(["--database-url", target, "import", str(export)]) == 2
    err = capsysbinary.readouterr().err.decode()
    assert "import refused at line 1 (version_clash)" in err
    assert "member alice" in err

    # From stdin, after a position.
    assert main(["--database-url", source, "export", "--after", "20"]) == 0
    tail = capsysbinary.readouterr().out
    first_part = tmp_path / "first.ndjson"
    first_part.write_bytes(b"".join(export.read_bytes().splitlines(keepends=True)[:20]))
    piped = f"sqlite:///{tmp_path / 'p.db'}"
    assert main(["--database-url", piped, "import", str(first_part)]) == 0
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(tail)))
    assert main(["--database-url", piped, "import", "-"]) == 0
    capsysbinary.readouterr()

    apps = [LedgerApp(url) for url in (source, target, piped)]
    try:
        logs = [_log(each) for each in apps]
        assert logs[0] == logs[1] == logs[2]
        assert len(logs[0]) > 30
    finally:
        for each in apps:
            each.close()


def test_an_import_into_postgresql_refreshes_the_planner_statistics_as_the_log_grows(
    exported: bytes, postgres_url: str
) -> None:
    """A table filled from empty is planned as empty until it is analysed."""
    target = _target(postgres_url)
    place = place_of(postgres_url)
    try:
        report = import_log(target, io.BytesIO(exported), batch_events=10, statistics_from=20)
    finally:
        target.close()
    with psycopg.connect(place.conninfo) as conn:
        (estimated,) = conn.execute(
            "SELECT reltuples FROM pg_class WHERE oid = %s::regclass",
            (f'"{place.schema}".trustledger_events',),
        ).fetchone() or (None,)
    # Analysed at 20 events, then each time the import doubled: at least at half its size.
    assert estimated is not None
    assert report.events / 2 <= estimated <= report.events
