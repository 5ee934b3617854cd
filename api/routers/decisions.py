"""``/v1/decisions``: decisions on many requests at once (批量审批)."""

from __future__ import annotations

from fastapi import APIRouter

from api import bulk
from api.deps import CurrentUser, IdempotencyKey, ServicesDep, SessionDep, viewer_of
from api.errors import BODY_ERRORS, responses
from api.schemas import MAX_BULK_ITEMS, BulkDecisionBody, BulkDecisionResult

router = APIRouter(prefix="/v1/decisions", tags=["requests"])


@router.post(
    "/bulk",
    response_model=BulkDecisionResult,
    summary="Decide many requests at once",
    description=(
        f"Approve or reject up to {MAX_BULK_ITEMS} requests with one comment. Each item is "
        "its own decision, checked as the single-item route checks it, plus: refused "
        "`version_conflict` (409) when the request changed since the caller saw "
        "`version_seen`, `bulk_not_allowed` (403) when its current stage's policy forbids "
        "bulk decisions (`bulk: {allowed: false}`, or above its `max_amount`). 200 whenever "
        "the call itself is valid, even if some items were refused: `items` lists each "
        "outcome in input order (`done` with the new status and version, or `refused` with "
        "the error the single-item route would have answered), `summary` counts them. With "
        "an `Idempotency-Key`, each item gets a key of its own derived from it and the "
        "request, so the same call again decides nothing twice. 422 for more than "
        f"{MAX_BULK_ITEMS} items, none, or a request named twice; `return` is not offered "
        "in bulk."
    ),
    responses=responses(401, *BODY_ERRORS),
)
async def decide_in_bulk(
    body: BulkDecisionBody,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    idempotency_key: IdempotencyKey = None,
) -> BulkDecisionResult:
    bulk.check_items(body)
    # The caller was authenticated in this session; each item uses a session of its own.
    await session.commit()
    return await bulk.decide_all(services, user.id, viewer_of(user), body, idempotency_key)
