"""A transactional outbox for Python upstreams.

An upstream writes its invoice and the event about it in one database
transaction, with ``add_event(session, event)``; ``herald outbox relay``
publishes pending rows in order with publisher confirms and marks them sent
only after the confirm. A crash between publish and mark re-publishes; the
event id makes that harmless downstream (nobody is told twice). A row the
contract refuses (stored before a stricter rule, or too large once encoded) is
set aside with its reason in ``rejected``, never published and never blocking
the rows after it.

    from producers.outbox import add_event, create_outbox_table
    create_outbox_table(engine)            # once, in the upstream's database
    with Session(engine) as session, session.begin():
        session.add(invoice)
        add_event(session, event_dict)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from infra.errors import InvalidEvent, PublishError
from producers.publisher import Publisher
from schemas.events import Event
from schemas.validation import event_to_json, parse_event

outbox_metadata = MetaData()

outbox = Table(
    "herald_outbox",
    outbox_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(200), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), index=True),
    #: Why the relay refused the row (it stays, with its payload, for the upstream to look at).
    Column("rejected", String(2000)),
)

logger = logging.getLogger("herald.outbox")


def create_outbox_table(engine: Engine) -> None:
    """Create the outbox table in the upstream's database (idempotent; adds ``rejected`` to a
    table made by an older herald)."""
    outbox_metadata.create_all(engine, tables=[outbox])
    columns = {c["name"] for c in inspect(engine).get_columns(outbox.name)}
    if "rejected" not in columns:
        with engine.begin() as conn:
            conn.execute(text(f"ALTER TABLE {outbox.name} ADD COLUMN rejected VARCHAR(2000)"))


def add_event(session: Session, event: Event | Mapping[str, Any]) -> None:
    """Add an event to the outbox inside the caller's transaction.

    The event is validated now, so a bad one fails the upstream's own
    transaction (``InvalidEvent``) instead of surfacing later in the relay.
    """
    if isinstance(event, Mapping):
        event = parse_event(dict(event))
    session.execute(
        outbox.insert().values(
            event_id=event.event_id, payload=event_to_json(event), created_at=datetime.now(UTC)
        )
    )


def relay_once(engine: Engine, publisher: Publisher, batch: int = 500) -> int:
    """Publish the oldest pending rows (at most ``batch``), in order; returns how many were sent.

    Each row is encoded on its own: one the contract refuses is marked ``rejected`` with the
    reason (logged) and the rows beside it are still published.
    """
    return _relay_batch(engine, publisher, batch)[0]


def _relay_batch(engine: Engine, publisher: Publisher, batch: int) -> tuple[int, int]:
    """``(sent, rows handled)``: a batch of rejected rows only sends nothing yet is progress."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.id, outbox.c.event_id, outbox.c.payload)
            .where(outbox.c.sent_at.is_(None), outbox.c.rejected.is_(None))
            .order_by(outbox.c.id)
            .limit(batch)
        ).all()
    if not rows:
        return 0, 0
    good: list[int] = []
    messages: list[tuple[str, bytes]] = []
    rejected: dict[int, str] = {}
    for row in rows:
        try:
            messages.append(publisher.encode(row.payload))
            good.append(row.id)
        except InvalidEvent as exc:
            rejected[row.id] = str(exc)[:2000]
            logger.error("outbox row rejected", extra={"event_id": row.event_id, "reason": str(exc)})
    publisher.publish_encoded(messages)  # returns only once every one is confirmed
    with engine.begin() as conn:
        if good:
            conn.execute(update(outbox).where(outbox.c.id.in_(good)).values(sent_at=datetime.now(UTC)))
        for row_id, reason in rejected.items():
            conn.execute(update(outbox).where(outbox.c.id == row_id).values(rejected=reason))
    return len(good), len(rows)


def relay(
    database_url: str,
    publisher: Publisher,
    *,
    batch: int = 500,
    poll_seconds: float = 1.0,
    once: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    on_sent: Callable[[int], None] | None = None,
) -> int:
    """Relay until stopped (or until nothing is pending, with ``once``); returns the count sent."""
    engine = create_engine(database_url)
    create_outbox_table(engine)
    sent = 0
    try:
        while not should_stop():
            try:
                count, handled = _relay_batch(engine, publisher, batch)
            except PublishError:
                if once:
                    raise
                time.sleep(poll_seconds)  # the broker is away: the rows stay pending, try again
                continue
            sent += count
            if count and on_sent is not None:
                on_sent(count)
            if not handled:
                if once:
                    break
                time.sleep(poll_seconds)
    finally:
        engine.dispose()
    return sent
