"""Appends (role ``service``): platform services record facts.

Every append takes an ``Idempotency-Key`` header, scoped to the caller (the
service the API key belongs to), and answers 201 with the log positions
written — deadline facts settled first included — or, for a repeated key, the
original answer marked ``Idempotency-Replayed: true``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Depends, Response

from api import logs
from api import schemas as s
from api.auth import APPEND_ROLES, Principal
from api.deps import IdempotencyKey, ServiceDep, command, origin, require
from ledger import commands as c
from ledger.app import Appended, Origin

router = APIRouter(prefix="/v1", tags=["appends"], responses=s.PROBLEMS)
Appender = Annotated[Principal, Depends(require(APPEND_ROLES))]


Route = Callable[..., Awaitable[Response]]


# Set on the answer to an append that repeats an earlier one (same caller,
# same key, same command): the positions are the first append's.
REPLAYED_HEADER = "Idempotency-Replayed"
_REPLAYED_DOC = {
    "headers": {
        REPLAYED_HEADER: {
            "description": "`true` when this append repeated an earlier one with the same "
            "Idempotency-Key: nothing was written, the positions are the first answer's",
            "schema": {"type": "string", "enum": ["true"]},
        }
    }
}


def created(path: str) -> Callable[[Route], Route]:
    return router.post(
        path, status_code=201, response_model=s.Positions, responses={201: _REPLAYED_DOC}
    )


async def _append(
    service: ServiceDep,
    principal: Principal,
    key: str,
    method: Callable[[Any, Origin], Appended],
    cmd: c.Command,
) -> Response:
    result = await service.run_command(method, cmd, origin(principal, key))
    if not result.replayed:
        service.metrics.appended(len(result.positions))
    if result.positions:
        logs.note_appended(result.positions[-1])
    # The answer is encoded here rather than checked again against its model.
    body = _positions.encode(Positions(result.positions))
    headers = {REPLAYED_HEADER: "true"} if result.replayed else None
    return Response(body, status_code=201, media_type="application/json", headers=headers)


class Positions(msgspec.Struct, frozen=True):
    """The body of ``s.Positions``."""

    positions: tuple[int, ...]


_positions = msgspec.json.Encoder()


# --- Members ----------------------------------------------------------------------


@created("/members")
async def register_member(
    body: s.NewMember, service: ServiceDep, who: Appender, key: IdempotencyKey
) -> Response:
    """Register a member (buyer, seller or both) of the marketplace."""
    cmd = command(c.RegisterMember, **body.model_dump())
    return await _append(service, who, key, service.ledger.register_member, cmd)


@created("/members/{member_id}/verification")
async def verify_identity(
    member_id: s.MemberPath, body: s.At, service: ServiceDep, who: Appender, key: IdempotencyKey
) -> Response:
    """Record that a member's real-name identity was verified."""
    cmd = command(c.VerifyIdentity, member_id=member_id, **body.model_dump())
    return await _append(service, who, key, service.ledger.verify_identity, cmd)


# --- Trades -------------------------------------------------------------------------


@created("/trades")
async def create_trade(
    body: s.NewTrade, service: ServiceDep, who: Appender, key: IdempotencyKey
) -> Response:
    """Record a new order between a buyer and a seller, not yet paid."""
    cmd = command(c.CreateTrade, **body.model_dump())
    return await _append(service, who, key, service.ledger.create_trade, cmd)


@created("/trades/{trade_id}/payment")
async def pay(
    trade_id: s.TradePath, body: s.At, service: ServiceDep, who: Appender, key: IdempotencyKey
) -> Response:
    """Record the buyer's payment into escrow."""
    cmd = command(c.PayIntoEscrow, trade_id=trade_id, **body.model_dump())
    return await _append(service, who, key, service.ledger.pay_into_escrow, cmd)


@created("/trades/{trade_id}/shipment")
async def ship(
    trade_id: s.TradePath, body: s.At, service: ServiceDep, who: Appender, key: IdempotencyKey
) -> Response:
    """Record the seller's shipment; the buyer's confirmation timer starts."""
    cmd = command(c.ShipTrade, trade_id=trade_id, **body.model_dump())
    return await _append(service, who, key, service.ledger.ship_trade, cmd)


@created("/trades/{trade_id}/receipt")
async def confirm_receipt(
    trade_id: s.TradePath, body: s.Receipt, service: ServiceDep, who: Appender, key: IdempotencyKey
) -> Response:
    """Record the buyer's confirmation of receipt."""
    cmd = command(c.ConfirmReceipt, trade_id=trade_id, **body.model_dump())
    return await _append(service, who, key, service.ledger.confirm_receipt, cmd)


@created("/trades/{trade_id}/timer-extension")
async def extend_timer(
    trade_id: s.TradePath,
    body: s.TimerExtension,
    service: ServiceDep,
    who: Appender,
    key: IdempotencyKey,
) -> Response:
    """Extend the buyer's confirmation timer by some days."""
    cmd = command(c.ExtendConfirmTimer, trade_id=trade_id, **body.model_dump())
    return await _append(service, who, key, service.ledger.extend_confirm_timer, cmd)


