"""The single-item store functions as they were before issue 15 (commit eb5eb1c), copied word
for word: the oracle the batch store functions are checked against, item by item
(``tests/integration/test_batch_store.py``). The store's own single-item functions now call the
batch ones with a list of one; these do not, so they keep the old meaning to compare with.

Never imported by runtime code; change nothing here but imports.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from infra.errors import MalformedMessage
from infra.store.attempts import Outcome
from infra.store.db import insert_ignore
from infra.store.notifications import (
    EventKeys,
    NewNotification,
    StatusChange,
    ignored_detail,
    notification_id,
)
from infra.store.rate_limit import rate_slot
from infra.store.tables import (
    contact_emails,
    contacts,
    customer_contacts,
    customers,
    delivery_attempts,
    events,
    invoices,
    notifications,
    org_warnings,
    organisations,
    send_rate,
    status_changes,
    templates,
)
from infra.store.templates import Key
from schemas.directory import ContactView, CustomerView, EmailView, OrgView
from schemas.events import Event, InvoiceCreated, PaymentReceived
from schemas.notifications import Status, can_move
from schemas.rows import GreetingNames, NotificationRow

DEFAULTS: dict[str, Any] = {
    "name": None,
    "default_locale": None,
    "default_region": None,
    "sms_connected": True,
    "sender_number": None,
    "sender_name": None,
    "sender_name_active": False,
    "disabled_templates": [],
    "buys_credit": False,
    "credit_balance": 0,
    "low_balance_threshold": None,
}


# from infra/store/notifications.py
def record_event(conn: Connection, event: Event, payload: dict[str, Any], outcome: str) -> bool:
    """Store an event once; False when it was already stored (a redelivery or a re-publish)."""
    result = conn.execute(
        insert_ignore(conn, events).values(
            org_id=event.org_id,
            event_id=event.event_id,
            type=event.type,
            invoice_id=event.invoice_id,
            customer_id=event.customer_id,
            occurred_at=event.occurred_at,
            received_at=datetime.now(UTC),
            outcome=outcome,
            payload=payload,
        )
    )
    return bool(result.rowcount)


# from infra/store/notifications.py
def record_notifications(conn: Connection, event: EventKeys, items: list[NewNotification]) -> list[str]:
    """Store the decisions of an event (existing ones are kept as they are).

    Returns the ids of this event's notifications (SMS and email) that are still
    ``pending``, so a redelivered event re-drives exactly the work not yet done.
    """
    now = datetime.now(UTC)
    if items:
        # One executemany: a compiled statement per row costs more than the insert itself.
        conn.execute(
            insert_ignore(conn, notifications),
            [
                {
                    "id": notification_id(event.org_id, event.event_id, i.contact_id, i.channel, i.recipient),
                    "org_id": event.org_id,
                    "event_id": event.event_id,
                    "invoice_id": event.invoice_id,
                    "customer_id": event.customer_id,
                    "contact_id": i.contact_id,
                    "kind": i.kind,
                    "channel": i.channel,
                    "recipient": i.recipient,
                    "locale": i.locale,
                    "reason": i.reason,
                    "sender": i.sender,
                    "status": Status.PENDING if i.sends else Status.SKIPPED,
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in items
            ],
        )
    rows = conn.execute(
        select(notifications.c.id).where(
            notifications.c.org_id == event.org_id,
            notifications.c.event_id == event.event_id,
            notifications.c.status == Status.PENDING,
        )
    ).all()
    return [r.id for r in rows]


# from infra/store/notifications.py
def load_notification(conn: Connection, nid: str) -> NotificationRow | None:
    """One notification row, or ``None``."""
    row = conn.execute(select(notifications).where(notifications.c.id == nid)).mappings().first()
    return NotificationRow(**row) if row else None


# from infra/store/notifications.py
def load_event_payload(conn: Connection, org_id: str, event_id: str) -> dict[str, Any] | None:
    """The stored event JSON."""
    row = conn.execute(
        select(events.c.payload).where(events.c.org_id == org_id, events.c.event_id == event_id)
    ).first()
    return row.payload if row else None


# from infra/store/notifications.py
def store_rendered(conn: Connection, nid: str, body: str) -> None:
    """Keep the rendered message so every retry sends the same text (the sender stays as routed)."""
    conn.execute(
        update(notifications)
        .where(notifications.c.id == nid, notifications.c.body.is_(None))
        .values(body=body, updated_at=datetime.now(UTC))
    )


# from infra/store/notifications.py
def store_rendered_email(conn: Connection, nid: str, subject: str, text: str, html: str) -> None:
    """Keep the rendered email (``body`` holds the plain-text part) so every retry sends the same."""
    conn.execute(
        update(notifications)
        .where(notifications.c.id == nid, notifications.c.body.is_(None))
        .values(body=text, subject=subject, html=html, updated_at=datetime.now(UTC))
    )


# from infra/store/notifications.py
def claim_for_sending(conn: Connection, nid: str) -> bool:
    """Record the attempt before calling the provider (``pending → sending``).

    Atomic: of two workers holding the same message, only one wins.
    """
    now = datetime.now(UTC)
    result = conn.execute(
        update(notifications)
        .where(notifications.c.id == nid, notifications.c.status == Status.PENDING)
        .values(
            status=Status.SENDING,
            attempts=notifications.c.attempts + 1,
            attempted_at=now,
            updated_at=now,
        )
    )
    return bool(result.rowcount)


# from infra/store/notifications.py
def skip_pending(conn: Connection, nid: str) -> bool:
    """``pending → skipped`` at send time (e.g. not enough SMS credit); final at once, so no
    duplicate message can still send it. The decision's reason stays as routing recorded it."""
    result = conn.execute(
        update(notifications)
        .where(notifications.c.id == nid, notifications.c.status == Status.PENDING)
        .values(status=Status.SKIPPED, updated_at=datetime.now(UTC))
    )
    return bool(result.rowcount)


