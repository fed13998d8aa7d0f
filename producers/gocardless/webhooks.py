"""GoCardless webhooks: verify the signature, handle each event once, in any order.

Order: GoCardless may deliver events late, twice, or in reverse. herald never trusts the event's
order for state: for each new event it fetches the resource's *current* state from the API and
stores that, so a late ``submitted`` after ``confirmed`` stores ``confirmed`` again. Effects are
tied to the event itself: a ``payments.confirmed`` event publishes ``payment.received`` once (a
``payments.failed`` one that GoCardless will not retry, ``payment.failed``),
keyed on the event id in ``gc_webhook_events`` (insert-ignore) and, should a crash come between
publish and commit, on the published ``event_id`` (``gocardless-EV…``), which the pipeline keeps
idempotent.

Input: the signature says GoCardless sent the body, not that it is well formed. A body that holds
no list of events is refused whole (``WebhookRejected``); within the list, each event is checked
on its own (``event_problem``): one that is not an object, lacks its ``id``, ``resource_type``,
``action`` or ``links``, or nests past the depth limit is rejected with its index and field,
and the others are handled all the same (``BatchResult.rejected``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from infra.adapters.gocardless_account import JSON, KINDS, GoCardlessReader, GoCardlessRefused
from infra.bootstrap import Services
from infra.errors import WebhookRejected
from infra.store import gocardless as store
from infra.store.db import insert_ignore
from infra.store.dunning import record_retry
from infra.store.sync_history import SyncCounts, purge_sync_history, record_sync
from infra.store.tables import gc_webhook_events
from schemas.bounded_json import loads_bounded, too_deep

logger = logging.getLogger("herald.gocardless.webhooks")

Publish = Callable[[dict[str, Any]], None]
#: Minor units per major unit; every currency GoCardless collects has two decimals.
MINOR_UNITS = 100
#: Shapes of what an event names, as GoCardless makes them and ``gc_webhook_events`` stores them.
_EVENT_FIELDS = {
    "id": re.compile(r"[A-Za-z0-9_]{1,40}"),
    "resource_type": re.compile(r"[a-z_]{1,40}"),
    "action": re.compile(r"[a-z0-9_]{1,60}"),
}
_RESOURCE_ID = re.compile(r"[A-Za-z0-9_]{1,40}")
#: Levels of a webhook body above each event: the body object and its ``events`` list.
_ABOVE_AN_EVENT = 2


def _where(path: tuple[str | int, ...]) -> str:
    """``events[3].details`` from ``("events", 3, "details")``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the body"


def read_events(body: bytes, max_depth: int) -> list[Any]:
    """The ``events`` list of a (verified) webhook body; ``WebhookRejected`` when there is none.
    The items are not checked here: ``event_problem`` does, one by one (pure). An event nested
    past any depth still parses (``loads_bounded``), so it alone is rejected, not its batch."""
    try:
        payload = loads_bounded(body.decode("utf-8"), max_depth)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both
        raise WebhookRejected(f"the body is not JSON: {exc}") from None
    deep = too_deep(payload, max_depth)
    if deep is not None and not (len(deep) >= 2 and deep[0] == "events" and isinstance(deep[1], int)):
        raise WebhookRejected(
            f"the body nests deeper than {max_depth} levels (HERALD_MAX_JSON_DEPTH) at {_where(deep)}"
        )
    if not isinstance(payload, dict):
        raise WebhookRejected(f"the body is not a JSON object ({_kind(payload)})")
    if "events" not in payload:
        raise WebhookRejected("events: missing")
    events = payload["events"]
    if not isinstance(events, list):
        raise WebhookRejected(f"events: not a list ({_kind(events)})")
    return events


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def event_problem(event: Any, index: int, max_depth: int) -> dict[str, str] | None:
    """What is wrong with the ``index``-th event of a webhook, as ``{"field", "message", "type"}``
    (the API's error details), or ``None`` when herald can handle it (pure)."""
    where = f"events[{index}]"
    if not isinstance(event, dict):
        return {"field": where, "message": f"not an object ({_kind(event)})", "type": "not_an_object"}
    # The limit is the body's: the body and its ``events`` list are the two levels above an event.
    if too_deep(event, max_depth - _ABOVE_AN_EVENT) is not None:
        message = f"nests deeper than the body's {max_depth} levels (HERALD_MAX_JSON_DEPTH)"
        return {"field": where, "message": message, "type": "too_deep"}
    for name, shape in _EVENT_FIELDS.items():
        value = event.get(name)
        if value is None:
            return {"field": f"{where}.{name}", "message": "missing", "type": "missing"}
        if not isinstance(value, str) or not shape.fullmatch(value):
            message = f"not a GoCardless {name.replace('_', ' ')}"
            return {"field": f"{where}.{name}", "message": message, "type": "invalid"}
    links = event.get("links")
    if links is None:
        return {"field": f"{where}.links", "message": "missing", "type": "missing"}
    if not isinstance(links, dict):
        return {"field": f"{where}.links", "message": f"not an object ({_kind(links)})", "type": "invalid"}
    kind = event["resource_type"]
    if kind in KINDS:
        name = kind[:-1]
        value = links.get(name)
        if value is None:
            return {"field": f"{where}.links.{name}", "message": "missing", "type": "missing"}
        if not isinstance(value, str) or not _RESOURCE_ID.fullmatch(value):
            return {"field": f"{where}.links.{name}", "message": "not a GoCardless id", "type": "invalid"}
    return None


