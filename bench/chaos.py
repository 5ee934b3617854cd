"""``make chaos``: a bounded load on the dev stack while its processes are killed in turn.

``approvals dev`` is started as :mod:`bench.deployed` starts it (a temporary data
directory, free ports), with one webhook subscriber: a receiver in this process that
counts every delivery by its ``webhook-id``. A bounded load goes through the API
(contracts approved, rejected, returned and resubmitted, a bulk order whose deposit is
recorded), every action sent with an ``Idempotency-Key`` and sent again with the same
key until it gets a definite answer (anything but a connection error, a timeout or a
5xx). Meanwhile each process named by ``--kill`` is killed with SIGKILL in turn, some
seconds apart, and supervisord restarts it; the drill prints, per process, when it was
running again and when a request went through it again (a submission answered with
its first stage assigned; for the deliverer, that request's mail in the mail catcher).

Then it checks, and exits 1 when a check fails:

* the ledger: every request is in the status its acknowledged actions imply, and each
  acknowledged action is in its audit trail exactly once (kind and actor);
* the audit rows of each request are numbered 1..N, none missing, none doubled;
* the read-model equals each workflow's state (``approvals resync`` in a dry run,
  which queries every workflow: nothing to rewrite, no query failed);
* every delivery due was received once per channel: the mail catcher's mails by
  Message-ID, the webhook receiver's by ``webhook-id``; none pending or failed. A
  message received twice *with the same id* (a send cut by a kill, sent again: the id
  lets the receiver drop it) is counted and printed apart, not as a failure;
* nothing is stuck (no request marked stuck, no delivery left pending).

The figures are printed, never asserted: the machine decides the times.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx

from bench.deployed import START_TIMEOUT, LaunchedStack, stack_environment, stop, wait_until_ready
from bench.receivers import HttpReceiver, http_receiver
from bench.stack import ROOT, BenchError, read_token_file, remote_settings

PROCESSES = ("worker", "deliverer", "api", "temporal", "postgres")
"""What the full drill kills, in this order."""

REQUESTER = "am_li"
RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})
MAIL_KEEP_WARNING = 450
"""The mail catcher keeps its last 500 mails: above this the mail count is not trusted."""


@dataclass
class ChaosOptions:
    requests: int = 48
    concurrency: int = 4
    kill: tuple[str, ...] = PROCESSES
    first_kill_after: float = 8.0
    spacing: float = 15.0
    step_timeout: float = 240.0
    settle_timeout: float = 300.0


# ---------------------------------------------------------------- the ledger


@dataclass
class Acked:
    kind: str
    actor: str


@dataclass
class Entry:
    """One request of the load: what was acknowledged, what status that implies."""

    name: str
    request_id: str | None = None
    acked: list[Acked] = field(default_factory=list)
    expected: set[str] = field(default_factory=set)
    error: str | None = None
    retries: int = 0


@dataclass
class Recovery:
    process: str
    killed_at: float
    running_s: float | None = None
    serves_s: float | None = None
    note: str = ""


class Driver:
    """Sends every action until it gets a definite answer, with the same key each time."""

    def __init__(self, http: httpx.AsyncClient, tokens: dict[str, str], timeout: float) -> None:
        self.http = http
        self.tokens = tokens
        self.timeout = timeout
        self.server_errors: Counter[int] = Counter()
        """5xx answers other than 503 (each one retried): worth a look."""

    def auth(self, user: str, key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"}
        if key:
            headers["Idempotency-Key"] = key
        return headers

    async def send(
        self, entry: Entry, method: str, path: str, user: str, body: Any = None, key: str = ""
    ) -> httpx.Response:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                resp = await self.http.request(
                    method, path, json=body, headers=self.auth(user, key)
                )
                if resp.status_code not in RETRYABLE:
                    return resp
                if resp.status_code != 503:
                    self.server_errors[resp.status_code] += 1
                wait = min(float(resp.headers.get("Retry-After", "1") or 1), 2.0)
            except httpx.TransportError:
                wait = 0.5
            entry.retries += 1
            if time.monotonic() > deadline:
                raise BenchError(f"{method} {path} as {user}: no definite answer in time")
            await asyncio.sleep(wait)

    async def view(self, entry: Entry, user: str) -> dict[str, Any]:
        resp = await self.send(entry, "GET", f"/v1/requests/{entry.request_id}", user)
        if resp.status_code == 404 and user != REQUESTER:
            # Not assigned to them yet (a submission answered 202: its first stage is
            # assigned once the worker runs it): nothing for them to see so far.
            return {"status": "", "current_approvers": []}
        if resp.status_code != 200:
            raise BenchError(f"GET {entry.request_id} as {user}: {resp.status_code} {resp.text}")
        body: dict[str, Any] = resp.json()
        return body

    async def wait_for(
        self, entry: Entry, user: str, ok: Callable[[dict[str, Any]], bool], what: str
    ) -> None:
        deadline = time.monotonic() + self.timeout
        while not ok(await self.view(entry, user)):
            if time.monotonic() > deadline:
                raise BenchError(f"{entry.request_id}: {what} never came")
            await asyncio.sleep(0.5)

    async def submit(self, entry: Entry, body: dict[str, Any]) -> None:
        key = f"chaos-submit-{uuid.uuid4()}"
        resp = await self.send(entry, "POST", "/v1/requests", REQUESTER, body, key)
        if resp.status_code not in (200, 201, 202):
            raise BenchError(f"submission refused: {resp.status_code} {resp.text}")
        entry.request_id = resp.json()["id"]
        entry.acked.append(Acked("submitted", REQUESTER))

    async def act(
        self, entry: Entry, user: str, path: str, body: dict[str, Any], kind: str
    ) -> dict[str, Any]:
        key = f"chaos-{path.replace('/', '-')}-{uuid.uuid4()}"
        resp = await self.send(
            entry, "POST", f"/v1/requests/{entry.request_id}/{path}", user, body, key
        )
        if resp.status_code != 200:
            raise BenchError(
                f"{path} by {user} on {entry.request_id}: {resp.status_code} {resp.text}"
            )
        entry.acked.append(Acked(kind, user))
        view: dict[str, Any] = resp.json()
        return view

    async def decide(self, entry: Entry, user: str, action: str) -> dict[str, Any]:
        await self.wait_for(entry, user, lambda v: user in v["current_approvers"], f"{user}'s turn")
        kind = {"approve": "approved", "reject": "rejected", "return": "returned"}[action]
        return await self.act(
            entry, user, "decisions", {"action": action, "comment": "chaos"}, kind
        )


def contract(amount: str, n: int) -> dict[str, Any]:
    return {
        "type": "big_customer_contract",
        "title": f"Chaos drill contract {n}",
        "customer": f"Chaos Customer {n}",
        "amount": amount,
        "fields": {"contract_no": f"C-CHAOS-{n}", "settlement_floor_price": "90000"},
    }


def retail(n: int) -> dict[str, Any]:
    return {
        "type": "retail_bulk_discount",
        "title": f"Chaos drill bulk order {n}",
        "customer": f"Chaos Mart {n}",
        "amount": "10000",
        "fields": {"gross_margin_pct": "9.5"},
    }


async def approved(d: Driver, e: Entry, n: int) -> None:
    await d.submit(e, contract("250000", n))
    await d.decide(e, "bcd_zheng", "approve")
    view = await d.decide(e, "dsd_liu", "approve")
    e.expected = {view["status"]} if view["status"] in ("approved", "completed") else {"approved"}


async def rejected(d: Driver, e: Entry, n: int) -> None:
    await d.submit(e, contract("250000", n))
    await d.decide(e, "bcd_zheng", "reject")
    e.expected = {"rejected"}


async def returned(d: Driver, e: Entry, n: int) -> None:
    await d.submit(e, contract("50000", n))
    await d.decide(e, "om_yang", "return")
    await d.wait_for(e, REQUESTER, lambda v: v["status"] == "returned", "the return")
    await d.act(e, REQUESTER, "resubmit", {"amount": "150000", "comment": "bigger"}, "resubmitted")
    await d.decide(e, "bcd_zheng", "approve")
    view = await d.decide(e, "dsd_liu", "approve")
    e.expected = {view["status"]} if view["status"] in ("approved", "completed") else {"approved"}


async def deposit(d: Driver, e: Entry, n: int) -> None:
    await d.submit(e, retail(n))
    await d.decide(e, "mm_hu", "approve")
    for user in ("opm_guo", "pm_luo", "mm_hu"):
        await d.decide(e, user, "approve")
    await d.wait_for(
        e, REQUESTER, lambda v: str(v["status"]).startswith("awaiting"), "the deposit stage"
    )
    await d.act(
        e, "fin_he", "milestones/deposit", {"amount": "3000", "reference": f"BT-{n}"}, "milestone"
    )
    e.expected = {"completed"}


async def open_only(d: Driver, e: Entry, n: int) -> None:
    await d.submit(e, contract("250000", n))
    e.expected = {"in_review"}


SCENARIOS: tuple[tuple[str, Callable[[Driver, Entry, int], Awaitable[None]]], ...] = (
    ("approved", approved),
    ("returned-resubmitted", returned),
    ("deposit", deposit),
    ("rejected", rejected),
    ("left open", open_only),
)


# ---------------------------------------------------------------- the stack


def launch(root: Path, hooks_file: Path) -> LaunchedStack:
    data_dir = root / "data"
    env = stack_environment(data_dir, os.environ)
    env["APPROVALS_WEBHOOKS_FILE"] = str(hooks_file)
    output = root / "approvals-dev.out"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "dev"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
    return LaunchedStack(process, data_dir, f"http://127.0.0.1:{env['APPROVALS_API_PORT']}", output)


def mail_about(mail_dir: Path, marker: str, seen: set[Path]) -> bool:
    """Whether a caught mail not in ``seen`` has ``marker`` in its text (each read once)."""
    for path in sorted(set(mail_dir.glob("*.eml")) - seen):
        seen.add(path)
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(msg, EmailMessage)
        body = msg.get_body(("plain",))
        if body is not None and marker in body.get_content():
            return True
    return False


async def kill_and_watch(
    stack: LaunchedStack, driver: Driver, name: str, probe: Entry, n: int
) -> Recovery:
    """SIGKILL ``name``; when it runs again; when a submission goes through again."""
    pid = stack.pids().get(name)
    if pid is None:
        raise BenchError(f"{name} is not running before its kill")
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    rec = Recovery(name, killed)
    mail_dir = stack.data_dir / "mail"

    async def running_again() -> None:
        while True:
            now = stack.pids().get(name)
            if now is not None and now != pid:
                rec.running_s = time.monotonic() - killed
                return
            await asyncio.sleep(0.1)

    async def serves_again() -> None:
        await driver.submit(probe, contract("250000", n))
        await driver.wait_for(
            probe, REQUESTER, lambda v: v["current_approvers"] == ["bcd_zheng"], "the first stage"
        )
        probe.expected = {"in_review"}
        if name == "deliverer":  # served again: the probe's mail has been sent
            marker = f"/inbox#request={probe.request_id}"
            seen: set[Path] = set()
            while not mail_about(mail_dir, marker, seen):  # noqa: ASYNC110
                await asyncio.sleep(0.5)
        rec.serves_s = time.monotonic() - killed

    try:
        await asyncio.wait_for(asyncio.gather(running_again(), serves_again()), driver.timeout)
    except (TimeoutError, BenchError) as exc:
        rec.note = f"not recovered: {exc or 'timeout'}"
        probe.error = rec.note
    return rec


# ---------------------------------------------------------------- the checks


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    times_only: bool = False
    """Failed, but only times differ: a workflow task run again after a kill (see
    docs/operations.md, "The chaos drill"), nothing lost, doubled or out of order."""


@dataclass
class ChaosReport:
    entries: list[Entry]
    recoveries: list[Recovery]
    checks: list[Check]
    duplicates_same_id: dict[str, int]
    server_errors: dict[int, int]
    load_seconds: float
    kept: Path | None = None
    """The drill's directory, kept when a check failed (logs, database, Temporal store)."""
    settle_seconds: float | None = None
    """From the load's end until no delivery was pending."""

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def render(self) -> str:
        acked = sum(len(e.acked) for e in self.entries)
        retries = sum(e.retries for e in self.entries)
        kinds = Counter(e.name for e in self.entries)
        lines = [
            "",
            f"chaos drill: {len(self.entries)} requests "
            f"({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}), "
            f"{acked} acknowledged actions, {retries} retries, load ran {self.load_seconds:.0f} s",
            "",
            f"{'killed (SIGKILL)':<18}{'running again':>15}{'serves again':>15}",
        ]
        for r in self.recoveries:
            run = f"{r.running_s:.1f} s" if r.running_s is not None else "-"
            serve = f"{r.serves_s:.1f} s" if r.serves_s is not None else "-"
            lines.append(f"{r.process:<18}{run:>15}{serve:>15}  {r.note}".rstrip())
        lines += [
            "  (serves again: a submission answered with its first stage assigned;"
            " deliverer: that request's mail caught)",
            "",
        ]
        for c in self.checks:
            lines.append(f"[{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}")
            if not c.ok and c.times_only:
                lines.append(
                    "    (times only: a workflow task run again after a kill recomputed them;"
                    " its first run's write stays. Known, docs/operations.md)"
                )
        dup = ", ".join(f"{ch} {n}" for ch, n in self.duplicates_same_id.items()) or "none"
        lines.append(f"re-sent with the same id (the receiver can drop them): {dup}")
        if self.settle_seconds is not None:
            lines.append(
                f"every delivery sent {self.settle_seconds:.0f} s after the load"
                " (a killed deliverer's claims are due again when it restarts, not after"
                " their lease)"
            )
        if self.server_errors:
            errs = ", ".join(f"{code} x{n}" for code, n in sorted(self.server_errors.items()))
            lines.append(f"5xx answers other than 503 (retried): {errs}")
        lines += ["", "chaos drill: " + ("all checks passed" if self.ok else "CHECKS FAILED")]
        if self.kept is not None:
            lines.append(f"kept for a look: {self.kept} (logs in data/logs)")
        lines.append("")
        return "\n".join(lines)


