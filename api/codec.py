"""``POST /codec/decode`` and ``/codec/encode``: the codec server of the Temporal UI.

The Temporal server holds only ciphertext (common/payload_codec.py). The Temporal UI,
given this endpoint (``--ui-codec-endpoint http://API/codec``, or the UI's "Codec
Server" settings), sends the payloads it shows here and gets them back decrypted, so
that an operator reads a request's input and messages in the UI. Temporal's codec
server protocol: a JSON body ``{"payloads": [Payload as protobuf JSON, ...]}`` in, the
same shape out.

Decrypted payloads hold customers, amounts and comments: only an operator (an
administrator, or a user with the ``operator`` role) gets them. The UI authenticates
with the API's bearer token (the UI's "pass access token" when the UI signs in through
the same identity provider) or with the API's sign-in cookie ("include cross-origin
credentials"); the cookie needs no CSRF token here: nothing changes, and only the UI's
origins (``APPROVALS_CODEC_CORS_ORIGINS``) may read the answer.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.api.common.v1 import Payload, Payloads

from api.deps import SESSION_COOKIE, ServicesDep, SessionDep, bearer, current_user
from api.errors import ApiError, unauthenticated
from common.payload_codec import EncryptionCodec, PayloadDecryptionError
from db.directory import DirectoryUser, get_user
from db.web_sessions import find_session
from domain.errors import ErrorCode

PREFIX = "/codec"
OPERATOR_ROLE = "operator"
ALLOWED_HEADERS = "Authorization, Content-Type, X-Namespace"

router = APIRouter(prefix=PREFIX, tags=["operations"])


async def codec_user(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> DirectoryUser:
    """The caller, by bearer token, else by sign-in cookie (no CSRF token: read-only)."""
    if credentials is None or not credentials.credentials:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            raise unauthenticated(
                "a bearer token or the API's sign-in cookie is required "
                "(Authorization: Bearer <token>)"
            )
        found = await find_session(session, cookie)
        if found is None:
            raise unauthenticated("your sign-in has ended: sign in again")
        user = await get_user(session, found.user_id)
        if user is None or not user.active:
            raise unauthenticated("the session's user is not an active user of the directory")
        return user
    return await current_user(request, services, session, credentials)


def _operator(user: Annotated[DirectoryUser, Depends(codec_user)]) -> DirectoryUser:
    if not (user.is_admin or OPERATOR_ROLE in user.roles):
        raise ApiError(
            403,
            ErrorCode.FORBIDDEN.value,
            "only operators (administrators or the operator role) see decrypted payloads",
        )
    return user


Operator = Annotated[DirectoryUser, Depends(_operator)]


MALFORMED = 'the body must be {"payloads": [...]}, payloads as protobuf JSON'


async def _payloads(request: Request) -> Payloads:
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise ApiError(422, ErrorCode.VALIDATION.value, MALFORMED) from None
    if not isinstance(body, dict) or not isinstance(body.get("payloads"), list):
        raise ApiError(422, ErrorCode.VALIDATION.value, MALFORMED)
    try:
        return json_format.ParseDict(body, Payloads(), ignore_unknown_fields=True)
    except (json_format.ParseError, DecodeError, ValueError, TypeError) as exc:
        raise ApiError(
            422, ErrorCode.VALIDATION.value, MALFORMED, {"reason": str(exc)[:200]}
        ) from None


def _answer(payloads: Payloads) -> JSONResponse:
    return JSONResponse(json_format.MessageToDict(payloads))


def _codec(services: Any) -> EncryptionCodec | None:
    keys = services.settings.payload_keyring
    return EncryptionCodec(keys) if keys is not None else None


Transform = Callable[[EncryptionCodec, Sequence[Payload]], Awaitable[list[Payload]]]


async def _transcode(request: Request, services: Any, transform: Transform) -> JSONResponse:
    """The body's payloads through ``transform`` (the codec's encode or decode); as they
    came when no keys are configured. A payload that does not decrypt is a 422."""
    payloads = await _payloads(request)
    codec = _codec(services)
    if codec is None:
        return _answer(payloads)
    try:
        changed = await transform(codec, payloads.payloads)
    except PayloadDecryptionError as exc:
        raise ApiError(422, ErrorCode.VALIDATION.value, str(exc)) from None
    return _answer(Payloads(payloads=changed))


@router.post(
    "/decode",
    summary="Decrypt payloads for the Temporal UI",
    description="Temporal's codec-server protocol: `{payloads: [...]}` in, decrypted out. "
    "Operators only (administrators or the `operator` role).",
    # For the Temporal UI, not for clients: out of the public schema, like /metrics.
    include_in_schema=False,
)
async def decode(request: Request, services: ServicesDep, _user: Operator) -> JSONResponse:
    return await _transcode(request, services, EncryptionCodec.decode)


@router.post(
    "/encode",
    summary="Encrypt payloads for the Temporal UI",
    description="Temporal's codec-server protocol: `{payloads: [...]}` in, encrypted with "
    "the active key out (what the UI sends, e.g. a signal's input). Operators only.",
    # For the Temporal UI, not for clients: out of the public schema, like /metrics.
    include_in_schema=False,
)
async def encode(request: Request, services: ServicesDep, _user: Operator) -> JSONResponse:
    return await _transcode(request, services, EncryptionCodec.encode)


class CodecCors:
    """CORS for ``/codec/*`` only: the Temporal UI (another origin) calls it from the browser.

    Answers preflights itself and adds the headers to every answer, refusals included,
    so that the UI sees a 401 or 403 and not a network error. Other paths are untouched.
    """

    def __init__(self, app: ASGIApp, origins: str) -> None:
        self.app = app
        self.origins = frozenset(o.strip().rstrip("/") for o in origins.split(",") if o.strip())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        origin = headers.get(b"origin", b"").decode("latin-1")
        allowed = origin in self.origins
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            extra = self._cors(origin) if allowed else []
            extra += [
                (b"access-control-allow-methods", b"POST, OPTIONS"),
                (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
                (b"access-control-max-age", b"600"),
            ] * allowed
            await send(
                {"type": "http.response.start", "status": 204 if allowed else 403, "headers": extra}
            )
            await send({"type": "http.response.body", "body": b""})
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start" and allowed:
                message["headers"] = [*message.get("headers", []), *self._cors(origin)]
            await send(message)

        await self.app(scope, receive, with_cors)

    @staticmethod
    def _cors(origin: str) -> list[tuple[bytes, bytes]]:
        return [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-credentials", b"true"),
            (b"vary", b"Origin"),
        ]
