"""Request body size limit, enforced before a body is parsed (or even read whole)."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.errors import HeraldError
from producers.api.asgi import HttpMiddleware, WatchedSend


def _message(max_bytes: int, size: int | None) -> str:
    said = f"{size} bytes" if size is not None else "over the limit"
    return f"request body is {said}; the limit is {max_bytes} bytes (HERALD_API_MAX_BODY_BYTES)"


class _TooLarge(HeraldError, HTTPException):
    """Raised while the body is read: a framework-edge error, so also an ``HTTPException``, which
    FastAPI passes on as it is (any other exception raised there becomes a 400 "error parsing the
    body") and the error handlers answer in the one shape."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, _message(max_bytes, None))


class BodyLimit(HttpMiddleware):
    """ASGI middleware: a body over ``max_bytes`` is answered 413 in the error shape.

    A ``Content-Length`` over the limit is refused before any of the body is read; a chunked
    body is counted as it arrives and refused as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """See ``HttpMiddleware.handle``."""
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send, int(declared))
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
            return message

        watched = WatchedSend(send)
        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            if watched.started:  # pragma: no cover (handlers read the body before answering)
                raise
            await self._refuse(send, None)

    async def _refuse(self, send: Send, size: int | None) -> None:
        error = {"code": "payload_too_large", "message": _message(self.max_bytes, size), "details": []}
        body = json.dumps({"error": error}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
