"""Commands decided on remembered aggregates only and saved by the writer
thread (the HTTP service's path), on every store: what they write is what
the command writes itself, anything that needs the store is left to the
command, and a refused save goes on as the command would."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from ledger import commands as c
from ledger.app import Appended, LedgerApp, Prepared
from ledger.errors import ConcurrentUpdateError, ErrorCode, InvalidInputError, StateConflictError
from tests.support import DAY, HOUR, T0, Market, new_trade

SAVE_SECONDS = 10


def saved(app: LedgerApp, prepared: Prepared) -> list[int] | Exception:
    """The positions the writer thread saved a prepared command at, or its error."""
    outcome: list[Any] = []
    finished = threading.Event()

    def done(positions: list[int] | None, error: Exception | None) -> None:
        outcome.append(error if error is not None else positions)
        finished.set()

    app.save_prepared(prepared, done)
    assert finished.wait(SAVE_SECONDS)
    result: list[int] | Exception = outcome[0]
    return result


def prepared_trade(m: Market, trade_id: str, key: str) -> Prepared | None:
    return m.app.prepare(m.app.create_trade, new_trade(trade_id), m.origin(key))


def test_a_command_on_remembered_aggregates_is_saved_by_the_writer(market: Market) -> None:
    m = market
    m.members("buyer-1", "seller-1")  # written here, so remembered
    prepared = prepared_trade(m, "T1", "order-1")
    assert prepared is not None and prepared.assumed_new

    positions = saved(m.app, prepared)

    assert isinstance(positions, list) and positions == [m.log_size()]
    record = m.app.trade_record("T1")
    assert [f.position for f in record.facts] == positions
    # The writes are remembered: the next command on the trade is prepared too.
    pay = c.PayIntoEscrow(trade_id="T1", occurred_at=T0 + 2 * HOUR)
    assert m.app.prepare(m.app.pay_into_escrow, pay, m.origin()) is not None
    # And its key answers a repeat with the positions written.
    again = m.run(m.app.create_trade, new_trade("T1"), key="order-1")
    assert again.replayed and list(again.positions) == positions


def test_what_needs_the_store_is_left_to_the_command(market: Market) -> None:
    m = market
    m.members("buyer-1", "seller-1")
    m.trade("T1")
    fresh = (
        LedgerApp(m.app.database_url, clock=m.clock) if m.app.database_url != "memory:" else None
    )
    try:
        if fresh is not None:  # remembers nothing: every member must be read
            assert fresh.prepare(fresh.create_trade, new_trade("T2"), m.origin()) is None
        # A refusal drawn from memories, or a repeat: the store has the last word.
        assert m.app.prepare(m.app.create_trade, new_trade("T1"), m.origin()) is None
    finally:
        if fresh is not None:
            fresh.close()


def test_input_refusals_are_raised_as_the_command_raises_them(market: Market) -> None:
    m = market
    m.members("buyer-1", "seller-1")
    bad = new_trade("T1", amount_minor=-5)
    with pytest.raises(InvalidInputError):
        m.app.prepare(m.app.create_trade, bad, m.origin())
    assert m.log_size() == 2


def test_a_refused_save_of_a_repeat_answers_with_the_first_positions(market: Market) -> None:
    m = market
    m.members("buyer-1", "seller-1")
    first, second = prepared_trade(m, "T1", "k-1"), prepared_trade(m, "T1", "k-1")
    assert first is not None and second is not None
    positions = saved(m.app, first)

    refused = saved(m.app, second)

    assert isinstance(refused, IntegrityError)
    answer = m.app.recover(second)
    assert answer == Appended(positions=tuple(positions), replayed=True)  # type: ignore[arg-type]


def test_an_id_taken_meanwhile_is_refused_as_the_rules_say(market: Market) -> None:
    m = market
    m.members("buyer-1", "seller-1")
    first, second = prepared_trade(m, "T1", "k-1"), prepared_trade(m, "T1", "k-2")
    assert first is not None and second is not None
    saved(m.app, first)
    assert isinstance(saved(m.app, second), IntegrityError)

    with pytest.raises(StateConflictError) as exists:
        m.app.recover(second)

    assert exists.value.code == ErrorCode.TRADE_EXISTS


def test_a_record_moved_on_meanwhile_is_a_conflict_to_retry(market: Market) -> None:
    m = market
    m.members("buyer-1", "seller-1")
    m.trade("T1")
    pay = c.PayIntoEscrow(trade_id="T1", occurred_at=T0 + DAY)
    first = m.app.prepare(m.app.pay_into_escrow, pay, m.origin("p-1"))
    cancel = c.CloseTrade(trade_id="T1", reason="buyer_cancelled", occurred_at=T0 + DAY)
    second = m.app.prepare(m.app.close_trade, cancel, m.origin("p-2"))
    assert first is not None and second is not None and not second.assumed_new
    saved(m.app, first)
    assert isinstance(saved(m.app, second), IntegrityError)

    with pytest.raises(ConcurrentUpdateError):
        m.app.recover(second)
