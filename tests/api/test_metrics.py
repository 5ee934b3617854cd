"""``GET /metrics``: requests counted by route template and status, timed, no token asked."""

from __future__ import annotations

import uuid
from http import HTTPStatus

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


async def test_a_path_no_route_matches_is_counted_as_other(api: httpx.AsyncClient) -> None:
    key = (
        "approvals_http_requests_total",
        frozenset({("route", "other"), ("method", "GET"), ("status", "404")}),
    )
    _, before = await scrape(api)
    assert (await api.get(f"/no/such/{uuid.uuid4()}")).status_code == 404
    _, after = await scrape(api)
    assert after[key] == before.get(key, 0) + 1


async def test_metrics_can_be_turned_off(settings: Settings) -> None:
    quiet = settings.model_copy(update={"api_metrics": False})
    async with running(create_app(quiet)) as client:
        assert (await client.get("/metrics")).status_code == 404


HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
OURS = ("approvals_http_requests_total", "approvals_http_request_duration_seconds_count")


def templates(routes: list) -> set[str]:
    """The path template of every route of the app, included routers' too."""
    found: set[str] = set()
    for route in routes:
        if isinstance(getattr(route, "path", None), str):
            found.add(route.path)
        if hasattr(route, "original_router"):
            found |= templates(route.original_router.routes)
    return found


def http_series(found: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> set:
    return {key for key in found if key[0] in OURS}


async def invented_requests(api: httpx.AsyncClient, batch: str) -> None:
    """Unauthenticated requests with made-up methods, on made-up and on real paths."""
    for n in range(20):
        method = f"X{batch}{n}"
        for path in (f"/no/such/{batch}/{n}", "/v1/requests", f"/v1/requests/{uuid.uuid4()}"):
            await api.request(method, path)
        await api.get(f"/{batch}-{n}/{uuid.uuid4()}")
        await api.request(method.lower(), "/healthz")


async def test_invented_methods_and_paths_add_no_series_and_every_label_is_from_a_closed_set(
    api: httpx.AsyncClient,
) -> None:
    app = api._transport.app  # type: ignore[attr-defined]
    routes = templates(app.routes) | {"other"}
    methods = HTTP_METHODS | {"other"}
    statuses = {str(code.value) for code in HTTPStatus} | {"other"}

    await invented_requests(api, "a")
    _, first = await scrape(api)
    await invented_requests(api, "b")
    text, second = await scrape(api)

    assert http_series(second) == http_series(first)  # the second batch made none
    for _name, labels in http_series(second):
        values = dict(labels)
        assert values["route"] in routes, values
        assert values["method"] in methods, values
        assert values.get("status", "200") in statuses, values
    assert "Xa0" not in text and "xb1" not in text and "/no/such" not in text
