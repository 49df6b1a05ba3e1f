"""What the ledger refuses (docs/rules.md §8): a clear error, a stable code, nothing written.

Every test runs the refused command through ``Market.refused``, which fails the
test if the command was accepted or wrote anything to the log, and then checks
the error class (422 ``InvalidInputError``, 404 ``NotFoundError``, 409
``StateConflictError``) and its ``ErrorCode``. Where a rule has a time boundary,
the test also shows the last accepted instant: windows are half-open (§0).

Every rule runs on every backend (``--backend memory`` narrows it to the
in-memory store), so "nothing written" is checked against real transactions too.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from api.refusals import codes_of_command
from ledger import commands as c
from ledger.app import Origin
from ledger.errors import (
    ErrorCode,
    InvalidInputError,
    LedgerError,
    NotFoundError,
    StateConflictError,
)
from ledger.events import Dsr, Party, Score
from tests.support import DAY, HOUR, T0, Market

US = timedelta(microseconds=1)
# The times Market's story steps use by default.
PAID = T0 + 2 * HOUR
SHIPPED = T0 + 3 * HOUR
SUCCESS = T0 + DAY
RATED = T0 + 2 * DAY
TOP_DSR = Dsr(as_described=5, service=5, shipping_speed=5, logistics=5)

Method = Callable[[Any, Origin], Any]


def refused(
    market: Market,
    method: str | Method,
    command: Any,
    error_class: type[LedgerError],
    code: ErrorCode,
) -> LedgerError:
    """Run a command that must be refused: check the class, the code, and an untouched log."""
    call: Method = getattr(market.app, method) if isinstance(method, str) else method
    error = market.refused(call, command)
    assert type(error) is error_class, f"{type(error).__name__}: {error}"
    assert error.code is code, str(error)
    # The OpenAPI document lists this code for the operation that decides it.
    declared = codes_of_command(type(command))
    assert str(code) in declared, f"{code} is not listed for {type(command).__name__}"
    return error


def with_key(market: Market, method: Method, key: str) -> Method:
    """The method, called under a chosen idempotency key instead of a fresh one."""
    return lambda command, _origin: method(command, market.origin(key))


# --- Command builders (trade T1 of buyer-1 and seller-1 unless told) ---------------


def register(at: datetime = T0, member_id: str = "buyer-1") -> c.RegisterMember:
    return c.RegisterMember(member_id=member_id, occurred_at=at)


def verify(at: datetime = T0, member_id: str = "buyer-1") -> c.VerifyIdentity:
    return c.VerifyIdentity(member_id=member_id, occurred_at=at)


def create(**overrides: Any) -> c.CreateTrade:
    fields: dict[str, Any] = {
        "trade_id": "T1",
        "buyer_id": "buyer-1",
        "seller_id": "seller-1",
        "item_id": "item-1",
        "amount_minor": 10_000,
        "currency": "CNY",
        "goods_kind": "physical",
        "shipping": "express",
        "occurred_at": T0 + HOUR,
    }
    return c.CreateTrade(**{**fields, **overrides})


def pay(at: datetime = PAID, trade_id: str = "T1") -> c.PayIntoEscrow:
    return c.PayIntoEscrow(trade_id=trade_id, occurred_at=at)


def ship(at: datetime = SHIPPED, trade_id: str = "T1") -> c.ShipTrade:
    return c.ShipTrade(trade_id=trade_id, occurred_at=at)


def confirm(at: datetime = SUCCESS, trade_id: str = "T1") -> c.ConfirmReceipt:
    return c.ConfirmReceipt(trade_id=trade_id, occurred_at=at)


def extend(days: int, at: datetime = T0 + 4 * HOUR) -> c.ExtendConfirmTimer:
    return c.ExtendConfirmTimer(trade_id="T1", days=days, occurred_at=at)


def close(reason: str, at: datetime = T0 + 4 * HOUR) -> c.CloseTrade:
    return c.CloseTrade(trade_id="T1", reason=reason, occurred_at=at)  # type: ignore[arg-type]


def refund(
    refund_id: str = "R2",
    amount_minor: int = 1_000,
    at: datetime = T0 + 5 * HOUR,
    **overrides: Any,
) -> c.RequestRefund:
    fields: dict[str, Any] = {"reason": "damaged", "with_return": False}
    return c.RequestRefund(
        trade_id="T1",
        refund_id=refund_id,
        amount_minor=amount_minor,
        occurred_at=at,
        **{**fields, **overrides},
    )


def give(
    at: datetime = RATED, rater: Party = "buyer", score: Score = "positive", **fields: Any
) -> c.GiveRating:
    return c.GiveRating(trade_id="T1", rater=rater, score=score, occurred_at=at, **fields)


def revise(at: datetime, rater: Party = "buyer", **fields: Any) -> c.ReviseRating:
    return c.ReviseRating(trade_id="T1", rater=rater, occurred_at=at, **fields)


def withdraw(at: datetime, rater: Party = "buyer", **fields: Any) -> c.WithdrawRating:
    return c.WithdrawRating(trade_id="T1", rater=rater, occurred_at=at, **fields)


def explain(
    at: datetime, rater: Party = "buyer", text: str = "the courier lost it", **fields: Any
) -> c.ExplainRating:
    return c.ExplainRating(trade_id="T1", rater=rater, text=text, occurred_at=at, **fields)


def follow_up(
    at: datetime, rater: Party = "buyer", text: str = "still works a month on", **fields: Any
) -> c.ReviewFollowUp:
    return c.ReviewFollowUp(trade_id="T1", rater=rater, text=text, occurred_at=at, **fields)


def shield(at: datetime, rater: Party = "buyer") -> c.ShieldRating:
    return c.ShieldRating(trade_id="T1", rater=rater, reason="abusive", occurred_at=at)


def complaint(
    complaint_id: str = "C1", at: datetime = RATED, trade_id: str = "T1", **fields: Any
) -> c.FileComplaint:
    defaults: dict[str, Any] = {"type": "not_as_described", "severity": "moderate"}
    return c.FileComplaint(
        complaint_id=complaint_id,
        trade_id=trade_id,
        occurred_at=at,
        **{**defaults, **fields},
    )


def fake_case(
    trade_ids: tuple[str, ...],
    case_id: str = "K1",
    at: datetime = T0 + 3 * DAY,
    seller_id: str = "seller-1",
) -> c.ConfirmFakeTrades:
    return c.ConfirmFakeTrades(
        seller_id=seller_id, case_id=case_id, trade_ids=trade_ids, occurred_at=at
    )


def violation(
    violation_id: str = "V1", at: datetime = T0 + DAY, **fields: Any
) -> c.RecordViolation:
    defaults: dict[str, Any] = {"category": "general", "points": 3, "reason": "late shipment"}
    return c.RecordViolation(
        seller_id="seller-1",
        violation_id=violation_id,
        occurred_at=at,
        **{**defaults, **fields},
    )


def search_cheating(case_id: str = "K1", **fields: Any) -> c.RecordSearchCheating:
    defaults: dict[str, Any] = {
        "item_ids": ("item-1",),
        "kind": "keyword_stuffing",
        "occurred_at": T0 + DAY,
    }
    return c.RecordSearchCheating(seller_id="seller-1", case_id=case_id, **{**defaults, **fields})


# --- Small stories -------------------------------------------------------------------


def rejected_refund(market: Market) -> None:
    """T1 shipped at T0+3h; refund R1 asked at T0+4h and rejected at T0+5h."""
    market.shipped_trade()
    market.refund(at=T0 + 4 * HOUR)
    market.run(
        market.app.reject_refund,
        c.RejectRefund(trade_id="T1", refund_id="R1", occurred_at=T0 + 5 * HOUR),
    )


def disputed_refund(market: Market) -> None:
    """As ``rejected_refund``, and the buyer escalates R1 at T0+6h."""
    rejected_refund(market)
    market.run(
        market.app.escalate_dispute,
        c.EscalateDispute(trade_id="T1", refund_id="R1", occurred_at=T0 + 6 * HOUR),
    )


def rule(outcome: str, at: datetime) -> c.RuleDispute:
    return c.RuleDispute(trade_id="T1", outcome=outcome, occurred_at=at)  # type: ignore[arg-type]


# =====================================================================================
# Malformed input (422 invalid_input): checked before anything is loaded.
# =====================================================================================

MALFORMED = [
    # Amounts: > 0, integer, bounded.
    pytest.param("create_trade", create(amount_minor=0), "amount_minor", id="amount-zero"),
    pytest.param("create_trade", create(amount_minor=-100), "amount_minor", id="amount-negative"),
    pytest.param("create_trade", create(amount_minor=99.5), "amount_minor", id="amount-float"),
    pytest.param("create_trade", create(amount_minor="100"), "amount_minor", id="amount-string"),
    pytest.param("create_trade", create(amount_minor=True), "amount_minor", id="amount-bool"),
    pytest.param("create_trade", create(amount_minor=10**15 + 1), "amount_minor", id="amount-huge"),
    pytest.param("request_refund", refund(amount_minor=0), "amount_minor", id="refund-amount-zero"),
    pytest.param(
        "pay_compensation",
        c.PayCompensation(complaint_id="C1", kind="cash", amount_minor=-1, occurred_at=T0),
        "amount_minor",
        id="compensation-negative",
    ),
    # Unknown enum values.
    pytest.param("create_trade", create(goods_kind="digital"), "goods_kind", id="goods-kind"),
    pytest.param("create_trade", create(shipping="pigeon"), "shipping", id="shipping"),
    pytest.param("close_trade", close("bored"), "reason", id="close-reason"),
    pytest.param("request_refund", refund(reason="whim"), "reason", id="refund-reason"),
    pytest.param(
        "rule_dispute", rule("buyer_wins", T0 + 5 * HOUR), "outcome", id="dispute-outcome"
    ),
    pytest.param("give_rating", give(score="great"), "score", id="score"),  # type: ignore[arg-type]
    pytest.param("give_rating", give(rater="admin"), "rater", id="rater"),  # type: ignore[arg-type]
    pytest.param("file_complaint", complaint(type="rudeness"), "type", id="complaint-type"),
    pytest.param(
        "file_complaint", complaint(severity="catastrophic"), "severity", id="complaint-severity"
    ),
    pytest.param(
        "pay_compensation",
        c.PayCompensation(complaint_id="C1", kind="hug", occurred_at=T0),  # type: ignore[arg-type]
        "kind",
        id="compensation-kind",
    ),
    pytest.param("record_violation", violation(category="minor"), "category", id="category"),
    pytest.param(
        "record_search_cheating", search_cheating(kind="spam"), "kind", id="cheating-kind"
    ),
    # Other wrong types and out-of-range numbers.
    pytest.param("request_refund", refund(with_return="yes"), "with_return", id="bool-string"),
    pytest.param("record_violation", violation(points=0), "points", id="points-zero"),
    pytest.param("record_violation", violation(points=49), "points", id="points-49"),
    pytest.param(
        "confirm_fake_trades",
        fake_case(trade_ids="T1"),  # type: ignore[arg-type]
        "trade_ids",
        id="ids-not-a-list",
    ),
    # Shop scores (DSR) are 1-5 in each of the four dimensions.
    pytest.param(
        "give_rating",
        give(dsr=Dsr(as_described=0, service=5, shipping_speed=5, logistics=5)),
        "dsr.as_described",
        id="dsr-0",
    ),
    pytest.param(
        "give_rating",
        give(dsr=Dsr(as_described=5, service=5, shipping_speed=5, logistics=6)),
        "dsr.logistics",
        id="dsr-6",
    ),
    pytest.param(
        "give_rating",
        give(dsr=Dsr(as_described=5, service="5", shipping_speed=5, logistics=5)),  # type: ignore[arg-type]
        "dsr.service",
        id="dsr-string",
    ),
    pytest.param("give_rating", give(dsr={"as_described": 5}), "dsr", id="dsr-missing-dimensions"),
    # Ids: 1-128 characters of [A-Za-z0-9._:-].
    pytest.param("create_trade", create(trade_id=""), "trade_id", id="id-empty"),
    pytest.param("create_trade", create(buyer_id="buyer 1"), "buyer_id", id="id-space"),
    pytest.param("create_trade", create(item_id="item/1"), "item_id", id="id-slash"),
    pytest.param("create_trade", create(seller_id="sëller"), "seller_id", id="id-non-ascii"),
    pytest.param("create_trade", create(trade_id="T" * 129), "trade_id", id="id-129-chars"),
    pytest.param(
        "register_member",
        c.RegisterMember(member_id="a\nb", occurred_at=T0),
        "member_id",
        id="member-id-newline",
    ),
    pytest.param(
        "confirm_fake_trades", fake_case(trade_ids=("T1", "T 2")), "trade_ids[1]", id="id-in-batch"
    ),
    pytest.param("give_rating", give(rater_id="x" * 129), "rater_id", id="rater-id"),
    # Currency codes are three capital letters (another valid code is currency_mismatch).
    pytest.param("create_trade", create(currency="cny"), "currency", id="currency-lowercase"),
    # Oversized or empty text.
    pytest.param("give_rating", give(comment="x" * 2_001), "comment", id="comment-2001"),
    pytest.param("explain_rating", explain(RATED, text="x" * 2_001), "text", id="text-2001"),
    pytest.param("explain_rating", explain(RATED, text=""), "text", id="text-empty"),
    pytest.param(
        "review_follow_up", follow_up(RATED, text="x" * 2_001), "text", id="follow-up-2001"
    ),
    pytest.param("file_complaint", complaint(evidence="x" * 2_001), "evidence", id="evidence-2001"),
    pytest.param("record_violation", violation(reason="x" * 501), "reason", id="reason-501"),
    pytest.param(
        "shield_rating",
        c.ShieldRating(trade_id="T1", rater="buyer", reason="x" * 501, occurred_at=RATED),
        "reason",
        id="shield-reason-501",
    ),
    # Oversized or empty batches.
    pytest.param(
        "confirm_fake_trades",
        fake_case(trade_ids=tuple(f"T{n}" for n in range(c.FAKE_TRADE_CASE_TRADES_MAX + 1))),
        "trade_ids",
        id="fake-case-5001-trades",
    ),
    pytest.param("confirm_fake_trades", fake_case(trade_ids=()), "trade_ids", id="fake-case-empty"),
    pytest.param(
        "record_search_cheating",
        search_cheating(item_ids=tuple(f"i{n}" for n in range(c.SEARCH_CHEATING_ITEMS_MAX + 1))),
        "item_ids",
        id="cheating-1001-items",
    ),
    # Timezone-less (naive) or unparseable business times.
    pytest.param(
        "register_member",
        c.RegisterMember(member_id="m-1", occurred_at=datetime(2026, 3, 2, 9)),
        "occurred_at",
        id="naive-datetime",
    ),
    pytest.param("pay_into_escrow", pay(at=T0.replace(tzinfo=None)), "occurred_at", id="naive-pay"),
    pytest.param("pay_into_escrow", pay(at="2026-03-02"), "occurred_at", id="date-only"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("method", "command", "field"), MALFORMED)
def test_malformed_input_is_refused_with_the_field_named(
    market: Market, method: str, command: Any, field: str
) -> None:
    market.succeeded_trade()  # a live trade T1, so only the input is at fault
    error = refused(market, method, command, InvalidInputError, ErrorCode.INVALID_INPUT)
    assert error.field == field


@pytest.mark.parametrize(
    ("caller", "key", "field"),
    [
        pytest.param("", "k-1", "caller", id="caller-empty"),
        pytest.param("order service", "k-1", "caller", id="caller-space"),
        pytest.param("x" * 129, "k-1", "caller", id="caller-129"),
        pytest.param("test-service", "", "idempotency_key", id="key-empty"),
        pytest.param("test-service", "key 1", "idempotency_key", id="key-space"),
        pytest.param("test-service", "k" * 256, "idempotency_key", id="key-256"),
    ],
)
def test_a_malformed_caller_or_idempotency_key_is_refused(
    market: Market, caller: str, key: str, field: str
) -> None:
    def register(command: c.RegisterMember, _origin: Origin) -> Any:
        return market.app.register_member(command, Origin(caller, key))

    command = c.RegisterMember(member_id="m-1", occurred_at=T0)
    error = refused(market, register, command, InvalidInputError, ErrorCode.INVALID_INPUT)
    assert error.field == field


def test_a_rating_comment_over_500_characters_is_refused(market: Market) -> None:
    market.succeeded_trade()
    app = market.app
    error = refused(
        market,
        "give_rating",
        give(comment="x" * 501),
        InvalidInputError,
        ErrorCode.INVALID_INPUT,
    )
    assert error.field == "comment"
    market.run(app.give_rating, give(comment="x" * 500))


@pytest.mark.parametrize(
    ("method", "command", "field"),
    [
        ("confirm_fake_trades", fake_case(trade_ids=("T1", "T2", "T1")), "trade_ids"),
        ("record_search_cheating", search_cheating(item_ids=("i-1", "i-1")), "item_ids"),
    ],
)
def test_a_batch_naming_the_same_id_twice_is_refused(
    market: Market, method: str, command: Any, field: str
) -> None:
    market.trade("T1")
    market.trade("T2")
    error = refused(market, method, command, InvalidInputError, ErrorCode.INVALID_INPUT)
    assert error.field == field


@pytest.mark.parametrize("limit", [0, 10_001])
def test_a_log_page_outside_1_to_10000_is_refused(market: Market, limit: int) -> None:
    with pytest.raises(InvalidInputError) as caught:
        market.app.read_log(limit=limit)
    assert caught.value.code is ErrorCode.BATCH_TOO_LARGE


@pytest.mark.parametrize(
    ("kind", "amount_minor"),
    [("cash", None), ("voucher", None), ("apology", 500), ("replacement", 500)],
)
def test_compensation_needs_an_amount_exactly_when_money_is_paid(
    market: Market, kind: str, amount_minor: int | None
) -> None:
    market.succeeded_trade()
    market.run(market.app.file_complaint, complaint())
    command = c.PayCompensation(
        complaint_id="C1",
        kind=kind,  # type: ignore[arg-type]
        amount_minor=amount_minor,
        occurred_at=T0 + 3 * DAY,
    )
    error = refused(market, "pay_compensation", command, InvalidInputError, ErrorCode.INVALID_INPUT)
    assert error.field == "amount_minor"


# =====================================================================================
# Members, parties and currency.
# =====================================================================================


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"seller_id": "buyer-1"}, ErrorCode.BUYER_IS_SELLER, "seller_id"),
        ({"currency": "USD"}, ErrorCode.CURRENCY_MISMATCH, "currency"),
    ],
    ids=["buyer-is-seller", "not-the-deployments-currency"],
)
def test_a_trade_needs_two_parties_and_the_deployments_currency(
    market: Market, overrides: dict[str, Any], code: ErrorCode, field: str
) -> None:
    market.members("buyer-1", "seller-1")
    error = refused(market, "create_trade", create(**overrides), InvalidInputError, code)
    assert error.field == field


@pytest.mark.parametrize("missing", ["buyer-1", "seller-1"])
def test_every_party_of_a_trade_must_be_a_registered_member(market: Market, missing: str) -> None:
    market.members(*({"buyer-1", "seller-1"} - {missing}))
    error = refused(market, "create_trade", create(), NotFoundError, ErrorCode.UNKNOWN_MEMBER)
    assert missing in error.detail


@pytest.mark.parametrize(
    ("method", "command"),
    [
        pytest.param("verify_identity", verify(member_id="ghost"), id="verify"),
        pytest.param("record_violation", violation(), id="violation"),
        pytest.param("confirm_fake_trades", fake_case(("T1",)), id="fake-trades"),
        pytest.param("record_search_cheating", search_cheating(), id="search-cheating"),
    ],
)
def test_enforcement_and_verification_need_a_registered_member(
    market: Market, method: str, command: Any
) -> None:
    refused(market, method, command, NotFoundError, ErrorCode.UNKNOWN_MEMBER)


# =====================================================================================
# Time: clock skew and facts out of order.
# =====================================================================================


def test_a_timestamp_beyond_five_minutes_of_clock_skew_is_refused(market: Market) -> None:
    market.trade()
    now = T0 + 2 * HOUR
    market.clock.set(now)
    skew = timedelta(seconds=300)

    error = refused(
        market,
        "pay_into_escrow",
        pay(now + skew + US),
        InvalidInputError,
        ErrorCode.FUTURE_TIMESTAMP,
    )
    assert error.field == "occurred_at"
    market.run(market.app.pay_into_escrow, pay(now + skew))  # exactly at the allowance: accepted


def test_a_deadline_run_beyond_the_clock_skew_is_refused(market: Market) -> None:
    market.shipped_trade()  # its auto-confirmation is due T0+3h+10d
    now = T0 + 5 * DAY
    market.clock.set(now)
    before = market.log_size()

    with pytest.raises(InvalidInputError) as caught:
        market.app.run_deadlines(now + timedelta(days=30))
    assert caught.value.code is ErrorCode.FUTURE_TIMESTAMP
    with pytest.raises(InvalidInputError) as caught:
        market.app.run_deadlines(datetime(2036, 1, 1))  # naive
    assert caught.value.code is ErrorCode.INVALID_INPUT
    assert market.log_size() == before


def test_a_trade_created_before_its_members_registered_is_out_of_order(
    market: Market,
) -> None:
    market.members("buyer-1", "seller-1", at=T0)
    error = refused(
        market,
        "create_trade",
        create(occurred_at=T0 - US),
        StateConflictError,
        ErrorCode.OUT_OF_ORDER,
    )
    assert error.field == "occurred_at"
    market.run(market.app.create_trade, create(occurred_at=T0))  # same instant: fine


def _paid(market: Market) -> None:
    market.trade()
    market.pay()


# The stories of a trade not shipped yet.
UNSHIPPED = [pytest.param(Market.trade, id="unpaid"), pytest.param(_paid, id="paid-not-shipped")]


def _succeeded(market: Market) -> None:
    market.succeeded_trade()


def _rated(market: Market) -> None:
    market.succeeded_trade()
    market.rate(score="negative")


def _complaint_filed(market: Market) -> None:
    _succeeded(market)
    market.run(market.app.file_complaint, complaint(at=T0 + 3 * DAY))


def _violation_recorded(market: Market) -> None:
    market.members("seller-1")
    market.run(market.app.record_violation, violation(at=T0 + 3 * DAY))


def _registered(market: Market) -> None:
    market.members("buyer-1", at=T0 + DAY)


OUT_OF_ORDER = [
    pytest.param(_paid, "ship_trade", ship(PAID - US), id="shipping-before-payment"),
    pytest.param(_paid, "pay_into_escrow", pay(PAID - HOUR), id="payment-before-creation"),
    pytest.param(_succeeded, "give_rating", give(SUCCESS - HOUR), id="rating-before-success"),
    pytest.param(_rated, "revise_rating", revise(RATED - US), id="revision-before-rating"),
    pytest.param(_rated, "explain_rating", explain(RATED - HOUR), id="explanation-before-rating"),
    pytest.param(
        _complaint_filed,
        "file_complaint",
        complaint("C2", at=T0 + HOUR - US, trade_id="T2"),
        id="complaint-before-trade",
    ),
    pytest.param(
        _complaint_filed,
        "escalate_complaint",
        c.EscalateComplaint(complaint_id="C1", occurred_at=T0 + 2 * DAY),
        id="escalation-before-complaint",
    ),
    pytest.param(
        _violation_recorded,
        "record_violation",
        violation("V2", at=T0 + 2 * DAY),
        id="violation-before-last-seller-fact",
    ),
    pytest.param(
        _registered,
        "verify_identity",
        verify(T0),
        id="verification-before-registration",
    ),
]


@pytest.mark.parametrize(("story", "method", "command"), OUT_OF_ORDER)
def test_a_fact_before_the_fact_it_depends_on_is_out_of_order(
    market: Market, story: Callable[[Market], None], method: str, command: Any
) -> None:
    story(market)
    if method == "file_complaint":
        market.trade("T2")  # created at T0+1h
    error = refused(market, method, command, StateConflictError, ErrorCode.OUT_OF_ORDER)
    assert error.field == "occurred_at"


# =====================================================================================
# Once only: a member, an identity verification, a trade id, a payment, a shipment, a
# receipt.
# =====================================================================================


def _verified(market: Market) -> None:
    _registered(market)
    market.run(market.app.verify_identity, verify(T0 + DAY))


@pytest.mark.parametrize(
    ("story", "method", "command", "code"),
    [
        (_registered, "register_member", register(T0 + 2 * DAY), ErrorCode.MEMBER_EXISTS),
        (_verified, "verify_identity", verify(T0 + 2 * DAY), ErrorCode.ALREADY_VERIFIED),
        (Market.trade, "create_trade", create(occurred_at=T0 + 2 * HOUR), ErrorCode.TRADE_EXISTS),
        (_paid, "pay_into_escrow", pay(PAID + HOUR), ErrorCode.ALREADY_PAID),
        (Market.shipped_trade, "ship_trade", ship(SHIPPED + HOUR), ErrorCode.ALREADY_SHIPPED),
        (_succeeded, "confirm_receipt", confirm(SUCCESS + HOUR), ErrorCode.ALREADY_CONFIRMED),
    ],
    ids=["member", "identity-verification", "trade-id", "payment", "shipment", "receipt"],
)
def test_a_fact_recorded_once_is_refused_the_second_time(
    market: Market, story: Callable[[Market], Any], method: str, command: Any, code: ErrorCode
) -> None:
    story(market)
    refused(market, method, command, StateConflictError, code)


# =====================================================================================
# Escrow, shipping, receipt and closing.
# =====================================================================================


def test_shipping_an_unpaid_trade_is_refused(market: Market) -> None:
    market.trade()
    refused(market, "ship_trade", ship(), StateConflictError, ErrorCode.NOT_PAID)


@pytest.mark.parametrize("story", UNSHIPPED)
def test_confirming_receipt_before_shipping_is_refused(
    market: Market, story: Callable[[Market], Any]
) -> None:
    story(market)
    refused(market, "confirm_receipt", confirm(), StateConflictError, ErrorCode.NOT_SHIPPED)


def test_confirming_receipt_after_automatic_confirmation_is_refused(
    market: Market,
) -> None:
    """The due auto-confirmation is settled before deciding, and not saved on refusal."""
    market.shipped_trade()  # auto-confirmed at T0+3h+10d: exactly then is too late
    refused(
        market,
        "confirm_receipt",
        confirm(SHIPPED + 10 * DAY),
        StateConflictError,
        ErrorCode.ALREADY_CONFIRMED,
    )


def test_confirming_receipt_while_a_refund_is_open_is_refused(market: Market) -> None:
    market.shipped_trade()
    market.refund(at=T0 + 4 * HOUR)
    refused(market, "confirm_receipt", confirm(), StateConflictError, ErrorCode.REFUND_OPEN)


@pytest.mark.parametrize(
    ("method", "command"),
    [
        pytest.param("pay_into_escrow", pay(T0 + 5 * HOUR), id="pay"),
        pytest.param("ship_trade", ship(T0 + 5 * HOUR), id="ship"),
        pytest.param("close_trade", close("seller_cancelled", T0 + 5 * HOUR), id="close"),
        pytest.param("request_refund", refund(), id="refund"),
    ],
)
def test_a_closed_trade_takes_no_more_escrow_facts(
    market: Market, method: str, command: Any
) -> None:
    market.trade()
    market.run(market.app.close_trade, close("out_of_stock", T0 + 2 * HOUR))
    refused(market, method, command, StateConflictError, ErrorCode.TRADE_CLOSED)


def test_refunded_in_full_is_a_close_reason_only_the_ledger_records(
    market: Market,
) -> None:
    market.trade()
    error = refused(
        market,
        "close_trade",
        close("refunded_in_full"),
        InvalidInputError,
        ErrorCode.RESERVED_CLOSE_REASON,
    )
    assert error.field == "reason"


@pytest.mark.parametrize(
    ("story", "reason", "code"),
    [
        pytest.param(_paid, "unpaid", ErrorCode.ALREADY_PAID, id="unpaid-but-paid"),
        pytest.param(_paid, "buyer_cancelled", ErrorCode.ALREADY_PAID, id="buyer-cancel-paid"),
        pytest.param(
            Market.shipped_trade, "seller_cancelled", ErrorCode.ALREADY_SHIPPED, id="shipped"
        ),
    ],
)
def test_closing_a_trade_that_moved_on_is_refused(
    market: Market, story: Callable[[Market], Any], reason: str, code: ErrorCode
) -> None:
    story(market)
    refused(market, "close_trade", close(reason), StateConflictError, code)


# =====================================================================================
# The confirm timer: at most two extensions of 1-10 days, only while it runs.
# =====================================================================================


def test_a_third_timer_extension_is_refused(market: Market) -> None:
    market.shipped_trade()
    market.run(market.app.extend_confirm_timer, extend(10, T0 + 4 * HOUR))
    market.run(market.app.extend_confirm_timer, extend(10, T0 + 5 * HOUR))
    refused(
        market,
        "extend_confirm_timer",
        extend(1, T0 + 6 * HOUR),
        StateConflictError,
        ErrorCode.EXTENSION_LIMIT,
    )


@pytest.mark.parametrize(
    ("days", "code"),
    [
        (11, ErrorCode.EXTENSION_DAYS_OUT_OF_RANGE),
        (365, ErrorCode.EXTENSION_DAYS_OUT_OF_RANGE),
        (0, ErrorCode.INVALID_INPUT),
        (-1, ErrorCode.INVALID_INPUT),
        (366, ErrorCode.INVALID_INPUT),
    ],
)
def test_an_extension_outside_1_to_10_days_is_refused(
    market: Market, days: int, code: ErrorCode
) -> None:
    market.shipped_trade()
    app = market.app
    error = refused(market, "extend_confirm_timer", extend(days), InvalidInputError, code)
    assert error.field == "days"
    market.run(app.extend_confirm_timer, extend(10))  # the largest allowed


@pytest.mark.parametrize("story", UNSHIPPED)
def test_extending_the_timer_before_shipping_is_refused(
    market: Market, story: Callable[[Market], Any]
) -> None:
    story(market)
    refused(
        market,
        "extend_confirm_timer",
        extend(3),
        StateConflictError,
        ErrorCode.TIMER_NOT_RUNNING,
    )


def test_extending_the_timer_while_a_refund_pauses_it_is_refused(market: Market) -> None:
    market.shipped_trade()
    market.refund(at=T0 + 4 * HOUR)
    app = market.app
    refused(
        market,
        "extend_confirm_timer",
        extend(3, T0 + 5 * HOUR),
        StateConflictError,
        ErrorCode.TIMER_NOT_RUNNING,
    )
    market.run(
        app.cancel_refund,
        c.CancelRefund(trade_id="T1", refund_id="R1", occurred_at=T0 + 6 * HOUR),
    )
    market.run(app.extend_confirm_timer, extend(3, T0 + 7 * HOUR))  # running again


def test_extending_the_timer_when_it_ran_out_is_refused(market: Market) -> None:
    market.shipped_trade()
    due = SHIPPED + 10 * DAY
    app = market.app
    refused(
        market,
        "extend_confirm_timer",
        extend(3, due),
        StateConflictError,
        ErrorCode.TRADE_SUCCEEDED,
    )
    market.run(app.extend_confirm_timer, extend(3, due - US))


# =====================================================================================
# Refunds.
# =====================================================================================


def _refunded_in_full(market: Market) -> None:
    _paid(market)
    market.refund(at=PAID + HOUR)
    market.run(
        market.app.agree_refund,
        c.AgreeRefund(trade_id="T1", refund_id="R1", occurred_at=PAID + 2 * HOUR),
    )


def _cancelled_unpaid(market: Market) -> None:
    market.trade()
    market.run(market.app.close_trade, close("unpaid", PAID))


@pytest.mark.parametrize(
    ("story", "code"),
    [
        pytest.param(Market.trade, ErrorCode.NOT_PAID, id="unpaid"),
        pytest.param(_cancelled_unpaid, ErrorCode.TRADE_CLOSED, id="closed-unpaid"),
        pytest.param(_refunded_in_full, ErrorCode.TRADE_CLOSED, id="closed-refunded-in-full"),
        pytest.param(Market.succeeded_trade, ErrorCode.TRADE_SUCCEEDED, id="succeeded"),
    ],
)
def test_a_refund_needs_a_paid_open_trade(
    market: Market, story: Callable[[Market], Any], code: ErrorCode
) -> None:
    story(market)
    refused(market, "request_refund", refund(at=T0 + 2 * DAY), StateConflictError, code)


def test_a_second_open_refund_is_refused(market: Market) -> None:
    market.shipped_trade()
    market.refund("T1", "R1", amount_minor=1_000, at=T0 + 4 * HOUR)
    refused(market, "request_refund", refund("R2"), StateConflictError, ErrorCode.REFUND_OPEN)


def test_a_refund_id_is_used_once_per_trade(market: Market) -> None:
    market.shipped_trade()
    market.refund("T1", "R1", amount_minor=1_000, at=T0 + 4 * HOUR)
    app = market.app
    market.run(
        app.cancel_refund, c.CancelRefund(trade_id="T1", refund_id="R1", occurred_at=T0 + 5 * HOUR)
    )
    refused(
        market,
        "request_refund",
        refund("R1", at=T0 + 6 * HOUR),
        StateConflictError,
        ErrorCode.REFUND_EXISTS,
    )


def test_a_refund_beyond_the_escrowed_amount_is_refused(market: Market) -> None:
    market.shipped_trade()  # 10_000 in escrow
    error = refused(
        market,
        "request_refund",
        refund(amount_minor=10_001),
        StateConflictError,
        ErrorCode.REFUND_EXCEEDS_ESCROW,
    )
    assert error.field == "amount_minor"


def test_a_refund_beyond_what_a_partial_refund_left_in_escrow_is_refused(market: Market) -> None:
    market.trade()
    market.pay()
    market.refund("T1", "R1", amount_minor=4_000, at=PAID + HOUR)
    market.run(
        market.app.agree_refund,
        c.AgreeRefund(trade_id="T1", refund_id="R1", occurred_at=PAID + 2 * HOUR),
    )  # 4_000 paid back: 6_000 left
    refused(
        market,
        "request_refund",
        refund("R2", amount_minor=6_001, at=PAID + 3 * HOUR),
        StateConflictError,
        ErrorCode.REFUND_EXCEEDS_ESCROW,
    )
    market.run(market.app.request_refund, refund("R2", amount_minor=6_000, at=PAID + 3 * HOUR))


def test_a_refund_with_return_before_shipping_is_refused(market: Market) -> None:
    _paid(market)
    refused(
        market,
        "request_refund",
        refund(with_return=True, at=PAID + HOUR),
        StateConflictError,
        ErrorCode.NOT_SHIPPED,
    )


REFUND_STEPS = [
    pytest.param("agree_refund", c.AgreeRefund, ErrorCode.REFUND_NOT_PENDING, id="agree"),
    pytest.param("reject_refund", c.RejectRefund, ErrorCode.REFUND_NOT_PENDING, id="reject"),
    pytest.param("ship_return", c.ShipReturn, ErrorCode.RETURN_NOT_EXPECTED, id="ship-return"),
    pytest.param(
        "confirm_return_receipt",
        c.ConfirmReturnReceipt,
        ErrorCode.RETURN_NOT_EXPECTED,
        id="confirm-return",
    ),
    pytest.param("cancel_refund", c.CancelRefund, ErrorCode.REFUND_NOT_CANCELLABLE, id="cancel"),
    pytest.param(
        "escalate_dispute", c.EscalateDispute, ErrorCode.NO_REJECTED_REFUND, id="escalate"
    ),
]


@pytest.mark.parametrize(("method", "command_type", "code"), REFUND_STEPS)
def test_a_refund_step_on_an_unknown_refund_is_not_found(
    market: Market, method: str, command_type: type[c.RefundCommand], code: ErrorCode
) -> None:
    market.shipped_trade()
    command = command_type(trade_id="T1", refund_id="R9", occurred_at=T0 + 5 * HOUR)
    refused(market, method, command, NotFoundError, ErrorCode.UNKNOWN_REFUND)


@pytest.mark.parametrize(("method", "command_type", "code"), REFUND_STEPS)
def test_a_refund_step_on_a_paid_refund_is_refused(
    market: Market, method: str, command_type: type[c.RefundCommand], code: ErrorCode
) -> None:
    market.shipped_trade()
    market.refund(amount_minor=1_000, at=T0 + 4 * HOUR)
    app = market.app
    market.run(
        app.agree_refund, c.AgreeRefund(trade_id="T1", refund_id="R1", occurred_at=T0 + 5 * HOUR)
    )  # paid at once: no return
    command = command_type(trade_id="T1", refund_id="R1", occurred_at=T0 + 6 * HOUR)
    refused(market, method, command, StateConflictError, code)


# =====================================================================================
# Disputes: one per trade, on a rejected refund; ruled once.
# =====================================================================================


def test_a_dispute_needs_a_rejected_refund(market: Market) -> None:
    market.shipped_trade()
    market.refund(at=T0 + 4 * HOUR)  # requested, not rejected
    refused(
        market,
        "escalate_dispute",
        c.EscalateDispute(trade_id="T1", refund_id="R1", occurred_at=T0 + 5 * HOUR),
        StateConflictError,
        ErrorCode.NO_REJECTED_REFUND,
    )


def test_a_dispute_seven_days_after_the_rejection_is_too_late(market: Market) -> None:
    rejected_refund(market)  # rejected at T0+5h: the request closes 7 days later
    closes = T0 + 5 * HOUR + 7 * DAY
    app = market.app
    refused(
        market,
        "escalate_dispute",
        c.EscalateDispute(trade_id="T1", refund_id="R1", occurred_at=closes),
        StateConflictError,
        ErrorCode.NO_REJECTED_REFUND,
    )
    market.run(
        app.escalate_dispute,
        c.EscalateDispute(trade_id="T1", refund_id="R1", occurred_at=closes - US),
    )


def test_a_second_dispute_on_a_trade_is_refused(market: Market) -> None:
    disputed_refund(market)
    app = market.app
    market.run(app.rule_dispute, rule("not_seller_fault", T0 + 7 * HOUR))
    market.refund("T1", "R2", at=T0 + 8 * HOUR)
    market.run(
        app.reject_refund, c.RejectRefund(trade_id="T1", refund_id="R2", occurred_at=T0 + 9 * HOUR)
    )
    refused(
        market,
        "escalate_dispute",
        c.EscalateDispute(trade_id="T1", refund_id="R2", occurred_at=T0 + 10 * HOUR),
        StateConflictError,
        ErrorCode.DISPUTE_EXISTS,
    )


@pytest.mark.parametrize(
    "story",
    [
        pytest.param(Market.shipped_trade, id="no-refund"),
        pytest.param(rejected_refund, id="rejected-not-escalated"),
    ],
)
def test_a_ruling_without_a_dispute_is_refused(
    market: Market, story: Callable[[Market], Any]
) -> None:
    story(market)
    refused(
        market,
        "rule_dispute",
        rule("seller_at_fault", T0 + 7 * HOUR),
        StateConflictError,
        ErrorCode.NO_DISPUTE,
    )


@pytest.mark.parametrize("first", ["seller_at_fault", "not_seller_fault"])
def test_a_dispute_is_ruled_once(market: Market, first: str) -> None:
    disputed_refund(market)
    market.run(market.app.rule_dispute, rule(first, T0 + 7 * HOUR))
    refused(
        market,
        "rule_dispute",
        rule("seller_at_fault", T0 + 8 * HOUR),
        StateConflictError,
        ErrorCode.DISPUTE_ALREADY_RULED,
    )


# =====================================================================================
# Ratings: on a succeeded trade, once per side, within 15 days, by that party.
# =====================================================================================


@pytest.mark.parametrize(
    "story",
    [
        pytest.param(Market.trade, id="created"),
        pytest.param(_paid, id="paid"),
        pytest.param(Market.shipped_trade, id="shipped"),
        pytest.param(_refunded_in_full, id="closed-by-refund"),
    ],
)
@pytest.mark.parametrize("rater", ["buyer", "seller"])
def test_rating_a_trade_that_has_not_succeeded_is_refused(
    market: Market, story: Callable[[Market], Any], rater: Party
) -> None:
    story(market)
    refused(market, "give_rating", give(rater=rater), StateConflictError, ErrorCode.NOT_SUCCEEDED)


@pytest.mark.parametrize("rater", ["buyer", "seller"])
def test_each_side_rates_a_trade_once(market: Market, rater: Party) -> None:
    market.succeeded_trade()
    market.rate(rater=rater, score="neutral")
    refused(
        market,
        "give_rating",
        give(RATED + HOUR, rater=rater, score="positive"),
        StateConflictError,
        ErrorCode.ALREADY_RATED,
    )


def test_shop_scores_cannot_be_added_after_the_rating(market: Market) -> None:
    market.succeeded_trade()
    market.rate(rater="buyer", score="positive")
    refused(
        market,
        "give_rating",
        give(RATED + HOUR, dsr=TOP_DSR),
        StateConflictError,
        ErrorCode.ALREADY_RATED,
    )


def test_shop_scores_from_the_seller_are_refused(market: Market) -> None:
    market.succeeded_trade()
    error = refused(
        market,
        "give_rating",
        give(rater="seller", dsr=TOP_DSR),
        InvalidInputError,
        ErrorCode.DSR_FROM_SELLER,
    )
    assert error.field == "dsr"


@pytest.mark.parametrize("late", [SUCCESS + 15 * DAY, SUCCESS + 15 * DAY + US, SUCCESS + 90 * DAY])
def test_a_rating_at_or_after_the_15_day_window_is_refused(market: Market, late: datetime) -> None:
    market.succeeded_trade()
    refused(market, "give_rating", give(late), StateConflictError, ErrorCode.RATING_WINDOW_CLOSED)
    market.run(market.app.give_rating, give(SUCCESS + 15 * DAY - US))  # the last instant


def test_a_late_rating_is_refused_when_the_other_side_rated_negative(
    market: Market,
) -> None:
    market.succeeded_trade()
    market.rate(rater="seller", score="negative")  # no default positive follows
    refused(
        market,
        "give_rating",
        give(SUCCESS + 15 * DAY),
        StateConflictError,
        ErrorCode.RATING_WINDOW_CLOSED,
    )


def test_a_late_rating_meets_the_default_positive_recorded_at_window_close(
    market: Market,
) -> None:
    """The window's close is reported, not the default positive it settled first."""
    market.succeeded_trade()
    market.rate(rater="seller", score="positive")
    refused(
        market,
        "give_rating",
        give(SUCCESS + 15 * DAY, score="negative"),
        StateConflictError,
        ErrorCode.RATING_WINDOW_CLOSED,
    )


