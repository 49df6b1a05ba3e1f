"""The view contract, on memory, SQLite and PostgreSQL: rows and position in one
transaction, resumable after a crash, equal to the in-memory fold."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.app import LedgerApp
from ledger.clock import FixedClock
from ledger.events import topic_of
from projections import views
from projections.marketplace import Marketplace
from projections.runner import Progress, Runner
from projections.views import MemoryView, ReputationView, SqlView, open_view
from tests.support import DAY, Market
from tools.scenario import SCENARIO_END, run_scenario

MEMBERS = ("alice", "bob-shop", "carol", "dave-store")


@pytest.fixture
def story_app(database_url: str) -> Iterator[LedgerApp]:
    app = LedgerApp(database_url, clock=FixedClock(SCENARIO_END + timedelta(days=1000)))
    run_scenario(app)
    app.run_deadlines(SCENARIO_END)
    yield app
    app.close()


@pytest.fixture
def view(database_url: str) -> Iterator[ReputationView]:
    """The active view of the backend, closed after the test."""
    opened = open_view(database_url)
    yield opened
    opened.close()


def open_sql_view(url: str, *, version: int | None = None) -> SqlView:
    """A view of a store that keeps its tables (versions, transactions, locks)."""
    view = open_view(url, version=version)
    if not isinstance(view, SqlView):
        raise TypeError(f"{url} keeps no SQL view")
    return view


def oracle(app: LedgerApp) -> Marketplace:
    market = Marketplace()
    for notification in app.iter_log():
        market.apply(app.decode(notification), notification.id)
    return market


def same_files(view: ReputationView, market: Marketplace) -> None:
    for member_id in MEMBERS:
        assert msgspec.to_builtins(view.file(member_id)) == msgspec.to_builtins(
            market.file(member_id)
        )


def test_a_view_folds_the_log_in_batches_and_tracks_its_position(
    story_app: LedgerApp, view: ReputationView
) -> None:
    runner = Runner(story_app, view, batch_events=7)
    processed = runner.catch_up()
    last = story_app.read_log(0, 1000)[-1].id
    assert processed == len(story_app.read_log(0, 1000))
    assert view.position() == last
    same_files(view, oracle(story_app))
    assert view.file("nobody") is None


def test_a_resumed_view_continues_after_its_last_committed_batch(
    story_app: LedgerApp, stored_url: str
) -> None:
    first = open_view(stored_url)
    Runner(story_app, first, batch_events=5).run_batch()
    Runner(story_app, first, batch_events=5).run_batch()
    first.close()  # the process dies here

    resumed = open_view(stored_url)
    assert resumed.position() == story_app.read_log(0, 10)[-1].id
    Runner(story_app, resumed, batch_events=5).catch_up()
    same_files(resumed, oracle(story_app))
    resumed.close()


def test_a_failed_batch_writes_neither_rows_nor_position(
    story_app: LedgerApp, database_url: str, view: ReputationView
) -> None:
    notifications = story_app.read_log(0, 10)
    batch = [(n.id, story_app.decode(n)) for n in notifications]
    broken = [*batch[:5], (batch[4][0], batch[5][1])]  # a repeated position: the fold refuses it
    with pytest.raises(ValueError, match="not after"):
        view.process(broken)
    if database_url != "memory:":
        assert view.position() == 0
        assert view.file("alice") is None


def test_two_writers_taking_turns_each_see_the_others_rows(
    story_app: LedgerApp, stored_url: str
) -> None:
    # A view remembers the rows it wrote last; rows another writer changed
    # in between must be read back, not taken from that memory.
    first, second = open_view(stored_url), open_view(stored_url)
    for turn in range(40):
        writer = first if turn % 2 == 0 else second
        if Runner(story_app, writer, batch_events=3).run_batch() == 0:
            break
    same_files(first, oracle(story_app))
    first.close()
    second.close()


def test_a_failed_batch_leaves_nothing_behind_for_the_next(
    story_app: LedgerApp, stored_url: str
) -> None:
    view = open_view(stored_url)
    batch = story_app.read_events(0, 1000).events
    view.process(batch[:5])
    with pytest.raises(ValueError, match="not after"):
        view.process([*batch[5:12], batch[11]])  # folds seven events, then refuses
    view.process(batch[5:])
    same_files(view, oracle(story_app))
    view.close()


def test_blue_green_rebuild_switches_readers_only_when_activated(
    story_app: LedgerApp, stored_url: str
) -> None:
    blue = open_sql_view(stored_url)
    Runner(story_app, blue).catch_up()
    blue.activate()
    green = open_sql_view(stored_url, version=blue.version + 1)
    still_blue = open_sql_view(stored_url)
    assert still_blue.version == blue.version
    still_blue.close()
    Runner(story_app, green).catch_up()
    green.activate()
    readers = open_sql_view(stored_url)
    assert readers.version == blue.version + 1
    same_files(readers, oracle(story_app))
    for v in (blue, green, readers):
        v.close()


def test_the_runner_follows_new_events(story_app: LedgerApp, view: ReputationView) -> None:
    runner = Runner(story_app, view)
    stop = threading.Event()
    thread = threading.Thread(target=runner.follow, args=(stop,), kwargs={"poll_seconds": 0.05})
    thread.start()
    try:
        market = Market(story_app, story_app.clock)  # type: ignore[arg-type]
        market.members("erin")
        last = story_app.read_log(0, 1000)[-1].id
        for _ in range(100):
            if view.position() >= last:
                break
            threading.Event().wait(0.05)
        assert view.position() == last
    finally:
        stop.set()
        thread.join(timeout=10)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sizes=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=8))
def test_any_batch_sizes_give_the_same_rows_as_one_rebuild(sizes: list[int]) -> None:
    app = LedgerApp("memory:", clock=FixedClock(SCENARIO_END + 1000 * DAY))
    run_scenario(app)
    app.run_deadlines(SCENARIO_END)
    view = MemoryView()
    for size in sizes:
        Runner(app, view, batch_events=size).run_batch()
    Runner(app, view, batch_events=sizes[-1]).catch_up()
    same_files(view, oracle(app))


@pytest.mark.postgres
def test_on_postgres_the_runner_wakes_on_notify_not_on_its_poll(postgres_url: str) -> None:
    app = LedgerApp(postgres_url, clock=FixedClock(SCENARIO_END + 1000 * DAY))
    view = open_view(postgres_url)
    runner = Runner(app, view)
    stop = threading.Event()
    thread = threading.Thread(target=runner.follow, args=(stop,), kwargs={"poll_seconds": 60})
    thread.start()
    try:
        threading.Event().wait(0.3)  # the runner has caught up and waits
        Market(app, app.clock).members("erin")  # type: ignore[arg-type]
        for _ in range(50):
            if view.position() >= 1:
                break
            threading.Event().wait(0.05)
        assert view.position() == 1  # well before the 60-second poll
    finally:
        stop.set()
        thread.join(timeout=10)
        view.close()
        app.close()


class CountedRunner(Runner):
    """A runner that notes how many events each of its catch-ups processed."""

    def __init__(self, app: LedgerApp, view: ReputationView) -> None:
        super().__init__(app, view)
        self.batches: list[int] = []

    def catch_up(self, progress: Progress | None = None, *, until: int | None = None) -> int:
        processed = super().catch_up(progress, until=until)
        self.batches.append(processed)
        return processed


@pytest.mark.postgres
def test_on_postgres_woken_the_runner_gathers_the_appends_behind_the_first(
    postgres_url: str,
) -> None:
    app = LedgerApp(postgres_url, clock=FixedClock(SCENARIO_END + 1000 * DAY))
    view = open_view(postgres_url)
    runner = CountedRunner(app, view)
    stop = threading.Event()
    follow = {"poll_seconds": 60, "gather_seconds": 1.0}
    thread = threading.Thread(target=runner.follow, args=(stop,), kwargs=follow)
    thread.start()
    try:
        threading.Event().wait(0.3)  # the runner has caught up and waits
        market = Market(app, app.clock)  # type: ignore[arg-type]
        market.members("erin")
        threading.Event().wait(0.3)  # within the second it gathers
        market.members("frank")
        for _ in range(100):
            if view.position() >= 2:
                break
            threading.Event().wait(0.05)
        assert view.position() == 2
        # The first catch-up found the empty log; the second folded both appends.
        assert runner.batches == [0, 2]
    finally:
        stop.set()
        thread.join(timeout=10)
        view.close()
        app.close()


def test_facts_no_figure_reads_are_skipped_but_their_positions_are_reached(
    market: Market, view: ReputationView
) -> None:
    market.shipped_trade()  # ends with TradeShipped, which no figure reads
    head = market.log_size()
    assert market.topics()[-1] == "trade.shipped.v1"
    page = market.app.read_events(0, 100, topics=ReputationView.topics())
    assert (page.read, page.reached) == (head, head)
    assert [topic_of(type(e)) for _, e in page.events] == [
        f"trustledger.{t}" for t in market.topics() if t != "trade.shipped.v1"
    ]
    runner = Runner(market.app, view, batch_events=2)
    assert runner.catch_up() == head  # every log event is covered, decoded or not
    assert view.position() == head


def test_a_batch_of_only_skipped_facts_still_moves_the_view_on(
    market: Market, view: ReputationView
) -> None:
    market.trade()
    market.pay()
    runner = Runner(market.app, view)
    runner.catch_up()
    before = view.position()
    market.ship()
    assert runner.run_batch() == 1
    assert view.position() == before + 1 == market.log_size()


@pytest.mark.parametrize("copy_rows_min", [1, 1_000_000])
def test_rows_copied_in_or_sent_as_arrays_give_the_same_view(
    story_app: LedgerApp, view: ReputationView, copy_rows_min: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "COPY_ROWS_MIN", copy_rows_min)
    Runner(story_app, view, batch_events=9).catch_up()  # batches write rows more than once
    same_files(view, oracle(story_app))


def test_a_batch_another_runner_folded_first_is_passed_over(
    story_app: LedgerApp, view: ReputationView
) -> None:
    events = story_app.read_events(0, 1000).events
    view.process(events[:8])
    view.process(events[:5])  # all folded already: nothing changes
    view.process(events[5:12])  # the first three folded already: the rest are
    assert view.position() == events[11][0]
    view.process(events[12:])
    same_files(view, oracle(story_app))


@pytest.mark.postgres
def test_a_runner_waits_for_another_process_batch_then_folds_only_the_rest(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = LedgerApp(postgres_url, clock=FixedClock(SCENARIO_END + 1000 * DAY))
    run_scenario(app)
    events = app.read_events(0, 1000).events
    here, elsewhere = open_sql_view(postgres_url), open_sql_view(postgres_url)  # two pools
    here.process(events[:4])
    applied: list[tuple[str, int]] = []
    apply = Marketplace.apply

    def recording(market: Marketplace, event: Any, position: int) -> Marketplace:
        applied.append((threading.current_thread().name, position))
        return apply(market, event, position)

    monkeypatch.setattr(Marketplace, "apply", recording)
    locked, go_on = threading.Event(), threading.Event()
    write = elsewhere._write

    def held_write(*args: Any) -> Any:
        locked.set()  # the other batch holds the tracking row now
        go_on.wait(10)
        return write(*args)

    monkeypatch.setattr(elsewhere, "_write", held_write)
    other = threading.Thread(target=elsewhere.process, args=(events[4:8],), name="elsewhere")
    other.start()
    assert locked.wait(10)
    runner = threading.Thread(target=here.process, args=(events[4:10],), name="here")
    runner.start()
    runner.join(timeout=0.5)
    assert runner.is_alive()  # waiting for the other batch to commit
    go_on.set()
    other.join(timeout=10)
    runner.join(timeout=10)
    assert [p for who, p in applied if who == "here"] == [p for p, _ in events[8:10]]
    assert here.position() == events[9][0]
    here.process(events[10:])
    same_files(here, oracle(app))
    here.close()
    elsewhere.close()
    app.close()
