"""The restore drill: a database restored from a dump taken mid-run, brought back in step.

Requests run part way on a database of this test's own; ``pg_dump`` (pgserver's
binaries) takes a dump; the requests go on (decisions, a completion, new requests);
the dump is restored into a fresh database; ``resync`` rewrites it from the
workflows. Afterwards every request's row, inbox and audit rows are those the
worker wrote to the database that was never lost, and a second run (the real
``approvals resync`` command) changes nothing.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pgserver._commands import POSTGRES_BIN_PATH
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.auth import issue_token
from cli.resync import resync
from db.directory import load_org_file
from db.engine import make_engine, make_sessionmaker
from db.models import AssignmentRow, EventRow, NotificationRow, RequestRow
from domain.constants import Queries, workflow_id
from domain.process import RequestView
from tests.support.api import contract_body, make_settings, running, temporal_target
from tests.support.cli import _admin, run_cli
from tests.support.paths import ROOT

Sessions = async_sessionmaker[AsyncSession]


def _pg_args(url: str) -> list[str]:
    """Connection options of pg_dump / pg_restore for an asyncpg URL (socket or TCP)."""
    u = make_url(url)
    host = u.query.get("host") or u.host or "localhost"
    args = ["-h", str(host), "-U", u.username or "postgres"]
    return [*args, "-p", str(u.port)] if u.port else args


def pg_dump(url: str, target: Path) -> None:
    subprocess.run(
        [
            str(POSTGRES_BIN_PATH / "pg_dump"),
            *_pg_args(url),
            *("-Fc", "-f", str(target), make_url(url).database or ""),
        ],
        check=True,
        capture_output=True,
    )


def pg_restore(dump: Path, url: str) -> None:
    subprocess.run(
        [
            str(POSTGRES_BIN_PATH / "pg_restore"),
            *_pg_args(url),
            *("--no-owner", "-d", make_url(url).database or "", str(dump)),
        ],
        check=True,
        capture_output=True,
    )


async def snapshot(sessions: Sessions, rid: str) -> dict[str, Any]:
    """A request's row, inbox and audit rows, as comparable values."""
    async with sessions() as s:
        row = await s.get(RequestRow, rid)
        inbox = await s.execute(
            select(
                AssignmentRow.stage_index,
                AssignmentRow.slot,
                AssignmentRow.user_id,
                AssignmentRow.via,
                AssignmentRow.eligible_since,
                AssignmentRow.due,
                AssignmentRow.acted,
                AssignmentRow.pending,
            ).where(AssignmentRow.request_id == rid)
        )
        events = await s.execute(
            select(EventRow.seq, EventRow.at, EventRow.kind, EventRow.actor, EventRow.data)
            .where(EventRow.request_id == rid)
            .order_by(EventRow.seq)
        )
        return {
            "row": None
            if row is None
            else (
                row.status,
                row.stage_index,
                row.current_approvers,
                row.last_seq,
                row.closed_at,
                row.view,
            ),
            "inbox": sorted(tuple(r) for r in inbox),
            "events": [tuple(e) for e in events],
        }


async def notices(sessions: Sessions) -> int:
    async with sessions() as s:
        return len((await s.scalars(select(NotificationRow.id))).all())


