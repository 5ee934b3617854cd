"""``/v1/admin/deliveries``: an admin sees failed deliveries with the reason and retries them;
nobody else sees them; a sent delivery is never sent again."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.engine import transaction
from db.models import DeliveryRow
from tests.support.api import Auth
from tests.support.notify import add_notice, add_request

Sessions = async_sessionmaker[AsyncSession]


async def a_delivery(sessions: Sessions, status: str, error: str | None = None) -> int:
    rid = await add_request(sessions)
    nid = await add_notice(sessions, rid, "bcd_zheng", "assigned")
    async with transaction(sessions) as s:
        row = DeliveryRow(
            notification_id=nid,
            channel="email",
            target="bcd_zheng@demo.example",
            status=status,
            attempts=6 if status == "failed" else 1,
            last_error=error,
            dedupe_id=f"ntf-test-{uuid.uuid4().hex}",
        )
        s.add(row)
        await s.flush()
        return row.id


async def test_admin_lists_failed_deliveries_with_the_reason_and_retries_one(
    api: httpx.AsyncClient, auth: Auth, db_sessions: Sessions
) -> None:
    failed = await a_delivery(db_sessions, "failed", "SMTP answered 550 mailbox unavailable")
    await a_delivery(db_sessions, "sent")
    resp = await api.get("/v1/admin/deliveries?status=failed&limit=200", headers=auth("admin"))
    assert resp.status_code == 200, resp.text
    items = resp.json()["items"]
    assert {i["status"] for i in items} == {"failed"}
    mine = next(i for i in items if i["id"] == failed)
    assert mine["last_error"] == "SMTP answered 550 mailbox unavailable"
    assert (mine["recipient"], mine["kind"], mine["channel"], mine["attempts"]) == (
        "bcd_zheng",
        "assigned",
        "email",
        6,
    )

    resp = await api.post(f"/v1/admin/deliveries/{failed}/retry", headers=auth("admin"))
    assert resp.status_code == 200, resp.text
    assert (resp.json()["status"], resp.json()["attempts"]) == ("pending", 0)
    listed = await api.get("/v1/admin/deliveries?status=failed&limit=200", headers=auth("admin"))
    assert failed not in [i["id"] for i in listed.json()["items"]]


async def test_pages_go_back_in_time(
    api: httpx.AsyncClient, auth: Auth, db_sessions: Sessions
) -> None:
    for _ in range(3):
        await a_delivery(db_sessions, "skipped", "user has no e-mail address")
    first = (
        await api.get("/v1/admin/deliveries?status=skipped&limit=2", headers=auth("admin"))
    ).json()
    assert len(first["items"]) == 2 and first["next_before"] == first["items"][-1]["id"]
    older = (
        await api.get(
            f"/v1/admin/deliveries?status=skipped&limit=2&before={first['next_before']}",
            headers=auth("admin"),
        )
    ).json()
    assert all(i["id"] < first["next_before"] for i in older["items"])


async def test_a_sent_delivery_is_not_resent_and_unknown_is_404(
    api: httpx.AsyncClient, auth: Auth, db_sessions: Sessions
) -> None:
    sent = await a_delivery(db_sessions, "sent")
    resp = await api.post(f"/v1/admin/deliveries/{sent}/retry", headers=auth("admin"))
    assert resp.status_code == 409
    resp = await api.post("/v1/admin/deliveries/999999999/retry", headers=auth("admin"))
    assert resp.status_code == 404


async def test_only_admins_see_deliveries(api: httpx.AsyncClient, auth: Auth) -> None:
    assert (await api.get("/v1/admin/deliveries", headers=auth("am_li"))).status_code == 403
    assert (
        await api.post("/v1/admin/deliveries/1/retry", headers=auth("am_li"))
    ).status_code == 403
    assert (await api.get("/v1/admin/deliveries")).status_code == 401
    bad = await api.get("/v1/admin/deliveries?status=lost", headers=auth("admin"))
    assert bad.status_code == 422
    assert bad.json()["error"]["details"]["fields"][0]["field"] == "status"
