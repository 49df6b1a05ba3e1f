"""Buyer history and tier as a sum of step changes, one step list per trade or complaint.

Why the figure splits into those groups. Every figure of ``buyer_history``
(docs/rules.md §5, README rule 20) counts or sums over the buyer's trades, and
judges each trade alone: whether it is known yet, fake, a purchase, refunded,
inside the tier's trailing window; its refunds paid, its dispute and ruling,
the buyer's rating on it and the seller's. Complaints filed are counted one by
one, whatever became of their trade. So the figures as of T are the sums, over
the buyer's trades and complaints, of what each adds as of T. Two figures are
not sums, and are derived at read time from sums: the share of negative
ratings given (negatives over ratings given) and the tier (the rulebook's tier
table applied to the window's purchases and net spend).

Why evaluating a group at its breakpoints is exact. For one trade, the
reference compares the as-of time only with the instants of the trade's facts,
with the instants its ratings show (worked out from those facts: at the rating
window's close, or once both sides have rated, perhaps after a delay) and with
the trade's success plus the tier window: a purchase is in the trailing window
as of T while ``T - N d < success <= T`` (docs/rules.md §0), so it enters at its
success and leaves at ``success + N d``, exclusive. Between two consecutive
breakpoints nothing the reference reads changes, so evaluating ``buyer_history``
on a file holding that one trade at each breakpoint, and recording what moved,
gives the trade's part at every instant. A complaint's breakpoints are its
filing and its ruling.

The component vector of a step is ``COMPONENTS``, integer sums and counts only:
trades, purchases, net spend, refunded amount, one refund count per reason of
``RefundReason`` (their total is the refund count), disputes, disputes won and
lost, complaints filed, upheld and dismissed, ratings given and the negative
ones among them, ratings received, fake trades, then the purchases of the tier
window and their net spend.

What the steps do not answer. They hold the figures as the log knows them now
(a ``Cut`` with no log position): an auditor's ``at_position`` question still
needs the reference. The figure has no per-fact list, so nothing is left out of
it; ``refund_reasons`` lists the reasons in the order of ``RefundReason``
rather than in the order the refunds were paid, which is the same mapping.

Cost. A new fact concerns one trade (a fake-trade case: each of its trades,
each its own group) or one complaint. Its group is evaluated again at each of
its breakpoints (one per fact of the trade, plus when its ratings show and
when it leaves the window), each a computation over that single trade: the
cost grows with the facts of one trade, never with the buyer's history.
Time passing costs nothing, since the window exit is a step placed in advance.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import get_args

from ledger.events import Party, RefundReason
from projections.buyers import BuyerHistory, buyer_history, tier_of
from projections.credit import rating_visible_at
from projections.marketplace import (
    ComplaintFacts,
    Cut,
    MemberFacts,
    MemberFile,
    Stamp,
    TradeFacts,
)
from projections.rulebook import Rulebook
from projections.steps import Step, steps_from_parts, sum_as_of
from projections.timeline import Vector

REFUND_REASONS: tuple[str, ...] = get_args(RefundReason)
COMPONENTS: tuple[str, ...] = (
    "trades",
    "purchases",
    "net_spend_minor",
    "refunded_minor",
    *(f"refunds_{reason}" for reason in REFUND_REASONS),
    "disputes",
    "disputes_won",
    "disputes_lost",
    "complaints_filed",
    "complaints_upheld",
    "complaints_dismissed",
    "ratings_given",
    "ratings_given_negative",
    "ratings_received",
    "fake_trades",
    "window_purchases",
    "window_net_spend_minor",
)
# The components the reference returns under their own name; the others are
# per-reason refund counts and the negatives among ratings given.
_PLAIN = tuple(name for name in COMPONENTS if name in BuyerHistory.__struct_fields__)
_KNOWN_REASONS = frozenset(REFUND_REASONS)
# Where each of COMPONENTS sits in the list ``_components`` gathers:
# the plain figures, the per-reason refund counts, the negatives given.
_GATHERED = (*_PLAIN, *(f"refunds_{reason}" for reason in REFUND_REASONS), "ratings_given_negative")
_ORDER = tuple(_GATHERED.index(name) for name in COMPONENTS)

Group = TradeFacts | ComplaintFacts


def groups_of(file: MemberFile) -> dict[str, Group]:
    """The buyer's step groups by key: each trade bought and each complaint filed."""
    trades: dict[str, Group] = {f"trade:{trade.trade_id}": trade for trade in file.as_buyer}
    complaints = {f"complaint:{c.complaint_id}": c for c in file.complaints_filed}
    return trades | complaints


def numbers_read(rulebook: Rulebook) -> tuple[object, ...]:
    """The rulebook's numbers a group's steps depend on: two rulebooks that agree
    on them give every group the same steps (the tier table is applied at read)."""
    scoring = rulebook.scoring
    return (scoring.buyer_tiers.window_days, scoring.visibility.non_positive_delay_hours)


