"""``POST /v1/requests/{id}/send-back`` end to end: the API, the real worker, PostgreSQL
and Temporal (退回到指定节点)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import EventRow, NotificationRow
from tests.support.api import Auth, Db, pending_steps

pytestmark = pytest.mark.usefixtures("worker")

SIGN = "big_customer_dept_sign"


def _contract(amount: str = "450000") -> dict[str, Any]:
    customer = f"Send-back {uuid.uuid4().hex[:6]}"
    return {
        "type": "big_customer_contract",
        "title": f"Contract with {customer}",
        "customer": customer,
        "amount": amount,
        "fields": {"contract_no": "C-2026-9", "settlement_floor_price": "90000"},
    }


class Api:
    def __init__(self, api: httpx.AsyncClient, auth: Auth) -> None:
        self.api, self.auth = api, auth

    async def post(
        self, user: str, path: str, body: dict[str, Any], key: str | None = None
    ) -> httpx.Response:
        headers = self.auth(user) | ({"Idempotency-Key": key} if key else {})
        return await self.api.post(path, json=body, headers=headers)

    async def submit(self, amount: str = "450000") -> str:
        resp = await self.post("am_li", "/v1/requests", _contract(amount))
        assert resp.status_code == 201, resp.text
        rid: str = resp.json()["id"]
        return rid

    async def approve(self, user: str, rid: str) -> dict[str, Any]:
        resp = await self.post(user, f"/v1/requests/{rid}/decisions", {"action": "approve"})
        assert resp.status_code == 200, resp.text
        view: dict[str, Any] = resp.json()
        return view

    async def send_back(
        self, user: str, rid: str, body: dict[str, Any], key: str | None = None
    ) -> httpx.Response:
        return await self.post(user, f"/v1/requests/{rid}/send-back", body, key)


@pytest.fixture
def http(api: httpx.AsyncClient, auth: Auth) -> Api:
    return Api(api, auth)


async def _notices(
    sessions: async_sessionmaker[AsyncSession], rid: str, template: str
) -> list[str]:
    async with sessions() as s:
        rows = await s.scalars(
            select(NotificationRow.recipient).where(
                NotificationRow.request_id == rid,
                NotificationRow.template == template,
                NotificationRow.channel == "inbox",
            )
        )
        return sorted(rows)


async def _sent_back(sessions: async_sessionmaker[AsyncSession], rid: str) -> list[EventRow]:
    async with sessions() as s:
        rows = await s.scalars(
            select(EventRow).where(EventRow.request_id == rid, EventRow.kind == "sent_back")
        )
        return list(rows)


async def test_the_director_sends_back_to_the_first_stage_which_decides_again_then_all_rerun(
    http: Api, db: Db, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    rid = await http.submit()
    await http.approve("bcd_zheng", rid)
    await http.approve("dsd_liu", rid)
    body = {"to_stage": SIGN, "comment": "the floor price is below the list"}

    resp = await http.send_back("sd_chen", rid, body, key="back-1")
    assert resp.status_code == 200, resp.text
    view = resp.json()
    assert view["status"] == "in_review" and view["stage_index"] == 0
    assert view["current_approvers"] == ["bcd_zheng"]
    first, deputy, director = view["stages"]
    assert first["status"] == "active" and first["slots"][0]["decision"] is None
    assert [d["decided_by"] for d in first["superseded"]] == ["bcd_zheng"]
    assert first["superseded"][0]["superseded_by"] == "sd_chen"
    assert deputy["status"] == "pending"
    assert [d["decided_by"] for d in deputy["superseded"]] == ["dsd_liu"]
    assert director["superseded"] == []
    assert view["sent_back"]["by"] == "sd_chen" and view["sent_back"]["to_key"] == SIGN
    assert (await db.event_kinds(rid))[-2:] == ["sent_back", "assigned"]
    (event,) = await _sent_back(db_sessions, rid)
    assert event.actor == "sd_chen" and event.comment == body["comment"]
    assert event.data["from_stage"] == "sales_director_approve"
    assert event.data["to_stage"] == SIGN and event.data["resume"] == "rerun"
    assert await _notices(db_sessions, rid, "sent_back") == ["bcd_zheng"]

    # The same key and body: the same answer, sent back once.
    again = await http.send_back("sd_chen", rid, body, key="back-1")
    assert again.status_code == 200, again.text
    assert len(await _sent_back(db_sessions, rid)) == 1
    other = await http.send_back("sd_chen", rid, {**body, "to_stage": 1}, key="back-1")
    assert other.status_code == 409

    # The inbox shows it waiting for bcd_zheng again.
    inbox = await pending_steps(http.api, http.auth("bcd_zheng"))
    assert [i["stage_key"] for i in inbox if i["request_id"] == rid] == [SIGN]

    await http.approve("bcd_zheng", rid)
    view = await http.approve("dsd_liu", rid)  # rerun: the deputy decides again
    assert view["current_approvers"] == ["sd_chen"]
    view = await http.approve("sd_chen", rid)
    assert view["status"] != "in_review"


async def test_sent_back_to_the_requester_it_is_returned_and_resubmitted(
    http: Api, db: Db, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    rid = await http.submit()
    await http.approve("bcd_zheng", rid)
    resp = await http.send_back("dsd_liu", rid, {"to_stage": "requester", "comment": "stamp"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "returned"
    assert await _notices(db_sessions, rid, "return") == ["am_li"]
    again = await http.send_back("dsd_liu", rid, {"to_stage": "requester", "comment": "x"})
    assert again.status_code == 409
    resp = await http.post("am_li", f"/v1/requests/{rid}/resubmit", {"comment": "stamped"})
    assert resp.status_code == 200, resp.text
    view = resp.json()
    assert view["current_approvers"] == ["bcd_zheng"]
    assert [len(s["superseded"]) for s in view["stages"]] == [1, 0, 0]


@pytest.mark.parametrize(
    ("user", "body", "status", "field"),
    [
        ("dsd_liu", {"to_stage": SIGN}, 422, "comment"),
        ("dsd_liu", {"to_stage": SIGN, "comment": "   "}, 422, "comment"),
        ("dsd_liu", {"to_stage": "deputy_sales_director_sign", "comment": "x"}, 422, "to_stage"),
        ("dsd_liu", {"to_stage": "nowhere", "comment": "x"}, 422, "to_stage"),
        ("dsd_liu", {"to_stage": 5, "comment": "x"}, 422, "to_stage"),
        ("dsd_liu", {"to_stage": True, "comment": "x"}, 422, "to_stage"),
        ("bcd_zheng", {"to_stage": SIGN, "comment": "x"}, 403, None),
        ("am_li", {"to_stage": SIGN, "comment": "x"}, 403, None),
    ],
)
async def test_a_send_back_that_is_not_allowed_is_refused_with_the_error_shape(
    http: Api, user: str, body: dict[str, Any], status: int, field: str | None
) -> None:
    rid = await http.submit()
    await http.approve("bcd_zheng", rid)
    resp = await http.send_back(user, rid, body)
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    if field is not None:
        assert field in [f["field"] for f in error["details"]["fields"]], error
