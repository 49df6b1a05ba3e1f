"""Reputation queries: every figure as of a business time and at a log position.

This is what the API and the CLI call. Each answer names the scoring rulebook
(id@version) that produced it, the business time it is computed as of, and
the last log position it reflects. ``as_of`` defaults to now (the injected
clock); ``at_position`` keeps only what the log held at that position.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Generic, TypeAlias, TypeVar

import msgspec

from ledger.clock import Clock
from ledger.events import Party
from ledger.policy import DEFAULT_RULEBOOK
from projections.buyers import BuyerHistory, buyer_history
from projections.credit import CreditResult, credit_of
from projections.dsr import DsrResult, dsr_of
from projections.explanations import EXPLANATION_PAGE_DEFAULT, ExplanationPage, credit_page
from projections.marketplace import POSITION_MAX, Cut, MemberFile
from projections.penalties import (
    FIGURE_REASONS,
    Penalty,
    SellerFigures,
    penalty_from,
    penalty_of,
)
from projections.rulebook import Rulebook, Rulebooks, load_rulebook
from projections.seller_cases import ComplaintPage, RefundPage, complaints_page, refunds_page
from projections.seller_level import SellerLevel, seller_level_of
from projections.snapshots import (
    KeptSnapshots,
    PenaltySnapshot,
    penalty_valid_until,
    records_valid_until,
)
from projections.streamed import credit_streamed, dsr_streamed
from projections.tallies import (
    BUYER_WIDTH,
    CREDIT_WIDTH,
    DSR_WIDTH,
    RATES_WIDTH,
    buyer_figure,
    buyer_key,
    credit_figure,
    credit_key,
    dsr_figure,
    dsr_key,
    rates_figure,
    rates_key,
    violations_key,
)
from projections.timeline import Vector
from projections.trade_lists import TradePage, trades_page
from projections.views import ReputationView
from projections.violations import ViolationStanding, standing_at, violations_at
from projections.windows import calendar_year

PENALTY_BATCH_MAX = 1_000
# Penalty snapshots a process keeps in memory (about 1 KiB each): the sellers
# the ranking engine asks about most, many batches' worth.
KEPT_SNAPSHOTS_MAX = 50_000

T = TypeVar("T")


class Answer(msgspec.Struct, Generic[T], frozen=True):
    """A figure with what produced it."""

    figure: T
    rulebook: str
    as_of: datetime
    position: int


class UnknownMemberError(LookupError):
    pass


class Series(msgspec.Struct, Generic[T], frozen=True):
    """A figure at each of a series of business times, under one rulebook:
    each point is the answer the single query gives as of its time."""

    points: tuple[Answer[T], ...]
    rulebook: str
    position: int


class UnknownSeller(msgspec.Struct, frozen=True):
    """A seller unknown as of the batch's time: never registered, or registered later."""

    seller_id: str
    unknown: Annotated[bool, msgspec.Meta(extra_json_schema={"const": True})] = True


# Many sellers' penalties under one stamp, an entry per seller asked, in order.
PenaltyBatch: TypeAlias = Answer[tuple[Penalty | UnknownSeller, ...]]


class Where(msgspec.Struct, frozen=True):
    """Which answer is asked for: as of a business time, at a log position, under a rulebook."""

    as_of: datetime | None = None
    at_position: int | None = None
    rulebook: str | None = None


NOW = Where()


