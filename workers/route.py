"""Stage ``route``: store the event once, decide who is told, hand on to render."""

from __future__ import annotations

from typing import Any

import dramatiq

from infra.bootstrap import services
from infra.broker import emit, queue
from infra.store.directory import load_customer
from infra.store.notifications import NewNotification, record_event, record_notifications
from infra.store.organisations import invoice_paid, load_org
from infra.store.reminders import track_invoice
from schemas.events import ReminderDue
from schemas.messages import EventPublished, NotificationDecided
from schemas.validation import event_to_json
from workers.decode import decode_event
from workers.rules.recipients import route


@dramatiq.actor(queue_name=queue(EventPublished.stage), actor_name=EventPublished.actor)
def route_event(body: Any) -> None:
    """Decode → decide (pure) → record every decision → emit the ones that send.

    Idempotent on the event id: a redelivered or re-published event records
    nothing new and only re-drives notifications that are still pending.
    """
    event = decode_event(body)
    settings = services().settings
    with services().transaction() as conn:
        org = load_org(conn, event.org_id, settings.default_region)
        customer = load_customer(conn, event.org_id, event.customer_id)
        paid = isinstance(event, ReminderDue) and invoice_paid(
            conn, event.org_id, event.invoice_id, event.data.invoice.balance
        )
        routing = route(event, org, customer, paid=paid, default_from=settings.twilio_from)
        if record_event(conn, event, event_to_json(event), routing.outcome):
            items = [
                NewNotification(
                    contact_id=d.contact_id,
                    kind=str(routing.kind),
                    channel=d.channel,
                    recipient=d.recipient,
                    locale=d.locale,
                    reason=d.reason,
                    sends=d.sends,
                    sender=d.sender,
                )
                for d in routing.decisions
            ]
        else:
            items = []
        pending = record_notifications(conn, event, items)
        track_invoice(conn, event)  # the open invoices the reminder scheduler reads
    for nid in pending:
        emit(NotificationDecided(notification_id=nid))
