"""The web inbox page: served without auth, self-contained, and calling only the v1 API.

The page is rendered from templates (api/web/templates) and runs ES modules
(api/web/static/inbox); "the page's script" below is all of its modules, fetched
as a browser would: the entry module, then every module it imports.

The page holds no data and needs neither the database nor Temporal, so these
tests drive the app without running its lifespan (nothing connects anywhere).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from importlib import resources

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.web.router import TEXT_FILE
from domain.policy import AddMode, AddPosition, StageMode
from domain.process import EventKind, MilestoneStatus, StageStatus, Status
from tests.support.api import make_settings
from tests.support.pages import IMPORT, Page, fetched

# Never contacted: the lifespan that would connect does not run in these tests.
UNUSED_DATABASE = "postgresql+asyncpg://unused@127.0.0.1:9/unused"
UNUSED_TEMPORAL = "127.0.0.1:9"

# The page names every API call as one "METHOD /v1/path" string literal.
API_CALL = re.compile(r"[\"'`](GET|POST|PUT|PATCH|DELETE) (/v1/[^\"'`\s?]*)[\"'`]")
PLACEHOLDER = re.compile(r"\{[^/{}]+\}")


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(make_settings(UNUSED_DATABASE, UNUSED_TEMPORAL))


@pytest.fixture
async def web(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def _page(web: httpx.AsyncClient) -> tuple[httpx.Response, Page]:
    return await fetched(web, "/inbox")


def _script(page: Page) -> str:
    return "\n".join(page.modules.values())


def _normalised(path: str) -> str:
    return PLACEHOLDER.sub("{}", path)


async def test_inbox_page_is_html_served_without_a_token(web: httpx.AsyncClient) -> None:
    resp, page = await _page(web)
    assert resp.headers["content-type"].startswith("text/html")
    # Sign-in: a labelled token field in a form, and a way to sign out.
    assert page.by_id("signin-form").tag == "form"
    assert page.by_id("token").tag == "input"
    assert page.by_id("signout").tag == "a"
    # The two views are tabs (real buttons), the lists and the detail pane exist.
    for tab, panel in (("tab-inbox", "panel-inbox"), ("tab-mine", "panel-mine")):
        assert page.by_id(tab).tag == "button"
        assert page.by_id(tab).attrs["role"] == "tab"
        assert page.by_id(tab).attrs["aria-controls"] == panel
        assert page.by_id(panel).attrs["role"] == "tabpanel"
    assert page.by_id("inbox-list").tag == "ul"
    assert page.by_id("mine-list").tag == "ul"
    assert page.by_id("detail").tag == "section"
    # The decision buttons and the sessionStorage token are the script's.
    script = _script(page)
    for action in ("approve: {", "return: {", "reject: {"):
        assert action in script
    assert "sessionStorage" in script


async def test_every_form_control_has_a_label_and_clickables_are_buttons(
    web: httpx.AsyncClient,
) -> None:
    _, page = await _page(web)
    labelled = {e.attrs["for"] for e in page.elements if e.tag == "label" and "for" in e.attrs}
    controls = [
        e
        for e in page.elements
        if e.tag in ("select", "textarea")
        or (e.tag == "input" and e.attrs.get("type") not in ("hidden", "submit"))
    ]
    assert controls
    for control in controls:
        assert control.attrs.get("id") in labelled, control.attrs
    for e in page.elements:
        assert not any(name.startswith("on") for name in e.attrs), (e.tag, e.attrs)
        if e.attrs.get("role") in ("button", "tab"):
            assert e.tag == "button", e.attrs
        if e.tag == "a":
            assert e.attrs.get("href"), "a link without href is not keyboard-reachable"
        if e.tag == "button":
            assert e.attrs.get("type") in ("button", "submit"), e.attrs


async def test_inbox_page_loads_nothing_from_another_host(web: httpx.AsyncClient) -> None:
    resp, page = await _page(web)
    html = resp.text
    assert "http://" not in html
    assert "https://" not in html
    for e in page.elements:
        for name in ("src", "href", "action", "srcset", "poster", "data"):
            value = e.attrs.get(name)
            if value is None:
                continue
            assert not value.startswith("//"), (e.tag, name, value)
            assert re.match(r"^(#|/(?!/)|data:|[\w.-]+(/|$))", value) or value == "", (
                e.tag,
                name,
                value,
            )
    # Scripts and stylesheets are this origin's, under the versioned static path; a
    # module imports only its siblings; CSS loads no font, image or other sheet.
    loaded = [*page.modules, *page.stylesheets]
    assert len(page.modules) > 10 and page.stylesheets
    assert all(re.match(r"^/static/[0-9a-f]{12}/[a-z0-9_/-]+\.(js|css)$", url) for url in loaded)
    for text in page.modules.values():
        imports = re.findall(r"^\s*import\b.*$|\bimport\(", text, re.MULTILINE)
        assert len(imports) == len(IMPORT.findall(text)), imports
    css = "".join(page.stylesheets.values())
    assert "@import" not in css
    assert "@font-face" not in css
    assert not re.search(r"url\(", css)


async def test_page_calls_only_v1_endpoints_that_the_api_has(
    web: httpx.AsyncClient, app: FastAPI
) -> None:
    _, page = await _page(web)
    html = _script(page)
    calls = API_CALL.findall(html)
    # Every "/v1/" in the page is one of these literals: none is built another way.
    assert html.count("/v1/") == len(calls)
    paths = {_normalised(p): item for p, item in app.openapi()["paths"].items()}
    for method, path in calls:
        item = paths.get(_normalised(path))
        assert item is not None, f"the page calls {path}, which the API does not have"
        assert method.lower() in item, f"the page calls {method} {path}; the API has {set(item)}"
    assert {(m, _normalised(p)) for m, p in calls} >= {
        ("GET", "/v1/inbox"),
        ("GET", "/v1/requests"),
        ("GET", "/v1/requests/{}"),
        ("POST", "/v1/requests/{}/decisions"),
        ("POST", "/v1/requests/{}/send-back"),
        ("POST", "/v1/requests/{}/approvers"),
        ("POST", "/v1/requests/{}/cc"),
        ("POST", "/v1/requests/{}/revoke"),
    }


async def test_page_writes_data_as_text_never_as_markup(web: httpx.AsyncClient) -> None:
    _, page = await _page(web)
    script = _script(page)
    assert script.strip()
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "createContextualFragment",
    ):
        assert sink not in script, sink


async def test_page_is_served_under_a_csp_that_allows_only_its_own_files(
    web: httpx.AsyncClient,
) -> None:
    resp, page = await _page(web)
    csp: dict[str, str] = {}
    for part in resp.headers["content-security-policy"].split(";"):
        name, _, value = part.strip().partition(" ")
        csp[name] = value
    assert csp["default-src"] == "'self'"
    assert csp["script-src"] == "'self'"
    assert csp["style-src"] == "'self'"
    assert csp["connect-src"] == "'self'"
    assert csp["object-src"] == "'none'"
    assert csp["base-uri"] == "'none'"
    assert csp["frame-ancestors"] == "'none'"
    assert csp["form-action"] == "'none'"
    assert "unsafe" not in resp.headers["content-security-policy"]
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["referrer-policy"] == "no-referrer"
    # Nothing inline for the policy to have to allow.
    assert page.scripts == [] and page.styles == []


async def test_static_files_are_cached_for_good_under_their_version_only(
    web: httpx.AsyncClient,
) -> None:
    _, page = await _page(web)
    url = next(iter(page.modules))
    current = await web.get(url)
    assert current.headers["cache-control"] == "public, max-age=31536000, immutable"
    # A page rendered before an edit names an older version: today's file, not cached.
    older = await web.get(re.sub(r"/static/[0-9a-f]+/", "/static/0123456789ab/", url))
    assert older.status_code == 200 and older.text == current.text
    assert older.headers["cache-control"] == "no-cache"
    for bad in (
        "nope.js",
        "inbox/%2e%2e/%2e%2e/router.py",
        "inbox.i18n.json",
        "templates/base.html",
    ):
        resp = await web.get(url.rsplit("/", 2)[0] + "/" + bad)
        assert resp.status_code == 404, bad
        assert resp.json()["error"]["code"] == "not_found"


async def test_root_redirects_to_the_inbox(web: httpx.AsyncClient) -> None:
    resp = await web.get("/")
    assert resp.status_code in (302, 303, 307)
    assert resp.headers["location"] == "/inbox"
    followed = await web.get("/", follow_redirects=True)
    assert followed.status_code == 200
    assert str(followed.url).endswith("/inbox")


def test_web_pages_stay_out_of_the_api_schema(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    assert "/inbox" not in paths
    assert "/" not in paths


def _keys(tree: dict[str, object], prefix: str = "") -> set[str]:
    keys = set()
    for key, value in tree.items():
        keys.add(prefix + key)
        if isinstance(value, dict):
            keys |= _keys(value, prefix + key + ".")
    return keys


async def test_both_languages_have_every_word_the_page_asks_for(web: httpx.AsyncClient) -> None:
    """The page's words come from one dictionary per language, zh-CN and en, alike."""
    dictionary = json.loads(
        resources.files("api.web").joinpath(TEXT_FILE).read_text(encoding="utf-8")
    )
    assert set(dictionary) == {"en", "zh-CN"}
    assert _keys(dictionary["en"]) == _keys(dictionary["zh-CN"])
    _, page = await _page(web)
    script = _script(page)
    asked = set(re.findall(r"\btn?\(\"([a-z_]+)\"", script))
    asked |= {v for e in page.elements for k, v in e.attrs.items() if k.startswith("data-i18n")}
    # ACTIONS and ROUTE_ACTIONS
    asked |= set(re.findall(r"(?:label|done|failed): \"([a-z_]+)\"", script))
    assert {"app_title", "sign_in", "tab_inbox", "action_approve", "done_reject"} <= asked
    assert {"done_send_back", "add_failed", "done_cc", "revoke_failed", "reason_label"} <= asked
    assert asked <= set(dictionary["en"]), asked - set(dictionary["en"])
    # Every value the API may send has its word (the page shows an unknown one as it is).
    for group, values in (
        ("status", {s.value for s in Status} - {Status.AWAITING.value}),
        ("event", {k.value for k in EventKind}),
        ("stage_status", {s.value for s in StageStatus}),
        ("milestone_status", {s.value for s in MilestoneStatus}),
        ("mode", {m.value for m in StageMode}),
        ("add_position", {p.value for p in AddPosition}),
        ("add_mode", {m.value for m in AddMode}),
    ):
        for lang in dictionary.values():
            assert values <= set(lang[group]), (group, values - set(lang[group]))
    # The dictionary is served as a module of its own (text.js), never as markup.
    [text] = [v for url, v in page.modules.items() if url.endswith("/inbox/text.js")]
    assert text.count("export default {") == 1 and "需要您审批" in text
    assert "export const I18N = " in script
    for lang in dictionary.values():
        assert "<" not in json.dumps(lang, ensure_ascii=False)
