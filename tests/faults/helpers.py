"""What every fault test does: start the Procfile processes, publish a run, break something,
and check that each notification of the run was sent exactly once and history agrees.

"Agrees" means: every ``send`` SMS notification of the run is ``delivered`` with Twilio's id; the
provider holds exactly one message per notification (no (number, text) twice) and its ids are the
ones history holds; no notification's attempt log has two ``accepted`` / ``reconciled`` rows.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import urllib.request
from typing import Any

import pika
from twilio.rest import Client

from infra import amqp_nodes, topology
from tests.conftest import wait_for
from tests.e2e.conftest import BIN, Deployment, group_stacks, start_sandbox, write_jsonl
from tooling.demo.data import demo_customers, invoice_events

HERALD = str(BIN / "herald")
#: The dramatiq stages a run of invoices goes through (email: demo contacts have no address).
STAGES = ("route", "render", "sms", "history")

SENT = "SELECT count(*) FROM notifications WHERE channel = 'sms' AND provider_id IS NOT NULL"
DELIVERED = "SELECT count(*) FROM notifications WHERE channel = 'sms' AND status = 'delivered'"
ROUTED = "SELECT count(*) FROM notifications WHERE channel = 'sms' AND reason = 'send'"


def faults(sandbox_url: str, **spec: Any) -> dict[str, Any]:
    """Tell the sandbox process how to misbehave (``POST /sandbox/faults``); returns its fault state."""
    request = urllib.request.Request(  # noqa: S310 - a loopback URL the test built
        f"{sandbox_url}/sandbox/faults",
        data=json.dumps(spec).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        return dict(json.loads(response.read()))


def count(deployment: Deployment, query: str) -> int:
    """One number from the deployment's database; 0 before the workers have migrated it."""
    try:
        return int(deployment.query(query)[0][0])
    except Exception:
        return 0


def prepare(deployment: Deployment, customers: int = 200, **env: str) -> str:
    """Sandboxes up, the directory imported, settings for quick fault runs; returns the Twilio URL."""
    # A short in-flight window, so attempts cut short are reconciled within the test's time.
    deployment.env.update(
        {"HERALD_TWILIO_TIMEOUT_SECONDS": "2", "HERALD_SEND_CALL_MAX_WAIT_SECONDS": "1", **env}
    )
    sandbox_url = start_sandbox(deployment)
    contacts = write_jsonl(deployment.workdir / "contacts.jsonl", demo_customers(customers))
    assert deployment.herald("contacts", "import", str(contacts)).returncode == 0
    return sandbox_url


def start(deployment: Deployment, name: str, tag: str = "1") -> subprocess.Popen[bytes]:
    """One Procfile process: a stage's worker (``ingest`` too), ``api`` or ``scheduler``."""
    if name == "api":
        argv = [HERALD, "api", "--port", deployment.env["HERALD_API_PORT"]]
    elif name == "scheduler":
        argv = [HERALD, "scheduler", "--interval", "5"]
    else:
        argv = [HERALD, "worker", name]
    return deployment.start(*argv, log=f"{name}-{tag}.log")


def start_all(
    deployment: Deployment, names: tuple[str, ...] = (*STAGES, "api"), tag: str = "1"
) -> dict[str, Any]:
    """Start each named process; returns them by name."""
    return {name: start(deployment, name, tag) for name in names}


def start_run(
    deployment: Deployment,
    names: tuple[str, ...] = (*STAGES, "api"),
    delay_seconds: float | None = None,
    **env: str,
) -> tuple[str, dict[str, Any]]:
    """A fault test's opening: ``prepare`` (with ``env``), the provider slowed to
    ``delay_seconds`` a request when given, and ``names`` started; the Twilio URL and the
    processes by name."""
    sandbox_url = prepare(deployment, **env)
    if delay_seconds is not None:
        faults(sandbox_url, delay_seconds=delay_seconds)
    return sandbox_url, start_all(deployment, names)