@pytest.mark.parametrize(
    ("rater", "rater_id"),
    [
        ("buyer", "seller-1"),
        ("seller", "buyer-1"),
        ("buyer", "buyer-2"),  # a registered member, but not this trade's buyer
        ("seller", "stranger"),
    ],
)
def test_a_rater_id_that_is_not_that_party_is_refused(
    market: Market, rater: Party, rater_id: str
) -> None:
    market.succeeded_trade()
    market.members("buyer-2")
    error = refused(
        market,
        "give_rating",
        give(rater=rater, rater_id=rater_id),
        StateConflictError,
        ErrorCode.NOT_THAT_PARTY,
    )
    assert error.field == "rater_id"


# --- After a rating (docs/rules.md §2). Revision or withdrawal: of a neutral or negative, once,
# by its rater, within 30 days. Explanation: by the rated party, once, within 30 days of
# the rating. Follow-up review: by a buyer who rated, once, within 180 days of success.
# Shielding: once. -------------------------------------------------------------------


@pytest.mark.parametrize("change", [revise, withdraw])
def test_a_positive_rating_is_final(market: Market, change: Callable[..., Any]) -> None:
    market.succeeded_trade()
    market.rate(score="positive")
    method = f"{change.__name__}_rating"
    refused(market, method, change(RATED + DAY), StateConflictError, ErrorCode.RATING_FINAL)