@pytest.fixture
async def restored_url(scratch_url: str) -> AsyncIterator[str]:
    """A second empty database on the same server, for the restore."""
    name = f"restored_{uuid.uuid4().hex[:12]}"
    await _admin(scratch_url, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(scratch_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await _admin(scratch_url, f'DROP DATABASE "{name}" WITH (FORCE)')


async def test_a_database_restored_from_a_mid_run_dump_is_brought_back_in_step(
    temporal_local: WorkflowEnvironment,
    scratch_url: str,
    scratch_sessions: Sessions,
    restored_url: str,
    tmp_path: Path,
) -> None:
    from worker.main import build_worker

    client = temporal_local.client
    await load_org_file(scratch_sessions, ROOT / "org" / "demo.yaml")
    settings = make_settings(scratch_url, temporal_target(temporal_local))

    def auth(user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(settings, user)}"}

    async def submit(api: httpx.AsyncClient, name: str) -> str:
        body = contract_body(f"{name} {uuid.uuid4().hex[:6]}")
        r = await api.post("/v1/requests", json=body, headers=auth("am_li"))
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    async def approve(api: httpx.AsyncClient, user: str, rid: str) -> None:
        r = await api.post(
            f"/v1/requests/{rid}/decisions",
            json={"action": "approve", "comment": f"{user} ok"},
            headers=auth(user),
        )
        assert r.status_code == 200, r.text

    dump = tmp_path / "approvals.dump"
    async with (
        build_worker(client, scratch_sessions, settings.task_queue),
        running(create_app(settings)) as api,
    ):
        # Part way: a waits for bcd_zheng, b for dsd_liu.
        a, b = await submit(api, "Drill A"), await submit(api, "Drill B")
        await approve(api, "bcd_zheng", b)
        pg_dump(scratch_url, dump)
        # The run goes on: a moves, b completes, c and d are new.
        await approve(api, "bcd_zheng", a)
        await approve(api, "dsd_liu", b)
        c, d = await submit(api, "Drill C"), await submit(api, "Drill D")
        await approve(api, "bcd_zheng", d)
        ours = [a, b, c, d]
        truth = {rid: await snapshot(scratch_sessions, rid) for rid in ours}
        window: dict[str, Any] = {
            "task_queue": settings.task_queue,
            "closed_since": timedelta(days=1),
        }
        # On the database that was never lost, resync has nothing to do.
        untouched = await resync(client, scratch_sessions, **window)
        assert (untouched.checked, untouched.rewritten, untouched.requests) == (4, 0, [])
        assert {rid: await snapshot(scratch_sessions, rid) for rid in ours} == truth

        pg_restore(dump, restored_url)
        engine = make_engine(restored_url)
        try:
            restored = make_sessionmaker(engine)
            lost = {rid: await snapshot(restored, rid) for rid in ours}
            assert lost[c]["row"] is None and lost[d]["row"] is None  # after the dump
            assert len(lost[a]["events"]) < len(truth[a]["events"])
            assert lost[b]["row"] != truth[b]["row"]
            notices_before = await notices(restored)

            # --dry-run reports what a run changes, and writes nothing.
            dry = await resync(client, restored, **window, dry_run=True)
            assert {r.request_id for r in dry.requests} >= set(ours)
            assert {rid: await snapshot(restored, rid) for rid in ours} == lost

            report = await resync(client, restored, **window)
            by_id = {r.request_id: r for r in report.requests}
            assert by_id[c].row == by_id[d].row == "created"
            assert by_id[a].row == by_id[b].row == "rewritten"
            assert by_id[b].workflow_status == "Completed"
            assert [r.model_dump() for r in dry.requests] == [
                r.model_dump() for r in report.requests
            ]
            for rid in ours:
                after = await snapshot(restored, rid)
                # Row, inbox and audit rows: what the worker wrote to the database never lost.
                assert after == truth[rid], rid
                seqs = [e[0] for e in after["events"]]
                assert seqs == list(range(1, len(seqs) + 1)), rid  # contiguous, none doubled
                view = await client.get_workflow_handle(workflow_id(rid)).query(
                    Queries.STATE, result_type=RequestView
                )
                assert after["row"][0] == view.status and after["row"][3] == view.version
                assert by_id[rid].events_added == seqs[len(lost[rid]["events"]) :]
                assert not by_id[rid].events_lost
            # Notices are not re-created (docs/operations.md says why).
            assert await notices(restored) == notices_before

            # A second run, the operator's command: nothing left to change.
            # (In a thread: the worker in this event loop answers the command's queries.)
            second = await asyncio.to_thread(
                run_cli,
                "resync",
                "--closed-since",
                "1d",
                env={
                    "DATABASE_URL": restored_url,
                    "TEMPORAL_ADDRESS": settings.temporal_address,
                    "APPROVALS_TASK_QUEUE": settings.task_queue,
                },
            )
            assert second.returncode == 0, second.stderr
            assert not any(rid in second.stdout for rid in ours), second.stdout
            assert " 0 rewritten, 0 audit row(s) added" in second.stdout, second.stdout
            for rid in ours:
                assert await snapshot(restored, rid) == truth[rid]
        finally:
            await engine.dispose()
