"""Route throughput: decisions per second for customers with 1, 10 and 100 contacts.

The route actor runs in a dramatiq worker on a real RabbitMQ with a real
SQLite store, against a bare no-op actor consumed by the same kind of worker
in the same run (the machine is shared and noisy: the ratios are the figures).

    python benchmarks/route.py [--threads 4]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SIZES = ((1, 2000), (10, 600), (100, 100))  # (contacts per customer, events)


def _configure(tmp: Path) -> str:
    from infra.settings import DEFAULT_AMQP_URL
    from tooling.local import rabbitmq as rabbitmq_local

    url = os.environ.get("HERALD_AMQP_URL", DEFAULT_AMQP_URL)
    rabbitmq_local.ensure_broker(url, REPO / ".herald" / "rabbitmq")
    os.environ.update(
        {
            "HERALD_AMQP_URL": url,
            "HERALD_DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}",
            "HERALD_QUEUE_PREFIX": f"bench-route-{uuid.uuid4().hex[:6]}",
            "HERALD_TWILIO_FROM": "+15005550006",
            "HERALD_LOG_LEVEL": "WARNING",
        }
    )
    return url


def _customers(org: str, contacts: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "org_id": org,
            "customer_id": f"C{i}",
            "contacts": [
                {
                    "contact_id": f"C{i}-P{j}",
                    "primary": j == 0,
                    "mobile": f"+35840{i:03d}{j:04d}",
                    "emails": [{"address": f"c{i}p{j}@example.fi"}],
                }
                for j in range(contacts)
            ],
        }
        for i in range(count)
    ]


def _drain(broker: Any, queue: str, threads: int, done: Any) -> float:
    """Seconds for a worker on ``queue`` to process everything waiting there."""
    import dramatiq

    worker = dramatiq.Worker(broker, queues={queue}, worker_threads=threads, worker_timeout=50)
    started = time.perf_counter()
    worker.start()
    while not done():
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    worker.stop()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmpdir:
        url = _configure(Path(tmpdir))
        import dramatiq
        import pika
        from sqlalchemy import func, select

        from infra.bootstrap import bootstrap
        from infra.broker import Emitter, build_broker
        from infra.settings import get_settings
        from infra.store.directory import upsert_customer
        from infra.store.tables import events
        from producers.confirming import ConfirmingChannel
        from producers.publisher import Publisher
        from schemas.directory import CustomerRecord
        from tooling.demo.data import invoice_events
        from workers.registry import declare

        # The benchmark's composition root: what workers.start does for a route process.
        settings = get_settings()
        broker = build_broker(settings)
        svc = bootstrap(settings, emitter=Emitter(broker, settings.queue_prefix))
        declare(broker, lambda: svc, ["route"], queue_prefix=settings.queue_prefix)
        queue = svc.emitter.queue
        # Each size starts a fresh Worker on the one broker; dramatiq warns about that, harmlessly.
        logging.getLogger("dramatiq.broker").setLevel(logging.ERROR)
        counter = {"n": 0}

        @dramatiq.actor(broker=broker, queue_name=queue("noop"), actor_name="noop")
        def noop(body: Any) -> None:
            counter["n"] += 1

        noop_queue = queue("noop")
        broker.declare_queue(noop_queue, ensure=True)
        channel = ConfirmingChannel(url, [], 10.0)
        figures: dict[str, Any] = {"threads": args.threads, "sizes": []}
        try:
            for contacts, count in SIZES:
                org = f"org{contacts}"
                with svc.transaction() as conn:
                    for record in _customers(org, contacts, min(count, 200)):
                        upsert_customer(conn, CustomerRecord.model_validate(record), region="FI")
                batch = invoice_events(count, run=f"r{contacts}")
                for i, event in enumerate(batch):
                    event["org_id"] = org
                    event["data"]["invoice"]["customer_id"] = f"C{i % min(count, 200)}"
                with Publisher(settings) as publisher:
                    publisher.publish_many(batch)

                def routed(org: str = org, count: int = count) -> bool:
                    with svc.transaction() as conn:
                        n = conn.execute(select(func.count()).where(events.c.org_id == org)).scalar_one()
                    return n >= count

                route_s = _drain(broker, queue("route"), args.threads, routed)
                bodies = [
                    (
                        str(i),
                        dramatiq.Message(
                            queue_name=noop_queue, actor_name="noop", args=({},), kwargs={}, options={}
                        ).encode(),
                    )
                    for i in range(count)
                ]
                counter["n"] = 0
                channel.publish(noop_queue, bodies, window=5000)
                noop_s = _drain(broker, noop_queue, args.threads, lambda count=count: counter["n"] >= count)
                decisions = count * contacts * 2  # an SMS and an email decision per contact
                figures["sizes"].append(
                    {
                        "contacts": contacts,
                        "events": count,
                        "route_events_per_s": round(count / route_s),
                        "route_decisions_per_s": round(decisions / route_s),
                        "noop_messages_per_s": round(count / noop_s),
                        "route_vs_noop": round((count / route_s) / (count / noop_s), 3),
                    }
                )
        finally:
            channel.close()
            connection = pika.BlockingConnection(pika.URLParameters(url))
            ch = connection.channel()
            for stage in ("route", "render", "noop"):
                for suffix in ("", ".DQ", ".XQ"):
                    ch.queue_delete(queue(stage) + suffix)
            connection.close()
            broker.close()

    print(
        f"route stage on a real RabbitMQ + SQLite, {args.threads} worker threads, same run as a no-op actor"
    )
    columns = ("contacts", "events", "events/s", "decisions/s", "no-op msg/s", "route/no-op")
    print(" ".join(f"{c:>12}" for c in columns))
    for row in figures["sizes"]:
        keys = ("contacts", "events", "route_events_per_s", "route_decisions_per_s")
        print(" ".join(f"{row[k]:>12}" for k in (*keys, "noop_messages_per_s", "route_vs_noop")))
    print(json.dumps({"benchmark": "route", **figures}, separators=(",", ":")))  # for run_all.py
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