def test_a_default_positive_is_final(market: Market) -> None:
    _buyer_has_default(market)
    refused(
        market,
        "revise_rating",
        revise(SUCCESS + 16 * DAY),
        StateConflictError,
        ErrorCode.RATING_FINAL,
    )


@pytest.mark.parametrize("second", [revise, withdraw])
@pytest.mark.parametrize("first", [revise, withdraw])
def test_a_rating_is_revised_once(
    market: Market, first: Callable[..., Any], second: Callable[..., Any]
) -> None:
    market.succeeded_trade()
    market.rate(score="negative")
    app = market.app
    market.run(getattr(app, f"{first.__name__}_rating"), first(RATED + DAY))
    refused(
        market,
        f"{second.__name__}_rating",
        second(RATED + 2 * DAY),
        StateConflictError,
        ErrorCode.ALREADY_REVISED,
    )


@pytest.mark.parametrize(
    ("method", "command", "code"),
    [
        pytest.param("explain_rating", explain, ErrorCode.ALREADY_EXPLAINED, id="explain"),
        pytest.param("review_follow_up", follow_up, ErrorCode.ALREADY_FOLLOWED_UP, id="follow-up"),
        pytest.param("shield_rating", shield, ErrorCode.ALREADY_SHIELDED, id="shield"),
    ],
)
def test_a_rating_is_explained_followed_up_and_shielded_once(
    market: Market, method: str, command: Callable[[datetime], Any], code: ErrorCode
) -> None:
    market.succeeded_trade()
    market.rate(score="negative")
    market.run(getattr(market.app, method), command(RATED + DAY))
    refused(market, method, command(RATED + 2 * DAY), StateConflictError, code)