def kill(process: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGKILL, timeout: float = 60) -> None:
    """Signal a process's whole group (dramatiq's workers are its children) and wait for it."""
    os.killpg(process.pid, sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired as late:
        stacks = group_stacks(process.pid)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        raise AssertionError(f"{late}; where its processes stood:\n{stacks}") from None


def publish(deployment: Deployment, events: int, run: str, start: int = 1) -> list[dict[str, Any]]:
    """Publish ``events`` invoices (numbers from ``start``) through ``herald publish`` (confirmed)."""
    return publish_events(deployment, invoice_events(events, run=run, start=start), run)


def publish_events(deployment: Deployment, items: list[dict[str, Any]], run: str) -> list[dict[str, Any]]:
    """Publish the given events through ``herald publish`` (confirmed)."""
    path = write_jsonl(deployment.workdir / f"events-{run}.jsonl", items)
    result = deployment.herald("publish", str(path))
    assert result.returncode == 0, result.stderr
    return items


def publish_raw(deployment: Deployment, events: list[dict[str, Any]]) -> None:
    """Publish events the way a non-Python upstream does: plain JSON to ``herald.events``."""
    connection = connect(deployment)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        exchange = topology.events_exchange(deployment.env["HERALD_QUEUE_PREFIX"])
        channel.exchange_declare(exchange, exchange_type="topic", durable=True)
        for event in events:
            channel.basic_publish(
                exchange,
                event["type"],
                json.dumps(event).encode(),
                pika.BasicProperties(delivery_mode=2, content_type="application/json"),
                mandatory=True,
            )
    finally:
        connection.close()


def connect(deployment: Deployment) -> pika.BlockingConnection:
    """A connection to the deployment's broker: the first node of its ``HERALD_AMQP_URL`` that answers."""
    return amqp_nodes.connect(amqp_nodes.split_urls(deployment.env["HERALD_AMQP_URL"]))


def dropped_callbacks(deployment: Deployment) -> set[str]:
    """The message sids whose status callback the Twilio sandbox gave up on (Twilio does not retry)."""
    pattern = r"status callback (?:sent|delivered) for (SM\w+) dropped"
    return set(re.findall(pattern, deployment.log("sandbox.log")))


def sweep_lost_statuses(deployment: Deployment) -> None:
    """``herald status-sweep`` asking Twilio about every SMS still ``sent`` (the designed recovery
    for callbacks lost while the api or the broker was away)."""
    deployment.env["HERALD_STATUS_SWEEP_AFTER_SECONDS"] = "0"
    swept = deployment.herald("status-sweep")
    assert swept.returncode == 0, swept.stderr
    assert "errors 0" in swept.stdout, swept.stdout


def wait_delivered(deployment: Deployment, expected: int, timeout: float = 120) -> None:
    """Every one of ``expected`` SMS notifications delivered (bounded)."""
    wait_for(
        lambda: count(deployment, DELIVERED) == expected,
        timeout=timeout,
        interval=0.5,
        what=f"{expected} SMS delivered",
    )


def assert_delivered_once(deployment: Deployment, sandbox_url: str, expected: int) -> None:
    """A fault test's close: ``wait_delivered``, then ``assert_exactly_once``."""
    wait_delivered(deployment, expected)
    assert_exactly_once(deployment, sandbox_url, expected)


def assert_exactly_once(deployment: Deployment, sandbox_url: str, expected: int) -> None:
    """Each of ``expected`` notifications sent exactly once, and history in agreement."""
    env = deployment.env
    client = Client(env["HERALD_TWILIO_ACCOUNT_SID"], env["HERALD_TWILIO_AUTH_TOKEN"])
    client.api.base_url = sandbox_url
    captured = client.messages.list(page_size=1000)
    assert len(captured) == expected
    assert len({(m.to, m.body) for m in captured}) == expected  # nobody told twice
    rows = deployment.query(
        "SELECT id, provider_id, status FROM notifications WHERE channel = 'sms' AND reason = 'send'"
    )
    assert len(rows) == expected
    assert {r[2] for r in rows} == {"delivered"}
    assert {r[1] for r in rows} == {m.sid for m in captured}
    settled = deployment.query(
        "SELECT notification_id, count(*) FROM delivery_attempts "
        "WHERE outcome IN ('accepted', 'reconciled') GROUP BY notification_id"
    )
    # At most one attempt got through per notification, never two. An attempt cut short by a crash
    # may have none: its status callback (whose URL names the notification) settled it instead.
    assert all(n == 1 for _, n in settled)
    assert {n for n, _ in settled} <= {r[0] for r in rows}


def delete_queues(deployment: Deployment) -> None:
    """Remove the deployment's queues (its own prefix): a killed run leaves messages behind."""
    prefix = deployment.env["HERALD_QUEUE_PREFIX"]
    try:
        connection = connect(deployment)
    except pika.exceptions.AMQPError:
        return  # a broker the test started and stopped: its queues went with it
    try:
        channel = connection.channel()
        for stage in topology.STAGES + topology.PLAIN_STAGES:
            queue = topology.queue_name(prefix, stage)
            for name in (queue, topology.delay_queue(queue), topology.dead_letter_queue(queue)):
                channel.queue_delete(name)
    finally:
        connection.close()
