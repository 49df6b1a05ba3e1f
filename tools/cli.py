"""The ``trustledger`` command line: the write side, the projections, and what-ifs."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import logging.config
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

import msgspec

from api import answers
from api.logs import log_config
from api.metrics import MULTIPROCESS_DIR_ENV, shared_samples_dir
from api.settings import FOLLOWER_SETTING, KEYS_FILE_SETTING, RULEBOOK_SETTING, Settings
from ledger.app import LedgerApp
from ledger.database import (
    DATABASE_URL_SETTING,
    database_url_from_environment,
    parse_database_url,
)
from ledger.errors import LedgerError
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
from tools.arguments import positive_seconds, rfc3339_time
from tools.progress import Progress
from tools.runtime import tune_garbage_collector
from tools.scenario import SCENARIO_END, run_scenario

LOG_LIMIT_DEFAULT = 100
# How long a rebuild keeps the old version's tables after readers switch:
# longer than servers take to notice (their poll interval) plus the longest
# request on the old version (OLD_VIEW_CLOSE_SECONDS in api.service).
OLD_VERSION_DROP_SECONDS = 90.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trustledger", description=__doc__)
    _global_options(parser, database_url=None, rulebook=DEFAULT_RULEBOOK)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "demo", help="append a small built-in marketplace story, project it, show it"
    )
    deadlines = commands.add_parser("deadlines", help="fire every deadline due by --now, once")
    deadlines.add_argument(
        "--now", type=rfc3339_time, default=None, help="RFC 3339 time (default: now)"
    )
    log = commands.add_parser("log", help="print events in log order as JSON lines")
    log.add_argument("--after", type=int, default=0, help="start after this position")
    log.add_argument(
        "--limit",
        type=int,
        default=LOG_LIMIT_DEFAULT,
        help="at most this many events (default %(default)s)",
    )
    project = commands.add_parser("project", help="keep the projections up with the log")
    project.add_argument("--once", action="store_true", help="catch up, then exit")
    rebuild = commands.add_parser(
        "rebuild", help="replay the log into a fresh view version, then switch"
    )
    rebuild.add_argument(
        "--projection",
        default="reputation",
        choices=["reputation"],
        help="the projection to rebuild (the reputation view)",
    )
    rebuild.add_argument("--fresh", action="store_true", help="discard an unfinished rebuild")
    rebuild.add_argument(
        "--batch-events", type=int, default=BATCH_EVENTS_MAX, help="events per transaction"
    )
    rebuild.add_argument(
        "--drop-after",
        type=float,
        default=OLD_VERSION_DROP_SECONDS,
        metavar="SECONDS",
        help="wait this long after the switch before dropping the old version's tables: "
        "running servers switch within their poll interval, and requests already on the old "
        f"version finish on it (default {OLD_VERSION_DROP_SECONDS:g})",
    )
    whatif = commands.add_parser("whatif", help="every seller under two rulebooks")
    whatif.add_argument("--vs", required=True, help="the rulebook to compare with --rulebook")
    whatif.add_argument(
        "--as-of", type=rfc3339_time, default=None, help="business time, RFC 3339 (default: now)"
    )
    whatif.add_argument("--json", action="store_true", help="the report as one JSON object")
    serve = commands.add_parser(
        "serve", help="the HTTP API (uvicorn), with the runner and deadline worker"
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default %(default)s)"
    )
    serve.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    serve.add_argument(
        "--dev",
        action="store_true",
        help="development: on a loopback host only, make and print one API key per role "
        "(kept in trustledger-dev-keys.json; the keys file is not read)",
    )
    serve.add_argument("--demo", action="store_true", help="append the demo story first")
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="PostgreSQL: N API worker processes that only answer HTTP; the follower "
        "(runner, log tree, tree heads, deadlines) then runs as `trustledger follow`. "
        "Without it one process runs everything",
    )
    serve.add_argument(
        "--no-deadline-worker",
        action="store_true",
        help="do not fire due deadlines on the real clock (commands still settle them)",
    )
    serve.add_argument(
        "--keys-file",
        type=Path,
        default=None,
        help="the API keys (default: $TRUSTLEDGER_KEYS_FILE)",
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="the server's; below info there are no access lines",
    )
    follow = commands.add_parser(
        "follow",
        help="PostgreSQL: fold the log into the views and the log tree, sign tree heads and "
        "fire deadlines, beside `serve --workers`; of several, one works and the others stand by",
    )
    follow.add_argument(
        "--no-deadline-worker",
        action="store_true",
        help="do not fire due deadlines on the real clock (commands still settle them)",
    )
    follow.add_argument(
        "--deadline-interval",
        type=positive_seconds,
        default=FollowerSettings().deadline_interval_seconds,
        metavar="SECONDS",
        help="how often due deadlines are fired (default %(default)g)",
    )
    follow.add_argument(
        "--standby-poll",
        type=positive_seconds,
        default=FollowerSettings().standby_poll_seconds,
        metavar="SECONDS",
        help="how often a standby tries to take over, and the active one checks it still "
        "holds its lock (default %(default)g)",
    )
    keys_command.register(commands)
    simulate_command.register(commands)
    transfer_command.register(commands)
    witness_command.register(commands)
    verify_command.register(commands)
    bench_command.register(commands)
    settings_command.register(commands)
    for name, text in (("credit", "a member's credit"), ("penalty", "a seller's ranking penalty")):
        query = commands.add_parser(name, help=text)
        query.add_argument("member_id", help="the member's platform id")
        query.add_argument(
            "--as-of",
            type=rfc3339_time,
            default=None,
            help="business time, RFC 3339 (default: now)",
        )
        query.add_argument(
            "--at-position",
            type=int,
            default=None,
            help="the figure as the log stood at this position",
        )
        if name == "credit":
            query.add_argument(
                "--role",
                choices=["seller", "buyer"],
                default="seller",
                help="credit as a seller or a buyer",
            )
            query.add_argument(
                "--explain", action="store_true", help="every rating and why it counted"
            )
    # The global options are taken after the subcommand too: given there, they
    # win; not given, the value before the subcommand (or the default) stands.
    for command in _subcommands(commands):
        _global_options(command, database_url=argparse.SUPPRESS, rulebook=argparse.SUPPRESS)
    return parser


def _global_options(
    parser: argparse.ArgumentParser, *, database_url: object, rulebook: object
) -> None:
    parser.add_argument(
        "--database-url",
        default=database_url,
        help=f"memory:, sqlite:///path or postgresql://... (default: ${DATABASE_URL_SETTING} "
        "or sqlite:///trustledger.db)",
    )
    parser.add_argument(
        "--rulebook",
        default=rulebook,
        help=f"rulebook id or file: {builtin_rulebook_ids()}",
    )


def _subcommands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> Iterator[argparse.ArgumentParser]:
    """Every subcommand's parser, those of nested subcommands (keys add...) included."""
    for command in commands.choices.values():
        nested = [a for a in command._actions if isinstance(a, argparse._SubParsersAction)]
        if nested:
            for inner in nested:
                yield from _subcommands(inner)
        else:
            yield command


