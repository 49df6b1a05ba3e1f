"""The ``trustledger`` command line: the write side, the projections, and what-ifs."""

from __future__ import annotations

import ipaddress
import logging
import logging.config
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import msgspec

from api import answers
from api.logs import log_config
from api.metrics import MULTIPROCESS_DIR_ENV, shared_samples_dir
from api.settings import FOLLOWER_SETTING, KEYS_FILE_SETTING, RULEBOOK_SETTING, Settings
from ledger.app import LedgerApp
from ledger.database import DATABASE_URL_SETTING, parse_database_url
from ledger.errors import LedgerError
from ledger.events import Party
from ledger.policy import DEFAULT_RULEBOOK, builtin_rulebook_ids
from ledger.tree_head import TreeHeadSigner
from projections.follower import Follower, FollowerSettings
from projections.leadership import Leadership
from projections.log_tree import LogTreeRunner, open_log_tree
from projections.penalty_feed import open_penalty_feed
from projections.queries import Reputation, UnknownMemberError, Where
from projections.rulebook import load_rulebook
from projections.runner import BATCH_EVENTS_MAX, Runner
from projections.views import MemoryView, ReputationView, SqlView, open_view
from projections.whatif import SellerOutcome, what_if
from tools import bench as bench_command
from tools import keys as keys_command
from tools import settings_list as settings_command
from tools import simulate as simulate_command
from tools import transfer as transfer_command
from tools import verify as verify_command
from tools import witness as witness_command
from tools.arguments import GlobalOptions, pass_global_options, positive_seconds, rfc3339_time
from tools.listing import is_terminal, json_option, print_json, print_table
from tools.progress import Progress
from tools.runtime import tune_garbage_collector
from tools.scenario import SCENARIO_END, run_scenario

LOG_LIMIT_DEFAULT = 100
# How long a rebuild keeps the old version's tables after readers switch:
# longer than servers take to notice (their poll interval) plus the longest
# request on the old version (OLD_VIEW_CLOSE_SECONDS in api.service).
OLD_VERSION_DROP_SECONDS = 90.0


def _global_options(*, after_command: bool) -> list[click.Option]:
    """``--database-url`` and ``--rulebook``, for the group or (given after it) a command."""
    where = " (given here, it wins over one given before the command)"
    return [
        click.Option(
            ["--database-url"],
            default=None,
            expose_value=False,
            callback=_keep_global,
            help=f"memory:, sqlite:///path or postgresql://... (default: ${DATABASE_URL_SETTING} "
            "or sqlite:///trustledger.db)" + (where if after_command else ""),
        ),
        click.Option(
            ["--rulebook"],
            default=None,
            expose_value=False,
            callback=_keep_global,
            help=f"rulebook id or file: {builtin_rulebook_ids()} (default {DEFAULT_RULEBOOK})"
            + (where if after_command else ""),
        ),
    ]