def mail_ids(mail_dir: Path) -> Counter[str]:
    """Message-IDs of the caught mails, without ``<`` ``@domain>``: the delivery dedupe ids."""
    found: Counter[str] = Counter()
    for path in mail_dir.glob("*.eml"):
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        mid = str(msg.get("Message-ID", "")).strip().strip("<>")
        found[mid.rsplit("@", 1)[0]] += 1
    return found


async def settle(stack: LaunchedStack, sessions: Any, within: float) -> float:
    """Until no delivery is due and unsent (or ``within`` seconds); the seconds it took."""
    from sqlalchemy import func, select

    from db.models import DeliveryRow

    started = time.monotonic()
    deadline = started + within
    while time.monotonic() < deadline:
        async with sessions() as s:
            # Every pending row, claimed ones too: a send the kill cut after the receiver
            # had it goes again (same id) once the restarted deliverer finds its claimer
            # gone (at its start), not when the lease runs out.
            pending = await s.scalar(
                select(func.count()).select_from(DeliveryRow).where(DeliveryRow.status == "pending")
            )
        if not pending:
            break
        await asyncio.sleep(1.0)
    return time.monotonic() - started


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


TIME_FIELDS = frozenset(
    {"at", "since", "started_at", "submitted_at", "reply_due", "resolve_due", "decided_at"}
    | {"closed_at", "due", "eligible_since", "revocable_until"}
)
"""The values a workflow takes from its clock: a rerun workflow task recomputes them."""


