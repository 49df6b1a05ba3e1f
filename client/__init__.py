"""A typed Python client for TrustLedger's HTTP API, synchronous and asynchronous.

::

    from client import TrustLedger
    from ledger.commands import CreateTrade

    with TrustLedger("http://127.0.0.1:8000", api_key) as ledger:
        ledger.create_trade(CreateTrade(trade_id="t-1", ...))
        credit = ledger.get_credit("s-1")  # reflects the trade: read-your-writes

Commands are the ledger's own command Structs (``ledger.commands``); answers
are the msgspec Structs the server encodes (``client.answers``); refusals are
``client.errors.ProblemError`` subclasses carrying the server's ``code``.
"""

from client.asynchronous import AsyncTrustLedger
from client.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ProblemError,
    TooLarge,
    TooManyRequests,
    TrustLedgerError,
    Unauthenticated,
    Unavailable,
    Unreachable,
)
from client.sync import TrustLedger

__all__ = [
    "AsyncTrustLedger",
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "ProblemError",
    "TooLarge",
    "TooManyRequests",
    "TrustLedger",
    "TrustLedgerError",
    "Unauthenticated",
    "Unavailable",
    "Unreachable",
]
