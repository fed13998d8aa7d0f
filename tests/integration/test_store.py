"""The store on SQLite and PostgreSQL: migrations, idempotent records, the send claim."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from infra.bootstrap import Services
from infra.store.db import make_engine
from infra.store.directory import load_customer, upsert_customer
from infra.store.history import invoice_history
from infra.store.migrate import upgrade
from infra.store.notifications import (
    NewNotification,
    StatusChange,
    apply_status,
    claim_for_sending,
    load_notification,
    notification_id,
    record_event,
    record_notifications,
)
from schemas.directory import CustomerRecord
from schemas.notifications import Status
from schemas.validation import event_to_json, parse_event
from tests.factories import customer, invoice_created
from tests.integration.conftest import race, while_row_locked
from tests.integration.stored import claimed_sms


def _sms(contact_id: str = "P1", recipient: str = "+358401234567", sends: bool = True) -> NewNotification:
    return NewNotification(
        contact_id, "invoice", "sms", recipient, "fi", "send" if sends else "no_phone", sends
    )


def test_migrations_create_every_table_and_running_them_again_changes_nothing(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        tables = set(inspect(engine).get_table_names())
        upgrade(engine)
        assert set(inspect(engine).get_table_names()) == tables
    finally:
        engine.dispose()
    assert {"customers", "contacts", "customer_contacts", "contact_emails", "events"} <= tables
    assert {"notifications", "status_changes", "alembic_version"} <= tables


def test_importing_the_same_customer_twice_creates_once_then_changes_nothing(store: Services) -> None:
    record = CustomerRecord.model_validate(customer())
    with store.transaction() as conn:
        assert upsert_customer(conn, record, region="FI") == "created"
    with store.transaction() as conn:
        assert upsert_customer(conn, record, region="FI") == "unchanged"
    changed = CustomerRecord.model_validate(customer(sms_enabled=False))
    with store.transaction() as conn:
        assert upsert_customer(conn, changed, region="FI") == "updated"
        view = load_customer(conn, "acme", "C1")
    assert view is not None
    assert not view.sms_enabled
    assert view.contacts[0].mobile_e164 == "+358401234567"


def test_a_contact_can_belong_to_two_customers(store: Services) -> None:
    shared = [{"contact_id": "P1", "primary": True, "mobile": "0401234567"}]
    with store.transaction() as conn:
        upsert_customer(conn, CustomerRecord.model_validate(customer("C1", contacts=shared)), region="FI")
        upsert_customer(conn, CustomerRecord.model_validate(customer("C2", contacts=shared)), region="FI")
        one, two = load_customer(conn, "acme", "C1"), load_customer(conn, "acme", "C2")
    assert one is not None
    assert two is not None
    assert one.contacts[0].contact_id == two.contacts[0].contact_id == "P1"


def test_an_event_is_recorded_once_and_its_decisions_once(store: Services) -> None:
    event = parse_event(invoice_created())
    with store.transaction() as conn:
        assert record_event(conn, event, event_to_json(event), "routed")
        pending = record_notifications(conn, event, [_sms(), _sms("P2", "", sends=False)])
    with store.transaction() as conn:
        assert not record_event(conn, event, event_to_json(event), "routed")
        again = record_notifications(conn, event, [_sms()])
    assert pending == again == [notification_id("acme", "evt_1", "P1", "sms", "+358401234567")]


def test_of_many_workers_claiming_one_notification_exactly_one_wins(store: Services) -> None:
    event = parse_event(invoice_created())
    with store.transaction() as conn:
        record_event(conn, event, event_to_json(event), "routed")
        (nid,) = record_notifications(conn, event, [_sms()])
    wins: list[bool] = []

    def claim() -> None:
        with store.transaction() as conn:
            wins.append(claim_for_sending(conn, nid))

    race([claim] * 8)
    assert sorted(wins) == [False] * 7 + [True]
    with store.transaction() as conn:
        row = load_notification(conn, nid)
    assert row is not None
    assert (row.status, row.attempts) == (Status.SENDING, 1)


def test_statuses_move_forward_only_and_every_report_is_kept_once(store: Services) -> None:
    nid = claimed_sms(store, "SM1")
    now = datetime.now(UTC)

    def report(status: Status) -> bool:
        with store.transaction() as conn:
            return apply_status(conn, StatusChange(nid, status, "test", now, provider_id="SM1"))

    assert report(Status.SENT)
    assert report(Status.DELIVERED)
    assert not report(Status.SENT)  # late, out of order
    assert not report(Status.DELIVERED)  # a duplicate
    with store.transaction() as conn:
        row = load_notification(conn, nid)
        history = invoice_history(conn, "INV-1")
    assert row is not None
    assert row.status == Status.DELIVERED
    steps = [entry["what"] for entry in history["timeline"]]
    assert steps == ["event_received", "decided", "attempt", "sent", "delivered"]
    assert history["notifications"][0]["provider_id"] == "SM1"


def test_a_delivered_recorded_while_a_sent_commits_is_not_lost(store: Services) -> None:
    """``sent`` holds the row while ``delivered`` comes to read it. ``delivered`` must still land
    (found after a database outage, when the history stage records a notification's reports all at
    once)."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serializes writers (BEGIN IMMEDIATE): the two never overlap")
    nid = claimed_sms(store)
    now = datetime.now(UTC)
    moved: list[bool] = []

    def deliver() -> None:
        with store.transaction() as conn:
            moved.append(apply_status(conn, StatusChange(nid, Status.DELIVERED, "test", now, "SM1")))

    def sent(conn: Connection) -> None:
        assert apply_status(conn, StatusChange(nid, Status.SENT, "test", now, "SM1"))

    while_row_locked(store, sent, deliver)  # deliver waits for the "sent" to commit
    assert moved == [True]
    with store.reading() as conn:
        row = load_notification(conn, nid)
    assert row is not None
    assert row.status == Status.DELIVERED


def test_the_migrations_build_exactly_the_tables_the_code_uses(store: Services) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from infra.store.tables import metadata

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
