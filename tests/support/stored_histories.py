"""Stored workflow histories: recorded from real runs, replayed on every test run.

A change to workflow code that would break a request already running in
production (a command added, removed or reordered without ``workflow.patched``)
fails :mod:`tests.workflows.test_stored_histories` instead of production.

Recording: with ``APPROVALS_RECORD_HISTORIES=<dir>`` set, the workflow tests and
the API tests keep every history they replay in ``<dir>``, one file per request
type and distinct shape (the sequence of event types, activities, timers and messages), gzipped
JSON as ``temporal workflow show --output json`` writes it. ``make
record-histories`` records into ``tests/histories``. Recording only adds: a
stored history is never replaced, because requests of that shape may still be
running somewhere.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHistory

from common.payload_codec import (
    ENCODING,
    EncryptionCodec,
    PayloadDecryptionError,
    parse_payload_keys,
)
from common.settings import DEV_PAYLOAD_KEYS
from tests.support.paths import STORED

_ENV = "APPROVALS_RECORD_HISTORIES"


def recording() -> Path | None:
    target = os.environ.get(_ENV)
    return Path(target) if target else None


def _shape(history: dict[str, Any]) -> str:
    """What makes two histories different for replay: event types and command names."""
    parts: list[str] = []
    for event in history.get("events", []):
        kind = str(event.get("eventType", ""))
        for key, value in event.items():
            if key.endswith("EventAttributes") and isinstance(value, dict):
                name = (
                    (value.get("activityType") or {}).get("name")
                    or value.get("signalName")
                    or (value.get("acceptedRequest") or {}).get("input", {}).get("name")
                    or value.get("markerName")
                    or ""
                )
                kind += f":{name}"
        parts.append(kind)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def _first_input(history: dict[str, Any]) -> Payload | None:
    events = history.get("events") or [{}]
    attrs = events[0].get("workflowExecutionStartedEventAttributes") or {}
    payloads = (attrs.get("input") or {}).get("payloads") or []
    if not payloads:
        return None
    return json_format.ParseDict(payloads[0], Payload(), ignore_unknown_fields=True)


def is_encrypted(history: dict[str, Any]) -> bool:
    """Whether the workflow's input is stored encrypted (common/payload_codec.py)."""
    first = _first_input(history)
    return first is not None and first.metadata.get("encoding") == ENCODING


def request_type(history: dict[str, Any]) -> str | None:
    """The request type in the workflow's input (first event), if it is an approval;
    an encrypted input is decrypted with the tests' (development) key."""
    first = _first_input(history)
    if first is None:
        return None
    try:
        if first.metadata.get("encoding") == ENCODING:
            first = EncryptionCodec(parse_payload_keys(DEV_PAYLOAD_KEYS)).decrypt(first)
        data = json.loads(first.data)
        return str(data["policy"]["type"])
    except (KeyError, TypeError, ValueError, PayloadDecryptionError):
        return None


def workflow_type(history: dict[str, Any]) -> str:
    """The workflow type named in the first event (``DeliverNotices``, ``ApprovalRequest`` …)."""
    events = history.get("events") or [{}]
    attrs = events[0].get("workflowExecutionStartedEventAttributes") or {}
    return str((attrs.get("workflowType") or {}).get("name") or "other")


def keep(history: WorkflowHistory, label: str, *, as_encrypted: bool = False) -> Path | None:
    """Store ``history`` under ``label`` when recording and its shape is new.

    Encryption does not make a shape new (every history since issue 19 is encrypted),
    except where a test asks for it (``as_encrypted``): that history is kept apart,
    as ``encrypted-<type>``, so that the stored ones include encrypted payloads.
    """
    target = recording()
    if target is None:
        return None
    target.mkdir(parents=True, exist_ok=True)
    as_dict = history.to_json_dict()
    shape = _shape(as_dict)
    # Approvals by request type; other workflows (the delivery passes) by workflow type.
    kind = request_type(as_dict) or workflow_type(as_dict)
    if as_encrypted:
        kind = f"encrypted-{kind}"
    if any(target.glob(f"{kind}--*--{shape}.json.gz")):
        return None
    slug = re.sub(r"[^A-Za-z0-9_]+", "_", label).strip("_")[:80]
    path = target / f"{kind}--{slug}--{shape}.json.gz"
    record = {"workflow_id": history.workflow_id, "history": as_dict}
    path.write_bytes(gzip.compress(json.dumps(record, sort_keys=True).encode(), mtime=0))
    return path


def load(path: Path) -> WorkflowHistory:
    record = json.loads(gzip.decompress(path.read_bytes()))
    return WorkflowHistory.from_json(record["workflow_id"], record["history"])


def stored() -> list[Path]:
    return sorted(STORED.glob("*.json.gz"))


def current_test() -> str:
    """The running test's name, for labels (``PYTEST_CURRENT_TEST`` without the phase)."""
    name = os.environ.get("PYTEST_CURRENT_TEST", "unknown")
    return name.split("::")[-1].split(" ")[0]