def _keep_global(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """Keeps a global option where every command finds it.

    The group's options are parsed before the command's: a value given after
    the command replaces one given before it, and an option not given leaves
    the value before it (or the default) standing.
    """
    if value is not None and param.name is not None:
        setattr(ctx.ensure_object(GlobalOptions), param.name, value)


class _Group(click.Group):
    """A group whose commands, nested ones included, take the global options too."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        _share_global_options(cmd)
        super().add_command(cmd, name)


def _share_global_options(command: click.Command) -> None:
    command.params.extend(_global_options(after_command=True))
    if isinstance(command, click.Group):
        for inner in command.commands.values():
            _share_global_options(inner)


@click.group(
    "trustledger",
    cls=_Group,
    help="TrustLedger's command line: the write side, the projections, and what-ifs. "
    "--database-url and --rulebook are taken before a command's name or after it.",
)
def cli() -> None:
    tune_garbage_collector()


cli.params.extend(_global_options(after_command=False))


@cli.command(help="append a small built-in marketplace story, project it, show it")
@pass_global_options
def demo(options: GlobalOptions) -> int:
    with _ledger(options.url, options.rulebook) as app, _view(options.url) as view:
        _demo(app, view, options.rulebook)
    return 0


@cli.command(help="fire every deadline due by --now, once")
@click.option("--now", type=rfc3339_time, default=None, help="RFC 3339 time (default: now)")
@pass_global_options
def deadlines(options: GlobalOptions, now: datetime | None) -> int:
    with _ledger(options.url, options.rulebook) as app:
        run = app.run_deadlines(now or app.clock.now())
        print(
            f"now {run.now.isoformat()}: {run.trades_settled} trades looked at, "
            f"{len(run.positions)} facts fired"
        )
    return 0


@cli.command(help="print events in log order as JSON lines")
@click.option("--after", type=int, default=0, help="start after this position")
@click.option(
    "--limit",
    type=int,
    default=LOG_LIMIT_DEFAULT,
    show_default=True,
    help="at most this many events",
)
@pass_global_options
def log(options: GlobalOptions, after: int, limit: int) -> int:
    with _ledger(options.url) as app:
        _print_log(app, after, limit)
    return 0


@cli.command(help="keep the projections up with the log")
@click.option("--once", is_flag=True, help="catch up, then exit")
@pass_global_options
def project(options: GlobalOptions, once: bool) -> int:
    with _ledger(options.url) as app, _view(options.url) as view:
        _project(app, view, once=once)
    return 0


@cli.command(help="replay the log into a fresh view version, then switch")
@click.option(
    "--projection",
    default="reputation",
    type=click.Choice(["reputation"]),
    help="the projection to rebuild (the reputation view)",
)
@click.option("--fresh", is_flag=True, help="discard an unfinished rebuild")
@click.option("--batch-events", type=int, default=BATCH_EVENTS_MAX, help="events per transaction")
@click.option(
    "--drop-after",
    type=float,
    default=OLD_VERSION_DROP_SECONDS,
    metavar="SECONDS",
    help="wait this long after the switch before dropping the old version's tables: "
    "running servers switch within their poll interval, and requests already on the old "
    f"version finish on it (default {OLD_VERSION_DROP_SECONDS:g})",
)
@pass_global_options
def rebuild(
    options: GlobalOptions, *, projection: str, fresh: bool, batch_events: int, drop_after: float
) -> int:
    with _ledger(options.url) as app:
        _rebuild(app, fresh, batch_events, drop_after)
    return 0


@cli.command(help="every seller under two rulebooks")
@click.option("--vs", required=True, help="the rulebook to compare with --rulebook")
@click.option(
    "--as-of", type=rfc3339_time, default=None, help="business time, RFC 3339 (default: now)"
)
@json_option("the report, one object")
@pass_global_options
def whatif(options: GlobalOptions, vs: str, as_of: datetime | None, as_json: bool) -> int:
    with _ledger(options.url) as app:
        _whatif(app, options.rulebook, vs, as_of, as_json=as_json)
    return 0


@cli.command(help="the HTTP API (uvicorn), with the runner and deadline worker")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", type=int, default=8000, show_default=True, help="port")
@click.option(
    "--dev",
    is_flag=True,
    help="development: on a loopback host only, make and print one API key per role "
    "(kept in trustledger-dev-keys.json; the keys file is not read)",
)
@click.option("--demo", is_flag=True, help="append the demo story first")
@click.option(
    "--workers",
    type=int,
    default=None,
    metavar="N",
    help="PostgreSQL: N API worker processes that only answer HTTP; the follower "
    "(runner, log tree, tree heads, deadlines) then runs as `trustledger follow`. "
    "Without it one process runs everything",
)
@click.option(
    "--no-deadline-worker",
    is_flag=True,
    help="do not fire due deadlines on the real clock (commands still settle them)",
)
@click.option(
    "--keys-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="the API keys (default: $TRUSTLEDGER_KEYS_FILE)",
)
@click.option(
    "--log-level",
    default="info",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    help="the server's; below info there are no access lines",
)
@pass_global_options
def serve(options: GlobalOptions, /, **given: Any) -> int:
    _serve(_ServeOptions(**given), options.url, options.rulebook)
    return 0


@cli.command(
    help="PostgreSQL: fold the log into the views and the log tree, sign tree heads and "
    "fire deadlines, beside `serve --workers`; of several, one works and the others stand by",
)
@click.option(
    "--no-deadline-worker",
    is_flag=True,
    help="do not fire due deadlines on the real clock (commands still settle them)",
)
@click.option(
    "--deadline-interval",
    type=positive_seconds,
    default=FollowerSettings().deadline_interval_seconds,
    metavar="SECONDS",
    help="how often due deadlines are fired "
    f"(default {FollowerSettings().deadline_interval_seconds:g})",
)
@click.option(
    "--standby-poll",
    type=positive_seconds,
    default=FollowerSettings().standby_poll_seconds,
    metavar="SECONDS",
    help="how often a standby tries to take over, and the active one checks it still "
    f"holds its lock (default {FollowerSettings().standby_poll_seconds:g})",
)
@pass_global_options
def follow(
    options: GlobalOptions,
    *,
    no_deadline_worker: bool,
    deadline_interval: float,
    standby_poll: float,
) -> int:
    return _follow(
        options.url,
        options.rulebook,
        deadline_worker=not no_deadline_worker,
        deadline_interval=deadline_interval,
        standby_poll=standby_poll,
    )


_AS_OF = click.option(
    "--as-of", type=rfc3339_time, default=None, help="business time, RFC 3339 (default: now)"
)
_AT_POSITION = click.option(
    "--at-position", type=int, default=None, help="the figure as the log stood at this position"
)


@cli.command(help="a member's credit")
@click.argument("member_id", help="the member's platform id")
@_AS_OF
@_AT_POSITION
@click.option(
    "--role",
    type=click.Choice(["seller", "buyer"]),
    default="seller",
    help="credit as a seller or a buyer",
)
@click.option("--explain", is_flag=True, help="every rating and why it counted")
@pass_global_options
def credit(
    options: GlobalOptions,
    *,
    member_id: str,
    as_of: datetime | None,
    at_position: int | None,
    role: Party,
    explain: bool,
) -> int:
    where = Where(as_of=as_of, at_position=at_position)

    def answer(reputation: Reputation) -> msgspec.Struct:
        # The answers HTTP gives, field for field: one name per figure.
        if explain:
            figure = reputation.credit_explained(member_id, role, where)
            return answers.CreditExplainedAnswer(
                answers.credit_answer(figure),
                tuple(answers.rating_explained(counted) for counted in figure.figure.ratings),
            )
        return answers.credit_answer(reputation.credit(member_id, role, where))

    return _query(options, answer)


@cli.command(help="a seller's ranking penalty")
@click.argument("member_id", help="the member's platform id")
@_AS_OF
@_AT_POSITION
@pass_global_options
def penalty(
    options: GlobalOptions, *, member_id: str, as_of: datetime | None, at_position: int | None
) -> int:
    where = Where(as_of=as_of, at_position=at_position)

    def answer(reputation: Reputation) -> msgspec.Struct:
        figure = reputation.penalty(member_id, where)
        return answers.penalty_answer(figure.figure, figure)

    return _query(options, answer)


for _module in (
    keys_command,
    simulate_command,
    transfer_command,
    witness_command,
    verify_command,
    bench_command,
    settings_command,
):
    _module.register(cli)


def _print_log(app: LedgerApp, after: int, limit: int) -> None:
    for notification in app.read_log(after, limit):
        print_json(
            {
                "position": notification.id,
                "topic": notification.topic,
                "body": msgspec.Raw(notification.state),
            }
        )


def _demo(app: LedgerApp, view: ReputationView, rulebook: str) -> None:
    results = run_scenario(app)
    written = sum(len(result.positions) for _, result in results if not result.replayed)
    replayed = sum(1 for _, result in results if result.replayed)
    run = app.run_deadlines(SCENARIO_END)
    Runner(app, view).catch_up()
    print(f"database: {app.database_url}")
    print(
        f"{len(results)} commands: {written} events written, {replayed} replayed "
        f"(idempotency keys make the story safe to run again)"
    )
    print(f"deadlines due by {SCENARIO_END.isoformat()}: {len(run.positions)} facts fired")
    print()
    for notification in app.iter_log():
        event = app.decode(notification)
        print(f"{notification.id:>4}  {event.occurred_at:%Y-%m-%d %H:%M}  {notification.topic}")
    reputation = Reputation(view, app.clock, default_rulebook=rulebook)
    where = Where(as_of=SCENARIO_END)
    print(f"\nas of {SCENARIO_END:%Y-%m-%d}, under {reputation.rulebook().scoring_stamp}:")
    for seller in ("bob-shop", "dave-store"):
        credit = reputation.credit(seller, "seller", where).figure
        penalty = reputation.penalty(seller, where).figure
        print(
            f"  {seller:<11} credit {credit.score:>3} ({credit.level.name}), "
            f"searchable {penalty.searchable}, multiplier {penalty.multiplier}, "
            f"reasons {[r.code for r in penalty.reasons]}"
        )


def _rebuild(app: LedgerApp, fresh: bool, batch_events: int, drop_after: float) -> None:
    active = open_view(app.database_url)
    if not isinstance(active, SqlView):
        raise SystemExit("a memory view is rebuilt by every process that opens it")
    green_version = active.version + 1
    green = _sql_view(app.database_url, green_version)
    if fresh and green.position() > 0:
        green.drop()
        green = _sql_view(app.database_url, green_version)
    start = green.position()
    if start:
        print(
            f"resuming the rebuild of version {green_version} after position {start}",
            file=sys.stderr,
        )
    total = app.recorder.max_notification_id() or 0
    progress = Progress(f"rebuild v{green_version}", total)
    Runner(app, green, batch_events=batch_events).catch_up(
        lambda position, _done: progress.update(position)
    )
    progress.finish(green.position())
    green.activate()
    print(f"readers switched to version {green_version} at position {green.position()}", flush=True)
    if drop_after > 0:
        print(f"dropping version {active.version} in {drop_after:g} s", file=sys.stderr)
        time.sleep(drop_after)
    active.drop()
    green.close()
    active.close()


def _sql_view(url: str, version: int) -> SqlView:
    view = open_view(url, version=version)
    if not isinstance(view, SqlView):
        raise TypeError("only stored views have versions")
    return view


def _whatif(
    app: LedgerApp, a: str, b: str, as_of: datetime | None, *, as_json: bool = False
) -> None:
    view = MemoryView()
    total = app.recorder.max_notification_id() or 0
    progress = Progress("replay", total)
    Runner(app, view).catch_up(lambda position, _done: progress.update(position))
    progress.finish(view.position())
    market = view.market
    sellers = (
        f for f in (market.file(m) for m in sorted(market.members)) if f is not None and f.as_seller
    )
    report = what_if(sellers, load_rulebook(a), load_rulebook(b), as_of or app.clock.now())
    if as_json:
        print_json(report)
        return
    levels = (
        f"level changed {report.level_changed}"
        if report.level_changed is not None
        else "levels on different scales (see where sellers land)"
    )
    print(
        f"{report.sellers} sellers as of {report.as_of.isoformat()}: "
        f"{report.rulebook} vs {report.versus}\n"
        f"  {levels}, searchable changed {report.searchable_changed}, "
        f"sort_hidden changed {report.sort_hidden_changed}, "
        f"multiplier changed {report.multiplier_changed}"
    )
    if is_terminal():
        if report.level_moves:
            moves = [(m.before, m.after, str(m.sellers)) for m in report.level_moves]
            print_table(("level before", "level after", "sellers"), moves, title="level moves")
        if report.changes:
            changes = [(c.seller_id, _outcome(c.before), _outcome(c.after)) for c in report.changes]
            print_table(
                ("seller", f"under {report.rulebook}", f"under {report.versus}"),
                changes,
                title="sellers whose standing changes",
            )
        return
    for move in report.level_moves:
        print(f"  level {move.before} -> {move.after}: {move.sellers} seller(s)")
    for change in report.changes:
        print(f"  {change.seller_id}: {_outcome(change.before)} -> {_outcome(change.after)}")


def _outcome(outcome: SellerOutcome) -> str:
    shown = "shown" if outcome.searchable else "hidden from search"
    sorted_ = ", sort hidden" if outcome.sort_hidden else ""
    return f"{outcome.level_name}, {shown}, x{outcome.multiplier:g}{sorted_}"


def _query(options: GlobalOptions, answer: Callable[[Reputation], msgspec.Struct]) -> int:
    with _ledger(options.url) as app, _view(options.url) as view:
        Runner(app, view).catch_up()
        reputation = Reputation(
            view, app.clock, default_rulebook=options.rulebook, time_at=app.recorded_at
        )
        print_json(answer(reputation))
    return 0


@contextmanager
def _ledger(url: str, rulebook: str = DEFAULT_RULEBOOK) -> Iterator[LedgerApp]:
    """The ledger for one command; its refusals end the command with status 2."""
    app = LedgerApp(url, rulebook=rulebook)
    try:
        yield app
    except LedgerError as error:
        print(f"refused ({error.code}): {error.detail}", file=sys.stderr)
        raise click.exceptions.Exit(2) from error
    except UnknownMemberError as error:
        print(f"unknown member: {error}", file=sys.stderr)
        raise click.exceptions.Exit(2) from error
    except BrokenPipeError:
        # The reader (e.g. `| head`) has gone; that is not an error of ours.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces the closed stream
    finally:
        app.close()


@contextmanager
def _view(url: str) -> Iterator[ReputationView]:
    view = open_view(url)
    try:
        yield view
    finally:
        view.close()


@dataclass(frozen=True)
class _ServeOptions:
    host: str
    port: int
    dev: bool
    demo: bool
    workers: int | None
    no_deadline_worker: bool
    keys_file: Path | None
    log_level: str


def _serve(args: _ServeOptions, url: str, rulebook: str) -> None:
    import uvicorn  # noqa: PLC0415 - only the server needs it

    from api.admission import BoundedHttpProtocol  # noqa: PLC0415 - as create_app
    from api.main import create_app  # noqa: PLC0415 - keeps the other commands light

    if args.dev and not _loopback(args.host):
        raise SystemExit(
            f"--dev serves on a loopback address only (127.0.0.1, ::1, localhost), "
            f"not {args.host!r}: its keys are printed to the console"
        )
    overrides: dict[str, object] = {
        "database_url": url,
        "rulebook": rulebook,
        "dev_keys": args.dev,
        "deadline_worker": not args.no_deadline_worker,
    }
    if args.keys_file is not None:
        overrides["keys_file"] = args.keys_file
    settings = Settings.from_environment(**overrides)
    if args.workers is not None:
        _check_workers(args, url)
    if args.demo:
        app = LedgerApp(url, rulebook=rulebook)
        try:
            run_scenario(app)
        finally:
            app.close()
    if args.workers is not None:
        samples, made_here = shared_samples_dir()
        # Each worker builds its own app from the environment (a spawned process).
        os.environ.update(
            {
                DATABASE_URL_SETTING: url,
                RULEBOOK_SETTING: rulebook,
                KEYS_FILE_SETTING: str(settings.keys_file),
                FOLLOWER_SETTING: "apart",
                MULTIPROCESS_DIR_ENV: str(samples),
            }
        )
        try:
            uvicorn.run(
                "api.main:create_app",
                factory=True,
                workers=args.workers,
                host=args.host,
                port=args.port,
                log_level=args.log_level,
                log_config=log_config(settings.log_format, args.log_level),
                access_log=False,  # the service writes its own access lines
                http=BoundedHttpProtocol,
            )
        finally:
            if made_here:
                shutil.rmtree(samples, ignore_errors=True)
        return
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        log_config=log_config(settings.log_format, args.log_level),
        access_log=False,  # the service writes its own access lines
        http=BoundedHttpProtocol,
    )


def _check_workers(args: _ServeOptions, url: str) -> None:
    if args.workers is not None and args.workers < 1:
        raise SystemExit("--workers is at least 1")
    if parse_database_url(url).kind != "postgresql":
        raise SystemExit(
            "--workers needs PostgreSQL: the embedded SQLite default runs one process "
            "with everything inside (serve without --workers)"
        )
    if args.dev:
        raise SystemExit("--dev makes keys for one process; give the workers a --keys-file")


def _follow(
    url: str,
    rulebook: str,
    *,
    deadline_worker: bool,
    deadline_interval: float,
    standby_poll: float,
) -> int:
    """The follower beside API workers, elected among its peers by a PostgreSQL lock."""
    if parse_database_url(url).kind != "postgresql":
        raise SystemExit(
            "follow runs beside `serve --workers` on PostgreSQL; with SQLite, `serve` "
            "runs the follower inside"
        )
    settings = Settings.from_environment(database_url=url, rulebook=rulebook)
    ledger = LedgerApp(url, rulebook=rulebook)
    feed = open_penalty_feed(url, load_rulebook(rulebook).scoring_stamp)
    view = open_view(url)
    tree = open_log_tree(url)
    signer = (
        TreeHeadSigner.from_file(settings.tree_head_key)
        if settings.tree_head_key is not None
        else None
    )
    follower = Follower(
        ledger,
        view,
        tree,
        clock=ledger.clock,
        signer=signer,
        settings=settings.follower_settings(
            deadline_interval_seconds=deadline_interval,
            deadline_worker=deadline_worker,
            standby_poll_seconds=standby_poll,
        ),
        leadership=Leadership(url),
        feed=feed,
        rulebook=rulebook,
    )
    logging.config.dictConfig(log_config(settings.log_format, "info"))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(f"follower pid {os.getpid()}: standing by for the follower lock", file=sys.stderr)
    try:
        follower.run(stop)
    finally:
        follower.view.close()
        feed.close()
        tree.close()
        ledger.close()
    return 0


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name other than localhost may resolve anywhere
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line (``argv``, else the process's); the exit status.

    A usage error (an unknown option, a bad value) is printed on stderr with
    status 2; a command's own refusals return their status or exit.
    """
    try:
        status = cli.main(
            args=None if argv is None else list(argv),
            prog_name="trustledger",
            standalone_mode=False,
        )
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.Abort:  # Ctrl-C
        print("aborted", file=sys.stderr)
        return 130
    return status if isinstance(status, int) else 0


def parse(argv: Sequence[str]) -> click.Context:
    """The command ``argv`` names, its options parsed and checked, nothing run.

    A usage error raises ``click.UsageError``, as it would end ``main``.
    """
    command: click.Command = cli
    ctx = click.Context(cli, info_name="trustledger")
    rest = list(argv)
    while isinstance(command, click.Group):
        # A group's own parse_args keeps the command's name aside; the base one hands it back.
        rest = click.Command.parse_args(command, ctx, rest)
        if not rest:
            ctx.fail("Missing command.")
        name, found, rest = command.resolve_command(ctx, rest)
        if found is None or name is None:
            ctx.fail("Missing command.")
        command = found
        ctx = click.Context(command, info_name=name, parent=ctx)
    command.parse_args(ctx, rest)
    return ctx


def _project(app: LedgerApp, view: ReputationView, *, once: bool) -> None:
    """Keep both projections up: the reputation view and the log's Merkle tree."""
    runner = Runner(app, view)
    tree = open_log_tree(app.database_url)
    tree_runner = LogTreeRunner(app, tree)
    try:
        if once:
            processed = runner.catch_up()
            hashed = tree_runner.catch_up()
            print(f"caught up: {processed} events, view at position {view.position()}")
            print(f"log tree: {hashed} events hashed, {tree.size} leaves")
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        print(f"following the log from position {view.position()} (Ctrl-C stops)", file=sys.stderr)
        hasher = threading.Thread(
            target=tree_runner.follow, args=(stop,), kwargs={"poll_seconds": 1.0}, daemon=True
        )
        hasher.start()
        try:
            runner.follow(stop)
        except KeyboardInterrupt:
            stop.set()
        hasher.join(timeout=10)
    finally:
        tree.close()


if __name__ == "__main__":
    raise SystemExit(main())