# from infra/store/notifications.py
def release_claim(conn: Connection, nid: str) -> None:
    """``sending → pending`` when the provider certainly did not accept the message."""
    conn.execute(
        update(notifications)
        .where(
            notifications.c.id == nid,
            notifications.c.status == Status.SENDING,
            notifications.c.provider_id.is_(None),
        )
        .values(status=Status.PENDING, updated_at=datetime.now(UTC))
    )


# from infra/store/notifications.py
def record_provider_id(conn: Connection, nid: str, provider_id: str) -> None:
    """The provider accepted: from now on a redelivery must not send again."""
    conn.execute(
        update(notifications)
        .where(notifications.c.id == nid, notifications.c.provider_id.is_(None))
        .values(provider_id=provider_id, updated_at=datetime.now(UTC))
    )


# from infra/store/notifications.py
def record_refusal(conn: Connection, nid: str, error_code: int | None) -> None:
    """The provider refused for good: remember it so a redelivery does not resend."""
    conn.execute(
        update(notifications)
        .where(notifications.c.id == nid, notifications.c.provider_id.is_(None))
        .values(error_code=error_code if error_code is not None else 0, updated_at=datetime.now(UTC))
    )


# from infra/store/notifications.py
def apply_status(conn: Connection, change: StatusChange) -> bool:
    """Record a status report and move the notification forward if allowed.

    Every report is kept once (unique per notification and status); the
    notification's current status only ever moves forward. A report that cannot move it
    (``failed`` after ``delivered``, a late ``sent``) is kept with its detail saying so
    (``ignored: already delivered``), so the timeline never shows it as if it applied.
    Returns whether the current status moved.
    """
    row = conn.execute(
        select(notifications.c.status).where(notifications.c.id == change.notification_id)
    ).first()
    if row is None:
        raise MalformedMessage(f"status report for unknown notification {change.notification_id}")
    values: dict[str, Any] = {"status": change.status, "updated_at": datetime.now(UTC)}
    if change.provider_id:
        values["provider_id"] = change.provider_id
    if change.error_code is not None:
        values["error_code"] = change.error_code
    current = Status(row.status)
    moved = False
    while can_move(current, change.status):
        result = conn.execute(
            update(notifications)
            .where(and_(notifications.c.id == change.notification_id, notifications.c.status == current))
            .values(**values)
        )
        if result.rowcount == 1:
            moved = True
            break
        # Another report moved it since we read it (PostgreSQL, READ COMMITTED: ``sent`` and
        # ``delivered`` of one SMS recorded at once): judge again from where it is now, or a
        # ``delivered`` would be lost behind a ``sent``. Statuses only move forward, so this ends.
        current = Status(
            conn.execute(
                select(notifications.c.status).where(notifications.c.id == change.notification_id)
            ).scalar_one()
        )
    # Recorded after the move, so the row can say whether it applied. The same status again is
    # not "ignored": it is the one applied (a duplicate, which the unique key drops anyway).
    detail = change.detail
    if not moved and current != change.status:
        detail = ignored_detail(current, change.detail)
    conn.execute(
        insert_ignore(conn, status_changes).values(
            notification_id=change.notification_id,
            status=change.status,
            provider_id=change.provider_id,
            error_code=change.error_code,
            detail=(detail or "")[:500] or None,
            source=change.source,
            occurred_at=change.occurred_at,
            recorded_at=datetime.now(UTC),
        )
    )
    return moved


