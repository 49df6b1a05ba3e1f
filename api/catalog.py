"""Every operation of the HTTP API: its stable ``operationId`` and who calls it.

The OpenAPI document takes each operation's id and tag from here, its summary
from the first sentence of the route's docstring and its description from
the whole docstring (``describe``). Building the document fails for a route
missing here, so no operation goes out unnamed; clients name their methods
after these ids, which therefore never change once published.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any


class Audience(StrEnum):
    """Who calls an operation: the OpenAPI tags."""

    PLATFORM = "platform services"
    RANKING = "ranking engine"
    AUDITORS = "auditors"
    OPERATIONS = "operations"


TAGS = [
    {
        "name": Audience.PLATFORM,
        "description": "Order, payment, customer-service and risk systems: they append facts "
        "(role service) and read members' figures (role reader).",
    },
    {
        "name": Audience.RANKING,
        "description": "The search-ranking engine: sellers' penalties, one, many at once, "
        "or as a change feed (role ranking).",
    },
    {
        "name": Audience.AUDITORS,
        "description": "The log itself, replays and the proofs that nothing was altered "
        "(role auditor).",
    },
    {
        "name": Audience.OPERATIONS,
        "description": "Health, readiness, metrics and the deadline worker.",
    },
]

PLATFORM, RANKING, AUDITORS, OPS = (
    Audience.PLATFORM,
    Audience.RANKING,
    Audience.AUDITORS,
    Audience.OPERATIONS,
)
TRADE = "/v1/trades/{trade_id}"
RATING = TRADE + "/ratings/{rater}"
COMPLAINT = "/v1/complaints/{complaint_id}"
SELLER = "/v1/sellers/{seller_id}"

OPERATIONS: dict[tuple[str, str], tuple[str, Audience]] = {
    ("post", "/v1/members"): ("registerMember", PLATFORM),
    ("post", "/v1/members/{member_id}/verification"): ("verifyIdentity", PLATFORM),
    ("post", "/v1/trades"): ("createTrade", PLATFORM),
    ("post", TRADE + "/payment"): ("payIntoEscrow", PLATFORM),
    ("post", TRADE + "/shipment"): ("shipTrade", PLATFORM),
    ("post", TRADE + "/receipt"): ("confirmReceipt", PLATFORM),
    ("post", TRADE + "/timer-extension"): ("extendConfirmTimer", PLATFORM),
    ("post", TRADE + "/close"): ("closeTrade", PLATFORM),
    ("post", TRADE + "/refunds"): ("requestRefund", PLATFORM),
    ("post", TRADE + "/refunds/{refund_id}/{step}"): ("takeRefundStep", PLATFORM),
    ("post", TRADE + "/dispute"): ("escalateDispute", PLATFORM),
    ("post", TRADE + "/dispute/ruling"): ("ruleDispute", PLATFORM),
    ("post", TRADE + "/ratings"): ("giveRating", PLATFORM),
    ("post", RATING + "/revision"): ("reviseRating", PLATFORM),
    ("post", RATING + "/withdrawal"): ("withdrawRating", PLATFORM),
    ("post", RATING + "/explanation"): ("explainRating", PLATFORM),
    ("post", RATING + "/follow-up"): ("reviewFollowUp", PLATFORM),
    ("post", RATING + "/shielding"): ("shieldRating", PLATFORM),
    ("post", "/v1/complaints"): ("fileComplaint", PLATFORM),
    ("post", COMPLAINT + "/escalation"): ("escalateComplaint", PLATFORM),
    ("post", COMPLAINT + "/follow-up"): ("recordComplaintFollowUp", PLATFORM),
    ("post", COMPLAINT + "/compensation"): ("payCompensation", PLATFORM),
    ("post", COMPLAINT + "/ruling"): ("ruleComplaint", PLATFORM),
    ("post", SELLER + "/violations"): ("recordViolation", PLATFORM),
    ("post", SELLER + "/fake-trades"): ("confirmFakeTrades", PLATFORM),
    ("post", SELLER + "/search-cheating"): ("recordSearchCheating", PLATFORM),
    ("get", "/v1/rulebooks"): ("listRulebooks", PLATFORM),
    ("get", "/v1/members/{member_id}/credit"): ("getCredit", PLATFORM),
    ("get", "/v1/members/{member_id}/credit/explanation"): ("explainCredit", PLATFORM),
    ("get", SELLER + "/dsr"): ("getSellerDsr", PLATFORM),
    ("get", SELLER + "/violations"): ("getSellerViolations", PLATFORM),
    ("get", "/v1/buyers/{buyer_id}/history"): ("getBuyerHistory", PLATFORM),
    ("get", "/v1/trades/{trade_id}"): ("getTrade", PLATFORM),
    ("get", SELLER + "/trades"): ("listSellerTrades", PLATFORM),
    ("get", "/v1/buyers/{buyer_id}/trades"): ("listBuyerTrades", PLATFORM),
    ("get", SELLER + "/complaints"): ("listSellerComplaints", PLATFORM),
    ("get", SELLER + "/refunds"): ("listSellerRefunds", PLATFORM),
    ("post", "/v1/credit/batch"): ("getCreditBatch", PLATFORM),
    ("post", "/v1/dsr/batch"): ("getDsrBatch", PLATFORM),
    ("get", SELLER + "/penalty"): ("getSellerPenalty", RANKING),
    ("post", "/v1/penalties/batch"): ("getPenalties", RANKING),
    ("get", "/v1/penalties/changes"): ("followPenaltyChanges", RANKING),
    ("get", "/v1/log"): ("readLog", AUDITORS),
    ("get", "/v1/replay"): ("replayMember", AUDITORS),
    ("get", "/v1/audit/tree-head"): ("getTreeHead", AUDITORS),
    ("get", "/v1/audit/inclusion"): ("getInclusionProof", AUDITORS),
    ("get", "/v1/audit/consistency"): ("getConsistencyProof", AUDITORS),
    ("get", "/v1/audit/public-key"): ("getPublicKey", AUDITORS),
    ("get", "/healthz"): ("getHealth", OPS),
    ("get", "/readyz"): ("getReadiness", OPS),
    ("get", "/metrics"): ("getMetrics", OPS),
    ("post", "/v1/ping"): ("ping", OPS),
    ("post", "/v1/deadlines/run"): ("runDeadlines", OPS),
}

_SENTENCE_END = re.compile(r"(?<=[.;:])\s")


def describe(document: dict[str, Any]) -> dict[str, Any]:
    """The document with every operation's id, tag and summary set from here."""
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            known = OPERATIONS.get((method, path))
            if known is None:
                raise LookupError(f"{method.upper()} {path} has no entry in api.catalog")
            operation["operationId"], audience = known
            operation["tags"] = [str(audience)]
            description = operation.get("description", "")
            if not description:
                raise LookupError(f"{method.upper()} {path} has no docstring")
            first = " ".join(description.split("\n\n", 1)[0].split())
            operation["summary"] = _SENTENCE_END.split(first, 1)[0].rstrip(".:;")
    document["tags"] = TAGS
    return document
