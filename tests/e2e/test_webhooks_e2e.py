"""Statuses back to the upstream as a user runs it: ``herald sandbox webhook-receiver`` in its own
process, an endpoint added with ``herald webhooks add``, every Procfile process under honcho
(``webhooks`` among them), invoices published: each sent SMS reaches the receiver as decided, sent,
delivered, in that order, verified; and the same events come out of the ``PREFIX.notifications``
exchange with their types as routing keys."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pika

from infra.metrics import METRICS_OFFSETS
from tests.conftest import REPO, wait_for
from tests.e2e.conftest import BIN, Deployment, free_port, sample, scrape, start_sandbox, write_jsonl
from tooling.demo.data import demo_customers, invoice_events

EVENTS = 20


def _http(url: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - the local receiver
        return json.loads(response.read())


def _received(url: str) -> list[dict[str, Any]] | None:
    try:
        return list(_http(f"{url}/sandbox/received?accepted=true")["received"])
    except OSError:
        return None


def _webhooks_total(metrics_port: int, outcome: str) -> float:
    """``herald_webhooks_total{outcome=…}`` on the webhooks process's ``/metrics`` (0 while absent)."""
    return sample(scrape(metrics_port), f'herald_webhooks_total{{outcome="{outcome}"}}')


def test_every_outcome_reaches_the_receiver_process_signed_and_in_order(deployment: Deployment) -> None:
    start_sandbox(deployment)
    metrics_port = free_port()  # the webhooks process's; the others take the ports below it
    deployment.env["HERALD_METRICS_PORT"] = str(metrics_port - METRICS_OFFSETS["webhooks"])
    contacts = write_jsonl(deployment.workdir / "contacts.jsonl", demo_customers(EVENTS))
    assert deployment.herald("contacts", "import", str(contacts)).returncode == 0
    port = free_port()
    receiver = f"http://127.0.0.1:{port}"
    deployment.start(
        str(BIN / "herald"), "sandbox", "webhook-receiver", "--port", str(port), log="receiver.log"
    )
    wait_for(lambda: _received(receiver) is not None, timeout=30, what="the receiver sandbox")
    added = deployment.herald("webhooks", "add", receiver + "/herald", "--org", "acme")
    assert added.returncode == 0, added.stderr
    lines = dict(line.split(" ", 1) for line in added.stdout.splitlines())
    _http(f"{receiver}/sandbox/secrets", {"secrets": [lines["secret"]]})

    deployment.start(str(BIN / "honcho"), "-f", str(REPO / "Procfile"), "start", log="workers.log")
    env = deployment.env
    exchange = f"{env['HERALD_QUEUE_PREFIX']}.notifications"
    connection = pika.BlockingConnection(pika.URLParameters(env["HERALD_AMQP_URL"]))
    try:

        def declared() -> bool:
            channel = connection.channel()
            try:
                channel.exchange_declare(exchange, passive=True)
                return True
            except pika.exceptions.ChannelClosedByBroker:
                return False

        wait_for(declared, timeout=60, what="the status exchange, declared by the webhooks process")
        channel = connection.channel()
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(queue, exchange, routing_key="notification.*")

        events = write_jsonl(deployment.workdir / "events.jsonl", invoice_events(EVENTS, run="hooks"))
        assert deployment.herald("publish", str(events)).returncode == 0

        def delivered_all() -> list[dict[str, Any]] | None:
            got = _received(receiver) or []
            delivered = [r for r in got if r["type"] == "notification.delivered"]
            return got if len(delivered) >= EVENTS else None

        got = wait_for(delivered_all, timeout=180, interval=0.5, what="every delivered status as a webhook")
        by_notification: dict[str, list[str]] = {}
        for r in got:
            data = r["payload"]["data"]
            by_notification.setdefault(data["notification_id"], []).append(r["type"])
        sent = [types for types in by_notification.values() if "notification.sent" in types]
        assert len(sent) == EVENTS
        assert all(
            types == ["notification.decided", "notification.sent", "notification.delivered"] for types in sent
        )
        skipped = [types for types in by_notification.values() if "notification.sent" not in types]
        assert skipped
        assert all(types == ["notification.decided"] for types in skipped)
        assert all(r["verified"] for r in got)
        assert "+35840" not in json.dumps(got)  # recipients masked

        def on_exchange() -> int:
            return int(channel.queue_declare(queue, passive=True).method.message_count)

        wait_for(lambda: on_exchange() >= len(got), timeout=60, what="the same events on the exchange")
        keys = []
        while (message := channel.basic_get(queue, auto_ack=True))[0] is not None:
            method, properties, body = message
            assert method.routing_key == json.loads(body)["type"]
            keys.append(properties.message_id)
        assert set(keys) == {r["webhook_id"] for r in got}
    finally:
        connection.close()
    shown = deployment.herald(
        "webhooks", "deliveries", "--endpoint", lines["endpoint"], "--org", "acme", "--json"
    )
    assert shown.returncode == 0
    assert {a["response"] for a in json.loads(shown.stdout)} == {204}
    # The webhooks process counted what it did: each event fanned out to the one endpoint,
    # delivered there and published on the exchange; nothing failed, no endpoint paused.
    final = len(_received(receiver) or [])
    assert final >= len(got) > EVENTS
    counted = ("fanned_out", "delivered", "published")
    wait_for(
        lambda: all(_webhooks_total(metrics_port, o) == final for o in counted),
        timeout=30,
        what=f"herald_webhooks_total at {final} fanned out, delivered and published",
    )
    assert _webhooks_total(metrics_port, "failed") == _webhooks_total(metrics_port, "paused") == 0
    assert 'herald_webhooks_total{outcome="paused"} 0.0' in (scrape(metrics_port) or "")
    assert lines["secret"] not in (deployment.workdir / "workers.log").read_text()
