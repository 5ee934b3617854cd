"""What the API asks of Temporal: start a request's workflow, send it updates.

Every command works in the HTTP request's one session (the one that
authenticated the caller) and ends its transaction before it waits on Temporal,
so a request holds at most one database connection, and none while Temporal or
a worker is slow.

Submission writes the ``submitted`` row and commits BEFORE starting the
workflow, so the workflow's first activity always finds it; if the start fails
the row is removed again (503 when a retry may succeed, 413/500 when it cannot),
so nothing is half-written. Updates answer with the settled RequestView; their
failures are mapped to the one error format (refusals keep their code, a silent
worker is a 503, a permanent refusal by Temporal never is).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import Services
from api.errors import ApiError, field_errors, headers_for, unavailable
from api.views import request_view
from common import search_attributes as sa
from common.signer import vouch
from db import action_keys, attachments
from db import request_queries as q
from db.directory import names_of, route_details
from db.models import RequestRow
from domain.constants import WORKFLOW_NAME, Updates, workflow_id
from domain.core.admission import not_eligible_message
from domain.errors import HTTP_STATUS, DomainError, ErrorCode
from domain.inbound import check_payload_budget
from domain.localize import stage_text
from domain.policy import EmptySlot, Policy
from domain.process import ApprovalInput, AttachmentRef, RequestView, Status
from domain.requests import Submission, condition_values, validate_fields
from domain.resolution import refuse_empty_steps
from domain.routing import Route, resolve_route
from domain.text import DEFAULT_LANGUAGE, Language

log = logging.getLogger("approvals.api")

_TRANSIENT = {
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.CANCELLED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.ABORTED,
}
# Temporal's answers for a payload it will never take, however often it is sent:
# the server's blob size limit, or gRPC's message size limit.
_TOO_LARGE_MARKERS = ("size exceeds limit", "larger than max", "message too large")
# What an update message adds around its payload (update id, identity, name).
_UPDATE_ENVELOPE_BYTES = 2048
_ERROR_CODES = {c.value: c for c in ErrorCode}
CLOSED = "the request is closed"
NO_WORKER = (
    "no worker answered in time; nothing was lost. Retry the same call in a few seconds "
    "(with the same Idempotency-Key, if you sent one)"
)


@dataclass(frozen=True)
class Submitted:
    """The answer to a submission: 201 new, 200 replayed, 202 accepted but not yet settled."""

    status_code: int
    view: RequestView


def _rpc_timeout(services: Services) -> timedelta:
    return timedelta(seconds=services.settings.rpc_timeout_seconds)


def body_hash(body: Submission) -> str:
    """sha256 of the submission as canonical JSON: equal bodies, equal hashes."""
    canonical = json.dumps(
        body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def policy_for(policies: dict[str, Policy], type_: str) -> Policy:
    """The policy of a request type.

    Raises:
        ApiError: 422 naming ``type`` and listing the known types.
    """
    policy = policies.get(type_)
    if policy is None:
        known = sorted(policies)
        raise ApiError(
            422,
            ErrorCode.VALIDATION.value,
            f"unknown request type {type_!r}; known types: {', '.join(known)}",
            {
                "fields": [{"field": "type", "message": f"must be one of {known}"}],
                "known_types": known,
            },
        )
    return policy


def _money_text(amount: Decimal) -> str:
    return f"{amount:,.2f}"


_START_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "money": "{amount} CNY",
        "by": "by {requester}",
        "request": "Request `{id}` under policy `{type}` v{version}.",
        "route": "Route:",
        "stage": "{n}. **{name}** ({mode}): {reason}",
        "no_stages": "(no approval stages: approved on submission)",
        "any": "any",
        "all": "all",
    },
    "zh-CN": {
        "money": "{amount} 元",
        "by": "申请人 {requester}",
        "request": "申请 `{id}`，规则 `{type}` v{version}。",
        "route": "审批路线：",
        "stage": "{n}. **{name}**（{mode}）：{reason}",
        "no_stages": "（没有审批环节：提交即通过）",
        "any": "或签",
        "all": "会签",
    },
}
"""The words of a workflow's summary and details at its start, in the operators' language."""


def operator_language(services: Services) -> Language | None:
    """``APPROVALS_OPERATOR_LANGUAGE`` for a new input: None when English, so an input
    in the default language is the same as every input of before the setting."""
    lang = services.settings.operator_language
    return None if lang == DEFAULT_LANGUAGE else lang


def _operator_language(inp: ApprovalInput) -> str:
    return inp.operator_language or DEFAULT_LANGUAGE


def static_summary(policy: Policy, inp: ApprovalInput) -> str:
    """One line for the Temporal UI, in the operators' language.

    e.g. ``Big-customer contract · 250,000.00 CNY · ACME Ltd · by am_li``.
    """
    lang = _operator_language(inp)
    w = _START_WORDS[lang]
    parts = [policy.title.get(lang)]
    if inp.amount is not None:
        parts.append(w["money"].format(amount=_money_text(inp.amount)))
    if inp.customer:
        parts.append(inp.customer)
    parts.append(w["by"].format(requester=inp.requester))
    return " · ".join(parts)


def static_details(policy: Policy, inp: ApprovalInput) -> str:
    """The route in markdown: each stage and why it applies, in the operators' language."""
    lang = _operator_language(inp)
    w = _START_WORDS[lang]
    lines = [
        f"**{inp.title}**",
        "",
        w["request"].format(id=inp.request_id, type=policy.type, version=policy.version),
        "",
        w["route"],
    ]
    values = condition_values(inp.amount, inp.fields)
    for n, stage in enumerate(inp.route.stages, start=1):
        name, reason = stage_text(policy, stage.key, stage.name, stage.reason, values, lang)
        mode = w[stage.mode.value] if lang != DEFAULT_LANGUAGE else stage.mode.value
        lines.append(w["stage"].format(n=n, name=name, mode=mode, reason=reason))
    if not inp.route.stages:
        lines.append(w["no_stages"])
    return "\n".join(lines)


