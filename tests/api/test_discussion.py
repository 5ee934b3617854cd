"""Comments with @mentions and attachments, end to end: the API, the real worker,
PostgreSQL and Temporal. A 250,000 contract by am_li: bcd_zheng decides first."""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from activities.reconcile import ReconcileActivities
from api.app import create_app
from common.settings import Settings
from db.models import AttachmentRow, EventRow, NotificationRow
from domain.constants import workflow_id
from domain.reconcile import ReconcileInput
from tests.support.api import Auth, Db, make_settings, running, submit_contract, temporal_target
from tests.support.servers import decoded_history

pytestmark = pytest.mark.usefixtures("worker")

MARKER = b"TOP-SECRET-ANNEX-" + uuid.uuid4().hex.encode()
"""Text inside an uploaded file: it must never reach a workflow payload."""
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + MARKER


def _docx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    return out.getvalue()


async def _upload(
    api: httpx.AsyncClient,
    auth: Auth,
    user: str = "am_li",
    content: bytes = PNG,
    name: str = "报价 ‮gpj.exe/../annex.png",
    declared: str = "image/png",
) -> httpx.Response:
    return await api.post(
        "/v1/attachments", files={"file": (name, content, declared)}, headers=auth(user)
    )


async def _uploaded(api: httpx.AsyncClient, auth: Auth, **kw: Any) -> dict[str, Any]:
    r = await _upload(api, auth, **kw)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_a_comment_mentions_a_participant_with_a_file_that_only_readers_download(
    api: httpx.AsyncClient,
    auth: Auth,
    db: Db,
    db_sessions: async_sessionmaker[AsyncSession],
    temporal_local: WorkflowEnvironment,
) -> None:
    rid = await submit_contract(api, auth, "Discuss")
    file = await _uploaded(api, auth)
    assert file["name"] == "annex.png" and file["content_type"] == "image/png"
    assert (file["size"], file["sha256"]) == (len(PNG), hashlib.sha256(PNG).hexdigest())

    body = {
        "body": "@bcd_zheng see the annex",
        "mentions": ["bcd_zheng"],
        "attachments": [file["id"]],
    }
    headers = auth("am_li") | {"Idempotency-Key": "comment-1"}
    r = await api.post(f"/v1/requests/{rid}/comments", json=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["comments"] == 1
    assert r.json()["current_approvers"] == ["bcd_zheng"]  # a comment decides nothing
    again = await api.post(f"/v1/requests/{rid}/comments", json=body, headers=headers)
    assert again.status_code == 200, again.text
    assert (await db.event_kinds(rid)).count("commented") == 1

    comments = (await api.get(f"/v1/requests/{rid}/comments", headers=auth("bcd_zheng"))).json()
    assert [(c["actor"], c["body"], c["mentions"]) for c in comments] == [
        ("am_li", "@bcd_zheng see the annex", ["bcd_zheng"])
    ]
    assert [(a["id"], a["name"], a["size"]) for a in comments[0]["attachments"]] == [
        (file["id"], "annex.png", len(PNG))
    ]
    history = (await api.get(f"/v1/requests/{rid}", headers=auth("am_li"))).json()["history"]
    event = next(e for e in history if e["kind"] == "commented")
    assert event["data"]["attachments"][0]["url"] == f"/v1/attachments/{file['id']}"
    assert event["data"]["attachments"][0]["sha256"] == file["sha256"]

    async with db_sessions() as s:
        told = await s.execute(
            select(NotificationRow.recipient, NotificationRow.template).where(
                NotificationRow.request_id == rid, NotificationRow.template == "mentioned"
            )
        )
        assert list(told) == [("bcd_zheng", "mentioned")]
        audit = (
            await s.execute(
                select(EventRow).where(EventRow.request_id == rid, EventRow.kind == "commented")
            )
        ).scalar_one()
        assert (audit.actor, audit.data["mentions"]) == ("am_li", ["bcd_zheng"])

    got = await api.get(f"/v1/attachments/{file['id']}", headers=auth("bcd_zheng"))
    assert got.status_code == 200 and got.content == PNG
    assert got.headers["content-type"] == "image/png"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-disposition"] == (
        "attachment; filename=\"annex.png\"; filename*=UTF-8''annex.png"
    )
    for stranger in ("om_wu", "price_lin"):  # takes no part in it: as if it did not exist
        r = await api.get(f"/v1/attachments/{file['id']}", headers=auth(stranger))
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "not_found"
    assert (
        await api.get(f"/v1/attachments/{uuid.uuid4()}", headers=auth("am_li"))
    ).status_code == 404
    assert (
        await api.get(f"/v1/attachments/{file['id']}", headers=auth("auditor_qin"))
    ).status_code == 200

    # The workflow carries the id and the hash, never the bytes.
    events = (
        await temporal_local.client.get_workflow_handle(workflow_id(rid)).fetch_history()
    ).events
    plain = await decoded_history(events)
    assert file["id"].encode() in plain and file["sha256"].encode() in plain
    raw = b"".join(e.SerializeToString() for e in events)
    assert MARKER not in plain + raw and b"annex.png" not in plain + raw


