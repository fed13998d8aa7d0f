"""Each process type killed with SIGKILL mid-run and restarted: every SMS sent exactly once, all
delivered (``sms`` itself: ``test_sms_kill.py``, with requests in flight at the provider)."""

from __future__ import annotations

import pytest

from tests.conftest import wait_for
from tests.e2e.conftest import Deployment
from tests.faults.helpers import (
    DELIVERED,
    ROUTED,
    SENT,
    assert_delivered_once,
    count,
    dropped_callbacks,
    faults,
    kill,
    publish,
    publish_raw,
    start,
    start_run,
    sweep_lost_statuses,
)
from tooling.demo.data import invoice_events

EVENTS = 200

#: process killed → the figure that shows it is mid-run when it dies.
PROGRESS = {"route": ROUTED, "render": SENT, "history": DELIVERED, "ingest": ROUTED, "api": DELIVERED}


@pytest.mark.parametrize("victim", ["route", "render", "history", "ingest"])
def test_a_stage_killed_mid_run_loses_nothing_and_sends_nothing_twice(
    deployment: Deployment, victim: str
) -> None:
    names = ("route", "render", "sms", "history", "api", *(("ingest",) if victim == "ingest" else ()))
    # A provider slow enough that the run lasts a while.
    sandbox_url, processes = start_run(deployment, names, delay_seconds=0.05)
    if victim == "ingest":
        wait_for(lambda: "ingest consuming" in deployment.log("ingest-1.log"), timeout=30, what="ingest")
        publish_raw(deployment, invoice_events(EVENTS, run=f"kill-{victim}"))
    else:
        publish(deployment, EVENTS, run=f"kill-{victim}")
    progress = PROGRESS[victim]
    wait_for(lambda: count(deployment, progress) >= 20, timeout=60, what=f"{victim} under way")
    kill(processes[victim])
    assert count(deployment, progress) < EVENTS, f"the kill of {victim} must land mid-run"
    start(deployment, victim, "2")

    assert_delivered_once(deployment, sandbox_url, EVENTS)


def test_the_api_killed_mid_run_loses_no_status_once_the_sweep_has_asked_twilio(
    deployment: Deployment,
) -> None:
    """Twilio does not retry a status callback its receiver refused; a notification whose callbacks
    all fell in the api's downtime stays ``sent`` (sent once, never resent), and only those: the
    sandbox's log names exactly the ones it could not call back. The status sweep then asks Twilio
    about them, and every one ends ``delivered``."""
    sandbox_url, processes = start_run(deployment, delay_seconds=0.05)
    publish(deployment, EVENTS, run="kill-api")
    wait_for(lambda: count(deployment, DELIVERED) >= 20, timeout=60, what="callbacks under way")
    kill(processes["api"])
    assert count(deployment, DELIVERED) < EVENTS
    start(deployment, "api", "2")
    wait_for(lambda: count(deployment, SENT) == EVENTS, timeout=120, what=f"{EVENTS} sent")

    wait_for(
        lambda: count(deployment, DELIVERED) + len(dropped_callbacks(deployment)) >= EVENTS,
        timeout=120,
        interval=0.5,
        what="every callback delivered or dropped",
    )
    statuses = dict(
        deployment.query(
            "SELECT status, count(*) FROM notifications WHERE channel = 'sms' AND reason = 'send' "
            "GROUP BY status"
        )
    )
    assert set(statuses) <= {"sent", "delivered"}
    assert statuses.get("sent", 0) <= len(
        dropped_callbacks(deployment)
    )  # only what Twilio could not tell us is unknown
    captured = deployment.query("SELECT count(DISTINCT provider_id) FROM notifications WHERE reason = 'send'")
    assert captured[0][0] == EVENTS
    assert faults(sandbox_url)["requests"] == EVENTS  # the provider was asked once per SMS

    sweep_lost_statuses(deployment)
    assert_delivered_once(deployment, sandbox_url, EVENTS)
