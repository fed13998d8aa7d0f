"""Stage ``render``: the text of a notification, rendered once and kept."""

from __future__ import annotations

from typing import Any

import dramatiq

from infra.bootstrap import services
from infra.broker import emit, queue
from infra.errors import MalformedMessage
from infra.store.notifications import load_event_payload, load_notification, store_rendered
from schemas.events import event_adapter
from schemas.messages import NotificationDecided, NotificationRendered
from schemas.notifications import Channel, Kind, Status
from workers.decode import decode
from workers.rules.render import render_sms


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
            store_rendered(conn, nid, render_sms(Kind(row["kind"]), row["locale"], event), sender=None)
    emit(NotificationRendered(notification_id=nid))
