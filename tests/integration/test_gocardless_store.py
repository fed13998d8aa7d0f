"""The GoCardless store: upserts (added / updated / unchanged), links, active mandates, sync history,
integrations — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from infra.bootstrap import Services
from infra.settings import Settings
from infra.store.directory import upsert_customer
from infra.store.gocardless import (
    active_mandate_for,
    find_link,
    gc_customer_for,
    linked_customer,
    load_payment,
    unlink_all,
    upsert_mandate,
    upsert_payment,
)
from infra.store.gocardless import upsert_customer as upsert_gc_customer
from infra.store.integrations import (
    delete_integration,
    integration_active,
    load_integration,
    mark_connected,
    mark_disconnected,
)
from infra.store.sync_history import SyncCounts, purge_sync_history, record_sync, sync_rows
from schemas.directory import CustomerRecord
from tests.factories import customer

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def _with_email(customer_id: str, contact_id: str, address: str) -> dict[str, Any]:
    contact = {"contact_id": contact_id, "primary": True, "name": "X", "emails": [{"address": address}]}
    return customer(customer_id, contacts=[contact])


def _gc_customer(gc_id: str, email: str | None, **metadata: str) -> dict[str, Any]:
    return {
        "id": gc_id,
        "email": email,
        "given_name": "Aino",
        "family_name": "Virtanen",
        "created_at": "2026-11-20T10:00:00.000Z",
        "metadata": metadata,
    }


def _mandate(gc_id: str, customer_id: str, status: str = "active", created: str = "20") -> dict[str, Any]:
    return {
        "id": gc_id,
        "status": status,
        "scheme": "bacs",
        "reference": "REF",
        "created_at": f"2026-11-{created}T10:00:00.000Z",
        "links": {"customer": customer_id},
    }


def _payment(gc_id: str, mandate: str, status: str = "pending_submission", **metadata: str) -> dict[str, Any]:
    return {
        "id": gc_id,
        "amount": 123450,
        "currency": "EUR",
        "status": status,
        "charge_date": "2026-11-28",
        "created_at": "2026-11-25T10:00:00.000Z",
        "metadata": metadata,
        "links": {"mandate": mandate},
    }


def test_customers_link_by_metadata_or_a_unique_email_and_upserts_say_what_changed(store: Services) -> None:
    with store.transaction() as conn:
        for record in (
            _with_email("C1", "P1", "aino@example.fi"),
            _with_email("C2", "P2", "shared@example.fi"),
            _with_email("C3", "P3", "shared@example.fi"),
        ):
            upsert_customer(conn, CustomerRecord.model_validate(record), region="FI")

        assert find_link(
            conn, _gc_customer("CU1", "x@y.z", herald_org_id="acme", herald_customer_id="C9")
        ) == (
            "acme",
            "C9",
        )
        assert find_link(conn, _gc_customer("CU2", "Aino@Example.fi")) == ("acme", "C1")
        assert find_link(conn, _gc_customer("CU3", "shared@example.fi")) is None  # two customers: no guess
        assert find_link(conn, _gc_customer("CU4", None)) is None

        assert upsert_gc_customer(conn, _gc_customer("CU2", "aino@example.fi"), NOW) == "added"
        assert upsert_gc_customer(conn, _gc_customer("CU2", "aino@example.fi"), NOW) == "unchanged"
        assert upsert_gc_customer(conn, _gc_customer("CU3", "shared@example.fi"), NOW) == "added"
        assert linked_customer(conn, "CU2") == ("acme", "C1")
        assert linked_customer(conn, "CU3") is None
        assert gc_customer_for(conn, "acme", "C1") == "CU2"
        # An email edit at GoCardless that no longer matches keeps the link found before.
        assert upsert_gc_customer(conn, _gc_customer("CU2", "new@example.fi"), NOW) == "updated"
        assert linked_customer(conn, "CU2") == ("acme", "C1")

        assert unlink_all(conn) == 1
        assert linked_customer(conn, "CU2") is None


def test_active_mandate_for_is_the_newest_active_mandate_of_a_linked_customer(store: Services) -> None:
    with store.transaction() as conn:
        upsert_gc_customer(
            conn, _gc_customer("CU1", None, herald_org_id="acme", herald_customer_id="C1"), NOW
        )
        upsert_gc_customer(conn, _gc_customer("CU2", None), NOW)
        assert active_mandate_for(conn, "acme", "C1") is None
        assert upsert_mandate(conn, _mandate("MD1", "CU1", "pending_submission"), NOW) == "added"
        assert upsert_mandate(conn, _mandate("MD9", "CU2"), NOW) == "added"  # not linked
        assert active_mandate_for(conn, "acme", "C1") is None
        assert upsert_mandate(conn, _mandate("MD1", "CU1", "active"), NOW) == "updated"
        assert upsert_mandate(conn, _mandate("MD1", "CU1", "active"), NOW) == "unchanged"
        assert active_mandate_for(conn, "acme", "C1") == "MD1"
        upsert_mandate(conn, _mandate("MD2", "CU1", "active", created="22"), NOW)
        assert active_mandate_for(conn, "acme", "C1") == "MD2"
        upsert_mandate(conn, _mandate("MD2", "CU1", "cancelled", created="22"), NOW)
        assert active_mandate_for(conn, "acme", "C1") == "MD1"
        assert active_mandate_for(conn, "other", "C1") is None


def test_payments_keep_their_invoice_from_arguments_metadata_or_before(store: Services) -> None:
    with store.transaction() as conn:
        upsert_gc_customer(
            conn, _gc_customer("CU1", None, herald_org_id="acme", herald_customer_id="C1"), NOW
        )
        upsert_mandate(conn, _mandate("MD1", "CU1"), NOW)
        outcome = upsert_payment(conn, _payment("PM1", "MD1"), NOW, org_id="acme", invoice_id="INV-1")
        assert outcome == "added"
        assert upsert_payment(conn, _payment("PM1", "MD1"), NOW) == "unchanged"  # the invoice is kept
        assert upsert_payment(conn, _payment("PM1", "MD1", "submitted"), NOW) == "updated"
        stored = load_payment(conn, "PM1")
        assert stored is not None
        assert (stored["org_id"], stored["invoice_id"], stored["customer_id"]) == ("acme", "INV-1", "C1")
        assert (stored["status"], stored["amount_minor"], stored["currency"]) == ("submitted", 123450, "EUR")

        by_metadata = _payment("PM2", "MD1", herald_org_id="acme", herald_invoice_id="INV-2")
        assert upsert_payment(conn, by_metadata, NOW) == "added"
        second = load_payment(conn, "PM2")
        assert second is not None
        assert (second["invoice_id"], second["customer_id"]) == ("INV-2", "C1")


def test_sync_history_rows_are_written_read_newest_first_and_purged_after_7_days(store: Services) -> None:
    counts = SyncCounts()
    counts.count("added")
    counts.count("updated")
    counts.count("unchanged")
    counts.fail("CU1: email is invalid")
    with store.transaction() as conn:
        old = NOW - timedelta(days=7, seconds=1)
        record_sync(conn, data_type="customers", trigger="full", counts=SyncCounts(), now=old)
        record_sync(conn, data_type="customers", trigger="full", counts=counts, now=NOW - timedelta(days=6))
        record_sync(conn, data_type="payments", trigger="webhook", counts=counts, now=NOW)
        assert purge_sync_history(conn, NOW) == 1
        rows = sync_rows(conn)
    assert [(r["data_type"], r["trigger"]) for r in rows] == [("payments", "webhook"), ("customers", "full")]
    assert (rows[0]["added"], rows[0]["updated"], rows[0]["failed"]) == (1, 1, 1)
    assert rows[0]["detail"] == "CU1: email is invalid"
    assert (rows[0]["provider"], rows[0]["direction"]) == ("gocardless", "inbound")


def test_integrations_connected_disconnected_deleted_and_never_connected(store: Services) -> None:
    configured = Settings(gocardless_access_token="t")
    bare = Settings(gocardless_access_token=None, twilio_account_sid=None, twilio_auth_token=None)
    with store.transaction() as conn:
        # Never connected: active exactly when its settings are present.
        assert integration_active(conn, "gocardless", configured)
        assert not integration_active(conn, "gocardless", bare)
        mark_connected(conn, "gocardless", "CR123", NOW)
        assert integration_active(conn, "gocardless", bare)
        row = load_integration(conn, "gocardless")
        assert row is not None
        assert (row["status"], row["account"]) == ("connected", "CR123")
        assert mark_disconnected(conn, "gocardless", NOW)
        assert not integration_active(conn, "gocardless", configured)
        assert not mark_disconnected(conn, "gocardless", NOW)
        mark_connected(conn, "gocardless", "CR123", NOW)
        assert integration_active(conn, "gocardless", configured)
        assert delete_integration(conn, "gocardless")
        assert not delete_integration(conn, "gocardless")
        assert load_integration(conn, "gocardless") is None
        assert mark_disconnected(conn, "twilio", NOW)  # configured, never connected: switched off
        assert not integration_active(conn, "twilio", configured)
