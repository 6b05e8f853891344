"""The API's documentation page: Swagger UI over ``/openapi.json``, served with no CDN.

* ``GET /docs``: an HTML page that loads Swagger UI from this server (the
  ``swagger-ui-bundle`` package's files, never a CDN) and points it at
  ``/openapi.json``.
* ``GET /docs/static/{name}``: one of :data:`STATIC` (a fixed allow-list:
  no path from the request reaches the file system).

The page and the OpenAPI document describe the API and hold no archive
data, so they need no credential (the operations they describe do; "Try it
out" sends the key typed into Swagger UI's *Authorize* dialog). The page's
own ``Content-Security-Policy`` allows scripts and styles from this origin
only (W3C CSP Level 3): ``script-src 'self'`` (the initializer is a file,
not an inline script), ``style-src 'self' 'unsafe-inline'`` (Swagger UI sets
style attributes), ``img-src 'self' data:``, ``connect-src 'self'``,
``frame-ancestors 'none'``. Neither route is in the OpenAPI document.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

from echo_archive.api.deps import ApiContext, Auth

__all__ = ["CSP", "STATIC", "build"]

CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)
"""The documentation page's Content-Security-Policy."""

INIT_JS: Final = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
"""
"""The page's initializer, served as ``/docs/static/echo-init.js``."""

PAGE: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ECHO API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/static/echo-init.js"></script>
</body>
</html>
"""

STATIC: Final[dict[str, str]] = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "echo-init.js": "text/javascript; charset=utf-8",
}
"""The files ``/docs/static/`` serves, and their media types."""

_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _read(name: str) -> bytes:
    if name == "echo-init.js":
        return INIT_JS.encode()
    return (Path(str(swagger_ui_path)) / name).read_bytes()


def build(ctx: ApiContext, auth: Auth) -> APIRouter:
    """The router of ``/docs`` and ``/docs/static/{name}`` (``ctx``, ``auth``: unused)."""
    router = APIRouter(include_in_schema=False)
    cache: dict[str, bytes] = {}

    @router.get("/docs")
    async def docs() -> HTMLResponse:
        """The Swagger UI page (HTML)."""
        return HTMLResponse(PAGE, headers={**_HEADERS, "Cache-Control": "no-cache"})

    @router.get("/docs/static/{name}")
    async def static(name: str) -> Response:
        """One file of :data:`STATIC`; 404 for any other name."""
        media = STATIC.get(name)
        if media is None:
            raise HTTPException(404, detail={"code": "not_found", "message": "no such file"})
        if name not in cache:
            cache[name] = _read(name)
        return Response(
            cache[name],
            media_type=media,
            headers={**_HEADERS, "Cache-Control": "public, max-age=3600"},
        )

    return router
