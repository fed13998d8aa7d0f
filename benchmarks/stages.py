"""CPU per notification of the route, render and history batch functions, in one process.

What ``benchmarks/e2e.py`` reports per stage is the stage's whole process: dramatiq, pika and
RabbitMQ's share of the work come with it. This calls the batch functions themselves
(``route_events``, ``render_notifications``, ``record_statuses``) on a real store (a temporary
SQLite file, or ``--database-url``) with an emitter that only collects what they hand on, so what
it measures is herald's own code and the database driver: the figure to profile and to compare
before and after a change in the same run, e.g. under py-spy:

    py-spy record --rate 1000 -o stages.svg -- python benchmarks/stages.py

The events are e2e's (``invoice.created``, one contact with a Finnish mobile each, in batches of
``--batch``); between render and history the SMS are claimed and given a provider id, as the sms
stage does, and history records one ``sent`` each.

    python benchmarks/stages.py [--events 3000] [--batch 100] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=3000, help="events measured (after a batch unmeasured)")
    parser.add_argument("--batch", type=int, default=100, help="items per batch message")
    parser.add_argument("--database-url", help="an empty database (default: a temporary SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="herald-bench-stages-") as tmp:
        os.environ.update(
            {
                "HERALD_DATABASE_URL": args.database_url or f"sqlite:///{Path(tmp) / 'stages.db'}",
                "HERALD_QUEUE_PREFIX": "bench-stages",
                "HERALD_TWILIO_FROM": "+15005550006",
                "HERALD_LOG_LEVEL": "WARNING",
            }
        )
        per = _measure(args.events, args.batch)
    figures = " ".join(f"{stage} {ms:.3f}" for stage, ms in per.items())
    print(f"{figures} ms CPU per notification ({args.events} events)")
    return 0


def _measure(count: int, size: int) -> dict[str, float]:
    import e2e
    from dramatiq.brokers.stub import StubBroker

    from infra.bootstrap import bootstrap, shutdown
    from infra.broker import Emitter
    from infra.settings import Settings
    from infra.store.directory import refresh_statistics, upsert_customer
    from infra.store.notifications import claim_for_sending_many, record_provider_ids
    from schemas.directory import CustomerRecord
    from workers.history import record_statuses
    from workers.render import render_notifications
    from workers.route import route_events

    handed_on: list[tuple[str, Any]] = []

    class Collecting(Emitter):
        """Keeps what a stage hands on, as the next stage would receive it (through JSON)."""

        def _send(self, stage: str, actor: str, body: Any, *, delay: int | None = None) -> None:
            handed_on.append((actor, json.loads(json.dumps(body))))

    def take(actor: str) -> list[Any]:
        bodies = [body for name, body in handed_on if name == actor]
        handed_on.clear()
        return bodies

    def timed(handler: Callable[[Any, Any], None], bodies: list[Any]) -> float:
        started = time.process_time()
        for body in bodies:
            handler(svc, body)
        return time.process_time() - started

    svc = bootstrap(Settings(), emitter=Collecting(StubBroker(), "bench-stages"))
    try:
        with svc.transaction() as conn:
            for record in e2e._customers(1, count + size):
                upsert_customer(conn, CustomerRecord.model_validate(record), region="FI")
        with svc.transaction() as conn:
            refresh_statistics(conn)  # as `herald contacts import` does (PostgreSQL plans on them)
        cpu = {"route": 0.0, "render": 0.0, "history": 0.0}
        for first, n, measured in ((1, size, False), (1 + size, count, True)):  # warm up, then measure
            events = e2e._events(first, n, uuid.uuid4().hex[:6])
            routed = [json.loads(json.dumps({"events": events[i : i + size]})) for i in range(0, n, size)]
            spent = {"route": timed(route_events, routed)}
            spent["render"] = timed(render_notifications, take("render_notifications"))
            ids = [nid for body in take("send_sms_batch") for nid in body["notification_ids"]]
            assert len(ids) == n, f"{len(ids)} of {n} SMS rendered"
            with svc.transaction() as conn:  # what the sms stage does before it reports
                claim_for_sending_many(conn, ids)
                record_provider_ids(conn, [(nid, f"SM{uuid.uuid4().hex}") for nid in ids])
            now = datetime.now(UTC).isoformat()
            sent = {"status": "sent", "source": "sms", "occurred_at": now, "provider_id": "SM1"}
            reports = [{"notification_id": nid, **sent} for nid in ids]
            spent["history"] = timed(
                record_statuses, [{"reports": reports[i : i + size]} for i in range(0, n, size)]
            )
            if measured:
                cpu = spent
        return {stage: seconds * 1000 / count for stage, seconds in cpu.items()}
    finally:
        shutdown(svc)


if __name__ == "__main__":
    raise SystemExit(main())