async def history_diff(client: Any, sessions: Any, ids: list[str]) -> list[tuple[str, bool]]:
    """Requests whose audit rows are not their workflow's history (seq, time, kind, actor)."""
    from sqlalchemy import select

    from cli.resync import _state
    from db.models import EventRow
    from domain.constants import workflow_id

    out = []
    for rid in ids:
        view = await _state(client, workflow_id(rid))
        want = [(e.seq, _utc(e.at), str(e.kind), e.actor) for e in view.history]
        async with sessions() as s:
            rows = await s.execute(
                select(EventRow.seq, EventRow.at, EventRow.kind, EventRow.actor)
                .where(EventRow.request_id == rid)
                .order_by(EventRow.seq)
            )
            have = [(seq, _utc(at), kind, actor) for seq, at, kind, actor in rows]
        if have != want:
            diff = [
                f"#{h[0]} {h[2]} row at {h[1]:%H:%M:%S.%f} != workflow {w[1]:%H:%M:%S.%f}"
                if h[0] == w[0] and h[2:] == w[2:]
                else f"row {h} != workflow {w}"
                for h, w in zip(have, want, strict=False)
                if h != w
            ]
            times_only = len(have) == len(want) and all(
                h[0] == w[0] and h[2:] == w[2:] for h, w in zip(have, want, strict=True)
            )
            text = "; ".join(diff) or f"{len(have)} rows, {len(want)} events"
            out.append((f"{rid}: {text}", times_only))
    return out


