"""The API answers in the caller's language: their preference, else Accept-Language."""

from __future__ import annotations

import httpx

from tests.support.api import Auth

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
