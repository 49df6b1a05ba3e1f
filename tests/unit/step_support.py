"""What the property tests of figures kept as step changes share: the rulebooks,
time units, and one decorator that runs a property once per built-in rulebook."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.events import Score
from projections.rulebook import load_rulebook

RULEBOOKS = {name: load_rulebook(name) for name in ("taobao-classic", "ebay-style")}
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
MICROSECOND = timedelta(microseconds=1)
SCORES: tuple[Score, ...] = ("positive", "neutral", "negative")
PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PropertyTest = Callable[[str, st.DataObject], None]


def property_under_each_rulebook(test: PropertyTest) -> PropertyTest:
    """Runs a property, drawing with ``data``, once per built-in rulebook ``name``."""
    drawn: PropertyTest = PROPERTY(given(data=st.data())(test))
    parametrized: PropertyTest = pytest.mark.parametrize("name", RULEBOOKS)(drawn)
    return parametrized
