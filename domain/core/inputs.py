"""What the process is told: messages, deadlines, hints, and what became of its writes.

Every input goes through one entry, :func:`domain.core.machine.transition`. The
results of effects a step is waiting for are inputs too (sent into the step);
what the shell learns outside a step (a write that failed, then succeeded) comes
in as :class:`WriteFailed` and :class:`WriteSucceeded`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.process import (
    AddApproversInput,
    CcInput,
    CommentInput,
    DecideInput,
    DirectoryChangedInput,
    MilestoneInput,
    ReassignInput,
    ResubmitInput,
    RevokeInput,
    SendBackInput,
    TransferInput,
    UrgeInput,
    WithdrawInput,
)

from .deadlines import DeadlineKind

Message = (
    DecideInput
    | ResubmitInput
    | WithdrawInput
    | TransferInput
    | MilestoneInput
    | SendBackInput
    | AddApproversInput
    | CcInput
    | RevokeInput
    | UrgeInput
    | ReassignInput
    | CommentInput
)


@dataclass(frozen=True)
class Submit:
    """The request arrives (the first run only)."""


@dataclass(frozen=True)
class Handle:
    """A message, sent as an update (``update_id`` set) or as a signal."""

    message: Message
    from_signal: bool
    update_id: str | None = None


@dataclass(frozen=True)
class DirectoryChanged:
    """Someone may have left the directory (a hint: it proves nothing)."""

    hint: DirectoryChangedInput


@dataclass(frozen=True)
class Unreadable:
    """A signal whose payload could not be read."""

    signal: str
    problem: str


@dataclass(frozen=True)
class DeadlineReached:
    """The deadline :func:`~domain.core.deadlines.next_deadline` named has come."""

    kind: DeadlineKind


@dataclass(frozen=True)
class WriteFailed:
    """Transitions could not be written after ``attempts`` attempts; retried later."""

    reason: str
    at: datetime
    attempts: int


@dataclass(frozen=True)
class WriteSucceeded:
    """Transitions were written (after failures, or not)."""


Input = (
    Submit | Handle | DirectoryChanged | Unreadable | DeadlineReached | WriteFailed | WriteSucceeded
)

__all__ = [
    "DeadlineReached",
    "DirectoryChanged",
    "Handle",
    "Input",
    "Message",
    "Submit",
    "Unreadable",
    "WriteFailed",
    "WriteSucceeded",
]
