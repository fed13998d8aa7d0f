"""``POST /webhooks/gocardless``: signed, each event once, in any order; a confirmed payment thanks
the customer through the real pipeline."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import select

from infra.bootstrap import Services
from infra.settings import get_settings
from infra.store.directory import upsert_customer
from infra.store.gocardless import active_mandate_for, count_rows, load_payment
from infra.store.history import invoice_history
from infra.store.tables import gc_payments, gc_webhook_events, notifications, sync_history
from producers.api.app import create_app
from producers.gocardless.webhooks import handle_events
from producers.gocardless.wiring import GoCardlessWiring
from schemas.directory import CustomerRecord
from tests.conftest import wait_for
from tests.factories import customer
from tests.integration.gocardless.conftest import SECRET
from tooling.local.ports import free_port
from tooling.sandboxes.gocardless import GoCardlessSandbox, sign

LINK = {"herald_org_id": "acme", "herald_customer_id": "C1"}


def _payment(sandbox: GoCardlessSandbox, mandate: str, invoice: str, amount: int = 123450) -> str:
    metadata = {"herald_org_id": "acme", "herald_invoice_id": invoice}
    return str(sandbox.add_payment(mandate, amount, "EUR", metadata=metadata)["id"])


def test_a_wrong_or_missing_signature_is_answered_498_and_changes_nothing(
    gc_sandbox: GoCardlessSandbox, gc_services: Services
) -> None:
    mandate = gc_sandbox.add_mandate(gc_sandbox.add_customer(email="a@example.com", metadata=LINK)["id"])[
        "id"
    ]
    payment = _payment(gc_sandbox, mandate, "INV-1")
    events = gc_sandbox.set_payment_status(payment, "submitted", webhook=False)
    body = json.dumps({"events": events}).encode()
    client = TestClient(create_app(get_settings()))
    for headers in ({}, {"Webhook-Signature": sign(body, "not-the-secret")}, {"Webhook-Signature": ""}):
        answer = client.post("/webhooks/gocardless", content=body, headers=headers)
        assert answer.status_code == 498
        assert answer.json()["error"]["code"] == "invalid_signature"
    with gc_services.reading() as conn:
        assert count_rows(conn, gc_webhook_events) == 0
        assert count_rows(conn, gc_payments) == 0
        assert count_rows(conn, sync_history) == 0

    signed = client.post(
        "/webhooks/gocardless", content=body, headers={"Webhook-Signature": sign(body, SECRET)}
    )
    assert signed.status_code == 204
    with gc_services.reading() as conn:
        stored = load_payment(conn, payment)
    assert stored is not None
    assert stored["status"] == "submitted"


def test_duplicated_and_reversed_events_have_one_effect_each(
    gc_sandbox: GoCardlessSandbox, gc_services: Services
) -> None:
    customer_id = gc_sandbox.add_customer(email="a@example.com", metadata=LINK)["id"]
    mandate = gc_sandbox.add_mandate(customer_id, status="pending_submission")["id"]
    events = gc_sandbox.set_mandate_status(mandate, "active", webhook=False)
    paid, failed, cancelled = (_payment(gc_sandbox, mandate, f"INV-{n}") for n in (1, 2, 3))
    for status in ("submitted", "confirmed", "paid_out"):
        events += gc_sandbox.set_payment_status(paid, status, webhook=False)
    events += gc_sandbox.set_payment_status(failed, "submitted", webhook=False)
    events += gc_sandbox.set_payment_status(failed, "failed", webhook=False)
    events += gc_sandbox.set_payment_status(cancelled, "cancelled", webhook=False)
    confirmed_event = next(e["id"] for e in events if e["action"] == "confirmed")

    published: list[dict[str, Any]] = []
    reader = GoCardlessWiring(get_settings()).reader
    first = handle_events(gc_services, reader, events[::-1], published.append)
    again = handle_events(gc_services, reader, events[::-1], published.append)
    assert (first.handled, first.duplicates) == (len(events), 0)
    assert (again.handled, again.duplicates) == (0, len(events))

    failed_event = next(e["id"] for e in events if e["action"] == "failed")
    # The confirmed payment thanks; the failed one (GoCardless says no retry) tells the customer.
    assert sorted((p["type"], p["event_id"]) for p in published) == [
        ("payment.failed", f"gocardless-{failed_event}"),
        ("payment.received", f"gocardless-{confirmed_event}"),
    ]
    told = next(p for p in published if p["type"] == "payment.failed")
    assert told["data"]["payment"] == {
        "id": failed,
        "invoice_id": "INV-2",
        "customer_id": "C1",
        "amount": "1234.50",
        "currency": "EUR",
        "reason": "The customer had insufficient funds.",
    }
    published = [p for p in published if p["type"] == "payment.received"]
    assert published[0]["org_id"] == "acme"
    assert published[0]["data"]["payment"] == {
        "id": paid,
        "invoice_id": "INV-1",
        "customer_id": "C1",
        "amount": "1234.50",
        "currency": "EUR",
        "method": "online",
        "notify": False,
    }
    with gc_services.reading() as conn:
        statuses = dict(conn.execute(select(gc_payments.c.gc_id, gc_payments.c.status)).all())
        assert statuses == {paid: "paid_out", failed: "failed", cancelled: "cancelled"}
        assert active_mandate_for(conn, "acme", "C1") == mandate
        assert count_rows(conn, gc_webhook_events) == len(events)
        rows = conn.execute(select(sync_history)).mappings().all()
        timeline = invoice_history(conn, "INV-2")["timeline"]
    assert {r["trigger"] for r in rows} == {"webhook"}
    assert {r["data_type"] for r in rows} == {"customers", "mandates", "payments"}
    assert sum(r["added"] for r in rows if r["data_type"] == "payments") == 3
    steps = [(e["payment_id"], e["status"]) for e in timeline if e["what"] == "payment_status"]
    assert sorted(steps) == [(failed, "failed"), (failed, "submitted")]


@pytest.fixture
def api_url(gc_env: GoCardlessSandbox, pipeline: Services) -> Iterator[str]:
    """The HTTP app on a free port, where the sandbox sends its webhooks."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(pipeline.settings, pipeline), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=10, what="the HTTP app")
    gc_env.webhook_url = f"http://127.0.0.1:{port}/webhooks/gocardless"
    yield f"http://127.0.0.1:{port}"
    gc_env.webhook_url = None
    server.should_exit = True
    thread.join(10)


