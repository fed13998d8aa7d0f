"""Who is calling: ``Authorization: Bearer <key>`` to an organisation and a level.

A missing or unknown key is 401; a key without the level an endpoint needs is 403; ids of
another organisation answer 404 in the handlers (never 403), so ids do not leak across tenants.
The key itself is never logged: only its ``key_id``, or the first characters of a herald key.

Each failed authentication is a WARNING line (reason, client address); past
``HERALD_API_AUTH_FAILURES_PER_MINUTE`` from one address, that address is answered 429 with
``Retry-After`` (producers/api/throttle.py says why valid keys wait too).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from infra.bootstrap import Services
from infra.settings import Settings
from infra.store.api_keys import KEY_PREFIX, ApiKey, authenticate, hash_key
from infra.store.tables import api_keys, gc_payments
from producers.api.errors import ApiError
from producers.api.throttle import FailureThrottle
from producers.publisher import SharedPublisher
from schemas.access import Capability
from workers.rules.access import allows

logger = logging.getLogger("herald.api.auth")

_bearer = HTTPBearer(auto_error=False, description="An API key made with `herald keys create`.")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
#: How much of a presented herald key a log line may show: ``hk_`` and 4 characters (24 of its
#: 256 bits), enough for its owner to tell which of their keys it was.
_SHOWN = len(KEY_PREFIX) + 4
#: Shorter "keys" are not herald keys at all; nothing of them is shown.
_KEY_LENGTH = 40


class ApiContext:
    """What the handlers share: settings, the failed-authentication throttle, the services
    booted on first use (not at import), and one publisher for every request (``close()`` it when
    the app stops)."""

    def __init__(self, settings: Settings, services: Callable[[], Services]) -> None:
        self.settings = settings
        self.throttle = FailureThrottle(settings.api_auth_failures_per_minute)
        self._services = services
        self._publisher: SharedPublisher | None = None
        self._lock = threading.Lock()

    @property
    def services(self) -> Services:
        """The app's services (``create_app`` says where they come from)."""
        return self._services()

    @property
    def publisher(self) -> SharedPublisher:
        """The api's one publisher (one RabbitMQ connection, opened on the first publish, kept),
        shared by every request's thread."""
        with self._lock:
            if self._publisher is None:
                self._publisher = SharedPublisher(self.settings)
            return self._publisher

    def close(self) -> None:
        """Close the publisher, if one was made."""
        with self._lock:
            publisher, self._publisher = self._publisher, None
        if publisher is not None:
            publisher.close()


def context(request: Request) -> ApiContext:
    """The app's ``ApiContext`` (set by ``install_operator_api``)."""
    ctx: ApiContext = request.app.state.operator_api
    return ctx


def client_address(request: Request) -> str:
    """The caller's address (uvicorn takes it from ``X-Forwarded-For`` only from trusted proxies)."""
    return request.client.host if request.client else "unknown"


def caller(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    ctx: ApiContext = Depends(context),
) -> ApiKey:
    """The calling key; 401 when missing, malformed, unknown or revoked; 429 while the caller's
    address has failed too often (its key is then not looked at)."""
    client = client_address(request)
    wait = ctx.throttle.retry_after(client)
    if wait is not None:
        raise ApiError(
            429,
            "too_many_requests",
            f"too many failed authentications from this address; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    if credentials is None:
        reason = "missing" if not request.headers.get("Authorization") else "malformed"
        _failed(ctx, client, reason)
        raise ApiError(
            401, "unauthorized", "missing API key: send Authorization: Bearer <key>", headers=_CHALLENGE
        )
    presented = credentials.credentials
    with ctx.services.reading() as conn:
        key = authenticate(conn, presented)
        revoked = _revoked_key_id(conn, presented) if key is None else None
    if key is None:
        if not _herald_shaped(presented):
            _failed(ctx, client, "malformed")
        else:
            shown = {"key_prefix": presented[:_SHOWN], **({"key_id": revoked} if revoked else {})}
            _failed(ctx, client, "revoked" if revoked else "unknown", **shown)
        raise ApiError(401, "unauthorized", "invalid or revoked API key", headers=_CHALLENGE)
    return key


def _herald_shaped(presented: str) -> bool:
    return presented.startswith(KEY_PREFIX) and len(presented) >= _KEY_LENGTH


def _revoked_key_id(conn: Any, presented: str) -> str | None:
    """The ``key_id`` of a revoked key the caller presented (an unknown key has none)."""
    if not _herald_shaped(presented):
        return None
    found = conn.execute(select(api_keys.c.key_id).where(api_keys.c.key_hash == hash_key(presented))).scalar()
    return str(found) if found else None


def _failed(ctx: ApiContext, client: str, reason: str, **shown: str) -> None:
    """Log a failed authentication (never the key) and count it against the client's address."""
    logger.warning("authentication failed: %s", reason, extra={"reason": reason, "client": client, **shown})
    if ctx.throttle.failed(client):
        logger.warning(
            "authentication throttled: %d failures within a minute",
            ctx.throttle.limit,
            extra={"reason": "throttled", "client": client},
        )


def needs(capability: Capability) -> Any:
    """A dependency: the calling key, provided its level allows ``capability`` (else 403)."""

    def check(key: ApiKey = Depends(caller)) -> ApiKey:
        if not allows(key.level, capability):
            raise ApiError(
                403,
                "forbidden",
                f"this needs a key that may {capability.value}; this key's level is {key.level}",
            )
        return key

    return Depends(check)


def revealed(key: ApiKey, reveal: bool) -> bool:
    """Whether to show full numbers and addresses: ``?reveal=true`` from an admin key; anyone
    else asking is refused (403) rather than silently answered masked."""
    if reveal and not allows(key.level, Capability.REVEAL):
        raise ApiError(403, "forbidden", f"reveal=true needs an admin key; this key's level is {key.level}")
    return reveal


def payment_of_caller(
    payment_id: str, key: ApiKey = needs(Capability.SEND), ctx: ApiContext = Depends(context)
) -> ApiKey:
    """Guards ``POST /payments/{payment_id}/cancel``: a send key, and a payment herald knows for
    the key's organisation (another organisation's, or one never synced, is 404).

    Send, not edit: cancelling a collection is a billing transaction, taken by the system that
    publishes invoices (voided invoice, customer paid by other means), like publishing an event;
    edit keys configure the directory and templates and move no money.
    """
    with ctx.services.reading() as conn:
        org = conn.execute(select(gc_payments.c.org_id).where(gc_payments.c.gc_id == payment_id)).scalar()
    if org != key.org_id:
        raise ApiError(404, "not_found", f"no payment {payment_id}")
    return key
