"""The ``route`` actors on the StubBroker: every decision recorded once, the ones that send handed
to render, a Direct Debit invoice to collect, a mandate-setup link to its customer's emails."""

from __future__ import annotations

from sqlalchemy import func, select

from infra.store.collection import record_billing_request
from infra.store.notifications import claim_for_sending
from infra.store.tables import events
from schemas.messages import EventPublished, MandateSetupRequested
from tests.factories import invoice_created
from tests.unit.workers.conftest import Stages, add_customer

AINO = {
    "contact_id": "P1",
    "primary": True,
    "name": "Aino",
    "mobile": "+358 40 1234567",
    "locale": "fi",
    "emails": [{"address": "aino@example.fi"}],
}


def _route(stages: Stages, body: object) -> None:
    stages.deliver_body("route", EventPublished.actor, body)
    stages.run("route")


def _events(stages: Stages) -> int:
    with stages.services.reading() as conn:
        return int(conn.execute(select(func.count()).select_from(events)).scalar_one())


def test_an_invoice_is_recorded_once_and_each_notification_that_sends_goes_to_render(stages: Stages) -> None:
    add_customer(stages.services, contacts=[AINO])
    _route(stages, invoice_created())

    rows = stages.notifications()
    assert [(r.channel, r.recipient, r.reason, r.status) for r in rows] == [
        ("email", "aino@example.fi", "send", "pending"),
        ("sms", "+358401234567", "send", "pending"),
    ]
    assert _events(stages) == 1
    handed = stages.emitted("render")
    assert {actor for actor, _ in handed} == {"render_notifications"}
    assert sorted(nid for _, body in handed for nid in body["notification_ids"]) == sorted(r.id for r in rows)
    assert stages.emitted("collect") == []
    assert stages.dead_letters("route") == []


def test_a_redelivered_event_records_nothing_new_and_redrives_only_what_is_still_pending(
    stages: Stages,
) -> None:
    add_customer(stages.services, contacts=[AINO])
    _route(stages, invoice_created())
    first = {r.id for r in stages.notifications()}
    assert {nid for _, body in stages.take("render") for nid in body["notification_ids"]} == first

    claimed, pending = sorted(first)
    with stages.services.transaction() as conn:  # one of them has gone on to its sender since
        claim_for_sending(conn, claimed)
    _route(stages, invoice_created())  # the same event again

    assert {r.id for r in stages.notifications()} == first
    assert _events(stages) == 1
    assert stages.take("render") == [("render_notifications", {"notification_ids": [pending]})]


def test_an_invoice_asking_for_direct_debit_is_handed_to_collect(stages: Stages) -> None:
    add_customer(stages.services, contacts=[AINO])
    _route(stages, invoice_created("evt_dd", collection="direct_debit"))

    assert stages.emitted("collect") == [
        ("collect_invoice", {"org_id": "acme", "event_id": "evt_dd", "invoice_id": "INV-1"})
    ]


def test_a_malformed_event_is_dead_lettered_at_once_and_records_nothing(stages: Stages) -> None:
    _route(stages, {"type": "invoice.deleted", "event_id": "evt_x"})

    (dead,) = stages.dead_letters("route")
    assert "event:" in str(dead._exception)
    assert dead.options["retries"] == 1  # tried once: permanent, never retried
    assert _events(stages) == 0
    assert stages.notifications() == []
    assert stages.emitted("render") == []


def test_a_mandate_setup_link_goes_to_the_customers_emails_once_per_billing_request(stages: Stages) -> None:
    add_customer(stages.services, contacts=[AINO])
    with stages.services.transaction() as conn:
        record_billing_request(
            conn,
            org_id="acme",
            customer_id="C1",
            invoice_id="INV-1",
            billing_request_id="BRQ0001",
            flow_id="BRF0001",
            authorisation_url="https://pay.example/flow/BRF0001",
        )
    request = MandateSetupRequested(org_id="acme", billing_request_id="BRQ0001")
    stages.deliver(request)
    stages.run("route")

    (row,) = stages.notifications()
    assert (row.kind, row.channel, row.recipient, row.status) == (
        "mandate_setup",
        "email",
        "aino@example.fi",
        "pending",
    )
    assert stages.take("render") == [("render_notifications", {"notification_ids": [row.id]})]

    stages.deliver(request)  # redelivered: nothing new, the pending link driven on again
    stages.run("route")
    assert [r.id for r in stages.notifications()] == [row.id]
    assert stages.take("render") == [("render_notifications", {"notification_ids": [row.id]})]


def test_a_mandate_setup_for_an_unknown_billing_request_is_dead_lettered(stages: Stages) -> None:
    stages.deliver(MandateSetupRequested(org_id="acme", billing_request_id="BRQ_UNKNOWN"))
    stages.run("route")

    (dead,) = stages.dead_letters("route")
    assert "unknown billing request BRQ_UNKNOWN" in str(dead._exception)
    assert stages.notifications() == []
