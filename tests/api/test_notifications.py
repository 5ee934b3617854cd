"""``/v1/notifications``: my in-app notices, newest first, paged, with an unread count."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import NotificationRow, UserRow
from tests.support.api import Auth
from tests.support.pages import fetched

from .test_flows import Flow, contract, unique

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
async def reader(db_sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[str]:
    """A directory user of this test alone, so that no other test's notices show."""
    user_id = f"reader_{uuid.uuid4().hex[:8]}"
    async with db_sessions() as s, s.begin():
        s.add(UserRow(id=user_id, name="Notice reader", active=True, is_admin=False))
    yield user_id
    async with db_sessions() as s, s.begin():
        await s.execute(
            delete(NotificationRow).where(
                (NotificationRow.recipient == user_id) | NotificationRow.dedupe_key.like("test:%")
            )
        )
        await s.execute(delete(UserRow).where(UserRow.id == user_id))


async def _notices(
    sessions: async_sessionmaker[AsyncSession], recipient: str, count: int, channel: str = "inbox"
) -> list[int]:
    """``count`` notices, two at each instant (the id breaks the tie), oldest first."""
    rows = [
        NotificationRow(
            recipient=recipient,
            channel=channel,
            template="assigned",
            payload={"title": f"notice {n}", "stage": "sign"},
            dedupe_key=f"test:{uuid.uuid4()}",
            status="pending",
            created_at=T0 + timedelta(minutes=n // 2),
        )
        for n in range(count)
    ]
    async with sessions() as s, s.begin():
        s.add_all(rows)
    return [r.id for r in rows]


async def _page(api: httpx.AsyncClient, auth: Auth, user: str, **params: Any) -> dict[str, Any]:
    resp = await api.get("/v1/notifications", params=params, headers=auth(user))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def test_my_notices_come_newest_first_a_page_at_a_time_with_the_unread_count(
    api: httpx.AsyncClient, auth: Auth, reader: str, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    empty = await _page(api, auth, reader)
    assert empty == {"items": [], "next_cursor": None, "unread": 0}
    ids = await _notices(db_sessions, reader, 7)
    # Someone else's, and another channel's, never show.
    await _notices(db_sessions, "bcd_zheng", 1)
    await _notices(db_sessions, reader, 1, channel="email")

    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = await _page(api, auth, reader, **params)
        assert page["unread"] == 7
        assert len(page["items"]) <= 3
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)
    first = (await _page(api, auth, reader, limit=1))["items"][0]
    assert first == {
        "id": ids[-1],
        "request_id": None,
        "kind": "assigned",
        "title": "notice 6",
        "payload": {"title": "notice 6", "stage": "sign"},
        "created_at": first["created_at"],
        "read": False,
        "read_at": None,
    }
    assert datetime.fromisoformat(first["created_at"]) == T0 + timedelta(minutes=3)


async def test_marking_read_one_then_all(
    api: httpx.AsyncClient, auth: Auth, reader: str, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    ids = await _notices(db_sessions, reader, 4)
    resp = await api.post(f"/v1/notifications/{ids[0]}/read", headers=auth(reader))
    assert resp.status_code == 200, resp.text
    marked = resp.json()
    assert (marked["id"], marked["read"]) == (ids[0], True)
    assert marked["read_at"] is not None
    # Again: still read, at the first time.
    again = (await api.post(f"/v1/notifications/{ids[0]}/read", headers=auth(reader))).json()
    assert again["read_at"] == marked["read_at"]
    page = await _page(api, auth, reader)
    assert page["unread"] == 3
    assert [i["read"] for i in page["items"]] == [False, False, False, True]

    resp = await api.post("/v1/notifications/read-all", headers=auth(reader))
    assert resp.status_code == 200
    assert resp.json() == {"marked": 3, "unread": 0}
    page = await _page(api, auth, reader)
    assert page["unread"] == 0 and all(i["read"] for i in page["items"])
    assert (await api.post("/v1/notifications/read-all", headers=auth(reader))).json() == {
        "marked": 0,
        "unread": 0,
    }


async def test_someone_elses_notice_is_not_found_and_stays_unread(
    api: httpx.AsyncClient, auth: Auth, reader: str, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    [mine] = await _notices(db_sessions, reader, 1)
    for user in ("am_li", "admin"):
        resp = await api.post(f"/v1/notifications/{mine}/read", headers=auth(user))
        assert resp.status_code == 404, resp.text
        assert resp.json()["error"]["code"] == "not_found"
        await api.post("/v1/notifications/read-all", headers=auth(user))
    assert (await _page(api, auth, reader))["unread"] == 1
    missing = await api.post(f"/v1/notifications/{2**63 - 1}/read", headers=auth(reader))
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/notifications", {"cursor": "bm90IGEgY3Vyc29y"}),
        ("/v1/notifications", {"cursor": "not/base64"}),
        ("/v1/notifications", {"limit": 0}),
        ("/v1/notifications", {"limit": 201}),
    ],
)
async def test_bad_query_parameters_are_named(
    api: httpx.AsyncClient, auth: Auth, path: str, params: dict[str, Any]
) -> None:
    resp = await api.get(path, params=params, headers=auth("am_li"))
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["details"]["fields"]


@pytest.mark.parametrize("notice_id", ["abc", "0", "-1", str(2**63)])
async def test_bad_notice_ids_are_refused(
    api: httpx.AsyncClient, auth: Auth, notice_id: str
) -> None:
    resp = await api.post(f"/v1/notifications/{notice_id}/read", headers=auth("am_li"))
    assert resp.status_code == 422, resp.text


async def test_without_a_token_nothing_is_shown(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/notifications")).status_code == 401
    assert (await api.post("/v1/notifications/read-all")).status_code == 401
    assert (await api.post("/v1/notifications/1/read")).status_code == 401


@pytest.mark.usefixtures("worker")
async def test_a_new_step_shows_as_an_unread_notice_for_its_approver(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    flow = Flow(api, auth, None)  # type: ignore[arg-type]  # the database is not read here
    view = await flow.submit("am_li", contract(unique("Notices"), "250000"))
    before = (await _page(api, auth, "bcd_zheng"))["unread"]
    page = await _page(api, auth, "bcd_zheng", limit=200)
    notice = next(i for i in page["items"] if i["request_id"] == view["id"])
    assert notice["kind"] == "assigned"
    assert notice["title"] == view["title"]
    assert notice["read"] is False
    resp = await api.post(f"/v1/notifications/{notice['id']}/read", headers=auth("bcd_zheng"))
    assert resp.status_code == 200
    assert (await _page(api, auth, "bcd_zheng"))["unread"] == before - 1
    # The requester cannot mark the approver's notice.
    resp = await api.post(f"/v1/notifications/{notice['id']}/read", headers=auth("am_li"))
    assert resp.status_code == 404


async def test_the_web_inbox_has_a_notifications_tab_in_both_languages(
    api: httpx.AsyncClient,
) -> None:
    _, fetched_page = await fetched(api, "/inbox")
    # The markup, and the page's code: its modules (and the words they load), followed.
    page = "\n".join([(await api.get("/inbox")).text, *fetched_page.modules.values()])
    assert 'id="tab-notices"' in page and 'aria-controls="panel-notices"' in page
    assert 'id="notices-count"' in page and 'id="notices-readall"' in page
    for call in (
        '"GET /v1/notifications"',
        '"POST /v1/notifications/{id}/read"',
        '"POST /v1/notifications/read-all"',
    ):
        assert call in page
    assert "需要您审批" in page and "Your decision is needed" in page