def _print_json(value: object) -> None:
    sys.stdout.write(msgspec.json.encode(value).decode() + "\n")


def _print_log(app: LedgerApp, after: int, limit: int) -> None:
    for notification in app.read_log(after, limit):
        _print_json(
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
        _print_json(report)
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
    for move in report.level_moves:
        print(f"  level {move.before} -> {move.after}: {move.sellers} seller(s)")
    for change in report.changes:
        print(f"  {change.seller_id}: {_outcome(change.before)} -> {_outcome(change.after)}")


def _outcome(outcome: SellerOutcome) -> str:
    shown = "shown" if outcome.searchable else "hidden from search"
    sorted_ = ", sort hidden" if outcome.sort_hidden else ""
    return f"{outcome.level_name}, {shown}, x{outcome.multiplier:g}{sorted_}"


def _query(app: LedgerApp, view: ReputationView, args: argparse.Namespace) -> None:
    Runner(app, view).catch_up()
    reputation = Reputation(
        view, app.clock, default_rulebook=args.rulebook, time_at=app.recorded_at
    )
    where = Where(as_of=args.as_of, at_position=args.at_position)
    # The answers HTTP gives, field for field: one name per figure.
    if args.command == "penalty":
        penalty = reputation.penalty(args.member_id, where)
        answer: msgspec.Struct = answers.penalty_answer(penalty.figure, penalty)
    elif args.explain:
        credit = reputation.credit_explained(args.member_id, args.role, where)
        answer = answers.CreditExplainedAnswer(
            answers.credit_answer(credit),
            tuple(answers.rating_explained(counted) for counted in credit.figure.ratings),
        )
    else:
        answer = answers.credit_answer(reputation.credit(args.member_id, args.role, where))
    _print_json(answer)


def _serve(args: argparse.Namespace, url: str) -> None:
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
        "rulebook": args.rulebook,
        "dev_keys": args.dev,
        "deadline_worker": not args.no_deadline_worker,
    }
    if args.keys_file is not None:
        overrides["keys_file"] = args.keys_file
    settings = Settings.from_environment(**overrides)
    if args.workers is not None:
        _check_workers(args, url)
    if args.demo:
        app = LedgerApp(url, rulebook=args.rulebook)
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
                RULEBOOK_SETTING: args.rulebook,
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


