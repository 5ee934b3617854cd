"""The API's Temporal client, connected lazily so the API starts without Temporal.

The first connection is tried at start-up; when it fails, the API still serves
(reads come from the database) and every route that needs Temporal tries again,
at most once per back-off interval, answering 503 with Retry-After meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time

from temporalio.client import Client

from api.errors import ApiError, unavailable
from common.settings import Settings
from common.temporal import connect

log = logging.getLogger("approvals.api")

_RETRY_INTERVAL_SECONDS = 2.0


class TemporalGateway:
    """Holds the client once connected; connects on demand until then."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: Client | None = None
        self._lock = asyncio.Lock()
        self._last_failure: float | None = None
        self._last_error = ""

    async def start(self) -> None:
        """Try to connect once; log and carry on when Temporal is not there yet."""
        try:
            await self.client()
        except ApiError:
            log.warning(
                "Temporal at %s is not reachable (%s); the API starts anyway and retries",
                self._settings.temporal_address,
                self._last_error,
            )

    async def client(self) -> Client:
        """The connected client.

        Raises:
            ApiError: 503 with Retry-After when Temporal cannot be reached.
        """
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is not None:
                return self._client
            recent = (
                self._last_failure is not None
                and time.monotonic() - self._last_failure < _RETRY_INTERVAL_SECONDS
            )
            if not recent:
                try:
                    self._client = await asyncio.wait_for(
                        connect(self._settings), timeout=self._settings.rpc_timeout_seconds
                    )
                    log.info("connected to Temporal at %s", self._settings.temporal_address)
                    return self._client
                except (TimeoutError, RuntimeError, OSError) as exc:
                    self._last_failure = time.monotonic()
                    self._last_error = str(exc) or type(exc).__name__
            raise unavailable(
                "the workflow service (Temporal) is not reachable; nothing was changed, "
                "please retry"
            )