async def test_a_decision_carries_files_listed_in_its_history_event(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    rid = await submit_contract(api, auth, "Discuss")
    file = await _uploaded(
        api, auth, user="bcd_zheng", content=_docx(), name="意见.docx", declared=""
    )
    assert file["name"] == "意见.docx"
    assert file["content_type"].endswith("wordprocessingml.document")
    r = await api.post(
        f"/v1/requests/{rid}/decisions",
        json={"action": "approve", "attachments": [file["id"]]},
        headers=auth("bcd_zheng"),
    )
    assert r.status_code == 200, r.text
    history = (await api.get(f"/v1/requests/{rid}", headers=auth("am_li"))).json()["history"]
    approved = next(e for e in history if e["kind"] == "approved")
    assert [(a["name"], a["size"]) for a in approved["data"]["attachments"]] == [
        ("意见.docx", file["size"])
    ]
    got = await api.get(f"/v1/attachments/{file['id']}", headers=auth("am_li"))
    assert got.status_code == 200
    assert "filename*=UTF-8''%E6%84%8F%E8%A7%81.docx" in got.headers["content-disposition"]
    # Attached once: another message cannot take it again.
    r = await api.post(
        f"/v1/requests/{rid}/comments",
        json={"body": "again", "attachments": [file["id"]]},
        headers=auth("bcd_zheng"),
    )
    assert r.status_code == 422, r.text
    assert file["id"] in r.text


async def test_a_mention_of_someone_who_may_not_read_it_is_refused_and_frees_the_files(
    api: httpx.AsyncClient, auth: Auth, db: Db
) -> None:
    rid = await submit_contract(api, auth, "Discuss")
    file = await _uploaded(api, auth)
    body = {"body": "look", "mentions": ["bcd_zheng", "om_wu"], "attachments": [file["id"]]}
    r = await api.post(f"/v1/requests/{rid}/comments", json=body, headers=auth("am_li"))
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["details"]["unreadable"] == ["om_wu"] and "om_wu" in error["message"]
    assert "commented" not in await db.event_kinds(rid)
    # om_wu was not made a reader by the attempt.
    assert (await api.get(f"/v1/requests/{rid}", headers=auth("om_wu"))).status_code == 404
    # The refused comment's file is free for the next one.
    body = {"body": "look", "mentions": ["bcd_zheng"], "attachments": [file["id"]]}
    r = await api.post(f"/v1/requests/{rid}/comments", json=body, headers=auth("am_li"))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("user", "body", "status"),
    [
        ("om_wu", {"body": "hi"}, 404),  # may not read it
        ("am_li", {"body": ""}, 422),
        ("am_li", {"body": "x" * 4001}, 422),
        ("am_li", {"body": "hi", "mentions": ["am_li"]}, 422),
        ("am_li", {"body": "hi", "attachments": [str(uuid.uuid4())]}, 422),
        ("am_li", {"body": "hi", "attachments": ["not-an-id"]}, 422),
    ],
)
async def test_bad_comments_are_refused_with_the_error_shape(
    api: httpx.AsyncClient, auth: Auth, user: str, body: dict[str, Any], status: int
) -> None:
    rid = await submit_contract(api, auth, "Discuss")
    r = await api.post(f"/v1/requests/{rid}/comments", json=body, headers=auth(user))
    assert r.status_code == status, r.text
    assert set(r.json()["error"]) >= {"code", "message"}


