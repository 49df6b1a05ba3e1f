"""A fact the view does not mark as touching its seller leaves that seller's
penalty as it was, at every instant.

The penalty feed recomputes only the sellers a batch touches, and the
ranking path keeps a seller's penalty until a fact touches it, so a fact
wrongly left out would leave a stale penalty served and never changed. The
random logs of the tally tests are folded one fact at a time; before and
after each fact that touches no seller, the seller's penalty is computed from
its whole file at instants around every fact and window edge, under the
built-in rulebooks and under one whose thresholds every figure crosses (no
minimum count, no minimum denominator), so that the rates, the positive rate
and the shop scores show in the penalty even in these small logs.
"""

from __future__ import annotations

from datetime import datetime

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import events as ev
from projections.marketplace import Cut
from projections.penalties import Penalty, penalty_of
from projections.queries import known_at
from projections.rulebook import Rulebook
from projections.views import MemoryView, Touched
from tests.contract.test_tallies import SELLERS, market_log, probes
from tests.unit.step_support import RULEBOOKS


def sensitive(book: Rulebook) -> Rulebook:
    """``book`` with every penalty factor applying from the first fact on."""
    scoring = book.scoring
    factors = tuple(msgspec.structs.replace(f, min_count=0) for f in scoring.penalty.factors)
    return msgspec.structs.replace(
        book,
        scoring=msgspec.structs.replace(
            scoring,
            rates=msgspec.structs.replace(scoring.rates, min_denominator=1),
            penalty=msgspec.structs.replace(scoring.penalty, factors=factors),
        ),
    )


BOOKS = (*RULEBOOKS.values(), *(sensitive(book) for book in RULEBOOKS.values()))
Seen = list[Penalty | None]


def penalties(view: MemoryView, seller: str, instants: list[datetime]) -> Seen:
    """The seller's penalty at each instant (None: unknown then). How long each
    holds (``penalty_valid_until``) is left out: a fact may add an instant at
    which the penalty might change and does not, and the penalties at every
    instant are what must not move."""
    member_file = view.file(seller)
    seen: Seen = []
    for book in BOOKS:
        for at in instants:
            cut = Cut(at)
            if member_file is None or not known_at(member_file, cut):
                seen.append(None)
                continue
            seen.append(penalty_of(member_file, cut, book))
    return seen


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(log=market_log(), data=st.data())
def test_a_fact_that_touches_no_seller_leaves_the_penalty_as_it_was(
    log: list[ev.Event], data: st.DataObject
) -> None:
    instants: list[datetime] = list(
        data.draw(st.lists(st.sampled_from(probes(log)), min_size=1, max_size=30, unique=True))
    )
    view = MemoryView(tally_from_trades=0)
    untouched = 0
    for position, event in enumerate(log, start=1):
        seller = getattr(event, "seller_id", None)
        if seller not in SELLERS or seller in Touched.by([(position, event)]).sellers:
            view.process([(position, event)])
            continue
        before = penalties(view, seller, instants)
        view.process([(position, event)])
        untouched += 1
        assert penalties(view, seller, instants) == before, (position, type(event).__name__)
    # Every log creates its trades: facts that touch no seller are met.
    assert untouched > 0
