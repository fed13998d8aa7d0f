"""``herald gocardless sync``, ``sync history``, ``integrations connect|disconnect|delete`` and
``payments cancel`` (CLI and HTTP), against the GoCardless and Twilio sandboxes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from infra.bootstrap import Services
from infra.settings import get_settings
from infra.store.api_keys import create_key
from infra.store.gocardless import count_rows, linked_customer
from infra.store.integrations import load_integration
from infra.store.tables import gc_customers, gc_mandates, gc_payments, sync_history
from producers.api.app import create_app
from producers.cli import app
from schemas.access import Level
from tooling.sandboxes.gocardless import GoCardlessSandbox

runner = CliRunner()


def _herald(*args: str) -> Any:
    return runner.invoke(app, list(args))


def _history(services: Services) -> list[dict[str, Any]]:
    result = _herald("sync", "history", "--json")
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout))


@pytest.mark.timeout(180)
def test_a_full_sync_of_1000_customers_with_3_bad_ones_counts_exactly_and_a_second_adds_nothing(
    gc_sandbox: GoCardlessSandbox, gc_services: Services
) -> None:
    customers = gc_sandbox.add_customers(1000, bad_emails=3)
    mandates = [m["id"] for m in gc_sandbox.records("mandates")]
    for mandate in mandates[:20]:
        gc_sandbox.add_payment(mandate, 1500)

    first = _herald("gocardless", "sync")
    assert first.exit_code == 1, first.output  # some records failed
    assert "customers: 997 added, 0 updated, 3 failed" in first.stdout
    assert "mandates: 1000 added, 0 updated, 0 failed" in first.stdout
    assert "payments: 20 added, 0 updated, 0 failed" in first.stdout
    rows = {r["data_type"]: r for r in _history(gc_services)}
    assert {k: (r["added"], r["updated"], r["failed"]) for k, r in rows.items()} == {
        "customers": (997, 0, 3),
        "mandates": (1000, 0, 0),
        "payments": (20, 0, 0),
    }
    assert {(r["trigger"], r["direction"], r["provider"]) for r in rows.values()} == {
        ("full", "inbound", "gocardless")
    }
    bad = [c["id"] for c in customers[:3]]
    assert rows["customers"]["detail"] == "; ".join(f"{i}: email is not a valid address" for i in bad)
    with gc_services.reading() as conn:
        assert count_rows(conn, gc_customers) == 997
        assert count_rows(conn, gc_mandates) == 1000
        assert count_rows(conn, gc_payments) == 20

    gc_sandbox.set_payment_status(gc_sandbox.records("payments")[0]["id"], "submitted", webhook=False)
    again = _herald("gocardless", "sync")
    assert "customers: 0 added, 0 updated, 3 failed" in again.stdout
    assert "mandates: 0 added, 0 updated, 0 failed" in again.stdout
    assert "payments: 0 added, 1 updated, 0 failed" in again.stdout
    assert len(_history(gc_services)) == 6

    table = _herald("sync", "history")
    assert table.exit_code == 0
    assert "customers" in table.stdout
    assert "full" in table.stdout


def test_connect_checks_the_token_and_refuses_a_bad_one_with_gocardless_s_message(
    gc_sandbox: GoCardlessSandbox, gc_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    connected = _herald("integrations", "connect", "gocardless")
    assert connected.exit_code == 0, connected.output
    assert "CR000SANDBOX" in connected.stdout
    with gc_services.reading() as conn:
        row = load_integration(conn, "gocardless")
    assert row is not None
    assert (row["status"], row["account"]) == ("connected", "CR000SANDBOX")

    monkeypatch.setenv("HERALD_GOCARDLESS_ACCESS_TOKEN", "not-the-token")
    get_settings.cache_clear()
    refused = _herald("integrations", "connect", "gocardless")
    assert refused.exit_code == 1
    assert "Access token not found" in refused.output


def test_connect_twilio_checks_sid_token_and_the_from_number(
    gc_services: Services, twilio_sandbox: Any, herald_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("HERALD_TWILIO_ACCOUNT_SID", "HERALD_TWILIO_AUTH_TOKEN", "HERALD_TWILIO_FROM"):
        monkeypatch.setenv(key, herald_env[key])
    monkeypatch.setenv("HERALD_TWILIO_BASE_URL", twilio_sandbox.url)
    get_settings.cache_clear()
    ok = _herald("integrations", "connect", "twilio")
    assert ok.exit_code == 0, ok.output
    assert herald_env["HERALD_TWILIO_ACCOUNT_SID"] in ok.stdout

    monkeypatch.setenv("HERALD_TWILIO_FROM", "+15005550007")
    get_settings.cache_clear()
    unowned = _herald("integrations", "connect", "twilio")
    assert unowned.exit_code == 1
    assert "does not own HERALD_TWILIO_FROM +15005550007" in unowned.output

    monkeypatch.setenv("HERALD_TWILIO_AUTH_TOKEN", "wrong")
    get_settings.cache_clear()
    refused = _herald("integrations", "connect", "twilio")
    assert refused.exit_code == 1
    assert "Authenticate" in refused.output
    with gc_services.reading() as conn:
        row = load_integration(conn, "twilio")
    assert row is not None
    assert row["status"] == "connected"  # a failed re-check changes nothing


def test_disconnect_stops_sync_and_keeps_links_and_delete_removes_them(
    gc_sandbox: GoCardlessSandbox, gc_services: Services
) -> None:
    customer = gc_sandbox.add_customer(
        email="a@example.com", metadata={"herald_org_id": "acme", "herald_customer_id": "C1"}
    )
    assert _herald("gocardless", "sync").exit_code == 0
    assert _herald("integrations", "disconnect", "gocardless").exit_code == 0
    stopped = _herald("gocardless", "sync")
    assert stopped.exit_code == 2
    assert "disconnected" in stopped.output
    with gc_services.reading() as conn:
        assert linked_customer(conn, customer["id"]) == ("acme", "C1")
        assert len(conn.execute(select(sync_history)).all()) == 3  # the refused sync wrote nothing

    assert _herald("integrations", "connect", "gocardless").exit_code == 0
    deleted = _herald("integrations", "delete", "gocardless")
    assert "1 customer link(s) removed" in deleted.stdout
    with gc_services.reading() as conn:
        assert linked_customer(conn, customer["id"]) is None
        assert load_integration(conn, "gocardless") is None


def _pending_and_submitted(sandbox: GoCardlessSandbox) -> tuple[str, str]:
    customer = sandbox.add_customer(email="payer@example.com")
    mandate = sandbox.add_mandate(customer["id"])["id"]
    ours = {"herald_org_id": "acme", "herald_invoice_id": "INV-1"}
    pending = sandbox.add_payment(mandate, metadata=ours)["id"]
    return pending, sandbox.add_payment(mandate, status="submitted", metadata=ours)["id"]


def test_payments_cancel_on_the_cli_only_while_pending_submission(
    gc_sandbox: GoCardlessSandbox, gc_services: Services
) -> None:
    pending, submitted = _pending_and_submitted(gc_sandbox)
    done = _herald("payments", "cancel", pending)
    assert done.exit_code == 0, done.output
    assert f"{pending} cancelled" in done.stdout
    assert gc_sandbox.record(pending)["status"] == "cancelled"
    with gc_services.reading() as conn:
        assert conn.execute(select(gc_payments.c.status).where(gc_payments.c.gc_id == pending)).scalar() == (
            "cancelled"
        )

    refused = _herald("payments", "cancel", submitted)
    assert refused.exit_code == 1
    expected = (
        f"cannot cancel {submitted}: it is submitted; only pending_submission payments can be cancelled"
    )
    assert expected in refused.output.replace("\n", " ")
    assert gc_sandbox.record(submitted)["status"] == "submitted"


def test_payments_cancel_over_http_answers_409_with_the_json_error_shape(
    gc_sandbox: GoCardlessSandbox, gc_services: Services
) -> None:
    pending, submitted = _pending_and_submitted(gc_sandbox)
    assert _herald("gocardless", "sync").exit_code == 0  # the API answers for payments herald knows
    with gc_services.transaction() as conn:
        _, key = create_key(conn, "acme", Level.SEND, "test")
    client = TestClient(create_app(get_settings()), headers={"Authorization": f"Bearer {key}"})
    done = client.post(f"/payments/{pending}/cancel")
    assert done.status_code == 200
    assert done.json() == {"payment": {"id": pending, "status": "cancelled"}}

    refused = client.post(f"/payments/{submitted}/cancel")
    assert refused.status_code == 409
    assert refused.json() == {
        "error": {
            "code": "not_cancellable",
            "message": f"cannot cancel {submitted}: it is submitted; "
            "only pending_submission payments can be cancelled",
            "details": [],
        }
    }
    missing = client.post("/payments/PM000000000000/cancel")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert gc_sandbox.record(submitted)["status"] == "submitted"