def _search_attributes(inp: ApprovalInput) -> TypedSearchAttributes:
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(sa.REQUEST_TYPE, inp.policy.type),
        SearchAttributePair(sa.REQUEST_STATUS, Status.IN_REVIEW.value),
        SearchAttributePair(sa.OVERDUE, False),
        SearchAttributePair(sa.REQUESTER, inp.requester),
        SearchAttributePair(sa.CURRENT_APPROVERS, []),
    ]
    if inp.customer:
        pairs.append(SearchAttributePair(sa.CUSTOMER_ID, inp.customer))
    if inp.amount is not None:
        # Search only: money itself is never a float anywhere else.
        pairs.append(SearchAttributePair(sa.AMOUNT, float(inp.amount)))
    return TypedSearchAttributes(pairs)


def _start_options(services: Services, inp: ApprovalInput) -> dict[str, Any]:
    """How a request's workflow is started, whichever call starts it."""
    return {
        "id": workflow_id(inp.request_id),
        "task_queue": services.settings.task_queue,
        "id_conflict_policy": WorkflowIDConflictPolicy.USE_EXISTING,
        # A request id never gets a second run once its workflow has closed.
        "id_reuse_policy": WorkflowIDReusePolicy.REJECT_DUPLICATE,
        "search_attributes": _search_attributes(inp),
        "static_summary": static_summary(inp.policy, inp),
        "static_details": static_details(inp.policy, inp),
    }


async def _start(
    services: Services, client: Client, inp: ApprovalInput
) -> WorkflowHandle[Any, Any]:
    """Start (or find, if it already runs) the request's workflow."""
    try:
        return await client.start_workflow(
            WORKFLOW_NAME, inp, **_start_options(services, inp), rpc_timeout=_rpc_timeout(services)
        )
    except WorkflowAlreadyStartedError:
        return client.get_workflow_handle(workflow_id(inp.request_id))


class _NotStarted(Exception):
    """The workflow was not started (as far as Temporal answered): nothing runs."""


