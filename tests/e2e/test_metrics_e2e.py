"""``herald worker`` serves its stage's /metrics, adding up every dramatiq process (multiprocess mode)."""

from __future__ import annotations

import re

import dramatiq
import pika

from infra import topology
from infra.metrics import METRICS_OFFSETS
from tests.conftest import wait_for
from tests.e2e.conftest import BIN, Deployment, free_port, scrape


def test_a_worker_serves_its_stage_metrics_on_the_base_port_plus_its_offset(deployment: Deployment) -> None:
    port = free_port()
    deployment.env["HERALD_METRICS_PORT"] = str(port - METRICS_OFFSETS["history"])
    deployment.start(str(BIN / "herald"), "worker", "history", "--processes", "2", log="history.log")
    wait_for(lambda: scrape(port), timeout=60, what="the history stage's /metrics")

    url = deployment.env["HERALD_AMQP_URL"]
    queue = topology.queue_name(deployment.env["HERALD_QUEUE_PREFIX"], "history")
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:

        def consumed() -> bool:
            channel = connection.channel()
            return bool(channel.queue_declare(queue, passive=True).method.consumer_count)

        wait_for(consumed, timeout=60, what="the history queue consumed")
        # A malformed report: a permanent error, dead-lettered without a retry.
        message = dramatiq.Message(
            queue_name=queue, actor_name="record_status", args=({"nonsense": 1},), kwargs={}, options={}
        )
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish("", queue, message.encode(), pika.BasicProperties(delivery_mode=2))
    finally:
        connection.close()

    line = re.compile(r'herald_messages_total\{outcome="dead_lettered",stage="history"\} 1\.0')
    wait_for(lambda: line.search(scrape(port) or ""), timeout=60, what="the dead letter counted")
    deployment.stop_all()
    log = deployment.log("history.log")
    # dramatiq's own lines about the message carry the stage too (the log context middleware).
    failed = [ln for ln in log.splitlines() if "Failed to process message record_status" in ln]
    assert failed
    assert '"stage": "history"' in failed[0]
