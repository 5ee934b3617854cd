"""The web inbox page: served without auth, self-contained, and calling only the v1 API.

The page holds no data and needs neither the database nor Temporal, so these
tests drive the app without running its lifespan (nothing connects anywhere).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from importlib import resources

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.web.router import TEXT_FILE
from domain.policy import AddMode, AddPosition, StageMode
from domain.process import EventKind, MilestoneStatus, StageStatus, Status
from tests.support.api import make_settings

# Never contacted: the lifespan that would connect does not run in these tests.
UNUSED_DATABASE = "postgresql+asyncpg://unused@127.0.0.1:9/unused"
UNUSED_TEMPORAL = "127.0.0.1:9"

# The page names every API call as one "METHOD /v1/path" string literal.
API_CALL = re.compile(r"[\"'`](GET|POST|PUT|PATCH|DELETE) (/v1/[^\"'`\s?]*)[\"'`]")
PLACEHOLDER = re.compile(r"\{[^/{}]+\}")


class Element:
    def __init__(self, tag: str, attrs: dict[str, str]) -> None:
        self.tag = tag
        self.attrs = attrs


class Page(HTMLParser):
    """The page's static elements, and the text of its inline scripts and styles."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[Element] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._inside: str | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append(Element(tag, {k: v or "" for k, v in attrs}))
        if tag in ("script", "style"):
            self._inside = tag
            (self.scripts if tag == "script" else self.styles).append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._inside:
            self._inside = None

    def handle_data(self, data: str) -> None:
        if self._inside == "script":
            self.scripts[-1] += data
        elif self._inside == "style":
            self.styles[-1] += data

    def by_id(self, element_id: str) -> Element:
        found = [e for e in self.elements if e.attrs.get("id") == element_id]
        assert len(found) == 1, f"expected one element with id {element_id!r}, found {len(found)}"
        return found[0]


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(make_settings(UNUSED_DATABASE, UNUSED_TEMPORAL))


@pytest.fixture
async def web(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def _page(web: httpx.AsyncClient) -> tuple[httpx.Response, Page]:
    resp = await web.get("/inbox")
    assert resp.status_code == 200, resp.text
    return resp, Page(resp.text)


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
    script = "".join(page.scripts)
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
    # Everything is inline: no external script, stylesheet, font or import.
    assert not [e for e in page.elements if e.tag == "script" and "src" in e.attrs]
    assert not [e for e in page.elements if e.tag == "link" and e.attrs.get("rel") == "stylesheet"]
    css = "".join(page.styles)
    assert "@import" not in css
    assert "@font-face" not in css
    assert not re.search(r"url\(", css)


async def test_page_calls_only_v1_endpoints_that_the_api_has(
    web: httpx.AsyncClient, app: FastAPI
) -> None:
    resp, _ = await _page(web)
    html = resp.text
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
    script = "".join(page.scripts)
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


async def test_page_is_served_under_a_csp_that_allows_exactly_its_inline_code(
    web: httpx.AsyncClient,
) -> None:
    resp, page = await _page(web)
    csp: dict[str, str] = {}
    for part in resp.headers["content-security-policy"].split(";"):
        name, _, value = part.strip().partition(" ")
        csp[name] = value

    def digest(code: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(code.encode()).digest()).decode() + "'"

    assert csp["default-src"] == "'none'"
    assert csp["connect-src"] == "'self'"
    assert csp["script-src"].split() == [digest(s) for s in page.scripts]
    assert csp["style-src"].split() == [digest(s) for s in page.styles]
    assert "unsafe" not in resp.headers["content-security-policy"]
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["referrer-policy"] == "no-referrer"


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
    resp, page = await _page(web)
    html = resp.text
    script = "".join(page.scripts)
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
    # The dictionary is served inside the page (one response, allowed by hash), never as markup.
    assert "const INBOX_TEXT = " in html and "const I18N = " in html and "需要您审批" in html
    assert "<!-- inbox.i18n" not in html
    for lang in dictionary.values():
        assert "<" not in json.dumps(lang, ensure_ascii=False)
