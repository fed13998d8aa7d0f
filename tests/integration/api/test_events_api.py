"""``POST /events`` end to end: an event published through the API becomes an SMS at the Twilio sandbox."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from infra.bootstrap import Services
from infra.settings import get_settings
from infra.store.api_keys import create_key
from infra.store.directory import upsert_customer
from producers.api.app import create_app
from schemas.access import Level
from schemas.directory import CustomerRecord
from tests.conftest import wait_for
from tests.factories import customer, invoice_created


def test_an_event_posted_to_the_api_is_sent_as_sms_and_bad_ones_are_reported_by_index(
    pipeline: Services, twilio_sandbox: Any
) -> None:
    with pipeline.transaction() as conn:
        upsert_customer(conn, CustomerRecord.model_validate(customer()), region="FI")
        _, key = create_key(conn, "acme", Level.SEND, "billing")
    client = TestClient(create_app(get_settings()))
    batch = [
        invoice_created("evt_api_1"),
        {**invoice_created("evt_api_2"), "org_id": "someone-else"},
        {**invoice_created("evt_api_3"), "type": "invoice.deleted"},
    ]
    answer = client.post("/events", json=batch, headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 207, answer.text
    report = answer.json()
    assert report["published"] == ["evt_api_1"]
    assert [r["index"] for r in report["rejected"]] == [1, 2]
    assert "unknown event type 'invoice.deleted'" in report["rejected"][1]["reason"]

    def sent() -> list[dict[str, Any]]:
        return [m for m in twilio_sandbox.messages() if m["to"] == "+358401234567"]

    messages = wait_for(sent, timeout=30, what="the SMS of the event posted to the API")
    assert len(messages) == 1
    assert messages[0]["body"].startswith("Lasku 1001")

    one = client.post(
        "/events", json=invoice_created("evt_api_1"), headers={"Authorization": f"Bearer {key}"}
    )
    assert (one.status_code, one.json()) == (202, {"published": ["evt_api_1"], "rejected": []})
