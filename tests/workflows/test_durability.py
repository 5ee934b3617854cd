"""The promises that matter most: deadlines survive restarts; continued runs resume."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from temporalio.testing import WorkflowEnvironment

from domain.constants import WORKFLOW_NAME, Signals, Updates, workflow_id
from domain.policy import Policy
from domain.process import ApprovalInput, Carried, DecideInput, RequestState, RequestView
from tests.support.workflows import (
    _STARTED,
    audit_kinds,
    decide_by_signal,
    make_input,
    request_id,
    signal,
    start,
    state,
)
from worker.main import build_worker

# No workflow cache: each new worker rebuilds the workflow purely from its history,
# as a process started after a crash would (and no sticky queue of a dead worker).
NO_CACHE: dict[str, Any] = {"max_cached_workflows": 0}


async def test_deposit_deadline_fires_on_day_seven_across_two_worker_restarts(
    temporal_ts: WorkflowEnvironment, policies: dict[str, Policy], db_sessions, org
):
    queue = f"restart-{uuid.uuid4()}"
    async with build_worker(temporal_ts.client, db_sessions, queue, **NO_CACHE):
        h = await start(
            temporal_ts.client,
            queue,
            policies["retail_bulk_discount"],
            "am_li",
            Decimal(8000),
            {"gross_margin_pct": "15"},
        )
        await signal(h, Signals.DECIDE, DecideInput(actor="mm_hu", action="approve"))
        await temporal_ts.sleep(timedelta(days=3))
        assert (await state(h)).status == "awaiting_deposit"
    # Worker gone (first restart). A new process picks the request up from history.
    async with build_worker(temporal_ts.client, db_sessions, queue, **NO_CACHE):
        await temporal_ts.sleep(timedelta(days=3))
        assert (await state(h)).status == "awaiting_deposit"
    async with build_worker(temporal_ts.client, db_sessions, queue, **NO_CACHE):  # second restart
        await temporal_ts.sleep(timedelta(days=1, minutes=1))
        v = await state(h)
        assert v.status == "lapsed"
        lapsed = next(e for e in v.history if e.kind == "lapsed")
        approved = next(e for e in v.history if e.kind == "request_approved")
        assert timedelta(days=7) <= lapsed.at - approved.at < timedelta(days=7, minutes=1)
        kinds = await audit_kinds(db_sessions, request_id(h))
        assert kinds.count("milestone_reminded") == 1 and kinds[-1] == "lapsed"


async def test_a_continued_run_resumes_at_its_stage_without_resubmitting(
    temporal_ts: WorkflowEnvironment, ts_queue: str, policies: dict[str, Policy], db_sessions
):
    policy = policies["big_customer_contract"]
    h = await start(
        temporal_ts.client,
        ts_queue,
        policy,
        "am_li",
        Decimal(250000),
        {"contract_no": "HT-9", "settlement_floor_price": "1"},
    )
    await decide_by_signal(temporal_ts, h, "bcd_zheng")
    before = await state(h)
    assert before.stage_index == 1
    await h.terminate("simulate continue-as-new into a new run")

    # The same carried state continue-as-new would pass, started as a new run.
    # (The query answers the public view; the state reads it, as it reads the old carried
    # shape {view, seq, resolve_fired}.)
    resumed = RequestState.model_validate(before.model_dump())
    carried = Carried.model_validate(
        {"view": resumed, "seq": len(before.history), "resolve_fired": False}
    )
    fresh: ApprovalInput = make_input(
        policy, "am_li", Decimal(250000), {"contract_no": "HT-9", "settlement_floor_price": "1"}
    )
    inp = fresh.model_copy(update={"request_id": before.id, "carried": carried})
    h2 = await temporal_ts.client.start_workflow(
        WORKFLOW_NAME, inp, id=workflow_id(before.id) + "-resumed", task_queue=ts_queue
    )
    _STARTED.append(h2)
    await decide_by_signal(temporal_ts, h2, "dsd_liu", rid=before.id)
    v = await state(h2)
    assert v.status == "approved"
    kinds = await audit_kinds(db_sessions, before.id)
    assert kinds.count("submitted") == 1  # not submitted again
    assert kinds[-3:] == ["approved", "stage_completed", "request_approved"]


async def test_a_database_outage_delays_transitions_but_loses_and_doubles_nothing(
    temporal_local: WorkflowEnvironment, policies: dict[str, Policy], db_sessions, pg_url, org
):
    from sqlalchemy.engine import make_url

    from db.engine import make_engine, make_sessionmaker

    queue = f"outage-{uuid.uuid4()}"
    # A real connection to a database that does not exist: every write fails.
    broken_url = make_url(pg_url).set(database="no_such_database").render_as_string(False)
    broken_engine = make_engine(broken_url)
    try:
        async with build_worker(temporal_local.client, make_sessionmaker(broken_engine), queue):
            h = await start(
                temporal_local.client,
                queue,
                policies["big_customer_contract"],
                "am_li",
                Decimal(50000),
                {"contract_no": "HT-OUT", "settlement_floor_price": "1"},
            )
            await asyncio.sleep(2)  # the first transition fails and is retried
            assert await audit_kinds(db_sessions, request_id(h)) == []
    finally:
        await broken_engine.dispose()
    # The database is back (a healthy worker): the retries go through, once each.
    async with build_worker(temporal_local.client, db_sessions, queue):
        v = await h.execute_update(Updates.READY, result_type=RequestView)
        assert v.current_approvers == ["om_wu", "om_yang"]
        assert await audit_kinds(db_sessions, request_id(h)) == ["submitted", "assigned"]
        history = await h.fetch_history()
        attempts = [
            e.activity_task_started_event_attributes.attempt
            for e in history.events
            if e.HasField("activity_task_started_event_attributes")
        ]
        assert attempts[0] >= 2  # the first transition really failed before it went through
