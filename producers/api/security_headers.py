"""Security headers on every answer of the api, errors included.

- ``X-Content-Type-Options: nosniff``: a JSON answer is never sniffed into HTML or script.
- ``Referrer-Policy: no-referrer``: no URL of ours (ids in paths) leaks to another site.
- ``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'``: nothing of ours in a frame.
- ``Content-Security-Policy``: JSON answers may load nothing at all; HTML pages (the mandate
  landing page) may style themselves and run no script; the docs pages set their own, narrow
  policy (producers/api/docs.py), which is kept.
- ``Cache-Control: no-store`` on every answer to a keyed request: an organisation's data is
  never kept by a browser or a shared cache.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from producers.api.asgi import HttpMiddleware

#: What no page of ours may do, whatever else it may: be framed, rebase its URLs, post a form.
LOCKED = "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
#: JSON (and any other answer that is not a page): nothing may load or run.
API_POLICY = f"default-src 'none'; {LOCKED}"
#: HTML pages: their own inline ``<style>`` block, no script, nothing from elsewhere.
PAGE_POLICY = f"default-src 'none'; style-src 'unsafe-inline'; {LOCKED}"

COMMON = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class SecurityHeaders(HttpMiddleware):
    """ASGI middleware adding the headers above to each answer's start."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """See ``HttpMiddleware.handle``."""
        keyed = any(name.lower() == b"authorization" for name, _ in scope.get("headers", []))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                for name, value in COMMON.items():
                    headers[name] = value
                if "content-security-policy" not in headers:
                    html = headers.get("content-type", "").startswith("text/html")
                    headers["Content-Security-Policy"] = PAGE_POLICY if html else API_POLICY
                if keyed:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, with_headers)