async def test_someone_elses_upload_cannot_be_attached(api: httpx.AsyncClient, auth: Auth) -> None:
    rid = await submit_contract(api, auth, "Discuss")
    theirs = await _uploaded(api, auth, user="bcd_zheng")
    r = await api.post(
        f"/v1/requests/{rid}/comments",
        json={"body": "mine?", "attachments": [theirs["id"]]},
        headers=auth("am_li"),
    )
    assert r.status_code == 422, r.text
    # Nor downloaded by anyone but its uploader while it is attached to nothing.
    assert (
        await api.get(f"/v1/attachments/{theirs['id']}", headers=auth("am_li"))
    ).status_code == 404


async def test_a_closed_request_takes_no_comment(api: httpx.AsyncClient, auth: Auth) -> None:
    rid = await submit_contract(api, auth, "Discuss")
    r = await api.post(f"/v1/requests/{rid}/withdraw", json={}, headers=auth("am_li"))
    assert r.status_code == 200, r.text
    r = await api.post(f"/v1/requests/{rid}/comments", json={"body": "late"}, headers=auth("am_li"))
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_state" and "withdrawn" in error["message"]


@pytest.mark.parametrize(
    ("content", "declared", "name"),
    [
        (PNG, "application/pdf", "a.pdf"),  # declared one thing, the bytes another
        (b"%PDF-1.7\n", "image/png", "a.png"),
        (b"\x7fELF\x02\x01\x01\x00", "application/octet-stream", "a.bin"),  # not allowed
        (b"MZ\x90\x00", "application/x-msdownload", "a.exe"),
        (b"PK\x03\x04not a zip", "", "a.docx"),
        (b"", "text/plain", "empty.txt"),
    ],
)
async def test_uploads_whose_bytes_are_not_an_allowed_kind_or_not_the_declared_one_are_422(
    api: httpx.AsyncClient, auth: Auth, content: bytes, declared: str, name: str
) -> None:
    r = await _upload(api, auth, content=content, declared=declared, name=name)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"


