"""``/openapi.json``, ``/docs`` (Swagger UI) and ``/redoc``, exposed as ``HERALD_API_DOCS_EXPOSURE``
says: ``public``, ``key`` (any valid API key; a browser sends none, so the pages then serve tools
that send one, such as a proxy adding the header) or ``off`` (not served: 404).

FastAPI's own docs routes are replaced by these so that each page carries a Content-Security-
Policy it can live with and no more: scripts from jsDelivr (where FastAPI's pages load Swagger UI
and Redoc from) and, for Swagger UI, its one inline start-up script by its SHA-256, never
``'unsafe-inline'`` scripts.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from producers.api.auth import caller
from producers.api.security_headers import LOCKED

Exposure = Literal["public", "key", "off"]

CDN = "https://cdn.jsdelivr.net"
#: FastAPI's pages show its favicon.
FAVICON_HOST = "https://fastapi.tiangolo.com"
OPENAPI_PATH = "/openapi.json"

#: Swagger UI: its bundle and stylesheet from the CDN, the spec and "Try it out" from here, its
#: icons as data: URLs; inline styles (it sets them as it renders).
_SWAGGER_POLICY = (
    "default-src 'none'; script-src {scripts}; style-src " + CDN + " 'unsafe-inline'; "
    "img-src 'self' data: " + FAVICON_HOST + "; connect-src 'self'; " + LOCKED
)
#: Redoc: its bundle from the CDN, fonts from Google, its search in a worker made from a blob.
REDOC_POLICY = (
    f"default-src 'none'; script-src {CDN}; style-src 'unsafe-inline' https://fonts.googleapis.com; "
    f"font-src https://fonts.gstatic.com; img-src 'self' data: {FAVICON_HOST}; worker-src blob:; "
    f"connect-src 'self'; {LOCKED}"
)
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def swagger_policy(page: str) -> str:
    """The policy for a Swagger UI page we generated: the CDN and its inline scripts' hashes."""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(page)
    ]
    return _SWAGGER_POLICY.format(scripts=" ".join([CDN, *hashes]))


def install_docs(app: FastAPI, exposure: Exposure) -> None:
    """Serve the spec and the two docs pages on ``app`` (create it with ``docs_url``,
    ``redoc_url`` and ``openapi_url`` None), or nothing when ``exposure`` is ``off``."""
    if exposure == "off":
        return
    guard = [Depends(caller)] if exposure == "key" else []
    methods = ["GET", "HEAD"]

    @app.api_route(OPENAPI_PATH, methods=methods, include_in_schema=False, dependencies=guard)
    def openapi(request: Request) -> JSONResponse:
        spec: dict[str, Any] = app.openapi()
        root = _root(request)
        if root:  # served under a prefix: "Try it out" must call there
            spec = {**spec, "servers": [{"url": root}, *spec.get("servers", [])]}
        return JSONResponse(spec)

    @app.api_route("/docs", methods=methods, include_in_schema=False, dependencies=guard)
    def swagger(request: Request) -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=_root(request) + OPENAPI_PATH,
            title=f"{app.title} - Swagger UI",
            # Swagger UI would otherwise send the spec's URL to swagger.io's validator.
            swagger_ui_parameters={"validatorUrl": None},
        )
        html = bytes(page.body).decode()
        return HTMLResponse(html, headers={"Content-Security-Policy": swagger_policy(html)})

    @app.api_route("/redoc", methods=methods, include_in_schema=False, dependencies=guard)
    def redoc(request: Request) -> HTMLResponse:
        page = get_redoc_html(openapi_url=_root(request) + OPENAPI_PATH, title=f"{app.title} - ReDoc")
        return HTMLResponse(bytes(page.body).decode(), headers={"Content-Security-Policy": REDOC_POLICY})


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")
