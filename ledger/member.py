"""Member: registration and identity verification."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from ledger.aggregate import Aggregate, Context, evolves
from ledger.errors import ErrorCode, StateConflictError
from ledger.events import IdentityVerified, MemberRegistered


class Member(Aggregate):
    def __init__(self, aggregate_id: UUID) -> None:
        super().__init__(aggregate_id)
        self.member_id = ""
        self.registered_at: datetime | None = None
        self.verified_at: datetime | None = None

    @classmethod
    def register(cls, aggregate_id: UUID, member_id: str, at: datetime, context: Context) -> Member:
        member = cls(aggregate_id).begin(context)
        member.record(MemberRegistered, occurred_at=at, member_id=member_id)
        return member

    def verify_identity(self, at: datetime) -> None:
        self.check_not_before_last_fact(at)
        if self.verified_at is not None:
            raise StateConflictError(
                ErrorCode.ALREADY_VERIFIED,
                f"member {self.member_id} is already verified",
            )
        self.record(IdentityVerified, occurred_at=at, member_id=self.member_id)

    @evolves(MemberRegistered)
    def _registered(self, event: MemberRegistered) -> None:
        self.member_id = event.member_id
        self.registered_at = event.occurred_at

    @evolves(IdentityVerified)
    def _verified(self, event: IdentityVerified) -> None:
        self.verified_at = event.occurred_at


def member_exists_error(member_id: str) -> StateConflictError:
    return StateConflictError(ErrorCode.MEMBER_EXISTS, f"member {member_id} is already registered")