async def _start_ready(
    services: Services, session: AsyncSession, client: Client, inp: ApprovalInput, settled_code: int
) -> Submitted:
    """Start the workflow and wait for its first stage in one round trip (update-with-start).

    Raises:
        _NotStarted: (from the cause) the start itself failed or went unanswered.
    """
    start: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
        WORKFLOW_NAME, inp, **_start_options(services, inp)
    )
    try:
        view = await client.execute_update_with_start_workflow(
            Updates.READY,
            start_workflow_operation=start,
            result_type=RequestView,
            rpc_timeout=_rpc_timeout(services),
        )
    except (
        WorkflowUpdateRPCTimeoutOrCancelledError,
        RPCError,
        WorkflowUpdateFailedError,
        RuntimeError,
    ) as exc:
        if not await _started(services, client, start, inp.request_id):
            raise _NotStarted() from exc
        return await _not_ready(session, inp.request_id, settled_code, exc)
    return Submitted(settled_code, view)


async def _started(
    services: Services, client: Client, start: WithStartWorkflowOperation[Any, Any], request_id: str
) -> bool:
    """Whether the workflow runs after a failed update-with-start.

    Temporal answers the start only together with the update, so an update that timed
    out (no worker yet) leaves it unsaid: then ask. Unknown counts as not started.
    """
    try:
        await asyncio.wait_for(asyncio.shield(start.workflow_handle()), timeout=0.01)
        return True
    except (Exception, asyncio.CancelledError):  # its start failed, or went unanswered
        pass
    try:
        await client.get_workflow_handle(workflow_id(request_id)).describe(
            rpc_timeout=_rpc_timeout(services)
        )
    except (RPCError, RuntimeError):
        return False
    return True


def start_error(exc: BaseException) -> ApiError:
    """The answer for a workflow start that failed: 503 only when a retry may succeed.

    A missing namespace counts as temporary (it is being set up); a payload over
    Temporal's size limit is 413, any other refusal 500.
    """
    if isinstance(exc, RPCError):
        permanent = permanent_rpc_error(exc)
        if permanent is not None and exc.status != RPCStatusCode.NOT_FOUND:
            return permanent
    return unavailable(
        "the workflow service (Temporal) did not accept the request; nothing was "
        "recorded, please retry"
    )


async def _await_ready(
    services: Services,
    session: AsyncSession,
    handle: WorkflowHandle[Any, Any],
    request_id: str,
    settled_code: int,
) -> Submitted:
    """Wait (bounded) for the first stage to be assigned; 202 when no worker answers."""
    try:
        view = await handle.execute_update(
            Updates.READY, result_type=RequestView, rpc_timeout=_rpc_timeout(services)
        )
    except (WorkflowUpdateRPCTimeoutOrCancelledError, RPCError, WorkflowUpdateFailedError) as exc:
        return await _not_ready(session, request_id, settled_code, exc)
    return Submitted(settled_code, view)


async def _not_ready(
    session: AsyncSession, request_id: str, settled_code: int, exc: BaseException
) -> Submitted:
    """The workflow runs but `ready` did not answer its view: 202, the closed view, or why."""
    error = update_error(exc)
    if error.status == 503:
        log.warning("request %s accepted, but no worker answered `ready` in time", request_id)
        return Submitted(202, await read_view(session, request_id))
    if error.code == ErrorCode.INVALID_STATE.value and error.message == CLOSED:
        # A route with nothing to decide closes at once: its record is complete.
        return Submitted(settled_code, await read_view(session, request_id))
    raise error from exc


async def read_view(session: AsyncSession, request_id: str) -> RequestView:
    """The RequestView from the read-model (with its audit history).

    Ends the read transaction, so the connection goes back to the pool at once.
    """
    row = await q.get_request(session, request_id)
    if row is None:
        await session.commit()
        raise ApiError(404, ErrorCode.NOT_FOUND.value, "request not found")
    view = request_view(row, await q.request_history(session, request_id))
    await session.commit()
    return view


def _input_from_row(services: Services, row: RequestRow, policy: Policy) -> ApprovalInput:
    return ApprovalInput(
        request_id=row.id,
        requester=row.requester,
        title=row.title,
        customer=row.customer,
        amount=row.amount,
        fields=row.fields or {},
        comment=row.comment,
        policy=policy,
        route=Route.model_validate(row.route),
        operator_language=operator_language(services),
    )


