"""A small driver over LedgerApp so tests read as marketplace stories."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from ledger import commands as c
from ledger.app import Appended, LedgerApp, Origin
from ledger.clock import FixedClock
from ledger.errors import LedgerError
from ledger.events import Event, RefundReason

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

R = TypeVar("R")


class Market:
    """A ledger whose clock runs far ahead of the business times used in tests."""

    def __init__(self, app: LedgerApp, clock: FixedClock) -> None:
        self.app = app
        self.clock = clock
        self._keys = itertools.count(1)

    @classmethod
    def open(cls, database_url: str, *, rulebook: str = "taobao-classic") -> Market:
        clock = FixedClock(T0 + timedelta(days=3650))
        return cls(LedgerApp(database_url, clock=clock, rulebook=rulebook), clock)

    def origin(self, key: str | None = None) -> Origin:
        return Origin("test-service", key or f"key-{next(self._keys)}")

    def run(self, method: Callable[[Any, Origin], R], command: Any, key: str | None = None) -> R:
        return method(command, self.origin(key))

    # --- Story steps ---------------------------------------------------------

    def members(self, *member_ids: str, at: datetime = T0) -> None:
        for member_id in member_ids:
            self.run(
                self.app.register_member, c.RegisterMember(member_id=member_id, occurred_at=at)
            )

    def trade(
        self,
        trade_id: str = "T1",
        *,
        at: datetime = T0 + HOUR,
        buyer: str = "buyer-1",
        seller: str = "seller-1",
        item: str = "item-1",
        amount_minor: int = 10_000,
        goods_kind: str = "physical",
        shipping: str = "express",
        register: bool = True,
    ) -> Appended:
        if register:
            for member_id in (buyer, seller):
                if self.app.member(member_id) is None:
                    self.members(member_id)
        return self.run(
            self.app.create_trade,
            new_trade(
                trade_id,
                buyer=buyer,
                seller=seller,
                item=item,
                amount_minor=amount_minor,
                at=at,
                goods_kind=goods_kind,
                shipping=shipping,
            ),
        )

    def pay(self, trade_id: str = "T1", at: datetime = T0 + 2 * HOUR) -> Appended:
        return self.run(
            self.app.pay_into_escrow, c.PayIntoEscrow(trade_id=trade_id, occurred_at=at)
        )

    def ship(self, trade_id: str = "T1", at: datetime = T0 + 3 * HOUR) -> Appended:
        return self.run(self.app.ship_trade, c.ShipTrade(trade_id=trade_id, occurred_at=at))

    def confirm(self, trade_id: str = "T1", at: datetime = T0 + DAY) -> Appended:
        return self.run(
            self.app.confirm_receipt, c.ConfirmReceipt(trade_id=trade_id, occurred_at=at)
        )

    def shipped_trade(self, trade_id: str = "T1", **kwargs: Any) -> None:
        self.trade(trade_id, **kwargs)
        self.pay(trade_id)
        self.ship(trade_id)

    def succeeded_trade(self, trade_id: str = "T1", **kwargs: Any) -> None:
        self.shipped_trade(trade_id, **kwargs)
        self.confirm(trade_id)

    def rate(
        self,
        trade_id: str = "T1",
        rater: str = "buyer",
        score: str = "positive",
        at: datetime = T0 + 2 * DAY,
        **kwargs: Any,
    ) -> Appended:
        return self.run(
            self.app.give_rating,
            c.GiveRating(trade_id=trade_id, rater=rater, score=score, occurred_at=at, **kwargs),  # type: ignore[arg-type]
        )

    def refund(
        self,
        trade_id: str = "T1",
        refund_id: str = "R1",
        *,
        amount_minor: int = 10_000,
        with_return: bool = False,
        at: datetime = T0 + 4 * HOUR,
        reason: RefundReason = "not_received",
    ) -> Appended:
        return self.run(
            self.app.request_refund,
            c.RequestRefund(
                trade_id=trade_id,
                refund_id=refund_id,
                amount_minor=amount_minor,
                reason=reason,
                with_return=with_return,
                occurred_at=at,
            ),
        )

    # --- Looking at the log ----------------------------------------------------

    def events(self) -> list[Event]:
        return [self.app.decode(n) for n in self.app.iter_log()]

    def topics(self, after: int = 0) -> list[str]:
        return [n.topic.removeprefix("trustledger.") for n in self.app.iter_log(after)]

    def log_size(self) -> int:
        return len(list(self.app.iter_log()))

    def refused(self, method: Callable[[Any, Origin], Any], command: Any) -> LedgerError:
        """Run a command that must be refused; check it wrote nothing."""
        before = self.log_size()
        try:
            method(command, self.origin())
        except LedgerError as error:
            after = self.log_size()
            if after != before:
                raise AssertionError(f"a refused command wrote {after - before} events") from error
            return error
        raise AssertionError(f"{type(command).__name__} was not refused")


def new_trade(
    trade_id: str = "T1",
    *,
    buyer: str = "buyer-1",
    seller: str = "seller-1",
    item: str = "item-1",
    amount_minor: int = 10_000,
    at: datetime = T0 + HOUR,
    goods_kind: str = "physical",
    shipping: str = "express",
) -> c.CreateTrade:
    """The command that records a new trade, in CNY."""
    return c.CreateTrade(
        trade_id=trade_id,
        buyer_id=buyer,
        seller_id=seller,
        item_id=item,
        amount_minor=amount_minor,
        currency="CNY",
        goods_kind=goods_kind,  # type: ignore[arg-type]
        shipping=shipping,  # type: ignore[arg-type]
        occurred_at=at,
    )
