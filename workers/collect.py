"""Stage ``collect``: collect an invoice by GoCardless Direct Debit, or ask for a mandate.

Decode → read the facts → decide (``workers.rules.collection.plan_collection``, pure) → call
GoCardless (``svc.direct_debit``) → record. Idempotent on the invoice: the payment's
Idempotency-Key is the invoice id (qualified by the organisation), so a redelivered or
re-published event finds the payment it made instead of making a second; a mandate-setup
request (Billing Request) likewise. Its Flow, only the payer's link to that request, has no key
(GoCardless cannot read a flow back): a retry makes a fresh one and sends that.

Errors are classified by the adapter: a permanent one (mandate inactive, validation) is recorded
in the invoice's history (``collection_failed``) and not retried; a transient one (5xx, 429,
timeouts) is raised, and dramatiq retries the message with backoff (``infra.retry_policy``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from infra.adapters.gocardless import PaymentRef
from infra.bootstrap import Services
from infra.errors import MalformedMessage, PermanentProviderError
from infra.store.collection import (
    COLLECTION_FAILED,
    COLLECTION_SKIPPED,
    mandate_owner,
    outstanding_billing_request,
    record_billing_request,
    record_collection_outcome,
)
from infra.store.directory import load_customer
from infra.store.gocardless import active_mandate_for, payments_for_invoice, upsert_payment
from infra.store.integrations import integration_active
from infra.store.notifications import load_event_payload
from schemas.directory import CustomerView
from schemas.events import InvoiceCreated, event_adapter
from schemas.messages import CollectionRequested, MandateSetupRequested
from workers.decode import decode
from workers.rules.collection import (
    Action,
    Facts,
    Plan,
    idempotency_key,
    payer_details,
    payment_description,
    payment_metadata,
    plan_collection,
    wants_collection,
)

logger = logging.getLogger("herald.collect")

#: Where the payer lands after setting up the mandate, under ``HERALD_PUBLIC_URL`` (the page:
#: ``producers.api.pages``, which keeps the same path).
MANDATE_COMPLETE_PATH = "/mandates/complete"


def collect_invoice(svc: Services, body: Any) -> None:
    """Decode → decide (pure) → create the payment or the mandate-setup request → record."""
    message = decode(CollectionRequested, body)
    event, customer, facts = _read(svc, message)
    invoice = event.data.invoice
    plan = plan_collection(event.org_id, invoice, facts)
    log = {
        "org_id": event.org_id,
        "invoice_id": invoice.id,
        "action": str(plan.action),
        "reason": plan.reason,
    }
    logger.info("collection planned", extra=log)
    if plan.action == Action.NOTHING:
        return
    if plan.action == Action.SKIP:
        with svc.transaction() as conn:
            record_collection_outcome(conn, event.org_id, invoice.id, COLLECTION_SKIPPED, plan.reason)
        return
    if plan.action == Action.REDRIVE_MANDATE_SETUP:
        assert plan.billing_request_id is not None
        svc.emitter.emit(
            MandateSetupRequested(org_id=event.org_id, billing_request_id=plan.billing_request_id)
        )
        return
    try:
        if plan.action == Action.PAY:
            ref = _pay(svc, event, plan)
            logger.info("payment created", extra={**log, "payment_id": ref.id, "existing": ref.existing})
        else:
            _request_mandate(svc, event, customer)
    except PermanentProviderError as exc:
        # Retrying cannot help (inactive mandate, unsupported currency…): record it for the operator.
        with svc.transaction() as conn:
            record_collection_outcome(
                conn, event.org_id, invoice.id, COLLECTION_FAILED, f"{plan.reason}: {exc}"
            )
        logger.warning("collection refused", extra={**log, "status": exc.status, "error": str(exc)})


def _read(svc: Services, message: CollectionRequested) -> tuple[InvoiceCreated, CustomerView | None, Facts]:
    with svc.reading() as conn:
        payload = load_event_payload(conn, message.org_id, message.event_id)
        if payload is None:
            raise MalformedMessage(f"collect: unknown event {message.event_id}")
        event = event_adapter.validate_python(payload)
        if not isinstance(event, InvoiceCreated) or not wants_collection(event):
            raise MalformedMessage(f"collect: event {message.event_id} asks for no Direct Debit")
        if event.invoice_id != message.invoice_id:
            raise MalformedMessage(f"collect: event {message.event_id} is not invoice {message.invoice_id}")
        invoice = event.data.invoice
        org_id, customer_id = event.org_id, invoice.customer_id
        facts = Facts(
            integration_active=integration_active(conn, "gocardless", svc.settings),
            active_mandate=active_mandate_for(conn, org_id, customer_id),
            named_mandate_owner=mandate_owner(conn, invoice.mandate_id) if invoice.mandate_id else None,
            payment_recorded=bool(payments_for_invoice(conn, org_id, invoice.id)),
            outstanding_request=outstanding_billing_request(conn, org_id, customer_id, invoice.id),
        )
        customer = load_customer(conn, org_id, customer_id)
    return event, customer, facts


def _pay(svc: Services, event: InvoiceCreated, plan: Plan) -> PaymentRef:
    invoice = event.data.invoice
    assert plan.mandate_id is not None
    metadata = payment_metadata(event.org_id, invoice.customer_id, invoice.id)
    ref = svc.direct_debit.create_payment(
        amount_minor=plan.amount_minor,
        currency=invoice.currency,
        mandate_id=plan.mandate_id,
        idempotency_key=idempotency_key(event.org_id, invoice.id),
        metadata=metadata,
        description=payment_description(invoice),
    )
    with svc.transaction() as conn:
        upsert_payment(
            conn,
            {
                "id": ref.id,
                "amount": ref.amount_minor,
                "currency": ref.currency,
                "status": ref.status,
                "charge_date": ref.charge_date,
                "created_at": ref.created_at,
                "links": {"mandate": ref.mandate_id},
                "metadata": metadata,
            },
            datetime.now(UTC),
            org_id=event.org_id,
            invoice_id=invoice.id,
            customer_id=invoice.customer_id,
        )
    return ref


def _request_mandate(svc: Services, event: InvoiceCreated, customer: CustomerView | None) -> None:
    invoice = event.data.invoice
    public_url = svc.settings.public_url
    # The landing page (producers/api/pages.py) names the organisation to the payer.
    landing = (
        f"{public_url}{MANDATE_COMPLETE_PATH}?org={quote(event.org_id, safe='')}" if public_url else None
    )
    setup = svc.direct_debit.create_mandate_setup(
        payer=payer_details(customer),
        currency=invoice.currency,
        redirect_uri=landing,
        metadata=payment_metadata(event.org_id, invoice.customer_id, invoice.id),
        # Its own key: GoCardless keys are per resource type, but a distinct one costs nothing.
        idempotency_key=f"{idempotency_key(event.org_id, invoice.id)}:mandate_setup",
    )
    with svc.transaction() as conn:
        record_billing_request(
            conn,
            org_id=event.org_id,
            customer_id=invoice.customer_id,
            invoice_id=invoice.id,
            billing_request_id=setup.billing_request_id,
            flow_id=setup.flow_id,
            authorisation_url=setup.authorisation_url,
        )
    logger.info(
        "mandate setup requested",
        extra={
            "org_id": event.org_id,
            "invoice_id": invoice.id,
            "billing_request_id": setup.billing_request_id,
        },
    )
    svc.emitter.emit(MandateSetupRequested(org_id=event.org_id, billing_request_id=setup.billing_request_id))
