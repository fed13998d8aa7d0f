"""The ``collect`` actor on the StubBroker with ``FakeDirectDebit``: one payment per invoice however
often it is asked, a mandate-setup link handed to route when there is no mandate, a refusal
recorded for the operator and not retried."""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import select

from infra.store.notifications import record_event
from infra.store.tables import gc_billing_requests, gc_payments, org_warnings
from schemas.events import event_adapter
from schemas.messages import CollectionRequested
from tests.factories import invoice_created
from tests.unit.workers.conftest import Stages, add_customer

AINO = {
    "contact_id": "P1",
    "primary": True,
    "name": "Aino",
    "locale": "fi",
    "emails": [{"address": "aino@example.fi"}],
}


def _routed(stages: Stages, event_id: str = "evt_dd", **invoice: Any) -> CollectionRequested:
    """An ``invoice.created`` asking for Direct Debit, stored as route stores it; the request
    route hands to collect."""
    payload = invoice_created(event_id, collection="direct_debit", **invoice)
    event = event_adapter.validate_python(copy.deepcopy(payload))
    with stages.services.transaction() as conn:
        record_event(conn, event, payload, "routed")
    return CollectionRequested(org_id="acme", event_id=event_id, invoice_id=event.invoice_id)


def _collect(stages: Stages, request: CollectionRequested) -> None:
    stages.deliver(request)
    stages.run("collect")


def _rows(stages: Stages, table: Any) -> list[Any]:
    with stages.services.reading() as conn:
        return list(conn.execute(select(table)).all())


def test_the_named_mandate_is_charged_once_however_often_collect_is_asked(stages: Stages) -> None:
    add_customer(stages.services, contacts=[AINO])
    request = _routed(stages, mandate_id="MD0001")
    _collect(stages, request)
    _collect(stages, request)  # redelivered, or the event re-published

    (payment,) = stages.direct_debit.payments.values()
    assert (payment.mandate_id, payment.amount_minor, payment.currency) == ("MD0001", 123450, "EUR")
    assert [name for name, _ in stages.direct_debit.calls] == ["create_payment"]
    (call,) = [args for _, args in stages.direct_debit.calls]
    assert call["key"].endswith("INV-1")  # the Idempotency-Key names the invoice
    (row,) = _rows(stages, gc_payments)
    assert (row.gc_id, row.invoice_id, row.customer_id) == (payment.id, "INV-1", "C1")
    assert stages.emitted("route") == []
    assert stages.dead_letters("collect") == []


def test_without_a_mandate_a_setup_is_requested_once_and_its_link_handed_to_route(stages: Stages) -> None:
    add_customer(stages.services, contacts=[AINO])
    request = _routed(stages)
    _collect(stages, request)

    (setup,) = stages.direct_debit.setups.values()
    (stored,) = _rows(stages, gc_billing_requests)
    assert (stored.gc_id, stored.invoice_id, stored.authorisation_url) == (
        setup.billing_request_id,
        "INV-1",
        setup.authorisation_url,
    )
    handed = {"org_id": "acme", "billing_request_id": setup.billing_request_id}
    assert stages.take("route") == [("route_mandate_setup", handed)]

    _collect(stages, request)  # redelivered: the outstanding request's link is handed on again
    assert [name for name, _ in stages.direct_debit.calls] == ["create_mandate_setup"]
    assert len(_rows(stages, gc_billing_requests)) == 1
    assert stages.take("route") == [("route_mandate_setup", handed)]


def test_a_payment_gocardless_refuses_for_good_is_recorded_for_the_operator_and_not_retried(
    stages: Stages,
) -> None:
    stages.direct_debit.inactive_mandates.add("MD0001")
    add_customer(stages.services, contacts=[AINO])
    _collect(stages, _routed(stages, mandate_id="MD0001"))

    assert stages.direct_debit.payments == {}
    (warning,) = _rows(stages, org_warnings)
    assert (warning.kind, warning.invoice_id) == ("collection_failed", "INV-1")
    assert "mandate_is_inactive" in warning.detail
    assert _rows(stages, gc_payments) == []
    assert stages.dead_letters("collect") == []
    assert len(stages.direct_debit.calls) == 1  # not retried


def test_a_request_for_an_event_that_asks_for_no_direct_debit_is_dead_lettered(stages: Stages) -> None:
    payload = invoice_created("evt_plain")
    event = event_adapter.validate_python(copy.deepcopy(payload))
    with stages.services.transaction() as conn:
        record_event(conn, event, payload, "routed")
    _collect(stages, CollectionRequested(org_id="acme", event_id="evt_plain", invoice_id="INV-1"))

    (dead,) = stages.dead_letters("collect")
    assert "asks for no Direct Debit" in str(dead._exception)
    assert dead.options["retries"] == 1  # tried once: permanent, never retried
    assert stages.direct_debit.calls == []