async def _replay(
    services: Services, session: AsyncSession, row: RequestRow, digest: str
) -> Submitted:
    """A submission with an Idempotency-Key seen before: the same request, or 409."""
    if row.body_hash != digest:
        raise ApiError(
            409,
            ErrorCode.CONFLICT.value,
            "this Idempotency-Key was already used for a different request body",
            {"request_id": row.id},
        )
    if row.status == Status.SUBMITTED.value and row.last_seq == 0:
        # Not recorded by a workflow yet: a crash between commit and start, or a
        # start still in flight. Starting again is safe (same workflow id).
        policy = services.policies.get(row.policy_type)
        if policy is not None and policy.version == row.policy_version:
            client = await services.temporal.client()
            try:
                handle = await _start(services, client, _input_from_row(services, row, policy))
            except RPCError as exc:
                error = start_error(exc)
                if error.status == 503:
                    error = unavailable(
                        "the workflow service (Temporal) did not answer; please retry"
                    )
                raise error from exc
            return await _await_ready(services, session, handle, row.id, 200)
    return Submitted(200, await read_view(session, row.id))


async def submit(
    services: Services,
    session: AsyncSession,
    requester: str,
    body: Submission,
    idempotency_key: str | None,
) -> Submitted:
    """Validate, route, record and start one request.

    Raises:
        ApiError / DomainError: 422 for an unknown type, invalid fields, a broken
            rule or a step nobody is named for under ``empty_slot: refuse``
            (nothing written, nothing started); 409 for a reused
            Idempotency-Key with another body; 503 when Temporal is unreachable.
    """
    policy = policy_for(services.policies, body.type)
    fields = validate_fields(policy, body.amount, body.fields)
    route = resolve_route(policy, body.amount, fields)
    request_id = str(uuid.uuid4())
    inp = ApprovalInput(
        request_id=request_id,
        requester=requester,
        title=body.title,
        customer=body.customer or None,
        amount=body.amount,
        fields=fields,
        comment=body.comment,
        policy=policy,
        route=route,
        operator_language=operator_language(services),
    )
    check_payload_budget(inp, "the request")  # 413 before anything is written or started
    digest = body_hash(body)

    if idempotency_key is not None:
        existing = await q.find_by_idempotency_key(session, requester, idempotency_key)
        await session.commit()
        if existing is not None:
            return await _replay(services, session, existing, digest)

    if policy.resolution.empty_slot is EmptySlot.REFUSE:
        # A step nobody is named for refuses the request now (422 naming it), before
        # anything is written or started.
        rules, now = policy.resolution, datetime.now(UTC)
        details = await route_details(
            session, requester, route.stages, now, rules.empty_slot_role, policy.type
        )
        refuse_empty_steps(details, requester, rules, now)

    # Reach Temporal before writing anything, so an outage writes nothing; the
    # connection is released first, as connecting may take the whole RPC timeout.
    await session.commit()
    client = await services.temporal.client()
    new = q.NewRequest(
        id=request_id,
        type=policy.type,
        title=body.title,
        requester=requester,
        customer=inp.customer,
        amount=body.amount,
        fields=fields,
        comment=body.comment,
        policy_type=policy.type,
        policy_version=policy.version,
        route=route.model_dump(mode="json"),
        idempotency_key=idempotency_key,
        body_hash=digest,
    )
    try:
        await q.insert_request(session, new)
        await session.commit()
    except IntegrityError:
        await session.rollback()
        # The same key raced us: answer as the winner did.
        if idempotency_key is None:
            raise
        existing = await q.find_by_idempotency_key(session, requester, idempotency_key)
        await session.commit()
        if existing is None:
            raise
        return await _replay(services, session, existing, digest)

    files = [str(i) for i in body.attachments]
    claim = f"submission:{request_id}"
    if files:
        inp = await _with_files(services, session, inp, requester, files, claim)
    try:
        return await _start_ready(services, session, client, inp, 201)
    except _NotStarted as failed:
        exc = failed.__cause__ or failed
        log.warning("starting the workflow of %s failed: %s; removing its row", request_id, exc)
        await attachments.release(session, files, claim)  # before the row takes them along
        await q.delete_unstarted_request(session, request_id)
        await session.commit()
        raise start_error(exc) from exc


