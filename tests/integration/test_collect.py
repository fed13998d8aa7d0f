"""The collect stage on a real RabbitMQ and store, against the GoCardless sandbox (and the SMTP
sandbox for the mandate-setup link)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import dramatiq
import gocardless_pro
import pytest
from gocardless_pro import errors

from infra.bootstrap import Services
from infra.store.gocardless import payments_for_invoice, upsert_mandate
from infra.store.gocardless import upsert_customer as upsert_gc_customer
from infra.store.history import invoice_history
from infra.store.integrations import mark_disconnected
from producers.publisher import Publisher
from tests.conftest import wait_for
from tests.factories import email_customer, invoice_created
from tests.integration.conftest import GOCARDLESS_TOKEN, import_customers


class Processed(dramatiq.Middleware):
    """Counts the messages each actor finished without an error (to know when collect is done)."""

    def __init__(self) -> None:
        self.done: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()

    def after_process_message(
        self, broker: dramatiq.Broker, message: dramatiq.Message, *, result: Any = None, exception: Any = None
    ) -> None:
        (self.failed if exception is not None else self.done)[message.actor_name] += 1


@pytest.fixture
def processed(pipeline: Services) -> Iterator[Processed]:
    broker = pipeline.emitter.broker
    counter = Processed()
    broker.middleware.append(counter)  # the running worker emits to every middleware in the list
    yield counter
    broker.middleware.remove(counter)


def _directory(services: Services, address: str = "aino@example.fi", **contact: Any) -> None:
    import_customers(services, email_customer(address, locale="en", **contact))


def _linked_mandate(services: Services, sandbox: Any, gc_customer: str | None = None) -> str:
    """An active mandate at the sandbox for customer C1, linked in our store as a sync would."""
    if gc_customer is None:
        gc_customer = sandbox.add_customer(email="aino@example.fi", given_name="Aino")["id"]
    mandate = sandbox.add_mandate(gc_customer, "active")
    now = datetime.now(UTC)
    with services.transaction() as conn:
        upsert_gc_customer(conn, sandbox.record(gc_customer), now, link=("acme", "C1"))
        upsert_mandate(conn, mandate, now)
    return str(mandate["id"])


def _dd(event_id: str, **invoice: Any) -> dict[str, Any]:
    return invoice_created(event_id, collection="direct_debit", send=False, **invoice)


def _payments(services: Services) -> list[dict[str, Any]]:
    with services.transaction() as conn:
        return payments_for_invoice(conn, "acme", "INV-1")


def _timeline(services: Services, what: str) -> list[dict[str, Any]]:
    with services.transaction() as conn:
        return [e for e in invoice_history(conn, "INV-1", "acme")["timeline"] if e["what"] == what]


def test_an_invoice_is_collected_once_with_the_active_mandate_however_often_it_arrives(
    pipeline: Services, gocardless_sandbox: Any, processed: Processed
) -> None:
    _directory(pipeline)
    mandate = _linked_mandate(pipeline, gocardless_sandbox)
    with Publisher(pipeline.settings) as publisher:
        publisher.publish(_dd("evt_dd1", balance="1000.25"))
        publisher.publish(_dd("evt_dd1", balance="1000.25"))  # the same event again
        publisher.publish(_dd("evt_dd2", balance="1000.25"))  # re-published under a new event id

    wait_for(lambda: processed.done["collect_invoice"] >= 3, what="three collections handled")
    (payment,) = gocardless_sandbox.records("payments")
    assert (payment["amount"], payment["currency"], payment["links"]["mandate"]) == (100025, "EUR", mandate)
    assert payment["metadata"] == {
        "herald_org_id": "acme",
        "herald_customer_id": "C1",
        "herald_invoice_id": "INV-1",
    }
    (stored,) = _payments(pipeline)
    assert (stored["gc_id"], stored["amount_minor"], stored["gc_mandate_id"]) == (
        payment["id"],
        100025,
        mandate,
    )

    # The Idempotency-Key is the invoice id qualified by the organisation: the sandbox knows it.
    strict = gocardless_pro.Client(
        access_token=GOCARDLESS_TOKEN, base_url=gocardless_sandbox.url, raise_on_idempotency_conflict=True
    )
    with pytest.raises(errors.IdempotentCreationConflictError) as conflict:
        strict.payments.create(
            params={"amount": 1, "currency": "EUR", "links": {"mandate": mandate}},
            headers={"Idempotency-Key": "acme:INV-1"},
        )
    assert conflict.value.conflicting_resource_id == payment["id"]

    (created,) = _timeline(pipeline, "payment_created")
    assert (created["payment_id"], created["amount_minor"], created["currency"]) == (
        payment["id"],
        100025,
        "EUR",
    )


def test_a_payment_made_before_a_crash_is_found_by_its_key_not_made_again(
    pipeline: Services, gocardless_sandbox: Any, processed: Processed
) -> None:
    _directory(pipeline)
    mandate = _linked_mandate(pipeline, gocardless_sandbox)
    # GoCardless took the payment, but the worker died before recording it.
    client = gocardless_pro.Client(access_token=GOCARDLESS_TOKEN, base_url=gocardless_sandbox.url)
    earlier = client.payments.create(
        params={"amount": 123450, "currency": "EUR", "links": {"mandate": mandate}},
        headers={"Idempotency-Key": "acme:INV-1"},
    )
    with Publisher(pipeline.settings) as publisher:
        publisher.publish(_dd("evt_dd1"))
    (stored,) = wait_for(lambda: _payments(pipeline), what="the payment recorded")
    assert stored["gc_id"] == earlier.id
    assert len(gocardless_sandbox.records("payments")) == 1


def test_the_mandate_the_event_names_is_used(
    pipeline: Services, gocardless_sandbox: Any, processed: Processed
) -> None:
    _directory(pipeline)
    gc_customer = gocardless_sandbox.add_customer(email="aino@example.fi")["id"]
    _linked_mandate(pipeline, gocardless_sandbox, gc_customer)
    named = gocardless_sandbox.add_mandate(gc_customer, "active")["id"]
    with Publisher(pipeline.settings) as publisher:
        publisher.publish(_dd("evt_dd1", mandate_id=named))
    (stored,) = wait_for(lambda: _payments(pipeline), what="the payment recorded")
    assert stored["gc_mandate_id"] == named
    assert [p["links"]["mandate"] for p in gocardless_sandbox.records("payments")] == [named]


def test_without_a_mandate_the_customer_gets_one_setup_link_by_email(
    pipeline: Services, gocardless_sandbox: Any, smtp_sandbox: Any, processed: Processed
) -> None:
    _directory(pipeline)
    with Publisher(pipeline.settings) as publisher:
        publisher.publish(_dd("evt_dd1"))
        publisher.publish(_dd("evt_dd2"))  # the same invoice again: no second request, no second email

    wait_for(lambda: smtp_sandbox.messages, what="the mandate-setup email")
    wait_for(lambda: processed.done["collect_invoice"] >= 2, what="both collections handled")
    wait_for(lambda: processed.done["route_mandate_setup"] >= 2, what="both hand-offs routed")
    (request,) = gocardless_sandbox.records("billing_requests")
    # Both collections may run at once: the second finds the request by its key and, flows having
    # no key to find them by (nor a GET), may make a second flow for it, which nobody is sent.
    flows = gocardless_sandbox.records("billing_request_flows")
    assert request["mandate_request"]["currency"] == "EUR"
    assert {f["links"]["billing_request"] for f in flows} == {request["id"]}
    (recorded,) = _timeline(pipeline, "mandate_setup_requested")
    (flow,) = [f for f in flows if f["authorisation_url"] == recorded["authorisation_url"]]
    (message,) = smtp_sandbox.messages
    assert message["To"] == "aino@example.fi"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None
    assert flow["authorisation_url"] in text.get_content()
    assert html is not None
    assert flow["authorisation_url"] in html.get_content()

    (asked,) = _timeline(pipeline, "mandate_setup_requested")
    assert (asked["billing_request_id"], asked["authorisation_url"]) == (
        request["id"],
        flow["authorisation_url"],
    )
    decided = _timeline(pipeline, "decided")
    assert [(d["kind"], d["channel"], d["reason"]) for d in decided] == [("mandate_setup", "email", "send")]
    wait_for(lambda: _timeline(pipeline, "sent"), what="the link email recorded sent")


def test_a_refused_payment_is_recorded_and_not_retried(
    pipeline: Services, gocardless_sandbox: Any, processed: Processed
) -> None:
    _directory(pipeline)
    gc_customer = gocardless_sandbox.add_customer(email="aino@example.fi")["id"]
    cancelled = gocardless_sandbox.add_mandate(gc_customer, "cancelled")["id"]
    with Publisher(pipeline.settings) as publisher:
        publisher.publish(_dd("evt_dd1", mandate_id=cancelled))
    (failed,) = wait_for(lambda: _timeline(pipeline, "warning"), what="the refusal recorded")
    assert failed["kind"] == "collection_failed"
    assert "mandate_is_inactive" in failed["detail"]
    wait_for(lambda: processed.done["collect_invoice"] >= 1, what="the collection handled")
    assert processed.failed["collect_invoice"] == 0  # a permanent refusal is recorded, not retried
    assert gocardless_sandbox.records("payments") == []


def test_nothing_is_collected_for_a_paid_balance_or_a_disconnected_integration(
    pipeline: Services, gocardless_sandbox: Any, processed: Processed
) -> None:
    _directory(pipeline)
    _linked_mandate(pipeline, gocardless_sandbox)
    with Publisher(pipeline.settings) as publisher:
        publisher.publish(_dd("evt_dd1", balance="0.00"))
    wait_for(lambda: processed.done["collect_invoice"] >= 1, what="the collection handled")
    with pipeline.transaction() as conn:
        mark_disconnected(conn, "gocardless", datetime.now(UTC))
    with Publisher(pipeline.settings) as publisher:
        publisher.publish(_dd("evt_dd2"))
    wait_for(lambda: processed.done["collect_invoice"] >= 2, what="the second collection handled")
    reasons = [w["detail"] for w in _timeline(pipeline, "warning") if w["kind"] == "collection_skipped"]
    assert reasons == ["nothing_to_collect", "gocardless_not_connected"]
    assert gocardless_sandbox.records("payments") == []


def test_a_mandate_setup_made_before_a_crash_is_finished_and_the_payer_gets_a_link(
    pipeline: Services, gocardless_sandbox: Any, smtp_sandbox: Any, processed: Processed
) -> None:
    """The worker made the Billing Request and its Flow, then died before recording them. The
    retry's creates carry the same keys; the sandbox answers 409 idempotent_creation_conflict to
    each, as GoCardless does. The request is fetched; a flow cannot be (the API has no GET for
    flows), so a new flow is made for the same request, and that link reaches the payer."""
    from infra.adapters.gocardless import GoCardlessDirectDebit
    from infra.adapters.gocardless_client import build_gocardless_client
    from schemas.directory import PayerDetails

    _directory(pipeline)
    earlier = GoCardlessDirectDebit(build_gocardless_client(pipeline.settings)).create_mandate_setup(
        payer=PayerDetails(email="aino@example.fi"),
        currency="EUR",
        redirect_uri=None,
        metadata={"herald_org_id": "acme", "herald_customer_id": "C1", "herald_invoice_id": "INV-1"},
        idempotency_key="acme:INV-1:mandate_setup",  # the key collect uses for this invoice
    )
    with Publisher(pipeline.settings) as publisher:
        publisher.publish(_dd("evt_dd1"))

    (message,) = wait_for(lambda: smtp_sandbox.messages, what="the mandate-setup email")
    (request,) = gocardless_sandbox.records("billing_requests")  # the crashed try's, not a second
    assert request["id"] == earlier.billing_request_id
    (asked,) = _timeline(pipeline, "mandate_setup_requested")
    assert asked["billing_request_id"] == earlier.billing_request_id
    flows = {f["authorisation_url"]: f for f in gocardless_sandbox.records("billing_request_flows")}
    assert flows[asked["authorisation_url"]]["links"]["billing_request"] == request["id"]
    text = message.get_body(preferencelist=("plain",))
    assert text is not None
    assert asked["authorisation_url"] in text.get_content()
    assert processed.failed["collect_invoice"] == 0
