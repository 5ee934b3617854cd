"""Names and message types of the delivery pipeline (notices to the outside).

The dispatcher workflow and its activities exchange these; the workflow imports
them through the sandbox, so this module holds only pydantic models and names.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from pydantic import BaseModel, Field

if TYPE_CHECKING:  # the rule below takes a calendar; the workflow never imports one
    from domain.working_time import BusinessCalendar

DELIVERY_WORKFLOW_NAME: Final = "DeliverNotices"
DELIVERY_SCHEDULE_ID: Final = "approvals-deliver-notices"
"""The Temporal Schedule that starts :data:`DELIVERY_WORKFLOW_NAME` every few seconds."""


class DeliveryActivityNames:
    PLAN_AND_CLAIM: Final = "plan_and_claim_deliveries"
    DELIVER: Final = "deliver_notice"
    """One delivery per activity: passes started before ``deliver-batches`` still call it."""
    DELIVER_BATCH: Final = "deliver_notices_batch"


DEFAULT_CONCURRENCY: Final = 8
RECORD_SECONDS: Final = 5.0
"""Allowance for recording one outcome on its row (a short transaction)."""


def send_limit(timeout_seconds: float) -> float:
    """The hard bound on one send, in seconds: twice the channel's own limit, plus 5 s.

    The channel's client enforces its own limit; this outer bound ends a send that
    hangs past it anyway (a receiver trickling bytes)."""
    return timeout_seconds * 2 + 5


def batch_time_limit(count: int, concurrency: int, timeout_seconds: float) -> timedelta:
    """The longest a batch of ``count`` sends of one channel may take.

    At most ``concurrency`` sends run at once and each ends within
    :func:`send_limit`, so the batch ends within ``ceil(count / concurrency)`` such
    rounds, each with its recording, plus time to load the jobs."""
    rounds = -(-max(count, 1) // max(concurrency, 1))
    return timedelta(seconds=rounds * (send_limit(timeout_seconds) + RECORD_SECONDS) + 20)


def batch_heartbeat_timeout(timeout_seconds: float) -> timedelta:
    """A batch heartbeats after each recorded send: the longest gap is one send and its
    recording. Past this, Temporal treats the worker as gone and retries the batch."""
    return timedelta(seconds=send_limit(timeout_seconds) + RECORD_SECONDS + 25)


class Channel(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"
    DINGTALK = "dingtalk"
    WECOM = "wecom"
    FEISHU = "feishu"


CHANNELS: Final[tuple[str, ...]] = tuple(c.value for c in Channel)
PERSONAL_CHANNELS: Final[tuple[str, ...]] = ("email", "dingtalk", "wecom", "feishu")
"""Channels a user may choose; webhooks go to subscribers, whoever the recipient."""


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its (next) attempt
    SENT = "sent"
    FAILED = "failed"  # gave up after the channel's attempts
    SKIPPED = "skipped"  # the recipient cannot be reached on this channel


HELD_KINDS: Final = frozenset(
    {
        "reminder",
        "escalated",
        "overdue",
        "expired",
        "milestone_reminder",
        "lapsed",
        "watch_notice",
    }
)
"""Reminders and urgent notices: the ones a deadline firing sends. A deadline in calendar
time (or an escalation up a chain) may fire at night; these wait for the next working
hour unless the request type's policy says ``notices: {hold_to_working_hours: false}``."""
HELD_CHANNELS: Final = frozenset({"email", "dingtalk", "wecom", "feishu"})
"""Channels that reach people (a mailbox, a group chat). Webhooks go to systems, which
take their events at any hour; the in-app notice is there at once on every channel."""


def deliver_not_before(
    kind: str,
    channel: str,
    planned_at: datetime,
    calendar: BusinessCalendar | None,
    hold: bool = True,
) -> datetime:
    """The first instant a delivery of a ``kind`` notice on ``channel`` may be sent.

    ``planned_at`` itself, unless the notice is a reminder or urgent notice
    (:data:`HELD_KINDS`) to people (:data:`HELD_CHANNELS`), its policy holds notices
    (``hold``) and a business calendar is given: then the next working instant on it
    (``planned_at`` itself inside working hours). Never earlier than ``planned_at``.
    """
    if calendar is None or not hold or kind not in HELD_KINDS or channel not in HELD_CHANNELS:
        return planned_at
    return max(planned_at, calendar.next_working_instant(planned_at))


class DeliverNoticesInput(BaseModel):
    batch: int = Field(default=50, ge=1, le=500)
    """Due deliveries of each channel one pass claims; more wait for the next pass."""


class Claimed(BaseModel):
    delivery_id: int
    channel: str
    timeout_seconds: float
    """The channel's own time limit for one send; the activity's timeout follows it."""
    leased_until: datetime | None = None
    """The claim's lease (the row's ``next_attempt_at`` as the claim set it): a row whose
    time has moved since was recorded already, or claimed again by a later pass."""


class ClaimedBatch(BaseModel):
    planned: int = 0
    """Notices fanned out to their deliveries in this pass."""
    claimed: list[Claimed] = Field(default_factory=list)
    concurrency: int = DEFAULT_CONCURRENCY
    """Sends of one channel's batch under way at once (the batch's timeout follows it)."""


class DeliverInput(BaseModel):
    delivery_id: int


class DeliverOutcome(BaseModel):
    delivery_id: int
    status: str
    """What the row says after this attempt: pending (will retry), sent, failed, skipped;
    ``error`` when a batch could not record it (its lease runs out, a later pass retries)."""
    error: str | None = None


class DeliverBatchInput(BaseModel):
    """The claimed deliveries of one channel, sent by one activity."""

    channel: str
    delivery_ids: list[int]
    timeout_seconds: float
    leased_until: datetime | None = None
    """As :attr:`Claimed.leased_until`: the same for every row of one channel's claim."""


class DeliverBatchOutput(BaseModel):
    outcomes: list[DeliverOutcome] = Field(default_factory=list)
    """One per delivery, in the order of the input."""


class DeliverNoticesOutput(BaseModel):
    planned: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    errored: int = 0
    """Deliveries whose activity itself failed, or whose outcome a batch could not record
    (database down); their lease runs out and a later pass takes them again."""
