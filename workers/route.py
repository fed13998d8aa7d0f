"""Stage ``route``: store the event once, decide who is told, hand on to render (and an invoice
that asks for Direct Debit to collect); and tell a customer their mandate-setup link.

Events come in batches (``EventsPublished``): each envelope is validated on its own (an invalid one
is dead-lettered alone, with its reason), and the good ones are routed in one write transaction
(the directory read set-based before it), and handed on in one confirmed message per
``HERALD_STAGE_BATCH_SIZE`` notifications.
A single ``EventPublished`` is a batch of one through the same code.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from infra.bootstrap import Services
from infra.errors import MalformedMessage
from infra.retry_policy import is_permanent
from infra.store.batches import rounds, unique
from infra.store.collection import load_billing_request, record_synthetic_event
from infra.store.directory import load_customer, load_customers
from infra.store.notifications import (
    EventRecord,
    NewNotification,
    record_events,
    record_notifications,
    route_keys,
)
from infra.store.organisations import invoices_paid, load_org, load_orgs
from schemas.directory import CustomerView, OrgView
from schemas.events import Event, ReminderDue
from schemas.messages import (
    CollectionRequested,
    EventPublished,
    EventsPublished,
    MandateSetupRequested,
    NotificationsDecided,
)
from schemas.validation import event_to_json
from workers.batches import dead_letter_item
from workers.decode import decode, decode_event
from workers.hold import hold_outside_windows
from workers.rules.collection import EventRef, mandate_setup_payload, wants_collection
from workers.rules.local_time import zone_of_number
from workers.rules.recipients import Routing, mandate_setup_routing, route

logger = logging.getLogger("herald.route")


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


def _decide(
    event: Event,
    orgs: dict[str, OrgView],
    customers: dict[tuple[str, str], CustomerView],
    default_from: str | None,
    *,
    paid: bool,
) -> EventRecord | Exception:
    """One event's record (pure), or the permanent error its routing failed with."""
    try:
        routing = route(
            event,
            orgs[event.org_id],
            customers.get((event.org_id, event.customer_id)),
            paid=paid,
            default_from=default_from,
        )
    except Exception as exc:
        if not is_permanent(exc):
            raise
        return exc
    return EventRecord(event, event_to_json(event), routing.outcome, _new_notifications(routing))


def _warm_zones(customers: Iterable[CustomerView]) -> None:
    """Work out the zone of each contact's number now, before the write lock: the quiet-hour rule
    needs it under the lock (from the contact's stored number), and reads it there from
    ``zone_of_number``'s cache."""
    for customer in customers:
        for contact in customer.contacts:
            zone_of_number(contact.mobile_e164)


def route_event(svc: Services, body: Any) -> None:
    """One event: a batch of one (``route_events``). A malformed one fails its message, which is
    dead-lettered at once (a permanent error)."""
    for _event, exc in _route(svc, [decode_event(body)]):
        raise exc


def route_events(svc: Services, body: Any) -> None:
    """Decode each event → decide (pure) → record every decision, in one transaction → emit the
    ones that send, in batches.

    Idempotent on each event id: a redelivered or re-published event records nothing new and only
    re-drives notifications that are still pending. An invoice with ``collection:
    "direct_debit"`` is handed to collect every time (collect is idempotent on the invoice). An
    envelope that does not validate is dead-lettered alone (as an ``event.published`` of its own,
    with its reason); the rest of the batch is routed.
    """
    message = decode(EventsPublished, body)
    good: list[Event] = []
    bad: list[tuple[Any, MalformedMessage]] = []
    for envelope in message.events:
        try:
            good.append(decode_event(envelope))
        except MalformedMessage as invalid:
            bad.append((envelope, invalid))
    failed = _route(svc, good) if good else []
    # After the good ones went on: a retry of the batch would redo nothing of theirs.
    for envelope, reason in bad:
        dead_letter_item(svc, EventPublished.stage, EventPublished.actor, envelope, reason)
    for event, error in failed:
        dead_letter_item(svc, EventPublished.stage, EventPublished.actor, event_to_json(event), error)


def _route(svc: Services, events: Sequence[Event]) -> list[tuple[Event, Exception]]:
    """Route ``events`` as if one after another, in one write transaction; then hand on what sends.

    Returns the events whose routing failed for good (a permanent error of the pure rule: routing
    them again would fail the same way), with the error; nothing of theirs is recorded.
    """
    settings = svc.settings
    pending: list[str] = []
    failed: list[tuple[Event, Exception]] = []
    new = 0
    # The directory and the organisations are only read here, once for the whole batch, and
    # before the write transaction: on SQLite every stage waits for the one write lock, so what
    # need not hold it does not (routing on what the directory said a moment before the lock is
    # routing the event a moment earlier).
    with svc.reading() as conn:
        orgs = load_orgs(conn, (e.org_id for e in events), settings.default_region)
        customers = load_customers(conn, ((e.org_id, e.customer_id) for e in events))
    # Routing is pure, so it is decided before the write lock too: all but reminders, whose
    # ``paid`` is read in the transaction (a payment earlier in the batch counts for them).
    decided: dict[int, EventRecord | Exception] = {
        id(event): _decide(event, orgs, customers, settings.twilio_from, paid=False)
        for event in events
        if not isinstance(event, ReminderDue)
    }
    _warm_zones(customers.values())
    with svc.transaction() as conn:
        # Events that share an event id or an invoice go in successive rounds, so a payment
        # recorded earlier in the batch counts for a reminder later in it.
        for indexes in rounds([route_keys(e) for e in events]):
            batch = [events[i] for i in indexes]
            reminders = [e for e in batch if isinstance(e, ReminderDue)]
            paid = invoices_paid(conn, [(e.org_id, e.invoice_id, e.data.invoice.balance) for e in reminders])
            for reminder, is_paid in zip(reminders, paid, strict=True):
                decided[id(reminder)] = _decide(reminder, orgs, customers, settings.twilio_from, paid=is_paid)
            records = []
            for event in batch:
                record = decided[id(event)]
                if isinstance(record, Exception):
                    failed.append((event, record))
                else:
                    records.append(record)
            for recorded in record_events(conn, records):
                pending.extend(recorded.pending)
                new += recorded.new
        # Quiet hours: what its recipient's send window does not allow now is held in the store.
        pending = hold_outside_windows(
            conn, pending, svc.clock(), settings.default_timezone, settings.default_send_windows
        )
    # After the commit: what is handed on is stored. The same event twice hands its ids on once.
    svc.emitter.emit_batches(NotificationsDecided, unique(pending), settings.batch_size)
    collections = unique((e.org_id, e.event_id, e.invoice_id) for e in events if wants_collection(e))
    for org_id, event_id, invoice_id in collections:
        svc.emitter.emit(CollectionRequested(org_id=org_id, event_id=event_id, invoice_id=invoice_id))
    logger.info(
        "events routed",
        extra={"events": len(events), "new": new, "pending": len(pending), "failed": len(failed)},
    )
    return failed


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
    svc.emitter.emit_batches(NotificationsDecided, pending, settings.batch_size)
