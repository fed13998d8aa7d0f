"""Integrations (GoCardless, Twilio): connected, disconnected, or deleted (no row).

``integration_active`` is what the collect stage, the webhook receiver and sync consult before
they touch a provider.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.engine import Connection

from infra.settings import Settings
from infra.store.db import insert_ignore
from infra.store.tables import integrations

PROVIDERS = ("gocardless", "twilio", "vonage")


def configured(settings: Settings, provider: str) -> bool:
    """Whether the settings a provider needs are present."""
    if provider == "gocardless":
        return settings.gocardless_access_token is not None
    if provider == "twilio":
        return bool(settings.twilio_account_sid and settings.twilio_auth_token)
    if provider == "vonage":
        return bool(settings.vonage_api_key and settings.vonage_api_secret)
    raise ValueError(f"unknown provider {provider!r}")


_STATUS = select(integrations.c.status).where(integrations.c.provider == bindparam("b_provider"))


def integration_active(conn: Connection, provider: str, settings: Settings) -> bool:
    """Whether herald may act for ``provider`` now.

    Connected → yes; disconnected → no (herald stops all activity for it, links are kept).
    An integration never connected (or deleted) has no row: it counts as active when its settings
    are present (``settings``, the process's), so deployments from before
    ``herald integrations connect`` existed keep working.
    """
    status = conn.execute(_STATUS, {"b_provider": provider}).scalar()
    if status is not None:
        return bool(status == "connected")
    return configured(settings, provider)


def load_integration(conn: Connection, provider: str) -> dict[str, Any] | None:
    """The provider's row, or ``None`` when never connected (or deleted)."""
    row = conn.execute(select(integrations).where(integrations.c.provider == provider)).mappings().first()
    return dict(row) if row is not None else None


def mark_connected(conn: Connection, provider: str, account: str, now: datetime) -> None:
    """Record the provider connected as ``account`` (what the provider said we are)."""
    values = {"status": "connected", "account": account, "connected_at": now, "updated_at": now}
    inserted = conn.execute(insert_ignore(conn, integrations).values(provider=provider, **values))
    if not inserted.rowcount:
        conn.execute(update(integrations).where(integrations.c.provider == provider).values(**values))


def mark_disconnected(conn: Connection, provider: str, now: datetime) -> bool:
    """Record the provider disconnected (a row is made when there was none, so a configured but
    never connected provider can be switched off too). Whether it was active before."""
    before = load_integration(conn, provider)
    values = {"status": "disconnected", "updated_at": now}
    if before is None:
        conn.execute(insert_ignore(conn, integrations).values(provider=provider, **values))
    else:
        conn.execute(update(integrations).where(integrations.c.provider == provider).values(**values))
    return before is None or before["status"] == "connected"


def delete_integration(conn: Connection, provider: str) -> bool:
    """Remove the provider's row; whether there was one."""
    return bool(conn.execute(delete(integrations).where(integrations.c.provider == provider)).rowcount)