def breakpoints(group: Group, rulebook: Rulebook) -> list[datetime]:
    """The instants at which the group's part of the figures may change, in order."""
    if isinstance(group, ComplaintFacts):
        return _instants([group.filed, group.ruled])
    window_end = []
    if group.succeeded is not None:
        window_end.append(group.succeeded.at + _window(rulebook))
    return sorted(
        {*_instants(_trade_stamps(group)), *_shown_instants(group, rulebook), *window_end}
    )


def group_steps(group: Group, rulebook: Rulebook) -> tuple[Step, ...]:
    """One trade's or one complaint's step list (see COMPONENTS): sorted by
    instant, one step per instant, no zero steps. Before its first breakpoint a
    group adds nothing, as a trade is unknown before its creation and a
    complaint before its filing."""
    file = _file_of(group)
    parts = (
        (instant, _components(buyer_history(file, Cut(instant), rulebook)))
        for instant in breakpoints(group, rulebook)
    )
    return steps_from_parts(parts, len(COMPONENTS))


def summary_at(
    steps_by_group: Mapping[str, Sequence[Step]], as_of: datetime, rulebook: Rulebook
) -> BuyerHistory:
    """The buyer's history and tier as of a time, from the step lists of its
    groups (each sorted by instant, as ``group_steps`` returns it): the figures
    ``buyer_history`` returns for the same time."""
    return summary_of(sum_as_of(steps_by_group.values(), as_of, len(COMPONENTS)), rulebook)


def summary_of(sums: Vector, rulebook: Rulebook) -> BuyerHistory:
    """The buyer's history and tier from the sums of ``COMPONENTS``."""
    totals = dict(zip(COMPONENTS, sums, strict=True))
    given, negative = totals["ratings_given"], totals["ratings_given_negative"]
    reasons = {reason: totals[f"refunds_{reason}"] for reason in REFUND_REASONS}
    tier = tier_of(totals["window_purchases"], totals["window_net_spend_minor"], rulebook)
    return BuyerHistory(
        **{name: totals[name] for name in _PLAIN},
        refunds=sum(reasons.values()),
        refund_reasons={reason: count for reason, count in reasons.items() if count},
        ratings_given_negative_share=negative / given if given else None,
        tier=tier.name,
        tier_label=tier.label,
    )


def _file_of(group: Group) -> MemberFile:
    """A file holding this one group; the member's own facts play no part in the figure."""
    if isinstance(group, ComplaintFacts):
        member = MemberFacts(group.buyer_id, group.filed)
        return MemberFile(member, [], [], [], [group])
    return MemberFile(MemberFacts(group.buyer_id, group.created), [], [group], [], [])


def _components(history: BuyerHistory) -> Vector:
    """A one-group history (what the reference gives for a file holding only
    the group) as a component vector."""
    reasons = history.refund_reasons
    if not reasons.keys() <= _KNOWN_REASONS:
        unknown = sorted(reasons.keys() - _KNOWN_REASONS)
        raise ValueError(f"refund reasons outside the known list: {unknown}")
    # One group holds at most one rating given, so the share is exactly 0 or 1.
    negative = round((history.ratings_given_negative_share or 0.0) * history.ratings_given)
    figures = [getattr(history, name) for name in _PLAIN]
    figures += [reasons.get(reason, 0) for reason in REFUND_REASONS]
    figures.append(negative)
    return tuple(figures[index] for index in _ORDER)


def _trade_stamps(trade: TradeFacts) -> list[Stamp | None]:
    """Every fact recorded about a trade (a superset of those the figure reads)."""
    stamps = [trade.created, trade.paid, trade.succeeded, trade.closed, trade.fake]
    for refund in trade.refunds.values():
        stamps += [refund.requested, refund.paid]
    if trade.dispute is not None:
        stamps += [trade.dispute.escalated, trade.dispute.ruled]
    for rating in trade.ratings.values():
        stamps += [rating.given, rating.revised, rating.withdrawn, rating.shielded]
    return stamps


def _shown_instants(trade: TradeFacts, rulebook: Rulebook) -> list[datetime]:
    """Every instant a rating on the trade may show at. When it shows depends on
    whether the other side has rated yet, which changes only when a rating is
    given, so asking as of each giving covers every case."""
    givings = [rating.given.at for rating in trade.ratings.values()]
    raters: tuple[Party, ...] = tuple(trade.ratings)
    shown = (
        rating_visible_at(trade, rater, Cut(at), rulebook.scoring)
        for rater in raters
        for at in givings
    )
    return [instant for instant in shown if instant is not None]


def _instants(stamps: Iterable[Stamp | None]) -> list[datetime]:
    return sorted({stamp.at for stamp in stamps if stamp is not None})


def _window(rulebook: Rulebook) -> timedelta:
    return timedelta(days=rulebook.scoring.buyer_tiers.window_days)
