"""The refusals each operation may answer: its ``code`` values, by status.

The OpenAPI document lists them on each operation's problem responses, so a
caller knows which codes to handle where. They are built from what every call
may meet (a missing key, an unreadable body, a store that is down), what every
append may meet (a reused idempotency key, a time past the clock), what a
parameter brings (``min_position``, ``rulebook``, ``cursor``) and what the
operation's own rules refuse (``OWN``). The refusal tests check every refusal
they provoke against this table, and the contract test every code it meets.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from api.problems import PROBLEM_JSON
from api.schemas import PROBLEM_REF
from ledger import commands as c
from ledger.errors import ErrorCode as E

Codes = dict[int, frozenset[str]]


def _codes(by_status: dict[int, Iterable[str]]) -> Codes:
    return {status: frozenset(map(str, codes)) for status, codes in by_status.items()}


EVERY_CALL = _codes(
    {
        400: ["malformed_request"],
        401: ["unauthenticated"],
        403: ["forbidden"],
        404: ["not_found"],
        413: ["body_too_large"],
        422: ["invalid_input"],
        429: ["too_many_requests"],
        503: ["store_unavailable"],
    }
)
EVERY_APPEND = _codes(
    {409: [E.IDEMPOTENCY_KEY_REUSED, E.CONCURRENT_UPDATE], 422: [E.FUTURE_TIMESTAMP]}
)
BY_PARAMETER = {
    "min_position": _codes({422: [E.POSITION_BEYOND_LOG], 503: ["view_behind"]}),
    "rulebook": _codes({422: ["unknown_rulebook"]}),
    "base": _codes({422: ["unknown_rulebook"]}),  # what-if's rulebook compared with
    "cursor": _codes({422: ["invalid_cursor"]}),
}

# What a fact about a trade may meet whatever it is: no such trade, a fact
# dated before the trade's last, a trade closed or succeeded and released.
TRADE_FACT = _codes({404: [E.UNKNOWN_TRADE], 409: [E.OUT_OF_ORDER]})
OPEN_TRADE = _codes({409: [E.TRADE_CLOSED, E.TRADE_SUCCEEDED]})
RATING_FACT = _codes({404: [E.UNKNOWN_RATING], 409: [E.NOT_THAT_PARTY]})
COMPLAINT_FACT = _codes({404: [E.UNKNOWN_COMPLAINT], 409: [E.OUT_OF_ORDER, E.COMPLAINT_RULED]})
REFUND_STEP = _codes({404: [E.UNKNOWN_REFUND]})
SELLER_FACT = _codes({404: [E.UNKNOWN_MEMBER], 409: [E.OUT_OF_ORDER]})
MEMBER_FIGURE = _codes({404: [E.UNKNOWN_MEMBER]})
PROOF = _codes({404: [E.UNKNOWN_POSITION, E.UNKNOWN_TREE_SIZE]})
SIGNED = _codes({503: ["signing_key_missing"]})
BATCH = _codes({413: [E.BATCH_TOO_LARGE]})


def _union(*parts: Codes) -> Codes:
    merged: dict[int, frozenset[str]] = {}
    for part in parts:
        for status, codes in part.items():
            merged[status] = merged.get(status, frozenset()) | codes
    return merged


# Each operation's own refusals, beyond every call's, every append's and its
# parameters'; appends name the command types they decide.
OWN: dict[str, tuple[tuple[type[c.Command], ...], Codes]] = {
    "registerMember": ((c.RegisterMember,), _codes({409: [E.MEMBER_EXISTS]})),
    "verifyIdentity": (
        (c.VerifyIdentity,),
        _union(SELLER_FACT, _codes({409: [E.ALREADY_VERIFIED]})),
    ),
    "createTrade": (
        (c.CreateTrade,),
        _codes(
            {
                404: [E.UNKNOWN_MEMBER],
                409: [E.TRADE_EXISTS, E.OUT_OF_ORDER],
                422: [E.BUYER_IS_SELLER, E.CURRENCY_MISMATCH],
            }
        ),
    ),
    "payIntoEscrow": (
        (c.PayIntoEscrow,),
        _union(TRADE_FACT, OPEN_TRADE, _codes({409: [E.ALREADY_PAID]})),
    ),
    "shipTrade": (
        (c.ShipTrade,),
        _union(TRADE_FACT, OPEN_TRADE, _codes({409: [E.NOT_PAID, E.ALREADY_SHIPPED]})),
    ),
    "confirmReceipt": (
        (c.ConfirmReceipt,),
        _union(
            TRADE_FACT,
            OPEN_TRADE,
            _codes({409: [E.ALREADY_CONFIRMED, E.NOT_SHIPPED, E.REFUND_OPEN]}),
        ),
    ),
    "extendConfirmTimer": (
        (c.ExtendConfirmTimer,),
        _union(
            TRADE_FACT,
            OPEN_TRADE,
            _codes(
                {
                    409: [E.TIMER_NOT_RUNNING, E.EXTENSION_LIMIT],
                    422: [E.EXTENSION_DAYS_OUT_OF_RANGE],
                }
            ),
        ),
    ),
    "closeTrade": (
        (c.CloseTrade,),
        _union(
            TRADE_FACT,
            OPEN_TRADE,
            _codes(
                {
                    409: [E.ALREADY_PAID, E.ALREADY_SHIPPED, E.REFUND_OPEN],
                    422: [E.RESERVED_CLOSE_REASON],
                }
            ),
        ),
    ),
    "requestRefund": (
        (c.RequestRefund,),
        _union(
            TRADE_FACT,
            OPEN_TRADE,
            _codes(
                {
                    409: [
                        E.NOT_PAID,
                        E.NOT_SHIPPED,
                        E.REFUND_EXCEEDS_ESCROW,
                        E.REFUND_EXISTS,
                        E.REFUND_OPEN,
                    ],
                }
            ),
        ),
    ),
    "takeRefundStep": (
        (c.AgreeRefund, c.RejectRefund, c.ShipReturn, c.ConfirmReturnReceipt, c.CancelRefund),
        _union(
            TRADE_FACT,
            OPEN_TRADE,
            REFUND_STEP,
            _codes({409: [E.REFUND_NOT_PENDING, E.RETURN_NOT_EXPECTED, E.REFUND_NOT_CANCELLABLE]}),
        ),
    ),
    "escalateDispute": (
        (c.EscalateDispute,),
        _union(
            TRADE_FACT,
            OPEN_TRADE,
            REFUND_STEP,
            _codes({409: [E.DISPUTE_EXISTS, E.NO_REJECTED_REFUND]}),
        ),
    ),
    "ruleDispute": (
        (c.RuleDispute,),
        _union(TRADE_FACT, OPEN_TRADE, _codes({409: [E.NO_DISPUTE, E.DISPUTE_ALREADY_RULED]})),
    ),
    "giveRating": (
        (c.GiveRating,),
        _union(
            TRADE_FACT,
            _codes(
                {
                    409: [
                        E.NOT_SUCCEEDED,
                        E.NOT_THAT_PARTY,
                        E.RATING_WINDOW_CLOSED,
                        E.ALREADY_RATED,
                    ],
                    422: [E.DSR_FROM_SELLER],
                }
            ),
        ),
    ),
    "reviseRating": (
        (c.ReviseRating,),
        _union(
            TRADE_FACT,
            RATING_FACT,
            _codes({409: [E.RATING_FINAL, E.ALREADY_REVISED, E.REVISION_WINDOW_CLOSED]}),
        ),
    ),
    "withdrawRating": (
        (c.WithdrawRating,),
        _union(
            TRADE_FACT,
            RATING_FACT,
            _codes({409: [E.RATING_FINAL, E.ALREADY_REVISED, E.REVISION_WINDOW_CLOSED]}),
        ),
    ),
    "explainRating": (
        (c.ExplainRating,),
        _union(
            TRADE_FACT,
            RATING_FACT,
            _codes({409: [E.ALREADY_EXPLAINED, E.EXPLANATION_WINDOW_CLOSED]}),
        ),
    ),
    "reviewFollowUp": (
        (c.ReviewFollowUp,),
        _union(
            TRADE_FACT,
            _codes(
                {
                    409: [
                        E.NOT_THAT_PARTY,
                        E.NO_BUYER_RATING,
                        E.ALREADY_FOLLOWED_UP,
                        E.FOLLOW_UP_WINDOW_CLOSED,
                    ],
                    422: [E.FOLLOW_UP_BUYER_ONLY],
                }
            ),
        ),
    ),
    "shieldRating": (
        (c.ShieldRating,),
        _union(TRADE_FACT, RATING_FACT, _codes({409: [E.ALREADY_SHIELDED]})),
    ),
    "fileComplaint": (
        (c.FileComplaint,),
        _union(TRADE_FACT, _codes({409: [E.NOT_THAT_PARTY, E.COMPLAINT_EXISTS]})),
    ),
    "escalateComplaint": (
        (c.EscalateComplaint,),
        _union(COMPLAINT_FACT, _codes({409: [E.ALREADY_ESCALATED]})),
    ),
    "recordComplaintFollowUp": ((c.RecordComplaintFollowUp,), COMPLAINT_FACT),
    "payCompensation": ((c.PayCompensation,), COMPLAINT_FACT),
    "ruleComplaint": ((c.RuleComplaint,), COMPLAINT_FACT),
    "recordViolation": (
        (c.RecordViolation,),
        _union(SELLER_FACT, _codes({409: [E.VIOLATION_EXISTS]})),
    ),
    "confirmFakeTrades": (
        (c.ConfirmFakeTrades,),
        _union(
            SELLER_FACT,
            _codes(
                {
                    404: [E.UNKNOWN_TRADE],
                    409: [E.CASE_EXISTS, E.TRADE_OF_OTHER_SELLER, E.TRADE_ALREADY_FAKE],
                }
            ),
        ),
    ),
    "recordSearchCheating": (
        (c.RecordSearchCheating,),
        _union(SELLER_FACT, _codes({409: [E.CASE_EXISTS]})),
    ),
    "getCredit": ((), MEMBER_FIGURE),
    "explainCredit": ((), MEMBER_FIGURE),
    "getSellerDsr": ((), MEMBER_FIGURE),
    "getSellerViolations": ((), MEMBER_FIGURE),
    "getBuyerHistory": ((), MEMBER_FIGURE),
    "getSellerPenalty": ((), MEMBER_FIGURE),
    "getCreditSeries": ((), MEMBER_FIGURE),
    "getSellerDsrSeries": ((), MEMBER_FIGURE),
    "getSellerPenaltySeries": ((), MEMBER_FIGURE),
    "getSellerViolationsSeries": ((), MEMBER_FIGURE),
    "getSellerLevel": ((), MEMBER_FIGURE),
    "listSellerTrades": ((), MEMBER_FIGURE),
    "listBuyerTrades": ((), MEMBER_FIGURE),
    "listSellerComplaints": ((), MEMBER_FIGURE),
    "listSellerRefunds": ((), MEMBER_FIGURE),
    "replayMember": ((), MEMBER_FIGURE),
    "getTrade": ((), _codes({404: [E.UNKNOWN_TRADE]})),
    "getPenalties": ((), BATCH),
    "getCreditBatch": ((), BATCH),
    "getDsrBatch": ((), BATCH),
    "getTreeHead": ((), SIGNED),
    "getPublicKey": ((), SIGNED),
    "getInclusionProof": ((), PROOF),
    "getConsistencyProof": ((), PROOF),
    "getReadiness": ((), _codes({503: ["not_ready"]})),
    "runDeadlines": ((), _codes({422: [E.FUTURE_TIMESTAMP]})),
}


def refusals(operation: dict[str, Any], body_fields: Iterable[str]) -> Codes:
    """Every code an operation may answer, by status."""
    own = OWN.get(operation["operationId"], ((), {}))
    parts = [EVERY_CALL, own[1]]
    if own[0]:
        parts.append(EVERY_APPEND)
    taken = {p["name"] for p in operation.get("parameters", [])} | set(body_fields)
    parts += [codes for name, codes in BY_PARAMETER.items() if name in taken]
    return _union(*parts)


def codes_of_command(command_type: type[c.Command]) -> frozenset[str]:
    """What the operation that decides this command may answer, all statuses."""
    for commands, codes in OWN.values():
        if command_type in commands:
            return frozenset().union(*_union(EVERY_CALL, EVERY_APPEND, codes).values())
    raise LookupError(f"no operation decides {command_type.__name__}")


def with_refusals(document: dict[str, Any]) -> dict[str, Any]:
    """Each operation's problem responses with the codes it may answer there;
    a status it never answers with a problem is not listed for it."""
    models = document["components"]["schemas"]
    for operations in document["paths"].values():
        for operation in operations.values():
            codes = refusals(operation, _body_fields(operation, models))
            for status, response in list(operation["responses"].items()):
                media = response.get("content", {}).get(PROBLEM_JSON)
                if media is None:
                    continue
                named = codes.get(int(status))
                if not named:
                    del operation["responses"][status]
                    continue
                media["schema"] = {
                    "allOf": [PROBLEM_REF, {"properties": {"code": {"enum": sorted(named)}}}]
                }
    return document


def _body_fields(operation: dict[str, Any], models: dict[str, Any]) -> set[str]:
    media = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    reference = media.get("schema", {}).get("$ref", "")
    return set(models.get(reference.rsplit("/", 1)[-1], {}).get("properties", {}))
