"""One marketplace story told by the OpenAPI document's examples.

Every operation has a named example, and each example's summary starts with
its step number: tried in that order on an empty ledger, every one succeeds.
A seller and a buyer join, a trade is paid, shipped, refunded in part by
dispute and confirmed, both parties rate it, the ratings are revised,
explained, followed up, withdrawn and shielded; a complaint is filed and
ruled, a second trade is closed unpaid and found fake, the seller is charged
a violation and a search-cheating case; then every query, the audit trail and
the operations' calls read what the story wrote. The ids are those of the
schema's field examples (``api.schemas.EXAMPLE_IDS``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from api.catalog import by_operation_id
from api.schemas import EXAMPLE_IDS

SELLER = EXAMPLE_IDS["seller_id"]
BUYER = EXAMPLE_IDS["buyer_id"]
TRADE = EXAMPLE_IDS["trade_id"]
UNPAID_TRADE = "t-40002"
ITEM = EXAMPLE_IDS["item_id"]
REFUND = EXAMPLE_IDS["refund_id"]
COMPLAINT = EXAMPLE_IDS["complaint_id"]
FAKE_TRADE_CASE = EXAMPLE_IDS["case_id"]
SEARCH_CHEATING_CASE = "k-90002"


class Example(NamedTuple):
    operation: str  # its operationId
    name: str
    summary: str
    path: dict[str, Any] = {}
    query: dict[str, Any] = {}
    body: dict[str, Any] | None = None


def _at(day: int, hour: int, minute: int = 0) -> str:
    return f"2026-11-{day:02d}T{hour:02d}:{minute:02d}:00Z"


# The story's month, a point at the end of each week and one at its end.
SERIES_WINDOW = {"from": _at(1, 0), "to": "2026-12-01T00:00:00Z", "step": "week"}

STORY: tuple[Example, ...] = (
    Example("registerMember", "seller", "The seller joins",
            body={"member_id": SELLER, "occurred_at": _at(1, 8)}),
    Example("registerMember", "buyer", "The buyer joins",
            body={"member_id": BUYER, "occurred_at": _at(1, 8, 5)}),
    Example("verifyIdentity", "seller", "The seller's identity is verified",
            path={"member_id": SELLER}, body={"occurred_at": _at(1, 9)}),
    Example("createTrade", "trade", "The buyer orders an item",
            body={"trade_id": TRADE, "buyer_id": BUYER, "seller_id": SELLER, "item_id": ITEM,
                  "amount_minor": 12_500, "currency": "CNY", "goods_kind": "physical",
                  "shipping": "express", "occurred_at": _at(2, 9, 30)}),
    Example("createTrade", "unpaid", "A second order, never paid",
            body={"trade_id": UNPAID_TRADE, "buyer_id": BUYER, "seller_id": SELLER,
                  "item_id": ITEM, "amount_minor": 8_000, "currency": "CNY",
                  "goods_kind": "physical", "shipping": "express", "occurred_at": _at(2, 10)}),
    Example("payIntoEscrow", "trade", "The buyer pays into escrow",
            path={"trade_id": TRADE}, body={"occurred_at": _at(2, 9, 35)}),
    Example("closeTrade", "unpaid", "The unpaid order is closed",
            path={"trade_id": UNPAID_TRADE}, body={"reason": "unpaid", "occurred_at": _at(3, 10)}),
    Example("shipTrade", "trade", "The seller ships",
            path={"trade_id": TRADE}, body={"occurred_at": _at(3, 10, 30)}),
    Example("extendConfirmTimer", "trade", "The buyer asks for three more days",
            path={"trade_id": TRADE}, body={"days": 3, "occurred_at": _at(4, 10)}),
    Example("requestRefund", "trade", "The buyer asks for part of the price back",
            path={"trade_id": TRADE},
            body={"refund_id": REFUND, "amount_minor": 2_000, "reason": "not_as_described",
                  "with_return": False, "occurred_at": _at(5, 9)}),
    Example("takeRefundStep", "reject", "The seller rejects the refund",
            path={"trade_id": TRADE, "refund_id": REFUND, "step": "reject"},
            body={"occurred_at": _at(5, 15)}),
    Example("escalateDispute", "trade", "The buyer asks the platform to rule",
            path={"trade_id": TRADE}, body={"refund_id": REFUND, "occurred_at": _at(6, 9)}),
    Example("ruleDispute", "trade", "The platform finds the seller not at fault",
            path={"trade_id": TRADE},
            body={"outcome": "not_seller_fault", "occurred_at": _at(7, 9)}),
    Example("confirmReceipt", "trade", "The buyer confirms receipt: the trade succeeds",
            path={"trade_id": TRADE}, body={"occurred_at": _at(8, 9)}),
    Example("giveRating", "buyer", "The buyer rates the seller neutral, with shop scores",
            path={"trade_id": TRADE},
            body={"rater": "buyer", "rater_id": BUYER, "score": "neutral",
                  "dsr": {"as_described": 4, "service": 3, "shipping_speed": 4, "logistics": 5},
                  "comment": "Arrived late, as described.", "occurred_at": _at(9, 9)}),
    Example("giveRating", "seller", "The seller rates the buyer neutral",
            path={"trade_id": TRADE},
            body={"rater": "seller", "rater_id": SELLER, "score": "neutral",
                  "occurred_at": _at(9, 9, 30)}),
    Example("explainRating", "seller", "The seller explains the buyer's rating",
            path={"trade_id": TRADE, "rater": "buyer"},
            body={"text": "A courier strike held the parcel two days.", "author_id": SELLER,
                  "occurred_at": _at(9, 12)}),
    Example("reviseRating", "buyer", "The buyer revises the rating to positive",
            path={"trade_id": TRADE, "rater": "buyer"},
            body={"score": "positive", "rater_id": BUYER, "occurred_at": _at(10, 9)}),
    Example("reviewFollowUp", "buyer", "The buyer adds a follow-up review",
            path={"trade_id": TRADE, "rater": "buyer"},
            body={"text": "Still working well a week on.", "author_id": BUYER,
                  "occurred_at": _at(11, 9)}),
    Example("withdrawRating", "seller", "The seller withdraws its rating of the buyer",
            path={"trade_id": TRADE, "rater": "seller"},
            body={"rater_id": SELLER, "occurred_at": _at(12, 9)}),
    Example("shieldRating", "buyer", "The platform shields the buyer's rating",
            path={"trade_id": TRADE, "rater": "buyer"},
            body={"reason": "personal data in the comment", "occurred_at": _at(12, 10)}),
    Example("fileComplaint", "trade", "The buyer complains of a late shipment",
            body={"complaint_id": COMPLAINT, "trade_id": TRADE, "type": "late_shipment",
                  "severity": "minor", "evidence": "Tracking shows four days idle.",
                  "filed_by": BUYER, "occurred_at": _at(13, 9)}),
    Example("escalateComplaint", "complaint", "The complaint goes to customer service",
            path={"complaint_id": COMPLAINT}, body={"occurred_at": _at(13, 12)}),
    Example("recordComplaintFollowUp", "complaint", "Customer service notes a call",
            path={"complaint_id": COMPLAINT},
            body={"text": "Called the seller; the courier confirms.", "occurred_at": _at(13, 15)}),
    Example("payCompensation", "complaint", "The seller apologises",
            path={"complaint_id": COMPLAINT}, body={"kind": "apology", "occurred_at": _at(14, 9)}),
    Example("ruleComplaint", "complaint", "The complaint is upheld",
            path={"complaint_id": COMPLAINT}, body={"outcome": "upheld", "occurred_at": _at(14, 12)}),
    Example("recordViolation", "seller", "The seller is charged a general violation",
            path={"seller_id": SELLER},
            body={"violation_id": EXAMPLE_IDS["violation_id"], "category": "general",
                  "points": 2, "reason": "misleading listing photos", "occurred_at": _at(15, 9)}),
    Example("confirmFakeTrades", "seller", "The unpaid order is found fake",
            path={"seller_id": SELLER},
            body={"case_id": FAKE_TRADE_CASE, "trade_ids": [UNPAID_TRADE],
                  "occurred_at": _at(15, 12)}),
    Example("recordSearchCheating", "seller", "The item's listing stuffed keywords",
            path={"seller_id": SELLER},
            body={"case_id": SEARCH_CHEATING_CASE, "item_ids": [ITEM],
                  "kind": "keyword_stuffing", "occurred_at": _at(16, 9)}),
    Example("runDeadlines", "story", "Every deadline due by the story's end fires",
            body={"now": _at(30, 0)}),
    Example("listRulebooks", "story", "The rulebooks a query may name"),
    Example("getRulebook", "story", "One rulebook whole", path={"rulebook": "taobao-classic"}),
    Example("getCredit", "seller", "The seller's credit", path={"member_id": SELLER}),
    Example("explainCredit", "seller", "The ratings behind it", path={"member_id": SELLER}),
    Example("getSellerDsr", "seller", "The seller's shop scores", path={"seller_id": SELLER}),
    Example("getCreditSeries", "seller", "The seller's credit week by week",
            path={"member_id": SELLER}, query=SERIES_WINDOW),
    Example("getSellerDsrSeries", "seller", "The seller's shop scores week by week",
            path={"seller_id": SELLER}, query=SERIES_WINDOW),
    Example("getSellerViolations", "seller", "The seller's violation points",
            path={"seller_id": SELLER}),
    Example("getSellerLevel", "seller", "The seller's level under the eBay-style rulebook",
            path={"seller_id": SELLER}, query={"rulebook": "ebay-style"}),
    Example("getSellerViolationsSeries", "seller", "The seller's violation points week by week",
            path={"seller_id": SELLER}, query=SERIES_WINDOW),
    Example("getBuyerHistory", "buyer", "The buyer's history and tier", path={"buyer_id": BUYER}),
    Example("getTrade", "trade", "The trade and its facts", path={"trade_id": TRADE}),
    Example("listSellerTrades", "seller", "The seller's trades", path={"seller_id": SELLER}),
    Example("listBuyerTrades", "buyer", "The buyer's trades", path={"buyer_id": BUYER}),
    Example("listSellerComplaints", "seller", "The complaints against the seller",
            path={"seller_id": SELLER}),
    Example("listSellerRefunds", "seller", "The refunds asked of the seller",
            path={"seller_id": SELLER}),
    Example("getCreditBatch", "story", "Both members' credit at once",
            body={"member_ids": [SELLER, BUYER], "role": "seller"}),
    Example("getDsrBatch", "story", "Shop scores of many sellers", body={"seller_ids": [SELLER]}),
    Example("getSellerPenalty", "seller", "The seller's search penalty",
            path={"seller_id": SELLER}),
    Example("getSellerPenaltySeries", "seller", "The seller's search penalty week by week",
            path={"seller_id": SELLER}, query=SERIES_WINDOW),
    Example("getPenalties", "story", "Penalties of many sellers", body={"seller_ids": [SELLER]}),
    Example("followPenaltyChanges", "story", "The penalty changes so far", query={"after": 0}),
    Example("readLog", "story", "The log from its start", query={"after": 0, "limit": 100}),
    Example("replayMember", "seller", "The seller's figures replayed from the log",
            query={"member_id": SELLER}),
    Example("getTreeHead", "story", "The latest signed tree head"),
    Example("listTreeHeads", "story", "The signed heads kept, newest first", query={"limit": 10}),
    Example("getInclusionProof", "story", "The first event's inclusion in a tree of two",
            query={"position": 1, "tree_size": 2}),
    Example("getConsistencyProof", "story", "A tree of one grown into a tree of two",
            query={"first": 1, "second": 2}),
    Example("getPublicKey", "story", "The key that signs tree heads"),
    Example("compareRulebooks", "story", "Every seller under the eBay-style rulebook",
            query={"rulebook": "ebay-style", "base": "taobao-classic"}),
    Example("getCaller", "story", "Whose key calls, and its role"),
    Example("getOperationsStatus", "story", "Lag, deadlines due, keys and refusals"),
    Example("ping", "story", "The service's key may append and its requests arrive",
            body={"order": "o-1"}),
    Example("getHealth", "story", "The process is up"),
    Example("getReadiness", "story", "The store answers"),
    Example("getMetrics", "story", "The metrics"),
)  # fmt: skip


def with_examples(document: dict[str, Any]) -> dict[str, Any]:
    """Each operation's parameters and body with the story's named examples."""
    by_id = by_operation_id(document)
    for step, example in enumerate(STORY, start=1):
        operation = by_id[example.operation]
        named = {"summary": f"{step}. {example.summary}"}
        values = {**example.path, **example.query}
        for parameter in operation.get("parameters", []):
            if parameter["name"] in values:
                examples = parameter.setdefault("examples", {})
                examples[example.name] = {**named, "value": values.pop(parameter["name"])}
        if values:
            raise LookupError(f"{example.operation} takes no parameter {sorted(values)}")
        if example.body is not None:
            media = operation["requestBody"]["content"]["application/json"]
            media.setdefault("examples", {})[example.name] = {**named, "value": example.body}
    return document
