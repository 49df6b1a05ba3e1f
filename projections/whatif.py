"""What-if: the same log under two scoring rulebooks, seller by seller.

This is how a platform tests a rule change before it ships (docs/rules.md §7):
replay the log once, compute every seller's level and penalty under both
rulebooks as of one time, and report what would change.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import msgspec

from projections.credit import credit_of
from projections.marketplace import Cut, MemberFile
from projections.penalties import penalty_of
from projections.rulebook import Rulebook


class SellerOutcome(msgspec.Struct, frozen=True):
    level: int
    searchable: bool
    sort_hidden: bool
    multiplier: float


class SellerChange(msgspec.Struct, frozen=True):
    seller_id: str
    before: SellerOutcome
    after: SellerOutcome


class WhatIf(msgspec.Struct, frozen=True):
    rulebook: str
    versus: str
    as_of: datetime
    sellers: int
    level_changed: int
    searchable_changed: int
    sort_hidden_changed: int
    multiplier_changed: int
    changes: tuple[SellerChange, ...]


def outcome(file: MemberFile, cut: Cut, rulebook: Rulebook) -> SellerOutcome:
    penalty = penalty_of(file, cut, rulebook)
    level = credit_of(file, "seller", cut, rulebook).level.index
    return SellerOutcome(level, penalty.searchable, penalty.sort_hidden, penalty.multiplier)


def what_if(sellers: Iterable[MemberFile], a: Rulebook, b: Rulebook, as_of: datetime) -> WhatIf:
    cut = Cut(as_of)
    changes = []
    count = 0
    for file in sellers:
        count += 1
        before, after = outcome(file, cut, a), outcome(file, cut, b)
        if before != after:
            changes.append(SellerChange(file.member.member_id, before, after))
    return WhatIf(
        rulebook=a.scoring_stamp,
        versus=b.scoring_stamp,
        as_of=as_of,
        sellers=count,
        level_changed=sum(1 for c in changes if c.before.level != c.after.level),
        searchable_changed=sum(1 for c in changes if c.before.searchable != c.after.searchable),
        sort_hidden_changed=sum(1 for c in changes if c.before.sort_hidden != c.after.sort_hidden),
        multiplier_changed=sum(1 for c in changes if c.before.multiplier != c.after.multiplier),
        changes=tuple(changes),
    )
