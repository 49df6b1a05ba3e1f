"""Aggregates decide, events evolve.

An aggregate is rebuilt by applying its events in order. A command method
first checks the command against the current state and raises a domain error
if it is refused; only then does it record events, each applied at once, so
later checks in the same command see the new state. Nothing is written until
the application saves what ``collect_events`` returns: a refused command
leaves the log untouched.

A fact that arrives already made (a bulk import) is admitted before it is
applied: ``admit`` runs the rules marked ``@admits`` for its type, and those
rules are the very checks the command methods run (or, for what a command
copies from the state, such as a trade's parties, a comparison with that
state), so every rule is written once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self, TypeVar
from uuid import UUID

import msgspec

from ledger.errors import ErrorCode, InvalidInputError, StateConflictError
from ledger.events import Event
from ledger.policy import PolicyBook

if TYPE_CHECKING:
    from ledger.complaint import Complaint
    from ledger.member import Member
    from ledger.trade import Trade

E = TypeVar("E", bound=Event)
Handler = Callable[[Any, Any], None]
Rule = Callable[[Any, Any, "Records"], None]
R = TypeVar("R", bound=Rule)


class Context(msgspec.Struct, frozen=True):
    """What a command runs under: the recording clock reading and the policy in force."""

    recorded_at: datetime
    book: PolicyBook
    recorded_by: str | None = None  # whose request the facts are written for

    def check_not_future(self, at: datetime, *, field: str) -> None:
        """A business time runs ahead of the ledger's clock by the skew allowance at most."""
        if at <= self.recorded_at:
            return  # the usual case (an import checks every fact): no allowance to work out
        policy = self.book.policy
        if at > self.recorded_at + policy.clock_skew:
            raise InvalidInputError(
                ErrorCode.FUTURE_TIMESTAMP,
                f"{at.isoformat()} is more than {policy.clock_skew_seconds}s "
                "after the ledger's clock",
                field=field,
            )

    def check_currency(self, currency: str) -> None:
        """The ledger keeps every amount in the one currency of its policy."""
        if currency != self.book.policy.currency:
            raise InvalidInputError(
                ErrorCode.CURRENCY_MISMATCH,
                f"this ledger keeps {self.book.policy.currency}, not {currency}",
                field="currency",
            )


class Records(Protocol):
    """The other aggregates a fact names, as whoever admits it knows them (None: unknown)."""

    def member(self, member_id: str) -> Member | None: ...

    def trade(self, trade_id: str) -> Trade | None: ...

    def complaint(self, complaint_id: str) -> Complaint | None: ...


def evolves(
    event_type: type[Event],
) -> Callable[[Callable[[Any, E], None]], Callable[[Any, E], None]]:
    """Mark a method as the state change for one event type."""

    def mark(method: Callable[[Any, E], None]) -> Callable[[Any, E], None]:
        method.__evolves__ = event_type  # type: ignore[attr-defined]
        return method

    return mark


def admits(*event_types: type[Event]) -> Callable[[R], R]:
    """Mark a method as a rule every fact of these types must meet to follow the state."""

    def mark(method: R) -> R:
        method.__admits__ = event_types  # type: ignore[attr-defined]
        return method

    return mark


class Aggregate:
    _handlers: ClassVar[dict[type[Event], Handler]] = {}
    _rules: ClassVar[dict[type[Event], tuple[Rule, ...]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._handlers = {
            member.__evolves__: member
            for member in vars(cls).values()
            if hasattr(member, "__evolves__")
        }
        rules: dict[type[Event], list[Rule]] = {}
        for member in vars(cls).values():  # in the order the class states them
            for event_type in getattr(member, "__admits__", ()):
                rules.setdefault(event_type, []).append(member)
        cls._rules = {event_type: tuple(each) for event_type, each in rules.items()}

    def __init__(self, aggregate_id: UUID) -> None:
        self.id = aggregate_id
        self.version = 0
        self.last_at: datetime | None = None
        self._pending: list[Event] = []
        self._context: Context | None = None

    @classmethod
    def replay(cls, aggregate_id: UUID, events: Iterable[Event]) -> Self | None:
        aggregate = cls(aggregate_id)
        for event in events:
            aggregate.apply(event)
        return aggregate if aggregate.version else None

    def begin(self, context: Context) -> Self:
        self._context = context
        return self

    @property
    def context(self) -> Context:
        if self._context is None:
            raise RuntimeError("begin(context) must be called before a command")
        return self._context

    def apply(self, event: Event) -> None:
        if event.originator_version != self.version + 1:
            raise ValueError(
                f"event v{event.originator_version} does not follow v{self.version} of {self.id}"
            )
        self._handlers[type(event)](self, event)
        self.version = event.originator_version
        self.last_at = event.occurred_at

    def admit(self, event: Event, records: Records) -> None:
        """Refuse a fact that may not follow the current state; change nothing.

        The fact must follow on in time and meet every rule marked for its
        type. Its version and the ids it is filed under are the log's
        business (the importer checks them); ``apply`` then evolves the state.
        """
        self.check_not_before_last_fact(event.occurred_at)
        for rule in self._rules.get(type(event), ()):
            rule(self, event, records)

    def check_not_before_last_fact(self, at: datetime) -> None:
        """Facts of one aggregate form a timeline; a new one cannot precede it."""
        if self.last_at is not None and at < self.last_at:
            raise StateConflictError(
                ErrorCode.OUT_OF_ORDER,
                f"occurred_at {at.isoformat()} is before the last fact of this "
                f"{type(self).__name__.lower()} ({self.last_at.isoformat()})",
                field="occurred_at",
            )

    def record(self, event_type: type[E], *, occurred_at: datetime, **fields: Any) -> E:
        event = event_type(
            originator_id=self.id,
            originator_version=self.version + 1,
            recorded_at=self.context.recorded_at,
            occurred_at=occurred_at,
            policy_version=self.context.book.stamp,
            recorded_by=self.context.recorded_by,
            **fields,
        )
        self.apply(event)
        self._pending.append(event)
        return event

    def collect_events(self) -> list[Event]:
        pending, self._pending = self._pending, []
        return pending

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)

    def next_deadline(self) -> datetime | None:
        """When this aggregate's next time-driven fact falls due, if ever."""
        return None

    def settle(self, until: datetime) -> None:
        """Record every deadline fact due at or before ``until``."""