@created("/trades/{trade_id}/close")
async def close_trade(
    trade_id: s.TradePath, body: s.Closing, service: ServiceDep, who: Appender, key: IdempotencyKey
) -> Response:
    """Close an unpaid or cancelled trade."""
    cmd = command(c.CloseTrade, trade_id=trade_id, **body.model_dump())
    return await _append(service, who, key, service.ledger.close_trade, cmd)


# --- Refunds and disputes -------------------------------------------------------------


@created("/trades/{trade_id}/refunds")
async def request_refund(
    trade_id: s.TradePath,
    body: s.NewRefund,
    service: ServiceDep,
    who: Appender,
    key: IdempotencyKey,
) -> Response:
    """Record the buyer's refund request, with or without a return of the goods."""
    cmd = command(c.RequestRefund, trade_id=trade_id, **body.model_dump())
    return await _append(service, who, key, service.ledger.request_refund, cmd)


RefundStep = Literal["agree", "reject", "return-shipment", "return-receipt", "cancel"]
REFUND_STEPS: dict[str, type[c.RefundCommand]] = {
    "agree": c.AgreeRefund,
    "reject": c.RejectRefund,
    "return-shipment": c.ShipReturn,
    "return-receipt": c.ConfirmReturnReceipt,
    "cancel": c.CancelRefund,
}


@created("/trades/{trade_id}/refunds/{refund_id}/{step}")
async def refund_step(
    trade_id: s.TradePath,
    refund_id: s.RefundPath,
    step: RefundStep,
    body: s.At,
    service: ServiceDep,
    who: Appender,
    key: IdempotencyKey,
) -> Response:
    """Record the next step of a refund: agreed, rejected, return shipped,
    return received, or cancelled."""
    ledger = service.ledger
    methods: dict[str, Callable[[Any, Origin], Appended]] = {
        "agree": ledger.agree_refund,
        "reject": ledger.reject_refund,
        "return-shipment": ledger.ship_return,
        "return-receipt": ledger.confirm_return_receipt,
        "cancel": ledger.cancel_refund,
    }
    cmd = command(REFUND_STEPS[step], trade_id=trade_id, refund_id=refund_id, **body.model_dump())
    return await _append(service, who, key, methods[step], cmd)


@created("/trades/{trade_id}/dispute")
async def escalate_dispute(
    trade_id: s.TradePath,
    body: s.NewDispute,
    service: ServiceDep,
    who: Appender,
    key: IdempotencyKey,
) -> Response:
    """Escalate a refund the parties could not settle to the platform's customer service."""
    cmd = command(c.EscalateDispute, trade_id=trade_id, **body.model_dump())
    return await _append(service, who, key, service.ledger.escalate_dispute, cmd)


@created("/trades/{trade_id}/dispute/ruling")
async def rule_dispute(
    trade_id: s.TradePath,
    body: s.DisputeRuling,
    service: ServiceDep,
    who: Appender,
    key: IdempotencyKey,
) -> Response:
    """Record customer service's ruling on a disputed refund."""
    cmd = command(c.RuleDispute, trade_id=trade_id, **body.model_dump())
    return await _append(service, who, key, service.ledger.rule_dispute, cmd)


# --- Ratings --------------------------------------------------------------------------


Rater = Literal["buyer", "seller"]


@created("/trades/{trade_id}/ratings")
async def give_rating(
    trade_id: s.TradePath,
    body: s.NewRating,
    service: ServiceDep,
    who: Appender,
    key: IdempotencyKey,
) -> Response:
    """Record a buyer's or seller's rating of the trade (with DSR scores for a buyer's rating)."""
    cmd = command(c.GiveRating, trade_id=trade_id, **body.model_dump())
    return await _append(service, who, key, service.ledger.give_rating, cmd)


@created("/trades/{trade_id}/ratings/{rater}/revision")
async def revise_rating(
    trade_id: s.TradePath,
    rater: Rater,
    body: s.Revision,
    service: ServiceDep,
    who: Appender,
    key: IdempotencyKey,
) -> Response:
    """Record a rater's revision of a neutral or negative rating to a better one."""
    cmd = command(c.ReviseRating, trade_id=trade_id, rater=rater, **body.model_dump())
    return await _append(service, who, key, service.ledger.revise_rating, cmd)


@created("/trades/{trade_id}/ratings/{rater}/withdrawal")
async def withdraw_rating(
    trade_id: s.TradePath,
    rater: Rater,
    body: s.Withdrawal,
    service: ServiceDep,
    who: Appender,
    key: IdempotencyKey,
) -> Response:
    """Record that a rater withdrew a rating."""
    cmd = command(c.WithdrawRating, trade_id=trade_id, rater=rater, **body.model_dump())
    return await _append(service, who, key, service.ledger.withdraw_rating, cmd)


@created("/trades/{trade_id}/ratings/{rater}/explanation")
async def explain_rating(
    trade_id: s.TradePath,
    rater: Rater,
    body: s.Explanation,
    service: ServiceDep,
    who: Appender,
    key: IdempotencyKey,
) -> Response:
    """Record the rated party's public explanation of a rating."""
    cmd = command(c.ExplainRating, trade_id=trade_id, rater=rater, **body.model_dump())
    return await _append(service, who, key, service.ledger.explain_rating, cmd)