@pytest.fixture
async def small_api(
    pg_url: str, temporal_local: WorkflowEnvironment, demo_org: None, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    """The API with small limits, on the task queue the shared worker serves."""
    small = make_settings(
        pg_url,
        temporal_target(temporal_local),
        APPROVALS_TASK_QUEUE=settings.task_queue,
        APPROVALS_ATTACHMENT_MAX_BYTES=1000,
        APPROVALS_ATTACHMENT_MAX_COUNT=1,
    )
    async with running(create_app(small)) as client:
        yield client


async def test_upload_size_and_count_limits_come_from_settings(
    small_api: httpx.AsyncClient, auth: Auth
) -> None:
    text = b"a,b\n" * 250  # 1000 bytes: at the limit
    r = await _upload(small_api, auth, content=text, declared="text/csv", name="t.csv")
    assert r.status_code == 201, r.text
    assert r.json()["content_type"] == "text/csv"
    r = await _upload(small_api, auth, content=text + b"x", declared="text/csv", name="t.csv")
    assert r.status_code == 413, r.text
    assert r.json()["error"]["details"]["limit_bytes"] == 1000
    r = await _upload(small_api, auth, content=b"x" * 200_000, declared="text/plain", name="t.txt")
    assert r.status_code == 413, r.text
    rid = await submit_contract(small_api, auth, "Discuss")
    ids = [(await _uploaded(small_api, auth, content=b"hi", name="a.txt", declared=""))["id"]]
    ids.append((await _uploaded(small_api, auth, content=b"ho", name="b.txt", declared=""))["id"])
    r = await small_api.post(
        f"/v1/requests/{rid}/comments",
        json={"body": "two", "attachments": ids},
        headers=auth("am_li"),
    )
    assert r.status_code == 422, r.text
    assert "at most 1 files" in r.json()["error"]["message"]
    r = await small_api.post(
        f"/v1/requests/{rid}/comments",
        json={"body": "one", "attachments": ids[:1]},
        headers=auth("am_li"),
    )
    assert r.status_code == 200, r.text


async def test_uploads_attached_to_nothing_for_a_day_are_deleted_by_the_reconcile_pass(
    api: httpx.AsyncClient,
    auth: Auth,
    db_sessions: async_sessionmaker[AsyncSession],
    temporal_local: WorkflowEnvironment,
) -> None:
    rid = await submit_contract(api, auth, "Discuss")
    old = await _uploaded(api, auth)
    used = await _uploaded(api, auth)
    fresh = await _uploaded(api, auth)
    r = await api.post(
        f"/v1/requests/{rid}/comments",
        json={"body": "kept", "attachments": [used["id"]]},
        headers=auth("am_li"),
    )
    assert r.status_code == 200, r.text
    day_ago = datetime.now(UTC) - timedelta(days=1, minutes=1)
    async with db_sessions() as s, s.begin():
        await s.execute(
            update(AttachmentRow)
            .where(AttachmentRow.id.in_([old["id"], used["id"]]))
            .values(created_at=day_ago)
        )
    acts = ReconcileActivities(db_sessions, temporal_local.client)
    out = await acts.reconcile_closed_requests(ReconcileInput(list_at_most=0))
    assert out.uploads_deleted >= 1
    async with db_sessions() as s:
        left = set((await s.execute(select(AttachmentRow.id))).scalars())
    assert old["id"] not in left
    assert {used["id"], fresh["id"]} <= left


async def test_files_submitted_with_a_request_are_listed_under_its_submitted_event(
    api: httpx.AsyncClient, auth: Auth, temporal_local: WorkflowEnvironment
) -> None:
    file = await _uploaded(api, auth)
    body = {
        "type": "big_customer_contract",
        "title": "Contract with its scan",
        "customer": f"Scan {uuid.uuid4().hex[:6]}",
        "amount": "250000",
        "fields": {"contract_no": "C-2026-8", "settlement_floor_price": "90000"},
        "attachments": [file["id"]],
    }
    r = await api.post("/v1/requests", json=body, headers=auth("am_li"))
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    history = (await api.get(f"/v1/requests/{rid}", headers=auth("bcd_zheng"))).json()["history"]
    submitted = next(e for e in history if e["kind"] == "submitted")
    assert [(a["id"], a["name"]) for a in submitted["data"]["attachments"]] == [
        (file["id"], "annex.png")
    ]
    got = await api.get(f"/v1/attachments/{file['id']}", headers=auth("bcd_zheng"))
    assert got.status_code == 200 and got.content == PNG
    history = await temporal_local.client.get_workflow_handle(workflow_id(rid)).fetch_history()
    # The history names the file by its hash, never carries its bytes, encrypted or not.
    assert file["sha256"].encode() in await decoded_history(history.events)
    assert MARKER not in b"".join(e.SerializeToString() for e in history.events)
    # Used: a second request cannot take it, and is not created.
    body["customer"] = f"Scan {uuid.uuid4().hex[:6]}"
    r = await api.post("/v1/requests", json=body, headers=auth("am_li"))
    assert r.status_code == 422, r.text
    assert file["id"] in r.json()["error"]["message"]
