"""The per-sender rate limit holds across every ``sms`` process together, not per process."""

from __future__ import annotations

from datetime import UTC, datetime

import pika

from tests.conftest import wait_for
from tests.e2e.conftest import BIN, Deployment, start_sandbox, write_jsonl
from tooling.demo.data import demo_customers, invoice_events

MESSAGES = 10


def _consumers(deployment: Deployment, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(deployment.env["HERALD_AMQP_URL"]))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.consumer_count)
    except Exception:  # not declared yet
        return 0
    finally:
        if connection.is_open:
            connection.close()


def _attempted(deployment: Deployment) -> list[datetime] | None:
    try:
        rows = deployment.query(
            "SELECT attempted_at FROM notifications"
            " WHERE channel = 'sms' AND reason = 'send' AND provider_id IS NOT NULL"
        )
    except Exception:  # the workers have not migrated the database yet
        return None
    if len(rows) < MESSAGES:
        return None
    return sorted(datetime.fromisoformat(str(r[0])).replace(tzinfo=UTC) for r in rows)


def test_two_sms_processes_at_one_segment_per_second_take_nine_seconds_for_ten(
    deployment: Deployment,
) -> None:
    deployment.env["HERALD_SMS_SEGMENTS_PER_SECOND"] = "1"
    start_sandbox(deployment)
    contacts = write_jsonl(deployment.workdir / "contacts.jsonl", demo_customers(MESSAGES))
    assert deployment.herald("contacts", "import", str(contacts)).returncode == 0
    herald = str(BIN / "herald")
    for stage in ("route", "render", "history"):
        deployment.start(herald, "worker", stage, log=f"{stage}.log")
    for n in (1, 2):
        deployment.start(herald, "worker", "sms", log=f"sms-{n}.log")
    sms_queue = f"{deployment.env['HERALD_QUEUE_PREFIX']}.sms"
    wait_for(lambda: _consumers(deployment, sms_queue) == 2, timeout=60, what="both sms processes consuming")

    events = write_jsonl(deployment.workdir / "events.jsonl", invoice_events(MESSAGES, run="rate"))
    assert deployment.herald("publish", str(events)).returncode == 0
    times = wait_for(lambda: _attempted(deployment), timeout=120, interval=0.5, what=f"{MESSAGES} SMS sent")
    # Every demo message is one segment from the same sender: ten slots one second apart.
    assert (times[-1] - times[0]).total_seconds() >= MESSAGES - 1 - 0.05
    # Both processes sent some, so the limit was shared, not kept per process.
    for n in (1, 2):
        assert '"sms accepted"' in deployment.log(f"sms-{n}.log") or "sms accepted" in deployment.log(
            f"sms-{n}.log"
        )