# from infra/store/organisations.py
def load_org(conn: Connection, org_id: str, default_region: str) -> OrgView:
    """The organisation's settings, or the defaults when it was never configured."""
    row = conn.execute(select(organisations).where(organisations.c.org_id == org_id)).mappings().first()
    values = {**DEFAULTS, **(dict(row) if row else {})}
    return OrgView(
        org_id=org_id,
        region=values["default_region"] or default_region,
        sms_connected=values["sms_connected"],
        sender_number=values["sender_number"],
        sender_name=values["sender_name"],
        sender_name_active=values["sender_name_active"],
        disabled_templates=frozenset(values["disabled_templates"]),
        buys_credit=values["buys_credit"],
        credit_balance=values["credit_balance"],
    )


# from infra/store/organisations.py
def invoice_paid(conn: Connection, org_id: str, invoice_id: str, balance: Decimal) -> bool:
    """Whether the invoice is paid: nothing left on it, or recorded payments cover its balance."""
    if balance <= 0:
        return True
    rows = conn.execute(
        select(events.c.payload).where(
            events.c.org_id == org_id, events.c.invoice_id == invoice_id, events.c.type == "payment.received"
        )
    ).all()
    paid = Decimal(0)
    for row in rows:
        try:
            paid += Decimal(row.payload["data"]["payment"]["amount"])
        except (KeyError, TypeError, InvalidOperation):
            continue  # stored events were validated; a broken one pays nothing
    return paid >= balance


# from infra/store/organisations.py
def reserve_credit(conn: Connection, nid: str, org_id: str, parts: int) -> bool:
    """Take ``parts`` from the organisation's balance for this notification, once.

    Atomic: the balance never goes below zero, however many senders race. A
    notification that already holds a reservation keeps it (True).
    """
    claimed = conn.execute(
        update(notifications)
        .where(notifications.c.id == nid, notifications.c.segments.is_(None))
        .values(segments=parts)
    )
    if not claimed.rowcount:
        return True
    taken = conn.execute(
        update(organisations)
        .where(organisations.c.org_id == org_id, organisations.c.credit_balance >= parts)
        .values(credit_balance=organisations.c.credit_balance - parts)
    )
    if taken.rowcount:
        _warn_if_low(conn, nid, org_id, parts)
        return True
    conn.execute(update(notifications).where(notifications.c.id == nid).values(segments=None))
    return False


# from infra/store/organisations.py
def refund_credit(conn: Connection, nid: str, org_id: str) -> int:
    """Give back what a notification reserved (it failed for good); idempotent. Returns the segments."""
    row = conn.execute(select(notifications.c.segments).where(notifications.c.id == nid)).first()
    if row is None or not row.segments:
        return 0
    conn.execute(
        update(organisations)
        .where(organisations.c.org_id == org_id)
        .values(credit_balance=organisations.c.credit_balance + row.segments)
    )
    conn.execute(update(notifications).where(notifications.c.id == nid).values(segments=0))
    return int(row.segments)


# from infra/store/organisations.py
def _warn_if_low(conn: Connection, nid: str, org_id: str, parts: int) -> None:
    """Record a low-balance warning when this reservation took the balance under the threshold."""
    row = conn.execute(
        select(organisations.c.credit_balance, organisations.c.low_balance_threshold).where(
            organisations.c.org_id == org_id
        )
    ).first()
    if row is None or row.low_balance_threshold is None:
        return
    before = row.credit_balance + parts
    if row.credit_balance < row.low_balance_threshold <= before:
        invoice = conn.execute(select(notifications.c.invoice_id).where(notifications.c.id == nid)).scalar()
        conn.execute(
            org_warnings.insert().values(
                org_id=org_id,
                kind="low_balance",
                detail=f"SMS credit balance {row.credit_balance} is under the threshold "
                f"{row.low_balance_threshold}",
                notification_id=nid,
                invoice_id=invoice,
                at=datetime.now(UTC),
            )
        )


