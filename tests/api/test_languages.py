"""The API answers in the caller's language: their preference, else Accept-Language."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support.api import Auth, pending_steps

CONTRACT = {"amount": "250000", "fields": {"contract_no": "C-9", "settlement_floor_price": "1"}}


def titles(r: httpx.Response) -> dict[str, str]:
    return {p["type"]: p["title"] for p in r.json()["items"]}


async def test_request_types_answer_chinese_or_english_by_accept_language(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    # om_wu has saved no language: the header decides.
    zh = await api.get("/v1/policies", headers={**auth("om_wu"), "Accept-Language": "zh-CN"})
    assert titles(zh)["big_customer_contract"] == "大客户合同"
    assert zh.headers["content-language"] == "zh-CN"
    en = await api.get(
        "/v1/policies", headers={**auth("om_wu"), "Accept-Language": "zh;q=0.3, en-GB;q=0.8"}
    )
    assert titles(en)["big_customer_contract"] == "Big-customer contract"
    assert en.headers["content-language"] == "en"
    plain = await api.get("/v1/policies", headers=auth("om_wu"))
    assert plain.headers["content-language"] == "en"


async def test_a_saved_preference_wins_over_accept_language(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    # dsd_liu reads Chinese (org file), am_li English.
    r = await api.get("/v1/policies", headers={**auth("dsd_liu"), "Accept-Language": "en"})
    assert titles(r)["big_customer_contract"] == "大客户合同"
    assert r.headers["content-language"] == "zh-CN"
    r = await api.get("/v1/policies", headers={**auth("am_li"), "Accept-Language": "zh-CN"})
    assert titles(r)["big_customer_contract"] == "Big-customer contract"


async def test_the_preview_names_stages_and_reasons_in_chinese(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    url = "/v1/policies/big_customer_contract/preview"
    zh = await api.post(url, json=CONTRACT, headers={**auth("om_wu"), "Accept-Language": "zh"})
    assert zh.status_code == 200, zh.text
    stages = zh.json()["stages"]
    assert [s["name"] for s in stages] == ["大客户管理部签署", "销售副总监批准"]
    assert stages[1]["reason"].startswith("合同额（元） = 250,000：合同额（元） > 100,000 且")
    en = await api.post(url, json=CONTRACT, headers={**auth("om_wu"), "Accept-Language": "en"})
    assert en.json()["stages"][1]["name"] == "Deputy sales director approves"
    assert en.json()["stages"][1]["reason"].startswith("amount = 250,000: amount > 100,000")


def contract(customer: str) -> dict[str, object]:
    return {
        "type": "big_customer_contract",
        "title": f"Contract with {customer}",
        "customer": customer,
        "amount": "300000",
        "fields": {"contract_no": "C-2026-18", "settlement_floor_price": "90000"},
    }


def zh(auth: Auth, user: str) -> dict[str, str]:
    return {**auth(user), "Accept-Language": "zh-CN"}


def stage_names(view: dict[str, object]) -> list[str]:
    return [s["name"] for s in view["stages"]]  # type: ignore[attr-defined]


ZH_STAGES = ["大客户管理部签署", "销售副总监批准"]
EN_STAGES = ["Big-customer management department signs", "Deputy sales director approves"]


@pytest.mark.usefixtures("worker")
async def test_submit_and_every_action_answer_in_the_callers_language(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    # am_sun and bcd_zheng have saved no language: Accept-Language decides.
    r = await api.post(
        "/v1/requests", json=contract(f"Lang {uuid.uuid4().hex[:6]}"), headers=zh(auth, "am_sun")
    )
    assert r.status_code == 201, r.text
    assert r.headers["content-language"] == "zh-CN"
    view = r.json()
    assert view["type_title"] == "大客户合同"
    assert view["field_labels"]["contract_no"] == "合同编号"
    assert stage_names(view) == ZH_STAGES
    rid = view["id"]
    # An action answered by commands.run_update ...
    r = await api.post(
        f"/v1/requests/{rid}/cc", json={"people": ["om_wu"]}, headers=zh(auth, "am_sun")
    )
    assert r.status_code == 200, r.text
    assert stage_names(r.json()) == ZH_STAGES
    # ... and one answered by attaching.run_update; the same caller in English.
    r = await api.post(
        f"/v1/requests/{rid}/decisions",
        json={"action": "approve", "comment": "ok"},
        headers={**auth("bcd_zheng"), "Accept-Language": "en"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-language"] == "en"
    assert stage_names(r.json()) == EN_STAGES
    assert r.json()["type_title"] == "Big-customer contract"


@pytest.mark.usefixtures("worker")
async def test_the_inbox_names_the_stage_in_the_callers_language(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    r = await api.post(
        "/v1/requests", json=contract(f"Inbox {uuid.uuid4().hex[:6]}"), headers=auth("am_sun")
    )
    assert r.status_code == 201, r.text
    rid = r.json()["id"]

    async def stage_of(headers: dict[str, str]) -> str:
        r = await api.get("/v1/inbox", params={"limit": 200}, headers=headers)
        assert r.status_code == 200, r.text
        return next(i["stage_name"] for i in r.json()["items"] if i["request_id"] == rid)

    assert await stage_of(zh(auth, "bcd_zheng")) == ZH_STAGES[0]
    assert await stage_of({**auth("bcd_zheng"), "Accept-Language": "en"}) == EN_STAGES[0]


@pytest.mark.usefixtures("worker")
async def test_working_time_deadlines_read_in_the_callers_language(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    # A complaint's 4-hour reply counts working time: its span reads 4个工作小时 in Chinese,
    # on the request, in the handler's inbox and in the preview.
    body = {
        "type": "customer_complaint",
        "title": f"Complaint {uuid.uuid4().hex[:6]}",
        "fields": {"category": "staff", "major": False, "description": "courier was rude"},
    }
    r = await api.post("/v1/requests", json=body, headers=zh(auth, "am_sun"))
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert r.json()["working_time"]["reply"]["span"] == "4个工作小时"
    r = await api.get(f"/v1/requests/{rid}", headers={**auth("am_sun"), "Accept-Language": "en"})
    assert r.json()["working_time"]["reply"]["span"] == "4 working hours"
    handler = r.json()["current_approvers"][0]
    items = await pending_steps(api, zh(auth, handler))
    mine = [i for i in items if i["request_id"] == rid]
    assert mine and mine[0]["due_working_time"] == "4个工作小时"
    r = await api.post(
        "/v1/policies/customer_complaint/preview",
        json={"fields": body["fields"]},
        headers=zh(auth, "am_sun"),
    )
    assert r.status_code == 200, r.text
    assert {d["span"] for d in r.json()["deadlines"] if d["working"]} >= {"4个工作小时"}
    r = await api.post(
        "/v1/policies/customer_complaint/preview",
        json={"fields": body["fields"]},
        headers={**auth("am_sun"), "Accept-Language": "en"},
    )
    assert r.status_code == 200, r.text
    assert {d["span"] for d in r.json()["deadlines"] if d["working"]} >= {"4 working hours"}
