"""What the render stage reads of a batch: the columns it renders from, with each one's stored
event and the names it greets with, in one ``SELECT`` (whole ``NotificationRow``\\ s, and a
statement for each table, cost more than the render needs)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection

from infra.store.batches import in_chunks, unique
from infra.store.keys import IDS, ids_where
from infra.store.tables import contacts, customers, events, notifications, organisations
from schemas.rows import GreetingNames


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
    names: GreetingNames  # as ``infra.store.templates.greeting_names`` gives them


n = notifications.c
org, customer, contact = organisations.c, customers.c, contacts.c
_TO_RENDER = (
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
        org.name.label("org_name"),
        org.default_locale,
        customer.name.label("customer_name"),
        contact.name.label("contact_name"),
    )
    .select_from(notifications)
    .outerjoin(events, and_(events.c.org_id == n.org_id, events.c.event_id == n.event_id))
    .outerjoin(organisations, org.org_id == n.org_id)
    .outerjoin(customers, and_(customer.org_id == n.org_id, customer.customer_id == n.customer_id))
    .outerjoin(contacts, and_(contact.org_id == n.org_id, contact.contact_id == n.contact_id))
    .where(ids_where(n.id))
)


def load_to_render(conn: Connection, ids: Iterable[str]) -> dict[str, ToRender]:
    """These notifications with their stored events and greeting names, by id; an unknown id is
    left out. One ``SELECT`` per 500."""
    found: dict[str, ToRender] = {}
    for chunk in in_chunks(unique(ids)):
        rows = conn.execute(_TO_RENDER, {IDS: chunk})
        for row in rows:
            # Unpacked, not read by name: a row's attribute look-up costs more than the rest here.
            (nid, org_id, event_id, customer_id, contact_id, kind, channel, locale, status, rendered,
             payload, org_name, org_locale, customer_name, contact_name) = row  # fmt: skip
            found[nid] = ToRender(
                id=nid,
                org_id=org_id,
                event_id=event_id,
                customer_id=customer_id,
                contact_id=contact_id,
                kind=kind,
                channel=channel,
                locale=locale,
                status=status,
                rendered=bool(rendered),
                payload=payload,
                names=GreetingNames(
                    org=org_name or org_id,
                    org_locale=org_locale or "en",
                    customer=customer_name or "",
                    contact=contact_name or "",
                ),
            )
    return found
