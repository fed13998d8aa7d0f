"""The ``webhooks`` process killed with SIGKILL mid-run, twice, while events keep being written:
nothing is lost, every event reaches the receiver verified and in order per notification, and the
only duplicates are re-sends of the same ``webhook-id`` (at least once, as Standard Webhooks allows),
counted and bounded by what was in flight."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from infra.bootstrap import bootstrap, shutdown
from infra.settings import Settings
from producers.webhooks import operations as ops
from tests.conftest import TEST_AMQP_URL, wait_for
from tests.integration.test_webhooks import _arrival_order, _outbox_order
from tests.integration.webhook_helpers import every_event_type
from tooling.sandboxes.webhook_receiver import WebhookReceiver

BIN = Path(sys.executable).parent
RUNS = 30  # invoices, each with every event type: about 600 events
CONCURRENCY = 8


def test_the_webhooks_process_killed_twice_mid_run_loses_nothing(tmp_path: Path, capsys: Any) -> None:
    database_url = f"sqlite:///{tmp_path / 'herald.db'}"
    services = bootstrap(Settings(database_url=database_url, amqp_url=TEST_AMQP_URL))  # type: ignore[arg-type]
    env = {
        **os.environ,
        "HERALD_DATABASE_URL": database_url,
        "HERALD_STATUS_EXCHANGE": "false",
        "HERALD_WEBHOOK_POLL_SECONDS": "0.05",
        "HERALD_WEBHOOK_RETRY_BASE_SECONDS": "0.2",
        "HERALD_WEBHOOK_RETRY_MAX_SECONDS": "1",
        "HERALD_WEBHOOK_CONCURRENCY": str(CONCURRENCY),
        # The lease a killed process leaves is 6 timeouts (at least 30 s): the restart waits it out.
        "HERALD_WEBHOOK_TIMEOUT_SECONDS": "2",
        "HERALD_LOG_FORMAT": "json",
    }
    with WebhookReceiver() as receiver:
        made = ops.add(services, "acme", receiver.url + "/h", None)
        receiver.state.secrets = [made["secret"]]
        receiver.state.faults.delay_seconds = 0.01  # each answer takes a moment: kills land mid-batch

        def write() -> None:
            for run in range(RUNS):
                every_event_type(services, f"evt_{run}")

        writer = threading.Thread(target=write)
        writer.start()

        def start() -> subprocess.Popen[bytes]:
            log = (tmp_path / "webhooks.log").open("ab")
            argv = [str(BIN / "herald"), "webhooks", "run"]
            return subprocess.Popen(
                argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

        kills = 0
        for at_least in (60, 250):
            process = start()
            wait_for(
                lambda n=at_least: len(receiver.state.accepted()) >= n, timeout=120, what=f"{at_least} events"
            )
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            kills += 1
        writer.join(timeout=300)
        expected = _outbox_order(services)
        total = sum(len(v) for v in expected.values())
        process = start()
        try:
            wait_for(
                lambda: len({r.webhook_id for r in receiver.state.accepted()}) >= total,
                timeout=180,
                what="every event after the kills",
            )
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        accepted = receiver.state.accepted()
        written = {m for ids in expected.values() for m in ids}
        assert {r.webhook_id for r in accepted} == written  # nothing lost, nothing invented
        # A request the kill cut off mid-body fails verification, as it must; every whole one verifies.
        assert all(r.verified for r in receiver.state.received if r.complete)
        assert sum(not r.complete for r in receiver.state.received) <= kills * CONCURRENCY
        duplicates = receiver.state.duplicates()
        # Only what was in flight at a kill can come twice (sent, answered, not yet recorded).
        assert duplicates <= kills * CONCURRENCY, duplicates
        assert _arrival_order(accepted) == expected  # first arrivals in order per notification
        with capsys.disabled():
            print(f"\n{total} events, {kills} kills, {duplicates} duplicate deliveries (same webhook-id)")
        assert made["secret"] not in (tmp_path / "webhooks.log").read_text()
    shutdown(services)
