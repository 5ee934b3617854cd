"""One error format for every failure: ``{"error": {"code", "message", "details"}}``.

Business refusals arrive as :class:`domain.errors.DomainError` and keep their
code; HTTP-level problems (unknown route, body too large, bad JSON) get a code
of their own. Request validation names every field that is wrong.

A request body goes through three gates, each with one status:

* 415 ``unsupported_media_type``: a body without ``Content-Type: application/json``
  (or ``+json``); it is never parsed, so it is not guessed at either.
* 400 ``malformed_json``: the body cannot be read as JSON at all: not UTF-8, not
  JSON syntax, or nested too deeply. Nothing about its fields can be said.
* 422 ``validation_error``: well-formed JSON that is not what the route takes
  (not an object, a missing or unknown field, a wrong value); each field is named.

A body over 1 MiB is 413 ``payload_too_large`` before any of these.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.errors import HTTP_STATUS, DomainError, ErrorCode

log = logging.getLogger("approvals.api")

RETRY_AFTER_SECONDS = 5

# HTTP-level codes with no business meaning, beside domain.errors.ErrorCode.
_HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    401: ErrorCode.UNAUTHENTICATED.value,
    403: ErrorCode.FORBIDDEN.value,
    404: ErrorCode.NOT_FOUND.value,
    405: "method_not_allowed",
    409: ErrorCode.CONFLICT.value,
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: ErrorCode.VALIDATION.value,
    429: ErrorCode.TOO_SOON.value,
    503: ErrorCode.UNAVAILABLE.value,
}


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the field, e.g. `amount` or `fields.units`.")
    message: str


class ErrorBody(BaseModel):
    code: str = Field(
        description="Machine-readable: a `domain.errors.ErrorCode` value or an "
        "HTTP-level code such as `payload_too_large`."
    )
    message: str = Field(description="For people.")
    details: dict[str, Any] = Field(
        default_factory=dict,
        description="Validation errors carry `fields: [{field, message}]`; rule violations "
        "carry `rule` and `because`.",
    )


class ErrorResponse(BaseModel):
    error: ErrorBody


class ApiError(Exception):
    """An error answer with its status, code, message, details and headers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = dict(details or {})
        self.headers = dict(headers or {})

    @classmethod
    def from_domain(cls, err: DomainError) -> ApiError:
        return cls(
            HTTP_STATUS[err.code],
            err.code.value,
            err.message,
            err.details,
            headers_for(err.code, err.details),
        )


