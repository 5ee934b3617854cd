"""What every channel sends and how a channel says it could not."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class Audience(StrEnum):
    """Who can read what a channel sends: each channel declares its own.

    Only a message that reaches one person alone may carry that person's decision
    links (bearer credentials: whoever holds one decides as that person).
    """

    PERSON = "person"
    """The recipient's own mailbox: nobody else reads it."""
    GROUP = "group"
    """A group chat (the robots) or another system (webhook subscribers): others read it."""


class Rendered(BaseModel):
    """One notice rendered for one person, in every form the channels need."""

    kind: str
    locale: str
    subject: str
    text: str
    """Plain text (e-mail's text part)."""
    html: str
    """HTML (e-mail's HTML part); everything inserted into it is escaped."""
    markdown: str
    """Markdown for the group robots."""
    link: str
    """The request page, where the reader signs in as themselves."""
    audience: Audience = Audience.GROUP
    """Whom it was rendered for: only a :attr:`Audience.PERSON` message has ``actions``."""
    actions: dict[str, str] | None = None
    """The recipient's own decision links (never in a :attr:`Audience.GROUP` message)."""
    facts: dict[str, Any] = Field(default_factory=dict)
    """The values the templates were given (for webhook events)."""


class SendError(Exception):
    """A send that did not go through.

    ``permanent`` failures (an address refused with 5xx, a template that cannot
    render, a robot that rejects the message) are not retried; the others (a
    receiver down, a timeout, 5xx from a web server) are retried with backoff.
    """

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


def check_shareable(rendered: Rendered, channel: str) -> None:
    """Refuse to send ``rendered`` where others read it if it was made for one person.

    Raises:
        SendError: permanent; the message holds (or was rendered to hold) the
            recipient's decision links.
    """
    if rendered.audience is not Audience.GROUP or rendered.actions:
        raise SendError(
            f"{channel}: a message made for one person (with their decision links) "
            "is never sent where others read it",
            permanent=True,
        )
