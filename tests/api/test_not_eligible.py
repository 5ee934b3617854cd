"""A refused decision says who holds the step, to those who may see the request."""

from __future__ import annotations

import uuid

import httpx

from tests.support.api import Auth


async def test_a_refused_decider_is_told_who_holds_the_step_by_id_and_name(
    api: httpx.AsyncClient, worker: None, auth: Auth
) -> None:
    r = await api.post(
        "/v1/requests",
        json={
            "type": "big_customer_contract",
            "title": f"Who decides {uuid.uuid4().hex[:6]}",
            "customer": "ACME Ltd",
            "amount": "250000",
            "fields": {"contract_no": "C-1", "settlement_floor_price": "1"},
        },
        headers=auth("am_li"),
    )
    assert r.status_code == 201, r.text
    rid = r.json()["id"]

    for outsider in ("auditor_qin", "am_li"):  # one who sees all; the requester
        r = await api.post(
            f"/v1/requests/{rid}/decisions", json={"action": "approve"}, headers=auth(outsider)
        )
        assert r.status_code == 403, r.text
        error = r.json()["error"]
        assert error["code"] == "not_eligible"
        assert error["details"]["holders"] == [
            {"id": "bcd_zheng", "name": "Zheng (Big-customer management department)"}
        ]
        assert "Zheng (Big-customer management department) (bcd_zheng)" in error["message"]
        assert error["message"].startswith(f"{outsider} may not decide")

    # Someone who may not see the request learns nothing of it, holders included.
    r = await api.post(
        f"/v1/requests/{rid}/decisions", json={"action": "approve"}, headers=auth("am_sun")
    )
    assert r.status_code == 404
    assert "bcd_zheng" not in r.text
