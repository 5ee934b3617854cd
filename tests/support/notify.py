"""The pipeline's tests: a migrated database of their own with the demo org, and builders."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.engine import transaction
from db.models import AssignmentRow, NotificationRow, RequestRow, UserPreferenceRow
from domain.policy import Policy
from notify.email import EmailChannel, SmtpConfig
from notify.render import Renderer
from notify.robots import RobotChannel
from notify.setup import Notifier
from notify.webhooks import Subscriber, WebhookChannel


def make_notifier(
    smtp_port: int,
    *,
    subscribers: list[Subscriber] | None = None,
    robots: dict[str, RobotChannel] | None = None,
    max_attempts: int = 6,
    smtp_timeout: float = 3.0,
    webhook_timeout: float = 3.0,
    policies: Mapping[str, Policy] | None = None,
) -> Notifier:
    return Notifier(
        renderer=Renderer("https://approvals.example", policies=policies),
        email=EmailChannel(
            SmtpConfig("127.0.0.1", smtp_port, sender="approvals@corp.test", timeout=smtp_timeout)
        ),
        webhooks=WebhookChannel(subscribers or [], timeout=webhook_timeout),
        robots=robots or {},
        max_attempts=max_attempts,
    )


NoticeMaker = Callable[..., Any]


async def add_request(sessions: async_sessionmaker[AsyncSession], **over: Any) -> str:
    rid = str(uuid.uuid4())
    values: dict[str, Any] = {
        "id": rid,
        "type": "big_customer_contract",
        "title": "Annual supply contract",
        "requester": "am_li",
        "customer": "ACME Ltd",
        "amount": Decimal("250000"),
        "fields": {},
        "policy_type": "big_customer_contract",
        "policy_version": 1,
        "route": {"stages": []},
        "status": "in_review",
        "stage_index": 0,
        "view": {"stages": [{"name": "Big-customer department signs"}]},
        "resolve_due": datetime(2026, 12, 3, 1, 0, tzinfo=UTC),
        **over,
    }
    async with transaction(sessions) as s:
        s.add(RequestRow(**values))
    return rid


async def add_notice(
    sessions: async_sessionmaker[AsyncSession],
    request_id: str,
    recipient: str,
    template: str = "assigned",
    **payload: Any,
) -> int:
    async with transaction(sessions) as s:
        row = NotificationRow(
            request_id=request_id,
            recipient=recipient,
            channel="inbox",
            template=template,
            payload={"request_id": request_id, "title": "Annual supply contract", **payload},
            dedupe_key=f"{request_id}:{uuid.uuid4().hex[:8]}:{template}:{recipient}",
            status="pending",
        )
        s.add(row)
        await s.flush()
        return row.id


async def hold_step(
    sessions: async_sessionmaker[AsyncSession], request_id: str, user_id: str, stage_index: int
) -> datetime:
    """``user_id`` holds a pending step on that stage of the request (as the read-model says);
    returns its round (when they became eligible)."""
    since = datetime.now(UTC)
    async with transaction(sessions) as s:
        s.add(
            AssignmentRow(
                request_id=request_id,
                stage_index=stage_index,
                stage_key="big_customer_dept",
                slot="big_customer_dept",
                user_id=user_id,
                via="role:big_customer_dept",
                eligible_since=since,
                pending=True,
            )
        )
    return since


async def set_preferences(
    sessions: async_sessionmaker[AsyncSession], user_id: str, **values: Any
) -> None:
    async with transaction(sessions) as s:
        await s.merge(
            UserPreferenceRow(user_id=user_id, source="user", user_fields=sorted(values), **values)
        )