# from infra/store/reminders.py
def track_invoice(conn: Connection, event: Event) -> None:
    """Keep the open-invoice table current from a routed event (in route's transaction).

    ``invoice.created`` stores (or refreshes) the invoice; ``payment.received`` marks it paid
    once the recorded payments cover its balance. Either order works: an invoice whose payment
    was routed first is stored already paid. Idempotent.
    """
    now = datetime.now(UTC)
    if isinstance(event, InvoiceCreated):
        invoice = event.data.invoice
        values = {
            "customer_id": invoice.customer_id,
            "currency": invoice.currency,
            "total": str(invoice.total),
            "balance": str(invoice.balance),
            "due_date": invoice.due_date,
            "invoice": invoice.model_dump(mode="json"),
            "updated_at": now,
        }
        insert = sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert
        conn.execute(
            insert(invoices)
            .values(org_id=event.org_id, invoice_id=invoice.id, **values)
            .on_conflict_do_update(index_elements=["org_id", "invoice_id"], set_=values)
        )
    elif not isinstance(event, PaymentReceived):
        return
    refresh_paid(conn, event.org_id, event.invoice_id, now)


# from infra/store/reminders.py
def refresh_paid(conn: Connection, org_id: str, invoice_id: str, now: datetime) -> bool:
    """Whether the invoice is paid, from the recorded payments; marks it paid when it is.

    Unknown invoices count as unpaid (nothing to remind of anyway: the scheduler only sees
    stored ones).
    """
    row = conn.execute(
        select(invoices.c.balance, invoices.c.paid_at).where(
            invoices.c.org_id == org_id, invoices.c.invoice_id == invoice_id
        )
    ).first()
    if row is None:
        return False
    if row.paid_at is not None:
        return True
    if not invoice_paid(conn, org_id, invoice_id, Decimal(row.balance)):
        return False
    conn.execute(
        update(invoices)
        .where(invoices.c.org_id == org_id, invoices.c.invoice_id == invoice_id, invoices.c.paid_at.is_(None))
        .values(paid_at=now, updated_at=now)
    )
    return True


# from infra/store/attempts.py
def log_attempt(
    conn: Connection,
    notification_id: str,
    outcome: Outcome,
    *,
    http_status: int | None = None,
    error_code: int | None = None,
    retry_after: float | None = None,
    detail: str | None = None,
    at: datetime | None = None,
) -> None:
    """Append one provider call to the notification's attempt log (``at``: when, default now)."""
    number = count_attempts(conn, notification_id)
    conn.execute(
        insert(delivery_attempts).values(
            notification_id=notification_id,
            attempt=number + 1,
            outcome=str(outcome),
            http_status=http_status,
            error_code=error_code,
            retry_after_seconds=retry_after,
            detail=(detail or "")[:500] or None,
            at=at or datetime.now(UTC),
        )
    )


# from infra/store/attempts.py
def count_attempts(conn: Connection, notification_id: str) -> int:
    """How many provider calls a notification has had."""
    return int(
        conn.execute(
            select(func.count())
            .select_from(delivery_attempts)
            .where(delivery_attempts.c.notification_id == notification_id)
        ).scalar_one()
    )


# from infra/store/attempts.py
def first_attempt_at(conn: Connection, notification_id: str) -> datetime | None:
    """When the notification's first provider call was logged (UTC), if ever."""
    first = conn.execute(
        select(func.min(delivery_attempts.c.at)).where(delivery_attempts.c.notification_id == notification_id)
    ).scalar_one()
    if first is not None and first.tzinfo is None:  # SQLite hands back naive UTC
        first = first.replace(tzinfo=UTC)
    return first