async def _with_files(
    services: Services,
    session: AsyncSession,
    inp: ApprovalInput,
    requester: str,
    files: list[str],
    claim: str,
) -> ApprovalInput:
    """``inp`` carrying the submitted files, claimed for its request (just written);
    422 naming them, and nothing kept, when some cannot be."""
    limit = services.settings.attachment_max_count
    got = (
        await attachments.claim(session, files, requester, inp.request_id, "submission", claim)
        if len(files) <= limit
        else files
    )
    if isinstance(got, list):
        await q.delete_unstarted_request(session, inp.request_id)
        await session.commit()
        if len(files) > limit:
            raise field_errors([("attachments", f"at most {limit} files per message")])
        raise field_errors(
            [
                ("attachments", f"{i}: no upload of yours by this id, or attached already")
                for i in got
            ]
        )
    await session.commit()
    refs = [AttachmentRef(id=i, sha256=got[i]) for i in files]
    return inp.model_copy(update={"attachments": refs})


def _refusal(cause: ApplicationError) -> ApiError | None:
    code = _ERROR_CODES.get(cause.type or "")
    if code is None:
        return None
    details: dict[str, Any] = {}
    if cause.details and isinstance(cause.details[0], dict):
        details = dict(cause.details[0])
    if "field" in details and "fields" not in details:
        details["fields"] = [{"field": str(details["field"]), "message": cause.message}]
    return ApiError(
        HTTP_STATUS[code], code.value, cause.message, details, headers_for(code, details)
    )


def update_error(exc: BaseException) -> ApiError:
    """The API's answer for a failed update (or RPC to the workflow)."""
    if isinstance(exc, WorkflowUpdateFailedError):
        cause = exc.cause
        if isinstance(cause, ApplicationError):
            refusal = _refusal(cause)
            if refusal is not None:
                return refusal
            if cause.type == "AcceptedUpdateCompletedWorkflow":
                return _closed()
        log.error("update failed unexpectedly: %r", cause)
        return ApiError(500, "internal_error", "the workflow could not apply the action")
    if isinstance(exc, WorkflowUpdateRPCTimeoutOrCancelledError):
        return unavailable(NO_WORKER)
    if isinstance(exc, RPCError):
        if exc.status == RPCStatusCode.NOT_FOUND:
            return _closed()
        return permanent_rpc_error(exc) or unavailable(NO_WORKER)
    if isinstance(exc, DomainError):
        return ApiError.from_domain(exc)
    raise exc


def _too_large(exc: RPCError) -> bool:
    message = exc.message.lower()
    return any(marker in message for marker in _TOO_LARGE_MARKERS)


def permanent_rpc_error(exc: RPCError) -> ApiError | None:
    """The answer for an RPC failure that retrying will not cure; None when it may.

    Only the transient gRPC statuses (unavailable, deadline exceeded, cancelled,
    aborted, resource exhausted) are worth a 503 and a retry. A payload over
    Temporal's size limit is 413 ``payload_too_large``; any other refusal
    (invalid argument, failed precondition, permission denied, …) is a 500 that
    says a retry will not help.
    """
    if _too_large(exc):
        return payload_too_large({"temporal_status": exc.status.name})
    if exc.status in _TRANSIENT:
        return None
    log.error("Temporal refused a call: %s %s", exc.status.name, exc.message)
    return ApiError(
        500,
        "internal_error",
        f"the workflow service (Temporal) refused the call ({exc.status.name}: "
        f"{exc.message}); this is not temporary, retrying the same call will not help",
        {"temporal_status": exc.status.name},
    )


def payload_too_large(details: dict[str, Any]) -> ApiError:
    return ApiError(
        413,
        "payload_too_large",
        "the data of this call is larger than the workflow service (Temporal) accepts; "
        "nothing was changed. Send less data: retrying the same call will not help",
        details,
    )


