"""Manual notify: the preview shows exactly what is then sent, through the real pipeline."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from typer.testing import CliRunner

from infra.bootstrap import Services
from infra.settings import Settings
from infra.store.directory import upsert_customer
from infra.store.organisations import update_org
from infra.store.tables import notifications
from producers.cli import app
from schemas.directory import CustomerRecord
from tests.conftest import wait_for
from tests.factories import customer, invoice_created
from tests.integration.conftest import publish

CONTACTS = [
    {"contact_id": "P1", "primary": True, "name": "Aino", "mobile": "+358401000001", "locale": "fi"},
    {"contact_id": "Q1", "name": "Pekka", "mobile": "+358401000002", "sms_enabled": True, "locale": "ja"},
    {"contact_id": "Q2", "name": "Off", "mobile": "+358401000003"},
]


def _cli(settings: Settings, *args: str) -> Any:
    result = CliRunner().invoke(app, list(args), obj=settings)
    return result


def _sent(services: Services, *columns: Any, what: str) -> list[Any]:
    """Wait until two notifications are ``sent``; their ``columns``."""

    def both_sent() -> list[Any] | None:
        with services.transaction() as conn:
            rows = conn.execute(select(*columns).where(notifications.c.status == "sent")).all()
        return rows if len(rows) == 2 else None

    return wait_for(both_sent, timeout=30, what=what)


def test_preview_then_send_sends_exactly_what_the_preview_showed_recorded_as_manual(
    pipeline: Services, twilio_sandbox: Any
) -> None:
    with pipeline.transaction() as conn:
        upsert_customer(conn, CustomerRecord.model_validate(customer(contacts=CONTACTS)), region="FI")
        update_org(conn, "acme", {"buys_credit": True, "credit_balance": 10, "name": "Acme Oy"})
    publish(pipeline.settings, invoice_created("evt_draft", send=False))  # created, not sent automatically

    def stored() -> bool:
        # --json exits 1 until the event is stored.
        shown = _cli(pipeline.settings, "history", "--invoice", "INV-1", "--json")
        return shown.exit_code == 0 and bool(json.loads(shown.output)["events"])

    wait_for(stored, timeout=30, what="the draft invoice stored")
    shown = _cli(
        pipeline.settings, "notify", "preview", "--invoice", "INV-1", "--channel", "sms", "--json", "--reveal"
    )
    assert shown.exit_code == 0, shown.output
    preview = json.loads(shown.output)
    by_contact = {r["contact_id"]: r for r in preview["recipients"]}
    assert by_contact["P1"]["text"].startswith("Lasku 1001: 1 234,50 €")
    assert (by_contact["P1"]["encoding"], by_contact["P1"]["segments"], by_contact["P1"]["cost"]) == (
        "GSM-7",
        1,
        1,
    )
    assert by_contact["Q1"]["text"].startswith("請求書 1001")
    assert (by_contact["Q1"]["encoding"], by_contact["Q1"]["cost"]) == ("UCS-2", by_contact["Q1"]["segments"])
    assert by_contact["Q2"]["reason"] == "contact_sms_off"

    def send(preview_id: str) -> Any:
        args = ("notify", "send", "--invoice", "INV-1", "--channel", "sms", "--preview", preview_id)
        return _cli(pipeline.settings, *args)

    refused = send("000000000000")
    assert refused.exit_code == 1
    assert "changed since preview 000000000000" in refused.output

    sent = send(preview["preview"])
    assert sent.exit_code == 0, sent.output

    _sent(pipeline, notifications.c.contact_id, what="the two manual SMS sent")
    bodies = {m["to"]: m["body"] for m in twilio_sandbox.messages()}
    assert bodies == {"+358401000001": by_contact["P1"]["text"], "+358401000002": by_contact["Q1"]["text"]}
    history = json.loads(_cli(pipeline.settings, "history", "--invoice", "INV-1", "--json").output)
    assert [e["outcome"] for e in history["events"]] == ["manual_only", "manual"]


def test_a_preview_that_cannot_render_says_which_template_and_line_and_exits_1(store: Services) -> None:
    from infra.store.notifications import record_event
    from infra.store.templates import save_override
    from schemas.events import event_adapter
    from schemas.validation import event_to_json

    event = event_adapter.validate_python(invoice_created("evt_draft", send=False))
    with store.transaction() as conn:
        upsert_customer(conn, CustomerRecord.model_validate(customer(contacts=CONTACTS)), region="FI")
        record_event(conn, event, event_to_json(event), "manual_only")
        # As if saved before the save-time check knew better.
        save_override(conn, "acme", ("invoice", "sms", "fi", "body"), "Lasku\n{{ amount + 1 }}")
    shown = _cli(
        store.settings, "notify", "preview", "--invoice", "INV-1", "--org", "acme", "--channel", "sms"
    )
    assert shown.exit_code == 1, shown.output
    assert "error: " in shown.output
    assert "invoice.sms.fi line 2: " in shown.output
    assert "Traceback" not in shown.output


def test_a_manual_send_on_both_channels_sends_the_email_too_not_a_crash(
    pipeline: Services, twilio_sandbox: Any, smtp_sandbox: Any
) -> None:
    aino = {**CONTACTS[0], "emails": [{"address": "aino@example.fi"}]}
    with pipeline.transaction() as conn:
        upsert_customer(conn, CustomerRecord.model_validate(customer(contacts=[aino])), region="FI")
    publish(pipeline.settings, invoice_created("evt_draft", send=False))
    wait_for(
        lambda: _cli(pipeline.settings, "history", "--invoice", "INV-1", "--json").exit_code == 0,
        timeout=30,
        what="the draft invoice stored",
    )
    shown = _cli(pipeline.settings, "notify", "preview", "--invoice", "INV-1", "--json")
    assert shown.exit_code == 0, shown.output
    preview = json.loads(shown.output)
    assert sorted(r["channel"] for r in preview["recipients"]) == ["email", "sms"]
    sent = _cli(pipeline.settings, "notify", "send", "--invoice", "INV-1", "--preview", preview["preview"])
    assert sent.exit_code == 0, sent.output

    rows = _sent(
        pipeline, notifications.c.channel, notifications.c.subject, what="the SMS and the email sent"
    )
    (subject,) = [r.subject for r in rows if r.channel == "email"]
    assert subject == next(r["text"] for r in preview["recipients"] if r["channel"] == "email")
    assert [m["Subject"] for m in smtp_sandbox.messages] == [subject]
    assert len(twilio_sandbox.messages()) == 1
