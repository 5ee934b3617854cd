"""Business refusals, shared by workflow validators and the API.

A refusal carries a machine-readable code; the API maps each code to an HTTP
status. Inside the workflow they travel as ``ApplicationError(type=code)``.
"""

import re
from enum import StrEnum

from pydantic import ValidationError


class ErrorCode(StrEnum):
    VALIDATION = "validation_error"
    RULE_VIOLATION = "rule_violation"
    NOT_ELIGIBLE = "not_eligible"
    ALREADY_DECIDED = "already_decided"
    INVALID_STATE = "invalid_state"
    NOT_FOUND = "not_found"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    CONFLICT = "conflict"
    UNAVAILABLE = "unavailable"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    ROUND_ENDED = "round_ended"
    """A decision made for a round of a step that has ended (returned and resubmitted,
    transferred, reassigned): it would act on terms its maker never saw."""
    NO_APPROVER = "no_approver"
    """A step of the route names nobody and the policy refuses such a submission
    (``resolution.empty_slot: refuse``)."""
    TOO_SOON = "too_soon"
    """Allowed, but not yet: the caller did it too recently (an urge within the policy's
    interval); ``details.next_allowed_at`` says when, ``details.retry_after`` in seconds."""
    VERSION_CONFLICT = "version_conflict"
    """A decision made on a version of the request that is no longer its version: it
    changed since the decider saw it (``version_seen``), so it is not decided blind."""
    BULK_NOT_ALLOWED = "bulk_not_allowed"
    """A bulk decision of a step whose stage the policy says is decided one by one."""


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.VALIDATION: 422,
    ErrorCode.RULE_VIOLATION: 422,
    ErrorCode.NOT_ELIGIBLE: 403,
    ErrorCode.ALREADY_DECIDED: 409,
    ErrorCode.INVALID_STATE: 409,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.CONFLICT: 409,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.ROUND_ENDED: 409,
    ErrorCode.NO_APPROVER: 422,
    ErrorCode.TOO_SOON: 429,
    ErrorCode.VERSION_CONFLICT: 409,
    ErrorCode.BULK_NOT_ALLOWED: 403,
}


class DomainError(Exception):
    """A refusal with a code, a message for people and optional details."""

    def __init__(self, code: ErrorCode, message: str, details: dict[str, object] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}


def field_problems(exc: ValidationError) -> str:
    """Each problem of ``exc`` as ``path.to.field: message``, joined by ``; ``.

    How the loaders of files people write (policies, the org, the calendar
    overrides) name what is wrong, after the file's own name.
    """
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()
    )


_SAFE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")
MAX_UNREADABLE_PROBLEM = 300


def unreadable_problems(exc: Exception) -> str:
    """What was wrong with a payload nobody may be trusted for, in words safe to store.

    Like :func:`field_problems`, but from the sender's payload: no input value and no
    message text (a validator's message may quote the input) is repeated, only the
    field names that are plain identifiers and pydantic's error types, so whatever
    was sent, the result is short printable ASCII.
    """
    if not isinstance(exc, ValidationError):
        return f"the payload could not be decoded ({type(exc).__name__})"[:MAX_UNREADABLE_PROBLEM]

    def part(p: object) -> str:
        if isinstance(p, int):
            return str(p)
        return p if isinstance(p, str) and _SAFE_NAME.fullmatch(p) else "?"

    problems = "; ".join(
        f"{'.'.join(part(p) for p in err['loc']) or '(top)'}: {err['type']}"
        for err in exc.errors(include_url=False, include_input=False)
    )
    return problems[:MAX_UNREADABLE_PROBLEM]
