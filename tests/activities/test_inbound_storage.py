"""Whatever the API's validation accepts can be stored and carried; whatever it refuses
is a 422 in the error format.

Hostile values (control characters, lone surrogates, emoji, long runs, hostile_numbers of
every shape) go through the same validation as the API and the workflow's
messages; what passes is written by the real ``record_transition`` into the real
database, and its workflow payloads are measured against Temporal's limit.
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

from activities.approvals import ApprovalActivities
from api.errors import ApiError, error_json, validation_error
from common.policy_store import load_policy_file
from common.settings import DEV_SIGNING_SECRET
from db.engine import make_engine, make_sessionmaker
from db.models import EventRow, RequestRow
from domain.errors import DomainError
from domain.inbound import PAYLOAD_BUDGET_BYTES, TEMPORAL_PAYLOAD_LIMIT_BYTES, payload_size
from domain.process import (
    ApprovalInput,
    DecideInput,
    EventKind,
    HistoryEvent,
    MilestoneInput,
    MilestoneState,
    Notice,
    Payment,
    RequestView,
    ResubmitInput,
    TransferInput,
    TransitionRecord,
    stage_views_of,
)
from domain.requests import Submission, validate_fields
from domain.routing import resolve_route
from tests.support.strategies import hostile_ids, hostile_numbers, hostile_texts

ROOT = Path(__file__).resolve().parents[2]
POLICY = load_policy_file(ROOT / "policies" / "big_customer_contract.yaml")
T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class Storage:
    """The real activity on the real database, driven from a synchronous test."""

    def __init__(self, runner: asyncio.Runner, acts: ApprovalActivities, sessions: Any) -> None:
        self.runner, self.acts, self.sessions = runner, acts, sessions

    def record(self, record: TransitionRecord) -> None:
        self.runner.run(ActivityEnvironment().run(self.acts.record_transition, record))

    def stored(self, request_id: str) -> tuple[RequestRow | None, list[EventRow]]:
        async def read() -> tuple[RequestRow | None, list[EventRow]]:
            async with self.sessions() as s:
                row = await s.get(RequestRow, request_id)
                events = await s.scalars(select(EventRow).where(EventRow.request_id == request_id))
                return row, list(events)

        return self.runner.run(read())


@pytest.fixture
def storage(pg_url: str) -> Iterator[Storage]:
    # Hypothesis calls the test many times; one loop and one engine serve them all.
    with asyncio.Runner() as runner:
        engine = make_engine(pg_url)
        sessions = make_sessionmaker(engine)
        yield Storage(runner, ApprovalActivities(sessions, DEV_SIGNING_SECRET), sessions)
        runner.run(engine.dispose())


def _refusal_is_422_naming(err: ApiError, sent: set[str]) -> None:
    """The refusal as the API would answer it: 422, the error format, fields named
    (a field sent, or one the policy requires)."""
    event("refused")
    sent = sent | {"amount", "fields"}
    response = error_json(err)
    assert response.status_code == 422
    body = json.loads(bytes(response.body))
    assert set(body) == {"error"}
    assert body["error"]["code"] == "validation_error"
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    named = [f["field"] for f in body["error"]["details"]["fields"]]
    assert named
    for field in named:
        assert field.split(".")[0] in sent, (field, sent)


def _pydantic_refusal(exc: ValidationError) -> ApiError:
    """What FastAPI's handler makes of a body that fails its model."""
    errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
    return validation_error(RequestValidationError(errors))


def _view(request_id: str, requester: str, **values: Any) -> RequestView:
    route = values.pop("route")
    return RequestView(
        id=request_id,
        type=POLICY.type,
        requester=requester,
        policy_type=POLICY.type,
        policy_version=POLICY.version,
        status="in_review",
        stages=stage_views_of(route),
        submitted_at=T0,
        **values,
    )


def _stores(storage: Storage, record: TransitionRecord) -> None:
    event("stored")
    assert payload_size(record) < TEMPORAL_PAYLOAD_LIMIT_BYTES
    storage.record(record)
    view = record.view
    assert view is not None
    row, events = storage.stored(view.id)
    assert row is not None and row.title == view.title
    assert row.fields == view.model_dump(mode="json")["fields"]
    assert [(e.seq, e.comment) for e in events] == [(record.event.seq, record.event.comment)]


def _with(base: dict[str, Any], changes: list[tuple[tuple[str, ...], Any]]) -> dict[str, Any]:
    """``base`` (a valid body) with hostile values at some paths."""
    body = copy.deepcopy(base)
    for path, value in changes:
        target = body
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return body


def _mutations(
    text_paths: list[tuple[str, ...]],
    number_paths: list[tuple[str, ...]],
    id_paths: list[tuple[str, ...]] = [],  # noqa: B006 - read only
) -> st.SearchStrategy[list[tuple[tuple[str, ...], Any]]]:
    choices = [st.tuples(st.sampled_from(text_paths), hostile_texts)]
    if number_paths:
        choices.append(st.tuples(st.sampled_from(number_paths), hostile_numbers))
    if id_paths:
        choices.append(st.tuples(st.sampled_from(id_paths), hostile_ids))
    return st.lists(st.one_of(*choices), min_size=1, max_size=2)


CONTRACT: dict[str, Any] = {
    "type": POLICY.type,
    "title": "Annual supply contract",
    "customer": "ACME Ltd",
    "amount": "250000",
    "fields": {"contract_no": "C-1", "settlement_floor_price": "180000", "documents": "all"},
    "comment": "renewal",
}
submissions = st.builds(
    _with,
    st.just(CONTRACT),
    _mutations(
        [
            ("title",),
            ("customer",),
            ("comment",),
            ("fields", "contract_no"),
            ("fields", "documents"),
        ],
        [("amount",), ("fields", "settlement_floor_price"), ("fields", "contract_no")],
    ),
)