@pytest.mark.parametrize(
    ("method", "command", "window_end", "code"),
    [
        ("revise_rating", revise, RATED + 30 * DAY, ErrorCode.REVISION_WINDOW_CLOSED),
        ("withdraw_rating", withdraw, RATED + 30 * DAY, ErrorCode.REVISION_WINDOW_CLOSED),
        ("explain_rating", explain, RATED + 30 * DAY, ErrorCode.EXPLANATION_WINDOW_CLOSED),
        ("review_follow_up", follow_up, SUCCESS + 180 * DAY, ErrorCode.FOLLOW_UP_WINDOW_CLOSED),
    ],
    ids=["revise", "withdraw", "explain", "follow-up"],
)
def test_acting_on_a_rating_when_its_window_has_closed_is_refused(
    market: Market,
    method: str,
    command: Callable[[datetime], Any],
    window_end: datetime,
    code: ErrorCode,
) -> None:
    market.succeeded_trade()
    market.rate(score="negative")
    refused(market, method, command(window_end), StateConflictError, code)
    market.run(getattr(market.app, method), command(window_end - US))  # the last instant


def _both_sides_rated(market: Market) -> None:
    market.succeeded_trade()
    market.rate(rater="buyer", score="negative")
    market.rate(rater="seller", score="negative", at=RATED + HOUR)


