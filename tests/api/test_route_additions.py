"""Approvers added to a stage (加签) and people copied in (抄送), end to end: the API, the
real worker, PostgreSQL and Temporal."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.api import Auth, Db, submit_contract

pytestmark = pytest.mark.usefixtures("worker")


async def test_an_approver_adds_someone_before_them_who_decides_first(
    api: httpx.AsyncClient, auth: Auth, db: Db
) -> None:
    rid = await submit_contract(api, auth, "Addsign")
    body = {"people": ["price_lin"], "position": "before", "comment": "check the price"}
    headers = auth("bcd_zheng") | {"Idempotency-Key": "add-1"}
    r = await api.post(f"/v1/requests/{rid}/approvers", json=body, headers=headers)
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["current_approvers"] == ["price_lin"]
    added = [s for s in view["stages"][0]["slots"] if s.get("added_by")]
    assert [(s["added_by"], s["added_as"]) for s in added] == [("bcd_zheng", "before")]
    # The same key again: the same answer, nothing added twice.
    again = await api.post(f"/v1/requests/{rid}/approvers", json=body, headers=headers)
    assert again.status_code == 200, again.text
    assert (await db.event_kinds(rid)).count("approvers_added") == 1

    # The added person may read and decide it; the adder waits for them.
    assert (await api.get(f"/v1/requests/{rid}", headers=auth("price_lin"))).status_code == 200
    r = await api.post(
        f"/v1/requests/{rid}/decisions", json={"action": "approve"}, headers=auth("bcd_zheng")
    )
    assert r.status_code == 403, r.text
    r = await api.post(
        f"/v1/requests/{rid}/decisions", json={"action": "approve"}, headers=auth("price_lin")
    )
    assert r.status_code == 200, r.text
    assert r.json()["current_approvers"] == ["bcd_zheng"]
    r = await api.post(
        f"/v1/requests/{rid}/decisions", json={"action": "approve"}, headers=auth("bcd_zheng")
    )
    assert r.status_code == 200, r.text
    assert r.json()["current_approvers"] == ["dsd_liu"]
    history = (await api.get(f"/v1/requests/{rid}", headers=auth("am_li"))).json()["history"]
    event = next(e for e in history if e["kind"] == "approvers_added")
    assert (event["actor"], event["comment"]) == ("bcd_zheng", "check the price")
    assert event["data"]["people"] == ["price_lin"]


async def test_people_added_alongside_in_turn_decide_one_after_another_beside_the_adder(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    rid = await submit_contract(api, auth, "Addsign")
    body = {
        "people": ["price_lin", "fh_gao"],
        "position": "alongside",
        "mode": "in_turn",
        "comment": "pricing, then finance",
    }
    r = await api.post(f"/v1/requests/{rid}/approvers", json=body, headers=auth("bcd_zheng"))
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["current_approvers"] == ["bcd_zheng", "price_lin"]
    added = [s for s in view["stages"][0]["slots"] if s.get("added_by")]
    assert [s["added_as"] for s in added] == ["alongside", "alongside"]
    assert [[a["user"] for a in s.get("queued", [])] for s in added] == [[], ["fh_gao"]]

    async def approve(user: str) -> list[str]:
        r = await api.post(
            f"/v1/requests/{rid}/decisions", json={"action": "approve"}, headers=auth(user)
        )
        assert r.status_code == 200, r.text
        return list(r.json()["current_approvers"])

    # fh_gao's turn has not come: they may not decide yet.
    r = await api.post(
        f"/v1/requests/{rid}/decisions", json={"action": "approve"}, headers=auth("fh_gao")
    )
    assert r.status_code == 403, r.text
    assert await approve("price_lin") == ["bcd_zheng", "fh_gao"]
    assert await approve("bcd_zheng") == ["fh_gao"]
    assert await approve("fh_gao") == ["dsd_liu"]


@pytest.mark.parametrize(
    ("user", "body", "status", "code"),
    [
        ("am_li", {"people": ["price_lin"], "position": "after"}, 403, "not_eligible"),
        ("bcd_zheng", {"people": ["am_li"], "position": "after"}, 422, "validation_error"),
        ("bcd_zheng", {"people": ["nobody"], "position": "after"}, 422, "validation_error"),
        ("bcd_zheng", {"people": ["price_lin"], "position": "sideways"}, 422, "validation_error"),
        ("bcd_zheng", {"people": ["price_lin"], "position": "after", "comment": " "}, 422, None),
    ],
)
async def test_additions_the_api_refuses_with_the_error_shape(
    api: httpx.AsyncClient, auth: Auth, user: str, body: dict[str, Any], status: int, code: str
) -> None:
    rid = await submit_contract(api, auth, "Addsign")
    body = {"comment": "a reason", **body}
    r = await api.post(f"/v1/requests/{rid}/approvers", json=body, headers=auth(user))
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["message"]
    if code is not None:
        assert error["code"] == code


async def test_the_requester_copies_someone_in_who_may_then_read_it_and_nothing_more(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    rid = await submit_contract(api, auth, "Addsign")
    assert (await api.get(f"/v1/requests/{rid}", headers=auth("fin_he"))).status_code == 404
    r = await api.post(
        f"/v1/requests/{rid}/cc",
        json={"people": ["fin_he"], "comment": "for the invoice"},
        headers=auth("am_li"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["cc"] == ["fin_he"]
    assert (await api.get(f"/v1/requests/{rid}", headers=auth("fin_he"))).status_code == 200
    r = await api.post(
        f"/v1/requests/{rid}/decisions", json={"action": "approve"}, headers=auth("fin_he")
    )
    assert r.status_code == 403
    # Someone neither the requester nor a current approver may not copy people in.
    r = await api.post(
        f"/v1/requests/{rid}/cc", json={"people": ["fh_gao"]}, headers=auth("fin_he")
    )
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "forbidden"
