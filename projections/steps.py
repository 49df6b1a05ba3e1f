"""Step changes: what a group of facts adds to a member's figures, instant by instant.

A figure kept as step changes is a sum over groups (a counterparty, a pair and
month, a trade) of each group's steps: from ``instant`` on, the group's figures
move by ``values``. The producers (``credit_steps``, ``dsr_steps``,
``buyer_steps``, ``rate_steps``) find a group's parts at its breakpoints;
these two functions turn parts into steps and steps back into sums.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from itertools import takewhile
from typing import NamedTuple, TypeVar

from projections.timeline import Vector, subtract, sum_of, zeros

G = TypeVar("G")
K = TypeVar("K")


def grouped(items: Iterable[G], key: Callable[[G], K]) -> dict[K, list[G]]:
    """Items by their group's key, each group in the items' order."""
    groups: dict[K, list[G]] = defaultdict(list)
    for item in items:
        groups[key(item)].append(item)
    return dict(groups)


class Step(NamedTuple):
    """From ``instant`` on, the group's figures move by ``values`` (see each producer's COMPONENTS)."""

    instant: datetime
    values: tuple[int, ...]


def steps_from_parts(parts: Iterable[tuple[datetime, Vector]], width: int) -> tuple[Step, ...]:
    """A group's steps from what it adds at each breakpoint, in time order: what moved
    at each one. Before its first breakpoint a group adds nothing."""
    steps = []
    before = zeros(width)
    for instant, now in parts:
        if now != before:
            steps.append(Step(instant, subtract(now, before)))
        before = now
    return tuple(steps)


def sum_as_of(step_lists: Iterable[Sequence[Step]], as_of: datetime, width: int) -> Vector:
    """The sum of every step at or before ``as_of``, over step lists sorted by instant."""
    reached = (takewhile(lambda step: step.instant <= as_of, steps) for steps in step_lists)
    return sum_of([zeros(width), *(step.values for steps in reached for step in steps)])
