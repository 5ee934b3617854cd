"""A hostile client's findings, each reproduced through the API on the real stack.

Control characters (NUL above all) and lone surrogates in any text, ids that are
not ids, numbers in exponent or locale notation, zero contracts and payloads too
big for Temporal: each is a 4xx naming the field, never a 500, never a request
frozen in ``record_transition``, never anything sent to Temporal.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from common.settings import Settings
from domain.constants import Signals, Updates, workflow_id
from domain.inbound import PAYLOAD_BUDGET_BYTES
from domain.process import DecideInput, RequestView
from tests.support.api import Auth, Db, make_settings, running, temporal_target

pytestmark = pytest.mark.usefixtures("worker")

NUL = "\u0000"


def unique(name: str) -> str:
    return f"{name} {uuid.uuid4().hex[:8]}"


def contract(customer: str, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "big_customer_contract",
        "title": "Annual supply contract",
        "customer": customer,
        "amount": "250000",
        "fields": {"contract_no": "C-1", "settlement_floor_price": "180000", "documents": "all"},
        "comment": "renewal",
    }
    body.update(over)
    return body


GROUP_FIELDS = {"units": 12, "project": "Lakeside", "batch": "2", "employer": "City Hospital"}


def group_purchase(customer: str, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "real_estate_group_purchase",
        "title": "Group purchase",
        "customer": customer,
        "amount": "5000000",
        "fields": dict(GROUP_FIELDS),
    }
    body.update(over)
    return body


async def post(
    api: httpx.AsyncClient, auth: Auth, user: str, path: str, body: Any
) -> httpx.Response:
    # ensure_ascii: a lone surrogate travels as the JSON escape "\ud800", as a
    # hostile client would send it (it has no UTF-8 form).
    return await api.post(
        path,
        content=json.dumps(body, ensure_ascii=True).encode(),
        headers={**auth(user), "Content-Type": "application/json"},
    )


def named(resp: httpx.Response) -> list[str]:
    """The fields a 422 names, after checking it is one, in the error format."""
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "validation_error"
    assert error["message"]
    return [f["field"] for f in error["details"]["fields"]]


def with_value(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    body = json.loads(json.dumps(body))
    target = body
    *parents, last = path.split(".")
    for key in parents:
        target = target[key]
    target[last] = value
    return body


# --- submissions -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["title", "customer", "comment", "fields.contract_no", "fields.documents"]
)
@pytest.mark.parametrize("bad", [f"a{NUL}b", "\ud800", "a\x85b", "a\x1bb"])
async def test_a_control_character_or_surrogate_in_any_submitted_text_is_named(
    api: httpx.AsyncClient, auth: Auth, db: Db, path: str, bad: str
) -> None:
    customer = unique("Hostile text")
    body = with_value(contract(customer), path, bad)
    resp = await post(api, auth, "am_li", "/v1/requests", body)
    assert named(resp) == [path]
    assert await db.count_for_customer(customer) == 0


@pytest.mark.parametrize("path", ["title", "comment", "fields.contract_no"])
@pytest.mark.parametrize("bad", [f"a{NUL}b", "\ud800", "a\x85b"])
async def test_a_control_character_or_surrogate_in_a_previewed_body_is_named(
    api: httpx.AsyncClient, auth: Auth, path: str, bad: str
) -> None:
    """The preview takes the submission body as it is, and checks it as a submission."""
    body = with_value(contract(unique("Hostile preview")), path, bad)
    resp = await post(api, auth, "am_li", "/v1/policies/big_customer_contract/preview", body)
    assert named(resp) == [path]


async def test_a_newline_is_refused_in_one_line_text_but_kept_in_comments(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    resp = await post(
        api, auth, "am_li", "/v1/requests", contract(unique("Lines"), title="two\nlines")
    )
    assert named(resp) == ["title"]
    resp = await post(
        api,
        auth,
        "am_li",
        "/v1/policies/big_customer_contract/preview",
        {"amount": "1", "fields": {"contract_no": "a\tb", "settlement_floor_price": "1"}},
    )
    assert named(resp) == ["fields.contract_no"]


@pytest.mark.parametrize("param", ["status", "type", "requester", "assignee", "customer"])
async def test_a_nul_in_a_list_filter_is_named(
    api: httpx.AsyncClient, auth: Auth, param: str
) -> None:
    resp = await api.get("/v1/requests", params={param: f"x{NUL}"}, headers=auth("am_li"))
    assert named(resp) == [param]


async def test_a_forged_cursor_with_a_nul_id_is_named(api: httpx.AsyncClient, auth: Auth) -> None:
    raw = json.dumps(["2026-01-01T00:00:00+00:00", f"x{NUL}"]).encode()
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    resp = await api.get("/v1/requests", params={"cursor": cursor}, headers=auth("am_li"))
    assert named(resp) == ["cursor"]


@pytest.mark.parametrize("sub", [f"am_li{NUL}", "am li", "\ud800", "", "-am_li"])
async def test_a_token_whose_subject_is_not_an_id_is_401(
    api: httpx.AsyncClient, settings: Settings, sub: str
) -> None:
    token = jwt.encode({"sub": sub, "exp": time.time() + 600}, settings.token_secret, "HS256")
    resp = await api.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401, resp.text
    assert resp.json()["error"]["code"] == "unauthenticated"


async def test_path_ids_are_ids(api: httpx.AsyncClient, auth: Auth) -> None:
    rid = str(uuid.uuid4())
    resp = await post(
        api, auth, "am_li", f"/v1/requests/{rid}/milestones/dep%00osit", {"amount": "1"}
    )
    assert named(resp) == ["name"]
    resp = await api.get("/v1/policies/big%00customer", headers=auth("am_li"))
    assert named(resp) == ["policy_type"]
    # A malformed request id is answered like an unknown one.
    resp = await api.get("/v1/requests/x%00y", headers=auth("am_li"))
    assert resp.status_code == 404


# --- numbers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount", ["1_000", " 1 ", "\u0661\u0662\u0663", "1e-1000000", "1E+5", "1e400", 10**28]
)
async def test_money_is_a_plain_ascii_decimal(
    api: httpx.AsyncClient, auth: Auth, db: Db, amount: Any
) -> None:
    customer = unique("Money")
    resp = await post(api, auth, "am_li", "/v1/requests", contract(customer, amount=amount))
    assert named(resp) == ["amount"]
    assert await db.count_for_customer(customer) == 0


async def test_a_huge_exponent_on_preview_is_refused_at_once(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    started = time.monotonic()
    resp = await post(
        api,
        auth,
        "am_li",
        "/v1/policies/big_customer_contract/preview",
        {"amount": "1", "fields": {"contract_no": "C", "settlement_floor_price": "1e-100000000"}},
    )
    assert named(resp) == ["fields.settlement_floor_price"]
    resp = await post(
        api, auth, "am_li", "/v1/policies/big_customer_contract/preview", {"amount": "1e-100000000"}
    )
    assert named(resp) == ["amount"]
    assert time.monotonic() - started < 5  # it used to build a 100-million-digit string


@pytest.mark.parametrize("units", ["1e28", "1e30", 1e28, 10**28, "12.5", "1" * 900_000])
async def test_integer_fields_out_of_budget_are_named_not_500(
    api: httpx.AsyncClient, auth: Auth, units: Any
) -> None:
    body = group_purchase(unique("Units"))
    body["fields"]["units"] = units
    resp = await post(api, auth, "am_li", "/v1/requests", body)
    assert named(resp) == ["fields.units"]


@pytest.mark.parametrize(
    ("type_", "body"),
    [
        ("big_customer_contract", contract("Zero", amount="0")),
        ("big_customer_contract", contract("Zero", amount="0.00")),
        ("big_customer_contract", contract("Zero", amount=0)),
        ("big_customer_contract", contract("Zero", amount="-0")),
        ("real_estate_group_purchase", group_purchase("Zero", amount="0")),
        (
            "customer_gift",
            {
                "type": "customer_gift",
                "title": "Gift",
                "amount": "0",
                "fields": {"gift": "tea", "reason": "loyal"},
            },
        ),
    ],
)
async def test_a_zero_contract_order_or_gift_is_refused_naming_amount(
    api: httpx.AsyncClient, auth: Auth, type_: str, body: dict[str, Any]
) -> None:
    assert body["type"] == type_
    resp = await post(api, auth, "am_li", "/v1/requests", body)
    assert named(resp) == ["amount"]
    assert "more than 0" in resp.json()["error"]["message"]


async def test_minus_zero_is_zero(api: httpx.AsyncClient, auth: Auth) -> None:
    body = {
        "type": "agreement_change",
        "title": "Payment terms",
        "customer": unique("Minus zero"),
        "amount": "-0",
        "fields": {"agreement_no": "A-1", "changes": "45 days"},
    }
    resp = await post(api, auth, "am_li", "/v1/requests", body)
    assert resp.status_code == 201, resp.text
    assert resp.json()["amount"] == "0.00"


# --- actions on a running request ----------------------------------------------------


async def test_hostile_actions_are_refused_and_the_request_keeps_working(
    api: httpx.AsyncClient, auth: Auth, db: Db
) -> None:
    resp = await post(api, auth, "am_li", "/v1/requests", group_purchase(unique("Actions")))
    assert resp.status_code == 201, resp.text
    rid = resp.json()["id"]
    base = f"/v1/requests/{rid}"

    # Each is refused before it reaches the workflow.
    bad_comment = {"comment": f"ok{NUL}"}
    refused = [
        ("sh_zhou", "decisions", {"action": "approve", **bad_comment}, "comment"),
        ("sh_zhou", "transfer", {"to_user": f"sd_chen{NUL}"}, "to_user"),
        ("sh_zhou", "transfer", {"to_user": "sd_chen", **bad_comment}, "comment"),
        ("am_li", "withdraw", bad_comment, "comment"),
        ("am_li", "milestones/deposit", {"amount": "1", "reference": f"r{NUL}"}, "reference"),
        ("am_li", "milestones/deposit", {"amount": "1e-1000000"}, "amount"),
    ]
    for user, action, body, field in refused:
        assert named(await post(api, auth, user, f"{base}/{action}", body)) == [field], action

    # The request is not frozen: a real decision goes through, then a return.
    resp = await post(api, auth, "sh_zhou", f"{base}/decisions", {"action": "return"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "returned"

    # Resubmissions: the body is checked by the API, the fields by the workflow's
    # update validator (against the request's own policy snapshot).
    assert named(await post(api, auth, "am_li", f"{base}/resubmit", bad_comment)) == ["comment"]
    for units in ("1e30", 1e30, 10**28, "1_0"):
        fields = {**GROUP_FIELDS, "units": units}
        resp = await post(api, auth, "am_li", f"{base}/resubmit", {"fields": fields})
        assert named(resp) == ["fields.units"], units
    resp = await post(
        api,
        auth,
        "am_li",
        f"{base}/resubmit",
        {"fields": {**GROUP_FIELDS, "project": f"Lake{NUL}side"}},
    )
    assert named(resp) == ["fields.project"]
    resp = await post(api, auth, "am_li", f"{base}/resubmit", {"amount": "0"})
    assert named(resp) == ["amount"]

    resp = await post(
        api, auth, "am_li", f"{base}/resubmit", {"fields": {**GROUP_FIELDS, "units": 14}}
    )
    assert resp.status_code == 200, resp.text
    assert (resp.json()["status"], resp.json()["fields"]["units"]) == ("in_review", 14)
    resp = await post(api, auth, "sh_zhou", f"{base}/decisions", {"action": "approve"})
    assert resp.status_code == 200, resp.text
    assert "ignored" not in await db.event_kinds(rid)


# --- the payload budget ----------------------------------------------------------------

BULKY_POLICY = """\
type: bulky_note
version: 1
title: Bulky note
amount: {required: false}
fields:
  - {name: note, type: text, label: Note, max_length: 100000}
