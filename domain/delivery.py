"""Names and message types of the delivery pipeline (notices to the outside).

The dispatcher workflow and its activities exchange these; the workflow imports
them through the sandbox, so this module holds only pydantic models and names.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, Field

DELIVERY_WORKFLOW_NAME: Final = "DeliverNotices"
DELIVERY_SCHEDULE_ID: Final = "approvals-deliver-notices"
"""The Temporal Schedule that starts :data:`DELIVERY_WORKFLOW_NAME` every few seconds."""


class DeliveryActivityNames:
    PLAN_AND_CLAIM: Final = "plan_and_claim_deliveries"
    DELIVER: Final = "deliver_notice"


Channel = Literal["email", "webhook", "dingtalk", "wecom", "feishu"]
CHANNELS: Final[tuple[str, ...]] = ("email", "webhook", "dingtalk", "wecom", "feishu")
PERSONAL_CHANNELS: Final[tuple[str, ...]] = ("email", "dingtalk", "wecom", "feishu")
"""Channels a user may choose; webhooks go to subscribers, whoever the recipient."""

DeliveryStatus = Literal["pending", "sent", "failed", "skipped"]


class DeliverNoticesInput(BaseModel):
    batch: int = Field(default=50, ge=1, le=500)
    """Due deliveries of each channel one pass claims; more wait for the next pass."""


class Claimed(BaseModel):
    delivery_id: int
    channel: str
    timeout_seconds: float
    """The channel's own time limit for one send; the activity's timeout follows it."""


class ClaimedBatch(BaseModel):
    planned: int = 0
    """Notices fanned out to their deliveries in this pass."""
    claimed: list[Claimed] = Field(default_factory=list)


class DeliverInput(BaseModel):
    delivery_id: int


class DeliverOutcome(BaseModel):
    delivery_id: int
    status: str
    """What the row says after this attempt: pending (will retry), sent, failed, skipped."""
    error: str | None = None


class DeliverNoticesOutput(BaseModel):
    planned: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    errored: int = 0
    """Deliveries whose activity itself failed (database down); their lease runs out and
    a later pass takes them again."""
