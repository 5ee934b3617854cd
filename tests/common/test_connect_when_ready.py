"""A process that needs Temporal waits for it with back-off instead of dying."""

from __future__ import annotations

import pytest
from temporalio.testing import WorkflowEnvironment

from common.settings import Settings
from common.temporal import connect_when_ready
from tests.support.servers import binary, closed_port, converter_for_tests


def _settings(port: int) -> Settings:
    return Settings(TEMPORAL_ADDRESS=f"127.0.0.1:{port}", APPROVALS_ENV="development")


@pytest.mark.process
async def test_it_backs_off_and_gives_up_only_when_told() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    with pytest.raises(ConnectionError, match=r"not reachable at 127\.0\.0\.1"):
        await connect_when_ready(_settings(closed_port()), give_up_after=100, sleep=sleep)
    assert waits == [1, 2, 4, 8, 16, 30, 30, 30]


@pytest.mark.temporal
async def test_it_connects_once_temporal_comes_up() -> None:
    port = closed_port()
    started: list[WorkflowEnvironment] = []

    async def sleep(seconds: float) -> None:
        # Temporal comes up while the process waits for it.
        if not started:
            started.append(
                await WorkflowEnvironment.start_local(
                    dev_server_existing_path=binary("temporal"),
                    port=port,
                    data_converter=converter_for_tests(),
                )
            )

    try:
        client = await connect_when_ready(_settings(port), give_up_after=60, sleep=sleep)
        assert started, "the first attempt cannot have succeeded: nothing listened"
        assert (await client.service_client.check_health()) is True
    finally:
        for env in started:
            await env.shutdown()
