"""Bad input is refused with 4xx naming the field; nothing is written, nothing started."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support.api import Auth, Db
from tests.support.paths import ROOT

# od_peng submits only here, and only invalid requests, so "nothing written,
# nothing started" can be checked by counting od_peng's rows and workflows.
REQUESTER = "od_peng"


def contract(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "big_customer_contract",
        "title": "Annual supply contract",
        "customer": "ACME Ltd",
        "amount": "250000",
        "fields": {"contract_no": "C-1", "settlement_floor_price": "180000"},
    }
    body.update(over)
    return body


def fields_named(resp: httpx.Response) -> list[str]:
    return [f["field"] for f in resp.json()["error"]["details"].get("fields", [])]


@pytest.fixture
async def nothing_started(db: Db, temporal_local: WorkflowEnvironment) -> AsyncIterator[None]:
    query = f"Requester = '{REQUESTER}'"
    before = await db.count_requests(REQUESTER)
    started = await temporal_local.client.count_workflows(query)
    yield
    assert await db.count_requests(REQUESTER) == before == 0
    assert (await temporal_local.client.count_workflows(query)).count == started.count == 0


async def submit(
    api: httpx.AsyncClient, auth: Auth, body: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await api.post("/v1/requests", json=body, headers={**auth(REQUESTER), **(headers or {})})


async def test_unknown_type_names_type_and_lists_known_types(
    api: httpx.AsyncClient, auth: Auth, nothing_started: None
) -> None:
    resp = await submit(api, auth, contract(type="free_lunch"))
    assert resp.status_code == 422
    err = resp.json()["error"]
    assert err["code"] == "validation_error"
    assert fields_named(resp) == ["type"]
    known = err["details"]["known_types"]
    assert known == sorted(path.stem for path in (ROOT / "policies").glob("*.yaml"))
    assert {"big_customer_contract", "customer_complaint", "overdue_receivable"} <= set(known)
    assert "free_lunch" in err["message"]


async def test_missing_title_and_policy_field_are_each_named(
    api: httpx.AsyncClient, auth: Auth, nothing_started: None
) -> None:
    body = contract(fields={"settlement_floor_price": "1"})
    del body["title"]
    resp = await submit(api, auth, body)
    assert resp.status_code == 422
    assert fields_named(resp) == ["title"]  # the body's own shape is checked first
    resp = await submit(api, auth, contract(fields={"settlement_floor_price": "1"}))
    assert resp.status_code == 422
    assert fields_named(resp) == ["fields.contract_no"]


async def test_every_invalid_policy_field_is_named(
    api: httpx.AsyncClient, auth: Auth, nothing_started: None
) -> None:
    resp = await submit(
        api,
        auth,
        contract(
            type="real_estate_group_purchase",
            amount="5000000",
            fields={"units": "twelve", "project": "", "batch": "B1", "employer": "X", "pets": 1},
        ),
    )
    assert resp.status_code == 422
    assert sorted(fields_named(resp)) == ["fields.pets", "fields.project", "fields.units"]


async def test_missing_required_amount_is_named(
    api: httpx.AsyncClient, auth: Auth, nothing_started: None
) -> None:
    resp = await submit(api, auth, contract(amount=None))
    assert resp.status_code == 422
    assert fields_named(resp) == ["amount"]


@pytest.mark.parametrize(
    "amount",
    ["-1", -0.01, "abc", "12.345", "NaN", "Infinity", True, [1], {"v": 1}, "1e400"],
)
async def test_bad_amounts_are_refused_naming_amount(
    api: httpx.AsyncClient, auth: Auth, nothing_started: None, amount: Any
) -> None:
    resp = await submit(api, auth, contract(amount=amount))
    assert resp.status_code == 422, resp.text
    assert fields_named(resp) == ["amount"]


async def test_huge_strings_are_refused_naming_the_field(
    api: httpx.AsyncClient, auth: Auth, nothing_started: None
) -> None:
    resp = await submit(api, auth, contract(title="x" * 10_000))
    assert resp.status_code == 422
    assert fields_named(resp) == ["title"]
    resp = await submit(
        api, auth, contract(fields={"contract_no": "C" * 5000, "settlement_floor_price": "1"})
    )
    assert resp.status_code == 422
    assert fields_named(resp) == ["fields.contract_no"]
    resp = await submit(api, auth, contract(comment="y" * 4001))
    assert resp.status_code == 422
    assert fields_named(resp) == ["comment"]


async def test_extra_top_level_fields_are_refused(
    api: httpx.AsyncClient, auth: Auth, nothing_started: None
) -> None:
    resp = await submit(api, auth, contract(status="approved"))
    assert resp.status_code == 422
    assert fields_named(resp) == ["status"]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"type": "big_customer_contract",', id="truncated"),
        pytest.param(b"{'a': 1}", id="not-json-syntax"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b'{"title": "caf\xe9"}', id="latin1-inside-json"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested-too-deep"),
    ],
)
async def test_a_body_that_is_not_json_at_all_is_400(
    api: httpx.AsyncClient, auth: Auth, nothing_started: None, raw: bytes
) -> None:
    resp = await api.post(
        "/v1/requests",
        content=raw,
        headers={**auth(REQUESTER), "Content-Type": "application/json"},
    )
    assert resp.status_code == 400, resp.text
    err = resp.json()["error"]
    assert err["code"] == "malformed_json"
    assert "JSON" in err["message"]
    assert fields_named(resp) == ["body"]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_a_body_not_sent_as_json_is_415(
    api: httpx.AsyncClient, auth: Auth, nothing_started: None, content_type: str | None
) -> None:
    headers = auth(REQUESTER)
    if content_type:
        headers["Content-Type"] = content_type
    resp = await api.post("/v1/requests", content=b'{"type": "x"}', headers=headers)
    assert resp.status_code == 415, resp.text
    assert resp.json()["error"]["code"] == "unsupported_media_type"


@pytest.mark.parametrize("body", [[1, 2], "text", 42, None])
async def test_a_body_that_is_not_an_object_is_refused(
    api: httpx.AsyncClient, auth: Auth, nothing_started: None, body: Any
) -> None:
    resp = await submit(api, auth, body)
    assert resp.status_code == 422, resp.text
    assert fields_named(resp) == ["body"]


async def test_bodies_over_one_mebibyte_are_413(
    api: httpx.AsyncClient, auth: Auth, nothing_started: None
) -> None:
    big = contract(comment="z" * (1024 * 1024 + 1))
    resp = await submit(api, auth, big)
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "payload_too_large"


async def test_streamed_bodies_over_one_mebibyte_are_413(
    api: httpx.AsyncClient, auth: Auth, nothing_started: None
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"type": "big_customer_contract", "comment": "'
        for _ in range(17):
            yield b"a" * 65536
        yield b'"}'

    resp = await api.post(
        "/v1/requests",
        content=chunks(),
        headers={**auth(REQUESTER), "Content-Type": "application/json"},
    )
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "payload_too_large"


async def test_overlong_idempotency_key_is_named(
    api: httpx.AsyncClient, auth: Auth, nothing_started: None
) -> None:
    resp = await submit(api, auth, contract(), headers={"Idempotency-Key": "k" * 201})
    assert resp.status_code == 422
    assert fields_named(resp) == ["Idempotency-Key"]


async def test_negative_margin_is_a_rule_violation_and_nothing_starts(
    api: httpx.AsyncClient, auth: Auth, nothing_started: None
) -> None:
    resp = await submit(
        api,
        auth,
        contract(type="retail_bulk_discount", amount="50000", fields={"gross_margin_pct": "-0.5"}),
    )
    assert resp.status_code == 422
    err = resp.json()["error"]
    assert err["code"] == "rule_violation"
    assert err["details"]["rule"] == "negative_margin"
    assert "negative" in err["message"]


async def test_fewer_than_ten_units_is_a_rule_violation(
    api: httpx.AsyncClient, auth: Auth, nothing_started: None
) -> None:
    fields = {"units": 9, "project": "Lakeside", "batch": "2", "employer": "City Hospital"}
    resp = await submit(
        api, auth, contract(type="real_estate_group_purchase", amount="9000000", fields=fields)
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["details"]["rule"] == "minimum_units"


async def test_unknown_routes_and_methods_answer_in_the_error_format(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    resp = await api.get("/v2/nothing", headers=auth(REQUESTER))
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "not_found"
    resp = await api.delete("/v1/policies", headers=auth(REQUESTER))
    assert resp.status_code == 405
    assert resp.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    "request_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "%27%20or%201=1"]
)
async def test_unknown_or_malformed_request_ids_are_404(
    api: httpx.AsyncClient, auth: Auth, request_id: str
) -> None:
    resp = await api.get(f"/v1/requests/{request_id}", headers=auth("admin"))
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "not_found"
    resp = await api.post(
        f"/v1/requests/{request_id}/decisions", json={"action": "approve"}, headers=auth("admin")
    )
    assert resp.status_code == 404


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("cursor=garbage!", "cursor"),
        ("overdue=maybe", "overdue"),
    ],
)
async def test_bad_list_parameters_are_named(
    api: httpx.AsyncClient, auth: Auth, query: str, field: str
) -> None:
    resp = await api.get(f"/v1/requests?{query}", headers=auth(REQUESTER))
    assert resp.status_code == 422
    assert fields_named(resp) == [field]


def _cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


NIL = "00000000-0000-0000-0000-000000000000"


@pytest.mark.parametrize(
    "cursor",
    [
        # Valid ISO dates whose instant lies outside what a datetime holds in UTC.
        pytest.param(_cursor("0001-01-01T00:00:00+14:00", NIL), id="before-year-1-in-utc"),
        pytest.param(_cursor("9999-12-31T23:59:59-14:00", NIL), id="after-year-9999-in-utc"),
        # Ids the service never makes: a NUL, a non-UUID, not a string.
        pytest.param(_cursor("2026-01-01T00:00:00+00:00", "x\u0000y"), id="nul-in-id"),
        pytest.param(_cursor("2026-01-01T00:00:00+00:00", "not-a-uuid"), id="id-not-a-uuid"),
        pytest.param(_cursor("2026-01-01T00:00:00+00:00", 7), id="id-not-a-string"),
        pytest.param(_cursor("2026-01-01T00:00:00", NIL), id="naive-time"),
        pytest.param(_cursor("2026-01-01T00:00:00+00:00", NIL, "x"), id="three-parts"),
        pytest.param(base64.urlsafe_b64encode(b"\xff\xfe").decode(), id="not-utf8"),
    ],
)
async def test_crafted_cursors_are_422_never_500(
    api: httpx.AsyncClient, auth: Auth, cursor: str
) -> None:
    resp = await api.get("/v1/requests", params={"cursor": cursor}, headers=auth(REQUESTER))
    assert resp.status_code == 422, resp.text
    assert fields_named(resp) == ["cursor"]


async def test_action_bodies_are_validated_before_anything_else(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    rid = "00000000-0000-0000-0000-000000000000"
    resp = await api.post(
        f"/v1/requests/{rid}/decisions", json={"action": "maybe"}, headers=auth(REQUESTER)
    )
    assert resp.status_code == 422
    assert fields_named(resp) == ["action"]
    resp = await api.post(
        f"/v1/requests/{rid}/milestones/deposit", json={"amount": "-5"}, headers=auth(REQUESTER)
    )
    assert resp.status_code == 422
    assert fields_named(resp) == ["amount"]


async def test_a_405_allows_every_method_of_the_path(api: httpx.AsyncClient, auth: Auth) -> None:
    resp = await api.delete("/v1/requests", headers=auth(REQUESTER))
    assert resp.status_code == 405
    assert set(resp.headers["Allow"].split(", ")) >= {"GET", "POST"}
    resp = await api.get(
        "/v1/requests/00000000-0000-0000-0000-000000000000/decisions", headers=auth(REQUESTER)
    )
    assert resp.status_code == 405
    assert resp.headers["Allow"] == "POST"
