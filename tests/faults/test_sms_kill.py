"""The ``sms`` process killed with SIGKILL while 500 SMS are in flight, then restarted:
exactly 500 SMS at the provider, none twice, all 500 delivered in history."""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from typing import Any

from twilio.rest import Client

from producers.demo_data import demo_customers, invoice_events
from tests.conftest import wait_for
from tests.e2e.conftest import BIN, Deployment, start_sandbox, write_jsonl

EVENTS = 500


def _faults(sandbox_url: str, **spec: Any) -> dict[str, Any]:
    """Tell the sandbox process how to misbehave; returns its fault state."""
    request = urllib.request.Request(  # noqa: S310 - a loopback URL the test built
        f"{sandbox_url}/sandbox/faults",
        data=json.dumps(spec).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        return dict(json.loads(response.read()))


SENT = "SELECT count(*) FROM notifications WHERE channel = 'sms' AND provider_id IS NOT NULL"
DELIVERED = "SELECT count(*) FROM notifications WHERE channel = 'sms' AND status = 'delivered'"


def _count(deployment: Deployment, query: str) -> int:
    try:
        return int(deployment.query(query)[0][0])
    except Exception:  # the workers have not migrated the database yet
        return 0


def test_sms_killed_mid_run_and_restarted_sends_each_of_500_exactly_once(deployment: Deployment) -> None:
    # A short in-flight window, so the attempts cut short are reconciled within the test's time.
    deployment.env.update({"HERALD_TWILIO_TIMEOUT_SECONDS": "2", "HERALD_SEND_CALL_MAX_WAIT_SECONDS": "1"})
    sandbox_url = start_sandbox(deployment)
    _faults(sandbox_url, delay_seconds=0.02)
    contacts = write_jsonl(deployment.workdir / "contacts.jsonl", demo_customers(200))
    assert deployment.herald("contacts", "import", str(contacts)).returncode == 0
    herald = str(BIN / "herald")
    for stage in ("route", "render", "history"):
        deployment.start(herald, "worker", stage, log=f"{stage}.log")
    deployment.start(herald, "api", "--port", deployment.env["HERALD_API_PORT"], log="api.log")
    sms = deployment.start(herald, "worker", "sms", log="sms-1.log")

    events = write_jsonl(deployment.workdir / "events.jsonl", invoice_events(EVENTS, run="kill"))
    assert deployment.herald("publish", str(events)).returncode == 0
    wait_for(lambda: _count(deployment, SENT) >= 100, timeout=120, what="100 SMS sent")

    # Slow the provider right down, so the kill lands inside requests it goes on to accept.
    _faults(sandbox_url, delay_seconds=1.0)
    wait_for(
        lambda: _faults(sandbox_url)["in_flight"] >= 2, timeout=30, what="requests in flight at the provider"
    )
    os.killpg(sms.pid, signal.SIGKILL)
    sms.wait(timeout=10)
    _faults(sandbox_url, delay_seconds=0.02)
    deployment.start(herald, "worker", "sms", log="sms-2.log")

    wait_for(
        lambda: _count(deployment, DELIVERED) == EVENTS,
        timeout=240,
        interval=0.5,
        what=f"{EVENTS} delivered",
    )
    env = deployment.env
    client = Client(env["HERALD_TWILIO_ACCOUNT_SID"], env["HERALD_TWILIO_AUTH_TOKEN"])
    client.api.base_url = sandbox_url
    captured = client.messages.list(page_size=1000)
    assert len(captured) == EVENTS
    assert len({(m.to, m.body) for m in captured}) == EVENTS  # each invoice's text once: none twice
    rows = deployment.query("SELECT provider_id FROM notifications WHERE channel = 'sms' AND reason = 'send'")
    assert {r[0] for r in rows} == {m.sid for m in captured}
    # The kill cut attempts short after Twilio had accepted them (it answered them after the kill).
    # Each was resolved without a resend: by its status callback, which names the notification, or
    # by reconciling against Twilio's list on redelivery.
    accepted = deployment.query("SELECT count(*) FROM delivery_attempts WHERE outcome = 'accepted'")[0][0]
    assert accepted < EVENTS
