"""Every operation of the HTTP API: its stable ``operationId`` and who calls it.

The OpenAPI document takes each operation's id and tag from here, its summary
from the first sentence of the route's docstring and its description from
the whole docstring (``describe``). Building the document fails for a route
missing here, so no operation goes out unnamed; clients name their methods
after these ids, which therefore never change once published.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from typing import Any, NamedTuple

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from api.auth import Role


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
        "description": "The log itself, replays, the proofs that nothing was altered and "
        "what a rulebook change would do to every seller (role auditor).",
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
    ("get", "/v1/rulebooks/{rulebook}"): ("getRulebook", PLATFORM),
    ("get", "/v1/members/{member_id}/credit"): ("getCredit", PLATFORM),
    ("get", "/v1/members/{member_id}/credit/explanation"): ("explainCredit", PLATFORM),
    ("get", "/v1/members/{member_id}/credit/series"): ("getCreditSeries", PLATFORM),
    ("get", SELLER + "/dsr"): ("getSellerDsr", PLATFORM),
    ("get", SELLER + "/dsr/series"): ("getSellerDsrSeries", PLATFORM),
    ("get", SELLER + "/violations"): ("getSellerViolations", PLATFORM),
    ("get", SELLER + "/violations/series"): ("getSellerViolationsSeries", PLATFORM),
    ("get", SELLER + "/level"): ("getSellerLevel", PLATFORM),
    ("get", "/v1/buyers/{buyer_id}/history"): ("getBuyerHistory", PLATFORM),
    ("get", "/v1/trades/{trade_id}"): ("getTrade", PLATFORM),
    ("get", SELLER + "/trades"): ("listSellerTrades", PLATFORM),
    ("get", "/v1/buyers/{buyer_id}/trades"): ("listBuyerTrades", PLATFORM),
    ("get", SELLER + "/complaints"): ("listSellerComplaints", PLATFORM),
    ("get", SELLER + "/refunds"): ("listSellerRefunds", PLATFORM),
    ("post", "/v1/credit/batch"): ("getCreditBatch", PLATFORM),
    ("post", "/v1/dsr/batch"): ("getDsrBatch", PLATFORM),
    ("get", SELLER + "/penalty"): ("getSellerPenalty", RANKING),
    ("get", SELLER + "/penalty/series"): ("getSellerPenaltySeries", RANKING),
    ("post", "/v1/penalties/batch"): ("getPenalties", RANKING),
    ("get", "/v1/penalties/changes"): ("followPenaltyChanges", RANKING),
    ("get", "/v1/log"): ("readLog", AUDITORS),
    ("get", "/v1/replay"): ("replayMember", AUDITORS),
    ("get", "/v1/audit/tree-head"): ("getTreeHead", AUDITORS),
    ("get", "/v1/audit/tree-heads"): ("listTreeHeads", AUDITORS),
    ("get", "/v1/audit/inclusion"): ("getInclusionProof", AUDITORS),
    ("get", "/v1/audit/consistency"): ("getConsistencyProof", AUDITORS),
    ("get", "/v1/audit/public-key"): ("getPublicKey", AUDITORS),
    ("get", "/v1/whatif"): ("compareRulebooks", AUDITORS),
    ("get", "/healthz"): ("getHealth", OPS),
    ("get", "/readyz"): ("getReadiness", OPS),
    ("get", "/metrics"): ("getMetrics", OPS),
    ("post", "/v1/ping"): ("ping", OPS),
    ("get", "/v1/me"): ("getCaller", OPS),
    ("get", "/v1/operations/status"): ("getOperationsStatus", OPS),
    ("post", "/v1/deadlines/run"): ("runDeadlines", OPS),
}

# Where an appended fact's id is used next: each creating operation's 201
# answer links to the operations that take that id, so a reader (or a
# stateful tester) can follow a trade from its creation through its life.
# A link's values are runtime expressions over the creating request.
MEMBER = "$request.body#/member_id"
NEW_TRADE = "$request.body#/trade_id"
TRADE_OPERATIONS = (
    "getTrade", "payIntoEscrow", "shipTrade", "confirmReceipt", "extendConfirmTimer",
    "closeTrade", "requestRefund", "escalateDispute", "ruleDispute", "giveRating",
    "reviseRating", "withdrawRating", "explainRating", "reviewFollowUp", "shieldRating",
)  # fmt: skip
COMPLAINT_OPERATIONS = (
    "escalateComplaint", "recordComplaintFollowUp", "payCompensation", "ruleComplaint",
)  # fmt: skip
SELLER_OPERATIONS = (
    "getSellerPenalty", "getSellerDsr", "getSellerViolations", "listSellerTrades",
    "listSellerComplaints", "listSellerRefunds", "recordViolation", "confirmFakeTrades",
    "recordSearchCheating",
)  # fmt: skip


class Link(NamedTuple):
    target: str  # the operationId it leads to
    parameters: dict[str, str] = {}
    request_body: dict[str, str] | None = None


LINKS: dict[str, list[Link]] = {
    "registerMember": [
        Link("createTrade", request_body={"seller_id": MEMBER}),
        Link("createTrade", request_body={"buyer_id": MEMBER}),
        Link("verifyIdentity", {"member_id": MEMBER}),
        Link("getCredit", {"member_id": MEMBER}),
        Link("getBuyerHistory", {"buyer_id": MEMBER}),
        Link("listBuyerTrades", {"buyer_id": MEMBER}),
        *(Link(target, {"seller_id": MEMBER}) for target in SELLER_OPERATIONS),
    ],
    "createTrade": [
        *(Link(target, {"trade_id": NEW_TRADE}) for target in TRADE_OPERATIONS),
        Link("fileComplaint", request_body={"trade_id": NEW_TRADE}),
        Link("listSellerTrades", {"seller_id": "$request.body#/seller_id"}),
        Link("listBuyerTrades", {"buyer_id": "$request.body#/buyer_id"}),
    ],
    "requestRefund": [
        Link(
            "takeRefundStep",
            {"trade_id": "$request.path.trade_id", "refund_id": "$request.body#/refund_id"},
        ),
        Link(
            "escalateDispute",
            {"trade_id": "$request.path.trade_id"},
            request_body={"refund_id": "$request.body#/refund_id"},
        ),
    ],
    "fileComplaint": [
        *(
            Link(target, {"complaint_id": "$request.body#/complaint_id"})
            for target in COMPLAINT_OPERATIONS
        ),
        Link("getTrade", {"trade_id": "$request.body#/trade_id"}),
    ],
    "recordViolation": [Link("getSellerViolations", {"seller_id": "$request.path.seller_id"})],
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


def with_roles(document: dict[str, Any], routes: Iterable[APIRoute]) -> dict[str, Any]:
    """Each operation's security as the roles whose keys may call it, one
    bearer scheme per role, the usual caller's role first."""
    document["components"]["securitySchemes"] = {
        str(role): {
            "type": "http",
            "scheme": "bearer",
            "description": f"an API key of role {role}: Authorization: Bearer tl_<id>_<secret>",
        }
        for role in Role
    }
    for route in routes:
        roles = _roles(route.dependant)
        for method in route.methods or ():
            operation = document["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            if roles:
                ordered = [role for role in Role if role in roles]
                operation["security"] = [{str(role): []} for role in ordered]
            else:
                operation.pop("security", None)
    return document


def _roles(dependant: Dependant) -> frozenset[Role]:
    """The roles the route's ``require`` dependency admits (none: open to all)."""
    for dependency in dependant.dependencies:
        roles = getattr(dependency.call, "roles", None)
        if roles is not None:
            return frozenset(roles)
        found = _roles(dependency)
        if found:
            return found
    return frozenset()


def by_operation_id(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The document's operations by their ``operationId``."""
    return {
        operation["operationId"]: operation
        for operations in document["paths"].values()
        for operation in operations.values()
    }


def with_links(document: dict[str, Any]) -> dict[str, Any]:
    """Each creating operation's 201 answer with its links (``LINKS``)."""
    by_id = by_operation_id(document)
    for source, links in LINKS.items():
        answer = by_id[source]["responses"]["201"]
        answer["links"] = {}
        for link in links:
            if link.target not in by_id:
                raise LookupError(f"{source} links to {link.target}, which is no operation")
            name = link.target[0].upper() + link.target[1:]
            if link.request_body is not None:
                name += "With" + "".join(part.title() for part in link.request_body)
                name = name.replace("_", "")
            definition: dict[str, Any] = {"operationId": link.target}
            if link.parameters:
                definition["parameters"] = dict(link.parameters)
            if link.request_body is not None:
                definition["requestBody"] = dict(link.request_body)
            answer["links"][name] = definition
    return document
