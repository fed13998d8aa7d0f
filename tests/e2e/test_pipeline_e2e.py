"""200 invoice events through the Procfile processes, as a user runs them, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pika
from twilio.rest import Client

from tests.conftest import REPO, wait_for
from tests.e2e.conftest import BIN, Deployment, start_sandbox, write_jsonl
from tooling.demo.data import demo_customers, invoice_events


def _sent(deployment: Deployment) -> list[tuple[str, str]] | None:
    """The (status, provider id) of the 200 notifications to send, once all are sent."""
    if not deployment.database_exists():
        return None
    try:
        rows = deployment.query("SELECT status, provider_id FROM notifications WHERE reason = 'send'")
    except Exception:  # the workers have not migrated the database yet
        return None
    if len(rows) == 200 and all(status in ("sent", "delivered") for status, _ in rows):
        return [(s, p) for s, p in rows]
    return None


def test_200_invoice_events_become_exactly_200_sms_each_in_history_as_sent(
    deployment_on_each_store: Deployment,
) -> None:
    deployment = deployment_on_each_store
    sandbox_url = start_sandbox(deployment)
    contacts = write_jsonl(deployment.workdir / "contacts.jsonl", demo_customers(200))
    imported = deployment.herald("contacts", "import", str(contacts))
    assert imported.returncode == 0, imported.stderr
    assert "203 created, 0 updated, 0 unchanged, 0 failed" in imported.stdout

    deployment.start(str(BIN / "honcho"), "-f", str(REPO / "Procfile"), "start", log="workers.log")
    events = write_jsonl(deployment.workdir / "events.jsonl", invoice_events(200, run="e2e"))
    published = deployment.herald("publish", str(events))
    assert published.returncode == 0, published.stderr
    assert "published 200 events; rejected 0 lines" in published.stdout
    # The same file again: the event ids are the idempotency keys, nobody is told twice.
    again = deployment.herald("publish", str(events))
    assert again.returncode == 0, again.stderr

    rows = wait_for(lambda: _sent(deployment), timeout=180, interval=0.5, what="200 notifications sent")
    env = deployment.env
    client = Client(env["HERALD_TWILIO_ACCOUNT_SID"], env["HERALD_TWILIO_AUTH_TOKEN"])
    client.api.base_url = sandbox_url
    captured = client.messages.list(page_size=100)
    assert len(captured) == 200
    assert {m.sid for m in captured} == {provider_id for _, provider_id in rows}
    assert len({m.to for m in captured}) == 200

    # The sandbox calls back (signed) to the api process; history moves each one to delivered.
    def delivered() -> bool:
        rows = deployment.query("SELECT count(*) FROM notifications WHERE status = 'delivered'")
        return rows[0][0] == 200

    wait_for(delivered, timeout=120, interval=0.5, what="200 delivered status callbacks")
    # Every contact is decided on every channel: contact persons get no SMS by default,
    # and the demo directory has no email addresses.
    skipped = deployment.query(
        "SELECT channel, reason, count(*) FROM notifications"
        " WHERE status = 'skipped' GROUP BY 1, 2 ORDER BY 1, 2"
    )
    assert [tuple(r) for r in skipped] == [("email", "no_email", 400), ("sms", "contact_sms_off", 200)]

    shown = deployment.herald("history", "--invoice", "INV-00007", "--json")
    assert shown.returncode == 0, shown.stderr
    history = json.loads(shown.stdout)
    steps = [entry["what"] for entry in history["timeline"]]
    assert steps == [
        "event_received",
        "decided",
        "decided",
        "decided",
        "decided",
        "attempt",
        "sent",
        "delivered",
    ]
    decided = sorted((e["channel"], e["reason"]) for e in history["timeline"] if e["what"] == "decided")
    assert decided == [
        ("email", "no_email"),
        ("email", "no_email"),
        ("sms", "contact_sms_off"),
        ("sms", "send"),
    ]
    (notification,) = [n for n in history["notifications"] if n["reason"] == "send"]
    assert notification["status"] == "delivered"
    assert notification["provider_id"].startswith("SM")
    assert notification["recipient"].endswith("07")
    assert "+358400000007" not in shown.stdout  # masked unless --reveal

    table = deployment.herald("history", "--invoice", "INV-00007")
    assert table.returncode == 0
    assert notification["provider_id"] in table.stdout

    # Any language's AMQP client: plain JSON to the herald.events exchange, through the ingest process.
    raw = invoice_events(1, start=900, run="raw")[0]
    connection = pika.BlockingConnection(pika.URLParameters(env["HERALD_AMQP_URL"]))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            f"{env['HERALD_QUEUE_PREFIX']}.events",
            "invoice.created",
            json.dumps(raw).encode(),
            pika.BasicProperties(content_type="application/json", delivery_mode=2),
        )
    finally:
        connection.close()
    wait_for(lambda: len(client.messages.list(page_size=100)) == 201, timeout=60, what="the raw event's SMS")
