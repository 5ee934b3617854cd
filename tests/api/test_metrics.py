"""``GET /metrics``: requests counted by route template and status, timed, no token asked."""

from __future__ import annotations

import uuid

import httpx
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from common.settings import Settings
from tests.support.api import Auth, running

ROUTE = "/v1/requests/{request_id}"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def scrape(api: httpx.AsyncClient) -> tuple[str, dict[tuple[str, frozenset], float]]:
    resp = await api.get("/metrics")  # no Authorization header: Prometheus sends none
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    return resp.text, samples(resp.text)


async def test_a_request_is_counted_under_its_route_template_with_its_status(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    counted = (
        "approvals_http_requests_total",
        frozenset({("route", ROUTE), ("method", "GET"), ("status", "404")}),
    )
    timed = (
        "approvals_http_request_duration_seconds_count",
        frozenset({("route", ROUTE), ("method", "GET")}),
    )
    _, before = await scrape(api)
    unknown = str(uuid.uuid4())

    resp = await api.get(f"/v1/requests/{unknown}", headers=auth("am_li"))
    assert resp.status_code == 404

    text, after = await scrape(api)
    assert after[counted] == before.get(counted, 0) + 1
    assert after[timed] == before.get(timed, 0) + 1
    assert unknown not in text  # never a raw path (an id) in a label


async def test_a_path_no_route_matches_is_counted_as_unmatched(api: httpx.AsyncClient) -> None:
    key = (
        "approvals_http_requests_total",
        frozenset({("route", "unmatched"), ("method", "GET"), ("status", "404")}),
    )
    _, before = await scrape(api)
    assert (await api.get(f"/no/such/{uuid.uuid4()}")).status_code == 404
    _, after = await scrape(api)
    assert after[key] == before.get(key, 0) + 1


async def test_metrics_can_be_turned_off(settings: Settings) -> None:
    quiet = settings.model_copy(update={"api_metrics": False})
    async with running(create_app(quiet)) as client:
        assert (await client.get("/metrics")).status_code == 404
