"""record_transition: the read-model, the audit row, the inbox and the notices, once."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.approvals import ApprovalActivities
from db.models import AssignmentRow, RequestRow
from domain.policy import ApproverSpec, StageMode
from domain.process import (
    Actor,
    EventKind,
    HistoryEvent,
    Notice,
    RequestView,
    SlotView,
    StageStatus,
    StageView,
    TransitionBatch,
    TransitionRecord,
)

T0 = datetime(2025, 3, 3, 1, 0, tzinfo=UTC)


def _stage(index: int, key: str, role: str, **kw: Any) -> StageView:
    return StageView(
        index=index,
        key=key,
        name=key.replace("_", " "),
        mode=kw.pop("mode", StageMode.ANY),
        reason="always",
        approvers=(ApproverSpec(role=role),),
        **kw,
    )


def _slot(role: str, *users: str, **kw: Any) -> SlotView:
    actors = [Actor(user=u, via=f"role:{role}", since=T0) for u in users]
    return SlotView(label=f"role {role}", actors=actors, **kw)


def _view(request_id: str, **kw: Any) -> RequestView:
    base: dict[str, Any] = {
        "id": request_id,
        "type": "big_customer_contract",
        "title": "Contract for ACME",
        "requester": "am_li",
        "customer": "ACME",
        "amount": Decimal("250000.00"),
        "fields": {"contract_no": "C-1", "floor_price": "1.50"},
        "policy_type": "big_customer_contract",
        "policy_version": 1,
        "status": "in_review",
        "stage_index": 0,
        "submitted_at": T0,
        "resolve_due": T0 + timedelta(days=3),
        "current_approvers": ["bcd_zheng"],
        "stages": [
            _stage(
                0,
                "bcd_sign",
                "big_customer_dept",
                status="active",
                slots=[_slot("big_customer_dept", "bcd_zheng")],
                started_at=T0,
                reply_due=T0 + timedelta(hours=4),
            ),
            _stage(1, "dsd_approve", "deputy_sales_director"),
        ],
    }
    base.update(kw)
    return RequestView(**base)


def _record(
    view: RequestView, seq: int, kind: EventKind, actor: str, **kw: Any
) -> TransitionRecord:
    at = kw.pop("at", T0 + timedelta(minutes=seq))
    notices = kw.pop("notices", [])
    return TransitionRecord(
        view=view,
        event=HistoryEvent(seq=seq, at=at, kind=kind, actor=actor, **kw),
        notices=notices,
    )


def _submitted(request_id: str) -> TransitionRecord:
    notices = [
        Notice(
            recipient="bcd_zheng",
            template="approval_needed",
            payload={"amount": Decimal("250000.00"), "stage": "bcd_sign"},
            dedupe_key=f"{request_id}:1:bcd_zheng",
        ),
        Notice(
            recipient="am_li",
            template="submitted",
            dedupe_key=f"{request_id}:1:am_li",
        ),
    ]
    return _record(_view(request_id), 1, EventKind.SUBMITTED, "am_li", notices=notices)


def _first_stage_approved(request_id: str) -> TransitionRecord:
    stages = [
        _stage(
            0,
            "bcd_sign",
            "big_customer_dept",
            status="approved",
            slots=[
                _slot(
                    "big_customer_dept",
                    "bcd_zheng",
                    decision="approve",
                    decided_by="bcd_zheng",
                    decided_at=T0 + timedelta(hours=1),
                )
            ],
            started_at=T0,
            reply_due=T0 + timedelta(hours=4),
        ),
        _stage(
            1,
            "dsd_approve",
            "deputy_sales_director",
            status="active",
            slots=[_slot("deputy_sales_director", "dsd_liu")],
            started_at=T0 + timedelta(hours=1),
            reply_due=T0 + timedelta(hours=5),
        ),
    ]
    view = _view(request_id, stage_index=1, stages=stages, current_approvers=["dsd_liu"])
    notices = [
        Notice(recipient="dsd_liu", template="approval_needed", dedupe_key=f"{request_id}:2:dsd")
    ]
    return _record(
        view,
        2,
        EventKind.APPROVED,
        "bcd_zheng",
        comment="fine",
        data={"stage": 0},
        notices=notices,
    )


async def _run(acts: ApprovalActivities, record: TransitionRecord) -> None:
    await ActivityEnvironment().run(acts.record_transition, record)


async def _rows(sessions: async_sessionmaker[AsyncSession], sql: str, request_id: str) -> list[Any]:
    async with sessions() as s:
        return [tuple(r) for r in await s.execute(text(sql), {"id": request_id})]


async def _request(sessions: async_sessionmaker[AsyncSession], request_id: str) -> RequestRow:
    async with sessions() as s:
        row = await s.get(RequestRow, request_id)
        assert row is not None
        return row


async def _assignments(
    sessions: async_sessionmaker[AsyncSession], request_id: str
) -> list[tuple[Any, ...]]:
    async with sessions() as s:
        rows = await s.scalars(select(AssignmentRow).where(AssignmentRow.request_id == request_id))
        # Sorted here, not by the database: its collation is not Python's.
        return sorted(
            (
                a.stage_index,
                a.stage_key,
                a.slot,
                a.user_id,
                a.via,
                a.on_behalf_of,
                a.pending,
                a.acted,
                a.due,
                a.eligible_since,
            )
            for a in rows
        )


async def test_same_seq_twice_writes_once(
    acts: ApprovalActivities, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    request_id = str(uuid.uuid4())
    record = _submitted(request_id)
    await _run(acts, record)
    first = await _request(db_sessions, request_id)

    # A retry, even one carrying a different snapshot, writes nothing at all.
    extra = Notice(recipient="gm_wang", template="fyi", dedupe_key=f"{request_id}:retry")
    retry = record.model_copy(
        update={
            "view": _view(request_id, status="rejected"),
            "notices": [*record.notices, extra],
        }
    )
    await _run(acts, retry)

    assert await _rows(
        db_sessions, "SELECT seq, kind, actor FROM events WHERE request_id = :id", request_id
    ) == [(1, "submitted", "am_li")]
    assert await _rows(
        db_sessions,
        "SELECT recipient, channel, template, status, payload FROM notifications"
        " WHERE request_id = :id ORDER BY recipient",
        request_id,
    ) == [
        ("am_li", "inbox", "submitted", "pending", {}),
        (
            "bcd_zheng",
            "inbox",
            "approval_needed",
            "pending",
            {"amount": "250000.00", "stage": "bcd_sign"},
        ),
    ]
    again = await _request(db_sessions, request_id)
    assert (again.status, again.last_seq, again.updated_at) == ("in_review", 1, first.updated_at)
    assert len(await _assignments(db_sessions, request_id)) == 1


async def test_first_transition_creates_the_request_row(
    acts: ApprovalActivities, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    request_id = str(uuid.uuid4())
    await _run(acts, _submitted(request_id))
    row = await _request(db_sessions, request_id)
    assert (row.type, row.title, row.requester, row.customer, row.amount) == (
        "big_customer_contract",
        "Contract for ACME",
        "am_li",
        "ACME",
        Decimal("250000.00"),
    )
    assert (row.status, row.stage_index, row.stage_key, row.last_seq) == (
        "in_review",
        0,
        "bcd_sign",
        1,
    )
    assert (row.policy_type, row.policy_version) == ("big_customer_contract", 1)
    assert row.resolve_due == T0 + timedelta(days=3)
    assert row.current_approvers == ["bcd_zheng"]
    assert row.fields == {"contract_no": "C-1", "floor_price": "1.50"}
    assert row.closed_at is None and row.overdue is False
    assert [s["key"] for s in row.route["stages"]] == ["bcd_sign", "dsd_approve"]
    assert all("slots" not in s for s in row.route["stages"])
    assert row.view is not None and row.view["amount"] == "250000.00"
    assert row.view["stages"][0]["slots"][0]["actors"][0]["user"] == "bcd_zheng"


async def test_row_inserted_by_the_api_is_updated_and_keeps_its_route(
    acts: ApprovalActivities, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    request_id = str(uuid.uuid4())
    route = {"policy_type": "big_customer_contract", "stages": [{"key": "from_the_api"}]}
    async with db_sessions() as s, s.begin():
        s.add(
            RequestRow(
                id=request_id,
                type="big_customer_contract",
                title="Contract for ACME",
                requester="am_li",
                customer="ACME",
                amount=Decimal("250000.00"),
                fields={},
                comment="please",
                policy_type="big_customer_contract",
                policy_version=1,
                route=route,
                status="submitted",
                idempotency_key="key-1",
                body_hash="h",
            )
        )
    await _run(acts, _submitted(request_id))
    row = await _request(db_sessions, request_id)
    assert (row.status, row.stage_key, row.last_seq) == ("in_review", "bcd_sign", 1)
    assert (row.route, row.idempotency_key, row.comment) == (route, "key-1", "please")
    assert row.fields == {"contract_no": "C-1", "floor_price": "1.50"}


async def test_older_seq_after_newer_does_not_roll_the_request_back(
    acts: ApprovalActivities, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    request_id = str(uuid.uuid4())
    await _run(acts, _first_stage_approved(request_id))
    await _run(acts, _submitted(request_id))  # arrives late

    row = await _request(db_sessions, request_id)
    assert (row.status, row.stage_index, row.stage_key, row.last_seq) == (
        "in_review",
        1,
        "dsd_approve",
        2,
    )
    assert row.current_approvers == ["dsd_liu"]
    # The late transition is still audited, and its notices still go out.
    assert await _rows(
        db_sessions,
        "SELECT seq, kind, actor, comment, data FROM events WHERE request_id = :id ORDER BY seq",
        request_id,
    ) == [
        (1, "submitted", "am_li", None, {}),
        (2, "approved", "bcd_zheng", "fine", {"stage": 0}),
    ]
    assert await _rows(
        db_sessions,
        "SELECT recipient FROM notifications WHERE request_id = :id ORDER BY recipient",
        request_id,
    ) == [("am_li",), ("bcd_zheng",), ("dsd_liu",)]
    # The inbox still shows seq 2: dsd_liu pending, bcd_zheng done.
    assert [(a[3], a[6], a[7]) for a in await _assignments(db_sessions, request_id)] == [
        ("bcd_zheng", False, True),
        ("dsd_liu", True, False),
    ]


async def test_assignments_match_the_view(
    acts: ApprovalActivities, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    request_id = str(uuid.uuid4())
    await _run(acts, _submitted(request_id))
    due = T0 + timedelta(hours=6)
    countersign = _stage(
        1,
        "managers",
        "operations_manager",
        mode=StageMode.ALL,
        status="active",
        started_at=T0,
        reply_due=due,
        slots=[
            _slot(
                "operations_manager",
                "opm_guo",
                decision="approve",
                decided_by="opm_guo",
                decided_at=T0,
            ),
            _slot("purchasing_manager", "pm_luo"),
            SlotView(
                label="role merchant_manager",
                actors=[
                    Actor(user="mm_hu", via="role:merchant_manager", since=T0),
                    Actor(
                        user="pm_luo",
                        via="delegation",
                        on_behalf_of="mm_hu",
                        since=T0 + timedelta(hours=1),
                    ),
                ],
            ),
        ],
    )
    approved = _first_stage_approved(request_id).view
    assert approved is not None
    first = approved.stages[0]
    view = _view(request_id, stage_index=1, stages=[first, countersign])
    await _run(acts, _record(view, 2, EventKind.APPROVED, "opm_guo"))

    assert await _assignments(db_sessions, request_id) == [
        (
            0,
            "bcd_sign",
            "role big_customer_dept",
            "bcd_zheng",
            "role:big_customer_dept",
            None,
            False,
            True,
            T0 + timedelta(hours=4),
            T0,
        ),
        (
            1,
            "managers",
            "role merchant_manager",
            "mm_hu",
            "role:merchant_manager",
            None,
            True,
            False,
            due,
            T0,
        ),
        (
            1,
            "managers",
            "role merchant_manager",
            "pm_luo",
            "delegation",
            "mm_hu",
            True,
            False,
            due,
            T0 + timedelta(hours=1),
        ),
        (
            1,
            "managers",
            "role operations_manager",
            "opm_guo",
            "role:operations_manager",
            None,
            False,
            True,
            due,
            T0,
        ),
        (
            1,
            "managers",
            "role purchasing_manager",
            "pm_luo",
            "role:purchasing_manager",
            None,
            True,
            False,
            due,
            T0,
        ),
    ]


async def test_closing_transition_sets_closed_at_and_empties_the_inbox(
    acts: ApprovalActivities, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    request_id = str(uuid.uuid4())
    await _run(acts, _submitted(request_id))
    rejected_at = T0 + timedelta(hours=2)
    stages = _view(request_id).stages
    stages[0] = stages[0].model_copy(update={"status": StageStatus.REJECTED})
    view = _view(request_id, status="rejected", stages=stages, current_approvers=[])
    await _run(acts, _record(view, 2, EventKind.REJECTED, "bcd_zheng", at=rejected_at))

    row = await _request(db_sessions, request_id)
    assert (row.status, row.closed_at, row.current_approvers) == ("rejected", rejected_at, [])
    assert [(a[3], a[6]) for a in await _assignments(db_sessions, request_id)] == [
        ("bcd_zheng", False)
    ]


async def test_returned_request_has_no_pending_steps(
    acts: ApprovalActivities, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    # The stage is still marked active in the view, but nobody can act while it is returned.
    request_id = str(uuid.uuid4())
    await _run(acts, _submitted(request_id))
    view = _view(request_id, status="returned")
    await _run(acts, _record(view, 2, EventKind.RETURNED, "bcd_zheng"))
    row = await _request(db_sessions, request_id)
    assert (row.status, row.closed_at) == ("returned", None)
    assert [a[6] for a in await _assignments(db_sessions, request_id)] == [False]


async def test_notices_are_logged_without_their_payload(
    acts: ApprovalActivities, caplog: pytest.LogCaptureFixture
) -> None:
    request_id = str(uuid.uuid4())
    with caplog.at_level(logging.INFO, logger="temporalio.activity"):
        await _run(acts, _submitted(request_id))
    lines = [r.getMessage() for r in caplog.records if "notice for" in r.getMessage()]
    assert len(lines) == 2
    assert any("bcd_zheng" in line and "approval_needed" in line for line in lines)
    assert not any("250000" in line for line in lines)


async def _assert_submitted_then_approved(
    db_sessions: async_sessionmaker[AsyncSession], request_id: str
) -> None:
    """Both transitions written once each, the read-model and inbox at the second."""
    assert await _rows(
        db_sessions, "SELECT seq, kind FROM events WHERE request_id = :id ORDER BY seq", request_id
    ) == [(1, "submitted"), (2, "approved")]
    notices = await _rows(
        db_sessions, "SELECT recipient FROM notifications WHERE request_id = :id", request_id
    )
    assert sorted(notices) == [("am_li",), ("bcd_zheng",), ("dsd_liu",)]
    row = await _request(db_sessions, request_id)
    assert (row.last_seq, row.stage_index, row.current_approvers) == (2, 1, ["dsd_liu"])
    pending = {a[3]: a[6] for a in await _assignments(db_sessions, request_id)}
    assert pending == {"bcd_zheng": False, "dsd_liu": True}


async def test_a_batch_writes_every_event_once_and_the_read_model_from_its_last(
    acts: ApprovalActivities, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    request_id = str(uuid.uuid4())
    batch = TransitionBatch(records=[_submitted(request_id), _first_stage_approved(request_id)])
    await ActivityEnvironment().run(acts.record_transitions, batch)
    await ActivityEnvironment().run(acts.record_transitions, batch)  # a retry: nothing twice

    await _assert_submitted_then_approved(db_sessions, request_id)


async def test_a_batch_carrying_one_view_writes_its_events_and_only_the_missing_notices(
    acts: ApprovalActivities, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The shape workers send now: records without views, the batch's end state once."""
    request_id = str(uuid.uuid4())
    submitted, approved = _submitted(request_id), _first_stage_approved(request_id)
    await _run(acts, submitted)  # the first transition got through before (a retried batch)
    batch = TransitionBatch(
        records=[TransitionRecord(event=r.event, notices=r.notices) for r in (submitted, approved)],
        view=approved.view,
    )
    await ActivityEnvironment().run(acts.record_transitions, batch)
    await ActivityEnvironment().run(acts.record_transitions, batch)  # and again: nothing twice

    await _assert_submitted_then_approved(db_sessions, request_id)


