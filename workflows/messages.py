"""How messages reach the process and how its refusals go back, in Temporal's terms."""

from __future__ import annotations

from typing import TypeVar

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.core.inputs import DirectoryChanged, Handle, Message, Unreadable
    from domain.errors import DomainError, unreadable_problems
    from domain.process import AppliedUpdate, DirectoryChangedInput

_M = TypeVar("_M", bound=Message | DirectoryChangedInput)


def read_signal(
    raw: RawValue, kind: type[_M], signal: str
) -> Handle | DirectoryChanged | Unreadable:
    """The signal as an input to the process; one that cannot be read says what was
    wrong with it (the SDK would drop it silently)."""
    try:
        message = workflow.payload_converter().from_payload(raw.payload, kind)
    except Exception as exc:  # whatever the sender's bytes cause, it is the sender's
        return Unreadable(signal, unreadable_problems(exc))
    if isinstance(message, DirectoryChangedInput):
        return DirectoryChanged(message)
    return Handle(message, from_signal=True)


def refusal(err: DomainError) -> ApplicationError:
    """A business refusal as Temporal carries it: the API maps its type to a status."""
    return ApplicationError(err.message, err.details or {}, type=err.code.value, non_retryable=True)


def earlier_refusal(earlier: AppliedUpdate) -> ApplicationError:
    """The refusal an update id got the first time it was handled."""
    return ApplicationError(earlier.message or "", {}, type=earlier.code, non_retryable=True)


def update_id() -> str | None:
    """The id of the update being handled (None inside a signal or the main loop)."""
    info = workflow.current_update_info()
    return info.id if info is not None else None


__all__ = ["earlier_refusal", "read_signal", "refusal", "update_id"]
