"""How Temporal's RPC failures are answered: 503 (retry) only when a retry may help."""

from __future__ import annotations

import pytest
from temporalio.service import RPCError, RPCStatusCode

from api.commands import start_error, update_error

BLOB_TOO_LARGE = RPCError("Blob data size exceeds limit.", RPCStatusCode.INVALID_ARGUMENT, b"")

PERMANENT = [
    RPCStatusCode.INVALID_ARGUMENT,
    RPCStatusCode.FAILED_PRECONDITION,
    RPCStatusCode.PERMISSION_DENIED,
    RPCStatusCode.UNAUTHENTICATED,
    RPCStatusCode.UNIMPLEMENTED,
    RPCStatusCode.ALREADY_EXISTS,
    RPCStatusCode.OUT_OF_RANGE,
    RPCStatusCode.INTERNAL,
]
TRANSIENT = [
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.CANCELLED,
    RPCStatusCode.ABORTED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
]


@pytest.mark.parametrize("mapping", [update_error, start_error])
def test_a_payload_over_temporals_blob_limit_is_413_not_retry(mapping: object) -> None:
    assert callable(mapping)
    error = mapping(BLOB_TOO_LARGE)
    assert (error.status, error.code) == (413, "payload_too_large")
    assert "Retry-After" not in error.headers
    assert "will not help" in error.message


@pytest.mark.parametrize("mapping", [update_error, start_error])
def test_grpcs_message_size_limit_is_413_too(mapping: object) -> None:
    assert callable(mapping)
    exc = RPCError(
        "grpc: received message larger than max (5000000 vs. 4194304)",
        RPCStatusCode.RESOURCE_EXHAUSTED,
        b"",
    )
    assert mapping(exc).status == 413


@pytest.mark.parametrize("status", PERMANENT)
@pytest.mark.parametrize("mapping", [update_error, start_error])
def test_permanent_rpc_failures_are_500_and_say_not_to_retry(
    mapping: object, status: RPCStatusCode
) -> None:
    assert callable(mapping)
    error = mapping(RPCError("refused", status, b""))
    assert (error.status, error.code) == (500, "internal_error")
    assert "Retry-After" not in error.headers
    assert "retrying the same call will not help" in error.message
    assert error.details == {"temporal_status": status.name}


@pytest.mark.parametrize("status", TRANSIENT)
@pytest.mark.parametrize("mapping", [update_error, start_error])
def test_transient_rpc_failures_are_503_with_retry_after(
    mapping: object, status: RPCStatusCode
) -> None:
    assert callable(mapping)
    error = mapping(RPCError("try later", status, b""))
    assert (error.status, error.code) == (503, "unavailable")
    assert error.headers["Retry-After"] == "5"


def test_an_update_to_a_missing_workflow_is_the_closed_request() -> None:
    error = update_error(RPCError("not found", RPCStatusCode.NOT_FOUND, b""))
    assert (error.status, error.code) == (409, "invalid_state")


def test_a_start_in_a_missing_namespace_or_a_lost_connection_is_503() -> None:
    assert start_error(RPCError("no namespace", RPCStatusCode.NOT_FOUND, b"")).status == 503
    assert start_error(RuntimeError("connection lost")).status == 503