@pytest.mark.parametrize(
    ("method", "command", "field"),
    [
        ("revise_rating", revise(RATED + DAY, rater_id="seller-1"), "rater_id"),
        # An explanation is the rated party's: not its rater's, not a stranger's.
        ("explain_rating", explain(RATED + DAY, rater="buyer", author_id="buyer-1"), "author_id"),
        ("explain_rating", explain(RATED + DAY, rater="seller", author_id="seller-1"), "author_id"),
        ("explain_rating", explain(RATED + DAY, rater="buyer", author_id="stranger"), "author_id"),
        ("review_follow_up", follow_up(RATED + DAY, author_id="seller-1"), "author_id"),
    ],
    ids=[
        "revision-by-the-other-side",
        "explanation-by-its-rater-the-buyer",
        "explanation-by-its-rater-the-seller",
        "explanation-by-a-stranger",
        "follow-up-by-the-seller",
    ],
)
def test_acting_on_a_rating_as_another_member_is_refused(
    market: Market, method: str, command: Any, field: str
) -> None:
    _both_sides_rated(market)
    error = refused(market, method, command, StateConflictError, ErrorCode.NOT_THAT_PARTY)
    assert error.field == field


def test_a_follow_up_review_is_the_buyers_only(market: Market) -> None:
    _both_sides_rated(market)
    error = refused(
        market,
        "review_follow_up",
        follow_up(RATED + DAY, rater="seller"),
        InvalidInputError,
        ErrorCode.FOLLOW_UP_BUYER_ONLY,
    )
    assert error.field == "rater"


