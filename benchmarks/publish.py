"""Publish throughput: ``Publisher.publish_many`` against dramatiq's ``actor.send``.

Both ways publish the same events, validated the same way, with publisher
confirms on, to a real RabbitMQ, in the same run (this machine is shared and
noisy: only the ratio means much). Target: a ratio of at least 8.

    python benchmarks/publish.py [--events 20000] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import dramatiq
import pika
from dramatiq.brokers.rabbitmq import RabbitmqBroker

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from infra.settings import DEFAULT_AMQP_URL, Settings  # noqa: E402
from producers.publisher import Publisher  # noqa: E402
from schemas.validation import event_to_json, parse_event  # noqa: E402
from tooling.demo.data import invoice_events  # noqa: E402
from tooling.local import rabbitmq as rabbitmq_local  # noqa: E402


def _delete_queues(url: str, *queues: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    for queue in queues:
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            channel.queue_delete(name)
    connection.close()


def bench_publisher(url: str, events: list[dict[str, Any]], prefix: str) -> float:
    """Seconds for ``Publisher.publish_many`` to publish and have every event confirmed."""
    settings = Settings(amqp_url=url, queue_prefix=prefix)  # type: ignore[arg-type]
    with Publisher(settings) as publisher:
        publisher.connect()
        started = time.perf_counter()
        count = publisher.publish_many(events)
        elapsed = time.perf_counter() - started
    assert count == len(events)
    return elapsed


def bench_actor_send(url: str, events: list[dict[str, Any]], queue: str) -> float:
    """Seconds for dramatiq's ``actor.send`` (confirm_delivery=True) to publish every event."""
    broker = RabbitmqBroker(url=url, confirm_delivery=True)

    def route_event(body: Any) -> None:  # never consumed here
        del body

    actor = dramatiq.actor(route_event, broker=broker, queue_name=queue)
    broker.declare_queue(queue, ensure=True)
    started = time.perf_counter()
    for event in events:
        actor.send(event_to_json(parse_event(event)))
    elapsed = time.perf_counter() - started
    broker.close()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=1, help="alternate the two ways this many times")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    url = os.environ.get("HERALD_AMQP_URL", DEFAULT_AMQP_URL)
    rabbitmq_local.ensure_broker(url, REPO / ".herald" / "rabbitmq")
    events = invoice_events(args.events, run=f"bench{uuid.uuid4().hex[:6]}")
    prefix = f"bench-{uuid.uuid4().hex[:6]}"
    baseline_queue = f"{prefix}.baseline"
    ours: list[float] = []
    theirs: list[float] = []
    try:
        for _ in range(args.rounds):
            theirs.append(bench_actor_send(url, events, baseline_queue))
            _delete_queues(url, baseline_queue)
            ours.append(bench_publisher(url, events, prefix))
            _delete_queues(url, f"{prefix}.route")
    finally:
        _delete_queues(url, baseline_queue, f"{prefix}.route")

    n = args.events
    ours_rate, theirs_rate = n / min(ours), n / min(theirs)
    figures = {
        "events": n,
        "rounds": args.rounds,
        "publish_many_seconds": round(min(ours), 3),
        "publish_many_events_per_s": round(ours_rate),
        "actor_send_seconds": round(min(theirs), 3),
        "actor_send_events_per_s": round(theirs_rate),
        "ratio": round(ours_rate / theirs_rate, 2),
        "target_ratio": 8,
    }
    print(f"events: {n} (best of {args.rounds} round(s), confirms on, same broker, same run)")
    print(f"Publisher.publish_many : {figures['publish_many_events_per_s']:>8} events/s ({min(ours):.2f} s)")
    print(f"dramatiq actor.send    : {figures['actor_send_events_per_s']:>8} events/s ({min(theirs):.2f} s)")
    print(f"ratio: {figures['ratio']} (target >= 8)")
    print(json.dumps({"benchmark": "publish", **figures}, separators=(",", ":")))  # for run_all.py
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