@pytest.mark.timeout(120)
def test_a_confirmed_payment_thanks_the_customer_by_sms_and_email_once(
    gc_env: GoCardlessSandbox, pipeline: Services, api_url: str, twilio_sandbox: Any, smtp_sandbox: Any
) -> None:
    contact = {
        "contact_id": "P1",
        "primary": True,
        "name": "Aino",
        "mobile": "+358 40 1234567",
        "locale": "fi",
        "emails": [{"address": "aino@example.fi"}],
    }
    with pipeline.transaction() as conn:
        upsert_customer(conn, CustomerRecord.model_validate(customer(contacts=[contact])), region="FI")
    mandate = gc_env.add_mandate(gc_env.add_customer(email="aino@example.fi", metadata=LINK)["id"])["id"]
    payment = _payment(gc_env, mandate, "INV-1")
    gc_env.set_payment_status(payment, "submitted")
    confirmed = gc_env.set_payment_status(payment, "confirmed")
    gc_env.send_webhook(confirmed, times=2)  # GoCardless resends: still one thank-you

    wait_for(lambda: len(twilio_sandbox.messages()) == 1, timeout=60, what="the thank-you SMS")
    wait_for(lambda: len(smtp_sandbox.messages) == 1, timeout=60, what="the thank-you email")
    wait_for(
        lambda: (
            all(d["status"] == 204 for d in gc_env.webhook_deliveries())
            and len(gc_env.webhook_deliveries()) == 4
        ),
        what="every webhook answered 204",
    )
    (sms,) = twilio_sandbox.messages()
    assert sms["to"] == "+358401234567"
    assert smtp_sandbox.messages[0]["To"] == "aino@example.fi"
    with pipeline.reading() as conn:
        kinds = conn.execute(select(notifications.c.kind, notifications.c.event_id)).all()
    assert {k.event_id for k in kinds} == {f"gocardless-{confirmed[0]['id']}"}
    assert os.environ.get("HERALD_GOCARDLESS_BASE_URL") == gc_env.url
