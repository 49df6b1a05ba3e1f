"""Complaint: a customer-service case about one trade, and the slot that keeps it unique.

docs/rules.md §2 allows one case per trade. The case is found by its platform id
(``Complaint``), the trade's one case by the trade (``TradeComplaintSlot``);
both are created in one save, so a second filing on a trade — even a
concurrent one — is refused and names the case that holds the slot.

A fact made elsewhere (a bulk import) is admitted by the rules marked
``@admits``: the checks of the command that records it, and a match with what
the case copies from its trade (the trade, its parties and its amount).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from ledger.aggregate import Aggregate, Context, Records, admits, evolves
from ledger.commands import FileComplaint, PayCompensation
from ledger.errors import ErrorCode, InvalidInputError, NotFoundError, StateConflictError
from ledger.events import (
    CompensationKind,
    CompensationPaid,
    ComplaintEscalated,
    ComplaintEvent,
    ComplaintFiled,
    ComplaintFollowUpRecorded,
    ComplaintOutcome,
    ComplaintRuled,
    ComplaintSlotTaken,
)
from ledger.policy import ComplaintType, Policy, Severity
from ledger.trade import Trade, known_trade

COMPENSATION_KINDS_WITH_AMOUNT = {"refund", "voucher", "cash"}
# The facts of a case after its filing; each needs the case still open.
LATER_FACTS = (ComplaintEscalated, ComplaintFollowUpRecorded, CompensationPaid, ComplaintRuled)


def known_complaint(complaint: Complaint | None, complaint_id: str) -> Complaint:
    """The case a command or fact names, which must exist."""
    if complaint is None:
        raise NotFoundError(ErrorCode.UNKNOWN_COMPLAINT, f"no complaint {complaint_id}")
    return complaint


class TradeComplaintSlot(Aggregate):
    def __init__(self, aggregate_id: UUID) -> None:
        super().__init__(aggregate_id)
        self.complaint_id = ""

    @admits(ComplaintSlotTaken)
    def _taken_by_its_case(self, e: ComplaintSlotTaken, records: Records) -> None:
        known_complaint(records.complaint(e.complaint_id), e.complaint_id).check_named_by(e)

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
        _check_after_creation(trade, command.occurred_at)
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
        self._check_not_escalated()
        self.record(ComplaintEscalated, occurred_at=at, **self._fields())

    def record_follow_up(self, text: str, at: datetime) -> None:
        self._check_open(at)
        self.record(ComplaintFollowUpRecorded, occurred_at=at, text=text, **self._fields())

    def pay_compensation(self, command: PayCompensation, currency: str) -> None:
        needs_amount = _check_compensation_amount(command.kind, command.amount_minor)
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

    def _check_not_escalated(self) -> None:
        if self.escalated:
            raise StateConflictError(
                ErrorCode.ALREADY_ESCALATED,
                f"complaint {self.complaint_id} is already escalated",
            )

    def check_named_by(self, e: ComplaintEvent) -> None:
        """A fact of this case (or of its trade's slot) repeats its trade and parties."""
        if (e.trade_id, e.buyer_id, e.seller_id) != (self.trade_id, self.buyer_id, self.seller_id):
            raise StateConflictError(
                ErrorCode.NOT_THAT_PARTY,
                f"the trade or parties are not those of complaint {self.complaint_id}",
            )

    # --- Admitting facts made elsewhere -------------------------------------------------

    @admits(ComplaintFiled)
    def _filed_on_its_trade(self, e: ComplaintFiled, records: Records) -> None:
        trade = known_trade(records.trade(e.trade_id), e.trade_id)
        if (e.buyer_id, e.seller_id) != (trade.buyer_id, trade.seller_id):
            raise StateConflictError(
                ErrorCode.NOT_THAT_PARTY, f"the parties are not those of trade {trade.trade_id}"
            )
        _check_after_creation(trade, e.occurred_at)
        trade.check_copied("amount_minor", e.amount_minor, trade.amount_minor)

    @admits(*LATER_FACTS)
    def _follows_the_case(self, e: ComplaintEvent, records: Records) -> None:
        self.check_named_by(e)
        self._check_open(e.occurred_at)

    @admits(ComplaintEscalated)
    def _escalated_once(self, e: ComplaintEscalated, records: Records) -> None:
        self._check_not_escalated()

    @admits(CompensationPaid)
    def _compensation_of_its_kind(self, e: CompensationPaid, records: Records) -> None:
        _check_compensation_amount(e.kind, e.amount_minor)

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


def _check_after_creation(trade: Trade, at: datetime) -> None:
    if trade.created_at is not None and at < trade.created_at:
        raise StateConflictError(
            ErrorCode.OUT_OF_ORDER,
            f"a complaint cannot precede trade {trade.trade_id}'s creation",
            field="occurred_at",
        )


def _check_compensation_amount(kind: CompensationKind, amount_minor: int | None) -> bool:
    """Whether this kind of compensation pays an amount; it has one exactly then."""
    needs_amount = kind in COMPENSATION_KINDS_WITH_AMOUNT
    if needs_amount != (amount_minor is not None):
        need = "needs" if needs_amount else "takes no"
        raise InvalidInputError(
            ErrorCode.INVALID_INPUT,
            f"{kind} compensation {need} amount_minor",
            field="amount_minor",
        )
    return needs_amount