@pytest.mark.parametrize(
    ("method", "command"),
    [
        pytest.param("revise_rating", revise(RATED + DAY, rater="seller"), id="revise"),
        pytest.param("withdraw_rating", withdraw(RATED + DAY, rater="seller"), id="withdraw"),
        pytest.param("explain_rating", explain(RATED + DAY, rater="seller"), id="explain"),
        pytest.param("shield_rating", shield(RATED + DAY, rater="seller"), id="shield"),
    ],
)
def test_acting_on_a_rating_that_was_never_given_is_not_found(
    market: Market, method: str, command: Any
) -> None:
    market.succeeded_trade()
    market.rate(rater="buyer", score="negative")  # the seller has not rated
    refused(market, method, command, NotFoundError, ErrorCode.UNKNOWN_RATING)


def _seller_rated(market: Market) -> None:
    market.succeeded_trade()
    market.rate(rater="seller", score="negative")


def _buyer_has_default(market: Market) -> None:
    market.succeeded_trade()
    market.rate(rater="seller", score="positive")
    market.app.run_deadlines(SUCCESS + 15 * DAY)
    trade = market.app.trade("T1")
    assert trade is not None
    assert trade.ratings["buyer"].default


@pytest.mark.parametrize(
    ("story", "at"),
    [
        pytest.param(Market.succeeded_trade, RATED, id="nobody-rated"),
        pytest.param(_seller_rated, RATED + DAY, id="only-the-seller-rated"),
        pytest.param(_buyer_has_default, SUCCESS + 20 * DAY, id="buyer-has-a-default-positive"),
    ],
)
def test_a_follow_up_review_needs_the_buyers_own_rating(
    market: Market, story: Callable[[Market], Any], at: datetime
) -> None:
    story(market)
    refused(
        market,
        "review_follow_up",
        follow_up(at),
        StateConflictError,
        ErrorCode.NO_BUYER_RATING,
    )


