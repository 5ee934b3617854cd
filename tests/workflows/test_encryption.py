"""What the Temporal server stores is ciphertext, and a key rotation loses nothing.

Real dev server, real worker. The history is read back with a client that has no codec
(what anyone with Temporal access sees), and with replayers holding other keys.
"""

from __future__ import annotations

import base64
import uuid
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.history.v1 import History
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from api.commands import static_summary
from common.payload_codec import ENCODING, KEY_ID_METADATA
from common.settings import DEV_PAYLOAD_KEYS, Settings
from common.temporal import data_converter
from domain.constants import WORKFLOW_NAME, Updates, workflow_id
from domain.policy import Policy
from domain.process import RequestView
from tests.support.servers import history_payloads
from tests.support.stored_histories import current_test, keep
from tests.support.workflows import make_input
from worker.main import build_worker
from workflows.approval import ApprovalWorkflow

pytestmark = pytest.mark.temporal

NEW = base64.b64encode(b"n" * 32).decode()


def _client(env: WorkflowEnvironment, **keys: str) -> Client:
    settings = Settings(APPROVALS_ENV="development", **keys)  # type: ignore[arg-type]
    return Client(
        env.client.service_client,
        namespace=env.client.namespace,
        data_converter=data_converter(settings),
    )


def _without_search_attributes(history: History) -> bytes:
    copy = History()
    copy.CopyFrom(history)
    for event in copy.events:
        attrs = event.workflow_execution_started_event_attributes
        attrs.ClearField("search_attributes")
        if event.HasField("upsert_workflow_search_attributes_event_attributes"):
            event.ClearField("upsert_workflow_search_attributes_event_attributes")
    return copy.SerializeToString()


async def _start_and_settle(
    starter: Client,
    worker_client: Client,
    sessions: async_sessionmaker[AsyncSession],
    policies: dict[str, Policy],
    customer: str,
    amount: Decimal,
) -> tuple[str, RequestView]:
    """A contract started by ``starter`` (no worker yet), then run by a worker on
    ``worker_client`` until it waits for bcd_zheng."""
    queue = f"crypt-{uuid.uuid4()}"
    inp = make_input(
        policies["big_customer_contract"],
        "am_li",
        amount,
        {"contract_no": "HT-CRYPT", "settlement_floor_price": "1"},
    )
    inp = inp.model_copy(update={"customer": customer})
    wid = workflow_id(inp.request_id)
    await starter.start_workflow(
        WORKFLOW_NAME,
        inp,
        id=wid,
        task_queue=queue,
        static_summary=static_summary(inp.policy, inp),  # as the API starts it
    )
    async with build_worker(worker_client, sessions, queue):
        handle = worker_client.get_workflow_handle(wid)
        view = await handle.execute_update(Updates.READY, result_type=RequestView)
        await handle.terminate("test finished")
    return wid, view


async def test_the_server_stores_ciphertext_and_no_customer_or_amount(
    temporal_local: WorkflowEnvironment,
    db_sessions: async_sessionmaker[AsyncSession],
    policies: dict[str, Policy],
    org: None,
) -> None:
    customer = f"Cipher Trading {uuid.uuid4().hex[:8]}"
    client = _client(temporal_local)
    wid, view = await _start_and_settle(
        client, client, db_sessions, policies, customer, Decimal("251377")
    )
    assert view.current_approvers == ["bcd_zheng"]

    plain = await Client.connect(  # no codec: what anyone with Temporal access reads
        temporal_local.client.service_client.config.target_host,
        namespace=temporal_local.client.namespace,
    )
    history = History(events=(await plain.get_workflow_handle(wid).fetch_history()).events)
    payloads = history_payloads(history)
    assert len(payloads) > 5
    assert {p.metadata["encoding"] for p in payloads} == {ENCODING}
    assert {p.metadata[KEY_ID_METADATA] for p in payloads} == {b"dev"}
    # The UI's summary line (customer, amount) goes through the codec too.
    summary = history.events[0].user_metadata.summary
    assert summary.metadata["encoding"] == ENCODING
    raw = _without_search_attributes(history)
    for needle in (customer, "Cipher Trading", "251377", "251,377", "HT-CRYPT", "am_li"):
        assert needle.encode() not in raw, needle
    # What stays plain: the search attributes (the server indexes them; docs/encryption.md).
    assert customer.encode() in history.SerializeToString()
    # Stored with `make record-histories`: every run replays an encrypted history too.
    keep(await client.get_workflow_handle(wid).fetch_history(), current_test(), as_encrypted=True)


async def test_after_a_rotation_old_payloads_decode_and_new_ones_use_the_new_key(
    temporal_local: WorkflowEnvironment,
    db_sessions: async_sessionmaker[AsyncSession],
    policies: dict[str, Policy],
    org: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    old = _client(temporal_local)  # the development key, id "dev"
    rotated = _client(
        temporal_local,
        APPROVALS_PAYLOAD_KEYS=f"{DEV_PAYLOAD_KEYS},k2:{NEW}",
        APPROVALS_PAYLOAD_KEY_ID="k2",
    )
    # Started before the rotation, run after it by a worker that has both keys.
    wid, view = await _start_and_settle(
        old, rotated, db_sessions, policies, "Rotation Ltd", Decimal(250000)
    )
    assert view.current_approvers == ["bcd_zheng"]
    history = await rotated.get_workflow_handle(wid).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    assert [p.metadata[KEY_ID_METADATA] for p in started.input.payloads] == [b"dev"]
    later = history_payloads(History(events=history.events[1:]))
    assert later and {p.metadata[KEY_ID_METADATA] for p in later} == {b"k2"}

    await _replayer(rotated).replay_workflow(history)

    # A replayer (a worker) without the old key refuses it, naming the key id.
    only_new = _client(temporal_local, APPROVALS_PAYLOAD_KEYS=f"k2:{NEW}")
    with pytest.raises(Exception, match="PayloadDecryptionError"):
        await _replayer(only_new).replay_workflow(history)
    assert "key id 'dev', which is not configured" in caplog.text  # the worker's log


def _replayer(client: Client) -> Replayer:
    return Replayer(workflows=[ApprovalWorkflow], data_converter=client.data_converter)
