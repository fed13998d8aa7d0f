"""The ``route`` actors on the StubBroker: every decision recorded once, the ones that send handed
to render, a Direct Debit invoice to collect, a mandate-setup link to its customer's emails."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from infra.store.collection import record_billing_request
from infra.store.notifications import claim_for_sending
from infra.store.tables import events
from schemas.messages import EventPublished, EventsPublished, MandateSetupRequested
from tests.factories import invoice_created, payment_received, reminder_due
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


# -- batches (issue 15) ---------------------------------------------------------------------------


def _route_batch(stages: Stages, events: list[object]) -> None:
    stages.deliver_body("route", EventsPublished.actor, {"events": events})
    stages.run("route")


def _handed_ids(handed: list[tuple[str, Any]]) -> list[str]:
    assert {actor for actor, _ in handed} <= {"render_notifications"}
    return [nid for _, body in handed for nid in body["notification_ids"]]


def test_a_batch_routes_its_good_events_in_one_message_and_dead_letters_the_invalid_one_alone(
    stages: Stages,
) -> None:
    for n in (1, 2, 3):
        add_customer(
            stages.services, customer_id=f"C{n}", contacts=[{**AINO, "mobile": f"+358 40 123456{n}"}]
        )
    bad = {**invoice_created("evt_bad"), "type": "invoice.deleted"}
    good = [invoice_created(f"evt_b{n}", id=f"INV-{n}", customer_id=f"C{n}") for n in (1, 2, 3)]
    _route_batch(stages, [good[0], bad, good[1], good[2]])

    rows = stages.notifications()
    assert len(rows) == 6  # an SMS and an email for each good event
    assert _events(stages) == 3
    handed = stages.take("render")
    assert len(handed) == 1  # one message for the batch
    assert sorted(_handed_ids(handed)) == sorted(r.id for r in rows)
    (dead,) = stages.dead_letters("route")
    assert (dead.actor_name, dead.args[0]) == ("route_event", bad)  # alone, as a single event
    assert "unknown event type 'invoice.deleted'" in str(dead._exception)

    claimed = rows[0].id
    with stages.services.transaction() as conn:  # one of them went on to its sender since
        claim_for_sending(conn, claimed)
    _route_batch(stages, [good[0], bad, good[1], good[2]])  # the same batch, redelivered

    assert [r.id for r in stages.notifications()] == [r.id for r in rows]  # nothing new
    assert _events(stages) == 3
    assert sorted(_handed_ids(stages.take("render"))) == sorted(r.id for r in rows if r.id != claimed)
    # The invalid one is dead-lettered again with its delivery: a copy, as a replay would handle it.
    assert [d.args[0] for d in stages.dead_letters("route")] == [bad, bad]


def test_a_payment_earlier_in_a_batch_counts_for_a_reminder_later_in_it_as_one_by_one(stages: Stages) -> None:
    add_customer(stages.services, contacts=[AINO])
    _route_batch(stages, [invoice_created("evt_i"), payment_received("evt_p"), reminder_due("evt_r")])

    with stages.services.reading() as conn:
        outcomes = dict(conn.execute(select(events.c.event_id, events.c.outcome)).all())
    assert outcomes["evt_r"] == "already_paid"
    reminders = [r for r in stages.notifications() if r.event_id == "evt_r"]
    assert {r.reason for r in reminders} == {"already_paid"}
    assert stages.dead_letters("route") == []


def test_a_reminder_before_the_payment_in_a_batch_still_goes_out(stages: Stages) -> None:
    add_customer(stages.services, contacts=[AINO])
    _route_batch(stages, [invoice_created("evt_i"), reminder_due("evt_r"), payment_received("evt_p")])

    reminders = [r for r in stages.notifications() if r.event_id == "evt_r"]
    assert {r.reason for r in reminders} == {"send"}


def test_the_same_event_twice_in_a_batch_is_recorded_once_and_handed_on_once(stages: Stages) -> None:
    add_customer(stages.services, contacts=[AINO])
    _route_batch(stages, [invoice_created("evt_twice"), invoice_created("evt_twice")])

    rows = stages.notifications()
    assert _events(stages) == 1
    assert sorted(_handed_ids(stages.take("render"))) == sorted(r.id for r in rows)


def test_more_pending_notifications_than_a_batch_holds_go_in_several_messages(stages: Stages) -> None:
    size = stages.services.settings.batch_size
    count = size // 2 + 10  # an SMS and an email each: more than one message's worth
    for n in range(count):
        contact = {**AINO, "mobile": f"+358 40 {1000000 + n}", "emails": [{"address": f"c{n}@example.fi"}]}
        add_customer(stages.services, customer_id=f"C{n}", contacts=[contact])
    _route_batch(
        stages, [invoice_created(f"evt_m{n}", id=f"INV-{n}", customer_id=f"C{n}") for n in range(count)]
    )

    handed = stages.take("render")
    assert [len(body["notification_ids"]) for _, body in handed] == [size, 2 * count - size]
    assert sorted(_handed_ids(handed)) == sorted(r.id for r in stages.notifications())


def test_a_batch_that_is_not_a_batch_is_dead_lettered_whole(stages: Stages) -> None:
    _route_batch(stages, [])  # a batch carries at least one event

    (dead,) = stages.dead_letters("route")
    assert "events.published" in str(dead._exception)
    assert dead.options["retries"] == 1
