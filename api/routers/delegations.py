"""Delegations (委托/代理): ``/v1/me/delegations`` and ``/v1/delegations``.

The rules are :mod:`domain.delegation`; the rows :mod:`db.delegations`. A delegation
in force at once is told to its delegator's open requests right away (their waiting
steps gain the delegate); one that starts or ends later is told by the reconcile
pass (:meth:`activities.reconcile.ReconcileActivities.tell_delegations`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from temporalio.service import RPCError, RPCStatusCode

from api.deps import CurrentUser, IdempotencyKey, PoliciesDep, ServicesDep, SessionsDep
from api.errors import BODY_ERRORS, ApiError, field_errors, not_found, responses
from api.schemas import (
    DelegationBody,
    DelegationForBody,
    DelegationList,
    DelegationView,
    EndDelegationBody,
)
from db import delegations as store
from db.directory import DirectoryUser, active_among, get_user
from db.engine import transaction
from db.models import DelegationRow
from domain.constants import Signals, workflow_id
from domain.delegation import (
    DelegationSource,
    Edge,
    Standing,
    check_new,
    find_loop,
    loop_text,
    may_set_for,
    status_at,
)
from domain.errors import ErrorCode
from domain.process import DirectoryChangedInput

log = logging.getLogger("approvals.delegations")

router = APIRouter(tags=["delegations"])

PAST_GRACE = timedelta(minutes=5)
"""How far in the past ``starts_at`` may lie (clocks differ); further back is refused."""

DelegationId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The delegation's id.")]


def _forbidden(message: str) -> ApiError:
    return ApiError(403, ErrorCode.FORBIDDEN.value, message)


def _conflict(message: str, details: dict[str, Any] | None = None) -> ApiError:
    return ApiError(409, ErrorCode.CONFLICT.value, message, details)


async def _may_end(session: Any, user: DirectoryUser, row: DelegationRow) -> bool:
    if row.source != DelegationSource.API or row.ended_by is not None:
        return False
    if user.id in (row.from_user, row.created_by):
        return True
    principal = await get_user(session, row.from_user)
    manager = principal.manager_id if principal is not None else None
    return may_set_for(user.id, user.is_admin, row.from_user, manager) is not None


def _view(row: DelegationRow, me: str, now: datetime, may_end: bool) -> DelegationView:
    status = status_at(row.starts_at, row.ends_at, now)
    return DelegationView(
        id=row.id,
        from_=row.from_user,
        to=row.to_user,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        request_types=list(row.request_types) if row.request_types is not None else "all",
        reason=row.reason,
        source="api" if row.source == DelegationSource.API else "org",
        created_by=row.created_by,
        ended_by=row.ended_by,
        status=status.value,
        direction="given" if row.from_user == me else "received" if row.to_user == me else "other",
        may_end=may_end and status.value != "ended",
    )


@router.get(
    "/v1/me/delegations",
    response_model=DelegationList,
    response_model_by_alias=True,
    summary="My delegations",
    description=(
        "Delegations I gave (`direction: given`) and received (`received`), latest start "
        "first: those made through the API and the org file's (`source: org`, read-only "
        "here). `status`: `scheduled`, `active` or `ended`."
    ),
    responses=responses(401),
)
async def my_delegations(user: CurrentUser, sessions: SessionsDep) -> DelegationList:
    now = datetime.now(UTC)
    async with sessions() as session:
        rows = await store.of_user(session, user.id)
        items = [_view(r, user.id, now, await _may_end(session, user, r)) for r in rows]
    return DelegationList(items=items)


@router.post(
    "/v1/me/delegations",
    response_model=DelegationView,
    response_model_by_alias=True,
    status_code=201,
    summary="Delegate my steps",
    description=(
        "`to` decides my steps on my behalf from `starts_at` (omitted: now) until "
        "`ends_at`, for `request_types` (`all` or a list). Steps already waiting for me "
        "get the delegate at once (or when it starts). 422 names a bad field; 409 when it "
        "would close a loop of delegations (`details.loop`). The same `Idempotency-Key` "
        "again answers 200 with the delegation it made."
    ),
    responses={
        200: {"model": DelegationView, "description": "Made earlier under this key."},
        **responses(401, 409, *BODY_ERRORS),
    },
)
async def delegate_mine(
    body: DelegationBody,
    user: CurrentUser,
    services: ServicesDep,
    sessions: SessionsDep,
    policies: PoliciesDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> DelegationView:
    return await _create(
        services, sessions, policies, user, user.id, body, idempotency_key, response
    )


@router.post(
    "/v1/delegations",
    response_model=DelegationView,
    response_model_by_alias=True,
    status_code=201,
    summary="Delegate someone's steps",
    description=(
        "As `POST /v1/me/delegations`, for `from`: a manager for a direct report, an "
        "administrator for anyone (someone who left, say); 403 otherwise. The delegator "
        "is told."
    ),
    responses={
        200: {"model": DelegationView, "description": "Made earlier under this key."},
        **responses(401, 403, 409, *BODY_ERRORS),
    },
)
async def delegate_for(
    body: DelegationForBody,
    user: CurrentUser,
    services: ServicesDep,
    sessions: SessionsDep,
    policies: PoliciesDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> DelegationView:
    return await _create(
        services, sessions, policies, user, body.from_, body, idempotency_key, response
    )


@router.post(
    "/v1/delegations/{delegation_id}/end",
    response_model=DelegationView,
    response_model_by_alias=True,
    summary="End a delegation now",
    description=(
        "Ends a delegation before its time (one not started yet never starts). Its "
        "delegator, its author, the delegator's manager or an administrator may; 403 "
        "otherwise; 404 for one I cannot see; 409 for one from the org file or already "
        "ended. Steps the delegate held for the delegator go back to the delegator alone."
    ),
    responses=responses(401, 403, 404, 409, *BODY_ERRORS),
)
async def end_delegation(
    delegation_id: DelegationId,
    user: CurrentUser,
    services: ServicesDep,
    sessions: SessionsDep,
    body: EndDelegationBody | None = None,
) -> DelegationView:
    now = datetime.now(UTC)
    async with transaction(sessions) as session:
        await store.lock(session)
        row = await session.get(DelegationRow, delegation_id)
        if row is None:
            raise not_found("delegation")
        may_end = await _may_end(session, user, row)
        if not may_end and user.id not in (row.from_user, row.to_user, row.created_by):
            raise not_found("delegation")  # not theirs to see
        if row.source != DelegationSource.API:
            raise _conflict("this delegation comes from the org file: change it there")
        if row.ended_by is not None or row.ends_at <= now:
            raise _conflict("this delegation has already ended")
        if not may_end:
            raise _forbidden("only the delegator, its author, their manager or an admin may")
        row.ends_at = now
        row.ended_by = user.id
        await store.audit(
            session,
            row.id,
            user.id,
            "ended",
            {"reason": body.reason if body is not None else "", "at": now.isoformat()},
        )
        view = _view(row, user.id, now, False)
    await _tell(services, sessions, now, row.id)
    return view


def _same_delegation(
    row: DelegationRow, principal_id: str, body: DelegationBody, types: frozenset[str] | None
) -> bool:
    """Whether a call with the key of ``row`` asked for the same delegation (a retry).

    ``starts_at`` is compared only when the call named it: omitted, it meant "now"."""
    row_types = frozenset(row.request_types) if row.request_types is not None else None
    return (row.from_user, row.to_user, row.ends_at, row_types, row.reason) == (
        principal_id,
        body.to,
        body.ends_at,
        types,
        body.reason,
    ) and (body.starts_at is None or body.starts_at == row.starts_at)


async def _create(
    services: Any,
    sessions: Any,
    policies: dict[str, Any],
    user: DirectoryUser,
    principal_id: str,
    body: DelegationBody,
    key: str | None,
    response: Response,
) -> DelegationView:
    now = datetime.now(UTC)
    starts_at = body.starts_at or now
    types = None if body.request_types == "all" else frozenset(body.request_types)
    async with transaction(sessions) as session:
        if key is not None:
            earlier = await store.by_key(session, user.id, key)
            if earlier is not None:
                if not _same_delegation(earlier, principal_id, body, types):
                    raise _conflict(
                        "this Idempotency-Key was already used for a different delegation",
                        {"delegation_id": earlier.id},
                    )
                response.status_code = 200
                return _view(earlier, user.id, now, await _may_end(session, user, earlier))
        principal = await get_user(session, principal_id)
        if principal is None or not principal.active:
            raise field_errors([("from", f"{principal_id!r} is not an active user")])
        standing = may_set_for(user.id, user.is_admin, principal.id, principal.manager_id)
        if standing is None:
            raise _forbidden(
                "only the person themself, their manager or an admin may set their delegation"
            )
        problems = [
            (p.field, p.message)
            for p in check_new(
                from_=principal.id,
                to=body.to,
                starts_at=starts_at,
                ends_at=body.ends_at,
                types=types,
                known_types=policies,
                active_users=await active_among(session, [principal.id, body.to]),
            )
        ]
        if starts_at < now - PAST_GRACE:
            problems.append(("starts_at", "must not lie in the past"))
        if problems:
            raise field_errors(problems)
        await store.lock(session)
        edge = Edge(principal.id, body.to, starts_at, body.ends_at, types)
        loop = find_loop(await store.overlapping(session, starts_at, body.ends_at), edge)
        if loop is not None:
            raise _conflict(
                f"this delegation would close a loop: {loop_text(loop)}", {"loop": loop}
            )
        row = store.new_row(
            from_user=principal.id,
            to_user=body.to,
            starts_at=starts_at,
            ends_at=body.ends_at,
            request_types=sorted(types) if types is not None else None,
            reason=body.reason,
            created_by=user.id,
            idempotency_key=key,
        )
        session.add(row)
        await session.flush()
        await store.audit(
            session,
            row.id,
            user.id,
            "created",
            {
                "from": row.from_user,
                "to": row.to_user,
                "starts_at": starts_at.isoformat(),
                "ends_at": body.ends_at.isoformat(),
                "request_types": row.request_types,
                "reason": row.reason,
                "as": standing.value,
            },
        )
        if standing is not Standing.SELF:
            await store.add_notice(
                session,
                principal.id,
                "delegation_set_for_you",
                f"delegation:{row.id}:set:{principal.id}",
                store.notice_payload(row),
            )
        view = _view(row, user.id, now, True)
    if starts_at <= now:
        await _tell(services, sessions, now, row.id)
    return view


async def _tell(services: Any, sessions: Any, now: datetime, delegation_id: int) -> None:
    """Tell the delegator's open requests now; if Temporal does not answer, the next
    reconcile pass does (the delegation stays untold until then)."""

    async def signal(request_id: str, hint: DirectoryChangedInput) -> bool:
        client = await services.temporal.client()
        try:
            await client.get_workflow_handle(workflow_id(request_id)).signal(
                Signals.DIRECTORY_CHANGED, hint
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    try:
        await store.tell(sessions, signal, now, only=[delegation_id])
    except Exception:  # the pass mends it; the delegation itself is made
        log.warning("delegation %s: its open requests will be told by the next pass", delegation_id)
