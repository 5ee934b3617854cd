"""``/docs`` works offline: Swagger UI's page and assets come from the API itself."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from api.app import create_app
from common.settings import Settings

# Every URL the page names: attributes, and the quoted strings of its inline script.
_URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*'([^']+)'""")


@pytest.fixture
async def docs_client() -> AsyncIterator[httpx.AsyncClient]:
    # The docs need neither the database nor Temporal: no lifespan runs here.
    app = create_app(Settings(APPROVALS_ENV="development"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


async def test_docs_page_names_only_same_origin_urls_and_each_answers(
    docs_client: httpx.AsyncClient,
) -> None:
    page = await docs_client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "http://" not in html and "https://" not in html and "//cdn" not in html, html
    urls = [a or b for a, b in _URL.findall(html)]
    assert "/openapi.json" in urls
    assets = {u for u in urls if u != "/openapi.json"}
    assert assets == {
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui.css",
        "/docs/assets/favicon-32x32.png",
    }
    expected_types = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
    for url in sorted(assets):
        assert url.startswith("/") and not url.startswith("//"), url
        answer = await docs_client.get(url)
        assert answer.status_code == 200, url
        kind = expected_types[url[url.rindex(".") :]]
        assert answer.headers["content-type"].split(";")[0] == kind, url
        assert len(answer.content) > 100, url
    bundle = await docs_client.get("/docs/assets/swagger-ui-bundle.js")
    assert b"SwaggerUIBundle" in bundle.content
    # Swagger UI 5: it renders the OpenAPI 3.1 that FastAPI writes (4.x shows an error).
    assert (await docs_client.get("/openapi.json")).json()["openapi"].startswith("3.1")


async def test_docs_serve_only_the_listed_assets_and_no_redoc(
    docs_client: httpx.AsyncClient,
) -> None:
    for path in (
        "/docs/assets/index.html",
        "/docs/assets/swagger-initializer.js",
        "/docs/assets/..%2F..%2F__init__.py",
        "/docs/assets/swagger-ui-bundle.js.map",
        "/redoc",
        "/docs/oauth2-redirect",
    ):
        answer = await docs_client.get(path)
        assert answer.status_code == 404, path
        assert answer.json()["error"]["code"] == "not_found", path
