"""Bulk decisions (批量审批): one call, each item its own keyed, checked decision.

Each item goes to its request's workflow as the single-item route sends it (the
``decide`` update), with ``version_seen`` and ``bulk`` set, so the workflow itself
refuses an item whose request changed since the caller saw it or whose stage forbids
bulk decisions: nothing is decided blind, and nothing here can race the workflow.
Items run a few at a time (:data:`CONCURRENCY`), each in a session of its own that is
released before Temporal is called; the answer lists every item's outcome in input
order, with the error the single-item route would have answered for each refusal.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections import Counter

from api import commands
from api.deps import Services
from api.errors import ApiError, ErrorBody, field_errors, not_found
from api.schemas import (
    MAX_BULK_ITEMS,
    BulkDecisionBody,
    BulkDecisionResult,
    BulkItem,
    BulkItemOutcome,
    BulkSummary,
)
from db import request_queries as q
from domain.constants import Updates
from domain.errors import DomainError
from domain.process import DecideInput

log = logging.getLogger("approvals.api")

CONCURRENCY = 8
"""How many items of one call are in flight at once: 100 items finish in about 13
rounds of one decision each, and one call never floods the worker."""


def item_key(idempotency_key: str, request_id: str) -> str:
    """The Idempotency-Key of one item: the call's key and the request, so a retried
    call finds each item's first outcome and decides nothing twice. Hashed: any call key
    fits, and an item's key never equals a key sent to the single-item route."""
    digest = hashlib.sha256(f"{idempotency_key}\n{request_id}".encode()).hexdigest()
    return f"bulk:{digest}"


def check_items(body: BulkDecisionBody) -> None:
    """At most :data:`MAX_BULK_ITEMS` items, each request once.

    Raises:
        ApiError: 422 naming the limit, or the requests named more than once.
    """
    if len(body.items) > MAX_BULK_ITEMS:
        raise field_errors(
            [
                (
                    "items",
                    f"at most {MAX_BULK_ITEMS} items per call; this call has {len(body.items)}",
                )
            ],
            f"a bulk decision takes at most {MAX_BULK_ITEMS} items; this call has "
            f"{len(body.items)}: send the rest in another call",
        )
    twice = sorted(r for r, n in Counter(i.request_id for i in body.items).items() if n > 1)
    if twice:
        raise field_errors(
            [("items", f"each request at most once; named more than once: {', '.join(twice)}")]
        )


async def decide_all(
    services: Services,
    user_id: str,
    viewer: q.Viewer,
    body: BulkDecisionBody,
    idempotency_key: str | None,
) -> BulkDecisionResult:
    """Decide every item (a few at a time) and answer each one's outcome in input order."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(item: BulkItem) -> BulkItemOutcome:
        async with gate:
            return await _decide_one(services, user_id, viewer, body, item, idempotency_key)

    outcomes = await asyncio.gather(*(one(item) for item in body.items))
    done = sum(1 for o in outcomes if o.outcome == "done")
    return BulkDecisionResult(
        items=list(outcomes),
        summary=BulkSummary(total=len(outcomes), done=done, refused=len(outcomes) - done),
    )


async def _decide_one(
    services: Services,
    user_id: str,
    viewer: q.Viewer,
    body: BulkDecisionBody,
    item: BulkItem,
    idempotency_key: str | None,
) -> BulkItemOutcome:
    async with services.sessions() as session:
        try:
            try:
                rid = str(uuid.UUID(item.request_id))
            except ValueError:
                raise not_found() from None
            ref = await q.get_visible_ref(session, rid, viewer)
            await session.commit()
            if ref is None:
                raise not_found()
            payload = DecideInput(
                actor=user_id,
                action=body.action,
                comment=body.comment,
                version_seen=item.version_seen,
                bulk=True,
            )
            key = item_key(idempotency_key, ref.id) if idempotency_key is not None else None
            view = await commands.run_update(
                services, session, ref.id, user_id, Updates.DECIDE, payload, key
            )
        except DomainError as err:
            return _refused(item, ApiError.from_domain(err))
        except ApiError as err:
            return _refused(item, err)
        except Exception:
            # Never hide what the other items did: this item is reported, not the call failed.
            log.exception("bulk decision of request %s failed", item.request_id)
            await session.rollback()
            return _refused(
                item,
                ApiError(500, "internal_error", "this item could not be decided; retry it"),
            )
    return BulkItemOutcome(
        request_id=item.request_id, outcome="done", status=view.status, version=view.version
    )


def _refused(item: BulkItem, err: ApiError) -> BulkItemOutcome:
    return BulkItemOutcome(
        request_id=item.request_id,
        outcome="refused",
        http_status=err.status,
        error=ErrorBody(code=err.code, message=err.message, details=err.details),
    )