# =====================================================================================
# Complaints: filed by the trade's buyer, one case per trade.
# =====================================================================================


@pytest.mark.parametrize("filed_by", ["seller-1", "stranger"])
def test_a_complaint_by_anyone_but_the_buyer_is_refused(market: Market, filed_by: str) -> None:
    market.succeeded_trade()
    error = refused(
        market,
        "file_complaint",
        complaint(filed_by=filed_by),
        StateConflictError,
        ErrorCode.NOT_THAT_PARTY,
    )
    assert error.field == "filed_by"


@pytest.mark.parametrize("first_ruled", [False, True])
def test_a_second_complaint_on_a_trade_is_refused_naming_the_first(
    market: Market, first_ruled: bool
) -> None:
    market.succeeded_trade()
    app = market.app
    market.run(app.file_complaint, complaint("C1", filed_by="buyer-1"))
    if first_ruled:
        market.run(
            app.rule_complaint,
            c.RuleComplaint(complaint_id="C1", outcome="dismissed", occurred_at=RATED + HOUR),
        )
    error = refused(
        market,
        "file_complaint",
        complaint("C2", at=RATED + DAY),
        StateConflictError,
        ErrorCode.COMPLAINT_EXISTS,
    )
    assert "C1" in error.detail


def test_a_complaint_id_is_used_once(market: Market) -> None:
    market.succeeded_trade()
    market.trade("T2", item="item-2")
    market.run(market.app.file_complaint, complaint("C1"))
    refused(
        market,
        "file_complaint",
        complaint("C1", at=RATED + DAY, trade_id="T2"),
        StateConflictError,
        ErrorCode.COMPLAINT_EXISTS,
    )


COMPLAINT_STEPS = [
    pytest.param(
        "escalate_complaint",
        c.EscalateComplaint(complaint_id="C9", occurred_at=RATED),
        id="escalate",
    ),
    pytest.param(
        "record_complaint_follow_up",
        c.RecordComplaintFollowUp(complaint_id="C9", text="called", occurred_at=RATED),
        id="follow-up",
    ),
    pytest.param(
        "pay_compensation",
        c.PayCompensation(complaint_id="C9", kind="apology", occurred_at=RATED),
        id="compensation",
    ),
    pytest.param(
        "rule_complaint",
        c.RuleComplaint(complaint_id="C9", outcome="upheld", occurred_at=RATED),
        id="rule",
    ),
]