@created("/trades/{trade_id}/ratings/{rater}/follow-up")
async def review_follow_up(
    trade_id: s.TradePath,
    rater: Rater,
    body: s.FollowUp,
    service: ServiceDep,
    who: Appender,
    key: IdempotencyKey,
) -> Response:
    """Record the buyer's follow-up review of a rating."""
    cmd = command(c.ReviewFollowUp, trade_id=trade_id, rater=rater, **body.model_dump())
    return await _append(service, who, key, service.ledger.review_follow_up, cmd)


@created("/trades/{trade_id}/ratings/{rater}/shielding")
async def shield_rating(
    trade_id: s.TradePath,
    rater: Rater,
    body: s.Shielding,
    service: ServiceDep,
    who: Appender,
    key: IdempotencyKey,
) -> Response:
    """Record that the platform shielded a rating: it no longer counts."""
    cmd = command(c.ShieldRating, trade_id=trade_id, rater=rater, **body.model_dump())
    return await _append(service, who, key, service.ledger.shield_rating, cmd)


# --- Complaints -------------------------------------------------------------------------


@created("/complaints")
async def file_complaint(
    body: s.NewComplaint, service: ServiceDep, who: Appender, key: IdempotencyKey
) -> Response:
    """Record a complaint against the seller of a trade."""
    cmd = command(c.FileComplaint, **body.model_dump())
    return await _append(service, who, key, service.ledger.file_complaint, cmd)


@created("/complaints/{complaint_id}/escalation")
async def escalate_complaint(
    complaint_id: s.ComplaintPath,
    body: s.At,
    service: ServiceDep,
    who: Appender,
    key: IdempotencyKey,
) -> Response:
    """Escalate a complaint to the platform."""
    cmd = command(c.EscalateComplaint, complaint_id=complaint_id, **body.model_dump())
    return await _append(service, who, key, service.ledger.escalate_complaint, cmd)


@created("/complaints/{complaint_id}/follow-up")
async def complaint_follow_up(
    complaint_id: s.ComplaintPath,
    body: s.ComplaintNote,
    service: ServiceDep,
    who: Appender,
    key: IdempotencyKey,
) -> Response:
    """Record a follow-up message on a complaint."""
    cmd = command(c.RecordComplaintFollowUp, complaint_id=complaint_id, **body.model_dump())
    return await _append(service, who, key, service.ledger.record_complaint_follow_up, cmd)


@created("/complaints/{complaint_id}/compensation")
async def pay_compensation(
    complaint_id: s.ComplaintPath,
    body: s.Compensation,
    service: ServiceDep,
    who: Appender,
    key: IdempotencyKey,
) -> Response:
    """Record compensation paid to the buyer on a complaint."""
    cmd = command(c.PayCompensation, complaint_id=complaint_id, **body.model_dump())
    return await _append(service, who, key, service.ledger.pay_compensation, cmd)


@created("/complaints/{complaint_id}/ruling")
async def rule_complaint(
    complaint_id: s.ComplaintPath,
    body: s.ComplaintRuling,
    service: ServiceDep,
    who: Appender,
    key: IdempotencyKey,
) -> Response:
    """Record the platform's ruling on a complaint."""
    cmd = command(c.RuleComplaint, complaint_id=complaint_id, **body.model_dump())
    return await _append(service, who, key, service.ledger.rule_complaint, cmd)


# --- Seller enforcement ------------------------------------------------------------------


@created("/sellers/{seller_id}/violations")
async def record_violation(
    seller_id: s.SellerPath,
    body: s.NewViolation,
    service: ServiceDep,
    who: Appender,
    key: IdempotencyKey,
) -> Response:
    """Record a violation by a seller; its points count towards penalty nodes."""
    cmd = command(c.RecordViolation, seller_id=seller_id, **body.model_dump())
    return await _append(service, who, key, service.ledger.record_violation, cmd)


@created("/sellers/{seller_id}/fake-trades")
async def confirm_fake_trades(
    seller_id: s.SellerPath,
    body: s.FakeTradeCase,
    service: ServiceDep,
    who: Appender,
    key: IdempotencyKey,
) -> Response:
    """Record that some of a seller's trades were confirmed as fake; they stop counting."""
    cmd = command(c.ConfirmFakeTrades, seller_id=seller_id, **body.model_dump())
    return await _append(service, who, key, service.ledger.confirm_fake_trades, cmd)


@created("/sellers/{seller_id}/search-cheating")
async def record_search_cheating(
    seller_id: s.SellerPath,
    body: s.SearchCheatingCase,
    service: ServiceDep,
    who: Appender,
    key: IdempotencyKey,
) -> Response:
    """Record search-ranking cheating by a seller: each item named is demoted,
    and many items within the window demote the whole shop."""
    cmd = command(c.RecordSearchCheating, seller_id=seller_id, **body.model_dump())
    return await _append(service, who, key, service.ledger.record_search_cheating, cmd)
