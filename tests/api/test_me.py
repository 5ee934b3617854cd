"""``GET /v1/me``: who the token speaks for."""

import httpx

from tests.support.api import Auth


async def test_me_names_the_caller_and_their_roles(api: httpx.AsyncClient, auth: Auth) -> None:
    resp = await api.get("/v1/me", headers=auth("dsd_liu"))
    assert resp.status_code == 200
    me = resp.json()
    assert (me["id"], me["roles"], me["manager"], me["is_admin"]) == (
        "dsd_liu",
        ["deputy_sales_director"],
        "sd_chen",
        False,
    )
    assert me["name"]
    assert (await api.get("/v1/me")).status_code == 401