@SETTINGS
@given(body=submissions)
def test_an_accepted_submission_is_stored_and_fits_temporal(
    storage: Storage, body: dict[str, Any]
) -> None:
    try:
        sub = Submission.model_validate(body)
    except ValidationError as exc:
        _refusal_is_422_naming(_pydantic_refusal(exc), set(body))
        return
    try:
        fields = validate_fields(POLICY, sub.amount, sub.fields)
        route = resolve_route(POLICY, sub.amount, fields)
    except DomainError as exc:
        _refusal_is_422_naming(ApiError.from_domain(exc), set(body))
        return
    request_id = str(uuid.uuid4())
    inp = ApprovalInput(
        request_id=request_id,
        requester="am_li",
        title=sub.title,
        customer=sub.customer or None,
        amount=sub.amount,
        fields=fields,
        comment=sub.comment,
        policy=POLICY,
        route=route,
    )
    assert payload_size(inp) <= PAYLOAD_BUDGET_BYTES < TEMPORAL_PAYLOAD_LIMIT_BYTES
    view = _view(
        request_id,
        "am_li",
        title=sub.title,
        customer=sub.customer or None,
        amount=sub.amount,
        fields=fields,
        comment=sub.comment,
        route=route,
    )
    notice = Notice(
        recipient="bcd_zheng",
        template="approval_needed",
        payload={"title": sub.title, "customer": sub.customer, "amount": sub.amount},
        dedupe_key=f"{request_id}:1:bcd_zheng",
    )
    event = HistoryEvent(seq=1, at=T0, kind=EventKind.SUBMITTED, actor="am_li", comment=sub.comment)
    _stores(storage, TransitionRecord(view=view, event=event, notices=[notice]))


FIELDS = {"contract_no": "C-1", "settlement_floor_price": "1"}
messages = st.one_of(
    st.tuples(
        st.just(DecideInput),
        st.builds(
            _with,
            st.just({"actor": "bcd_zheng", "action": "approve", "comment": "ok"}),
            _mutations([("comment",)], [], [("actor",)]),
        ),
    ),
    st.tuples(
        st.just(TransferInput),
        st.builds(
            _with,
            st.just({"actor": "bcd_zheng", "to_user": "dsd_liu", "comment": "on leave"}),
            _mutations([("comment",)], [], [("actor",), ("to_user",)]),
        ),
    ),
    st.tuples(
        st.just(MilestoneInput),
        st.builds(
            _with,
            st.just({"actor": "fin_he", "milestone": "deposit", "amount": "5", "reference": "r"}),
            _mutations([("reference",), ("comment",)], [("amount",)], [("milestone",)]),
        ),
    ),
    st.tuples(
        st.just(ResubmitInput),
        st.builds(
            _with,
            st.just({"actor": "am_li", "amount": "9", "fields": FIELDS, "comment": "again"}),
            _mutations(
                [("comment",), ("fields", "contract_no"), ("fields", "documents")],
                [("amount",), ("fields", "settlement_floor_price")],
            ),
        ),
    ),
)


@SETTINGS
@given(message=messages)
def test_an_accepted_message_is_stored_and_fits_temporal(
    storage: Storage, message: tuple[type[BaseModel], dict[str, Any]]
) -> None:
    model, payload = message
    try:
        msg = model.model_validate(payload)
    except ValidationError as exc:
        _refusal_is_422_naming(_pydantic_refusal(exc), set(payload))
        return
    assert payload_size(msg) < TEMPORAL_PAYLOAD_LIMIT_BYTES
    request_id = str(uuid.uuid4())
    amount: Decimal | None = Decimal("250000.00")
    fields: dict[str, Any] = {"contract_no": "C-1", "settlement_floor_price": "1"}
    data: dict[str, Any] = {}
    milestones: list[MilestoneState] = []
    if isinstance(msg, ResubmitInput):
        # As the workflow's update validator does.
        try:
            fields = validate_fields(POLICY, msg.amount, msg.fields or {})
        except DomainError as exc:
            _refusal_is_422_naming(ApiError.from_domain(exc), set(payload))
            return
        amount = msg.amount
    if isinstance(msg, TransferInput):
        data["to_user"] = msg.to_user
    if isinstance(msg, MilestoneInput):
        payment = Payment(amount=msg.amount, reference=msg.reference, by=msg.actor, at=T0)
        milestones = [
            MilestoneState(name=msg.milestone, title="Deposit", required=None, payments=[payment])
        ]
        data["milestone"] = msg.milestone
    route = resolve_route(POLICY, amount, fields)
    view = _view(
        request_id,
        "am_li",
        title="Contract",
        customer=None,
        amount=amount,
        fields=fields,
        route=route,
        milestones=milestones,
    )
    assert isinstance(msg, DecideInput | TransferInput | MilestoneInput | ResubmitInput)
    comment, actor = msg.comment, msg.actor
    event = HistoryEvent(
        seq=1, at=T0, kind=EventKind.APPROVED, actor=actor, comment=comment, data=data
    )
    notice = Notice(
        recipient=actor,
        template="fyi",
        payload={"comment": comment, **data},
        dedupe_key=f"{request_id}:1:{actor}",
    )
    _stores(storage, TransitionRecord(view=view, event=event, notices=[notice]))
