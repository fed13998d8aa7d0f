"""Stage ``render``: the text of a notification, rendered once and kept."""

from __future__ import annotations

from typing import Any

import dramatiq

from infra.bootstrap import services
from infra.broker import emit, queue
from infra.errors import MalformedMessage
from infra.store.notifications import load_event_payload, load_notification, store_rendered
from infra.store.templates import greeting_names, load_overrides
from schemas.events import event_adapter
from schemas.messages import NotificationDecided, NotificationRendered
from schemas.notifications import Channel, Status
from workers.decode import decode
from workers.rules.render import render_notification as render_parts


@dramatiq.actor(queue_name=queue(NotificationDecided.stage), actor_name=NotificationDecided.actor)
def render_notification(body: Any) -> None:
    """Decode → render (pure) → store the text → emit it to the sender.

    Idempotent: a notification keeps the first text rendered for it, so a
    retry sends exactly what was rendered.
    """
    message = decode(NotificationDecided, body)
    nid = message.notification_id
    with services().transaction() as conn:
        row = load_notification(conn, nid)
        if row is None:
            raise MalformedMessage(f"unknown notification {nid}")
        if row["status"] != Status.PENDING:
            return
        if row["channel"] != Channel.SMS:
            # Route hands on only SMS until the email sender exists; anything else here is a wiring bug.
            raise MalformedMessage(f"{nid}: render handles SMS only, not {row['channel']}")
        if row["body"] is None:
            payload = load_event_payload(conn, row["org_id"], row["event_id"])
            event = event_adapter.validate_python(payload)
            names = greeting_names(conn, row["org_id"], row["customer_id"], row["contact_id"])
            rendered = render_parts(
                row["kind"],
                Channel.SMS,
                event,
                locales=[row["locale"], names["org_locale"]],
                names=names,
                overrides=load_overrides(conn, row["org_id"]),
            )
            store_rendered(conn, nid, rendered.parts["body"], sender=None)
    emit(NotificationRendered(notification_id=nid))