def headers_for(code: ErrorCode, details: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The headers an error of ``code`` carries (``Retry-After`` for 503 and 429)."""
    if code is ErrorCode.UNAUTHENTICATED:
        return {"WWW-Authenticate": "Bearer"}
    if code is ErrorCode.UNAVAILABLE:
        return {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if code is ErrorCode.TOO_SOON:
        wait = (details or {}).get("retry_after")
        seconds = wait if isinstance(wait, int) and wait > 0 else RETRY_AFTER_SECONDS
        return {"Retry-After": str(seconds)}
    return {}


def unauthenticated(message: str) -> ApiError:
    return ApiError(
        401, ErrorCode.UNAUTHENTICATED.value, message, headers={"WWW-Authenticate": "Bearer"}
    )


def unavailable(message: str, details: Mapping[str, Any] | None = None) -> ApiError:
    """503 with Retry-After: a temporary condition; the client should try again."""
    return ApiError(
        503,
        ErrorCode.UNAVAILABLE.value,
        message,
        details,
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def not_found(what: str = "request") -> ApiError:
    return ApiError(404, ErrorCode.NOT_FOUND.value, f"{what} not found")


def field_errors(problems: Sequence[tuple[str, str]], message: str | None = None) -> ApiError:
    """A 422 naming each field: ``[(field, message), ...]``."""
    text = message or "; ".join(f"{f} {m}" for f, m in problems)
    return ApiError(
        422,
        ErrorCode.VALIDATION.value,
        text,
        {"fields": [{"field": f, "message": m} for f, m in problems]},
    )


def error_json(err: ApiError) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(code=err.code, message=err.message, details=err.details))
    return JSONResponse(body.model_dump(mode="json"), status_code=err.status, headers=err.headers)


def _field_name(loc: Sequence[int | str]) -> str:
    # ("body", "fields", "units") -> "fields.units"; ("query", "limit") -> "limit"
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:] or parts
    return ".".join(parts)


def malformed_json(reason: str) -> ApiError:
    """400: the body is not JSON at all (see the module docstring for 400 vs 422)."""
    return ApiError(
        400,
        "malformed_json",
        f"the request body is not valid JSON ({reason})",
        {"fields": [{"field": "body", "message": "is not valid JSON"}]},
    )


def unsupported_media_type() -> ApiError:
    return ApiError(
        415,
        "unsupported_media_type",
        "the request body must be JSON sent with Content-Type: application/json",
        {"fields": [{"field": "body", "message": "must be sent as application/json"}]},
    )


def validation_error(exc: RequestValidationError) -> ApiError:
    errors = list(exc.errors())
    bad_json = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if bad_json is not None:
        return malformed_json(str((bad_json.get("ctx") or {}).get("error", "")) or "syntax")
    # FastAPI hands the route the raw bytes only when the Content-Type is not JSON.
    if any(
        _field_name(e.get("loc", ())) == "body" and isinstance(e.get("input"), bytes | bytearray)
        for e in errors
    ):
        return unsupported_media_type()
    problems = []
    for e in errors:
        field = _field_name(e.get("loc", ()))
        msg = "is not allowed here" if e.get("type") == "extra_forbidden" else str(e.get("msg"))
        problems.append((field, msg))
    return field_errors(problems, "invalid request: " + "; ".join(f"{f}: {m}" for f, m in problems))


_FASTAPI_BODY_PARSE_ERROR = "There was an error parsing the body"

_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def _allowed_methods(request: Request) -> str | None:
    """Every documented method of the request's path, for a 405's ``Allow``.

    Starlette names only the methods of the first route whose path matched, but
    one path often has a route per method (``GET`` and ``POST /v1/requests``).
    The OpenAPI document lists them all; None for a path it does not describe.
    """
    app: FastAPI = request.app
    path = request.url.path
    for template, item in app.openapi()["paths"].items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            methods = {m.upper() for m in item if m in _HTTP_METHODS}
            if "GET" in methods:
                methods.add("HEAD")
            return ", ".join(sorted(methods))
    return None


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into the one error format."""

    async def on_api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_json(exc)

    async def on_domain_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        return error_json(ApiError.from_domain(exc))

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_json(validation_error(exc))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = str(exc.detail) if exc.detail else "error"
        headers = exc.headers
        allowed = _allowed_methods(request) if exc.status_code == 405 else None
        if allowed:
            headers = {**(headers or {}), "Allow": allowed}
        if exc.status_code == 404 and message == "Not Found":
            message = "no such resource"
        if exc.status_code == 413:
            message = "the request body is too large"
        if exc.status_code == 400 and exc.detail == _FASTAPI_BODY_PARSE_ERROR:
            # FastAPI's answer when reading the body as JSON fails other than by
            # syntax: bytes that are not UTF-8, or nesting too deep to parse.
            reason = (
                "it is not UTF-8 text"
                if isinstance(exc.__cause__, UnicodeDecodeError)
                else "it cannot be parsed"
            )
            return error_json(malformed_json(reason))
        return error_json(ApiError(exc.status_code, code, message, headers=headers))

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_json(ApiError(500, "internal_error", "internal error"))

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


_DESCRIPTIONS = {
    400: "The body is not JSON at all: not UTF-8, not JSON syntax (`malformed_json`).",
    401: "Missing, invalid or expired bearer token, or an unknown user.",
    403: "Not allowed to do this.",
    404: "Not found, or not visible to the caller.",
    409: "Conflicts with the request's state, or reuses an Idempotency-Key of yours for "
    "another body or action.",
    413: "The request body is larger than 1 MiB, the request's data is over its payload "
    "budget (256 KiB) or Temporal's limit; retrying will not help.",
    415: "A body sent without `Content-Type: application/json`.",
    422: "Invalid input; `details.fields` names each field, `details.rule` a broken rule.",
    429: "Too soon: done too recently (an urge within its interval); `details.next_allowed_at` "
    "says when it is allowed again, `Retry-After` in how many seconds.",
    503: "Temporal, a worker or the database is not answering, or no database connection "
    "is free; nothing was lost. Retry after `Retry-After`.",
}


BODY_ERRORS = (400, 413, 415, 422)
"""What a route with a JSON body may answer before its handler runs."""


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for the error statuses a route may answer."""
    return {s: {"model": ErrorResponse, "description": _DESCRIPTIONS[s]} for s in statuses}
