"""Every stored history replays on the workflow code as it is now.

The histories in ``tests/histories`` were recorded from real runs of earlier
code (see :mod:`tests.stored_histories`). A change that breaks one would break
the requests of that shape still running in production: guard it with
``workflow.patched`` or a new workflow version (README, "Changing workflow code").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from common.policy_store import load_policies
from domain.delivery import DELIVERY_WORKFLOW_NAME, DeliveryActivityNames
from tests.stored_histories import STORED, load, request_type, stored, workflow_type
from workflows.approval import ApprovalWorkflow
from workflows.delivery import DeliverNoticesWorkflow

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", stored(), ids=lambda p: p.name.removesuffix(".json.gz"))
async def test_a_stored_history_replays_on_the_current_code(path: Path) -> None:
    replayer = Replayer(
        workflows=[ApprovalWorkflow, DeliverNoticesWorkflow],
        data_converter=pydantic_data_converter,
    )
    await replayer.replay_workflow(load(path))


def test_the_stored_histories_cover_every_request_type_and_a_continued_run() -> None:
    histories = [load(p).to_json_dict() for p in stored()]
    assert histories, f"no stored histories in {STORED}"
    types = {request_type(h) for h in histories}
    assert set(load_policies(ROOT / "policies")) <= types
    events = [e.get("eventType", "") for h in histories for e in h.get("events", [])]
    assert any("CONTINUED_AS_NEW" in str(e) for e in events), "no continue-as-new run stored"
    assert any("TIMER_FIRED" in str(e) for e in events), "no fired timer stored"


def _activities(history: dict[str, Any]) -> set[str]:
    return {
        attrs["activityType"]["name"]
        for event in history.get("events", [])
        if (attrs := event.get("activityTaskScheduledEventAttributes"))
    }


def test_delivery_passes_of_both_shapes_are_stored() -> None:
    """Passes started before the batch sends (``deliver-batches``) must still replay, and
    so must the batch passes once the next change to the workflow comes."""
    histories = [load(p).to_json_dict() for p in stored()]
    passes = [h for h in histories if workflow_type(h) == DELIVERY_WORKFLOW_NAME]
    assert any(DeliveryActivityNames.DELIVER in _activities(h) for h in passes)
    assert any(DeliveryActivityNames.DELIVER_BATCH in _activities(h) for h in passes)
