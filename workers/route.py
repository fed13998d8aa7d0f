"""Stage ``route``: store the event once, decide who is told, hand on to render (and an invoice
that asks for Direct Debit to collect); and tell a customer their mandate-setup link."""

from __future__ import annotations

from typing import Any

from infra.bootstrap import Services
from infra.errors import MalformedMessage
from infra.store.collection import load_billing_request, record_synthetic_event
from infra.store.directory import load_customer
from infra.store.notifications import NewNotification, record_event, record_notifications
from infra.store.organisations import invoice_paid, load_org
from infra.store.reminders import track_invoice
from schemas.events import ReminderDue
from schemas.messages import CollectionRequested, MandateSetupRequested, NotificationDecided
from schemas.validation import event_to_json
from workers.decode import decode, decode_event
from workers.rules.collection import EventRef, mandate_setup_payload, wants_collection
from workers.rules.recipients import Routing, mandate_setup_routing, route


def _new_notifications(routing: Routing) -> list[NewNotification]:
    return [
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


def route_event(svc: Services, body: Any) -> None:
    """Decode → decide (pure) → record every decision → emit the ones that send.

    Idempotent on the event id: a redelivered or re-published event records
    nothing new and only re-drives notifications that are still pending. An
    invoice with ``collection: "direct_debit"`` is handed to collect every time
    (collect is idempotent on the invoice).
    """
    event = decode_event(body)
    settings = svc.settings
    with svc.transaction() as conn:
        org = load_org(conn, event.org_id, settings.default_region)
        customer = load_customer(conn, event.org_id, event.customer_id)
        paid = isinstance(event, ReminderDue) and invoice_paid(
            conn, event.org_id, event.invoice_id, event.data.invoice.balance
        )
        routing = route(event, org, customer, paid=paid, default_from=settings.twilio_from)
        recorded = record_event(conn, event, event_to_json(event), routing.outcome)
        items = _new_notifications(routing) if recorded else []
        pending = record_notifications(conn, event, items)
        track_invoice(conn, event)  # the open invoices the reminder scheduler reads
    for nid in pending:
        svc.emitter.emit(NotificationDecided(notification_id=nid))
    if wants_collection(event):
        svc.emitter.emit(
            CollectionRequested(org_id=event.org_id, event_id=event.event_id, invoice_id=event.invoice_id)
        )


def route_mandate_setup(svc: Services, body: Any) -> None:
    """Decode → decide who gets the link (pure) → record a ``mandate.setup_requested`` event and its
    email notifications → emit them to render, as for any event.

    Idempotent on the billing request: the event id is derived from its id, so a redelivery
    records nothing new and only re-drives what is still pending.
    """
    message = decode(MandateSetupRequested, body)
    settings = svc.settings
    with svc.transaction() as conn:
        request = load_billing_request(conn, message.billing_request_id)
        if request is None or request.org_id != message.org_id:
            raise MalformedMessage(f"unknown billing request {message.billing_request_id}")
        org = load_org(conn, message.org_id, settings.default_region)
        customer = load_customer(conn, message.org_id, request.customer_id)
        routing = mandate_setup_routing(org, customer)
        payload = mandate_setup_payload(request)
        recorded = record_synthetic_event(conn, payload, routing.outcome)
        items = _new_notifications(routing) if recorded else []
        pending = record_notifications(conn, EventRef.of(payload), items)
    for nid in pending:
        svc.emitter.emit(NotificationDecided(notification_id=nid))
