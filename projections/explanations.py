"""A member's credit explained page by page: every rating received, in order of
order creation, with its points or the first rule that excluded it.

A page costs its own ratings, not the member's history. The trades after the
cursor are read in creation order (an index on the member and the creation
time), and each rating on them is judged within its cap group's unit
(``credit_steps.unit_of``: the rater's ratings of that cap period and the
earlier ratings of their item chains), which ``credit.verdicts`` judges exactly
as it judges the member's whole file (every rule of docs/rules.md §3 looks no
further). The cut is any: as of a business time, at a log position, or both.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

import msgspec

from ledger.events import Party
from projections.credit import Counted, RatingRecord, cap_period_bounds, rating_record, verdicts
from projections.credit_steps import by_cap_group, cap_group, unit_of
from projections.marketplace import Cut, TradeFacts
from projections.rulebook import Rulebook
from projections.steps import grouped
from projections.timeline import micros

EXPLANATION_PAGE_DEFAULT = 100
EXPLANATION_PAGE_MAX = 1_000
# Trades read per round while a page fills (trades without a rating are passed
# over), and rounds per page: a page reads at most 10,000 trades, then ends
# early with a cursor to go on from.
TRADES_PER_ROUND = 200
ROUNDS_PER_PAGE_MAX = 50
# A pair's span of trades is widened at most this many times, doubling.
PAIR_SPAN_ROUNDS_MAX = 40

Pair = tuple[str, str]
Span = tuple[datetime, datetime]
OrderKey = tuple[int, str]  # creation time in microseconds, trade id


class BadCursorError(ValueError):
    """A cursor this ledger did not hand out."""


class TradesInOrder(Protocol):
    def trades_after(
        self, member_id: str, role: Party, after: OrderKey | None, limit: int
    ) -> list[TradeFacts]:
        """The member's trades in the role, in creation order after ``after``."""
        ...

    def pairs_trades(self, spans: Mapping[Pair, Span]) -> dict[Pair, list[TradeFacts]]: ...


class ExplanationPage(msgspec.Struct, frozen=True):
    ratings: tuple[Counted, ...]
    next_cursor: str | None


def credit_page(
    view: TradesInOrder,
    member_id: str,
    role: Party,
    cut: Cut,
    rulebook: Rulebook,
    *,
    cursor: str | None = None,
    limit: int = EXPLANATION_PAGE_DEFAULT,
) -> ExplanationPage:
    """The ratings the member received in ``role`` after the cursor, at most ``limit``."""
    if not 1 <= limit <= EXPLANATION_PAGE_MAX:
        raise ValueError(f"limit must be 1 to {EXPLANATION_PAGE_MAX}")
    rater: Party = "buyer" if role == "seller" else "seller"
    after = decode_cursor(cursor) if cursor is not None else None
    page: list[RatingRecord] = []
    more = True  # a full page, or one cut short by the round limit, may have a next
    for _ in range(ROUNDS_PER_PAGE_MAX):
        trades = view.trades_after(member_id, role, after, TRADES_PER_ROUND)
        for trade in trades:
            after = (micros(trade.created.at), trade.trade_id)
            record = rating_record(trade, rater, cut, rulebook.scoring)
            if record is not None:
                page.append(record)
                if len(page) == limit:
                    break
        if len(page) == limit:
            break
        if len(trades) < TRADES_PER_ROUND:
            more = False
            break
    judged = _judged(view, page, cut, rulebook)
    ratings = tuple(judged[(record.trade_id, record.rater)] for record in page)
    return ExplanationPage(ratings, encode_cursor(after) if more and after else None)


# What a cursor looks like: URL-safe base64 without padding. Only one handed
# out by a page decodes to a place in the order.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"


def encode_cursor(after: OrderKey) -> str:
    text = f"{after[0]}:{after[1]}".encode()
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


def decode_cursor(cursor: str) -> OrderKey:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_us, trade_id = text.split(":", 1)
        return int(created_us), trade_id
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise BadCursorError(f"cursor {cursor!r} was not handed out by this ledger") from error


def _judged(
    view: TradesInOrder, page: Sequence[RatingRecord], cut: Cut, rulebook: Rulebook
) -> dict[tuple[str, Party], Counted]:
    """Each page rating's verdict, judged within its cap group's unit."""
    scoring = rulebook.scoring
    judged: dict[tuple[str, Party], Counted] = {}
    for pair, records in grouped(page, _pair_of).items():
        pair_records = _pair_records(view, pair, records, cut, rulebook)
        groups = by_cap_group(pair_records, scoring)
        for group in {cap_group(record, scoring) for record in records}:
            unit = unit_of(groups.get(group, []), pair_records, scoring)
            found = verdicts(
                unit, cut.as_of, scoring, minor_per_major=rulebook.policy.minor_per_major
            )
            judged.update(((c.record.trade_id, c.record.rater), c) for c in found)
    return judged


def _pair_of(record: RatingRecord) -> Pair:
    """(seller, buyer) of the trade a rating is on."""
    if record.rater == "buyer":
        return (record.ratee_id, record.rater_id)
    return (record.rater_id, record.ratee_id)


def _pair_records(
    view: TradesInOrder,
    pair: Pair,
    records: Iterable[RatingRecord],
    cut: Cut,
    rulebook: Rulebook,
) -> list[RatingRecord]:
    """The pair's ratings by the page's rater, in the page's cap periods and as
    far back as their item chains reach."""
    scoring = rulebook.scoring
    records = list(records)
    rater = records[0].rater
    span = timedelta(days=scoring.credit.same_item_group_days)
    bounds = [cap_period_bounds(r.order_created_at, scoring) for r in records]
    start, end = min(b[0] for b in bounds) - span, max(b[1] for b in bounds)
    widen = span
    for _ in range(PAIR_SPAN_ROUNDS_MAX):
        trades = view.pairs_trades({pair: (start, end)}).get(pair, [])
        found = (rating_record(trade, rater, cut, scoring) for trade in trades)
        pair_records = [record for record in found if record is not None]
        groups = {cap_group(record, scoring) for record in records}
        members = [r for r in pair_records if cap_group(r, scoring) in groups]
        reach = min(
            (r.order_created_at for r in unit_of(members, pair_records, scoring)), default=start
        )
        if reach - span >= start:
            return pair_records
        start = min(reach - span, start - widen)
        widen *= 2
    raise RuntimeError(f"the trades of pair {pair} did not settle")
