"""Member: registration and identity verification."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from ledger.aggregate import Aggregate, Context, Records, admits, evolves
from ledger.errors import ErrorCode, NotFoundError, StateConflictError
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
        self._check_unverified(at)
        self.record(IdentityVerified, occurred_at=at, member_id=self.member_id)

    def _check_unverified(self, at: datetime) -> None:
        self.check_not_before_last_fact(at)
        if self.verified_at is not None:
            raise StateConflictError(
                ErrorCode.ALREADY_VERIFIED,
                f"member {self.member_id} is already verified",
            )

    @admits(IdentityVerified)
    def _verified_once(self, e: IdentityVerified, records: Records) -> None:
        self._check_unverified(e.occurred_at)

    @evolves(MemberRegistered)
    def _registered(self, event: MemberRegistered) -> None:
        self.member_id = event.member_id
        self.registered_at = event.occurred_at

    @evolves(IdentityVerified)
    def _verified(self, event: IdentityVerified) -> None:
        self.verified_at = event.occurred_at


def registered_member(member: Member | None, member_id: str, at: datetime) -> Member:
    """The member a fact at ``at`` names: registered, and by then."""
    if member is None:
        raise NotFoundError(ErrorCode.UNKNOWN_MEMBER, f"{member_id} is not a registered member")
    if member.registered_at is not None and member.registered_at > at:
        raise StateConflictError(
            ErrorCode.OUT_OF_ORDER,
            f"{member_id} registered at {member.registered_at.isoformat()}, after this fact",
            field="occurred_at",
        )
    return member


def member_exists_error(member_id: str) -> StateConflictError:
    return StateConflictError(ErrorCode.MEMBER_EXISTS, f"member {member_id} is already registered")
