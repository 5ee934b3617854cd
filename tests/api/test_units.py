"""Fields carry their unit (天, %, 元): the policy shows it, the request view names it in
the reader's language, and the labels no longer carry it."""

from __future__ import annotations

import httpx
import pytest

from tests.support.api import Auth, submit_contract


async def test_the_policy_shows_each_fields_unit_in_both_languages(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    r = await api.get("/v1/policies/special_discount", headers=auth("om_wu"))
    assert r.status_code == 200, r.text
    fields = {f["name"]: f for f in r.json()["fields"]}
    assert fields["discount_pct"]["unit"] == {"en": "%", "zh-CN": "%"}
    assert fields["discount_pct"]["label"] == {"en": "Discount", "zh-CN": "折扣"}
    assert fields["invoice_total"]["unit"] == {"en": "CNY", "zh-CN": "元"}
    r = await api.get("/v1/policies/customer_complaint", headers=auth("om_wu"))
    assert all("unit" not in f for f in r.json()["fields"])  # no unit: left out, as before


async def test_the_preview_reads_chinese_values_with_their_unit(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    body = {"amount": "120", "fields": {"received_amount": "1000", "commission_pct": "12"}}
    r = await api.post(
        "/v1/policies/customer_commission/preview",
        json=body,
        headers={**auth("om_wu"), "Accept-Language": "zh-CN"},
    )
    assert r.status_code == 200, r.text
    reason = r.json()["stages"][0]["reason"]
    assert reason.startswith("佣金比例（占实际收款） = 12%：佣金比例（占实际收款） > 5%"), reason


@pytest.mark.usefixtures("worker")
async def test_the_request_view_names_units_in_the_readers_language(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    rid = await submit_contract(api, auth, "Units")
    zh = await api.get(f"/v1/requests/{rid}", headers={**auth("am_li"), "Accept-Language": "zh"})
    assert zh.status_code == 200, zh.text
    # am_li saved English as their language: the preference wins over the header.
    assert zh.json()["field_units"] == {"settlement_floor_price": "CNY"}
    cn = await api.get(
        f"/v1/requests/{rid}", headers={**auth("bcd_zheng"), "Accept-Language": "zh"}
    )
    assert cn.json()["field_units"] == {"settlement_floor_price": "元"}
    assert cn.json()["field_labels"]["settlement_floor_price"] == "结算底价"
