"""The Temporal client, with the pydantic data converter, as every process builds it."""

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode

from common.payload_codec import EncryptionCodec
from common.settings import Settings
from common.tracing import temporal_interceptors

log = logging.getLogger("approvals.temporal")


def data_converter(settings: Settings) -> DataConverter:
    """The one data converter of every client, worker, replayer and test server.

    Pydantic models as JSON, then encrypted with the settings' payload keys
    (:mod:`common.payload_codec`), failure messages and stack traces included (they
    can quote a customer). Without keys (``APPROVALS_ALLOW_PLAIN_PAYLOADS``): plain.
    Nothing else in the project may build a converter: a client without the codec
    would write plain text to the server and could not read what the others wrote.
    """
    keys = settings.payload_keyring
    if keys is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keys),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


async def connect(
    settings: Settings, *, runtime: Runtime | None = None, service: str = "approvals"
) -> Client:
    """Connect, or raise ConnectionError naming the address (the SDK raises RuntimeError).

    ``runtime``: the SDK runtime (default: the SDK's own), e.g. one that exports the SDK's
    metrics (:func:`common.metrics.sdk_runtime`); workers built on the client use it.
    With tracing on (``APPROVALS_TRACING``), the client, and every worker built on it,
    carries the tracing interceptor; ``service`` names this process in the traces.
    """
    if settings.payload_keyring is None:
        log.warning(
            "Temporal payloads are written in plain text (no APPROVALS_PAYLOAD_KEYS, "
            "APPROVALS_ALLOW_PLAIN_PAYLOADS=true): the Temporal server stores customers, "
            "amounts and comments readable (docs/encryption.md)"
        )
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=data_converter(settings),
            interceptors=temporal_interceptors(settings, service),
            runtime=runtime,
        )
    except RuntimeError as exc:
        if "connect" not in str(exc).lower():
            raise
        raise ConnectionError(
            f"Temporal is not reachable at {settings.temporal_address} "
            "(TEMPORAL_ADDRESS); is it running?"
        ) from exc


FIRST_RETRY = 1.0
MAX_RETRY = 30.0


async def connect_when_ready(
    settings: Settings,
    *,
    runtime: Runtime | None = None,
    service: str = "approvals",
    give_up_after: float | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Client:
    """:func:`connect`, retried with back-off (1 s, 2 s, 4 s … 30 s) until Temporal answers.

    A process that needs Temporal waits for it rather than dying and counting on a
    supervisor: Temporal may start after it (compose, ``approvals dev``) or restart
    under it. Each failed attempt is one log line naming the address and the next
    wait. ``give_up_after`` (seconds of waiting, None: never) raises the last
    ConnectionError.
    """
    delay, waited, attempt = FIRST_RETRY, 0.0, 1
    while True:
        try:
            return await connect(settings, runtime=runtime, service=service)
        except ConnectionError:
            if give_up_after is not None and waited >= give_up_after:
                raise
            log.warning(
                "Temporal is not reachable at %s (attempt %d); trying again in %.0f s",
                settings.temporal_address,
                attempt,
                delay,
            )
            await sleep(delay)
            waited += delay
            delay, attempt = min(delay * 2, MAX_RETRY), attempt + 1


async def register_search_attributes(client: Client) -> None:
    """Register our custom search attributes on the client's namespace (idempotent).

    The dev server gets them from ``--search-attribute`` flags; this is for
    servers started without them (the time-skipping test server, a fresh cluster).
    """
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )

    from common import search_attributes

    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        existing = set(listed.custom_attributes)
    except RPCError as err:
        # The time-skipping test server can add search attributes but not list them.
        if err.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        existing = set()
    wanted = {
        key.name: IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{key.indexed_value_type.name}")
        for key in search_attributes.ALL
        if key.name not in existing
    }
    if wanted:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=wanted)
        )
