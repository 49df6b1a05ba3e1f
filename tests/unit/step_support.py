"""What the property tests of figures kept as step changes share: the rulebooks,
time units, one decorator that runs a property once per built-in rulebook, and
the base of the drawers that make a member's facts."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.events import Score
from projections import marketplace as mp
from projections.rulebook import Rulebook, load_rulebook
from projections.steps import Step, sum_as_of

RULEBOOKS = {name: load_rulebook(name) for name in ("taobao-classic", "ebay-style")}
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
MICROSECOND = timedelta(microseconds=1)
SCORES: tuple[Score, ...] = ("positive", "neutral", "negative")
PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PropertyTest = Callable[[str, st.DataObject], None]


def per_rulebook(test: PropertyTest) -> PropertyTest:
    """Runs a property, drawing with ``data``, once per built-in rulebook ``name``."""
    drawn: PropertyTest = PROPERTY(given(data=st.data())(test))
    parametrized: PropertyTest = pytest.mark.parametrize("name", RULEBOOKS)(drawn)
    return parametrized


class FactDrawer:
    """Draws a member's facts as the fold records them; stamps take log positions
    in the order facts are made. A test names the order days and clocks (local, in
    the rulebook's zone), the shifts added to them and the later offsets it draws."""

    DAYS: ClassVar[tuple[date, ...]]
    CLOCKS: ClassVar[tuple[time, ...]]
    SHIFTS: ClassVar[tuple[timedelta, ...]]
    LATER: ClassVar[tuple[timedelta, ...]]

    def __init__(self, draw: st.DrawFn, rulebook: Rulebook) -> None:
        self.draw = draw
        self.rulebook = rulebook
        self.positions: Iterator[int] = itertools.count(1)

    def stamp(self, at: datetime) -> mp.Stamp:
        return mp.Stamp(at, next(self.positions))

    def later(self, start: datetime) -> datetime:
        return start + self.draw(st.sampled_from(self.LATER))

    def order_time(self) -> datetime:
        day, clock = self.draw(st.sampled_from(self.DAYS)), self.draw(st.sampled_from(self.CLOCKS))
        local = datetime.combine(day, clock, tzinfo=self.rulebook.scoring.zone)
        return local.astimezone(UTC) + self.draw(st.sampled_from(self.SHIFTS))


def moved_sums(
    before: Sequence[Sequence[Step]],
    added: Sequence[Sequence[Step]],
    removed: Sequence[Sequence[Step]],
    as_of: datetime,
    width: int,
) -> tuple[int, ...]:
    """The sums as of a time after a view moved them: what was there, plus the
    steps added, minus the steps taken back."""
    return tuple(
        kept + new - gone
        for kept, new, gone in zip(
            sum_as_of(before, as_of, width),
            sum_as_of(added, as_of, width),
            sum_as_of(removed, as_of, width),
            strict=True,
        )
    )
