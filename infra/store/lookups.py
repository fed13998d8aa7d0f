"""Small read-only look-ups of a notification's keys (logging context, metrics labels)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.engine import Connection

from infra.store.batches import in_chunks, unique
from infra.store.tables import notifications


def event_id_of(conn: Connection, nid: str) -> str | None:
    """The event id a notification was made for."""
    return conn.execute(select(notifications.c.event_id).where(notifications.c.id == nid)).scalar()


def channel_of(conn: Connection, nid: str) -> str | None:
    """The channel (``sms``, ``email``) of a notification."""
    return conn.execute(select(notifications.c.channel).where(notifications.c.id == nid)).scalar()


def channels_of(conn: Connection, nids: Iterable[str]) -> dict[str, str]:
    """``channel_of`` each notification, by id (an unknown one left out), one ``SELECT`` per 500."""
    found: dict[str, str] = {}
    for chunk in in_chunks(unique(nids)):
        rows = conn.execute(
            select(notifications.c.id, notifications.c.channel).where(notifications.c.id.in_(chunk))
        )
        found.update((r.id, r.channel) for r in rows)
    return found
