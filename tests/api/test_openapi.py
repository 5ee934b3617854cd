"""The OpenAPI schema describes every endpoint, its errors and the bearer scheme."""

from __future__ import annotations

import httpx

EXPECTED = {
    ("post", "/v1/requests"),
    ("get", "/v1/requests"),
    ("get", "/v1/requests/{request_id}"),
    ("post", "/v1/requests/{request_id}/decisions"),
    ("post", "/v1/requests/{request_id}/resubmit"),
    ("post", "/v1/requests/{request_id}/withdraw"),
    ("post", "/v1/requests/{request_id}/transfer"),
    ("post", "/v1/requests/{request_id}/milestones/{name}"),
    ("post", "/v1/requests/{request_id}/revoke"),
    ("get", "/v1/inbox"),
    ("get", "/v1/notifications"),
    ("post", "/v1/notifications/read-all"),
    ("post", "/v1/notifications/{notification_id}/read"),
    ("get", "/v1/me"),
    ("get", "/v1/me/preferences"),
    ("put", "/v1/me/preferences"),
    ("patch", "/v1/me/preferences"),
    ("get", "/v1/admin/deliveries"),
    ("post", "/v1/admin/deliveries/{delivery_id}/retry"),
    ("get", "/v1/policies"),
    ("get", "/v1/policies/{policy_type}"),
    ("post", "/v1/policies/{policy_type}/preview"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("post", "/v1/requests/{request_id}/send-back"),
    ("post", "/v1/requests/{request_id}/approvers"),
    ("post", "/v1/requests/{request_id}/cc"),
    ("post", "/v1/requests/{request_id}/urge"),
    ("post", "/v1/requests/{request_id}/reassign"),
    ("post", "/v1/decisions/bulk"),
    ("get", "/v1/me/delegations"),
    ("post", "/v1/me/delegations"),
    ("post", "/v1/delegations"),
    ("post", "/v1/delegations/{delegation_id}/end"),
    ("post", "/v1/requests/{request_id}/comments"),
    ("get", "/v1/requests/{request_id}/comments"),
    ("post", "/v1/attachments"),
    ("get", "/v1/attachments/{attachment_id}"),
    ("get", "/v1/reports"),
    ("get", "/v1/reports/sla"),
    ("get", "/v1/reports/sla.csv"),
    ("get", "/v1/reports/sla.xlsx"),
}
FILES = {
    ("get", "/v1/attachments/{attachment_id}"),
    ("get", "/v1/reports/sla.csv"),
    ("get", "/v1/reports/sla.xlsx"),
}
"""Operations that answer a file, not JSON."""


async def test_every_endpoint_is_documented_with_its_errors(api: httpx.AsyncClient) -> None:
    schema = (await api.get("/openapi.json")).json()
    ops = {
        (method, path): op for path, item in schema["paths"].items() for method, op in item.items()
    }
    assert set(ops) == EXPECTED
    assert schema["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schema["components"]["securitySchemes"]["bearer"]["description"],
    }
    error_ref = "#/components/schemas/ErrorResponse"
    for (method, path), op in ops.items():
        assert op.get("summary"), (method, path)
        ok = next(c for c in op["responses"] if c.startswith("2"))
        if (method, path) in FILES:
            assert op["responses"][ok]["content"], (method, path)
        else:
            assert op["responses"][ok]["content"]["application/json"]["schema"], (method, path)
        if path.startswith("/v1/"):
            assert op["security"] == [{"bearer": []}], (method, path)
            content = op["responses"]["401"]["content"]["application/json"]
            assert content["schema"]["$ref"] == error_ref, (method, path)
        if "requestBody" in op:
            # Every way a body can be refused before the handler runs is documented.
            assert {"400", "413", "415", "422"} <= set(op["responses"]), (method, path)
    # FastAPI's own validation-error shape is never advertised: ours replaces it.
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    submit = ops[("post", "/v1/requests")]
    assert {"201", "200", "202", "409", "422", "503"} <= set(submit["responses"])
    params = {p["name"] for p in submit["parameters"]}
    assert "Idempotency-Key" in params
    assert (
        "RequestView" in submit["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    )


def _patterns(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        return found + [p for v in node.values() for p in _patterns(v)]
    if isinstance(node, list):
        return [p for v in node for p in _patterns(v)]
    return []


async def test_the_schema_states_the_inbound_limits_the_server_enforces(
    api: httpx.AsyncClient,
) -> None:
    import jsonschema_rs

    from domain.inbound import ID_PATTERN, PAYLOAD_BUDGET_BYTES, number_pattern

    schema = (await api.get("/openapi.json")).json()
    # Every pattern compiles where the fuzzer validates (Rust regex, ECMA flavour).
    patterns = _patterns(schema)
    assert patterns
    for pattern in patterns:
        jsonschema_rs.validator_for({"type": "string", "pattern": pattern})

    submission = schema["components"]["schemas"]["Submission"]["properties"]
    money = submission["amount"]["anyOf"][0]["anyOf"]
    assert money[0] == {
        "type": "string",
        "maxLength": 20,
        "pattern": number_pattern(integer_digits=16, places=2, negative=False),
    }
    assert money[1] == {
        "type": "number",
        "minimum": 0,
        "exclusiveMaximum": 10**16,
        "multipleOf": 0.01,
    }
    assert submission["title"]["maxLength"] == 200 and "\\x00" in submission["title"]["pattern"]
    assert submission["type"]["pattern"] == ID_PATTERN
    transfer = schema["components"]["schemas"]["TransferBody"]["properties"]
    assert transfer["to_user"]["pattern"] == ID_PATTERN
    listing = {p["name"]: p for p in schema["paths"]["/v1/requests"]["get"]["parameters"]}
    for name in ("status", "type", "requester", "assignee"):
        assert listing[name]["schema"]["anyOf"][0]["pattern"] == ID_PATTERN
    assert str(PAYLOAD_BUDGET_BYTES // 1024) in schema["info"]["description"]


def test_process_internals_stay_out_of_the_public_schema() -> None:
    """The escalation frontier and the split status are the process's own business."""
    from api.app import create_app

    schema = create_app().openapi()["components"]["schemas"]
    slot = schema["SlotView"]["properties"]
    assert "escalation_frontier" not in slot
    assert "awaiting" not in schema["RequestView"]["properties"]
    assert "ProcessState" not in schema and "RequestState" not in schema


def test_statuses_reasons_and_channels_list_their_values() -> None:
    """Clients see every value (the request's status label keeps its JSON: a status, or
    ``awaiting_<milestone>`` while a milestone is open)."""
    from api.app import create_app
    from domain.delivery import Channel, DeliveryStatus
    from domain.process import Status, Via

    schema = create_app().openapi()["components"]["schemas"]
    assert schema["Status"]["enum"] == [s.value for s in Status]
    assert schema["Via"]["enum"] == [v.value for v in Via]
    assert schema["Channel"]["enum"] == [c.value for c in Channel]
    assert schema["DeliveryStatus"]["enum"] == [d.value for d in DeliveryStatus]
    for model in ("RequestView", "RequestSummary", "InboxItem"):
        status = schema[model]["properties"]["status"]["anyOf"]
        assert status[0] == {"$ref": "#/components/schemas/Status"}
        assert status[1]["pattern"].startswith("^awaiting_")
    for model in ("Actor", "InboxItem"):
        via = schema[model]["properties"]["via"]["anyOf"]
        assert via[0] == {"$ref": "#/components/schemas/Via"}
        assert via[1]["pattern"].startswith("^role:")
    delivery = schema["Delivery"]["properties"]
    assert delivery["status"] == {"$ref": "#/components/schemas/DeliveryStatus"}
    assert delivery["channel"] == {"$ref": "#/components/schemas/Channel"}


async def test_the_status_enum_lists_revoked_and_a_revoke_needs_a_reason(
    api: httpx.AsyncClient,
) -> None:
    schemas = (await api.get("/openapi.json")).json()["components"]["schemas"]
    assert "revoked" in schemas["Status"]["enum"]
    body = schemas["RevokeBody"]
    assert body["required"] == ["comment"] and body["properties"]["comment"]["minLength"] == 1
