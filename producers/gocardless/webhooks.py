"""GoCardless webhooks: verify the signature, handle each event once, in any order.

Order: GoCardless may deliver events late, twice, or in reverse. herald never trusts the event's
order for state: for each new event it fetches the resource's *current* state from the API and
stores that, so a late ``submitted`` after ``confirmed`` stores ``confirmed`` again. Effects are
tied to the event itself: a ``payments.confirmed`` event publishes ``payment.received`` once,
keyed on the event id in ``gc_webhook_events`` (insert-ignore) and, should a crash come between
publish and commit, on the published ``event_id`` (``gocardless-EV…``), which the pipeline keeps
idempotent.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from infra.adapters.gocardless_account import JSON, GoCardlessReader, GoCardlessRefused
from infra.bootstrap import Services
from infra.store import gocardless as store
from infra.store.db import insert_ignore
from infra.store.sync_history import SyncCounts, purge_sync_history, record_sync
from infra.store.tables_gocardless import gc_webhook_events

logger = logging.getLogger("herald.gocardless.webhooks")

Publish = Callable[[dict[str, Any]], None]
#: Minor units per major unit; every currency GoCardless collects has two decimals.
MINOR_UNITS = 100


def signature_ok(body: bytes, secret: str | None, signature: str | None) -> bool:
    """Whether ``signature`` is the hex HMAC-SHA256 of the raw ``body`` keyed with ``secret``."""
    if not secret or not signature:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.strip())


def minor_to_decimal(amount_minor: int) -> str:
    """``123450`` → ``"1234.50"``."""
    return str((Decimal(amount_minor) / MINOR_UNITS).quantize(Decimal("0.01")))


def payment_received(event: JSON, payment: dict[str, Any]) -> dict[str, Any] | None:
    """The ``payment.received`` event for a confirmed, linked payment (``None`` when herald does
    not know which invoice it pays)."""
    if not (payment.get("org_id") and payment.get("invoice_id") and payment.get("customer_id")):
        return None
    return {
        "type": "payment.received",
        "event_id": f"gocardless-{event['id']}",
        "org_id": payment["org_id"],
        "occurred_at": event.get("created_at") or datetime.now(UTC).isoformat(),
        "data": {
            "payment": {
                "id": payment["gc_id"],
                "invoice_id": payment["invoice_id"],
                "customer_id": payment["customer_id"],
                "amount": minor_to_decimal(int(payment["amount_minor"])),
                "currency": payment["currency"],
                "method": "online",
                "notify": False,
            }
        },
    }


@dataclass
class BatchResult:
    """What one webhook did: events handled, duplicates skipped, events published."""

    handled: int = 0
    duplicates: int = 0
    published: list[str] = field(default_factory=list)
    counts: dict[str, SyncCounts] = field(default_factory=dict)

    def of(self, kind: str) -> SyncCounts:
        return self.counts.setdefault(kind, SyncCounts())


@dataclass
class _Fetched:
    """Records to store for one event (parents first) and a customer link hint."""

    records: list[tuple[str, JSON]] = field(default_factory=list)
    link: tuple[str, str] | None = None
    billing_request: JSON | None = None
    failure: tuple[str, str] | None = None  # (data type, reason)


def _resource_id(event: JSON) -> str | None:
    links = event.get("links") or {}
    return links.get(str(event.get("resource_type", ""))[:-1])


def _fetch(services: Services, reader: GoCardlessReader, event: JSON) -> _Fetched:
    """The current state of the event's resource, and of its parents herald has not stored yet.
    API calls happen here, outside any database transaction."""
    kind, resource_id, got = event.get("resource_type"), _resource_id(event), _Fetched()
    if kind not in ("customers", "mandates", "payments", "billing_requests") or not resource_id:
        return got  # other resource types (payouts, refunds…) are recorded as seen, nothing more
    try:
        resource = reader.get(kind, resource_id)
        if kind == "billing_requests":
            got.billing_request = resource
            with services.reading() as conn:
                got.link = store.billing_request_link(conn, resource_id)
            links = resource.get("links") or {}
            _add_parents(services, reader, got, links.get("customer"), links.get("mandate_request_mandate"))
            return got
        links = resource.get("links") or {}
        if kind == "payments":
            _add_parents(services, reader, got, None, links.get("mandate"))
        elif kind == "mandates":
            _add_parents(services, reader, got, links.get("customer"), None)
        got.records.append((kind, resource))
    except GoCardlessRefused as exc:  # e.g. removed at GoCardless: nothing to store
        got.failure = (kind, f"{resource_id}: {exc}")
    return got


def _add_parents(
    services: Services, reader: GoCardlessReader, got: _Fetched, customer: str | None, mandate: str | None
) -> None:
    with services.reading() as conn:
        need_mandate = bool(mandate) and not store.known(conn, "mandates", str(mandate))
    if mandate and need_mandate:
        fetched = reader.get("mandates", mandate)
        customer = customer or (fetched.get("links") or {}).get("customer")
        got.records.append(("mandates", fetched))
    if customer:
        with services.reading() as conn:
            fresh = not store.known(conn, "customers", customer)
        if fresh or got.link:  # a mandate-setup request's link is worth storing even when known
            got.records.insert(0, ("customers", reader.get("customers", customer)))


def handle_events(
    services: Services,
    reader: GoCardlessReader,
    events: list[JSON],
    publish: Publish,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> BatchResult:
    """Handle one webhook's events; write one sync-history row (trigger ``webhook``) per data type
    touched. A transient failure raises (the webhook is answered 5xx and GoCardless resends; the
    events handled before it are skipped then)."""
    result = BatchResult()
    try:
        for event in events:
            _handle_one(services, reader, event, publish, now(), result)
    finally:
        with services.transaction() as conn:
            purge_sync_history(conn, now())
            for kind, counts in result.counts.items():
                record_sync(conn, data_type=kind, trigger="webhook", counts=counts, now=now())
    return result


def _handle_one(
    services: Services,
    reader: GoCardlessReader,
    event: JSON,
    publish: Publish,
    at: datetime,
    result: BatchResult,
) -> None:
    event_id = str(event["id"])
    with services.reading() as conn:
        seen = conn.execute(
            select(gc_webhook_events.c.event_id).where(gc_webhook_events.c.event_id == event_id)
        ).first()
    if seen is not None:
        result.duplicates += 1
        return
    got = _fetch(services, reader, event)
    with services.transaction() as conn:
        inserted = conn.execute(
            insert_ignore(conn, gc_webhook_events).values(
                event_id=event_id,
                resource_type=str(event.get("resource_type")),
                action=str(event.get("action")),
                resource_id=_resource_id(event),
                received_at=at,
            )
        )
        if not inserted.rowcount:  # a concurrent delivery of the same event won
            result.duplicates += 1
            return
        result.handled += 1
        if got.failure:
            result.of(got.failure[0]).fail(got.failure[1])
        for kind, record in got.records:
            link = got.link if kind == "customers" else None
            if kind == "customers":
                outcome = store.upsert_customer(conn, record, at, link=link)
            elif kind == "mandates":
                outcome = store.upsert_mandate(conn, record, at)
            else:
                outcome = store.upsert_payment(conn, record, at)
            result.of(kind).count(outcome)
        if got.billing_request is not None:
            store.set_billing_request_status(
                conn, str(got.billing_request["id"]), got.billing_request["status"]
            )
        if event.get("resource_type") == "payments" and event.get("action") == "confirmed" and got.records:
            payment = store.load_payment(conn, str(_resource_id(event)))
            message = payment_received(event, payment) if payment else None
            if message is None:
                logger.warning("webhook: payment %s confirmed but linked to no invoice", _resource_id(event))
            else:
                # Published before the commit: if publishing fails, the event is not marked handled
                # and GoCardless's resend tries again; the event_id makes a repeat harmless.
                publish(message)
                result.published.append(message["event_id"])
    logger.info(
        "webhook event %s %s.%s handled",
        event_id,
        event.get("resource_type"),
        event.get("action"),
    )
