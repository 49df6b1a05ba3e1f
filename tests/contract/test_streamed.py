"""A big member's credit and shop scores streamed page by page equal the reference.

What the tallies cannot answer (a log position, a rulebook without tallies) is
computed for a tallied member from its trades read in creation order, a page
at a time. On memory, SQLite and PostgreSQL views, for random logs and any cut
(a business time, a log position, or both) and page sizes down to one, the
streamed credit must be ``credit_of``'s and the streamed shop scores
``dsr_of``'s, over the member's whole file.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import events as ev
from ledger.clock import FixedClock
from projections.credit import credit_of
from projections.dsr import dsr_of
from projections.marketplace import Cut
from projections.queries import Reputation, Where
from projections.streamed import credit_streamed, dsr_streamed
from projections.tallies import ROLES
from tests.contract.test_tallies import (
    BUYERS,
    SELLERS,
    NewView,
    fold,
    fresh_view,
    market_log,
    probes,
)
from tests.unit.step_support import RULEBOOKS

__all__ = ["fresh_view"]  # the fixture, shared with the tally tests


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(log=market_log(), data=st.data())
def test_streamed_figures_are_those_of_the_whole_file(
    fresh_view: NewView, log: list[ev.Event], data: st.DataObject
) -> None:
    view = fresh_view(0)
    fold(view, log, None if data.draw(st.booleans()) else [])
    as_of = data.draw(st.sampled_from(probes(log)))
    at_position = data.draw(st.integers(1, len(log)) | st.just(len(log)))
    cut = Cut(as_of, at_position)
    page_size = data.draw(st.integers(1, 4))
    for (name, book), member in itertools.product(RULEBOOKS.items(), (*SELLERS, *BUYERS)):
        member_file = view.file(member)
        assert member_file is not None
        for role in ROLES:
            streamed = credit_streamed(view, member, role, cut, book, page_size=page_size)
            whole = credit_of(member_file, role, cut, book)
            assert streamed == msgspec.structs.replace(whole, ratings=()), (name, member, role)
        shop = dsr_streamed(view, member, cut, book, page_size=page_size)
        whole_shop = dsr_of(member_file, cut, book)
        assert shop == msgspec.structs.replace(whole_shop, positions=()), (name, member)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(log=market_log(), data=st.data())
def test_a_tallied_members_answers_at_a_position_are_streamed_and_exact(
    fresh_view: NewView, log: list[ev.Event], data: st.DataObject
) -> None:
    """Through the queries: at a log position a tallied member's credit and shop
    scores come from the stream, equal to what its file gives."""
    view = fresh_view(0)
    fold(view, log, [])
    reputation = Reputation(view, FixedClock(datetime(2026, 1, 1, tzinfo=UTC)))
    at_position = data.draw(st.integers(len(SELLERS) + len(BUYERS), len(log)))
    for rulebook, member in itertools.product(RULEBOOKS, SELLERS):
        if not view.keeps_tallies_of(member):
            continue
        where = Where(at_position=at_position, rulebook=rulebook)
        credit = reputation.credit(member, "seller", where).figure
        explained = reputation.credit_explained(member, "seller", where).figure
        assert credit == msgspec.structs.replace(explained, ratings=())
        shop = reputation.dsr(member, where).figure
        assert shop == msgspec.structs.replace(
            reputation.dsr_explained(member, where).figure, positions=()
        )
