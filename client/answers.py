"""The answers the client returns: the very msgspec Structs the server encodes
(``api.answers`` and the figures it serves), and the few shapes only the
client needs (a log line, the public key, the penalty batch)."""

from __future__ import annotations

from typing import Any

import msgspec

from api.answers import (
    BuyerHistoryAnswer,
    CallerAnswer,
    CreditAnswer,
    CreditExplanationAnswer,
    CreditPoint,
    CreditSeriesAnswer,
    DsrAnswer,
    DsrPoint,
    DsrSeriesAnswer,
    LevelShift,
    MultiplierChange,
    OperationsStatusAnswer,
    PenaltyAnswer,
    PenaltyPoint,
    PenaltySeriesAnswer,
    RulebookAnswer,
    RulebooksAnswer,
    SellerLevelAnswer,
    UnknownMember,
    ViolationsAnswer,
    ViolationsSeriesAnswer,
    WhatIfAnswer,
)
from ledger.deadlines import DeadlineRun
from ledger.trade_record import TradeRecord
from ledger.tree_head import TreeHead
from projections.log_tree import ConsistencyProof, InclusionProof, TreeHeadPage
from projections.penalty_feed import PenaltyChange
from projections.queries import UnknownSeller
from projections.seller_cases import ComplaintPage, RefundPage
from projections.trade_lists import TradePage
from projections.whatif import LevelMove

__all__ = [
    "Appended",
    "BuyerHistoryAnswer",
    "CallerAnswer",
    "ComplaintPage",
    "ConsistencyProof",
    "CreditAnswer",
    "CreditBatch",
    "CreditExplanationAnswer",
    "CreditPoint",
    "CreditSeriesAnswer",
    "DeadlineRun",
    "DsrAnswer",
    "DsrBatch",
    "DsrPoint",
    "DsrSeriesAnswer",
    "InclusionProof",
    "LevelMove",
    "LevelShift",
    "LogEvent",
    "MultiplierChange",
    "OperationsStatusAnswer",
    "PenaltyAnswer",
    "PenaltyBatch",
    "PenaltyChange",
    "PenaltyPoint",
    "PenaltySeriesAnswer",
    "PublicKey",
    "RefundPage",
    "RulebookAnswer",
    "RulebooksAnswer",
    "SellerLevelAnswer",
    "TradePage",
    "TradeRecord",
    "TreeHead",
    "TreeHeadPage",
    "UnknownMember",
    "UnknownSeller",
    "ViolationsAnswer",
    "ViolationsSeriesAnswer",
    "WhatIfAnswer",
]


class Appended(msgspec.Struct, frozen=True):
    """The log positions an append wrote (or, ``replayed``, wrote the first time)."""

    positions: tuple[int, ...]
    replayed: bool = False


class LogEvent(msgspec.Struct, frozen=True):
    """One event of the log; ``body`` holds the stored bytes as they are hashed."""

    position: int
    originator_id: str
    originator_version: int
    topic: str
    occurred_at: str | None
    recorded_at: str | None
    body: msgspec.Raw


class PublicKey(msgspec.Struct, frozen=True):
    algorithm: str
    key_id: str
    public_key_pem: str


class PenaltyBatch(msgspec.Struct, frozen=True):
    """A penalty, or ``UnknownSeller``, for each seller asked, in order."""

    penalties: tuple[PenaltyAnswer | UnknownSeller, ...]


class CreditBatch(msgspec.Struct, frozen=True):
    """A credit, or ``UnknownMember``, for each member asked, in order."""

    credits: tuple[CreditAnswer | UnknownMember, ...]


class DsrBatch(msgspec.Struct, frozen=True):
    """Shop scores, or ``UnknownMember``, for each seller asked, in order."""

    shop_scores: tuple[DsrAnswer | UnknownMember, ...]


def _entries(content: bytes, member: str, known: type[Any], unknown: type[Any]) -> list[Any]:
    """A batch's entries: two shapes, told apart by ``unknown``."""
    entries = []
    for raw in msgspec.json.decode(content, type=dict[str, list[msgspec.Raw]])[member]:
        decoded: Any = msgspec.json.decode(raw)
        entries.append(msgspec.json.decode(raw, type=unknown if decoded.get("unknown") else known))
    return entries


def penalty_batch(content: bytes) -> PenaltyBatch:
    return PenaltyBatch(tuple(_entries(content, "penalties", PenaltyAnswer, UnknownSeller)))


def credit_batch(content: bytes) -> CreditBatch:
    return CreditBatch(tuple(_entries(content, "credits", CreditAnswer, UnknownMember)))


def dsr_batch(content: bytes) -> DsrBatch:
    return DsrBatch(tuple(_entries(content, "shop_scores", DsrAnswer, UnknownMember)))
