"""Planning a notice's deliveries: which channels and targets, or why none.

Pure: given the notice, the recipient as the directory knows them, their
channels and what is configured, the rows to write. A recipient who cannot be
reached on a channel (no e-mail address, the robot not configured, unknown or
inactive) gets a ``skipped`` row with the reason, so an admin sees why.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta

from domain.working_time import BusinessCalendar
from notify.preferences import channels_for
from notify.webhooks import Subscriber


@dataclass(frozen=True)
class Recipient:
    id: str
    email: str | None
    active: bool


@dataclass(frozen=True)
class Planned:
    channel: str
    target: str
    status: str = "pending"
    reason: str | None = None


def dedupe_id(notice_key: str, channel: str, target: str) -> str:
    """Stable per (notice, channel, target): the receiver's idempotency key."""
    digest = hashlib.sha256(f"{notice_key}\x1f{channel}\x1f{target}".encode()).hexdigest()
    return f"ntf-{digest[:40]}"


def plan(
    kind: str,
    recipient: Recipient | None,
    channels: list[str] | tuple[str, ...],
    subscribers: list[Subscriber],
    robots: set[str],
) -> list[Planned]:
    """The deliveries of one notice."""
    planned = [Planned("webhook", s.name) for s in subscribers if s.wants(kind)]
    for channel in channels_for(kind, channels):
        if recipient is None or not recipient.active:
            planned.append(
                Planned(channel, "", "skipped", "recipient is not an active user of the directory")
            )
        elif channel == "email":
            if recipient.email:
                planned.append(Planned("email", recipient.email))
            else:
                planned.append(
                    Planned("email", "", "skipped", f"user {recipient.id} has no e-mail address")
                )
        elif channel in robots:
            planned.append(Planned(channel, channel))
        else:
            planned.append(
                Planned(channel, "", "skipped", f"the {channel} robot is not configured")
            )
    return planned


@dataclass(frozen=True)
class PlanConfig:
    """What planning needs to know besides the notices: who and what is configured."""

    subscribers: list[Subscriber]
    robots: set[str]
    default_channels: tuple[str, ...]
    max_age: timedelta
    """Older notices are marked planned without deliveries (a backlog from before the
    pipeline existed, or from a long outage, is not worth sending late)."""
    calendar: BusinessCalendar | None = None
    """Reminders and urgent notices planned outside working hours on this calendar wait
    for the next working hour (:func:`domain.delivery.deliver_not_before`); None sends
    every delivery at once."""
    send_at_once: frozenset[str] = field(default_factory=frozenset)
    """Request types whose policy says ``notices: {hold_to_working_hours: false}``."""
