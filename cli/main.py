"""The ``approvals`` command: one entry point for every process of the service.

Heavy modules (the API, the worker, the database layer) are imported inside the
command that needs them, so ``approvals --help`` and ``approvals token`` stay fast
and a broken part of the tree only breaks the commands that use it.

Expected failures (no DATABASE_URL, a malformed policy file, an unknown user, a
database that does not answer) end with one line on stderr and exit code 1,
never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Coroutine, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from cli.database import Sessions, database_errors, load_org, migrate, with_sessions
from cli.errors import CliError
from common.business_calendar import CalendarError
from common.logs import configure_logging, env_log_format
from common.policy_store import PolicyError
from common.redaction import configured_secrets, install_log_redaction
from common.settings import Settings
from domain.reconcile import DEFAULT_LOOKBACK

log = logging.getLogger("approvals.cli")


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment (``overrides``: by variable name, from the command
    line), with a one-line error when they are invalid."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(str(err["msg"]).removeprefix("Value error, ") for err in exc.errors())
        raise CliError(f"invalid configuration: {problems}") from exc
    # From now on the logs mask these values too, not only the shapes of secrets.
    install_log_redaction(configured_secrets(settings))
    configure_logging(settings.log_format)
    return settings


def stack_settings() -> Settings:
    """Settings for a command that works beside a running stack (``cli.dev_env``): in
    development without ``DATABASE_URL``, completed from ``make dev``'s ``dev.env``."""
    from cli.dev_env import with_dev_stack

    return with_dev_stack(load_settings())


def require_database_url(settings: Settings) -> str:
    try:
        return settings.require_database_url()
    except RuntimeError as exc:
        raise CliError(str(exc)) from exc


