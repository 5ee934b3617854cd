"""A transition the database refuses is visible at once and resumes by itself once fixed.

The database refuses it for real: a trigger raises on the audit row of one
marked decision, as a bad value or a broken constraint would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from common import search_attributes as sa
from domain.constants import Signals, Updates
from domain.policy import Policy
from domain.process import DecideInput
from tests.support.workflows import (
    audit_kinds,
    contract_at_first_stage,
    eventually,
    request_id,
    request_row,
    signal,
    state,
    update,
)

from .test_messages import refused

MARK = "the database refuses this one"


@pytest.fixture
async def refusing_trigger(
    db_sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """A trigger that refuses the audit row of a decision commented ``MARK``; call to drop."""

    async def run(*statements: str) -> None:
        async with db_sessions() as s, s.begin():
            for sql in statements:
                await s.execute(text(sql))

    await run(
        f"""CREATE OR REPLACE FUNCTION refuse_marked_event() RETURNS trigger AS $$
        BEGIN
            IF NEW.comment = '{MARK}' THEN
                RAISE EXCEPTION 'event % of % refused by the test trigger', NEW.seq, NEW.request_id;
            END IF;
            RETURN NEW;
        END $$ LANGUAGE plpgsql""",
        "CREATE TRIGGER refuse_marked BEFORE INSERT ON events "
        "FOR EACH ROW EXECUTE FUNCTION refuse_marked_event()",
    )

    async def drop() -> None:
        await run(
            "DROP TRIGGER IF EXISTS refuse_marked ON events",
            "DROP FUNCTION IF EXISTS refuse_marked_event()",
        )

    try:
        yield drop
    finally:
        await drop()


async def test_a_transition_that_cannot_be_written_is_flagged_and_resumes_once_fixed(
    temporal_local: WorkflowEnvironment,
    local_queue: str,
    policies: dict[str, Policy],
    db_sessions,
    refusing_trigger,
):
    h = await contract_at_first_stage(temporal_local.client, local_queue, policies, "HT-STUCK")
    rid = request_id(h)
    await signal(h, Signals.DECIDE, DecideInput(actor="bcd_zheng", action="approve", comment=MARK))

    async def flagged() -> bool:
        return (await request_row(db_sessions, rid)).stuck_reason is not None

    await eventually(flagged)
    row = await request_row(db_sessions, rid)
    assert "refused by the test trigger" in (row.stuck_reason or "")
    assert row.stuck_since is not None
    v = await state(h)
    assert v.stuck is not None and v.stuck.attempts >= 3
    described = await h.describe()
    assert described.typed_search_attributes.get(sa.STUCK) is True
    # Meanwhile an action is answered at once, saying why, instead of hanging.
    assert (
        await refused(update(h, Updates.DECIDE, DecideInput(actor="dsd_liu", action="approve")))
        == "unavailable"
    )

    await refusing_trigger()  # the cause is fixed

    async def resumed() -> bool:
        return (await state(h)).stuck is None

    await eventually(resumed)
    v = await state(h)
    assert v.stage_index == 1 and v.current_approvers == ["dsd_liu"]
    row = await request_row(db_sessions, rid)
    assert row.stuck_reason is None and row.stuck_since is None and row.stage_index == 1
    assert (await h.describe()).typed_search_attributes.get(sa.STUCK) is False
    kinds = await audit_kinds(db_sessions, rid)
    assert kinds.count("approved") == 1 and kinds[-1] == "assigned"
