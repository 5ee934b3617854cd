"""Someone who leaves the directory gives up their pending steps to their manager chain."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from db.directory import load_org_file
from db.models import AssignmentRow, NotificationRow
from domain.constants import Updates
from domain.policy import Policy
from domain.process import DecideInput, RequestView
from tests.support.cli import run_cli
from tests.support.paths import ROOT
from tests.support.workflows import (
    _terminate_leftovers,
    audit_kinds,
    eventually,
    request_id,
    start,
    state,
    update,
)
from worker.main import build_worker


async def test_load_org_without_an_approver_hands_their_step_to_their_manager(
    temporal_local: WorkflowEnvironment,
    policies: dict[str, Policy],
    scratch_url: str,
    scratch_sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
):
    demo = ROOT / "org" / "demo.yaml"
    await load_org_file(scratch_sessions, demo)
    queue = f"departures-{uuid.uuid4()}"
    async with build_worker(temporal_local.client, scratch_sessions, queue):
        h = await start(
            temporal_local.client,
            queue,
            policies["big_customer_contract"],
            "am_li",
            Decimal(250000),
            {"contract_no": "HT-LEFT", "settlement_floor_price": "1"},
        )
        assert (
            await h.execute_update(Updates.READY, result_type=RequestView)
        ).current_approvers == ["bcd_zheng"]
        rid = request_id(h)

        # bcd_zheng leaves: the org file without them, loaded as an operator would.
        smaller = tmp_path / "org.yaml"
        smaller.write_text(
            "".join(
                line
                for line in demo.read_text().splitlines(keepends=True)
                if "id: bcd_zheng" not in line
            )
        )
        target = temporal_local.client.service_client.config.target_host
        loaded = await asyncio.to_thread(
            run_cli,
            "load-org",
            str(smaller),
            env={"DATABASE_URL": scratch_url, "TEMPORAL_ADDRESS": target},
        )
        assert loaded.returncode == 0, loaded.stderr
        assert "1 request(s) told" in loaded.stderr

        async def handed_on() -> bool:
            return (await state(h)).current_approvers == ["dsd_liu"]

        await eventually(handed_on, 30)
        v = await state(h)
        reassigned = v.history[-1]
        assert reassigned.kind == "reassigned"
        assert (reassigned.data["removed"], reassigned.data["added"]) == (
            ["bcd_zheng"],
            ["dsd_liu"],
        )
        actor = v.stages[0].slots[0].actors[0]
        assert (actor.user, actor.via) == ("dsd_liu", "reassignment")
        async with scratch_sessions() as s:
            rows = await s.scalars(select(AssignmentRow).where(AssignmentRow.request_id == rid))
            pending = {r.user_id: r.pending for r in rows}
            told = set(
                await s.scalars(
                    select(NotificationRow.recipient).where(
                        NotificationRow.request_id == rid, NotificationRow.template == "assigned"
                    )
                )
            )
        assert pending == {"bcd_zheng": False, "dsd_liu": True}
        assert "dsd_liu" in told

        # The manager decides; a second load changes nothing more.
        v = await update(h, Updates.DECIDE, DecideInput(actor="dsd_liu", action="approve"))
        assert v.stage_index == 1
        again = await asyncio.to_thread(
            run_cli,
            "load-org",
            str(smaller),
            env={"DATABASE_URL": scratch_url, "TEMPORAL_ADDRESS": target},
        )
        assert again.returncode == 0 and "0 request(s) told" in again.stderr
        assert (await audit_kinds(scratch_sessions, rid)).count("reassigned") == 1
        await _terminate_leftovers()
