"""A web page as the tests see it: its elements, and the modules and stylesheets it loads."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx


class Element:
    def __init__(self, tag: str, attrs: dict[str, str]) -> None:
        self.tag = tag
        self.attrs = attrs


class Page(HTMLParser):
    """The page's static elements, the text of any inline scripts and styles (there
    should be none), and the scripts and stylesheets it loads (``fetched``)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[Element] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._inside: str | None = None
        self.modules: dict[str, str] = {}  # URL -> text: the entry module and its imports
        self.stylesheets: dict[str, str] = {}  # URL -> text
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append(Element(tag, {k: v or "" for k, v in attrs}))
        if tag == "style" or (tag == "script" and not dict(attrs).get("src")):
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


IMPORT = re.compile(r"^import [^;]*? from \"(\./[a-z0-9_-]+\.js)\";$", re.MULTILINE)


async def _fetch(web: httpx.AsyncClient, url: str, kind: str) -> str:
    resp = await web.get(url)
    assert resp.status_code == 200, (url, resp.text)
    assert resp.headers["content-type"].startswith(kind), (url, resp.headers["content-type"])
    assert resp.headers["x-content-type-options"] == "nosniff"
    return resp.text


async def fetched(web: httpx.AsyncClient, path: str) -> tuple[httpx.Response, Page]:
    """A page, with its modules (followed through their imports) and its stylesheets."""
    resp = await web.get(path)
    assert resp.status_code == 200, resp.text
    page = Page(resp.text)
    todo = [e.attrs["src"] for e in page.elements if e.tag == "script" and "src" in e.attrs]
    while todo:
        url = todo.pop()
        if url in page.modules:
            continue
        page.modules[url] = await _fetch(web, url, "text/javascript")
        base = url.rsplit("/", 1)[0]
        todo += [base + "/" + name[2:] for name in IMPORT.findall(page.modules[url])]
    for e in page.elements:
        if e.tag == "link" and e.attrs.get("rel") == "stylesheet":
            page.stylesheets[e.attrs["href"]] = await _fetch(web, e.attrs["href"], "text/css")
    return resp, page


STRICT = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
}


def assert_strict(headers: httpx.Headers, page: Page) -> None:
    csp = dict(
        part.strip().partition(" ")[::2] for part in headers["content-security-policy"].split(";")
    )
    for name, value in STRICT.items():
        assert csp.get(name) == value, (name, csp.get(name))
    assert "unsafe" not in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    # No inline script or style, no style attribute, no on* handler.
    assert page.scripts == [] and page.styles == []
    for e in page.elements:
        assert "style" not in e.attrs, (e.tag, e.attrs)
        assert not any(name.startswith("on") for name in e.attrs), (e.tag, e.attrs)
        if e.tag == "script":
            assert e.attrs.get("type") == "module" and e.attrs["src"].startswith("/static/")
