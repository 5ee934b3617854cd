"""``/v1/admin/deliveries``: what was sent where, what failed and why; retry a failure.

For administrators only: a delivery names people's addresses and the request.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from api.deps import CurrentUser, SessionDep
from api.errors import ApiError, not_found, responses
from db.deliveries import list_deliveries, retry_delivery
from db.directory import DirectoryUser
from db.models import DeliveryRow, NotificationRow
from domain.delivery import Channel, DeliveryStatus
from domain.errors import ErrorCode

router = APIRouter(prefix="/v1/admin/deliveries", tags=["admin"])

MAX_ID = 2**63 - 1
DeliveryId = Annotated[int, Path(ge=1, le=MAX_ID, description="The delivery's id.")]


class Delivery(BaseModel):
    """One notice on one outside channel."""

    id: int
    notification_id: int
    request_id: str | None
    recipient: str
    kind: str = Field(description="The notice kind (`assigned`, `reminder`, ...).")
    channel: Channel
    target: str = Field(description="The address, webhook subscriber or robot.")
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    sent_at: datetime | None
    created_at: datetime
    dedupe_id: str = Field(description="Sent to the receiver (Message-ID, `webhook-id`).")


class DeliveryPage(BaseModel):
    items: list[Delivery]
    next_before: int | None = Field(description="Pass as `before` for the next (older) page.")


def _out(d: DeliveryRow, n: NotificationRow) -> Delivery:
    return Delivery(
        id=d.id,
        notification_id=n.id,
        request_id=n.request_id,
        recipient=n.recipient,
        kind=n.template,
        channel=d.channel,
        target=d.target,
        status=d.status,
        attempts=d.attempts,
        last_error=d.last_error,
        next_attempt_at=d.next_attempt_at,
        sent_at=d.sent_at,
        created_at=d.created_at,
        dedupe_id=d.dedupe_id,
    )


def _require_admin(user: DirectoryUser) -> None:
    if not user.is_admin:
        raise ApiError(403, ErrorCode.FORBIDDEN.value, "only administrators see deliveries")


@router.get(
    "",
    response_model=DeliveryPage,
    summary="Deliveries, newest first",
    description="Filter with `status` (e.g. `failed`); page with `before`.",
    responses=responses(401, 403, 422),
)
async def deliveries(
    user: CurrentUser,
    session: SessionDep,
    status: DeliveryStatus | None = None,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DeliveryPage:
    _require_admin(user)
    rows = await list_deliveries(session, status.value if status else None, limit + 1, before)
    more = len(rows) > limit
    rows = rows[:limit]
    return DeliveryPage(
        items=[_out(d, n) for d, n in rows], next_before=rows[-1][0].id if more else None
    )


@router.post(
    "/{delivery_id}/retry",
    response_model=Delivery,
    summary="Send a failed or skipped delivery again",
    description=(
        "Makes it due now with a fresh count of attempts and wakes the deliverer, which "
        "sends it within seconds with the same dedupe id. A sent delivery is refused with "
        "409: it would arrive twice. A pending one is left as it is."
    ),
    responses=responses(401, 403, 404, 409, 422),
)
async def retry(user: CurrentUser, session: SessionDep, delivery_id: DeliveryId) -> Delivery:
    _require_admin(user)
    row = await retry_delivery(session, delivery_id, datetime.now(UTC))
    if row is None:
        raise not_found("delivery")
    if row.status == "sent":
        raise ApiError(409, ErrorCode.CONFLICT.value, "this delivery was sent; it is not resent")
    await session.flush()
    notice = await session.get(NotificationRow, row.notification_id)
    assert notice is not None
    return _out(row, notice)
