"""The full recipient rules through the real pipeline (RabbitMQ, SQLite, the Twilio sandbox)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from infra.bootstrap import Services
from infra.settings import Settings
from infra.store.directory import upsert_customer
from infra.store.organisations import mark_opted_out, org_settings, update_org
from infra.store.tables import notifications
from producers.cli import app
from producers.publisher import Publisher
from schemas.directory import CustomerRecord
from tests.conftest import wait_for
from tests.factories import customer, invoice_created, payment_received, reminder_due
from tests.integration.conftest import publish

SIX_CONTACTS = [
    {"contact_id": "P1", "primary": True, "mobile": "+358401000001", "emails": [{"address": "p1@x.fi"}]},
    {"contact_id": "Q2", "mobile": "+358401000002", "emails": [{"address": "q2@x.fi", "notify": False}]},
    {
        "contact_id": "Q3",
        "sms_enabled": True,
        "mobile": "12345",
        "emails": [{"address": "q3@x.fi", "categories": {"new_invoice": False}}],
    },
    {
        "contact_id": "Q4",
        "sms_enabled": True,
        "status": "pending_activation",
        "emails": [{"address": "q4@x.fi"}],
    },
    {"contact_id": "Q5", "sms_enabled": True, "mobile": "+358401000005", "emails": [{"address": "P1@x.fi"}]},
    {"contact_id": "Q6", "sms_enabled": True, "mobile": "+15005550004"},  # the sandbox answers 21610 (STOP)
]


def _history(settings: Settings, invoice: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["history", "--invoice", invoice, "--json", "--reveal"], obj=settings)
    data = json.loads(result.output)
    # Exit 1 says nothing is known of the invoice yet (the callers poll until it is).
    assert result.exit_code == (0 if data["events"] else 1), result.output
    return dict(data)


def _decisions(settings: Settings, invoice: str, event_id: str) -> set[tuple[str, str, str, str]]:
    return {
        (n["contact_id"], n["channel"], n["reason"], n["status"])
        for n in _history(settings, invoice)["notifications"]
        if n["event_id"] == event_id
    }


def _sms_settled(services: Services, count: int) -> bool:
    with services.transaction() as conn:
        rows = conn.execute(select(notifications.c.status).where(notifications.c.channel == "sms")).all()
    return len(rows) == count and not any(r.status in ("pending", "sending") for r in rows)


def test_one_event_for_six_contacts_in_six_states_records_exactly_the_expected_decisions(
    pipeline: Services, twilio_sandbox: Any, smtp_sandbox: Any
) -> None:
    with pipeline.transaction() as conn:
        upsert_customer(conn, CustomerRecord.model_validate(customer(contacts=SIX_CONTACTS)), region="FI")
        mark_opted_out(conn, "acme", "Q5")
    with Publisher(pipeline.settings) as publisher:
        publisher.publish(invoice_created("evt_inv"))
    wait_for(lambda: _sms_settled(pipeline, 6), timeout=60, what="six SMS decisions settled")
    wait_for(
        lambda: ("Q6", "sms", "send", "failed") in _decisions(pipeline.settings, "INV-1", "evt_inv"),
        timeout=30,
    )
    wait_for(lambda: len(smtp_sandbox.messages) == 2, timeout=30, what="the two emails")
    wait_for(
        lambda: ("Q4", "email", "send", "sent") in _decisions(pipeline.settings, "INV-1", "evt_inv"),
        timeout=30,
    )
    wait_for(
        lambda: ("P1", "email", "send", "sent") in _decisions(pipeline.settings, "INV-1", "evt_inv"),
        timeout=30,
    )

    assert _decisions(pipeline.settings, "INV-1", "evt_inv") == {
        ("P1", "sms", "send", "sent"),
        ("P1", "email", "send", "sent"),
        ("Q2", "sms", "contact_sms_off", "skipped"),
        ("Q2", "email", "email_notify_off", "skipped"),
        ("Q3", "sms", "invalid_phone", "skipped"),
        ("Q3", "email", "category_off", "skipped"),
        ("Q4", "sms", "no_phone", "skipped"),
        ("Q4", "email", "send", "sent"),  # pending activation is still notified
        ("Q5", "sms", "opted_out", "skipped"),
        ("Q5", "email", "duplicate_address", "skipped"),  # P1 is told at that address already
        ("Q6", "sms", "send", "failed"),  # replied STOP: Twilio 21610
        ("Q6", "email", "no_email", "skipped"),
    }
    assert [m["to"] for m in twilio_sandbox.messages()] == ["+358401000001"]
    assert sorted(m["To"] for m in smtp_sandbox.messages) == ["p1@x.fi", "q4@x.fi"]

    # 21610 switched SMS off for Q6 from then on; a paid invoice gets no reminder at all.
    with Publisher(pipeline.settings) as publisher:
        publisher.publish(reminder_due("evt_rem1"))
    wait_for(lambda: _sms_settled(pipeline, 12), timeout=60, what="the reminder's SMS decisions")
    assert ("Q6", "sms", "opted_out", "skipped") in _decisions(pipeline.settings, "INV-1", "evt_rem1")
    # History shows the consent row the 21610 wrote beside the skip.
    (skip,) = [
        n
        for n in _history(pipeline.settings, "INV-1")["notifications"]
        if (n["event_id"], n["contact_id"], n["channel"]) == ("evt_rem1", "Q6", "sms")
    ]
    assert skip["consent"]["source"] == "twilio_21610"
    assert (skip["consent"]["toggle"], skip["consent"]["new"]) == ("sms_opted_out", True)
    assert skip["consent"]["actor"].startswith("twilio:ntf_")
    with Publisher(pipeline.settings) as publisher:
        publisher.publish(payment_received("evt_pay"))
        # Route runs several threads: the reminder must not overtake the payment it depends on.
        wait_for(
            lambda: len(_decisions(pipeline.settings, "INV-1", "evt_pay")) == 12,
            timeout=60,
            what="the payment routed",
        )
        publisher.publish(reminder_due("evt_rem2"))
    wait_for(
        lambda: len(_decisions(pipeline.settings, "INV-1", "evt_rem2")) == 12,
        timeout=60,
        what="the second reminder decided",
    )
    assert {reason for _, _, reason, _ in _decisions(pipeline.settings, "INV-1", "evt_rem2")} == {
        "already_paid"
    }

    # The contact's activity: every event that concerned Q6 and what happened to its SMS.
    result = CliRunner().invoke(
        app, ["history", "--contact", "Q6", "--json", "--reveal"], obj=pipeline.settings
    )
    assert result.exit_code == 0, result.output
    activity = json.loads(result.output)
    assert [e["event_id"] for e in activity["events"]] == ["evt_inv", "evt_rem1", "evt_pay", "evt_rem2"]
    sms = [
        (n["event_id"], n["reason"], n["status"], n["error_code"])
        for n in activity["notifications"]
        if n["channel"] == "sms"
    ]
    assert sms == [
        ("evt_inv", "send", "failed", 21610),
        ("evt_rem1", "opted_out", "skipped", None),
        ("evt_pay", "opted_out", "skipped", None),
        ("evt_rem2", "already_paid", "skipped", None),
    ]
    assert {n["contact_id"] for n in activity["notifications"]} == {"Q6"}
    neither = CliRunner().invoke(app, ["history"], obj=pipeline.settings)
    assert neither.exit_code == 2
    assert "give exactly one of --invoice and --contact" in neither.output


def test_sms_credit_is_reserved_at_send_refunded_on_a_refusal_and_short_credit_is_skipped(
    pipeline: Services, twilio_sandbox: Any
) -> None:
    people = {"C1": "+358401000001", "C2": "+15005550001", "C3": "+358401000003"}  # C2: 21211, invalid To
    with pipeline.transaction() as conn:
        for cid, mobile in people.items():
            record = customer(cid, contacts=[{"contact_id": f"P{cid}", "primary": True, "mobile": mobile}])
            upsert_customer(conn, CustomerRecord.model_validate(record), region="FI")
        update_org(conn, "acme", {"buys_credit": True, "credit_balance": 1, "low_balance_threshold": 1})

    def publish_for(cid: str, settled: int) -> None:
        with Publisher(pipeline.settings) as publisher:
            publisher.publish(invoice_created(f"evt_{cid}", id=f"INV-{cid}", customer_id=cid))
        wait_for(lambda: _sms_settled(pipeline, settled), timeout=60, what=f"the SMS for {cid}")

    def balance() -> int:
        with pipeline.transaction() as conn:
            return int(org_settings(conn, "acme")["credit_balance"])

    publish_for("C2", 1)
    assert _decisions(pipeline.settings, "INV-C2", "evt_C2") >= {("PC2", "sms", "send", "failed")}
    assert balance() == 1  # refused for good: the segment came back
    publish_for("C1", 2)
    assert balance() == 0
    warnings = [e for e in _history(pipeline.settings, "INV-C1")["timeline"] if e["what"] == "warning"]
    assert [w["detail"] for w in warnings] == ["SMS credit balance 0 is under the threshold 1"]
    publish_for("C3", 3)
    assert ("PC3", "sms", "send", "skipped") in _decisions(pipeline.settings, "INV-C3", "evt_C3")
    details = [e for e in _history(pipeline.settings, "INV-C3")["timeline"] if e["what"] == "skipped"]
    assert details[0]["detail"] == "insufficient_credit: needs 1, balance 0"
    assert [m["to"] for m in twilio_sandbox.messages()] == ["+358401000001"]


@pytest.mark.parametrize(
    ("event_id", "source", "detail"),
    [
        pytest.param(
            "evt_broken",
            # As if saved before the context changed: the save-time check would refuse it today.
            "Lasku {{ invoice.nubmer }}",
            "template: invoice.sms.fi line 1: unknown variable 'invoice.nubmer'",
            id="caught-at-load",
        ),
        pytest.param(
            "evt_long",
            "{% for i in range(170) %}0123456789{% endfor %}",
            "SMS body is 1700 characters, over the limit of 1600",
            id="body-over-1600-characters",
        ),
    ],
)
def test_an_organisation_template_that_cannot_be_sent_is_recorded_as_failed_for_good_and_never_sent(
    pipeline: Services, twilio_sandbox: Any, event_id: str, source: str, detail: str
) -> None:
    from infra.store.templates import save_override

    with pipeline.transaction() as conn:
        upsert_customer(conn, CustomerRecord.model_validate(customer()), region="FI")
        save_override(conn, "acme", ("invoice", "sms", "fi", "body"), source)
    publish(pipeline.settings, invoice_created(event_id))
    wait_for(
        lambda: ("P1", "sms", "send", "failed") in _decisions(pipeline.settings, "INV-1", event_id),
        timeout=30,
    )
    failed = [e for e in _history(pipeline.settings, "INV-1")["timeline"] if e["what"] == "failed"]
    assert failed[0]["detail"] == detail
    assert twilio_sandbox.messages() == []
