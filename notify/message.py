"""What every channel sends and how a channel says it could not."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


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
    actions: dict[str, str] | None = None
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
