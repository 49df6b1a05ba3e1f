"""SellerEnforcement: violations, fake-trade confirmations and search cheating, per seller."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from uuid import UUID

from ledger.aggregate import Aggregate, evolves
from ledger.commands import ConfirmFakeTrades, RecordSearchCheating, RecordViolation
from ledger.errors import ErrorCode, InvalidInputError, StateConflictError
from ledger.events import FakeTradesConfirmed, SearchCheatingRecorded, ViolationRecorded
from ledger.trade import Trade


class SellerEnforcement(Aggregate):
    def __init__(self, aggregate_id: UUID) -> None:
        super().__init__(aggregate_id)
        self.seller_id = ""
        self.violation_ids: set[str] = set()
        self.case_ids: set[str] = set()
        self.fake_trade_cases = 0
        self.fake_trade_ids: set[str] = set()

    def record_violation(self, command: RecordViolation) -> None:
        self.check_not_before_last_fact(command.occurred_at)
        if command.violation_id in self.violation_ids:
            raise StateConflictError(
                ErrorCode.VIOLATION_EXISTS,
                f"violation {command.violation_id} is already recorded",
            )
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
        if len(set(command.trade_ids)) != len(command.trade_ids):
            raise InvalidInputError(
                ErrorCode.INVALID_INPUT, "trade_ids repeat a trade", field="trade_ids"
            )
        self.check_not_before_last_fact(command.occurred_at)
        self._check_new_case(command.case_id)
        for trade in trades:
            if trade.created_at is not None and trade.created_at > command.occurred_at:
                raise StateConflictError(
                    ErrorCode.OUT_OF_ORDER,
                    f"trade {trade.trade_id} was created after this case's time",
                    field="occurred_at",
                )
            if trade.seller_id != command.seller_id:
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
        if len(set(command.item_ids)) != len(command.item_ids):
            raise InvalidInputError(
                ErrorCode.INVALID_INPUT, "item_ids repeat an item", field="item_ids"
            )
        self.check_not_before_last_fact(command.occurred_at)
        self._check_new_case(command.case_id)
        self.record(
            SearchCheatingRecorded,
            occurred_at=command.occurred_at,
            seller_id=command.seller_id,
            case_id=command.case_id,
            item_ids=tuple(command.item_ids),
            kind=command.kind,
        )

    def _check_new_case(self, case_id: str) -> None:
        if case_id in self.case_ids:
            raise StateConflictError(ErrorCode.CASE_EXISTS, f"case {case_id} is already recorded")

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
