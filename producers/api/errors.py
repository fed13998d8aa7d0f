"""One error shape for every answer that is not a success:
``{"error": {"code": "…", "message": "…", "details": […]}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from infra.errors import (
    ConfigurationError,
    Conflict,
    HeraldError,
    IntegrationInactive,
    Invalid,
    NotCancellable,
    NotFound,
    Refused,
    TransientProviderError,
    WebhookRejected,
)
from producers.api.asgi import HttpMiddleware, WatchedSend

logger = logging.getLogger("herald.api")

#: herald's errors answered at the edge, by class: (status, code). The most specific class listed
#: wins (handlers are looked up along the exception's classes); one not listed is a 500.
ANSWERS: dict[type[HeraldError], tuple[int, str]] = {
    # Refused operations.
    Refused: (422, "refused"),
    NotFound: (404, "not_found"),
    Invalid: (422, "invalid"),
    Conflict: (409, "conflict"),
    IntegrationInactive: (409, "integration_disconnected"),
    NotCancellable: (409, "not_cancellable"),
    # Input refused whole.
    WebhookRejected: (400, "bad_request"),
    # What herald needs is away or not set up: 503, so a provider resends later.
    TransientProviderError: (503, "provider_unavailable"),
    ConfigurationError: (503, "not_configured"),
}

#: Codes for statuses raised by FastAPI itself (unknown route, wrong method, ...).
STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(HeraldError):
    """An answer of the API's own (authentication, a malformed request, …) with its status and
    code: raise it from a handler or a dependency. Errors of the operations are answered by
    ``ANSWERS`` instead."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code = status, code
        self.details = details or []
        self.headers = headers


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The JSON answer in the one error shape."""
    body = {"error": {"code": code, "message": message, "details": details or []}}
    return JSONResponse(body, status_code=status, headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    """``body.contacts[0].mobile`` from pydantic's ``("body", "contacts", 0, "mobile")``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def validation_details(errors: list[Any]) -> list[dict[str, str]]:
    """Each problem of a request with the path of its field."""
    details = []
    for item in errors:
        if item.get("type") == "json_invalid":
            message = f"malformed JSON: {item.get('ctx', {}).get('error', item['msg'])}"
            details.append({"field": "body", "message": message, "type": "json_invalid"})
            continue
        details.append({"field": _field(item["loc"]), "message": item["msg"], "type": item["type"]})
    return details


def answer(exc: HeraldError) -> tuple[int, str]:
    """The status and code of ``exc`` in ``ANSWERS`` (its most specific class listed)."""
    for cls in type(exc).__mro__:
        if cls in ANSWERS:
            return ANSWERS[cls]
    raise LookupError(f"{type(exc).__name__} has no answer at the edge")


def install_error_handlers(app: FastAPI) -> None:
    """Answer ``ApiError``, herald's errors in ``ANSWERS``, HTTP errors and request validation in
    the one shape."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    async def _answered(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HeraldError)
        status, code = answer(exc)
        details = exc.details if isinstance(exc, Refused) else []
        return error_response(status, code, exc.message, list(details))

    for error in ANSWERS:
        app.add_exception_handler(error, _answered)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = STATUS_CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc.detail), headers=dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = validation_details(list(exc.errors()))
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
        return error_response(422, "invalid_request", f"invalid request: {summary}", details)


class UnhandledErrors(HttpMiddleware):
    """ASGI middleware: an exception nothing else answered is logged here, once, with its
    traceback (masked by the log formatter), and answered 500 in the one shape, saying nothing
    of what went wrong.

    It does not re-raise: Starlette's outer error middleware would answer in its own shape and
    uvicorn would log the same traceback a second time.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """See ``HttpMiddleware.handle``."""
        watched = WatchedSend(send)
        try:
            await self.app(scope, receive, watched)
        except Exception:
            method, path = scope.get("method", ""), scope.get("path", "")
            logger.exception(
                "unhandled error answering %s %s", method, path, extra={"method": method, "path": path}
            )
            if not watched.started:  # else the client sees the answer cut short; nothing more can be said
                await error_response(500, "internal_error", "internal error")(scope, receive, send)