class Reputation:
    def __init__(
        self,
        view: ReputationView,
        clock: Clock,
        *,
        default_rulebook: str = DEFAULT_RULEBOOK,
        time_at: Callable[[int], datetime | None] | None = None,
    ) -> None:
        self.view = view
        self.clock = clock
        # The default may be an operator's file; any other is named by id only.
        default = load_rulebook(default_rulebook)
        self.rulebooks = Rulebooks.serving(default)
        self.default_rulebook = default.id
        # The business time of a log position, for at_position without as_of.
        self._time_at = time_at
        self._kept = KeptSnapshots(KEPT_SNAPSHOTS_MAX)

    def use(self, view: ReputationView) -> None:
        """Answer from another view from now on; a question already being
        answered finishes on the view it started with."""
        self._kept = KeptSnapshots(KEPT_SNAPSHOTS_MAX)
        self.view = view

    def rulebook(self, rulebook_id: str | None = None) -> Rulebook:
        return self.rulebooks.get(rulebook_id or self.default_rulebook)

    def cut(self, as_of: datetime | None = None, at_position: int | None = None) -> tuple[Cut, int]:
        """The facts an answer may use, and the log position the answer reflects."""
        position = self.view.position()
        if at_position is not None:
            position = min(position, at_position)
        if as_of is None:
            at_time = self._time_at(position) if at_position is not None and self._time_at else None
            as_of = at_time or self.clock.now()
        return Cut(as_of, at_position if at_position is not None else POSITION_MAX), position

    def credit(self, member_id: str, role: Party, where: Where = NOW) -> Answer[CreditResult]:
        """A member's credit in one role, without the per-rating explanation.

        As of any business time it is read from the member's credit tally (a
        few rows, however long its history) when the view keeps tallies for
        the rulebook and the member; at a log position, under a rulebook the
        view keeps no tallies for, or for a member with fewer trades than the
        view's tally threshold, it is computed from the member's facts.
        """
        book = self.rulebook(where.rulebook)
        key = credit_key(book.scoring_stamp, role, member_id)
        found = self._tallied(member_id, book, where, {key: CREDIT_WIDTH})
        if found is None and self._streams(member_id, book, where):
            return self._streamed(
                member_id, where, lambda cut: credit_streamed(self.view, member_id, role, cut, book)
            )
        if found is None:
            answer = self.credit_explained(member_id, role, where)
            figure = msgspec.structs.replace(answer.figure, ratings=())
            return Answer(figure, answer.rulebook, answer.as_of, answer.position)
        as_of, position, values = found
        return Answer(credit_figure(values[key], book), book.scoring_stamp, as_of, position)

    def credit_explanation(
        self,
        member_id: str,
        role: Party,
        where: Where = NOW,
        *,
        cursor: str | None = None,
        limit: int = EXPLANATION_PAGE_DEFAULT,
    ) -> tuple[Answer[CreditResult], ExplanationPage]:
        """The member's credit and one page of the ratings behind it, in order of
        order creation: a page reads its own ratings' groups, not the history."""
        credit = self.credit(member_id, role, where)
        cut, _ = self.cut(credit.as_of, where.at_position)
        book = self.rulebook(where.rulebook)
        page = credit_page(self.view, member_id, role, cut, book, cursor=cursor, limit=limit)
        return credit, page

    def trades(self, member_id: str, role: Party, cursor: str | None, limit: int) -> TradePage:
        """A page of the member's trades in a role, in creation order, from the
        view's index (``unknown_member`` for a member it does not hold)."""
        if self.view.member(member_id) is None:
            raise UnknownMemberError(member_id)
        return trades_page(self.view, member_id, role, cursor, limit)

    def complaints(self, seller_id: str, cursor: str | None, limit: int) -> ComplaintPage:
        """A page of the complaints against a seller, in log order, from the
        view's index (``unknown_member`` for a member it does not hold)."""
        if self.view.member(seller_id) is None:
            raise UnknownMemberError(seller_id)
        return complaints_page(self.view, seller_id, cursor, limit)

    def refunds(self, seller_id: str, cursor: str | None, limit: int) -> RefundPage:
        """A page of the refunds requested of a seller, in log order, from the
        view's index (``unknown_member`` for a member it does not hold)."""
        if self.view.member(seller_id) is None:
            raise UnknownMemberError(seller_id)
        return refunds_page(self.view, seller_id, cursor, limit)

    def credit_explained(
        self, member_id: str, role: Party, where: Where = NOW
    ) -> Answer[CreditResult]:
        """A member's credit with every rating received and how it counts, from its facts."""
        return self._answer(member_id, lambda f, c, r: credit_of(f, role, c, r), where)

    def dsr(self, seller_id: str, where: Where = NOW) -> Answer[DsrResult]:
        """A seller's shop scores, without the positions of the ratings counted:
        from its tally when the view keeps one for the rulebook, as ``credit``."""
        book = self.rulebook(where.rulebook)
        key = dsr_key(book.scoring_stamp, seller_id)
        found = self._tallied(seller_id, book, where, {key: DSR_WIDTH})
        if found is None and self._streams(seller_id, book, where):
            return self._streamed(
                seller_id, where, lambda cut: dsr_streamed(self.view, seller_id, cut, book)
            )
        if found is None:
            answer = self.dsr_explained(seller_id, where)
            figure = msgspec.structs.replace(answer.figure, positions=())
            return Answer(figure, answer.rulebook, answer.as_of, answer.position)
        as_of, position, values = found
        return Answer(dsr_figure(values[key]), book.scoring_stamp, as_of, position)

    def dsr_explained(self, seller_id: str, where: Where = NOW) -> Answer[DsrResult]:
        """A seller's shop scores with the positions of the ratings counted, from its facts."""
        return self._answer(seller_id, dsr_of, where)

    def _streams(self, member_id: str, book: Rulebook, where: Where) -> bool:
        """Whether a figure its tallies cannot give is streamed: the view tallies
        the member, but the question is at a log position or under a rulebook
        without tallies (a member the view does not tally is small: its file
        answers)."""
        outside = (
            where.at_position is not None or book.scoring_stamp not in self.view.tally_stamps()
        )
        return outside and self.view.keeps_tallies_of(member_id)

    def _streamed(self, member_id: str, where: Where, compute: Callable[[Cut], T]) -> Answer[T]:
        """A big member's figure its tallies cannot give (at a log position, or
        under a rulebook the view does not tally), from its trades page by page."""
        book = self.rulebook(where.rulebook)
        cut, position = self.cut(where.as_of, where.at_position)
        member = self.view.member(member_id)
        if member is None or not cut.sees(member.registered):
            raise UnknownMemberError(member_id)
        return Answer(compute(cut), book.scoring_stamp, cut.as_of, position)

    def _tallied(
        self, member_id: str, book: Rulebook, where: Where, widths: Mapping[str, int]
    ) -> tuple[datetime, int, dict[str, Vector]] | None:
        """An answer's time, position and tally values, read in one transaction,
        when it can come from tallies: as of a time, under a tallied rulebook,
        for a member the view tallies (else None: the facts answer)."""
        if where.at_position is not None or book.scoring_stamp not in self.view.tally_stamps():
            return None
        as_of = where.as_of or self.clock.now()
        found = self.view.member_reading(member_id, widths, as_of)
        if found.registered is None or not Cut(as_of).sees(found.registered):
            raise UnknownMemberError(member_id)
        if found.tallies is None:
            return None
        return as_of, found.position, found.tallies.values

    def credit_series(
        self, member_id: str, role: Party, where: Where, ats: Sequence[datetime]
    ) -> Series[CreditResult]:
        """A member's credit in one role at each of ``ats`` (ascending), each
        point ``credit`` as of it; ``where.as_of`` is not read. Points before
        the member's registration are left out; a member unknown at the last
        one is unknown. The cost of a point does not grow with the member's
        history (``_series``), except at a log position or under a rulebook
        without tallies, where, as for ``credit``, a tallied member's credit
        is streamed from its trades at each point."""
        book = self.rulebook(where.rulebook)
        key = credit_key(book.scoring_stamp, role, member_id)
        return self._series(
            member_id,
            where,
            ats,
            {key: CREDIT_WIDTH},
            from_tallies=lambda values: credit_figure(values[key], book),
            from_file=lambda f, cut: msgspec.structs.replace(
                credit_of(f, role, cut, book), ratings=()
            ),
            streamed=lambda cut: credit_streamed(self.view, member_id, role, cut, book),
        )

    def dsr_series(
        self, seller_id: str, where: Where, ats: Sequence[datetime]
    ) -> Series[DsrResult]:
        """A seller's shop scores at each of ``ats``, each point ``dsr`` as of
        it: as ``credit_series``."""
        book = self.rulebook(where.rulebook)
        key = dsr_key(book.scoring_stamp, seller_id)
        return self._series(
            seller_id,
            where,
            ats,
            {key: DSR_WIDTH},
            from_tallies=lambda values: dsr_figure(values[key]),
            from_file=lambda f, cut: msgspec.structs.replace(dsr_of(f, cut, book), positions=()),
            streamed=lambda cut: dsr_streamed(self.view, seller_id, cut, book),
        )

    def penalty_series(
        self, seller_id: str, where: Where, ats: Sequence[datetime]
    ) -> Series[Penalty]:
        """A seller's penalty at each of ``ats``, each point ``penalty`` as of
        it, computed as that query computes it (``penalty_at``: a few rows of
        tallies, or the seller's file when a reason must list facts behind a
        figure, or at a log position). Points before the seller's registration
        are left out, as in ``credit_series``."""
        book = self.rulebook(where.rulebook)
        _, position = self.cut(ats[-1], where.at_position)
        points = []
        for cut in self._cuts(ats, where):
            found = self.penalty_at(seller_id, cut, book)
            if found is not None:
                points.append(Answer(found[0], book.scoring_stamp, cut.as_of, position))
        if not points or points[-1].as_of != ats[-1]:
            raise UnknownMemberError(seller_id)
        return Series(tuple(points), book.scoring_stamp, position)

    def _series(
        self,
        member_id: str,
        where: Where,
        ats: Sequence[datetime],
        widths: Mapping[str, int],
        *,
        from_tallies: Callable[[dict[str, Vector]], T],
        from_file: Callable[[MemberFile, Cut], T],
        streamed: Callable[[Cut], T],
    ) -> Series[T]:
        """A figure at each of ``ats`` by the path its single query takes,
        the rows read once for the whole series where that path allows.

        As of a time under a tallied rulebook, for a tallied member: its
        tallies' rows for every point, in one transaction
        (``member_series``), so a point costs a bisect or two in memory. For
        a member the view does not tally (fewer trades than the tally
        threshold): its file, read once, folded at each point. At a log
        position or under a rulebook without tallies, for a tallied member:
        streamed from its trades at each point, as the single query does.
        """
        book = self.rulebook(where.rulebook)
        stamp = book.scoring_stamp
        if where.at_position is None and stamp in self.view.tally_stamps():
            found = self.view.member_series(member_id, widths, ats)
            registered = found.registered
            if registered is None or not Cut(ats[-1]).sees(registered):
                raise UnknownMemberError(member_id)
            if found.values is not None:
                points = tuple(
                    Answer(from_tallies(values), stamp, at, found.position)
                    for at, values in zip(ats, found.values, strict=True)
                    if Cut(at).sees(registered)
                )
                return Series(points, stamp, found.position)
        _, position = self.cut(ats[-1], where.at_position)
        cuts = self._cuts(ats, where)
        if self._streams(member_id, book, where):
            member = self.view.member(member_id)
            known = [c for c in cuts if member is not None and c.sees(member.registered)]
            figures = [streamed(cut) for cut in known]
        else:
            member_file = self.view.file(member_id)
            known = [c for c in cuts if member_file is not None and known_at(member_file, c)]
            figures = [from_file(member_file, cut) for cut in known if member_file is not None]
        if not known or known[-1] != cuts[-1]:
            raise UnknownMemberError(member_id)
        points = tuple(
            Answer(figure, stamp, cut.as_of, position)
            for figure, cut in zip(figures, known, strict=True)
        )
        return Series(points, stamp, position)

    @staticmethod
    def _cuts(ats: Sequence[datetime], where: Where) -> list[Cut]:
        """The cut of each point: as of its time, at the asked log position if any."""
        at_position = POSITION_MAX if where.at_position is None else where.at_position
        return [Cut(at, at_position) for at in ats]

    def penalty(self, seller_id: str, where: Where = NOW) -> Answer[Penalty]:
        if where.as_of is None and where.at_position is None:
            batch = self.penalties([seller_id], rulebook=where.rulebook)
            (entry,) = batch.figure
            if isinstance(entry, UnknownSeller):
                raise UnknownMemberError(seller_id)
            return Answer(entry, batch.rulebook, batch.as_of, batch.position)
        book = self.rulebook(where.rulebook)
        cut, position = self.cut(where.as_of, where.at_position)
        found = self.penalty_at(seller_id, cut, book)
        if found is None:
            raise UnknownMemberError(seller_id)
        return Answer(found[0], book.scoring_stamp, cut.as_of, position)

    def penalty_at(
        self, seller_id: str, cut: Cut, book: Rulebook
    ) -> tuple[Penalty, datetime | None] | None:
        """A seller's penalty at a cut and the first instant after it at which the
        penalty may change with no new fact; None for a seller unknown then.

        From tallies (the seller's own facts, and its credit, shop-score and
        rate tallies: a few row reads) when the view keeps them for the
        rulebook and the cut is a business time; from the seller's file when
        it is a log position, or when a reason must list the trades' facts
        behind a figure (``FIGURE_REASONS``).
        """
        from_tallies = self._penalty_from_tallies(seller_id, cut, book)
        if from_tallies is not None:
            return from_tallies
        member_file = self.view.file(seller_id)
        if member_file is None or not known_at(member_file, cut):
            return None
        valid_until = penalty_valid_until(member_file, cut.as_of, book)
        return penalty_of(member_file, cut, book), valid_until

    def _penalty_from_tallies(
        self, seller_id: str, cut: Cut, book: Rulebook
    ) -> tuple[Penalty, datetime | None] | None:
        """``penalty_at`` from the seller's row and tallies, read in one
        transaction; None when they cannot give it (the file answers)."""
        stamp = book.scoring_stamp
        if cut.at_position != POSITION_MAX or stamp not in self.view.tally_stamps():
            return None
        keys = {
            credit_key(stamp, "seller", seller_id): CREDIT_WIDTH,
            dsr_key(stamp, seller_id): DSR_WIDTH,
            rates_key(stamp, seller_id): RATES_WIDTH,
        }
        credit, dsr, rates = keys
        year = (violations_key(stamp, seller_id), calendar_year(cut.as_of, book.scoring.zone))
        found = self.view.member_reading(seller_id, keys, cut.as_of, changes=True, violations=year)
        member, reading = found.records, found.tallies
        if member is None or reading is None or not cut.sees(member.registered):
            return None  # unknown, or not tallied: the file answers
        figures = SellerFigures(
            rates_figure(reading.values[rates], book),
            credit_figure(reading.values[credit], book),
            dsr_figure(reading.values[dsr]),
        )
        standing = standing_at(found.violations, cut.as_of, book)
        penalty = penalty_from(member, standing, figures, cut, book)
        if any(reason.code in FIGURE_REASONS for reason in penalty.reasons):
            return None
        own = records_valid_until(member, (found.violations, standing), cut.as_of, book)
        changes = (own, reading.changes_after)
        return penalty, min((c for c in changes if c is not None), default=None)

    def violations(self, seller_id: str, where: Where = NOW) -> Answer[ViolationStanding]:
        """A seller's violation standing, from its own facts (its trades are not read)."""
        book = self.rulebook(where.rulebook)
        cut, position = self.cut(where.as_of, where.at_position)
        member = self.view.member(seller_id)
        if member is None or not cut.sees(member.registered):
            raise UnknownMemberError(seller_id)
        return Answer(violations_at(member, cut, book), book.scoring_stamp, cut.as_of, position)

    def violations_series(
        self, seller_id: str, where: Where, ats: Sequence[datetime]
    ) -> Series[ViolationStanding]:
        """A seller's violation standing at each of ``ats``, each point
        ``violations`` as of it: the seller's own facts read once, folded at
        each point. Points before its registration are left out."""
        book = self.rulebook(where.rulebook)
        _, position = self.cut(ats[-1], where.at_position)
        member = self.view.member(seller_id)
        cuts = [
            c for c in self._cuts(ats, where) if member is not None and c.sees(member.registered)
        ]
        if member is None or not cuts or cuts[-1].as_of != ats[-1]:
            raise UnknownMemberError(seller_id)
        points = tuple(
            Answer(violations_at(member, cut, book), book.scoring_stamp, cut.as_of, position)
            for cut in cuts
        )
        return Series(points, book.scoring_stamp, position)

    def buyer_history(self, buyer_id: str, where: Where = NOW) -> Answer[BuyerHistory]:
        """A buyer's history and tier: from its tally when the view keeps one
        for the rulebook, as ``credit``; else from its facts."""
        book = self.rulebook(where.rulebook)
        key = buyer_key(book.scoring_stamp, buyer_id)
        found = self._tallied(buyer_id, book, where, {key: BUYER_WIDTH})
        if found is None:
            return self._answer(buyer_id, buyer_history, where)
        as_of, position, values = found
        return Answer(buyer_figure(values[key], book), book.scoring_stamp, as_of, position)

    def seller_level(self, seller_id: str, where: Where = NOW) -> Answer[SellerLevel | None]:
        return self._answer(seller_id, seller_level_of, where)

    def penalties(
        self,
        seller_ids: Iterable[str],
        *,
        as_of: datetime | None = None,
        rulebook: str | None = None,
    ) -> PenaltyBatch:
        """Penalties for many sellers at once, in the order asked.

        A seller the single ``penalty`` query would not know as of the same
        time is an ``UnknownSeller`` entry: one rule (``known_at``) decides
        for both, on the current path and the ``as_of`` one.
        """
        ids = list(seller_ids)
        if len(ids) > PENALTY_BATCH_MAX:
            raise ValueError(f"at most {PENALTY_BATCH_MAX} sellers per batch")
        book = self.rulebook(rulebook)
        if as_of is not None:
            cut, position = self.cut(as_of)
            at_cut = {i: self.penalty_at(i, cut, book) for i in dict.fromkeys(ids)}
            found = {i: p[0] for i, p in at_cut.items() if p is not None}
        else:
            cut = Cut(self.clock.now())
            found, position = self._current_penalties(ids, cut, book)
        entries = tuple(found[i] if i in found else UnknownSeller(i) for i in ids)
        return Answer(entries, book.scoring_stamp, cut.as_of, position)

    def _current_penalties(
        self, ids: list[str], cut: Cut, book: Rulebook
    ) -> tuple[dict[str, Penalty], int]:
        """Now: from snapshots still right, computing (and keeping) only the others.

        Touched positions are read before any file, so a fact that lands
        meanwhile invalidates what is computed from them. Snapshots come
        from this process's memory when it has them, else from the view.
        A snapshot is made only for a seller known at its time, and a seller
        stays known from then on, so a snapshot that serves is never one of
        a seller unknown now (registered a little ahead of the clock).
        """
        stamp = book.scoring_stamp
        kept = {s: k for s in ids if (k := self._kept.get(stamp, s)) is not None}
        state = self.view.snapshot_state(stamp, ids, [s for s in ids if s not in kept])
        touched = state.touched

        def serves(snapshot: PenaltySnapshot, seller: str) -> bool:
            return snapshot.serves(cut.as_of, touched.get(seller, 0))

        found: dict[str, Penalty] = {}
        read: list[PenaltySnapshot] = []
        missing = []
        for seller in ids:
            snapshot = kept.get(seller) or state.snapshots.get(seller)
            if snapshot is not None and serves(snapshot, seller):
                found[seller] = snapshot.penalty
                if seller not in kept:
                    read.append(snapshot)
            else:
                missing.append(seller)
        # A kept snapshot a new fact has outdated: another process may have
        # stored a newer one already.
        outdated = [s for s in missing if s in kept]
        stored = self.view.snapshots(stamp, outdated) if outdated else {}
        for seller, snapshot in stored.items():
            if serves(snapshot, seller):
                found[seller] = snapshot.penalty
                read.append(snapshot)
        computed = {s: self.penalty_at(s, cut, book) for s in missing if s not in found}
        fresh = [
            PenaltySnapshot(
                seller_id=seller,
                rulebook=stamp,
                as_of=cut.as_of,
                valid_until=valid_until,
                based_on=touched.get(seller, 0),
                penalty=penalty,
            )
            for seller, at_cut in computed.items()
            if at_cut is not None
            for penalty, valid_until in [at_cut]
        ]
        if fresh:
            self.view.keep_snapshots(fresh)
        found.update((snapshot.seller_id, snapshot.penalty) for snapshot in fresh)
        self._kept.keep([*read, *fresh])
        return found, state.position

    def _answer(
        self,
        member_id: str,
        compute: Callable[[MemberFile, Cut, Rulebook], T],
        where: Where,
    ) -> Answer[T]:
        book = self.rulebook(where.rulebook)
        cut, position = self.cut(where.as_of, where.at_position)
        member_file = self.view.file(member_id)
        if member_file is None or not known_at(member_file, cut):
            raise UnknownMemberError(member_id)
        return Answer(compute(member_file, cut, book), book.scoring_stamp, cut.as_of, position)


def known_at(member_file: MemberFile, cut: Cut) -> bool:
    """A member is known from its registration on; asked about before, it is unknown."""
    return cut.sees(member_file.member.registered)
