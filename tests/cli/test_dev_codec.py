"""`approvals dev` wires the Temporal UI to the API's codec endpoint (docs/encryption.md).

One stack of this module's own: what the UI is told, and what its browser would get back.
"""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Any

import httpx
from google.protobuf import json_format
from temporalio.client import Client

from common.payload_codec import ENCODING, KEY_ID_METADATA, new_key
from domain.constants import workflow_id
from tests.support.dev_stack import start_dev_stack, submit


async def _stored_input(address: str, request_id: str) -> dict[str, Any]:
    plain = await Client.connect(address)  # no codec: what the server holds
    history = await plain.get_workflow_handle(workflow_id(request_id)).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    body: dict[str, Any] = json_format.MessageToDict(started.input)
    return body


def test_the_dev_stacks_ui_reads_payloads_through_the_api_for_an_operator() -> None:
    # A key of its own (not the development key): every child must be given it, and no
    # log may show it.
    key = new_key()
    with start_dev_stack(APPROVALS_PAYLOAD_KEYS=f"k9:{key}") as stack:
        found = re.search(r"Temporal UI\s+http://localhost:(\d+)", stack.said())
        assert found, stack.said()
        ui = f"http://127.0.0.1:{found.group(1)}"
        settings = httpx.get(f"{ui}/api/v1/settings", timeout=30).json()
        assert settings["Codec"]["Endpoint"] == f"{stack.api}/codec"

        env = (stack.data / "dev.env").read_text()
        address = re.search(r"TEMPORAL_ADDRESS='?([^'\s]+)", env)
        assert address, env
        with httpx.Client(base_url=stack.api, timeout=60) as client:
            request_id = submit(stack, client)
            stored = asyncio.run(_stored_input(address.group(1), request_id))
            [payload] = stored["payloads"]
            assert base64.b64decode(payload["metadata"]["encoding"]) == ENCODING
            assert base64.b64decode(payload["metadata"][KEY_ID_METADATA]) == b"k9"

            preflight = client.options(
                "/codec/decode",
                headers={
                    "Origin": ui,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "content-type,x-namespace",
                },
            )
            assert preflight.status_code == 204
            assert preflight.headers["access-control-allow-origin"] == ui

            refused = client.post(
                "/codec/decode", json=stored, headers=stack.headers("am_li", Origin=ui)
            )
            assert refused.status_code == 403
            decoded = client.post(
                "/codec/decode", json=stored, headers=stack.headers("admin", Origin=ui)
            )
            assert decoded.status_code == 200, decoded.text
            assert decoded.headers["access-control-allow-origin"] == ui
            [plain] = decoded.json()["payloads"]
            assert b"ACME Ltd" in base64.b64decode(plain["data"])

        logs = [p for p in (stack.data / "logs").rglob("*") if p.is_file()]
        assert logs
        assert [p.name for p in logs if key in p.read_text(errors="replace")] == []
