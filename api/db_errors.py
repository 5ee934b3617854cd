"""503, never 500, when the database cannot serve a request right now.

Two situations are temporary and worth a retry: the pool has no free
connection within its timeout (``sqlalchemy.exc.TimeoutError``), and the
database is down or unreachable (a refused or dropped connection, a server
that is starting or full). Both are answered with the one error format,
``503 unavailable`` and ``Retry-After``. Every other database error stays a 500.
"""

from __future__ import annotations

import logging
import socket

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc

from api.errors import ApiError, error_json, unavailable

log = logging.getLogger("approvals.api")

POOL_EXHAUSTED = "the database is busy (no free connection in time); please retry"
DATABASE_DOWN = "the database is not available; nothing was changed, please retry"

# Raised unwrapped by asyncpg while connecting: the server is not there (yet).
_CONNECT_FAILURES: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset, aborted
    socket.gaierror,  # the host name does not resolve
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)


def database_error(exc: BaseException) -> ApiError | None:
    """The 503 for a temporary database failure; None for any other error."""
    if isinstance(exc, sa_exc.TimeoutError):
        return unavailable(POOL_EXHAUSTED)
    if isinstance(exc, sa_exc.DBAPIError) and (
        exc.connection_invalidated
        or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
    ):
        return unavailable(DATABASE_DOWN)
    if isinstance(exc, _CONNECT_FAILURES):
        return unavailable(DATABASE_DOWN)
    return None


def install(app: FastAPI) -> None:
    """Answer temporary database failures with 503 + Retry-After."""

    async def on_database_error(_: Request, exc: Exception) -> JSONResponse:
        error = database_error(exc)
        if error is None:
            log.exception("unhandled database error", exc_info=exc)
            return error_json(ApiError(500, "internal_error", "internal error"))
        log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
        return error_json(error)

    for cls in (sa_exc.TimeoutError, sa_exc.DBAPIError, *_CONNECT_FAILURES):
        app.add_exception_handler(cls, on_database_error)
