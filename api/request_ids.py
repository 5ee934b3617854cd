"""A request id for every HTTP request, in its response and in every log line it causes.

A valid ``X-Request-ID`` from the caller (a proxy, a client retrying) is kept, anything
else is replaced by a new one (:func:`common.logs.accepted_request_id`); either way the
response carries it back in ``X-Request-ID``. The id and, once authentication knows
it, the caller are bound in :data:`common.logs.request_context` for the whole request,
uvicorn's access log line included (it is written while the response starts, in the
request's task).
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.logs import RequestContext, accepted_request_id, request_context

HEADER = "X-Request-ID"


class RequestIds:
    """Pure ASGI middleware: outermost, so every answer (a 413, a 500) carries the id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = accepted_request_id(Headers(scope=scope).get(HEADER))
        token = request_context.set(RequestContext(request_id))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_context.reset(token)
