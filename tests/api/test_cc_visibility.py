"""People copied (CC) may read the request they were told of, and nothing more."""

from __future__ import annotations

import httpx

from tests.support.api import Auth


async def test_cc_sees_the_request_but_cannot_decide_and_strangers_see_nothing(
    api: httpx.AsyncClient, worker: None, auth: Auth
):
    r = await api.post(
        "/v1/requests",
        json={
            "type": "commercial_terms_beyond_authority",
            "title": "Longer payment terms for ACME",
            "customer": "ACME Ltd",
            "fields": {"term": "payment_terms", "details": "90 days instead of 30"},
        },
        headers=auth("am_li"),
    )
    assert r.status_code == 201, r.text
    view = r.json()
    assert view["cc"] == ["css_ma"]
    rid = view["id"]

    assert (await api.get(f"/v1/requests/{rid}", headers=auth("css_ma"))).status_code == 200
    r = await api.post(
        f"/v1/requests/{rid}/decisions", json={"action": "approve"}, headers=auth("css_ma")
    )
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "not_eligible"
    assert (await api.get(f"/v1/requests/{rid}", headers=auth("pm_luo"))).status_code == 404
    listed = await api.get("/v1/requests", headers=auth("css_ma"))
    assert rid in [item["id"] for item in listed.json()["items"]]
