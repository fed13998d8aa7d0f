"""Who is calling: ``Authorization: Bearer <key>`` to an organisation and a level.

A missing or unknown key is 401; a key without the level an endpoint needs is 403; ids of
another organisation answer 404 in the handlers (never 403), so ids do not leak across tenants.
The key itself is never logged: only its ``key_id``.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from infra.bootstrap import Services, bootstrap
from infra.settings import Settings
from infra.store.api_keys import ApiKey, authenticate
from infra.store.tables_gocardless import gc_payments
from producers.api.errors import ApiError
from schemas.access import Capability, allows

_bearer = HTTPBearer(auto_error=False, description="An API key made with `herald keys create`.")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


class ApiContext:
    """What the handlers share: settings, and the services booted on first use (not at import)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def services(self) -> Services:
        """The process's services (one composition root: ``bootstrap`` builds them once)."""
        return bootstrap(self.settings)


def context(request: Request) -> ApiContext:
    """The app's ``ApiContext`` (set by ``install_operator_api``)."""
    ctx: ApiContext = request.app.state.operator_api
    return ctx


def caller(
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    ctx: ApiContext = Depends(context),
) -> ApiKey:
    """The calling key; 401 when missing, malformed, unknown or revoked."""
    if credentials is None:
        raise ApiError(
            401, "unauthorized", "missing API key: send Authorization: Bearer <key>", headers=_CHALLENGE
        )
    with ctx.services.reading() as conn:
        key = authenticate(conn, credentials.credentials)
    if key is None:
        raise ApiError(401, "unauthorized", "invalid or revoked API key", headers=_CHALLENGE)
    return key


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