# from infra/store/rate_limit.py
def take_slot(conn: Connection, sender: str, cost_seconds: float, now: float, max_wait: float) -> float:
    """Reserve ``cost_seconds`` of ``sender``'s timeline; returns how long to wait before sending.

    When the wait would exceed ``max_wait`` nothing is reserved and the (positive) wait is
    returned all the same, so the caller can put the message back with that delay. The row is
    locked for the transaction (``BEGIN IMMEDIATE`` on SQLite, ``FOR UPDATE`` on PostgreSQL),
    so two processes never take the same slot.
    """
    conn.execute(insert_ignore(conn, send_rate).values(sender=sender, next_free_at=0.0))
    current = conn.execute(
        select(send_rate.c.next_free_at).where(send_rate.c.sender == sender).with_for_update()
    ).scalar_one()
    start, next_free = rate_slot(current, now, cost_seconds)
    wait = start - now
    if wait <= max_wait:
        conn.execute(update(send_rate).where(send_rate.c.sender == sender).values(next_free_at=next_free))
    return wait


# from infra/store/directory.py
def load_customer(conn: Connection, org_id: str, customer_id: str) -> CustomerView | None:
    """The customer with its contacts, or ``None`` when it was never imported."""
    row = conn.execute(
        select(customers).where(customers.c.org_id == org_id, customers.c.customer_id == customer_id)
    ).first()
    if row is None:
        return None
    contact_rows = conn.execute(
        select(contacts, customer_contacts.c.is_primary)
        .join(
            customer_contacts,
            and_(
                customer_contacts.c.org_id == contacts.c.org_id,
                customer_contacts.c.contact_id == contacts.c.contact_id,
            ),
        )
        .where(customer_contacts.c.org_id == org_id, customer_contacts.c.customer_id == customer_id)
        .order_by(customer_contacts.c.is_primary.desc(), contacts.c.contact_id)
    ).all()
    email_rows = conn.execute(
        select(contact_emails)
        .where(
            contact_emails.c.org_id == org_id,
            contact_emails.c.contact_id.in_([r.contact_id for r in contact_rows]),
        )
        .order_by(contact_emails.c.address)
    ).all()
    emails: dict[str, list[EmailView]] = {}
    for e in email_rows:
        categories = tuple(sorted((str(k), bool(v)) for k, v in (e.categories or {}).items()))
        emails.setdefault(e.contact_id, []).append(EmailView(e.address, e.notify, categories))
    return CustomerView(
        org_id=org_id,
        customer_id=customer_id,
        name=row.name,
        sms_enabled=row.sms_enabled,
        contacts=tuple(
            ContactView(
                contact_id=r.contact_id,
                is_primary=r.is_primary,
                name=r.name,
                mobile_raw=r.mobile_raw,
                mobile_e164=r.mobile_e164,
                sms_enabled=r.sms_enabled,
                locale=r.locale,
                status=r.status,
                sms_opted_out=r.sms_opted_out,
                emails=tuple(emails.get(r.contact_id, ())),
            )
            for r in contact_rows
        ),
    )


# from infra/store/templates.py
def load_overrides(conn: Connection, org_id: str) -> dict[Key, str]:
    """An organisation's own templates, keyed (kind, channel, locale, part)."""
    rows = conn.execute(select(templates).where(templates.c.org_id == org_id)).mappings()
    return {(r["kind"], r["channel"], r["locale"], r["part"]): r["source"] for r in rows}


# from infra/store/templates.py
def greeting_names(conn: Connection, org_id: str, customer_id: str, contact_id: str) -> GreetingNames:
    """The organisation's, customer's and contact's names (empty when unknown), and the org's locale."""
    org = conn.execute(
        select(organisations.c.name, organisations.c.default_locale).where(organisations.c.org_id == org_id)
    ).first()
    customer = conn.execute(
        select(customers.c.name).where(customers.c.org_id == org_id, customers.c.customer_id == customer_id)
    ).first()
    contact = conn.execute(
        select(contacts.c.name).where(contacts.c.org_id == org_id, contacts.c.contact_id == contact_id)
    ).first()
    return GreetingNames(
        org=org.name if org and org.name else org_id,
        org_locale=org.default_locale if org and org.default_locale else "en",
        customer=customer.name if customer else "",
        contact=contact.name if contact else "",
    )


# from infra/store/lookups.py
def channel_of(conn: Connection, nid: str) -> str | None:
    """The channel (``sms``, ``email``) of a notification."""
    return conn.execute(select(notifications.c.channel).where(notifications.c.id == nid)).scalar()
