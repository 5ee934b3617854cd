"""``POST /codec/decode`` and ``/codec/encode``: the Temporal UI's codec server.

Real API, real worker, real dev server: the payloads decoded are those the server
stored for a request the API started.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.common.v1 import Payloads
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.deps import SESSION_COOKIE
from common.payload_codec import ENCODING
from db.web_sessions import open_session
from domain.constants import workflow_id
from tests.support.api import Auth, submit_contract, temporal_target

pytestmark = pytest.mark.temporal

UI = "http://localhost:8233"


async def _stored_input(env: WorkflowEnvironment, request_id: str) -> dict[str, Any]:
    """The request's start input as the server holds it, in the codec protocol's JSON."""
    plain = await Client.connect(  # no codec: what the server holds
        temporal_target(env), namespace=env.client.namespace
    )
    history = await plain.get_workflow_handle(workflow_id(request_id)).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    body: dict[str, Any] = json_format.MessageToDict(started.input)
    return body


def _texts(body: dict[str, Any]) -> list[str]:
    payloads = json_format.ParseDict(body, Payloads())
    return [p.data.decode("utf-8", "replace") for p in payloads.payloads]


async def test_the_codec_endpoint_decodes_for_an_operator_only(
    api: httpx.AsyncClient, auth: Auth, worker: None, temporal_local: WorkflowEnvironment
) -> None:
    request_id = await submit_contract(api, auth, "Codec Customer")
    stored = await _stored_input(temporal_local, request_id)
    assert all(base64.b64decode(p["metadata"]["encoding"]) == ENCODING for p in stored["payloads"])
    assert not any("Codec Customer" in t for t in _texts(stored))

    anonymous = await api.post("/codec/decode", json=stored)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.json()["error"]["code"]

    requester = await api.post("/codec/decode", json=stored, headers=auth("am_li"))
    assert requester.status_code == 403, requester.text
    assert "operator" in requester.json()["error"]["message"]

    decoded = await api.post("/codec/decode", json=stored, headers=auth("admin"))
    assert decoded.status_code == 200, decoded.text
    [text] = _texts(decoded.json())
    assert "Codec Customer" in text and '"requester":"am_li"' in text


async def test_what_the_ui_encodes_decodes_again(api: httpx.AsyncClient, auth: Auth) -> None:
    plain = {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "IkFDTUUi"}]}
    encoded = await api.post("/codec/encode", json=plain, headers=auth("admin"))
    assert encoded.status_code == 200, encoded.text
    [sealed] = encoded.json()["payloads"]
    assert base64.b64decode(sealed["metadata"]["encoding"]) == ENCODING
    decoded = await api.post("/codec/decode", json=encoded.json(), headers=auth("admin"))
    assert decoded.json() == plain


async def test_a_payload_of_an_unknown_key_is_a_clear_422(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    unknown = {
        "payloads": [
            {
                "metadata": {
                    "encoding": base64.b64encode(ENCODING).decode(),
                    "encryption-key-id": base64.b64encode(b"retired").decode(),
                },
                "data": base64.b64encode(b"\0" * 40).decode(),
            }
        ]
    }
    resp = await api.post("/codec/decode", json=unknown, headers=auth("admin"))
    assert resp.status_code == 422, resp.text
    assert "'retired', which is not configured" in resp.json()["error"]["message"]


@pytest.mark.parametrize(
    "body", [b'{"payloads": 3}', b"[]", b"not json", b'{"payloads": [{"data": 5}]}', b"{}"]
)
async def test_a_malformed_body_is_a_422(api: httpx.AsyncClient, auth: Auth, body: bytes) -> None:
    for op in ("decode", "encode"):
        resp = await api.post(f"/codec/{op}", content=body, headers=auth("admin"))
        assert resp.status_code == 422, (op, resp.text)
        assert "payloads" in resp.json()["error"]["message"]


async def test_the_ui_signed_in_to_the_api_decodes_with_its_cookie(
    api: httpx.AsyncClient, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with db_sessions() as s, s.begin():
        admin = await open_session(s, "admin", timedelta(hours=1))
        user = await open_session(s, "am_li", timedelta(hours=1))
    body: dict[str, list[Any]] = {"payloads": []}
    as_admin = await api.post(
        "/codec/decode", json=body, headers={"Origin": UI, "Cookie": f"{SESSION_COOKIE}={admin}"}
    )
    assert as_admin.status_code == 200, as_admin.text
    assert as_admin.headers["access-control-allow-origin"] == UI
    assert as_admin.headers["access-control-allow-credentials"] == "true"
    as_user = await api.post(
        "/codec/decode", json=body, headers={"Origin": UI, "Cookie": f"{SESSION_COOKIE}={user}"}
    )
    assert as_user.status_code == 403
    assert as_user.headers["access-control-allow-origin"] == UI  # the UI sees the refusal


async def test_cors_lets_the_temporal_ui_in_and_no_one_else(api: httpx.AsyncClient) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
    }
    ok = await api.options("/codec/decode", headers={"Origin": UI, **preflight})
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == UI
    assert "X-Namespace" in ok.headers["access-control-allow-headers"]
    other = await api.options(
        "/codec/decode", headers={"Origin": "https://evil.example", **preflight}
    )
    assert other.status_code == 403
    assert "access-control-allow-origin" not in other.headers
    refused = await api.post(
        "/codec/decode", json={"payloads": []}, headers={"Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in refused.headers
    # Nothing else of the API answers other origins.
    me = await api.get("/v1/me", headers={"Origin": UI})
    assert "access-control-allow-origin" not in me.headers