async def run_until_signalled(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` until it ends or SIGINT/SIGTERM cancels it (a graceful stop)."""
    task = asyncio.ensure_future(main)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        log.info("stopped by signal")


def issue_checked_token(settings: Settings, user_id: str) -> str:
    """A bearer token for ``user_id``, an active user of the directory.

    Never unchecked: a token for a name the directory does not hold would only fail
    later, at the API, with a 401 that does not say why.
    """
    if not settings.database_url:
        raise CliError(
            f"cannot check {user_id!r} against the directory: DATABASE_URL is not set "
            f"and {settings.data_dir / 'dev.env'} does not exist (start `make dev`, or set "
            "DATABASE_URL)"
        )
    from db.directory import DirectoryUser, get_user

    found: list[DirectoryUser | None] = []

    async def work(sessions: Sessions) -> None:
        async with sessions() as session:
            found.append(await get_user(session, user_id))

    with database_errors(settings.database_url):
        asyncio.run(with_sessions(settings.database_url, work))
    user = found[0]
    if user is None:
        raise CliError(f"unknown user {user_id!r}: not in the directory")
    if not user.active:
        raise CliError(f"user {user_id!r} is inactive: no token for them")
    from api.auth import issue_token

    return issue_token(settings, user_id)


# --- commands ------------------------------------------------------------------------------


def require_development(settings: Settings, command: str, why: str) -> None:
    """Refuse a development tool outside development, saying why and what to do instead."""
    if settings.environment != "development":
        raise CliError(
            f"`approvals {command}` runs only in development (APPROVALS_ENV="
            f"{settings.environment}): {why}"
        )


def cmd_dev(args: argparse.Namespace) -> int:
    settings = load_settings()
    require_development(
        settings,
        "dev",
        "it starts a local stack whose mail catcher keeps every mail in local files. "
        "Run `approvals api`, `approvals worker` and a real SMTP server instead",
    )
    from cli.devstack import run_dev

    return run_dev(settings)


def cmd_worker(args: argparse.Namespace) -> int:
    settings = load_settings()
    require_database_url(settings)
    from worker.main import run_worker

    asyncio.run(run_until_signalled(run_worker(settings, args.only)))
    return 0


def cmd_deliverer(args: argparse.Namespace) -> int:
    settings = load_settings()
    require_database_url(settings)
    from worker.deliverer import run_deliverer

    asyncio.run(run_until_signalled(run_deliverer(settings)))
    return 0


def cmd_mailcatcher(args: argparse.Namespace) -> int:
    settings = load_settings()
    require_development(
        settings,
        "mailcatcher",
        "it keeps every mail it is sent in local files, links and all, instead of "
        "delivering it. Point APPROVALS_SMTP_HOST at a real SMTP server",
    )
    from notify.mailcatcher import serve

    port = args.port or settings.mailcatcher_port
    asyncio.run(run_until_signalled(serve(settings.data_dir / "mail", "127.0.0.1", port)))
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    # Through the settings, not set on them afterwards: in development the links'
    # base URL follows the address the API listens on.
    overrides: dict[str, Any] = {}
    if args.host:
        overrides["APPROVALS_API_HOST"] = args.host
    if args.port:
        overrides["APPROVALS_API_PORT"] = args.port
    settings = load_settings(**overrides)
    import uvicorn

    from api.app import create_app

    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level=args.log_level,
        # uvicorn's own handlers would bypass ours: its lines, the access log included,
        # go to the root logger's one handler, in its format.
        log_config=None,
        proxy_headers=True,
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = stack_settings()
    url = require_database_url(settings)
    migrate(url)
    log.info("database migrated")
    if args.org:
        load_org(url, Path(args.org))
        log.info("org file %s loaded", args.org)
    return 0


def cmd_load_org(args: argparse.Namespace) -> int:
    settings = stack_settings()
    url = require_database_url(settings)
    path = Path(args.file) if args.file else settings.org_file
    load_org(url, path)
    log.info("org file %s loaded", path)
    hand_over_departed_steps(settings, url)
    return 0


def hand_over_departed_steps(settings: Settings, url: str) -> None:
    """Tell requests whose pending step an inactive user holds (see cli.departures)."""
    from cli.departures import notify_departures, steps_held_by_leavers
    from common.temporal import connect

    async def work(sessions: Sessions) -> None:
        held = await steps_held_by_leavers(sessions)
        if not held:
            log.info("0 request(s) told that a step holder left the directory")
            return  # nothing to hand on: Temporal is not needed
        try:
            client = await asyncio.wait_for(connect(settings), settings.rpc_timeout_seconds)
        except (TimeoutError, RuntimeError, OSError) as exc:
            log.warning(
                "Temporal at %s is not reachable (%s): steps held by people who left are "
                "handed on at the next load-org",
                settings.temporal_address,
                exc,
            )
            return
        told = await notify_departures(client, sessions, held)
        log.info("%d request(s) told that a step holder left the directory", told)

    with database_errors(url):
        asyncio.run(with_sessions(url, work))


def cmd_signal(args: argparse.Namespace) -> int:
    from cli.operator import send

    settings = stack_settings()
    workflow = asyncio.run(send(settings, args))
    print(f"signed {args.action} signal sent to {workflow} as {args.actor}")
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    """One reconciliation pass now, printing each request it recorded as terminated."""
    settings = stack_settings()
    url = require_database_url(settings)
    if args.days <= 0:
        raise CliError("--days must be positive")
    from temporalio.service import RPCError

    from activities.reconcile import ReconcileActivities
    from common.temporal import connect
    from domain.reconcile import ReconcileInput, ReconcileOutput

    results: list[ReconcileOutput] = []

    async def work(sessions: Sessions) -> None:
        try:
            client = await connect(settings)
        except (RuntimeError, ConnectionError) as exc:
            raise CliError(
                f"cannot connect to Temporal at {settings.temporal_address}: {exc}"
            ) from exc
        acts = ReconcileActivities(sessions, client)
        try:
            results.append(
                await acts.reconcile_closed_requests(
                    ReconcileInput(lookback=timedelta(days=args.days), list_at_most=None)
                )
            )
        except RPCError as exc:
            raise CliError(f"Temporal at {settings.temporal_address}: {exc.message}") from exc

    with database_errors(url):
        asyncio.run(with_sessions(url, work))
    out = results[0]
    for r in out.reconciled:
        print(
            f"{r.request_id}  terminated  ({r.execution_status} by {r.actor} at "
            f"{r.closed_at.isoformat(timespec='seconds')}; reason: {r.reason or '-'})"
        )
    print(
        f"{out.recorded} request(s) recorded as terminated; "
        f"{out.examined} workflow(s) ended outside the process in the last {args.days:g} day(s)"
    )
    return 0


def cmd_resync(args: argparse.Namespace) -> int:
    """Bring a database restored from a backup back in step with the workflows (cli.resync)."""
    settings = stack_settings()
    url = require_database_url(settings)
    from domain.resync import window

    try:
        since = window(args.closed_since)
    except ValueError as exc:
        raise CliError(f"--closed-since: {exc} (write e.g. 30d, 12h or 2w)") from exc
    from temporalio.service import RPCError

    from cli.resync import resync
    from common.temporal import connect
    from domain.resync import ResyncReport, seq_ranges

    results: list[ResyncReport] = []

    async def work(sessions: Sessions) -> None:
        client = await connect(settings)
        try:
            results.append(
                await resync(
                    client,
                    sessions,
                    task_queue=settings.task_queue,
                    closed_since=since,
                    dry_run=args.dry_run,
                )
            )
        except RPCError as exc:
            raise CliError(f"Temporal at {settings.temporal_address}: {exc.message}") from exc

    with database_errors(url):
        asyncio.run(with_sessions(url, work))
    out = results[0]
    would = "would be " if args.dry_run else ""
    for r in out.requests:
        parts = [f"row {r.row}" + (f" ({r.error})" if r.error else "")]
        if r.inbox_rows:
            parts.append(f"{r.inbox_rows} inbox row(s)")
        if r.events_added:
            parts.append(f"audit rows {seq_ranges(r.events_added)} {would}added")
        if r.events_corrected:
            parts.append(f"audit rows {seq_ranges(r.events_corrected)} {would}corrected")
        if r.events_lost:
            parts.append(f"audit rows {seq_ranges(r.events_lost)} lost (not in the workflow)")
        print(f"{r.request_id}  {r.workflow_status} at #{r.seq}: {'; '.join(parts)}")
    print(
        f"{out.checked} request(s) checked, {out.rewritten} {would}rewritten, "
        f"{out.events_added} audit row(s) {would}added"
        + (f"; {out.failed} workflow(s) did not answer" if out.failed else "")
        + (" (dry run: nothing written)" if args.dry_run else "")
    )
    return 1 if out.failed else 0


def cmd_token(args: argparse.Namespace) -> int:
    settings = stack_settings()
    print(issue_checked_token(settings, args.user_id))
    if not settings.local_tokens_allowed:
        print(
            f"approvals token: note: the API refuses this token (APPROVALS_ENV="
            f"{settings.environment}) unless APPROVALS_ALLOW_LOCAL_TOKENS=true; people sign "
            "in through the company identity provider (APPROVALS_OIDC_ISSUER)",
            file=sys.stderr,
        )
    return 0


def cmd_payload_key(args: argparse.Namespace) -> int:
    from common.payload_codec import new_key

    # Needs no settings: it is how the first key of a new deployment is made.
    print(f"{args.key_id}:{new_key()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="approvals", description="Durable commercial approval workflows on Temporal."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = sub.add_parser(
        "dev", help="run the whole stack locally (PostgreSQL, Temporal, worker, API)"
    )
    dev.set_defaults(func=cmd_dev)

    worker = sub.add_parser("worker", help="run the Temporal worker")
    worker.add_argument(
        "--only",
        choices=("approvals", "deliveries", "both"),
        default="both",
        help="poll the approvals' task queue (APPROVALS_TASK_QUEUE), only the old delivery "
        "passes' (APPROVALS_DELIVERY_TASK_QUEUE, which every role polls so that passes "
        "started before `approvals deliverer` finish), or both (default: both)",
    )
    worker.set_defaults(func=cmd_worker)

    deliverer = sub.add_parser(
        "deliverer",
        help="send the notices (mail, webhooks, group robots) as transitions write them; "
        "woken by PostgreSQL, no workflow per pass",
    )
    deliverer.set_defaults(func=cmd_deliverer)

    catcher = sub.add_parser(
        "mailcatcher", help="a development SMTP server that keeps every mail (see /dev/mails)"
    )
    catcher.add_argument("--port", type=int, help="SMTP port (default APPROVALS_MAILCATCHER_PORT)")
    catcher.set_defaults(func=cmd_mailcatcher)

    api = sub.add_parser("api", help="run the HTTP API (uvicorn)")
    api.add_argument("--host", help="bind address (default: APPROVALS_API_HOST)")
    api.add_argument("--port", type=int, help="port (default: APPROVALS_API_PORT)")
    api.add_argument("--log-level", default="info", help="uvicorn log level (default: info)")
    api.set_defaults(func=cmd_api)

    mig = sub.add_parser("migrate", help="bring the database schema up to date")
    mig.add_argument("--org", metavar="FILE", help="also load this org file into the directory")
    mig.set_defaults(func=cmd_migrate)

    org = sub.add_parser("load-org", help="load an org file into the directory (idempotent)")
    org.add_argument("file", nargs="?", help="org YAML (default: APPROVALS_ORG_FILE)")
    org.set_defaults(func=cmd_load_org)

    from cli.operator import add_parser as add_signal_parser

    add_signal_parser(sub).set_defaults(func=cmd_signal)

    rec = sub.add_parser(
        "reconcile",
        help="record requests whose workflow was terminated, timed out, cancelled or failed",
    )
    rec.add_argument(
        "--days",
        type=float,
        default=DEFAULT_LOOKBACK / timedelta(days=1),
        help="look at workflows that closed in the last DAYS days (default: %(default)g)",
    )
    rec.set_defaults(func=cmd_reconcile)

    rs = sub.add_parser(
        "resync",
        help="after restoring the database from a backup: rewrite requests from their workflows",
    )
    rs.add_argument(
        "--closed-since",
        default="30d",
        help="also resync requests completed within this long (default: %(default)s)",
    )
    rs.add_argument(
        "--dry-run", action="store_true", help="report what would change, write nothing"
    )
    rs.set_defaults(func=cmd_resync)

    token = sub.add_parser("token", help="print a bearer token for a directory user")
    token.add_argument("user_id")
    token.set_defaults(func=cmd_token)

    key = sub.add_parser(
        "payload-key",
        help="print a new Temporal payload key, id:base64key (docs/encryption.md)",
    )
    key.add_argument("key_id", nargs="?", default="k1", help="the key's id (default k1)")
    key.set_defaults(func=cmd_payload_key)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``approvals`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    # Before any line is logged: every process of the service starts here (the API and
    # uvicorn's access log, the worker, the deliverer, the dev runner and its children).
    # One handler, masked, in APPROVALS_LOG_FORMAT (see common/logs.py).
    configure_logging(env_log_format(), logging.DEBUG if args.verbose else logging.INFO)
    if not args.verbose:
        # Their INFO lines are noise at a terminal; -v shows them.
        for name in ("alembic", "pgserver"):
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.verbose or not _expected(exc):
            raise
        print(f"approvals {args.command}: {_one_line(exc)}", file=sys.stderr)
        return 1
    return code


def _expected(exc: Exception) -> bool:
    """Failures that are the operator's to fix: no traceback for those."""
    return isinstance(
        exc, CliError | PolicyError | CalendarError | DBAPIError | ConnectionError | OSError
    )


def _one_line(exc: Exception) -> str:
    if isinstance(exc, CliError):
        # Ours: one line, or a summary line followed by log lines meant to be read as such.
        return str(exc)
    if isinstance(exc, PolicyError):
        text = f"policy error: {exc}"
    elif isinstance(exc, CalendarError):
        text = f"calendar error: {exc}"
    elif isinstance(exc, DBAPIError):
        text = f"database error: {exc.orig or exc}"
    elif isinstance(exc, OSError) and not isinstance(exc, ConnectionError):
        text = f"{exc.strerror or exc}: {exc.filename}" if exc.filename else f"{exc}"
    elif isinstance(exc, ConnectionError):
        text = f"cannot connect: {exc}"
    else:
        text = str(exc)
    return " ".join(text.split())


def run() -> None:
    """The console script: :func:`main`, then leave without interpreter finalization.

    The Temporal client's native runtime keeps threads of its own; tearing the
    interpreter down around them can abort the process (SIGABRT, seen under
    load after an operator command had already printed its answer). Every
    command has finished its work and flushed its output by now, so leave at once.
    """
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
