"""`trustledger simulate`: a deterministic marketplace appended to the ledger.

The simulated period runs from ``--start`` (default 2025-01-01T00:00:00Z) over
``--days``. The ledger refuses business times more than its clock-skew
allowance (5 minutes) after its clock, so its clock must stand after the
period: when the period ended at least ``CLOCK_MARGIN`` ago the real clock is
used (``recorded_at`` is then the real time of recording); when it reaches
into the future, a ``FixedClock`` at the period's end plus ``CLOCK_MARGIN``
records the simulation as if it were appended then. Queries on the real clock
(``trustledger credit`` without ``--as-of``) do not see such future facts;
ask them ``--as-of`` a time inside the period.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta

import click
import msgspec

from ledger.app import LedgerApp
from ledger.clock import Clock, FixedClock, SystemClock
from ledger.errors import LedgerError
from tools.arguments import GlobalOptions, pass_global_options, rfc3339_time
from tools.listing import print_json
from tools.progress import Progress
from tools.simulator import DEFAULT_START, SimulationConfig, SimulationReport, simulate

CLOCK_MARGIN = timedelta(hours=1)


def register(group: click.Group) -> None:
    group.add_command(simulate_command)


@click.command("simulate", help="append a deterministic simulated marketplace")
@click.option("--members", type=int, default=1_000, show_default=True, help="members")
@click.option("--trades", type=int, default=10_000, show_default=True, help="trades")
@click.option("--days", type=int, default=90, show_default=True, help="days of business time")
@click.option("--seed", type=int, default=1, help="the same seed, the same marketplace")
@click.option(
    "--farming-rings", type=int, default=2, show_default=True, help="credit-farming rings"
)
@click.option(
    "--violators", type=int, default=3, show_default=True, help="sellers who break the rules"
)
@click.option(
    "--start",
    type=rfc3339_time,
    default=DEFAULT_START,
    help="RFC 3339 start of the simulated period (default 2025-01-01T00:00:00Z)",
)
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@pass_global_options
def simulate_command(
    options: GlobalOptions,
    *,
    members: int,
    trades: int,
    days: int,
    seed: int,
    farming_rings: int,
    violators: int,
    start: datetime,
    as_json: bool,
) -> int:
    config = SimulationConfig(
        members=members,
        trades=trades,
        days=days,
        seed=seed,
        farming_rings=farming_rings,
        violators=violators,
        start=start,
    )
    return run(config, options.url, options.rulebook, as_json=as_json)


def simulation_clock(config: SimulationConfig, now: datetime) -> Clock:
    """The real clock when the period is past, else a fixed clock just after it."""
    after = config.end + CLOCK_MARGIN
    return SystemClock() if now >= after else FixedClock(after)


def run(config: SimulationConfig, database_url: str, rulebook: str, *, as_json: bool) -> int:
    try:
        config.check()
    except ValueError as error:
        print(f"simulate: {error}", file=sys.stderr)
        return 2
    app = LedgerApp(
        database_url,
        clock=simulation_clock(config, datetime.now(UTC)),
        rulebook=rulebook,
    )
    bar = Progress("simulate", None)

    def planned(total: int) -> None:
        bar.total = total

    started = time.monotonic()
    try:
        report = simulate(app, config, bar.update, on_plan=planned)
    except LedgerError as error:  # the deadline worker's refusals; commands' are counted
        print(f"refused ({error.code}): {error.detail}", file=sys.stderr)
        return 2
    finally:
        app.close()
    bar.finish(report.commands)
    seconds = time.monotonic() - started
    if as_json:
        print_json({**msgspec.to_builtins(report), "seconds": round(seconds, 3)})
    else:
        print(describe(report, seconds))
    return 0


def _z(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def _scores(scores: dict[str, int]) -> str:
    total = sum(scores.values())
    positive, neutral, negative = (scores.get(k, 0) for k in ("positive", "neutral", "negative"))
    return (
        f"{_share(positive, total)} positive "
        f"({positive:,} positive, {neutral:,} neutral, {negative:,} negative)"
    )


def describe(report: SimulationReport, seconds: float) -> str:
    """What a run generated, for people."""
    r = report
    rate = max(seconds, 1e-9)
    lines = [
        f"simulated {r.run_id}: {_z(r.start)} to {_z(r.end)}",
        f"members     {r.members:,} registered, {r.verified:,} verified "
        f"({r.sellers:,} shops; farming-ring accounts included)",
        f"trades      {r.trades:,} ({r.ring_trades:,} by farming rings: {r.rings}; "
        f"{r.closed_unpaid_or_cancelled:,} closed unpaid or cancelled)",
        f"commands    {r.commands:,} in {seconds:,.1f} s ({r.commands / rate:,.0f}/s): "
        f"{r.replayed:,} replayed, {r.refused:,} refused",
        f"events      {r.events_written:,} written ({r.events_written / rate:,.0f}/s), "
        f"{r.deadline_events:,} of them by the deadline worker",
        f"ratings     buyers {_scores(r.buyer_ratings)}",
        f"            sellers {_scores(r.seller_ratings)}",
        f"            {r.revisions:,} revised, {r.withdrawals:,} withdrawn, "
        f"{r.explanations:,} explained, {r.follow_ups:,} follow-ups, {r.shielded:,} shielded",
        f"refunds     {r.refunds:,} ({_share(r.refunds, r.trades)} of trades; "
        f"{r.refunds_before_shipping:,} before shipping, {r.refunds_with_return:,} with return, "
        f"{r.refunds_partial:,} partial)",
        f"disputes    {r.disputes:,} ({r.disputes_seller_at_fault:,} ruled seller at fault)",
        f"complaints  {r.complaints:,} ({r.complaints_upheld:,} upheld)",
        f"enforcement violations: {r.violations:,}, search-cheating cases: {r.search_cheating:,}, "
        f"fake-trade cases: {r.fake_cases:,} ({r.fake_trades:,} trades)",
    ]
    if r.refused:
        lines.append("refused     " + ", ".join(f"{k} {v:,}" for k, v in r.refused_by_code.items()))
        lines.extend(f"  {example}" for example in r.refusal_examples)
    return "\n".join(lines)
