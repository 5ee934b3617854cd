"""``/docs``: Swagger UI served from this process, never from a CDN.

FastAPI's own ``/docs`` page loads Swagger UI's script and style from a CDN (and
its icon from fastapi.tiangolo.com), so it is blank on a machine without Internet
access, and every reader's browser tells a third party that it opened our API's
docs. The page here is FastAPI's (``get_swagger_ui_html``, as in FastAPI's "Custom
Docs UI Static Assets (Self-Hosting)"), with its assets taken from the
``swagger-ui-bundle-v2`` package (Swagger UI 5: it renders OpenAPI 3.1, which
FastAPI writes). Only the three files the page needs are served, from a closed
list; ReDoc is not served (``redoc_url=None``): one docs page is enough, and
FastAPI's ReDoc has no package to serve it from.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from starlette.exceptions import HTTPException

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"

# name under ASSETS_PATH -> media type; nothing else of the package is served.
ASSETS: dict[str, str] = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}


def install(app: FastAPI) -> None:
    """Serve ``/docs`` and its assets; ``app`` must be built with ``docs_url=None``."""
    # Imported here, not at the top: nothing is looked up on disk at import time.
    from swagger_ui_bundle import swagger_ui_path

    async def docs_page() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png",
            # Swagger UI would otherwise send the schema's URL to swagger.io's validator.
            swagger_ui_parameters={"validatorUrl": None},
        )

    async def docs_asset(name: str) -> FileResponse:
        media_type = ASSETS.get(name)
        if media_type is None:
            raise HTTPException(status_code=404)
        return FileResponse(
            str(swagger_ui_path / name),
            media_type=media_type,
            headers={"Cache-Control": "public, max-age=86400"},
        )

    app.add_api_route(DOCS_PATH, docs_page, methods=["GET"], include_in_schema=False)
    app.add_api_route(
        f"{ASSETS_PATH}/{{name}}", docs_asset, methods=["GET"], include_in_schema=False
    )