def _check_workers(args: argparse.Namespace, url: str) -> None:
    if args.workers < 1:
        raise SystemExit("--workers is at least 1")
    if parse_database_url(url).kind != "postgresql":
        raise SystemExit(
            "--workers needs PostgreSQL: the embedded SQLite default runs one process "
            "with everything inside (serve without --workers)"
        )
    if args.dev:
        raise SystemExit("--dev makes keys for one process; give the workers a --keys-file")


def _follow(args: argparse.Namespace, url: str) -> int:
    """The follower beside API workers, elected among its peers by a PostgreSQL lock."""
    if parse_database_url(url).kind != "postgresql":
        raise SystemExit(
            "follow runs beside `serve --workers` on PostgreSQL; with SQLite, `serve` "
            "runs the follower inside"
        )
    settings = Settings.from_environment(database_url=url, rulebook=args.rulebook)
    ledger = LedgerApp(url, rulebook=args.rulebook)
    feed = open_penalty_feed(url, load_rulebook(args.rulebook).scoring_stamp)
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
            deadline_interval_seconds=args.deadline_interval,
            deadline_worker=not args.no_deadline_worker,
            standby_poll_seconds=args.standby_poll,
        ),
        leadership=Leadership(url),
        feed=feed,
        rulebook=args.rulebook,
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
    args = _parser().parse_args(argv)
    tune_garbage_collector()
    url = args.database_url or database_url_from_environment()
    if args.command == "serve":
        _serve(args, url)
        return 0
    if args.command == "follow":
        return _follow(args, url)
    if args.command == "keys":
        return keys_command.run(args)
    if args.command == "settings":
        return settings_command.run(args)
    if args.command == "simulate":
        return simulate_command.run(args, url)
    if args.command in ("export", "import"):
        return transfer_command.run(args, url)
    if args.command == "bench":
        return bench_command.run(args)
    if args.command in ("keygen", "audit"):
        return witness_command.run(args)
    if args.command == "verify":
        return verify_command.run(args, url)
    app = LedgerApp(
        url, rulebook=args.rulebook if args.command in ("demo", "deadlines") else DEFAULT_RULEBOOK
    )
    view: ReputationView | None = None
    try:
        if args.command == "demo":
            view = open_view(url)
            _demo(app, view, args.rulebook)
        elif args.command == "deadlines":
            run = app.run_deadlines(args.now or app.clock.now())
            print(
                f"now {run.now.isoformat()}: {run.trades_settled} trades looked at, "
                f"{len(run.positions)} facts fired"
            )
        elif args.command == "log":
            _print_log(app, args.after, args.limit)
        elif args.command == "project":
            view = open_view(url)
            _project(app, view, once=args.once)
        elif args.command == "rebuild":
            _rebuild(app, args.fresh, args.batch_events, args.drop_after)
        elif args.command == "whatif":
            _whatif(app, args.rulebook, args.vs, args.as_of, as_json=args.json)
        else:
            view = open_view(url)
            _query(app, view, args)
    except LedgerError as error:
        print(f"refused ({error.code}): {error.detail}", file=sys.stderr)
        return 2
    except UnknownMemberError as error:
        print(f"unknown member: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader (e.g. `| head`) has gone; that is not an error of ours.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces the closed stream
    finally:
        if view is not None:
            view.close()
        app.close()
    return 0


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
