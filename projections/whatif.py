"""What-if: the same log under two scoring rulebooks, seller by seller.

This is how a platform tests a rule change before it ships (docs/rules.md §7):
replay the log once, compute every seller's level and penalty under both
rulebooks as of one time, and report what would change.

Level numbers compare only between rulebooks with the same level scale: a
"2" of hearts and diamonds is not a "2" of coloured stars. Across scales the
report counts where sellers land instead (``level_moves``: each pair of level
names, and how many sellers go from the one to the other).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

import msgspec

from projections.credit import credit_of
from projections.marketplace import Cut, MemberFile
from projections.penalties import penalty_of
from projections.rulebook import Rulebook


class SellerOutcome(msgspec.Struct, frozen=True):
    level: int
    level_name: str
    searchable: bool
    sort_hidden: bool
    multiplier: float


class LevelMove(msgspec.Struct, frozen=True):
    """How many sellers are at level ``before`` under one rulebook and ``after`` under the other."""

    before: str
    after: str
    sellers: int


class SellerChange(msgspec.Struct, frozen=True):
    seller_id: str
    before: SellerOutcome
    after: SellerOutcome


class WhatIf(msgspec.Struct, frozen=True):
    rulebook: str
    versus: str
    as_of: datetime
    sellers: int
    # None when the two level scales differ: their numbers do not compare.
    level_changed: int | None
    searchable_changed: int
    sort_hidden_changed: int
    multiplier_changed: int
    changes: tuple[SellerChange, ...]
    level_moves: tuple[LevelMove, ...] = ()


def outcome(file: MemberFile, cut: Cut, rulebook: Rulebook) -> SellerOutcome:
    penalty = penalty_of(file, cut, rulebook)
    level = credit_of(file, "seller", cut, rulebook).level
    return SellerOutcome(
        level.index, level.name, penalty.searchable, penalty.sort_hidden, penalty.multiplier
    )


def what_if(sellers: Iterable[MemberFile], a: Rulebook, b: Rulebook, as_of: datetime) -> WhatIf:
    cut = Cut(as_of)
    comparable = same_level_scale(a, b)
    changes = []
    moves: Counter[tuple[str, str]] = Counter()
    count = 0
    for file in sellers:
        count += 1
        before, after = outcome(file, cut, a), outcome(file, cut, b)
        moves[(before.level_name, after.level_name)] += 1
        penalty_differs = _penalty(before) != _penalty(after)
        if penalty_differs or (comparable and before.level != after.level):
            changes.append(SellerChange(file.member.member_id, before, after))
    return WhatIf(
        rulebook=a.scoring_stamp,
        versus=b.scoring_stamp,
        as_of=as_of,
        sellers=count,
        level_changed=(
            sum(1 for c in changes if c.before.level != c.after.level) if comparable else None
        ),
        searchable_changed=sum(1 for c in changes if c.before.searchable != c.after.searchable),
        sort_hidden_changed=sum(1 for c in changes if c.before.sort_hidden != c.after.sort_hidden),
        multiplier_changed=sum(1 for c in changes if c.before.multiplier != c.after.multiplier),
        changes=tuple(changes),
        level_moves=tuple(
            LevelMove(before, after, n) for (before, after), n in sorted(moves.items())
        ),
    )


def same_level_scale(a: Rulebook, b: Rulebook) -> bool:
    """Whether two rulebooks grade sellers on the same named levels, in the same
    order (their thresholds may differ: that is what a what-if of them shows)."""
    return [level.name for level in a.scoring.levels] == [level.name for level in b.scoring.levels]


def _penalty(outcome: SellerOutcome) -> tuple[bool, bool, float]:
    return outcome.searchable, outcome.sort_hidden, outcome.multiplier
