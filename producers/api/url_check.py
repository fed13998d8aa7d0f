"""URLs with control characters are refused (400) before any route sees them.

No id, path or query parameter of the api holds one, and a NUL reaching PostgreSQL fails the
query ("string literal cannot contain NUL"): without this an id such as ``INV%001`` was a 500 on
PostgreSQL and a 404 on SQLite. A newline or an escape in an id is refused for the same reason
it would be suspicious in a log line.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from starlette.types import ASGIApp, Receive, Scope, Send

from producers.api.errors import error_response

#: C0 controls and DEL.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def control_character(text: str) -> tuple[int, str] | None:
    """The position and ``U+XXXX`` of the first control character in ``text``, if any."""
    found = _CONTROL.search(text)
    return (found.start(), f"U+{ord(found.group()):04X}") if found else None


class UrlCheck:
    """ASGI middleware: 400 in the one shape for a path or query holding a control character,
    naming which and where (the position counts characters of the decoded text)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = unquote(scope.get("query_string", b"").decode("latin-1"), errors="replace")
            for where, text in (("path", str(scope.get("path", ""))), ("query", query)):
                found = control_character(text)
                if found is not None:
                    position, char = found
                    message = f"the URL's {where} holds control character {char} at character {position}"
                    detail = {"field": where, "message": message, "position": position}
                    await error_response(400, "bad_request", message, [detail])(scope, receive, send)
                    return
        await self.app(scope, receive, send)
