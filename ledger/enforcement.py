"""SellerEnforcement: violations, fake-trade confirmations and search cheating, per seller.

A fact made elsewhere (a bulk import) is admitted by the rules marked
``@admits``: the seller is a registered member by then, and the checks of the
command that records the fact hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from ledger.aggregate import Aggregate, Records, admits, evolves
from ledger.commands import ConfirmFakeTrades, RecordSearchCheating, RecordViolation
from ledger.errors import ErrorCode, InvalidInputError, StateConflictError
from ledger.events import (
    EnforcementEvent,
    FakeTradesConfirmed,
    SearchCheatingRecorded,
    ViolationRecorded,
)
from ledger.member import registered_member
from ledger.trade import Trade, known_trade


class SellerEnforcement(Aggregate):
    def __init__(self, aggregate_id: UUID) -> None:
        super().__init__(aggregate_id)
        self.seller_id = ""
        self.violation_ids: set[str] = set()
        self.case_ids: set[str] = set()
        self.fake_trade_cases = 0
        self.fake_trade_ids: set[str] = set()

    def record_violation(self, command: RecordViolation) -> None:
        self._check_new_violation(command.violation_id, command.occurred_at)
        self.record(
            ViolationRecorded,
            occurred_at=command.occurred_at,
            seller_id=command.seller_id,
            violation_id=command.violation_id,
            category=command.category,
            points=command.points,
            reason=command.reason,
            reference=command.reference,
        )

    def confirm_fake_trades(self, command: ConfirmFakeTrades, trades: Sequence[Trade]) -> None:
        """Confirm a case; the offence number and points follow from earlier cases."""
        self._check_fake_trade_case(
            command.seller_id, command.case_id, command.trade_ids, trades, command.occurred_at
        )
        policy = self.context.book.policy.fake_trade
        offence = self.fake_trade_cases + 1
        points = policy.points(offence_number=offence, trade_count=len(trades))
        self.record(
            FakeTradesConfirmed,
            occurred_at=command.occurred_at,
            seller_id=command.seller_id,
            case_id=command.case_id,
            trade_ids=tuple(command.trade_ids),
            item_ids=tuple(sorted({trade.item_id for trade in trades})),
            offence_number=offence,
            points=points,
            category=policy.category(points),
            demoted_until=command.occurred_at + timedelta(days=policy.item_demotion_days),
        )

    def record_search_cheating(self, command: RecordSearchCheating) -> None:
        self._check_search_cheating_case(command.case_id, command.item_ids, command.occurred_at)
        self.record(
            SearchCheatingRecorded,
            occurred_at=command.occurred_at,
            seller_id=command.seller_id,
            case_id=command.case_id,
            item_ids=tuple(command.item_ids),
            kind=command.kind,
        )

    # --- Checks ----------------------------------------------------------------------

    def _check_new_violation(self, violation_id: str, at: datetime) -> None:
        self.check_not_before_last_fact(at)
        if violation_id in self.violation_ids:
            raise StateConflictError(
                ErrorCode.VIOLATION_EXISTS,
                f"violation {violation_id} is already recorded",
            )

    def _check_fake_trade_case(
        self,
        seller_id: str,
        case_id: str,
        trade_ids: Sequence[str],
        trades: Sequence[Trade],
        at: datetime,
    ) -> None:
        _check_no_repeats(trade_ids, "trade_ids", "a trade")
        self.check_not_before_last_fact(at)
        self._check_new_case(case_id)
        for trade in trades:
            if trade.created_at is not None and trade.created_at > at:
                raise StateConflictError(
                    ErrorCode.OUT_OF_ORDER,
                    f"trade {trade.trade_id} was created after this case's time",
                    field="occurred_at",
                )
            if trade.seller_id != seller_id:
                raise StateConflictError(
                    ErrorCode.TRADE_OF_OTHER_SELLER,
                    f"trade {trade.trade_id} belongs to seller {trade.seller_id}",
                    field="trade_ids",
                )
            if trade.trade_id in self.fake_trade_ids:
                raise StateConflictError(
                    ErrorCode.TRADE_ALREADY_FAKE,
                    f"trade {trade.trade_id} was confirmed fake in an earlier case",
                    field="trade_ids",
                )

    def _check_search_cheating_case(
        self, case_id: str, item_ids: Sequence[str], at: datetime
    ) -> None:
        _check_no_repeats(item_ids, "item_ids", "an item")
        self.check_not_before_last_fact(at)
        self._check_new_case(case_id)

    def _check_new_case(self, case_id: str) -> None:
        if case_id in self.case_ids:
            raise StateConflictError(ErrorCode.CASE_EXISTS, f"case {case_id} is already recorded")

    # --- Admitting facts made elsewhere -------------------------------------------------

    @admits(ViolationRecorded, FakeTradesConfirmed, SearchCheatingRecorded)
    def _of_a_registered_seller(self, e: EnforcementEvent, records: Records) -> None:
        registered_member(records.member(e.seller_id), e.seller_id, e.occurred_at)

    @admits(ViolationRecorded)
    def _new_violation(self, e: ViolationRecorded, records: Records) -> None:
        self._check_new_violation(e.violation_id, e.occurred_at)

    @admits(FakeTradesConfirmed)
    def _new_fake_trade_case(self, e: FakeTradesConfirmed, records: Records) -> None:
        trades = [known_trade(records.trade(trade_id), trade_id) for trade_id in e.trade_ids]
        self._check_fake_trade_case(e.seller_id, e.case_id, e.trade_ids, trades, e.occurred_at)

    @admits(SearchCheatingRecorded)
    def _new_search_cheating_case(self, e: SearchCheatingRecorded, records: Records) -> None:
        self._check_search_cheating_case(e.case_id, e.item_ids, e.occurred_at)

    # --- Evolution -------------------------------------------------------------------

    @evolves(ViolationRecorded)
    def _violation(self, e: ViolationRecorded) -> None:
        self.seller_id = e.seller_id
        self.violation_ids.add(e.violation_id)

    @evolves(FakeTradesConfirmed)
    def _fake_trades(self, e: FakeTradesConfirmed) -> None:
        self.seller_id = e.seller_id
        self.case_ids.add(e.case_id)
        self.fake_trade_cases += 1
        self.fake_trade_ids.update(e.trade_ids)

    @evolves(SearchCheatingRecorded)
    def _search_cheating(self, e: SearchCheatingRecorded) -> None:
        self.seller_id = e.seller_id
        self.case_ids.add(e.case_id)


def _check_no_repeats(ids: Sequence[str], field: str, what: str) -> None:
    if len(set(ids)) != len(ids):
        raise InvalidInputError(ErrorCode.INVALID_INPUT, f"{field} repeat {what}", field=field)
