"""The credit explanation, page by page, is the reference's list of ratings.

On memory, SQLite and PostgreSQL views, over the random logs of the tally
tests: following ``next_cursor`` from the first page with any page size gives,
in order, exactly the ratings ``credit_of`` explains from the member's whole
file, with the same verdicts, as of any time and at any log position.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import events as ev
from ledger.clock import FixedClock
from projections.credit import Counted
from projections.explanations import (
    BadCursorError,
    ExplanationPage,
    credit_page,
    decode_cursor,
    encode_cursor,
)
from projections.marketplace import Cut
from projections.queries import Reputation, UnknownMemberError, Where
from projections.tallies import ROLES
from projections.views import MemoryView
from tests.contract.test_tallies import (
    BUYERS,
    DAY,
    SELLERS,
    NewView,
    fold,
    fresh_view,
    market_log,
    older_and_newer_order_log,
    probes,
)
from tests.unit.step_support import RULEBOOKS

__all__ = ["fresh_view"]  # the fixture, shared with the tally tests
PAGES_MAX = 200


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(log=market_log(), data=st.data())
def test_pages_followed_to_the_end_are_the_whole_explanation(
    fresh_view: NewView, log: list[ev.Event], data: st.DataObject
) -> None:
    view = fresh_view(0)
    fold(view, log, None if data.draw(st.booleans()) else [])
    reputation = Reputation(view, FixedClock(datetime(2026, 1, 1, tzinfo=UTC)))
    as_of = data.draw(st.sampled_from(probes(log)))
    at_position = data.draw(st.none() | st.integers(1, len(log)))
    limit = data.draw(st.integers(1, 7))
    for rulebook, role, member in itertools.product(RULEBOOKS, ROLES, (*SELLERS, *BUYERS)):
        where = Where(as_of=as_of, at_position=at_position, rulebook=rulebook)
        try:
            expected = reputation.credit_explained(member, role, where).figure.ratings
        except UnknownMemberError:
            continue  # registered after the position asked about
        book = reputation.rulebook(rulebook)
        cut, _ = reputation.cut(as_of, at_position)
        paged: list[Counted] = []
        cursor: str | None = None
        for _ in range(PAGES_MAX):
            page = credit_page(view, member, role, cut, book, cursor=cursor, limit=limit)
            assert len(page.ratings) <= limit
            paged += page.ratings
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert tuple(paged) == expected, (rulebook, role, member)


def test_a_rating_on_a_page_is_judged_with_the_earlier_orders_of_its_item_chain() -> None:
    """The newer order (February) alone on its page: the older one (January, a
    cap group of its own) still starts the 14-day group that excludes it."""
    log, newer = older_and_newer_order_log()
    view = MemoryView()
    fold(view, log, None)
    book = RULEBOOKS["taobao-classic"]
    first = credit_page(view, "s1", "seller", Cut(newer + 60 * DAY), book, limit=1)
    assert [(c.record.trade_id, c.reason) for c in first.ratings] == [("T1", None)]
    second = credit_page(
        view, "s1", "seller", Cut(newer + 60 * DAY), book, cursor=first.next_cursor, limit=1
    )
    assert [(c.record.trade_id, c.reason) for c in second.ratings] == [("T2", "same_item_14d")]
    assert second.next_cursor is not None
    last = credit_page(
        view, "s1", "seller", Cut(newer + 60 * DAY), book, cursor=second.next_cursor, limit=1
    )
    assert last == ExplanationPage((), None)


def test_a_cursor_round_trips_and_a_foreign_one_is_refused() -> None:
    assert decode_cursor(encode_cursor((1_700_000_000_000_000, "T:1"))) == (
        1_700_000_000_000_000,
        "T:1",
    )
    for foreign in ("%%%", "bm8gY29sb24", ""):
        with pytest.raises(BadCursorError):
            decode_cursor(foreign)


def test_a_page_size_outside_the_limits_is_refused() -> None:
    book = RULEBOOKS["taobao-classic"]
    with pytest.raises(ValueError, match="limit"):
        credit_page(MemoryView(), "s1", "seller", Cut(datetime.now(UTC)), book, limit=0)
