"""RabbitMQ stopped mid-run, down a few seconds, started again: every process reconnects by itself,
nothing is lost (durable queues, persistent messages) and every SMS is sent exactly once.

The test runs its own node (port, node name and data under the test's tmp dir), never the shared one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.e2e.conftest import Deployment
from tests.faults.helpers import (
    DELIVERED,
    SENT,
    STAGES,
    assert_exactly_once,
    count,
    dropped_callbacks,
    faults,
    prepare,
    publish_raw,
    start_all,
    sweep_lost_statuses,
    wait_delivered,
)
from tooling.demo.data import invoice_events
from tooling.local.ports import free_ports
from tooling.local.rabbitmq import ensure_broker, stop_broker

EVENTS = 200
#: Published after the restart, through ingest: every stage must have reconnected to carry them.
LATE = 20
DOWN_SECONDS = 3
NAMES = (*STAGES, "ingest", "api")


class Node:
    """A RabbitMQ node of the test's own that can be stopped and started again with its data."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        port, self.dist_port = free_ports(2)
        self.url = f"amqp://guest:guest@127.0.0.1:{port}/%2F"

    def start(self) -> None:
        ensure_broker(self.url, self.data_dir, timeout=60, dist_port=self.dist_port)

    def stop(self) -> None:
        stop_broker(self.data_dir)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    node = Node(tmp_path / "rabbitmq")
    node.start()
    yield node
    node.stop()  # its queues go with it


@pytest.fixture
def deployment(herald_env: dict[str, str], tmp_path: Path, node: Node) -> Iterator[Deployment]:
    deployment = Deployment({**herald_env, "HERALD_AMQP_URL": node.url}, tmp_path)
    yield deployment
    deployment.stop_all()  # before the node goes


def test_a_broker_restart_mid_run_loses_nothing_and_sends_nothing_twice(
    deployment: Deployment, node: Node
) -> None:
    # Batches of 10 and a slow provider, so the run lasts a while and the stop lands mid-run
    # (batches of 100 sent 16 at a time finished all 200 SMS before the stop in CI).
    sandbox_url = prepare(deployment, HERALD_METRICS_PORT="0", HERALD_STAGE_BATCH_SIZE="10")
    faults(sandbox_url, delay_seconds=0.2)
    processes = start_all(deployment, NAMES)
    wait_for(lambda: "ingest consuming" in deployment.log("ingest-1.log"), timeout=30, what="ingest")
    publish_raw(deployment, invoice_events(EVENTS, run="broker-restart"))
    wait_for(lambda: count(deployment, SENT) >= 30, timeout=60, what="30 SMS sent")

    node.stop()
    assert count(deployment, SENT) < EVENTS, "the restart must land mid-run"
    time.sleep(DOWN_SECONDS)  # the outage itself: nothing is awaited or asserted here
    node.start()

    publish_raw(deployment, invoice_events(LATE, run="broker-restart", start=EVENTS + 1))
    total = EVENTS + LATE
    wait_for(lambda: count(deployment, SENT) == total, timeout=120, what=f"{total} SMS sent")
    # The api holds a callback while RabbitMQ is away (up to 10 s, under Twilio's 15 s; the sandbox
    # gives up after 2 s and logs it dropped). A restart slower than that loses the callbacks of
    # that window, and only those: Twilio does not retry them.
    wait_for(
        lambda: count(deployment, DELIVERED) + len(dropped_callbacks(deployment)) >= total,
        timeout=120,
        interval=0.5,
        what="every callback delivered or dropped",
    )
    assert all(p.poll() is None for p in processes.values()), "every process rode out the restart"
    assert total - count(deployment, DELIVERED) <= len(dropped_callbacks(deployment))
    sweep_lost_statuses(deployment)  # what the scheduler's sweep does each tick
    wait_delivered(deployment, total, timeout=90)
    assert_exactly_once(deployment, sandbox_url, total)
    assert faults(sandbox_url)["requests"] == total  # the provider was asked once per SMS