async def check_update_size(services: Services, client: Client, payload: BaseModel) -> None:
    """Refuse (413) an update whose payload is over the namespace's blob size limit.

    Temporal's frontend takes such an update, but the worker cannot accept or
    even reject it (both echo the payload back) and fails its workflow task
    again and again: every later action on the request times out until the
    update is dropped. So it must never be sent.
    """
    limit = await services.temporal.blob_size_limit()
    if limit is None:
        return
    encoded = await client.data_converter.encode([payload])
    size = sum(p.ByteSize() for p in encoded) + _UPDATE_ENVELOPE_BYTES
    if size > limit:
        raise payload_too_large({"size_bytes": size, "limit_bytes": limit})


def _closed() -> ApiError:
    return ApiError(409, ErrorCode.INVALID_STATE.value, CLOSED)


def action_update_id(update: str, user_id: str, idempotency_key: str) -> str:
    """The Temporal update id of a keyed action: the caller's own, whatever the key.

    Update ids are unique per workflow, so two callers (two approvers of one
    countersign stage) reusing one key must never share one; the key is hashed
    so that any key fits and none can forge another caller's id.
    """
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"{update}:{user_id}:{digest}"


def payload_hash(payload: BaseModel) -> str:
    """sha256 of an action's payload as canonical JSON."""
    canonical = json.dumps(
        payload.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _keyed_update_id(
    session: AsyncSession,
    request_id: str,
    user_id: str,
    update: str,
    payload: BaseModel,
    idempotency_key: str,
) -> str:
    """The update id for this caller's key; 409 when the key was used for something else."""
    digest = payload_hash(payload)
    key = await action_keys.claim(
        session,
        request_id=request_id,
        user_id=user_id,
        key=idempotency_key,
        action=update,
        body_hash=digest,
        update_id=action_update_id(update, user_id, idempotency_key),
    )
    await session.commit()
    if key.action != update or key.body_hash != digest:
        raise ApiError(
            409,
            ErrorCode.CONFLICT.value,
            f"this Idempotency-Key was already used by you for a different "
            f"{'body' if key.action == update else 'action'} on this request",
            {"request_id": request_id, "action": key.action},
        )
    return key.update_id


async def run_update(
    services: Services,
    session: AsyncSession,
    request_id: str,
    user_id: str,
    update: str,
    payload: BaseModel,
    idempotency_key: str | None = None,
) -> RequestView:
    """Send one update to the request's workflow and answer with the new view.

    With an ``idempotency_key`` the call is applied once: the caller's key, action
    and body are recorded, the same ones again reuse the update id (Temporal
    answers with the first outcome, even after the workflow has closed), another
    body or action under the key is 409. The session's transaction ends before
    Temporal is called.
    """
    await session.commit()
    client = await services.temporal.client()
    # Before the key is claimed: a call refused for its size leaves no key behind,
    # so the same key with less data is not a conflict.
    await check_update_size(services, client, payload)
    update_id = None
    if idempotency_key is not None:
        update_id = await _keyed_update_id(
            session, request_id, user_id, update, payload, idempotency_key
        )
    handle = client.get_workflow_handle(workflow_id(request_id))
    # The caller's token was verified: vouch for the actor, so the workflow believes it.
    signed = vouch(payload, services.settings.signing_secret, request_id, update)
    try:
        result: RequestView = await handle.execute_update(
            update,
            signed,
            id=update_id,
            result_type=RequestView,
            rpc_timeout=_rpc_timeout(services),
        )
    except (WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError, RPCError) as exc:
        error = update_error(exc)
        if error.code == ErrorCode.NOT_ELIGIBLE.value:
            error = await _with_holders_named(session, user_id, error)
        raise error from exc
    return result


async def _with_holders_named(session: AsyncSession, user_id: str, error: ApiError) -> ApiError:
    """A "may not decide" refusal naming the step's holders by name and id.

    The caller passed the visibility check (404 otherwise), so they may see who holds it.
    """
    holders = error.details.get("holders")
    if not isinstance(holders, list) or not all(isinstance(h, str) for h in holders):
        return error
    names = await names_of(session, holders)
    await session.commit()
    shown = [f"{names[h]} ({h})" if h in names else h for h in holders]
    stage_name = str(error.details.get("stage_name") or error.details.get("stage") or "")
    details = {**error.details, "holders": [{"id": h, "name": names.get(h)} for h in holders]}
    message = not_eligible_message(user_id, stage_name, shown)
    return ApiError(error.status, error.code, message, details, error.headers)
