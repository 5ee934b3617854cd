"""Urging the approvers (催办) and an administrator's reassignment, end to end: the API,
the real worker, PostgreSQL and Temporal."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from db.models import NotificationRow
from tests.support.api import Auth, Db, submit_contract

pytestmark = pytest.mark.usefixtures("worker")


async def _notices(db: Db, rid: str) -> list[tuple[str, str, dict[str, Any]]]:
    async with db.sessions() as s:
        rows = await s.execute(
            select(NotificationRow)
            .where(NotificationRow.request_id == rid)
            .order_by(NotificationRow.id)
        )
        return [(n.recipient, n.template, n.payload) for n in rows.scalars()]


async def test_the_requester_urges_once_and_a_second_urge_is_too_soon_with_retry_after(
    api: httpx.AsyncClient, auth: Auth, db: Db
) -> None:
    rid = await submit_contract(api, auth, "Urge")
    headers = auth("am_li") | {"Idempotency-Key": "urge-1"}
    body = {"comment": "the customer signs on Friday"}
    r = await api.post(f"/v1/requests/{rid}/urge", json=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["urges"] == 1
    assert r.json()["last_urge"]["people"] == ["bcd_zheng"]
    # The same key again: the same answer, not a second urge nor a 429.
    again = await api.post(f"/v1/requests/{rid}/urge", json=body, headers=headers)
    assert again.status_code == 200, again.text
    assert (await db.event_kinds(rid)).count("urged") == 1

    # Another urge now (a body is optional) is too soon: 429, when next, in seconds too.
    r = await api.post(f"/v1/requests/{rid}/urge", headers=auth("am_li"))
    assert r.status_code == 429, r.text
    error = r.json()["error"]
    assert error["code"] == "too_soon"
    next_at = datetime.fromisoformat(error["details"]["next_allowed_at"])
    assert next_at.isoformat() == r.json()["error"]["details"]["next_allowed_at"]
    assert int(r.headers["Retry-After"]) == error["details"]["retry_after"] >= 1
    assert "may be urged again from" in error["message"]
    assert (await db.event_kinds(rid)).count("urged") == 1

    # Audited with whom it reached; the approver's urgent notice is in the outbox.
    history = (await api.get(f"/v1/requests/{rid}", headers=auth("am_li"))).json()["history"]
    event = next(e for e in history if e["kind"] == "urged")
    assert (event["actor"], event["comment"]) == ("am_li", "the customer signs on Friday")
    assert event["data"]["people"] == ["bcd_zheng"]
    urged = [(u, p) for u, t, p in await _notices(db, rid) if t == "urged"]
    assert [u for u, _ in urged] == ["bcd_zheng"]
    assert urged[0][1]["urgent"] is True
    assert urged[0][1]["by"] == "am_li"


async def test_only_the_requester_may_urge_and_only_while_a_stage_waits(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    rid = await submit_contract(api, auth, "Urge")
    for who in ("bcd_zheng", "admin"):
        r = await api.post(f"/v1/requests/{rid}/urge", json={}, headers=auth(who))
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "forbidden"
    r = await api.post(
        f"/v1/requests/{rid}/decisions",
        json={"action": "return", "comment": "fix the price"},
        headers=auth("bcd_zheng"),
    )
    assert r.status_code == 200, r.text
    r = await api.post(f"/v1/requests/{rid}/urge", json={}, headers=auth("am_li"))
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "invalid_state"


async def test_an_administrator_reassigns_a_pending_step_and_both_holders_are_told(
    api: httpx.AsyncClient, auth: Auth, db: Db
) -> None:
    rid = await submit_contract(api, auth, "Urge")
    body = {"from_user": "bcd_zheng", "to_user": "price_lin", "comment": "on sick leave"}
    headers = auth("admin") | {"Idempotency-Key": "reassign-1"}
    r = await api.post(f"/v1/requests/{rid}/reassign", json=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["current_approvers"] == ["price_lin"]
    again = await api.post(f"/v1/requests/{rid}/reassign", json=body, headers=headers)
    assert again.status_code == 200, again.text
    assert (await db.event_kinds(rid)).count("reassigned") == 1

    history = (await api.get(f"/v1/requests/{rid}", headers=auth("admin"))).json()["history"]
    event = next(e for e in history if e["kind"] == "reassigned")
    assert (event["actor"], event["comment"]) == ("admin", "on sick leave")
    assert (event["data"]["from"], event["data"]["to"]) == ("bcd_zheng", "price_lin")
    told = {(u, t) for u, t, _ in await _notices(db, rid)}
    assert {("price_lin", "reassigned_to"), ("bcd_zheng", "reassigned_away")} <= told

    # The old holder decides nothing any more; the new one does.
    r = await api.post(
        f"/v1/requests/{rid}/decisions", json={"action": "approve"}, headers=auth("bcd_zheng")
    )
    assert r.status_code == 403, r.text
    r = await api.post(
        f"/v1/requests/{rid}/decisions", json={"action": "approve"}, headers=auth("price_lin")
    )
    assert r.status_code == 200, r.text
    assert r.json()["current_approvers"] == ["dsd_liu"]


@pytest.mark.parametrize(
    ("user", "body", "status", "field"),
    [
        ("am_li", {"from_user": "bcd_zheng", "to_user": "price_lin"}, 403, None),
        ("bcd_zheng", {"from_user": "bcd_zheng", "to_user": "price_lin"}, 403, None),
        ("admin", {"from_user": "bcd_zheng", "to_user": "nobody"}, 422, "to_user"),
        ("admin", {"from_user": "dsd_liu", "to_user": "price_lin"}, 422, "from_user"),
        ("admin", {"from_user": "bcd_zheng", "to_user": "am_li"}, 422, "to_user"),
        ("admin", {"from_user": "bcd_zheng", "to_user": "price_lin", "comment": " "}, 422, None),
    ],
)
async def test_reassign_refusals_have_the_error_shape(
    api: httpx.AsyncClient,
    auth: Auth,
    user: str,
    body: dict[str, Any],
    status: int,
    field: str | None,
) -> None:
    rid = await submit_contract(api, auth, "Urge")
    body = {"comment": "a reason", **body}
    r = await api.post(f"/v1/requests/{rid}/reassign", json=body, headers=auth(user))
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["message"]
    if field is not None:
        assert [f["field"] for f in error["details"]["fields"]] == [field]
