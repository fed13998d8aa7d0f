"""Which SMS provider each notification's attempt went to (``notifications.provider``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, update
from sqlalchemy.engine import Connection

from infra.store.tables import notifications
from schemas.notifications import Status


def set_providers(conn: Connection, items: Sequence[tuple[str, str]]) -> None:
    """The provider of each claimed attempt, ``(notification id, provider)``, in one executemany:
    reconciliation asks that provider, and a failover starts from the one after it. Only a
    notification still ``sending`` without an answer is changed."""
    if not items:
        return
    conn.execute(
        update(notifications)
        .where(
            notifications.c.id == bindparam("b_id"),
            notifications.c.status == Status.SENDING,
            notifications.c.provider_id.is_(None),
        )
        .values(provider=bindparam("b_provider")),
        [{"b_id": nid, "b_provider": provider} for nid, provider in items],
    )
