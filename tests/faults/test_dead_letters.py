"""A poison message mid-run ends in the dead-letter queue with its reason while the rest flow on;
``herald dlq`` shows it; replaying a dead letter whose SMS was sent already sends nothing twice."""

from __future__ import annotations

import json
import signal

import dramatiq
import pika

from infra import topology
from infra.dead_letters import REASON_HEADER
from schemas.messages import NotificationRendered
from tests.conftest import wait_for
from tests.e2e.conftest import Deployment
from tests.faults.helpers import (
    assert_delivered_once,
    assert_exactly_once,
    count,
    kill,
    publish,
    start,
    start_run,
)

EVENTS = 100


def _sms_message(queue: str, notification_id: str) -> dramatiq.Message:  # type: ignore[type-arg]
    body = NotificationRendered(notification_id=notification_id).body()
    return dramatiq.Message(
        queue_name=queue, actor_name=NotificationRendered.actor, args=(body,), kwargs={}, options={}
    )


def _put(deployment: Deployment, queue: str, message: dramatiq.Message, **headers: object) -> None:  # type: ignore[type-arg]
    connection = pika.BlockingConnection(pika.URLParameters(deployment.env["HERALD_AMQP_URL"]))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        properties = pika.BasicProperties(delivery_mode=2, headers=headers or None)
        channel.basic_publish("", queue, message.encode(), properties, mandatory=True)
    finally:
        connection.close()


def _depth(deployment: Deployment, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(deployment.env["HERALD_AMQP_URL"]))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        connection.close()


def _declared(deployment: Deployment, queue: str) -> bool:
    """Whether the stage's worker has declared its queue yet (a slow start under load)."""
    connection = pika.BlockingConnection(pika.URLParameters(deployment.env["HERALD_AMQP_URL"]))
    try:
        connection.channel().queue_declare(queue, passive=True)
    except pika.exceptions.ChannelClosedByBroker:
        return False
    finally:
        if connection.is_open:
            connection.close()
    return True


def _dlq(deployment: Deployment, *args: str) -> object:
    result = deployment.herald("dlq", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_poison_message_is_dead_lettered_with_its_reason_and_a_replay_never_resends(
    deployment: Deployment,
) -> None:
    sandbox_url, processes = start_run(deployment)
    queue = topology.queue_name(deployment.env["HERALD_QUEUE_PREFIX"], "sms")
    publish(deployment, EVENTS // 2, run="poison-a")
    wait_for(lambda: count(deployment, "SELECT count(*) FROM notifications") > 0, timeout=60, what="a run")
    # The poison goes straight to the queue: it must exist first (sms may still be starting).
    wait_for(lambda: _declared(deployment, queue), timeout=60, what="the sms queue declared")
    poison = _sms_message(queue, "ntf_0000dead")  # a notification nobody ever made
    _put(deployment, queue, poison)
    publish(deployment, EVENTS // 2, run="poison-b", start=EVENTS // 2 + 1)  # and the rest flow on

    assert_delivered_once(deployment, sandbox_url, EVENTS)
    wait_for(lambda: _dlq(deployment, "list")["sms"] == 1, timeout=30, what="the poison in sms.XQ")  # type: ignore[index]
    listed = _dlq(deployment, "show", "sms")
    assert listed == [
        {
            "id": poison.message_id,
            "stage": "sms",
            "attempts": 1,  # permanent: dead-lettered at once, never retried
            "reason": "MalformedMessage: unknown notification ntf_0000dead",
        }
    ]
    detail = _dlq(deployment, "show", "sms", poison.message_id)
    assert "MalformedMessage" in detail["traceback"]  # type: ignore[index]

    # A message dead-lettered after its SMS had gone out (say, its report to history failed for good),
    # replayed while sms is stopped, so the test sees it wait in the queue and then get handled.
    kill(processes["sms"], signal.SIGTERM)
    sent_id = deployment.query("SELECT id FROM notifications WHERE channel = 'sms' LIMIT 1")[0][0]
    late = _sms_message(queue, sent_id)
    _put(deployment, topology.dead_letter_queue(queue), late, **{REASON_HEADER: "test: late"})
    wait_for(lambda: _dlq(deployment, "list")["sms"] == 2, timeout=30, what="two dead letters")  # type: ignore[index]
    replay = deployment.herald("dlq", "replay", "sms", late.message_id)
    assert replay.returncode == 0, replay.stderr
    assert "replayed 1 to sms" in replay.stdout
    assert _dlq(deployment, "list")["sms"] == 1  # type: ignore[index]
    assert _depth(deployment, queue) == 1
    sms = start(deployment, "sms", "2")
    wait_for(lambda: _depth(deployment, queue) == 0, timeout=30, what="the replay taken")
    kill(sms, signal.SIGTERM)  # graceful: what it holds is finished and acked, or returned
    assert _depth(deployment, queue) == 0
    assert_exactly_once(deployment, sandbox_url, EVENTS)  # re-reported, not resent

    replay_all = deployment.herald("dlq", "replay", "sms", "--all")
    assert "replayed 1 to sms" in replay_all.stdout
    start(deployment, "sms", "3")
    wait_for(lambda: _dlq(deployment, "list")["sms"] == 1, timeout=30, what="the poison dead again")  # type: ignore[index]
    assert _dlq(deployment, "show", "sms")[0]["attempts"] == 1  # type: ignore[index]
    purge = deployment.herald("dlq", "purge", "sms", "--yes")
    assert "purged 1 from sms" in purge.stdout
    assert _dlq(deployment, "list")["sms"] == 0  # type: ignore[index]
