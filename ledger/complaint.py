"""Complaint: a customer-service case about one trade, and the slot that keeps it unique.

DOMAIN.md §2 allows one case per trade. The case is found by its platform id
(``Complaint``), the trade's one case by the trade (``TradeComplaintSlot``);
both are created in one save, so a second filing on a trade — even a
concurrent one — is refused and names the case that holds the slot.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from ledger.aggregate import Aggregate, Context, evolves
from ledger.commands import FileComplaint, PayCompensation
from ledger.errors import ErrorCode, InvalidInputError, StateConflictError
from ledger.events import (
    CompensationPaid,
    ComplaintEscalated,
    ComplaintFiled,
    ComplaintFollowUpRecorded,
    ComplaintOutcome,
    ComplaintRuled,
    ComplaintSlotTaken,
)
from ledger.policy import ComplaintType, Policy, Severity
from ledger.trade import Trade

COMPENSATION_KINDS_WITH_AMOUNT = {"refund", "voucher", "cash"}


class TradeComplaintSlot(Aggregate):
    def __init__(self, aggregate_id: UUID) -> None:
        super().__init__(aggregate_id)
        self.complaint_id = ""

    @evolves(ComplaintSlotTaken)
    def _taken(self, event: ComplaintSlotTaken) -> None:
        self.complaint_id = event.complaint_id


class Complaint(Aggregate):
    def __init__(self, aggregate_id: UUID) -> None:
        super().__init__(aggregate_id)
        self.complaint_id = self.trade_id = self.buyer_id = self.seller_id = ""
        self.type: ComplaintType = "other"
        self.severity: Severity = "minor"
        self.amount_minor = 0
        self.escalated = False
        self.cash_paid_minor = 0
        self.outcome: ComplaintOutcome | None = None

    @classmethod
    def file(
        cls,
        aggregate_id: UUID,
        slot_id: UUID,
        command: FileComplaint,
        trade: Trade,
        context: Context,
    ) -> tuple[Complaint, TradeComplaintSlot]:
        if command.filed_by is not None and command.filed_by != trade.buyer_id:
            raise StateConflictError(
                ErrorCode.NOT_THAT_PARTY,
                f"{command.filed_by} is not the buyer of trade {trade.trade_id}",
                field="filed_by",
            )
        if trade.created_at is not None and command.occurred_at < trade.created_at:
            raise StateConflictError(
                ErrorCode.OUT_OF_ORDER,
                f"a complaint cannot precede trade {trade.trade_id}'s creation",
                field="occurred_at",
            )
        parties = {
            "complaint_id": command.complaint_id,
            "trade_id": trade.trade_id,
            "buyer_id": trade.buyer_id,
            "seller_id": trade.seller_id,
        }
        complaint = cls(aggregate_id).begin(context)
        complaint.record(
            ComplaintFiled,
            occurred_at=command.occurred_at,
            type=command.type,
            severity=command.severity,
            amount_minor=trade.amount_minor,
            currency=trade.currency,
            evidence=command.evidence,
            **parties,
        )
        slot = TradeComplaintSlot(slot_id).begin(context)
        slot.record(ComplaintSlotTaken, occurred_at=command.occurred_at, **parties)
        return complaint, slot

    def _fields(self) -> dict[str, str]:
        return {
            "complaint_id": self.complaint_id,
            "trade_id": self.trade_id,
            "buyer_id": self.buyer_id,
            "seller_id": self.seller_id,
        }

    def escalate(self, at: datetime) -> None:
        self._check_open(at)
        if self.escalated:
            raise StateConflictError(
                ErrorCode.ALREADY_ESCALATED,
                f"complaint {self.complaint_id} is already escalated",
            )
        self.record(ComplaintEscalated, occurred_at=at, **self._fields())

    def record_follow_up(self, text: str, at: datetime) -> None:
        self._check_open(at)
        self.record(ComplaintFollowUpRecorded, occurred_at=at, text=text, **self._fields())

    def pay_compensation(self, command: PayCompensation, currency: str) -> None:
        needs_amount = command.kind in COMPENSATION_KINDS_WITH_AMOUNT
        if needs_amount != (command.amount_minor is not None):
            need = "needs" if needs_amount else "takes no"
            raise InvalidInputError(
                ErrorCode.INVALID_INPUT,
                f"{command.kind} compensation {need} amount_minor",
                field="amount_minor",
            )
        self._check_open(command.occurred_at)
        self.record(
            CompensationPaid,
            occurred_at=command.occurred_at,
            kind=command.kind,
            amount_minor=command.amount_minor,
            currency=currency if needs_amount else None,
            **self._fields(),
        )

    def rule(self, outcome: ComplaintOutcome, at: datetime) -> None:
        self._check_open(at)
        policy = self.context.book.policy
        ruling = policy.complaint_rulings.of(self.type)
        points = 0
        if outcome == "upheld" and not self._cash_waiver_met(policy):
            points = ruling.points.of(self.severity)
        self.record(
            ComplaintRuled,
            occurred_at=at,
            outcome=outcome,
            complaint_type=self.type,
            severity=self.severity,
            points=points,
            category=ruling.category,
            **self._fields(),
        )

    def _cash_waiver_met(self, policy: Policy) -> bool:
        """A late-shipment case costs nothing if the seller paid enough cash first."""
        waiver = policy.complaint_rulings.of(self.type).cash_waiver
        if waiver is None:
            return False
        # "At least 5%": the share is rounded up to the next minor unit.
        share = -(-self.amount_minor * waiver.share_basis_points // 10_000)
        required = min(
            max(share, waiver.min_major * policy.minor_per_major),
            waiver.max_major * policy.minor_per_major,
        )
        return self.cash_paid_minor >= required

    def _check_open(self, at: datetime) -> None:
        self.check_not_before_last_fact(at)
        if self.outcome is not None:
            raise StateConflictError(
                ErrorCode.COMPLAINT_RULED,
                f"complaint {self.complaint_id} was already ruled {self.outcome}",
            )

    @evolves(ComplaintFiled)
    def _filed(self, e: ComplaintFiled) -> None:
        self.complaint_id, self.trade_id = e.complaint_id, e.trade_id
        self.buyer_id, self.seller_id = e.buyer_id, e.seller_id
        self.type, self.severity, self.amount_minor = e.type, e.severity, e.amount_minor

    @evolves(ComplaintEscalated)
    def _escalated(self, e: ComplaintEscalated) -> None:
        self.escalated = True

    @evolves(ComplaintFollowUpRecorded)
    def _followed_up(self, e: ComplaintFollowUpRecorded) -> None:
        pass

    @evolves(CompensationPaid)
    def _compensated(self, e: CompensationPaid) -> None:
        if e.kind == "cash" and e.amount_minor is not None:
            self.cash_paid_minor += e.amount_minor

    @evolves(ComplaintRuled)
    def _ruled(self, e: ComplaintRuled) -> None:
        self.outcome = e.outcome
