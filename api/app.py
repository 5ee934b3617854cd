"""The FastAPI application: routers, error format, body limit, and the lifespan.

``create_app`` builds nothing that talks to the outside: the lifespan builds the
engine, the session factory, the Temporal client (lazily, so the API starts
while Temporal is down) and loads the policies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import codec, db_errors, docs_ui, errors
from api.deps import Services
from api.metrics import HttpMetrics, metrics_endpoint
from api.oidc import oidc_verifier
from api.request_ids import RequestIds
from api.routers import (
    attachments,
    decisions,
    delegations,
    deliveries,
    health,
    inbox,
    me,
    notifications,
    policies,
    reports,
    requests,
)
from api.routers.attachments import MULTIPART_OVERHEAD
from api.temporal_gateway import TemporalGateway
from api.web import links as web_links
from api.web import outbox as outbox_web
from api.web import reports as reports_web
from api.web import router as web_router
from api.web import signin as web_signin
from common.business_calendar import load_business_calendar
from common.policy_store import load_policies
from common.settings import Settings, get_settings
from db.engine import make_engine, make_sessionmaker

MAX_BODY_BYTES = 1024 * 1024

DESCRIPTION = """\
Durable commercial approval workflows. Each request is one Temporal workflow that
walks it through the approval stages of its policy.

Authenticate with `Authorization: Bearer <token>` (`approvals token USER_ID`).
Errors are always `{"error": {"code", "message", "details"}}`; validation errors
name each field in `details.fields`. Money is a decimal string or number.

Inbound values: text never contains control characters (comments may contain
tab and newline) and is trimmed; ids (users, request types, milestones) match
`^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$`; numbers are plain ASCII decimals such as
`1234.50` (no exponent, spaces or separators) or JSON numbers whose plain form
fits. A request body may be at most 1 MiB, and a request (or a resubmission) at
most 256 KiB once serialized for its workflow: more is 413.
"""


class _BodyTooLarge(HTTPException):
    """Raised while the body streams in; FastAPI re-raises HTTP exceptions as they are."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail="the request body is too large")


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, declared or streamed."""

    def __init__(
        self, app: ASGIApp, limit: int = MAX_BODY_BYTES, larger: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.limit = limit
        self.larger = larger or {}
        """Paths with a limit of their own (uploads)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope.get("path", ""), self.limit)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = errors.error_json(
            errors.ApiError(
                413,
                "payload_too_large",
                f"the request body is larger than {limit} bytes",
                {"limit_bytes": limit},
            )
        )
        await response(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API application for ``settings`` (default: from the environment)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded = load_policies(settings.policy_dir)
        calendar = load_business_calendar(settings, datetime.now(UTC).date())
        engine = make_engine(
            settings.require_database_url(),
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_seconds,
        )
        temporal = TemporalGateway(settings)
        await temporal.start()
        oidc = oidc_verifier(settings)
        app.state.services = Services(
            settings=settings,
            engine=engine,
            sessions=make_sessionmaker(engine),
            temporal=temporal,
            policies=loaded,
            calendar=calendar,
            oidc=oidc,
        )
        try:
            yield
        finally:
            if oidc is not None:
                await oidc.aclose()
            await engine.dispose()

    app = FastAPI(
        title="Approvals API",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        # /docs is served from the package's assets, not a CDN (api/docs_ui.py); no ReDoc.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    docs_ui.install(app)
    errors.install(app)
    db_errors.install(app)
    routers = (requests, inbox, notifications, me, policies, health, deliveries)
    for module in (*routers, decisions, delegations, attachments, reports):
        app.include_router(module.router)
    app.include_router(web_router.router)
    app.include_router(web_links.router)
    app.include_router(outbox_web.router)
    app.include_router(web_signin.router)
    app.include_router(codec.router)
    app.add_middleware(codec.CodecCors, origins=settings.codec_cors_origins)
    app.include_router(reports_web.router)
    app.add_middleware(
        BodyLimit,
        limit=MAX_BODY_BYTES,
        # Uploads have their own limit (the upload itself answers 413 naming it).
        larger={"/v1/attachments": settings.attachment_max_bytes + MULTIPART_OVERHEAD},
    )
    if settings.api_metrics:
        # Outermost, so that what BodyLimit refuses is counted too; no token (Prometheus
        # scrapes it) and not in the OpenAPI schema: it is for operators, not clients.
        app.add_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
        app.add_middleware(HttpMetrics)
    app.add_middleware(RequestIds)  # outermost: every answer and log line carries the id
    return app
