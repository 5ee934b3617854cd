"""Every stored history replays on the workflow code as it is now.

The histories in ``tests/histories`` were recorded from real runs of earlier
code (see :mod:`tests.support.stored_histories`). A change that breaks one would break
the requests of that shape still running in production: guard it with
``workflow.patched`` or a new workflow version (docs/versioning.md).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from temporalio.worker import Replayer

from common.policy_store import load_policies
from domain.delivery import DELIVERY_WORKFLOW_NAME, DeliveryActivityNames
from tests.support.servers import converter_for_tests
from tests.support.stored_histories import (
    STORED,
    is_encrypted,
    load,
    request_type,
    stored,
    workflow_type,
)
from workflows.approval import ApprovalWorkflow
from workflows.delivery import DeliverNoticesWorkflow

# The SDK's replayer runs the workflow code in its sandbox: Temporal's tier, not the pure one.
pytestmark = pytest.mark.temporal

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", stored(), ids=lambda p: p.name.removesuffix(".json.gz"))
async def test_a_stored_history_replays_on_the_current_code(path: Path) -> None:
    replayer = Replayer(
        workflows=[ApprovalWorkflow, DeliverNoticesWorkflow],
        data_converter=converter_for_tests(),
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


def test_an_encrypted_history_is_stored_and_replayed_with_the_tests_key() -> None:
    """Histories since issue 19 hold ciphertext: the replay above decrypts them with the
    converter every process uses (common.temporal.data_converter), the older ones pass
    through it unchanged."""
    histories = [load(p).to_json_dict() for p in stored()]
    encrypted = [h for h in histories if is_encrypted(h)]
    assert encrypted, "no encrypted history stored (tests/workflows/test_encryption.py records one)"
    assert all(request_type(h) for h in encrypted)
    assert any(not is_encrypted(h) for h in histories)


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


_PATCH_CALL = re.compile(
    r"(?:workflow\.patched|deprecate_patch|Patched)\(\s*([A-Za-z_\"][\w\-\".]*)\s*\)"
)
_CONSTANT = re.compile(r'^([A-Z][A-Z_]*)\s*=\s*"([a-z0-9][a-z0-9-]*)"', re.MULTILINE)


def _patch_ids_in_code() -> set[str]:
    sources = [
        p.read_text(encoding="utf-8")
        for folder in ("workflows", "domain")
        for p in (ROOT / folder).rglob("*.py")
    ]
    constants = {name: value for text in sources for name, value in _CONSTANT.findall(text)}
    found: set[str] = set()
    for text in sources:
        for arg in _PATCH_CALL.findall(text):
            name = arg.rsplit(".", 1)[-1]  # a constant may be named through its module
            if arg.startswith('"'):
                found.add(arg.strip('"'))
            elif name in constants:
                found.add(constants[name])
            elif arg not in ("effect.change", "change"):  # the shell, and a docstring
                raise AssertionError(f"patch id {arg} is not a string constant the scan finds")
    return found


def test_every_patch_in_the_code_has_a_row_in_the_patch_register() -> None:
    register = (ROOT / "docs" / "versioning.md").read_text(encoding="utf-8")
    table = register.split("## Patch register", 1)[1]
    rows = set(re.findall(r"^\| `([a-z0-9-]+)` \|", table, flags=re.MULTILINE))
    in_code = _patch_ids_in_code()
    assert in_code, "no workflow.patched call found: the scan is broken"
    assert in_code == rows