async def row_diff(client: Any, sessions: Any, request_id: str) -> tuple[str, bool]:
    """What differs between a request's row and its workflow's state (for the report)."""

    from cli.resync import _state
    from db import read_model
    from db.models import RequestRow
    from domain.constants import workflow_id

    view = await _state(client, workflow_id(request_id))
    stored = view.model_copy(update={"history": [], "stuck": None})
    target = read_model.request_values(stored, max(view.history, key=lambda e: e.seq))
    async with sessions() as s:
        row = await s.get(RequestRow, request_id)
    if row is None:
        return "no row", False
    out = [
        f"{k}: row {getattr(row, k)!r} != workflow {target[k]!r}"
        for k in ("status", "last_seq", "closed_at")
        if getattr(row, k) != target[k]
    ]
    leaves = leaf_diff("view", row.view or {}, target["view"])
    out += [f"{path}: row {a!r} != workflow {b!r}" for path, a, b in leaves]
    times_only = (row.status, row.last_seq) == (target["status"], target["last_seq"]) and all(
        path.rsplit(".", 1)[-1].split("[")[0] in TIME_FIELDS for path, _, _ in leaves
    )
    return "; ".join(out)[:1500] or "nothing visible", times_only


def leaf_diff(path: str, a: Any, b: Any) -> list[tuple[str, Any, Any]]:
    """The leaves where two JSON values differ, by path (``view.stages[0].started_at``)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            d for k in sorted(set(a) | set(b)) for d in leaf_diff(f"{path}.{k}", a.get(k), b.get(k))
        ]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in leaf_diff(f"{path}[{i}]", x, y)
        ]
    return [] if a == b else [(path, a, b)]


async def run_checks(
    stack: LaunchedStack, entries: list[Entry], hooks: HttpReceiver, settle_within: float
) -> tuple[list[Check], dict[str, int], float]:
    from sqlalchemy import select

    from cli.resync import resync
    from common.temporal import connect
    from db.engine import make_engine, make_sessionmaker
    from db.models import DeliveryRow, EventRow, RequestRow

    settings = remote_settings(stack.env_file)
    engine = make_engine(settings.database_url or "", pool_size=2)
    sessions = make_sessionmaker(engine)
    checks: list[Check] = []
    try:
        settled = await settle(stack, sessions, settle_within)
        failed = [e for e in entries if e.error]
        checks.append(
            Check(
                "every action got a definite answer",
                not failed,
                f"{len(entries) - len(failed)}/{len(entries)} requests driven to their end"
                + "".join(f"\n    {e.name} {e.request_id}: {e.error}" for e in failed[:10]),
            )
        )
        ids = [e.request_id for e in entries if e.request_id]
        async with sessions() as s:
            rows = {
                r.id: r for r in (await s.scalars(select(RequestRow).where(RequestRow.id.in_(ids))))
            }
            events = (
                await s.execute(
                    select(EventRow.request_id, EventRow.seq, EventRow.kind, EventRow.actor).where(
                        EventRow.request_id.in_(ids)
                    )
                )
            ).all()
            deliveries = (
                await s.execute(
                    select(
                        DeliveryRow.channel,
                        DeliveryRow.status,
                        DeliveryRow.dedupe_id,
                        DeliveryRow.next_attempt_at,
                    )
                )
            ).all()
            stuck = (
                await s.scalars(select(RequestRow.id).where(RequestRow.stuck_since.is_not(None)))
            ).all()
        by_request: dict[str, list[tuple[int, str, str]]] = {}
        for rid, seq, kind, actor in events:
            by_request.setdefault(rid, []).append((seq, kind, actor))

        # 1. the ledger
        wrong = []
        for e in entries:
            if e.error or e.request_id is None:
                continue
            row = rows.get(e.request_id)
            status = row.status if row is not None else None
            if status not in e.expected:
                wrong.append(
                    f"{e.request_id} ({e.name}) is {status}, expected {sorted(e.expected)}"
                )
            have = Counter((kind, actor) for _, kind, actor in by_request.get(e.request_id, []))
            want = Counter((a.kind, a.actor) for a in e.acked)
            for key, n in want.items():
                if have[key] != n:
                    wrong.append(
                        f"{e.request_id} ({e.name}): {key[0]} by {key[1]} "
                        f"x{have[key]}, acknowledged x{n}"
                    )
        checks.append(
            Check(
                "ledger: each request in the status its acknowledged actions imply, "
                "each action audited once",
                not wrong,
                f"{len(ids)} requests, {sum(len(e.acked) for e in entries)} actions"
                + "".join(f"\n    {w}" for w in wrong[:10]),
            )
        )

        # 2. audit rows 1..N
        gaps = []
        for rid in ids:
            seqs = sorted(seq for seq, _, _ in by_request.get(rid, []))
            if seqs != list(range(1, len(seqs) + 1)) or not seqs:
                gaps.append(f"{rid}: {seqs}")
        checks.append(
            Check(
                "audit rows contiguous 1..N, none doubled",
                not gaps,
                f"{len(events)} audit rows" + "".join(f"\n    {g}" for g in gaps[:10]),
            )
        )

        # 3. read-model == workflow state (a dry resync queries every workflow)
        client = await connect(settings, service="chaos")
        report = await resync(
            client,
            sessions,
            task_queue=settings.task_queue,
            closed_since=timedelta(hours=2),
            dry_run=True,
        )
        detail = (
            f"{report.checked} workflows queried, {report.rewritten} would be rewritten, "
            f"{report.failed} did not answer"
        )
        problems = list(report.requests)
        diffs = [await row_diff(client, sessions, p.request_id) for p in problems]
        checks.append(
            Check(
                "read-model equals each workflow's state",
                report.checked >= len(ids) and not problems,
                detail
                + "".join(
                    f"\n    {p.model_dump_json()}\n      differs: {d}"
                    for p, (d, _) in list(zip(problems, diffs, strict=True))[:5]
                ),
                times_only=report.checked >= len(ids)
                and not report.failed
                and all(t for _, t in diffs),
            )
        )

        # 3b. audit rows == each workflow's history, times included
        lagging = await history_diff(client, sessions, ids)
        checks.append(
            Check(
                "audit rows equal each workflow's history (seq, time, kind, actor)",
                not lagging,
                f"{len(ids)} requests compared" + "".join(f"\n    {x}" for x, _ in lagging[:10]),
                times_only=all(t for _, t in lagging),
            )
        )

        # 4. notices: once per channel
        mails = mail_ids(stack.data_dir / "mail")
        received = {"email": mails, "webhook": hooks.count("webhook-id")}
        dup: dict[str, int] = {}
        bad = []
        for channel, got in received.items():
            rows_of = [d for d in deliveries if d.channel == channel]
            sent = {d.dedupe_id for d in rows_of if d.status == "sent"}
            not_received = sent - set(got)
            unknown = set(got) - sent
            dup[channel] = sum(n - 1 for i, n in got.items() if n > 1)
            if not_received:
                bad.append(f"{channel}: {len(not_received)} sent but never received")
            if unknown:
                bad.append(
                    f"{channel}: {len(unknown)} received with an id no delivery was sent with"
                )
            bad += [
                f"{channel}: {n} deliveries {status}"
                for status, n in Counter(d.status for d in rows_of).items()
                if status not in ("sent", "skipped")
            ]
        if sum(mails.values()) > MAIL_KEEP_WARNING:
            bad.append(
                f"{sum(mails.values())} mails: the mail catcher keeps 500, run fewer requests"
            )
        sent_counts = Counter(d.channel for d in deliveries if d.status == "sent")
        checks.append(
            Check(
                "every notice due delivered once per channel (by Message-ID / webhook-id)",
                not bad,
                ", ".join(
                    f"{ch} {sent_counts[ch]} sent, {len(received[ch])} distinct ids received"
                    for ch in received
                )
                + "".join(f"\n    {b}" for b in bad),
            )
        )

        # 5. nothing stuck
        checks.append(
            Check(
                "nothing stuck",
                not stuck,
                f"{len(stuck)} requests marked stuck" + (f": {stuck[:5]}" if stuck else ""),
            )
        )
        return checks, dup, settled
    finally:
        await engine.dispose()


# ---------------------------------------------------------------- the drill


async def drill(options: ChaosOptions, say: Callable[[str], None] = print) -> ChaosReport:
    unknown = set(options.kill) - set(PROCESSES)
    if unknown:
        raise BenchError(f"--kill: unknown process {sorted(unknown)}; known: {PROCESSES}")
    root = Path(tempfile.mkdtemp(prefix="approvals-chaos-"))
    report: ChaosReport | None = None
    launched: LaunchedStack | None = None
    try:
        with http_receiver() as hooks:
            hooks_file = root / "webhooks.yaml"
            hooks_file.write_text(
                json.dumps(
                    {
                        "subscribers": [
                            {
                                "name": "chaos",
                                "url": hooks.url + "/hook",
                                "secret": "whsec_" + "Y2hhb3MtZHJpbGwtd2ViaG9vay1zZWNyZXQ=",
                            }
                        ]
                    }
                )
            )
            for attempt in (1, 2):
                launched = launch(root, hooks_file)
                say(f"starting approvals dev in {root} ...")
                try:
                    async with asyncio.timeout(START_TIMEOUT):
                        await wait_until_ready(launched)
                    break
                except BenchError as exc:
                    # A port chosen free can be taken by the time a child binds it
                    # (another stack starting on this machine): one more try.
                    stop(launched)
                    if attempt == 2:
                        raise
                    say(f"the stack did not start, once more: {str(exc)[-300:]}")
                    shutil.rmtree(root / "data", ignore_errors=True)
            assert launched is not None
            say(f"stack up: {launched.description()}")
            tokens = read_token_file(launched.env_file)
            async with httpx.AsyncClient(
                base_url=launched.api_url, timeout=30, trust_env=False
            ) as http:
                driver = Driver(http, tokens, options.step_timeout)
                entries: list[Entry] = []
                gate = asyncio.Semaphore(options.concurrency)

                async def one(i: int) -> None:
                    name, scenario = SCENARIOS[i % len(SCENARIOS)]
                    entry = Entry(name)
                    entries.append(entry)
                    async with gate:
                        try:
                            await scenario(driver, entry, i)
                        except BenchError as exc:
                            entry.error = str(exc)

                async def killer() -> list[Recovery]:
                    found = []
                    await asyncio.sleep(options.first_kill_after)
                    for k, name in enumerate(options.kill):
                        probe = Entry("probe")
                        entries.append(probe)
                        say(f"kill -9 {name}")
                        rec = await kill_and_watch(launched, driver, name, probe, 10_000 + k)
                        say(f"  {name}: running {rec.running_s}, serves {rec.serves_s} {rec.note}")
                        found.append(rec)
                        if k < len(options.kill) - 1:
                            await asyncio.sleep(options.spacing)
                    return found

                started = time.monotonic()
                load = asyncio.gather(*(one(i) for i in range(options.requests)))
                recoveries, _ = await asyncio.gather(killer(), load)
                load_seconds = time.monotonic() - started
                say("load done; settling and checking ...")
                checks, dup, settled = await run_checks(
                    launched, entries, hooks, options.settle_timeout
                )
            report = ChaosReport(
                entries, recoveries, checks, dup, dict(driver.server_errors), load_seconds
            )
            report.settle_seconds = settled
            if not report.ok:
                # What explains a failed check: every process's log, the database and
                # Temporal's store, for `approvals dev` on APPROVALS_DATA_DIR=<kept>/data.
                report.kept = root
            return report
    finally:
        if launched is not None:
            stop(launched)
        if report is None or report.kept is None:
            shutil.rmtree(root, ignore_errors=True)


def parse_options(argv: Sequence[str] | None) -> ChaosOptions:
    parser = argparse.ArgumentParser(prog="make chaos", description=__doc__.split("\n\n")[0])
    d = ChaosOptions()
    parser.add_argument("--requests", type=int, default=d.requests)
    parser.add_argument("--concurrency", type=int, default=d.concurrency)
    parser.add_argument(
        "--kill", default=",".join(d.kill), help=f"processes to kill, in order (of {PROCESSES})"
    )
    parser.add_argument("--first-kill-after", type=float, default=d.first_kill_after)
    parser.add_argument("--spacing", type=float, default=d.spacing, help="seconds between kills")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1:
        parser.error("--requests and --concurrency must be at least 1")
    return ChaosOptions(
        requests=args.requests,
        concurrency=args.concurrency,
        kill=tuple(p for p in args.kill.split(",") if p),
        first_kill_after=args.first_kill_after,
        spacing=args.spacing,
    )


def cli(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    try:
        report = asyncio.run(drill(options))
    except BenchError as exc:
        print(f"chaos drill: {exc}", file=sys.stderr)
        return 2
    print(report.render())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(cli())