def signature_ok(body: bytes, secret: str | None, signature: str | None) -> bool:
    """Whether ``signature`` is the hex HMAC-SHA256 of the raw ``body`` keyed with ``secret``."""
    if not secret or not signature:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.strip())


def minor_to_decimal(amount_minor: int) -> str:
    """``123450`` → ``"1234.50"``."""
    return str((Decimal(amount_minor) / MINOR_UNITS).quantize(Decimal("0.01")))


def payment_failed(event: JSON, payment: dict[str, Any]) -> dict[str, Any] | None:
    """The ``payment.failed`` event for a linked payment that failed with no retry (``None`` when
    herald does not know which invoice it was for). The reason is GoCardless's own description."""
    if not (payment.get("org_id") and payment.get("invoice_id") and payment.get("customer_id")):
        return None
    details = event.get("details")
    reason = details.get("description") if isinstance(details, dict) else None
    return {
        "type": "payment.failed",
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
                "reason": reason[:200] if isinstance(reason, str) else None,
            }
        },
    }


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
    #: Events refused, each ``{"field", "message", "type"}`` naming its index (``event_problem``).
    rejected: list[dict[str, str]] = field(default_factory=list)

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
    """The id the event's ``links`` give its resource, when it has the shape of one."""
    links = event.get("links") or {}
    value = links.get(str(event.get("resource_type", ""))[:-1]) if isinstance(links, dict) else None
    return value if isinstance(value, str) and _RESOURCE_ID.fullmatch(value) else None


def _fetch(services: Services, reader: GoCardlessReader, event: JSON) -> _Fetched:
    """The current state of the event's resource, and of its parents herald has not stored yet.
    API calls happen here, outside any database transaction."""
    kind, resource_id, got = event.get("resource_type"), _resource_id(event), _Fetched()
    if kind not in KINDS or not resource_id:
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
    events: list[Any],
    publish: Publish,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> BatchResult:
    """Handle one webhook's events; write one sync-history row (trigger ``webhook``) per data type
    touched. A malformed event is rejected (``result.rejected``) and the others handled still. A
    transient failure raises (the webhook is answered 5xx and GoCardless resends; the events
    handled before it are skipped then)."""
    result = BatchResult()
    max_depth = services.settings.max_json_depth
    try:
        for index, event in enumerate(events):
            problem = event_problem(event, index, max_depth)
            if problem is not None:
                result.rejected.append(problem)
                logger.warning("webhook event rejected: %s: %s", problem["field"], problem["message"])
                continue
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
        if event.get("resource_type") == "payments" and event.get("action") == "failed" and got.records:
            # Whether GoCardless retries it (Success+): reminders wait for the retry meanwhile.
            details = event.get("details")
            retry = isinstance(details, dict) and details.get("will_attempt_retry") is True
            record_retry(conn, str(_resource_id(event)), retry)
            failed = store.load_payment(conn, str(_resource_id(event))) if not retry else None
            told = payment_failed(event, failed) if failed and failed["status"] == "failed" else None
            if told is not None:  # published before the commit, as payment.received below
                publish(told)
                result.published.append(told["event_id"])
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
