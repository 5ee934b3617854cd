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
    ("get", "/v1/inbox"),
    ("get", "/v1/me"),
    ("get", "/v1/policies"),
    ("get", "/v1/policies/{policy_type}"),
    ("post", "/v1/policies/{policy_type}/preview"),
    ("get", "/healthz"),
    ("get", "/readyz"),
}


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