@pytest.mark.parametrize(("method", "command"), COMPLAINT_STEPS)
def test_a_step_on_an_unknown_complaint_is_not_found(
    market: Market, method: str, command: Any
) -> None:
    market.succeeded_trade()
    refused(market, method, command, NotFoundError, ErrorCode.UNKNOWN_COMPLAINT)


@pytest.mark.parametrize(("method", "command"), COMPLAINT_STEPS)
def test_a_ruled_complaint_takes_no_more_steps(market: Market, method: str, command: Any) -> None:
    market.succeeded_trade()
    app = market.app
    market.run(app.file_complaint, complaint("C9", at=RATED - HOUR))
    market.run(
        app.rule_complaint,
        c.RuleComplaint(complaint_id="C9", outcome="dismissed", occurred_at=RATED - HOUR),
    )
    refused(market, method, command, StateConflictError, ErrorCode.COMPLAINT_RULED)


def test_a_complaint_is_escalated_once(market: Market) -> None:
    market.succeeded_trade()
    app = market.app
    market.run(app.file_complaint, complaint())
    escalate = c.EscalateComplaint(complaint_id="C1", occurred_at=RATED + HOUR)
    market.run(app.escalate_complaint, escalate)
    refused(
        market,
        "escalate_complaint",
        c.EscalateComplaint(complaint_id="C1", occurred_at=RATED + 2 * HOUR),
        StateConflictError,
        ErrorCode.ALREADY_ESCALATED,
    )


# =====================================================================================
# Enforcement: violations, fake-trade cases, search cheating.
# =====================================================================================


def test_a_fake_trade_case_naming_a_trade_of_another_seller_is_refused(market: Market) -> None:
    market.trade("T1")  # buyer-1 buys from seller-1
    market.trade("T2", seller="seller-2")
    market.trade("T3", buyer="seller-1", seller="seller-2")  # seller-1 is the buyer here
    for other in ("T2", "T3"):
        error = refused(
            market,
            "confirm_fake_trades",
            fake_case(("T1", other)),
            StateConflictError,
            ErrorCode.TRADE_OF_OTHER_SELLER,
        )
        assert other in error.detail


def test_a_fake_trade_case_naming_an_unknown_trade_is_not_found(market: Market) -> None:
    market.trade("T1")
    refused(
        market,
        "confirm_fake_trades",
        fake_case(("T1", "T404")),
        NotFoundError,
        ErrorCode.UNKNOWN_TRADE,
    )


def test_a_trade_is_confirmed_fake_once(market: Market) -> None:
    market.trade("T1")
    market.trade("T2", item="item-2")
    app = market.app
    market.run(app.confirm_fake_trades, fake_case(("T1",), "K1"))
    refused(
        market,
        "confirm_fake_trades",
        fake_case(("T2", "T1"), "K2", at=T0 + 4 * DAY),
        StateConflictError,
        ErrorCode.TRADE_ALREADY_FAKE,
    )


def test_a_fake_trade_case_dated_before_its_trade_was_created_is_out_of_order(
    market: Market,
) -> None:
    market.trade("T1", at=T0 + 5 * HOUR)
    refused(
        market,
        "confirm_fake_trades",
        fake_case(("T1",), at=T0 + HOUR),
        StateConflictError,
        ErrorCode.OUT_OF_ORDER,
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(fake_case(("T1",)), fake_case(("T2",), at=T0 + 4 * DAY), id="fake-fake"),
        pytest.param(search_cheating(), fake_case(("T2",)), id="cheating-fake"),
        pytest.param(
            fake_case(("T1",)), search_cheating(occurred_at=T0 + 4 * DAY), id="fake-cheating"
        ),
    ],
)
def test_a_seller_case_id_is_used_once(market: Market, first: Any, second: Any) -> None:
    market.trade("T1")
    market.trade("T2", item="item-2")

    def method(command: Any) -> str:
        fake = isinstance(command, c.ConfirmFakeTrades)
        return "confirm_fake_trades" if fake else "record_search_cheating"

    market.run(getattr(market.app, method(first)), first)
    refused(market, method(second), second, StateConflictError, ErrorCode.CASE_EXISTS)


def test_a_violation_id_is_used_once(market: Market) -> None:
    market.members("seller-1")
    app = market.app
    market.run(app.record_violation, violation("V1"))
    refused(
        market,
        "record_violation",
        violation("V1", at=T0 + 2 * DAY, points=6),
        StateConflictError,
        ErrorCode.VIOLATION_EXISTS,
    )


# =====================================================================================
# Unknown trades.
# =====================================================================================


@pytest.mark.parametrize(
    ("method", "command"),
    [
        pytest.param("pay_into_escrow", pay(trade_id="T404"), id="pay"),
        pytest.param("ship_trade", ship(trade_id="T404"), id="ship"),
        pytest.param("confirm_receipt", confirm(trade_id="T404"), id="confirm"),
        pytest.param(
            "extend_confirm_timer",
            c.ExtendConfirmTimer(trade_id="T404", days=3, occurred_at=SHIPPED),
            id="extend",
        ),
        pytest.param(
            "request_refund",
            c.RequestRefund(
                trade_id="T404",
                refund_id="R1",
                amount_minor=100,
                reason="other",
                with_return=False,
                occurred_at=SHIPPED,
            ),
            id="refund",
        ),
        pytest.param(
            "give_rating",
            c.GiveRating(trade_id="T404", rater="buyer", score="positive", occurred_at=RATED),
            id="rate",
        ),
        pytest.param("file_complaint", complaint(trade_id="T404"), id="complaint"),
    ],
)
def test_a_fact_about_an_unknown_trade_is_not_found(
    market: Market, method: str, command: Any
) -> None:
    market.succeeded_trade("T1")
    error = refused(market, method, command, NotFoundError, ErrorCode.UNKNOWN_TRADE)
    assert error.field == "trade_id"


# =====================================================================================
# Idempotency keys.
# =====================================================================================


def test_reusing_an_idempotency_key_for_a_different_command_is_refused(market: Market) -> None:
    market.trade()
    app = market.app
    market.run(app.pay_into_escrow, pay(), key="order-42")

    others: list[tuple[c.Command, Method]] = [
        (pay(PAID + HOUR), app.pay_into_escrow),  # same use case, another body
        (ship(), app.ship_trade),  # another use case
        (pay(market.clock.now() + DAY), app.pay_into_escrow),  # the key is judged first
    ]
    for other, method in others:
        error = refused(
            market,
            with_key(market, method, "order-42"),
            other,
            StateConflictError,
            ErrorCode.IDEMPOTENCY_KEY_REUSED,
        )
        assert error.field == "idempotency_key"

    again = market.run(app.pay_into_escrow, pay(), key="order-42")  # the same body replays
    assert again.replayed


def test_a_refused_command_does_not_bind_its_idempotency_key(market: Market) -> None:
    market.trade()
    app = market.app
    refused(
        market,
        with_key(market, app.ship_trade, "order-43"),
        ship(),
        StateConflictError,
        ErrorCode.NOT_PAID,
    )
    refused(
        market,
        with_key(market, app.pay_into_escrow, "order-43"),
        pay(trade_id="T404"),
        NotFoundError,
        ErrorCode.UNKNOWN_TRADE,
    )

    result = market.run(app.pay_into_escrow, pay(), key="order-43")
    assert not result.replayed
    assert len(result.positions) == 1
