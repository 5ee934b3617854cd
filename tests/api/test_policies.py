"""The request types, their rules, and the route preview with today's people."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from tests.support.api import Auth, make_settings, running, temporal_target
from tests.support.paths import ROOT
from tests.support.policy_versions import version_of


async def preview(
    api: httpx.AsyncClient, auth: Auth, type_: str, body: dict[str, Any], as_user: str = "am_li"
) -> httpx.Response:
    return await api.post(f"/v1/policies/{type_}/preview", json=body, headers=auth(as_user))


def retail_body(amount: str, margin: str) -> dict[str, Any]:
    return {"amount": amount, "fields": {"gross_margin_pct": margin}}


def contract_body(amount: str) -> dict[str, Any]:
    return {"amount": amount, "fields": {"contract_no": "C-9", "settlement_floor_price": "1"}}


async def test_policies_are_listed_with_type_title_and_version(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    resp = await api.get("/v1/policies", headers=auth("am_li"))
    assert resp.status_code == 200
    items = resp.json()["items"]
    on_disk = sorted(path.stem for path in (ROOT / "policies").glob("*.yaml"))
    assert [(p["type"], p["version"]) for p in items] == [(t, version_of(t)) for t in on_disk]
    titles = {p["type"]: p["title"] for p in items}
    assert titles["big_customer_contract"] == "Big-customer contract"
    assert all(p["description"] for p in items)


async def test_a_policy_is_shown_in_full(api: httpx.AsyncClient, auth: Auth) -> None:
    resp = await api.get("/v1/policies/retail_bulk_discount", headers=auth("am_li"))
    assert resp.status_code == 200
    policy = resp.json()
    assert [r["name"] for r in policy["rules"]] == ["negative_margin", "bulk_minimum"]
    countersign = next(s for s in policy["stages"] if s["key"] == "managers_countersign")
    assert countersign["mode"] == "all"
    assert [a["role"] for a in countersign["approvers"]] == [
        "operations_manager",
        "purchasing_manager",
        "merchant_manager",
    ]
    assert policy["timers"]["reply"] == "PT4H working"
    assert policy["milestones"][0]["name"] == "deposit"
    # The route actions' options, as a file without them behaves (the defaults).
    assert policy["send_back"] == {"allowed": True, "resume": "rerun"}
    assert policy["revoke"] is None


async def test_unknown_policy_is_404(api: httpx.AsyncClient, auth: Auth) -> None:
    resp = await api.get("/v1/policies/free_lunch", headers=auth("am_li"))
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "not_found"
    resp = await preview(api, auth, "free_lunch", {})
    assert resp.status_code == 404


LOW = ["office_manager_sign", "big_customer_dept_approve"]
MID = ["big_customer_dept_sign", "deputy_sales_director_approve"]
HIGH = ["big_customer_dept_sign", "deputy_sales_director_sign", "sales_director_approve"]


# The boundary value belongs to the lower tier (POLICIES.md).
@pytest.mark.parametrize(
    ("amount", "stages", "people"),
    [
        ("1", LOW, [["om_wu", "om_yang"], ["bcd_zheng"]]),
        ("100000", LOW, [["om_wu", "om_yang"], ["bcd_zheng"]]),
        ("100000.01", MID, [["bcd_zheng"], ["dsd_liu"]]),
        ("300000", MID, [["bcd_zheng"], ["dsd_liu"]]),
        ("300000.01", HIGH, [["bcd_zheng"], ["dsd_liu"], ["sd_chen"]]),
    ],
)
async def test_contract_tiers_preview_their_stages_and_people(
    api: httpx.AsyncClient, auth: Auth, amount: str, stages: list[str], people: list[list[str]]
) -> None:
    resp = await preview(api, auth, "big_customer_contract", contract_body(amount))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["policy_type"] == "big_customer_contract"
    assert body["policy_version"] == version_of("big_customer_contract")
    assert [s["key"] for s in body["stages"]] == stages
    assert [s["people"] for s in body["stages"]] == people


async def test_preview_explains_why_each_stage_applies(api: httpx.AsyncClient, auth: Auth) -> None:
    resp = await preview(api, auth, "big_customer_contract", contract_body("100000"))
    first = resp.json()["stages"][0]
    assert first["reason"].startswith("amount = 100,000: amount ≤ 100,000")
    assert first["approvers"] == ["role office_manager"]
    assert first["mode"] == "any"
    # Adding approvers (加签): the stage's rule, here the default (no option in the file).
    assert first["add_approvers"] == {
        "allowed": True,
        "within": "any",
        "positions": ["before", "after", "alongside"],
        "modes": ["all", "any", "in_turn"],
        "max_people": 5,
    }


async def test_preview_never_reaches_the_requester(api: httpx.AsyncClient, auth: Auth) -> None:
    resp = await preview(api, auth, "big_customer_contract", contract_body("5000"), as_user="om_wu")
    assert resp.json()["stages"][0]["people"] == ["om_yang"]


@pytest.mark.parametrize(
    ("margin", "stages"),
    [
        ("0", ["merchant_manager_check", "general_manager_approve"]),
        ("4.99", ["merchant_manager_check", "general_manager_approve"]),
        ("5", ["merchant_manager_check", "deputy_general_manager_approve"]),
        ("8.99", ["merchant_manager_check", "deputy_general_manager_approve"]),
        ("9", ["merchant_manager_check", "managers_countersign"]),
        ("10", ["merchant_manager_check", "managers_countersign"]),
        ("10.01", ["merchant_manager_check"]),
    ],
)
async def test_retail_margin_tiers(
    api: httpx.AsyncClient, auth: Auth, margin: str, stages: list[str]
) -> None:
    resp = await preview(
        api,
        auth,
        "retail_bulk_discount",
        {"amount": "50000", "fields": {"gross_margin_pct": margin}},
    )
    assert resp.status_code == 200, resp.text
    assert [s["key"] for s in resp.json()["stages"]] == stages


async def test_countersign_preview_lists_all_three_managers(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    resp = await preview(
        api,
        auth,
        "retail_bulk_discount",
        {"amount": "50000", "fields": {"gross_margin_pct": "9.5"}},
    )
    stage = resp.json()["stages"][1]
    assert stage["mode"] == "all"
    assert sorted(stage["people"]) == ["mm_hu", "opm_guo", "pm_luo"]


async def test_preview_refuses_rule_violations_and_names_the_rule(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    resp = await preview(api, auth, "retail_bulk_discount", retail_body("50000", "-1"))
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "rule_violation"
    assert resp.json()["error"]["details"]["rule"] == "negative_margin"
    resp = await preview(
        api,
        auth,
        "retail_bulk_discount",
        {"amount": "1999.99", "fields": {"gross_margin_pct": "20"}},
    )
    assert resp.json()["error"]["details"]["rule"] == "bulk_minimum"


async def test_preview_validates_fields_as_submit_does(api: httpx.AsyncClient, auth: Auth) -> None:
    resp = await preview(
        api, auth, "real_estate_group_purchase", {"amount": "x", "fields": {"units": 12}}
    )
    assert resp.status_code == 422
    assert [f["field"] for f in resp.json()["error"]["details"]["fields"]] == ["amount"]
    resp = await preview(
        api, auth, "real_estate_group_purchase", {"amount": "100", "fields": {"units": 12}}
    )
    assert resp.status_code == 422
    assert sorted(f["field"] for f in resp.json()["error"]["details"]["fields"]) == [
        "fields.batch",
        "fields.employer",
        "fields.project",
    ]


async def test_preview_shows_the_deadlines_a_request_would_get_now(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    from datetime import UTC, datetime, timedelta

    before = datetime.now(UTC)
    body = {"fields": {"category": "staff", "major": False, "description": "rude"}}
    resp = await preview(api, auth, "customer_complaint", body, as_user="am_sun")
    assert resp.status_code == 200, resp.text
    deadlines = {d["clock"]: d for d in resp.json()["deadlines"]}
    reply, resolve = deadlines["reply"], deadlines["resolve"]
    assert (reply["span"], reply["working"]) == ("4 working hours", True)
    # 4 working hours never end sooner than 4 hours from now (counted from the start of
    # the minute, as the business calendar counts), nor later than a long holiday
    # (Spring Festival) plus a weekend. Run in working hours, the due is that minute + 4 h.
    minute = before.replace(second=0, microsecond=0)
    assert minute + timedelta(hours=4) <= datetime.fromisoformat(reply["due"])
    assert datetime.fromisoformat(reply["due"]) < before + timedelta(days=12)
    assert (resolve["span"], resolve["working"], resolve["provisional"]) == ("P3D", False, False)
    assert abs(datetime.fromisoformat(resolve["due"]) - (before + timedelta(days=3))) < timedelta(
        minutes=1
    )


async def test_preview_of_a_request_approved_at_once_has_no_deadlines(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    body = {"amount": "5000", "fields": {"received_amount": "100000", "commission_pct": "5"}}
    resp = await preview(api, auth, "customer_commission", body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["stages"] == []
    assert resp.json()["deadlines"] == []


async def test_preview_takes_the_submission_body_as_it_is(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    submission = {
        "type": "big_customer_contract",
        "title": "Preview first, then submit",
        "customer": "ACME Ltd",
        "comment": "the same body for both",
        **contract_body("450000"),
    }
    resp = await preview(api, auth, "big_customer_contract", submission)
    assert resp.status_code == 200, resp.text
    plain = await preview(api, auth, "big_customer_contract", contract_body("450000"))
    assert resp.json()["stages"] == plain.json()["stages"]


async def test_preview_with_another_type_in_the_body_names_type(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    body = {"type": "customer_gift", "title": "t", **contract_body("450000")}
    resp = await preview(api, auth, "big_customer_contract", body)
    assert resp.status_code == 422
    error = resp.json()["error"]
    assert error["code"] == "validation_error"
    assert [f["field"] for f in error["details"]["fields"]] == ["type"]
    assert "big_customer_contract" in error["details"]["fields"][0]["message"]
    # The submission's own checks still apply to what it would carry.
    resp = await preview(api, auth, "big_customer_contract", {"title": "a\x00b"})
    assert resp.status_code == 422
    assert [f["field"] for f in resp.json()["error"]["details"]["fields"]] == ["title"]


async def test_preview_says_where_each_stage_may_send_back_and_that_it_cannot_be_revoked(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    """The shipped policies set neither option: sent back to any stage passed or the
    requester, the route running again from there; never revoked."""
    resp = await preview(api, auth, "big_customer_contract", contract_body("450000"))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["send_back"] == {"allowed": True, "resume": "rerun"}
    assert [s["send_back_to"] for s in body["stages"]] == [
        ["requester"],
        ["requester", "big_customer_dept_sign"],
        ["requester", "big_customer_dept_sign", "deputy_sales_director_sign"],
    ]
    assert body["revoke"] == {"allowed": False, "within": None, "until_payout": False}


@pytest.fixture(scope="module")
async def options_api(
    tmp_path_factory: pytest.TempPathFactory,
    pg_url: str,
    temporal_local: WorkflowEnvironment,
    demo_org: None,
) -> AsyncIterator[httpx.AsyncClient]:
    """An app on a copy of the shipped policies with the route actions' options set: the
    special discount (it pays out) jumps back after a send-back and may be revoked
    within 31 days; the gift may not be sent back."""
    policy_dir = tmp_path_factory.mktemp("route_options") / "policies"
    shutil.copytree(ROOT / "policies", policy_dir)
    options = {
        "special_discount": {"send_back": {"resume": "jump_back"}, "revoke": {"within": "P31D"}},
        "customer_gift": {"send_back": {"allowed": False}},
    }
    for name, extra in options.items():
        path = policy_dir / f"{name}.yaml"
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        path.write_text(yaml.safe_dump(doc | extra, allow_unicode=True), encoding="utf-8")
    settings = make_settings(
        pg_url, temporal_target(temporal_local), APPROVALS_POLICY_DIR=policy_dir
    )
    async with running(create_app(settings)) as client:
        yield client


async def test_preview_shows_a_revoke_window_and_a_jump_back_the_policy_sets(
    options_api: httpx.AsyncClient, auth: Auth
) -> None:
    body = {
        "amount": "3000",
        "fields": {"invoice_total": "60000", "discount_pct": "5", "reason": "year-end volume"},
    }
    resp = await preview(options_api, auth, "special_discount", body)
    assert resp.status_code == 200, resp.text
    shown = resp.json()
    assert shown["send_back"] == {"allowed": True, "resume": "jump_back"}
    assert [s["send_back_to"] for s in shown["stages"]] == [
        ["requester"],
        ["requester", "cs_center_review"],
    ]
    # It pays out after approval: revocable for 31 days, but not once the payout is made.
    assert shown["revoke"] == {"allowed": True, "within": "P31D", "until_payout": True}
    policy = await options_api.get("/v1/policies/special_discount", headers=auth("am_li"))
    assert policy.json()["revoke"] == {"within": "P31D"}
    assert policy.json()["send_back"] == {"allowed": True, "resume": "jump_back"}


async def test_preview_of_a_type_that_may_not_be_sent_back_lists_nowhere_to_send_it(
    options_api: httpx.AsyncClient, auth: Auth
) -> None:
    body = {"amount": "500.01", "fields": {"gift": "Mooncakes, 2 boxes", "reason": "loyal"}}
    resp = await preview(options_api, auth, "customer_gift", body)
    assert resp.status_code == 200, resp.text
    shown = resp.json()
    assert shown["send_back"] == {"allowed": False, "resume": "rerun"}
    assert shown["stages"] and all(s["send_back_to"] == [] for s in shown["stages"])
    assert shown["revoke"] == {"allowed": False, "within": None, "until_payout": False}