stages:
  - key: head
    name: Sales department head reads it
    approvers: [{role: sales_head}]
"""


async def test_a_submission_over_the_payload_budget_is_413_and_never_started(
    tmp_path: Path, pg_url: str, temporal_local: WorkflowEnvironment, auth: Auth, db: Db
) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "bulky_note.yaml").write_text(BULKY_POLICY, encoding="utf-8")
    settings = make_settings(pg_url, temporal_target(temporal_local), APPROVALS_POLICY_DIR=policies)
    customer = unique("Bulky")
    # 100,000 three-byte characters: under the 1 MiB body limit as JSON escapes,
    # over the budget once serialized as UTF-8.
    body = {
        "type": "bulky_note",
        "title": "Bulky",
        "customer": customer,
        "fields": {"note": "中" * 100_000},
    }
    async with running(create_app(settings)) as api:
        resp = await post(api, auth, "am_li", "/v1/requests", body)
    assert resp.status_code == 413, resp.text
    error = resp.json()["error"]
    assert error["code"] == "payload_too_large"
    assert error["details"]["limit_bytes"] == PAYLOAD_BUDGET_BYTES
    assert error["details"]["size_bytes"] > PAYLOAD_BUDGET_BYTES
    assert await db.count_for_customer(customer) == 0
    query = f"CustomerId = '{customer}'"
    assert (await temporal_local.client.count_workflows(query)).count == 0


async def test_a_malformed_payload_sent_straight_to_temporal_freezes_nothing(
    api: httpx.AsyncClient, auth: Auth, db: Db, temporal_local: WorkflowEnvironment
) -> None:
    resp = await post(api, auth, "am_li", "/v1/requests", contract(unique("Straight")))
    assert resp.status_code == 201, resp.text
    rid = resp.json()["id"]
    handle = temporal_local.client.get_workflow_handle(workflow_id(rid))
    # model_construct skips validation, as a client in another language would.
    bad = DecideInput.model_construct(actor="bcd_zheng", action="approve", comment=f"x{NUL}")

    # An update is rejected when the worker decodes it...
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(Updates.DECIDE, bad, result_type=RequestView)
    # ...and a signal is recorded as ignored, naming no one and quoting nothing of it:
    # the workflow task does not fail.
    await handle.signal(Signals.DECIDE, bad)

    resp = await post(
        api, auth, "bcd_zheng", f"/v1/requests/{rid}/decisions", {"action": "approve"}
    )
    assert resp.status_code == 200, resp.text
    view = resp.json()
    assert view["stage_index"] == 1
    kinds = await db.event_kinds(rid)
    assert kinds.count("approved") == 1 and kinds.count("ignored") == 1
    (ignored,) = [e for e in view["history"] if e["kind"] == "ignored"]
    assert ignored["actor"] == "(unreadable)" and ignored["comment"] is None
    assert ignored["data"]["reason"] == "comment: invalid_input"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"contract_no": "\ud800"}, "fields.contract_no"),
        ({"contract_no": ["ok", {"deep": "\udfff"}]}, "fields.contract_no"),
        ({"a\ud800": "x"}, "fields"),
        ({"not an id": "x"}, "fields"),
    ],
)
@pytest.mark.parametrize("action", ["resubmit", "preview", "submit"])
async def test_field_values_that_could_not_be_carried_are_named(
    api: httpx.AsyncClient, auth: Auth, fields: dict[str, Any], field: str, action: str
) -> None:
    # A resubmission's fields go to the workflow as they are: a lone surrogate
    # there could not even be serialized (it was a 500).
    path = {
        "resubmit": f"/v1/requests/{uuid.uuid4()}/resubmit",
        "preview": "/v1/policies/big_customer_contract/preview",
        "submit": "/v1/requests",
    }[action]
    body = contract("Fields", fields=fields) if action == "submit" else {"fields": fields}
    resp = await post(api, auth, "am_li", path, body)
    # A key that is not an id is named as pydantic names keys: "fields.<key>.[key]".
    assert len(named(resp)) == 1 and named(resp)[0].startswith(field), resp.text
