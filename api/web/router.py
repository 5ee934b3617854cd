"""``GET /inbox``: the web inbox page; ``GET /``: sends browsers there; ``GET /static/...``.

The page holds no data, so it is served without auth: everything it shows comes
from the v1 API with the bearer token the user pastes in. It is server-rendered
from Jinja2 templates (``templates/``: a base layout, the page, one partial per
part of it) and runs plain ES modules (``static/inbox/``: one per concern, no
build step, nothing fetched from elsewhere), under a Content-Security-Policy that
allows only this origin's files: no inline script or style anywhere.

Static files are served under ``/static/<version>/``, where the version is a hash
of all of them: a page always names the files it was rendered with, so they may be
cached for good (``immutable``), and an edit changes every URL at once (relative
imports between modules keep the version). Its words, in zh-CN and en, are data
of their own (``inbox.i18n.json``), served as the module ``inbox/text.js``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined

from api.errors import not_found

router = APIRouter(include_in_schema=False)

TEXT_FILE = "inbox.i18n.json"
TEXT_MODULE = "inbox/text.js"
"""The dictionary (``TEXT_FILE``) as an ES module: ``export default {...};``."""
INBOX_PATH = "/inbox"
STATIC_PREFIX = "/static"

_STATIC_NAME = re.compile(r"^[a-z0-9_-]+(/[a-z0-9_-]+)*\.(js|css)$")
_TYPES = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8"}
IMMUTABLE = "public, max-age=31536000, immutable"


def content_security_policy(form_action: str = "'none'") -> str:
    """The policy of every page: this origin's scripts, styles and API, nothing inline.

    ``form-action 'none'`` (the default) keeps a form that is submitted before the
    script runs from putting the token into a URL; pages with real forms pass ``'self'``.
    """
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            f"form-action {form_action}",
            "frame-ancestors 'none'",
        ]
    )


def page_headers(form_action: str = "'none'") -> dict[str, str]:
    """The headers of every HTML page: its CSP, and no sniffing, referrer or framing."""
    return {
        "Content-Security-Policy": content_security_policy(form_action),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-cache",
    }


def _web() -> Traversable:
    return resources.files("api.web")


def _static_files(folder: Traversable, prefix: str = "") -> dict[str, Traversable]:
    found: dict[str, Traversable] = {}
    for entry in folder.iterdir():
        name = prefix + entry.name
        if entry.is_dir():
            found |= _static_files(entry, name + "/")
        elif _STATIC_NAME.match(name):
            found[name] = entry
    return found


def static_files() -> dict[str, bytes]:
    """Every static file by its name under ``static/``, the dictionary module too.

    Read on each call (a few dozen kilobytes): edits show at once, as the templates' do.
    """
    files = {name: f.read_bytes() for name, f in _static_files(_web().joinpath("static")).items()}
    files[TEXT_MODULE] = text_module(_web().joinpath(TEXT_FILE).read_text(encoding="utf-8"))
    return files


def text_module(dictionary: str) -> bytes:
    """The dictionary (JSON text) as an ES module's default export."""
    data = json.loads(dictionary)
    literal = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (
        f"// {TEXT_FILE}, the inbox's words in zh-CN and en.\nexport default {literal};\n".encode()
    )


def static_version(files: dict[str, bytes]) -> str:
    """A hash of every static file's name and content: part of their URLs."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()[:12]


@cache
def _templates() -> Environment:
    return Environment(
        loader=PackageLoader("api.web", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def static_url_for() -> Callable[[str], str]:
    """``static(name)`` for templates: the file's URL under the current version."""
    files = static_files()
    version = static_version(files)

    def static(name: str) -> str:
        if name not in files:
            raise LookupError(f"no static file {name!r}")
        return f"{STATIC_PREFIX}/{version}/{name}"

    return static


def render_page(
    template: str,
    *,
    form_action: str = "'none'",
    status: int = 200,
    headers: dict[str, str] | None = None,
    **values: object,
) -> HTMLResponse:
    """A page rendered from ``templates/``, with the headers every page has (and ``headers``)."""
    html = _templates().get_template(template).render(static=static_url_for(), **values)
    return HTMLResponse(
        html, status_code=status, headers=page_headers(form_action) | (headers or {})
    )


@router.get("/", summary="Redirect to the web inbox")
async def root() -> RedirectResponse:
    """Send a browser that opens the API's base URL to the inbox."""
    return RedirectResponse(INBOX_PATH)


@router.get(INBOX_PATH, summary="The web inbox", response_class=HTMLResponse)
def inbox_page() -> HTMLResponse:
    """The page, with headers that keep it self-contained and out of frames."""
    # A plain ``def``: FastAPI runs it in a thread, so the file reads never block the loop.
    return render_page("inbox.html", lang="en", styles=["inbox.css"], scripts=["inbox/main.js"])


@router.get(STATIC_PREFIX + "/{version}/{name:path}", summary="A static file of the web pages")
def static_file(version: str, name: str) -> Response:
    """One module or stylesheet; cached for good when ``version`` is the current one.

    Another version (a page rendered before an edit) still gets today's file, but
    not cached, so the next page load asks again.
    """
    files = static_files()
    content = files.get(name) if _STATIC_NAME.match(name) else None
    if content is None:
        raise not_found("file")
    current = version == static_version(files)
    return Response(
        content,
        media_type=_TYPES[name.rsplit(".", 1)[1]],
        headers={
            "Cache-Control": IMMUTABLE if current else "no-cache",
            "X-Content-Type-Options": "nosniff",
        },
    )