async def test_a_batch_for_a_request_the_api_never_wrote_creates_its_row(
    acts: ApprovalActivities, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    request_id = str(uuid.uuid4())
    submitted = _submitted(request_id)
    batch = TransitionBatch(
        records=[TransitionRecord(event=submitted.event, notices=submitted.notices)],
        view=submitted.view,
    )
    await ActivityEnvironment().run(acts.record_transitions, batch)
    row = await _request(db_sessions, request_id)
    assert (row.last_seq, row.stage_index) == (1, 0)
    pending = {a[3]: a[6] for a in await _assignments(db_sessions, request_id)}
    assert pending == {"bcd_zheng": True}


def _rerun(record: TransitionRecord, later: timedelta) -> TransitionRecord:
    """``record`` as a workflow task run again after its worker died makes it: the same
    transition, with the later clock of the second run."""
    assert record.view is not None
    view = record.view.model_copy(
        update={
            "stages": [
                s.model_copy(
                    update={
                        "started_at": s.started_at + later if s.started_at else None,
                        "reply_due": s.reply_due + later if s.reply_due else None,
                    }
                )
                for s in record.view.stages
            ]
        }
    )
    event = record.event.model_copy(update={"at": record.event.at + later})
    return record.model_copy(update={"view": view, "event": event})


async def _event_at(sessions: async_sessionmaker[AsyncSession], request_id: str) -> list[Any]:
    return await _rows(
        sessions, "SELECT seq, at, kind FROM events WHERE request_id = :id ORDER BY seq", request_id
    )


async def test_a_transition_temporal_never_recorded_is_corrected_to_the_one_it_records(
    acts: ApprovalActivities, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The chaos drill's finding: the worker wrote transition #2 and died before its
    workflow task completed; Temporal ran the task again ten seconds later. The audit row,
    the request row and the inbox follow the recorded run, not the lost one."""
    request_id = str(uuid.uuid4())
    await _run(acts, _submitted(request_id))
    lost = _first_stage_approved(request_id)
    await _run(acts, lost)
    recorded = _rerun(lost, timedelta(seconds=10))
    await _run(acts, recorded)

    assert recorded.view is not None
    assert await _event_at(db_sessions, request_id) == [
        (1, T0 + timedelta(minutes=1), "submitted"),
        (2, recorded.event.at, "approved"),
    ]
    row = await _request(db_sessions, request_id)
    assert row.view is not None
    stored = RequestView.model_validate(row.view)
    assert stored.stages[1].reply_due == recorded.view.stages[1].reply_due
    pending_dues = {a[8] for a in await _assignments(db_sessions, request_id) if a[6]}
    assert pending_dues == {recorded.view.stages[1].reply_due}
    # The same write again (a retry of the recorded run) changes nothing.
    updated = row.updated_at
    await _run(acts, recorded)
    assert (await _request(db_sessions, request_id)).updated_at == updated


async def test_a_batch_corrects_a_transition_temporal_never_recorded(
    acts: ApprovalActivities, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    request_id = str(uuid.uuid4())
    submitted, lost = _submitted(request_id), _first_stage_approved(request_id)
    await ActivityEnvironment().run(
        acts.record_transitions,
        TransitionBatch(records=[TransitionRecord(event=submitted.event)], view=submitted.view),
    )
    await ActivityEnvironment().run(
        acts.record_transitions,
        TransitionBatch(records=[TransitionRecord(event=lost.event)], view=lost.view),
    )
    recorded = _rerun(lost, timedelta(seconds=10))
    await ActivityEnvironment().run(
        acts.record_transitions,
        TransitionBatch(records=[TransitionRecord(event=recorded.event)], view=recorded.view),
    )
    assert [r[1] for r in await _event_at(db_sessions, request_id)] == [
        submitted.event.at,
        recorded.event.at,
    ]
    row = await _request(db_sessions, request_id)
    assert recorded.view is not None and row.view is not None
    stored = RequestView.model_validate(row.view)
    assert stored.stages[1].started_at == recorded.view.stages[1].started_at


async def test_the_audit_trail_still_refuses_any_other_change(
    acts: ApprovalActivities, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    request_id = str(uuid.uuid4())
    await _run(acts, _submitted(request_id))
    on = "SELECT set_config('approvals.replace_unrecorded', 'on', true)"
    for statements in (
        ["UPDATE events SET actor = 'x' WHERE request_id = :id"],
        ["DELETE FROM events WHERE request_id = :id"],
        # Even with the setting on: not another sequence number, and never a delete.
        [on, "UPDATE events SET seq = 9 WHERE request_id = :id"],
        [on, "DELETE FROM events WHERE request_id = :id"],
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with db_sessions() as s, s.begin():
                for sql in statements:
                    await s.execute(text(sql), {"id": request_id})
    assert [r[2] for r in await _event_at(db_sessions, request_id)] == ["submitted"]
