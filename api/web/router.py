"""``GET /inbox``: the web inbox page; ``GET /`` sends browsers there.

The page holds no data, so it is served without auth: everything it shows comes
from the v1 API with the bearer token the user pastes in. It is one static file
with inline CSS and JavaScript (no build step, nothing fetched from elsewhere),
served under a Content-Security-Policy that allows exactly its own inline
script and style and API calls to this origin.

Its words, in zh-CN and en, are data of their own (``inbox.i18n.json``), used
through ``inbox.i18n.js`` (which language, and the words in it): the page is
served with both inlined as one more ``<script>``, so the browser still makes one
request and the policy still allows exactly the code served, by hash.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse

router = APIRouter(include_in_schema=False)

PAGE_FILE = "inbox.html"
TEXT_FILE = "inbox.i18n.json"
LANGUAGE_FILE = "inbox.i18n.js"
TEXT_MARKER = "<!-- inbox.i18n: the server puts the dictionary and inbox.i18n.js here -->"
"""Replaced by one script: ``INBOX_TEXT`` (the dictionary), then ``I18N`` (inbox.i18n.js)."""
INBOX_PATH = "/inbox"

_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


@dataclass(frozen=True)
class Page:
    """The page's HTML and the policy that lets exactly its inline code run."""

    html: str
    csp: str


def _digest(code: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(code.encode()).digest()).decode() + "'"


def content_security_policy(html: str) -> str:
    """A CSP that allows the page's own inline ``<script>``/``<style>`` blocks by hash.

    Hashes rather than ``'unsafe-inline'``: text that ever slipped into the DOM
    as markup still could not run. ``form-action 'none'`` keeps a form that is
    submitted before the script runs from putting the token into a URL.
    """
    scripts = [_digest(code) for tag, code in _INLINE.findall(html) if tag == "script"]
    styles = [_digest(code) for tag, code in _INLINE.findall(html) if tag == "style"]
    return "; ".join(
        [
            "default-src 'none'",
            "script-src " + (" ".join(scripts) or "'none'"),
            "style-src " + (" ".join(styles) or "'none'"),
            "connect-src 'self'",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def language_script(dictionary: str, code: str) -> str:
    """The dictionary (JSON text) as ``const INBOX_TEXT``, then ``code``, as one script.

    In the dictionary ``<`` is written as ``\\u003c``, so no text in it can ever close
    the script.
    """
    if "</script" in code.lower():
        raise ValueError(f"{LANGUAGE_FILE} may not contain </script")
    data = json.loads(dictionary)
    literal = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    return f"<script>\nconst INBOX_TEXT = {literal};\n{code}</script>"


def load_page() -> Page:
    """Read the page and its words from the package (on each call: edits show at once)."""
    files = resources.files("api.web")
    html = files.joinpath(PAGE_FILE).read_text(encoding="utf-8")
    dictionary = files.joinpath(TEXT_FILE).read_text(encoding="utf-8")
    code = files.joinpath(LANGUAGE_FILE).read_text(encoding="utf-8")
    html = html.replace(TEXT_MARKER, language_script(dictionary, code), 1)
    return Page(html=html, csp=content_security_policy(html))


@router.get("/", summary="Redirect to the web inbox")
async def root() -> RedirectResponse:
    """Send a browser that opens the API's base URL to the inbox."""
    return RedirectResponse(INBOX_PATH)


@router.get(INBOX_PATH, summary="The web inbox", response_class=HTMLResponse)
def inbox_page() -> HTMLResponse:
    """The page, with headers that keep it self-contained and out of frames."""
    # A plain ``def``: FastAPI runs it in a thread, so the file read never blocks the loop.
    page = load_page()
    return HTMLResponse(
        page.html,
        headers={
            "Content-Security-Policy": page.csp,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY",
            "Cache-Control": "no-cache",
        },
    )
