"""SIGTERM to every process mid-run (300 SMS in flight through a slow provider), then a restart:
in-flight messages finish (or go back to their queue) within HERALD_SHUTDOWN_TIMEOUT_SECONDS, and
every SMS is sent exactly once and delivered."""

from __future__ import annotations

import signal
import time

from twilio.rest import Client

from tests.conftest import wait_for
from tests.e2e.conftest import Deployment
from tests.faults.helpers import (
    SENT,
    assert_delivered_once,
    count,
    faults,
    kill,
    publish,
    start_all,
    start_run,
)

EVENTS = 300
TIMEOUT = 10
NAMES = ("route", "render", "sms", "history", "ingest", "scheduler")


def _all_delivered_at_twilio(deployment: Deployment, sandbox_url: str) -> bool:
    env = deployment.env
    client = Client(env["HERALD_TWILIO_ACCOUNT_SID"], env["HERALD_TWILIO_AUTH_TOKEN"])
    client.api.base_url = sandbox_url
    return all(m.status == "delivered" for m in client.messages.list(page_size=1000))


def test_sigterm_to_every_process_mid_run_then_a_restart_sends_each_exactly_once(
    deployment: Deployment,
) -> None:
    # Each request takes a while and batches are small: the SIGTERM lands in some, mid-run (with
    # batches of 100 sent 16 at a time, the whole run can be over before the signal).
    sandbox_url, processes = start_run(
        deployment,
        (*NAMES, "api"),
        delay_seconds=0.5,
        HERALD_SHUTDOWN_TIMEOUT_SECONDS=str(TIMEOUT),
        HERALD_STAGE_BATCH_SIZE="10",
    )
    publish(deployment, EVENTS, run="sigterm")
    wait_for(lambda: count(deployment, SENT) >= 50, timeout=60, what="50 SMS sent")
    wait_for(lambda: faults(sandbox_url)["in_flight"] >= 1, timeout=30, what="requests in flight")

    began = time.monotonic()
    for name in NAMES:
        processes[name].send_signal(signal.SIGTERM)  # the group leader: dramatiq's main process
    for name in NAMES:
        kill(processes[name], signal.SIGTERM, timeout=TIMEOUT + 15)
    assert time.monotonic() - began < TIMEOUT + 15
    assert count(deployment, SENT) < EVENTS, "the SIGTERM must land mid-run"
    # In-flight sends finished before their process exited: none was left cut short (claimed, with
    # no Twilio id; a claimed one with its id only waits for history, stopped too, to hear of it).
    cut_short = "SELECT count(*) FROM notifications WHERE status = 'sending' AND provider_id IS NULL"
    assert count(deployment, cut_short) == 0
    # The api goes last, once Twilio has called back for everything sent: Twilio does not retry a
    # status callback that finds nobody listening (see the README).
    wait_for(lambda: _all_delivered_at_twilio(deployment, sandbox_url), timeout=30, what="callbacks made")
    kill(processes["api"], signal.SIGTERM, timeout=TIMEOUT + 15)

    start_all(deployment, (*NAMES, "api"), tag="2")
    assert_delivered_once(deployment, sandbox_url, EVENTS)
