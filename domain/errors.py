"""Business refusals, shared by workflow validators and the API.

A refusal carries a machine-readable code; the API maps each code to an HTTP
status. Inside the workflow they travel as ``ApplicationError(type=code)``.
"""

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
