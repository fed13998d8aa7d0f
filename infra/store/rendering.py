"""What the render stage reads of a batch: the columns it renders from, with each one's stored
event, in one ``SELECT`` (whole ``NotificationRow``\\ s cost more to build than the render needs)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection

from infra.store.batches import in_chunks, unique
from infra.store.keys import among
from infra.store.tables import events, notifications


@dataclass(frozen=True, slots=True)
class ToRender:
    """A notification as render sees it: whose, what, on which channel, how far it got, and the
    stored event it is about (``None`` only if that event is gone)."""

    id: str
    org_id: str
    event_id: str
    customer_id: str
    contact_id: str
    kind: str
    channel: str
    locale: str
    status: str
    rendered: bool  # it has a text already (a redelivery keeps the first)
    payload: dict[str, Any] | None


def load_to_render(conn: Connection, ids: Iterable[str]) -> dict[str, ToRender]:
    """These notifications with their stored events, by id; an unknown id is left out. One
    ``SELECT`` per 500."""
    n = notifications.c
    found: dict[str, ToRender] = {}
    for chunk in in_chunks(unique(ids)):
        rows = conn.execute(
            select(
                n.id,
                n.org_id,
                n.event_id,
                n.customer_id,
                n.contact_id,
                n.kind,
                n.channel,
                n.locale,
                n.status,
                n.body.is_not(None).label("rendered"),
                events.c.payload,
            )
            .select_from(notifications)
            .outerjoin(events, and_(events.c.org_id == n.org_id, events.c.event_id == n.event_id))
            .where(among(n.id, chunk))
        )
        for r in rows:
            found[r.id] = ToRender(*r)
    return found
