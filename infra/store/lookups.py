"""Small read-only look-ups of a notification's keys (logging context, metrics labels)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Connection

from infra.store.tables import notifications


def event_id_of(conn: Connection, nid: str) -> str | None:
    """The event id a notification was made for."""
    return conn.execute(select(notifications.c.event_id).where(notifications.c.id == nid)).scalar()


def channel_of(conn: Connection, nid: str) -> str | None:
    """The channel (``sms``, ``email``) of a notification."""
    return conn.execute(select(notifications.c.channel).where(notifications.c.id == nid)).scalar()
